//! Just-in-time access through the gate: the whole lifecycle with a fake
//! clock (request, cap, self-approval refused, approval, expiry, lapse,
//! revoke, deny), the grants the decision engine honours — and that after a
//! grant expires no token, cached or not, reaches its principal — the audit
//! lines, port grants reaching the firewall, and signed remote requests
//! (accepted once; replay, bad signature and unknown key refused).
#![allow(
    clippy::disallowed_methods,
    reason = "tests seed manual clocks and check answers against the wall clock"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::*;
use gatehouse_gate::clock::ManualClock;
use gatehouse_gate::jit::api::{AdminRequest, AdminResponse, ListWhich};
use gatehouse_gate::jit::ports::{PortControl, PortElement, PortError, SyncSummary};
use gatehouse_gate::jit::{AdminCaller, JitService};
use gatehouse_jit::store::{Protocol, State, Store};
use gatehouse_sys::PeerCredentials;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const APPROVER: u32 = UID_A;
const OTHER: u32 = UID_B;
const SECADMINS: u32 = 46100;

fn policy(me: u32) -> String {
    format!(
        r#"{IDENTITIES}
[[assignments]]
name = "me-storage-jit"
principal = "uid:{me}"
role = "Token Reader"
identities = ["storage-writer"]
audiences = ["https://storage.azure.com"]
eligible = true
max_duration = "1h"
require_justification = true
approvers = ["gid:{SECADMINS}"]

[[assignments]]
name = "other-vault-jit"
principal = "uid:{OTHER}"
role = "Token Reader"
identities = ["vault-reader"]
audiences = ["*"]
eligible = true
max_duration = "30m"
require_ticket = true
auto_approve = true

[jit]
break_glass = ["192.0.2.0/24"]

[[jit_port]]
name = "ssh"
port = 22
sources = ["0.0.0.0/0", "::/0"]
max_duration = "2h"
requesters = ["uid:{me}", "signer:alice@example.com"]
approvers = ["gid:{SECADMINS}"]

[[jit_port]]
name = "rsync"
port = 873
sources = ["10.0.0.0/8"]
requesters = ["uid:{me}"]
approvers = ["gid:{SECADMINS}"]
auto_approve = true
"#
    )
}

/// Records what the service asks of the firewall.
#[derive(Default)]
struct FakePorts {
    synced: Mutex<Vec<Vec<PortElement>>>,
    cut: Mutex<Vec<(IpAddr, String, u16)>>,
}

impl PortControl for FakePorts {
    fn sync(&self, desired: &[PortElement]) -> Result<SyncSummary, PortError> {
        self.synced.lock().unwrap().push(desired.to_vec());
        Ok(SyncSummary {
            added: desired.len(),
            removed: 0,
            kept: 0,
        })
    }
    fn cut(&self, source: IpAddr, protocol: Protocol, port: u16) -> Result<usize, PortError> {
        self.cut
            .lock()
            .unwrap()
            .push((source, protocol.to_string(), port));
        Ok(1)
    }
}

