//! The known ways to fake a principal, each against the real gate.
//! docs/threats.md points here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;

const INSTANCE: &str = "/metadata/instance?api-version=2021-02-01";

fn instance_policy(principal: &str) -> String {
    format!(
        r#"{IDENTITIES}
[[assignments]]
name = "instance-readers"
principal = "{principal}"
role = "Instance Metadata Reader"
"#
    )
}

/// A world-readable scratch directory for binaries run by the tests.
fn scratch() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A gate where only /usr/bin/curl may read instance metadata, and a
/// scratch directory beside it.
fn curl_only_gate() -> (Harness, tempfile::TempDir) {
    (
        Harness::start(&instance_policy("exe:/usr/bin/curl")),
        scratch(),
    )
}

/// The last audit record whose outcome is `outcome`.
fn last_with_outcome(h: &Harness, outcome: &str) -> serde_json::Value {
    h.audit()
        .into_iter()
        .rev()
        .find(|l| l["event"]["outcome"] == outcome)
        .unwrap()
}

/// A copy of curl named `name` in `dir`.
fn curl_copy(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    let copy = dir.path().join(name);
    std::fs::copy("/usr/bin/curl", &copy).unwrap();
    copy
}

/// Ask for instance metadata as uid A with the curl-compatible `program`.
fn instance_with(h: &Harness, program: &std::path::Path) -> Reply {
    h.client(
        program.to_str().unwrap(),
        UID_A,
        INSTANCE,
        &["-H", "Metadata: true"],
    )
}

/// Run a bash script that talks HTTP over `/dev/tcp` (bash builtins only, so
/// no extra process holds the socket unless the script makes one). `$GATE`
/// is `127.0.0.1/PORT`. Returns the HTTP status it read.
fn bash_status(h: &Harness, script: &str) -> u16 {
    bash_status_of(h, INSTANCE, script)
}

/// [`bash_status`] with the request for `target` (path and query).
fn bash_status_of(h: &Harness, target: &str, script: &str) -> u16 {
    let port = h.addr.port();
    let prelude = format!(
        "GATE=127.0.0.1/{port}\n\
         REQ=$'GET {target} HTTP/1.1\\r\\nHost: x\\r\\nMetadata: true\\r\\nConnection: close\\r\\n\\r\\n'\n"
    );
    let out = Command::new("/usr/bin/bash")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("HTTP/1.1 "))
        .unwrap_or_else(|| panic!("no status in {stdout:?}"));
    line[9..12].parse().unwrap()
}

/// Wait (bash builtins only, bounded) until the last background job has
/// exec'd `sleep`.
const UNTIL_SLEEPING: &str = r#"for _ in {1..100000}; do IFS= read -r c < /proc/$!/comm && [[ $c == sleep ]] && break; done
"#;

/// Open the socket, optionally let another process share it, send the
/// request from bash itself, print the status line.
const SEND_AND_READ: &str = r#"printf '%s' "$REQ" >&3
IFS= read -r -t 5 status <&3 && printf '%s\n' "${status%$'\r'}"
"#;

#[test]
fn a_copied_binary_is_not_the_allowed_one() {
    if !privileged("a_copied_binary_is_not_the_allowed_one") {
        return;
    }
    let (h, dir) = curl_only_gate();
    let copy = curl_copy(&dir, "curl");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        h.curl(UID_A, INSTANCE).status,
        200,
        "the real curl is allowed"
    );
    let r = instance_with(&h, &copy);
    assert_eq!(r.status, 403, "a copy is another file: {}", r.body);
    assert_eq!(
        h.decision(&r.decision_id())["event"]["caller"]["exe"],
        copy.to_str().unwrap()
    );
}

#[test]
fn a_symlink_resolves_to_the_binary_that_really_runs() {
    if !privileged("a_symlink_resolves_to_the_binary_that_really_runs") {
        return;
    }
    // Allowed is /usr/bin/curl. A link named like it elsewhere runs the real
    // curl — the kernel reports the real file, so it is curl, and allowed;
    // a link *to* something else named `curl` is not.
    let (h, dir) = curl_only_gate();
    let link = dir.path().join("innocent");
    std::os::unix::fs::symlink("/usr/bin/curl", &link).unwrap();
    let r = instance_with(&h, &link);
    assert_eq!(r.status, 200, "{}", r.body);
    let audited = last_with_outcome(&h, "allow");
    assert_eq!(audited["event"]["caller"]["exe"], "/usr/bin/curl");
}

#[test]
fn a_bind_mount_over_the_allowed_path_is_not_the_allowed_binary() {
    if !privileged("a_bind_mount_over_the_allowed_path_is_not_the_allowed_binary") {
        return;
    }
    let (h, dir) = curl_only_gate();
    let copy = curl_copy(&dir, "not-curl");
    let url = format!("http://{}{INSTANCE}", h.addr);
    // In a private mount namespace, /usr/bin/curl *is* the copy: the path
    // matches, the file does not.
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args(["-m", "--propagation", "private", "/bin/sh", "-c"])
        .arg(format!(
            "mount --bind {} /usr/bin/curl && exec /usr/bin/curl -s -H 'Metadata: true' -w '\\n%{{http_code}}' '{url}'",
            copy.display()
        ))
        .stdout(Stdio::piped());
    let r = run_client(cmd);
    assert_eq!(r.status, 403, "{}", r.body);
    let record = h.decision(&r.decision_id());
    assert_eq!(
        record["event"]["caller"]["exe"], "/usr/bin/curl",
        "the path looks right"
    );
    assert_eq!(
        record["event"]["caller"]["exe_verified"], false,
        "but it is another file"
    );
}

#[test]
fn a_hash_principal_allows_the_same_content_anywhere() {
    if !privileged("a_hash_principal_allows_the_same_content_anywhere") {
        return;
    }
    let hash =
        gatehouse_sys::hash_file(&mut std::fs::File::open("/usr/bin/curl").unwrap()).unwrap();
    let h = Harness::start(&instance_policy(&format!("exe:sha256:{hash}")));
    let dir = scratch();
    let copy = curl_copy(&dir, "curl-copy");
    assert_eq!(instance_with(&h, &copy).status, 200);
    // Another binary is not the same content.
    assert_eq!(
        bash_status(&h, &format!("exec 3<>/dev/tcp/$GATE\n{SEND_AND_READ}")),
        403
    );
}

#[test]
fn connect_then_fork_does_not_borrow_the_childs_identity() {
    if !privileged("connect_then_fork_does_not_borrow_the_childs_identity") {
        return;
    }
    // Allowed: /usr/bin/sleep. A bash process connects, starts an allowed
    // `sleep` that inherits the socket, and sends the request itself.
    let h = Harness::start(&instance_policy("exe:/usr/bin/sleep"));
    // (The request waits until the child has exec'd sleep — until then it is
    // a bash process too, and bash holders are what the control allows.)
    let forked = format!(
        "exec 3<>/dev/tcp/$GATE\n/usr/bin/sleep 5 &\n{UNTIL_SLEEPING}{SEND_AND_READ}kill %1\n"
    );
    assert_eq!(
        bash_status(&h, &forked),
        403,
        "every holder must be an allowed process"
    );
    let denied = last_with_outcome(&h, "deny");
    assert!(
        denied["event"]["caller"]["holders"]
            .as_array()
            .unwrap()
            .len()
            >= 2,
        "{denied}"
    );

    // Control: the same with bash allowed and no child is allowed — the test
    // can fail the other way too.
    let h = Harness::start(&instance_policy("exe:/usr/bin/bash"));
    assert_eq!(
        bash_status(&h, &format!("exec 3<>/dev/tcp/$GATE\n{SEND_AND_READ}")),
        200
    );
    let status = bash_status(&h, &forked);
    assert_eq!(status, 403, "{:#}", h.audit().pop().unwrap());
}