impl FakePorts {
    fn last(&self) -> Vec<PortElement> {
        self.synced
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

fn who(uid: u32, groups: &[u32]) -> AdminCaller {
    AdminCaller::from_credentials(PeerCredentials {
        pid: 1,
        uid,
        gid: uid,
        groups: groups.to_vec(),
        groups_verified: true,
    })
}

struct Jit {
    h: Harness,
    clock: Arc<ManualClock>,
    svc: JitService,
    ports: Arc<FakePorts>,
    me: u32,
}

fn start() -> Jit {
    let me = gatehouse_sys::effective_uid();
    let clock = Arc::new(ManualClock::at(SystemTime::now()));
    let h = Harness::start_opts(
        &policy(me),
        Opts {
            cache_margin: Some(Duration::from_secs(300)),
            clock: clock.clone(),
            ..Opts::default()
        },
    );
    let store = Store::open(&h.dir.path().join("jit.db")).unwrap();
    let ports = Arc::new(FakePorts::default());
    let svc = JitService::new(
        Arc::clone(&h.gate),
        store,
        Some(ports.clone() as Arc<dyn PortControl>),
    );
    svc.start().unwrap();
    Jit {
        h,
        clock,
        svc,
        ports,
        me,
    }
}

fn ask_role(j: &Jit, uid: u32, secs: u64, reason: Option<&str>) -> AdminResponse {
    j.svc.handle(
        &who(uid, &[]),
        AdminRequest::Request {
            role: "Token Reader".into(),
            identity: "storage-writer".into(),
            audience: None,
            duration_secs: secs,
            reason: reason.map(str::to_owned),
            ticket: None,
        },
    )
}

fn approve(j: &Jit, uid: u32, groups: &[u32], id: &str) -> AdminResponse {
    j.svc.handle(
        &who(uid, groups),
        AdminRequest::Approve {
            id: id.into(),
            reason: Some("ok".into()),
        },
    )
}

fn error_kind(r: &AdminResponse) -> String {
    r.error
        .as_ref()
        .map(|e| e.kind.to_string())
        .unwrap_or_else(|| format!("no error: {r:?}"))
}

/// A storage token over a fresh connection from this process.
fn token(j: &Jit) -> u16 {
    let target =
        j.h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));
    let answer = raw(
        j.h.addr,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    answer[9..12].parse().unwrap()
}

fn token_calls(j: &Jit) -> u64 {
    let stats = serde_json::to_value(j.h.emulator.as_ref().unwrap().stats()).unwrap();
    stats["by_endpoint"]["token"].as_u64().unwrap_or(0)
}

fn jit_lines(j: &Jit, id: &str) -> Vec<Value> {
    j.h.audit()
        .into_iter()
        .filter(|l| l["event"]["id"] == id || l["id"] == id)
        .collect()
}

fn event_types(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l.get("event").unwrap_or(l)["type"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

#[test]
fn a_grant_is_requested_capped_approved_by_someone_else_honoured_and_expires() {
    let j = start();
    assert_eq!(
        token(&j),
        403,
        "eligible is not active: no token before a grant"
    );

    // A justification is required; zero is refused.
    assert_eq!(
        error_kind(&ask_role(&j, j.me, 3600, None)),
        "justification_required"
    );
    assert_eq!(
        error_kind(&ask_role(&j, j.me, 0, Some("x"))),
        "zero_duration"
    );
    // Someone the assignment is not about cannot ask.
    assert_eq!(
        error_kind(&ask_role(&j, OTHER, 3600, Some("x"))),
        "not_eligible"
    );

    // Two hours asked, capped at the one-hour maximum; pending.
    let r = ask_role(&j, j.me, 7200, Some("restore the nightly backup"));
    assert!(r.ok, "{r:?}");
    let rec = r.record.unwrap();
    assert_eq!(rec.state, State::Pending);
    assert_eq!(rec.request.common.duration_secs, 3600);
    assert_eq!(rec.request.common.requested_secs, 7200);
    assert!(
        r.notices.iter().any(|n| n.contains("capped")),
        "{:?}",
        r.notices
    );
    assert_eq!(token(&j), 403, "pending grants nothing");

    // Nobody approves their own request — not even as an approver.
    assert_eq!(
        error_kind(&approve(&j, j.me, &[SECADMINS], &rec.id)),
        "self_approval"
    );
    // Someone who is not an approver cannot.
    assert_eq!(
        error_kind(&approve(&j, OTHER, &[], &rec.id)),
        "not_an_approver"
    );
    // An approver can; the first decision stands.
    let ok = approve(&j, APPROVER, &[SECADMINS], &rec.id);
    assert!(ok.ok, "{ok:?}");
    let active = ok.record.unwrap();
    assert_eq!(active.state, State::Active);
    assert_eq!(
        error_kind(&approve(&j, OTHER + 1, &[SECADMINS], &rec.id)),
        "conflict"
    );

    // Honoured: a token, then the same token from the cache.
    assert_eq!(token(&j), 200);
    assert_eq!(token(&j), 200);
    assert_eq!(token_calls(&j), 1, "the second came from the cache");

    // 59 minutes on: still active.
    j.clock.advance(Duration::from_secs(59 * 60));
    assert_eq!(token(&j), 200);
    // Past the hour: no token — the cached one is still valid, yet it does
    // not reach the principal, and nothing had to sweep first.
    j.clock.advance(Duration::from_secs(61));
    assert_eq!(
        token(&j),
        403,
        "an expired grant gives nothing, cached or not"
    );
    assert_eq!(token_calls(&j), 1);

    // The sweep records the expiry; the audit has every step, in the chain.
    j.svc.tick();
    let lines = jit_lines(&j, &rec.id);
    let types = event_types(&lines);
    for want in [
        "jit_requested",
        "jit_approved",
        "jit_activated",
        "jit_expired",
    ] {
        assert!(types.iter().any(|t| t == want), "no {want} in {types:?}");
    }
    let approved = lines
        .iter()
        .find(|l| l.get("event").unwrap_or(l)["type"] == "jit_approved")
        .unwrap();
    let approved = approved.get("event").unwrap_or(approved);
    assert_eq!(approved["request"]["reason"], "restore the nightly backup");
    assert_eq!(approved["request"]["requester"]["uid"], j.me);
    assert_eq!(approved["actor"]["uid"], APPROVER);
    assert!(approved["request"]["expires"].is_string());
    gatehouse_audit::verify(std::slice::from_ref(&j.h.audit_path)).expect("the audit chain holds");
}

#[test]
fn pending_requests_lapse_after_a_day_and_deny_needs_a_reason() {
    let j = start();
    let id = ask_role(&j, j.me, 600, Some("a")).record.unwrap().id;
    j.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(
        error_kind(&approve(&j, APPROVER, &[SECADMINS], &id)),
        "lapsed"
    );
    assert_eq!(token(&j), 403);
    j.svc.tick();
    assert!(event_types(&jit_lines(&j, &id))
        .iter()
        .any(|t| t == "jit_lapsed"));

    let id = ask_role(&j, j.me, 600, Some("b")).record.unwrap().id;
    let no_reason = j.svc.handle(
        &who(APPROVER, &[SECADMINS]),
        AdminRequest::Deny {
            id: id.clone(),
            reason: String::new(),
        },
    );
    assert_eq!(error_kind(&no_reason), "reason_required");
    let denied = j.svc.handle(
        &who(APPROVER, &[SECADMINS]),
        AdminRequest::Deny {
            id: id.clone(),
            reason: "not today".into(),
        },
    );
    assert_eq!(denied.record.unwrap().state, State::Denied);
    assert_eq!(
        error_kind(&approve(&j, APPROVER, &[SECADMINS], &id)),
        "conflict"
    );
    assert_eq!(token(&j), 403);
}

#[test]
fn revocation_takes_effect_on_the_next_request() {
    let j = start();
    let id = ask_role(&j, j.me, 1800, Some("x")).record.unwrap().id;
    assert!(approve(&j, APPROVER, &[SECADMINS], &id).ok);
    assert_eq!(token(&j), 200);
    // Someone else may not revoke it; the requester may.
    let refused = j.svc.handle(
        &who(OTHER, &[]),
        AdminRequest::Revoke {
            id: id.clone(),
            reason: None,
        },
    );
    assert_eq!(error_kind(&refused), "not_allowed");
    let r = j.svc.handle(
        &who(j.me, &[]),
        AdminRequest::Revoke {
            id: id.clone(),
            reason: Some("done".into()),
        },
    );
    assert_eq!(r.record.unwrap().state, State::Revoked, "{:?}", r.error);
    assert_eq!(
        token(&j),
        403,
        "revoked: the cached token no longer reaches the principal"
    );
    assert!(event_types(&jit_lines(&j, &id))
        .iter()
        .any(|t| t == "jit_revoked"));
}

#[test]
fn auto_approval_and_listing_follow_who_asks() {
    let j = start();
    // Ticket required, then auto-approved at once.
    let ask = |ticket: Option<&str>| {
        j.svc.handle(
            &who(OTHER, &[]),
            AdminRequest::Request {
                role: "Token Reader".into(),
                identity: "vault-reader".into(),
                audience: Some("https://vault.azure.net".into()),
                duration_secs: 600,
                reason: Some("rotate".into()),
                ticket: ticket.map(str::to_owned),
            },
        )
    };
    assert_eq!(error_kind(&ask(None)), "ticket_required");
    let r = ask(Some("CHG-1"));
    assert_eq!(r.record.as_ref().unwrap().state, State::Active, "{r:?}");
    let mine = ask_role(&j, j.me, 600, Some("y")).record.unwrap();

    let list = |uid: u32, groups: &[u32], filter| {
        j.svc
            .handle(&who(uid, groups), AdminRequest::List { filter })
            .records
            .unwrap()
    };
    // A requester sees only their own; an approver, the requests they may
    // decide (not the auto-approved vault grant they have no say in); root, all.
    let theirs = list(OTHER, &[], ListWhich::All);
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].request.common.requester.uid, Some(OTHER));
    let approvers_view = list(APPROVER, &[SECADMINS], ListWhich::All);
    assert_eq!(
        approvers_view
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        vec![mine.id.clone()]
    );
    let pending = list(APPROVER, &[SECADMINS], ListWhich::Pending);
    assert_eq!(
        pending.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![mine.id.clone()]
    );
    assert_eq!(list(APPROVER, &[SECADMINS], ListWhich::Active).len(), 0);
    if j.me != 0 {
        return;
    }
    assert_eq!(list(0, &[], ListWhich::All).len(), 2, "root sees all");
    assert_eq!(list(0, &[], ListWhich::Active).len(), 1);
}

#[test]
fn port_grants_reach_the_firewall_and_revocation_cuts_sessions() {
    let j = start();
    let open = |port: u16, source: &str, secs: u64| {
        j.svc.handle(
            &who(j.me, &[]),
            AdminRequest::OpenPort {
                port,
                protocol: "tcp".into(),
                source: source.parse().unwrap(),
                duration_secs: secs,
                reason: Some("deploy".into()),
                ticket: None,
            },
        )
    };
    // Outside the allowed sources; unknown port.
    assert_eq!(
        error_kind(&open(873, "198.51.100.1", 600)),
        "source_not_allowed"
    );
    assert_eq!(error_kind(&open(2222, "10.1.2.3", 600)), "unknown_port");
    // Auto-approved: the element goes in at once, with its timeout.
    let r = open(873, "10.1.2.3", 600);
    assert_eq!(r.record.as_ref().unwrap().state, State::Active, "{r:?}");
    let last = j.ports.last();
    assert_eq!(last.len(), 1);
    assert_eq!(
        (
            last[0].port,
            last[0].source.to_string(),
            last[0].expires_in_secs
        ),
        (873, "10.1.2.3".into(), 600)
    );

    // SSH needs approval; capped at two hours.
    let ssh = open(22, "2001:db8::7", 5 * 3600).record.unwrap();
    assert_eq!(ssh.state, State::Pending);
    assert_eq!(ssh.request.common.duration_secs, 7200);
    assert_eq!(j.ports.last().len(), 1, "nothing opens before approval");
    assert_eq!(
        error_kind(&approve(&j, j.me, &[SECADMINS], &ssh.id)),
        "self_approval"
    );
    assert!(approve(&j, APPROVER, &[SECADMINS], &ssh.id).ok);
    assert_eq!(j.ports.last().len(), 2);

    // Revoke: the element leaves the set and the source's sessions are cut.
    let r = j.svc.handle(
        &who(APPROVER, &[SECADMINS]),
        AdminRequest::Revoke {
            id: ssh.id.clone(),
            reason: Some("incident over".into()),
        },
    );
    assert!(r.ok, "{r:?}");
    assert_eq!(j.ports.last().len(), 1);
    assert_eq!(
        j.ports.cut.lock().unwrap().as_slice(),
        &[("2001:db8::7".parse().unwrap(), "tcp".to_owned(), 22)]
    );

    // A restart reconciles: the next service syncs the database's state.
    j.clock.advance(Duration::from_secs(300));
    let again = JitService::new(
        Arc::clone(&j.h.gate),
        Store::open(&j.h.dir.path().join("jit.db")).unwrap(),
        Some(j.ports.clone() as Arc<dyn PortControl>),
    );
    again.start().unwrap();
    let last = j.ports.last();
    assert_eq!(last.len(), 1);
    assert_eq!(
        last[0].expires_in_secs, 300,
        "the element keeps only what is left of its time"
    );
}

// ---- signed remote requests ----

fn keygen(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_owned())
}