/// A decision that reads more than the uid (here the caller's groups) finds
/// every holder, and holders of different uids are denied. (On uids alone the
/// socket's uid decides: `a_uid_only_token_policy_decides_on_the_socket_uid_…`.)
#[test]
fn holders_of_one_socket_with_different_uids_are_denied() {
    if !privileged("holders_of_one_socket_with_different_uids_are_denied") {
        return;
    }
    let h = Harness::start(&instance_policy("group:root"));
    assert_eq!(
        bash_status(&h, &format!("exec 3<>/dev/tcp/$GATE\n{SEND_AND_READ}")),
        200
    );
    // Root opens the socket and hands it (by fork+setuid) to another uid.
    let shared = format!(
        "exec 3<>/dev/tcp/$GATE\n/usr/bin/setpriv --reuid={UID_A} --regid={UID_A} --clear-groups /usr/bin/sleep 5 &\n{UNTIL_SLEEPING}{SEND_AND_READ}kill %1\n"
    );
    assert_eq!(bash_status(&h, &shared), 403);
    let denied = last_with_outcome(&h, "deny");
    let uids: Vec<u64> = denied["event"]["caller"]["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["uid"].as_u64().unwrap())
        .collect();
    assert!(
        uids.contains(&0) && uids.contains(&u64::from(UID_A)),
        "{denied}"
    );
}

const TOKEN: &str = concat!(
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com",
    "&client_id=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809"
);

fn token_policy(principal: &str) -> String {
    format!(
        r#"{IDENTITIES}
[[assignments]]
name = "token-readers"
principal = "{principal}"
role = "Token Reader"
identities = ["storage-writer"]
audiences = ["https://storage.azure.com"]
"#
    )
}

/// A policy on uids alone needs only the socket's uid (the kernel's record of who
/// created it): no process is looked for, so a socket root opened and handed to
/// another uid is root's. `--all-holders` restores the search, and the denial.
#[test]
fn a_uid_only_token_policy_decides_on_the_socket_uid_unless_all_holders_are_asked_for() {
    if !privileged(
        "a_uid_only_token_policy_decides_on_the_socket_uid_unless_all_holders_are_asked_for",
    ) {
        return;
    }
    let shared = format!(
        "exec 3<>/dev/tcp/$GATE\n/usr/bin/setpriv --reuid={UID_A} --regid={UID_A} --clear-groups /usr/bin/sleep 5 &\n{UNTIL_SLEEPING}{SEND_AND_READ}kill %1\n"
    );
    let h = Harness::start(&token_policy("uid:0"));
    assert_eq!(
        bash_status_of(
            &h,
            TOKEN,
            &format!("exec 3<>/dev/tcp/$GATE\n{SEND_AND_READ}")
        ),
        200,
        "{:#}",
        h.audit().pop().unwrap()
    );
    let line = h.audit().pop().unwrap();
    assert_eq!(line["event"]["caller"]["lookup"], "SocketOnly", "{line}");
    assert_eq!(line["event"]["caller"]["uid"], 0, "{line}");
    assert_eq!(
        line["event"]["caller"]["pid"],
        serde_json::Value::Null,
        "no process looked up: {line}"
    );
    assert_eq!(
        bash_status_of(&h, TOKEN, &shared),
        200,
        "{:#}",
        h.audit().pop().unwrap()
    );
    // Instance metadata a uid assignment allows: the same, no process looked
    // for (a trusted service could only add an allow).
    let h = Harness::start(&format!("{}{}", token_policy("uid:0"), "[[assignments]]\nname = \"i\"\nprincipal = \"uid:0\"\nrole = \"Instance Metadata Reader\"\n"));
    assert_eq!(
        bash_status(&h, &shared),
        200,
        "{:#}",
        h.audit().pop().unwrap()
    );
    let line = h.audit().pop().unwrap();
    assert_eq!(line["event"]["caller"]["lookup"], "SocketOnly", "{line}");

    let strict = Harness::start_opts(
        &token_policy("uid:0"),
        Opts {
            all_holders: true,
            ..Opts::default()
        },
    );
    assert_eq!(
        bash_status_of(
            &strict,
            TOKEN,
            &format!("exec 3<>/dev/tcp/$GATE\n{SEND_AND_READ}")
        ),
        200
    );
    assert_eq!(bash_status_of(&strict, TOKEN, &shared), 403);
    let denied = strict.audit().pop().unwrap();
    assert_eq!(
        denied["event"]["reason"], "the connection is held by processes of different users",
        "{denied}"
    );
}

/// `pass_fd.py` (shared with the sys crate's tests): a socket passed over `SCM_RIGHTS`.
const PASS_FD: &str = include_str!("../../sys/tests/common/pass_fd.py");

/// A `pass_fd.py` process, killed when dropped; its output read line by line.
struct Py {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Py {
    fn start(args: &[&str], uid: u32) -> Py {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(PASS_FD)
            .args(args)
            .current_dir("/")
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .uid(uid)
            .gid(uid)
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        Py {
            child,
            lines: std::io::BufReader::new(out).lines(),
        }
    }

    /// The next line (the script gives up within 20 s by itself).
    fn line(&mut self) -> String {
        match self.lines.next() {
            Some(Ok(l)) => l,
            other => panic!("pass_fd.py ended early: {other:?}"),
        }
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process of uid `from` connects to the gate and passes the socket over
/// `SCM_RIGHTS` to an unrelated process of uid `to` (closing its own copy
/// unless `keep`), which sends a request for `target`. Returns the status.
fn passed_socket_status(h: &Harness, target: &str, from: u32, to: u32, keep: bool) -> u16 {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "gatehouse-gate-pass-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nConnection: close\r\n\r\n");
    let mut recv = Py::start(&["recv", &name, &request], to);
    assert_eq!(recv.line(), "ready");
    let port = h.addr.port().to_string();
    let mode = if keep { "keep" } else { "close" };
    let mut send = Py::start(&["send", &name, &port, mode], from);
    assert_eq!(send.line(), "sent");
    assert_eq!(recv.line(), "received");
    let status = recv.line();
    assert!(status.starts_with("HTTP/1.1 "), "{status}");
    status[9..12].parse().unwrap()
}

/// A socket that a process of an allowed uid passes over `SCM_RIGHTS` to an
/// unrelated process of another uid, which then asks for a token. Under a
/// policy on uids alone the gate decides on the socket's uid (its creator's,
/// from the kernel) and looks for no process, so this is allowed, as `--help`
/// and docs/threats.md say; with `--all-holders` every process is searched
/// and the socket is denied, whether the sender kept its copy or not.
#[test]
fn a_socket_passed_to_another_uid_is_denied_with_all_holders() {
    if !privileged("a_socket_passed_to_another_uid_is_denied_with_all_holders") {
        return;
    }
    let policy = token_policy(&format!("uid:{UID_A}"));
    let h = Harness::start(&policy);
    let strict = Harness::start_opts(
        &policy,
        Opts {
            all_holders: true,
            ..Opts::default()
        },
    );
    for keep in [true, false] {
        assert_eq!(passed_socket_status(&h, TOKEN, UID_A, UID_B, keep), 200);
        let line = h.audit().pop().unwrap();
        assert_eq!(line["event"]["caller"]["lookup"], "SocketOnly", "{line}");
        assert_eq!(line["event"]["caller"]["uid"], UID_A, "{line}");

        assert_eq!(
            passed_socket_status(&strict, TOKEN, UID_A, UID_B, keep),
            403,
            "keep {keep}: {:#}",
            strict.audit().pop().unwrap()
        );
        let denied = strict.audit().pop().unwrap();
        assert_eq!(
            denied["event"]["reason"], "the connection is held by processes of different users",
            "{denied}"
        );
        let mut uids: Vec<u64> = denied["event"]["caller"]["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["uid"].as_u64().unwrap())
            .collect();
        uids.sort_unstable();
        let want: &[u32] = if keep { &[UID_A, UID_B] } else { &[UID_B] };
        assert_eq!(
            uids,
            want.iter().map(|u| u64::from(*u)).collect::<Vec<_>>(),
            "{denied}"
        );
    }
    // The receiver's own socket, for contrast: another uid's, denied either way.
    assert_eq!(passed_socket_status(&h, TOKEN, UID_B, UID_B, true), 403);
}

/// Answers as the kernel would for one caller, and notes what it was asked.
struct Scripted {
    uid: u32,
    /// The caller's process, when one is asked for.
    process: gatehouse_sys::ProcessFacts,
    asked: std::sync::Mutex<Vec<gatehouse_sys::Needs>>,
    /// Connections whose socket record was asked for at accept.
    accepted: std::sync::atomic::AtomicUsize,
}

impl gatehouse_gate::caller::CallerSource for Scripted {
    fn identify(
        &self,
        _src: std::net::SocketAddr,
        _dst: std::net::SocketAddr,
        needs: gatehouse_sys::Needs,
    ) -> Result<gatehouse_sys::CallerFacts, gatehouse_gate::caller::CallerError> {
        self.asked.lock().unwrap().push(needs);
        let holders = if needs.wants_process() {
            vec![self.process.clone()]
        } else {
            Vec::new()
        };
        Ok(gatehouse_sys::CallerFacts {
            socket_uid: self.uid,
            socket_inode: SCRIPTED_INODE,
            lookup: gatehouse_sys::LookupStats {
                strategy: if holders.is_empty() {
                    gatehouse_sys::Strategy::SocketOnly
                } else {
                    gatehouse_sys::Strategy::Recent
                },
                holder_search: gatehouse_sys::HolderSearch::Related,
                candidates: 1,
                micros: 1,
            },
            holders,
        })
    }

    fn at_accept(
        &self,
        _src: std::net::SocketAddr,
        _dst: std::net::SocketAddr,
    ) -> Option<gatehouse_sys::SocketOwner> {
        self.accepted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(gatehouse_sys::SocketOwner {
            uid: self.uid,
            inode: SCRIPTED_INODE,
            cookie: 7,
        })
    }
}

const SCRIPTED_INODE: u64 = 1;

/// A process of `uid`; the Azure Linux agent (a trusted service) if `agent`.
fn scripted(uid: u32, agent: bool) -> Arc<Scripted> {
    let exe = if agent {
        "/usr/bin/python3"
    } else {
        "/usr/bin/app"
    };
    Arc::new(Scripted {
        uid,
        process: gatehouse_sys::ProcessFacts {
            pid: 4242,
            ruid: uid,
            euid: uid,
            rgid: uid,
            egid: uid,
            groups: Vec::new(),
            exe_path: Some(exe.into()),
            exe_file: Some(gatehouse_sys::FileId {
                dev: 1,
                ino: 2,
                size: 3,
                mtime_ns: 4,
                ctime_ns: 5,
                uid: 0,
            }),
            exe_path_verified: true,
            exe_sha256: None,
            cgroup: Some("/system.slice/walinuxagent.service".into()),
            system_unit: agent.then(|| "walinuxagent.service".into()),
            user_unit: None,
            container_id: None,
            comm: Some("python3".into()),
        },
        asked: std::sync::Mutex::new(Vec::new()),
        accepted: std::sync::atomic::AtomicUsize::new(0),
    })
}

/// Instance metadata under a policy on uids alone: decided on the socket's uid
/// with no process looked for when a uid assignment allows; the processes are
/// looked for (and a trusted service still allowed) only when it does not.
/// Tokens never look (trusted services get no tokens). The uid comes from
/// the socket's record taken at accept: only process lookups reach
/// `identify`.
#[test]
fn a_uid_only_policy_looks_for_processes_only_where_a_trusted_service_could_change_the_answer() {
    let policy = format!(
        "{}[[assignments]]\nname = \"i\"\nprincipal = \"uid:{UID_A}\"\nrole = \"Instance Metadata Reader\"\n",
        token_policy(&format!("uid:{UID_A}"))
    );
    let me = gatehouse_sys::effective_uid();
    // (caller uid, is the agent, target, status, processes asked for per
    // lookup after the socket's record at accept)
    let rows: &[(u32, bool, &str, u16, &[bool])] = &[
        (UID_A, false, INSTANCE, 200, &[]),
        (UID_A, false, TOKEN, 200, &[]),
        (0, true, INSTANCE, 200, &[true]),
        (0, true, TOKEN, 403, &[]),
        (UID_B, false, INSTANCE, 403, &[true]),
        (UID_B, false, TOKEN, 403, &[]),
    ];
    for (i, (uid, agent, target, status, asked)) in rows.iter().enumerate() {
        let callers = scripted(*uid, *agent);
        let h = Harness::start_opts(
            &policy,
            Opts {
                callers: Some(callers.clone()),
                ..Opts::default()
            },
        );
        let reply = h.curl(me, target);
        assert_eq!(reply.status, *status, "row {i}: {}", reply.body);
        let got: Vec<bool> = callers
            .asked
            .lock()
            .unwrap()
            .iter()
            .map(|n| n.wants_process())
            .collect();
        assert_eq!(got, *asked, "row {i}");
        assert_eq!(
            callers.accepted.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "row {i}: one connection, its socket asked for once"
        );
        let second = callers.asked.lock().unwrap().first().copied();
        if let Some(n) = second {
            assert!(n.exe && n.cgroup && n.all_holders, "row {i}: {n:?}");
        }
        let line = h.audit().pop().unwrap();
        assert_eq!(line["event"]["caller"]["uid"], *uid, "row {i}: {line}");
        let trusted = &line["event"]["decision_detail"]["trusted_service"];
        assert_eq!(
            trusted.as_str(),
            (*agent && *target == INSTANCE).then_some("azure-linux-agent"),
            "row {i}: {line}"
        );
    }
}

/// The cgroup v2 hierarchy, where a test may make cgroups of its own.
fn cgroup2_root() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("cgroup2"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(std::path::PathBuf::from)
}

struct CgroupDirs(Vec<std::path::PathBuf>);
impl Drop for CgroupDirs {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn a_user_unit_named_like_a_system_unit_is_not_that_unit() {
    if !privileged("a_user_unit_named_like_a_system_unit_is_not_that_unit") {
        return;
    }
    let Some(root) = cgroup2_root() else {
        panic!("no cgroup2 hierarchy mounted: cannot test unit principals");
    };
    let tag = std::process::id();
    let user_unit = format!(
        "user.slice/user-{UID_A}.slice/user@{UID_A}.service/app.slice/gh-test-{tag}.service"
    );
    let system_unit = format!("system.slice/gh-test-{tag}.service");
    let mut made = CgroupDirs(Vec::new());
    for path in [&user_unit, &system_unit] {
        let mut p = root.clone();
        for part in path.split('/') {
            p.push(part);
            if std::fs::create_dir(&p).is_ok() {
                made.0.push(p.clone());
            }
        }
    }
    let h = Harness::start(&instance_policy(&format!("unit:gh-test-{tag}.service")));
    let script = |cg: &str| {
        format!(
            "echo $$ > {}/{cg}/cgroup.procs || exit 1\nexec 3<>/dev/tcp/$GATE\n{SEND_AND_READ}",
            root.display()
        )
    };
    assert_eq!(
        bash_status(&h, &script(&system_unit)),
        200,
        "the system unit is allowed"
    );
    assert_eq!(
        bash_status(&h, &script(&user_unit)),
        403,
        "a user unit of that name is not"
    );
}