fn signed_packet(key: &std::path::Path, port: u16, source: IpAddr, now: SystemTime) -> Vec<u8> {
    use gatehouse_jit::knock::{encode_packet, sign_with_ssh_keygen, PortRequest};
    let r = PortRequest::new(port, "tcp", source, 1800, "on call", None, None, now);
    let message = r.message();
    let sig = sign_with_ssh_keygen(key, &message).unwrap();
    encode_packet(&message, &sig)
}

#[test]
fn a_signed_request_is_accepted_once_and_replays_bad_signatures_and_unknown_keys_are_refused() {
    use gatehouse_jit::knock::verify_packet;
    use gatehouse_jit::signers::AllowedSigners;
    let j = start();
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keygen(dir.path(), "alice");
    let (mallory, _) = keygen(dir.path(), "mallory");
    let signers = AllowedSigners::parse(&format!("alice@example.com {}\n", alice_pub)).unwrap();
    let src: IpAddr = "127.0.0.1".parse().unwrap();
    let now = j.clock_now();

    let packet = signed_packet(&alice, 22, src, now);
    let verified = verify_packet(&packet, src, &signers, now).unwrap();
    assert_eq!(verified.signer, "alice@example.com");
    let first = j.svc.knock(&verified).unwrap();
    let rec = first.record.unwrap();
    assert_eq!(rec.state, State::Pending);
    assert_eq!(
        rec.request.common.requester.name,
        "signer:alice@example.com"
    );
    assert_eq!(rec.request.common.via, "signed-request");
    // The same packet again is a replay.
    let again = verify_packet(&packet, src, &signers, now).unwrap();
    assert_eq!(j.svc.knock(&again).unwrap_err().kind.as_str(), "replay");
    // A flipped byte in the message breaks the signature.
    let mut tampered = packet.clone();
    let at = tampered.iter().position(|b| *b == b'o').unwrap();
    tampered[at] = b'0';
    assert!(verify_packet(&tampered, src, &signers, now).is_err());
    // A key not in the allowed-signers file.
    let stranger = signed_packet(&mallory, 22, src, now);
    assert!(verify_packet(&stranger, src, &signers, now).is_err());
    // Approval by a local approver opens it.
    assert!(approve(&j, APPROVER, &[SECADMINS], &rec.id).ok);
    assert_eq!(j.ports.last().len(), 1);
}

trait ClockNow {
    fn clock_now(&self) -> SystemTime;
}

impl ClockNow for Jit {
    fn clock_now(&self) -> SystemTime {
        use gatehouse_gate::clock::Clock;
        self.clock.now()
    }
}

/// The UDP listener itself: a verified packet is answered with its request;
/// the same packet again is answered "replay"; a tampered packet and a
/// stranger's key get no answer at all (the port looks closed).
#[test]
fn the_signed_request_listener_answers_only_what_verifies() {
    use gatehouse_jit::signers::AllowedSigners;
    let j = start();
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keygen(dir.path(), "alice");
    let (mallory, _) = keygen(dir.path(), "mallory");
    let signers =
        Arc::new(AllowedSigners::parse(&format!("alice@example.com {alice_pub}\n")).unwrap());
    let svc = Arc::new(JitService::new(
        Arc::clone(&j.h.gate),
        Store::open(&j.h.dir.path().join("jit.db")).unwrap(),
        Some(j.ports.clone() as Arc<dyn PortControl>),
    ));
    let socket =
        j.h.rt
            .block_on(tokio::net::UdpSocket::bind("127.0.0.1:0"))
            .unwrap();
    let listen = socket.local_addr().unwrap();
    j.h.rt.spawn(gatehouse_gate::jit::knock::serve(
        socket, signers, svc, None,
    ));

    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let send = |packet: &[u8]| -> Option<Value> {
        client.send_to(packet, listen).unwrap();
        let mut buf = [0u8; 4096];
        client
            .recv_from(&mut buf)
            .ok()
            .map(|(n, _)| serde_json::from_slice(&buf[..n]).unwrap())
    };
    let src: IpAddr = "127.0.0.1".parse().unwrap();
    let packet = signed_packet(&alice, 22, src, j.clock_now());
    let first = send(&packet).expect("a verified packet is answered");
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["state"], "pending");
    let again = send(&packet).expect("the signer is known, so a replay is answered too");
    assert_eq!(again["error"]["kind"], "replay", "{again}");
    let mut tampered = packet.clone();
    let at = tampered.iter().position(|b| *b == b'o').unwrap();
    tampered[at] = b'0';
    assert!(send(&tampered).is_none(), "a bad signature gets silence");
    assert!(
        send(&signed_packet(&mallory, 22, src, j.clock_now())).is_none(),
        "an unknown key gets silence"
    );
    assert!(send(b"garbage").is_none());
    // Refusals are audited (rate-limited), without the signature (whose
    // base64 always starts with "SSHSIG" encoded: U1NIU0lH).
    let refused: Vec<Value> =
        j.h.audit()
            .into_iter()
            .filter(|l| l.get("event").unwrap_or(l)["type"] == "jit_signed_request_refused")
            .collect();
    assert!(refused.len() >= 3, "{refused:?}");
    let text = std::fs::read_to_string(&j.h.audit_path).unwrap();
    let leaked: Vec<&str> = text.lines().filter(|l| l.contains("U1NIU0lH")).collect();
    assert!(
        leaked.is_empty(),
        "no signature in the audit log: {leaked:?}"
    );
}

/// Issue "Speed": after a JIT grant expires, no token — cached or not —
/// reaches that principal. The cache holds a token valid for hours; the
/// grant ends; the next request is decided without it, before any sweep.
#[test]
fn after_a_jit_grant_expires_no_token_cached_or_not_reaches_the_principal() {
    let j = start();
    let id = ask_role(&j, j.me, 600, Some("short")).record.unwrap().id;
    assert!(approve(&j, APPROVER, &[SECADMINS], &id).ok);
    assert_eq!(token(&j), 200, "fetched upstream");
    assert_eq!(token(&j), 200, "served from the cache");
    assert_eq!(token_calls(&j), 1);
    j.clock.advance(Duration::from_secs(599));
    assert_eq!(
        token(&j),
        200,
        "one second left: still granted, still cached"
    );
    j.clock.advance(Duration::from_secs(1));
    assert_eq!(
        token(&j),
        403,
        "expired: the cached token does not reach the principal"
    );
    // And again: the decision, not the cache, answers.
    assert_eq!(token(&j), 403);
    assert_eq!(token_calls(&j), 1, "and IMDS was not asked");
}

/// One requester cannot flood the approvers: at most 16 pending at once;
/// withdrawing one makes room.
#[test]
fn pending_requests_per_requester_are_bounded() {
    let j = start();
    let max = gatehouse_gate::jit::MAX_PENDING_PER_REQUESTER;
    let ids: Vec<String> = (0..max)
        .map(|i| {
            ask_role(&j, j.me, 600, Some(&format!("n{i}")))
                .record
                .unwrap()
                .id
        })
        .collect();
    assert_eq!(
        error_kind(&ask_role(&j, j.me, 600, Some("one more"))),
        "too_many_pending"
    );
    let r = j.svc.handle(
        &who(j.me, &[]),
        AdminRequest::Revoke {
            id: ids[0].clone(),
            reason: Some("withdrawn".into()),
        },
    );
    assert!(r.ok, "{r:?}");
    assert!(ask_role(&j, j.me, 600, Some("now there is room")).ok);
}

/// Review findings: withdrawing a request that never opened anything cuts
/// nothing, and a break-glass source's sessions are never cut.
#[test]
fn only_a_revoked_active_grant_outside_break_glass_cuts_sessions() {
    let j = start();
    let open = |source: &str| {
        j.svc.handle(
            &who(j.me, &[]),
            AdminRequest::OpenPort {
                port: 22,
                protocol: "tcp".into(),
                source: source.parse().unwrap(),
                duration_secs: 600,
                reason: Some("x".into()),
                ticket: None,
            },
        )
    };
    let pending = open("198.51.100.4").record.unwrap();
    let r = j.svc.handle(
        &who(j.me, &[]),
        AdminRequest::Revoke {
            id: pending.id.clone(),
            reason: None,
        },
    );
    assert_eq!(r.record.unwrap().state, State::Revoked);
    assert!(
        j.ports.cut.lock().unwrap().is_empty(),
        "a pending request opened nothing: nothing is cut"
    );

    let glass = open("192.0.2.10").record.unwrap();
    assert!(approve(&j, APPROVER, &[SECADMINS], &glass.id).ok);
    let r = j.svc.handle(
        &who(j.me, &[]),
        AdminRequest::Revoke {
            id: glass.id.clone(),
            reason: None,
        },
    );
    assert!(r.notices.iter().any(|n| n.contains("break-glass")), "{r:?}");
    assert!(
        j.ports.cut.lock().unwrap().is_empty(),
        "break-glass sessions stay"
    );
}

/// Finished requests leave the database after the retention period (the
/// audit log keeps them); active ones stay.
#[test]
fn finished_requests_are_pruned_after_retention() {
    let j = start();
    let svc = JitService::new(
        Arc::clone(&j.h.gate),
        Store::open(&j.h.dir.path().join("jit.db")).unwrap(),
        None,
    )
    .with_retention(Duration::from_secs(7 * 86_400));
    let denied = ask_role(&j, j.me, 600, Some("a")).record.unwrap().id;
    j.svc.handle(
        &who(APPROVER, &[SECADMINS]),
        AdminRequest::Deny {
            id: denied.clone(),
            reason: "no".into(),
        },
    );
    j.clock.advance(Duration::from_secs(8 * 86_400));
    let kept = ask_role(&j, j.me, 600, Some("b")).record.unwrap().id;
    svc.tick();
    let all: Vec<String> = svc
        .handle(
            &who(0, &[]),
            AdminRequest::List {
                filter: ListWhich::All,
            },
        )
        .records
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(!all.contains(&denied), "{all:?}");
    assert!(all.contains(&kept), "{all:?}");
    assert!(j
        .h
        .audit()
        .iter()
        .any(|l| l.get("event").unwrap_or(l)["type"] == "jit_pruned"));
    assert!(
        j.h.audit()
            .iter()
            .any(|l| l.get("event").unwrap_or(l)["id"] == denied.as_str()),
        "the audit log keeps it"
    );
}

/// `error.kind` is what the CLI and scripts read: each kind's JSON is its
/// snake_case name, the policy's refusals under their own names, and every
/// one reads back as itself.
#[test]
fn error_kinds_keep_their_wire_text() {
    use gatehouse_gate::jit::api::{ApiError, ErrorKind};
    use gatehouse_policy::JitRefusalKind;
    let table = [
        (ErrorKind::BadAudience, "bad_audience"),
        (ErrorKind::BadProtocol, "bad_protocol"),
        (ErrorKind::BadText, "bad_text"),
        (ErrorKind::Conflict, "conflict"),
        (ErrorKind::Expired, "expired"),
        (ErrorKind::Internal, "internal"),
        (ErrorKind::Lapsed, "lapsed"),
        (ErrorKind::Malformed, "malformed"),
        (ErrorKind::NoFirewall, "no_firewall"),
        (ErrorKind::NotAllowed, "not_allowed"),
        (ErrorKind::NotFound, "not_found"),
        (ErrorKind::ReasonRequired, "reason_required"),
        (ErrorKind::Replay, "replay"),
        (ErrorKind::RestartNeeded, "restart_needed"),
        (ErrorKind::Store, "store"),
        (ErrorKind::Timeout, "timeout"),
        (ErrorKind::TooLarge, "too_large"),
        (ErrorKind::TooLong, "too_long"),
        (ErrorKind::TooManyPending, "too_many_pending"),
        (ErrorKind::TooManyPorts, "too_many_ports"),
        (ErrorKind::WrongHost, "wrong_host"),
        (JitRefusalKind::SelfApproval.into(), "self_approval"),
        (JitRefusalKind::NotARequester.into(), "not_a_requester"),
        (JitRefusalKind::ZeroDuration.into(), "zero_duration"),
    ];
    for (kind, text) in table {
        let e = ApiError::new(kind, "m");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json, serde_json::json!({"kind": text, "message": "m"}));
        assert_eq!(serde_json::from_value::<ApiError>(json).unwrap(), e);
        assert_eq!(kind.to_string(), text);
    }
    assert!(serde_json::from_str::<ErrorKind>(r#""no_such_kind""#).is_err());
}
