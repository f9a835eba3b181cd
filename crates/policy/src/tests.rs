//! Table tests of parsing and decisions, one line per case.

use crate::*;

const GUID_SYS: &str = "0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607";
const GUID_C1: &str = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809";
const GUID_O1: &str = "3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a";
const GUID_C2: &str = "4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb";
const HASH: &str = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
const CTR: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn policy(body: &str) -> Policy {
    let text = format!(
        r#"version = 1
[identities.system]
kind = "system"
object_id = "{GUID_SYS}"
[identities.storage-writer]
kind = "user"
client_id = "{GUID_C1}"
object_id = "{GUID_O1}"
resource_id = "/subscriptions/S/resourceGroups/R/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-writer"
[identities.other]
kind = "user"
client_id = "{GUID_C2}"
{body}"#
    );
    match parse("policy.toml", &text) {
        Ok(p) => p,
        Err(d) => panic!("policy did not load:\n{d}"),
    }
}

fn assign(name: &str, principal: &str, role: &str) -> String {
    format!(
        "[[assignments]]\nname = \"{name}\"\nprincipal = \"{principal}\"\nrole = \"{role}\"\nidentities = [\"*\"]\naudiences = [\"*\"]\n"
    )
}

fn user(uid: u32) -> Caller {
    Caller {
        uid: Some(uid),
        user: Some(format!("u{uid}")),
        gids: vec![uid, 100],
        group_names: vec![format!("u{uid}"), "users".into()],
        processes: vec![proc_(uid)],
    }
}

fn proc_(uid: u32) -> Process {
    Process {
        pid: 4242,
        uid,
        exe_path: Some("/usr/bin/app".into()),
        exe_path_verified: true,
        exe_sha256: Some(HASH.to_ascii_uppercase()),
        unit: Some("app.service".into()),
        cgroup: Some("/system.slice/app.service".into()),
        container: Some(CTR.into()),
    }
}

fn with(mut c: Caller, f: impl Fn(&mut Process)) -> Caller {
    c.processes.iter_mut().for_each(f);
    c
}

fn token<'a>(identity: &'a str, audience: &'a str) -> Request<'a> {
    Request { action: Action::TokenRead, identity: Some(identity), audience: Some(audience) }
}

fn act(action: Action) -> Request<'static> {
    Request { action, identity: None, audience: None }
}

macro_rules! allow {
    ($p:expr, $c:expr, $r:expr) => {{
        let _ = allow!(@decide $p, $c, $r);
    }};
    (@decide $p:expr, $c:expr, $r:expr) => {
        match (&$p, &$c, &$r) {
            (p, c, r) => {
                let d = p.decide(c, r);
                assert!(d.is_allowed(), "expected allow, got {:?} for {:?}", d, r);
                assert_eq!(d, p.decide_naive(c, r));
                d
            }
        }
    };
    ($p:expr, $c:expr, $r:expr, [$($n:expr),*]) => {{
        let d = allow!(@decide $p, $c, $r);
        let want: Vec<String> = vec![$($n.to_string()),*];
        assert_eq!(d.decided_by(), want.as_slice());
    }};
}

macro_rules! deny {
    ($p:expr, $c:expr, $r:expr) => {
        deny!($p, $c, $r, Reason::NoMatchingAssignment)
    };
    ($p:expr, $c:expr, $r:expr, $reason:expr) => {
        match (&$p, &$c, &$r) {
            (p, c, r) => {
                let d = p.decide(c, r);
                assert!(!d.is_allowed(), "expected deny, got {:?} for {:?}", d, r);
                assert_eq!(d.reason(), $reason);
                assert_eq!(d, p.decide_naive(c, r));
            }
        }
    };
}

macro_rules! syntax {
    ($text:expr, $at:expr, $msg:expr) => {{
        let diags = match parse("p.toml", $text) {
            Ok(_) => panic!("expected an error at {} containing {:?}", $at, $msg),
            Err(d) => d,
        };
        let found = diags
            .iter()
            .any(|d| format!("{}:{}", d.line, d.column) == $at && d.message.contains($msg));
        assert!(found, "no error at {} containing {:?} in:\n{}", $at, $msg, diags);
        diags
    }};
}

#[test]
fn every_principal_kind() {
    let kinds = [
        "uid:1001", "user:u1001", "gid:1001", "group:users", "exe:/usr/bin/app",
        &format!("exe:sha256:{HASH}"), "unit:app.service", "cgroup:/system.slice/app.service",
        "cgroup:/system.slice/*", "container:0123456789ab", "everyone",
    ];
    for k in kinds {
        let p = policy(&assign("a", k, "Instance Metadata Reader"));
        allow!(p, user(1001), act(Action::InstanceRead), ["a"]);
        deny!(p, user(1001), act(Action::TokenRead));
        if k != "everyone" && k != "group:users" {
            let stranger = with(user(1002), |p| {
                p.exe_path = Some("/usr/bin/other".into());
                p.exe_sha256 = Some("00".into());
                p.unit = Some("other.service".into());
                p.cgroup = Some("/user.slice/x".into());
                p.container = Some("ff".repeat(32));
            });
            deny!(p, stranger, act(Action::InstanceRead));
        }
    }
}

#[test]
fn exe_path_needs_verification() {
    let p = policy(&assign("a", "exe:/usr/bin/app", "Metadata Owner"));
    allow!(p, user(1), act(Action::VersionsRead));
    deny!(p, with(user(1), |p| p.exe_path_verified = false), act(Action::VersionsRead));
}

#[test]
fn cgroup_subtree_is_component_wise() {
    let p = policy(&assign("a", "cgroup:/system.slice/app.service/*", "Metadata Owner"));
    allow!(p, user(1), act(Action::InstanceRead));
    allow!(p, with(user(1), |p| p.cgroup = Some("/system.slice/app.service/sub".into())), act(Action::InstanceRead));
    deny!(p, with(user(1), |p| p.cgroup = Some("/system.slice/app.service2".into())), act(Action::InstanceRead));
}

#[test]
fn all_holders_must_match() {
    let p = policy(&assign("a", "unit:app.service", "Metadata Owner"));
    let mut forked = user(1);
    forked.processes.push(Process { unit: Some("evil.service".into()), ..proc_(1) });
    deny!(p, forked, act(Action::InstanceRead));
    let mut none = user(1);
    none.processes.clear();
    deny!(p, none, act(Action::InstanceRead));
    let mut both = user(1);
    both.processes.push(proc_(1));
    allow!(p, both, act(Action::InstanceRead));
}

#[test]
fn ambiguous_and_unknown_callers() {
    let p = policy(&assign("a", "everyone", "Metadata Owner"));
    let mut handed = user(1);
    handed.processes.push(proc_(2));
    deny!(p, handed, act(Action::InstanceRead), Reason::AmbiguousCaller);
    deny!(p, Caller::default(), act(Action::InstanceRead), Reason::CallerUnknown);
}

#[test]
fn role_wildcards_and_not_actions() {
    let body = r#"
[[roles]]
name = "Readers"
actions = ["gatehouse/*/READ"]
not_actions = ["Gatehouse/token/*"]
"#;
    let p = policy(&format!("{body}{}", assign("a", "uid:5", "readers")));
    allow!(p, user(5), act(Action::InstanceRead));
    allow!(p, user(5), act(Action::ScheduledEventsRead));
    deny!(p, user(5), act(Action::ScheduledEventsApprove));
    deny!(p, user(5), token("system", "https://storage.azure.com"));
}

#[test]
fn token_scope_identities_and_audiences() {
    let body = r#"
[[assignments]]
name = "web-storage"
principal = "user:u33"
role = "token reader"
identities = ["storage-writer"]
audiences = ["https://Storage.Azure.com/", "https://*.vault.azure.net"]
"#;
    let p = policy(body);
    let aud = |s: &str| normalise_audience(s).unwrap();
    for spelling in ["https://storage.azure.com", "https://storage.azure.com/", "https://STORAGE.azure.com/.default"] {
        let a = aud(spelling);
        allow!(p, user(33), token("storage-writer", &a), ["web-storage"]);
    }
    allow!(p, user(33), token("storage-writer", &aud("https://kv1.vault.azure.net")));
    deny!(p, user(33), token("storage-writer", &aud("https://management.azure.com")));
    deny!(p, user(33), token("system", &aud("https://storage.azure.com")));
    deny!(p, user(33), Request { action: Action::TokenRead, identity: None, audience: Some("https://storage.azure.com") });
    deny!(p, user(33), Request { action: Action::TokenRead, identity: Some("storage-writer"), audience: None });
    deny!(p, user(34), token("storage-writer", &aud("https://storage.azure.com")));
}

#[test]
fn allowed_names_every_assignment_sorted() {
    let body = format!("{}{}{}", assign("zeta", "uid:7", "Token Reader"), assign("alpha", "group:users", "Metadata Owner"), assign("mid", "uid:8", "Token Reader"));
    let p = policy(&body);
    allow!(p, user(7), token("system", "x"), ["alpha", "zeta"]);
}

#[test]
fn deny_assignments_win() {
    let body = format!(
        "{}{}",
        assign("all", "everyone", "Metadata Owner"),
        r#"
[[deny_assignments]]
name = "no-tokens-outside-app"
principals = ["everyone"]
excluded_principals = ["unit:app.service"]
actions = ["Gatehouse/token/read"]
"#
    );
    let p = policy(&body);
    allow!(p, user(1), token("system", "x"));
    let other = with(user(1), |p| p.unit = Some("cron.service".into()));
    deny!(p, other, token("system", "x"), Reason::ExplicitDeny);
    allow!(p, other, act(Action::InstanceRead));
    let mut forked = user(1);
    forked.processes.push(Process { unit: Some("cron.service".into()), ..proc_(1) });
    deny!(p, forked, token("system", "x"), Reason::ExplicitDeny);
}

#[test]
fn identity_resolution() {
    let p = policy("");
    let name = |s: Selector<'_>| p.resolve_identity(&s).map(|i| i.name.clone());
    assert_eq!(name(Selector::None), Ok("system".into()));
    assert_eq!(name(Selector::ClientId(&GUID_C1.to_uppercase())), Ok("storage-writer".into()));
    assert_eq!(name(Selector::ObjectId(GUID_O1)), Ok("storage-writer".into()));
    assert_eq!(name(Selector::ObjectId(GUID_SYS)), Ok("system".into()));
    assert_eq!(name(Selector::ResourceId("/SUBSCRIPTIONS/s/resourcegroups/r/providers/microsoft.managedidentity/userassignedidentities/storage-writer")), Ok("storage-writer".into()));
    assert_eq!(name(Selector::ClientId(GUID_SYS)), Err(ResolveError::NotFound));

    let only_users = format!("version = 1\n[identities.a]\nkind = \"user\"\nclient_id = \"{GUID_C1}\"\n[identities.b]\nkind = \"user\"\nclient_id = \"{GUID_C2}\"\n");
    let p2 = parse("p", &only_users).unwrap();
    assert_eq!(p2.resolve_identity(&Selector::None).err(), Some(ResolveError::Ambiguous));
    let one_user = format!("version = 1\n[identities.a]\nkind = \"user\"\nclient_id = \"{GUID_C1}\"\n");
    let p3 = parse("p", &one_user).unwrap();
    assert_eq!(p3.resolve_identity(&Selector::None).map(|i| i.name.as_str()), Ok("a"));
    let p4 = parse("p", "version = 1\n").unwrap();
    assert_eq!(p4.resolve_identity(&Selector::None).err(), Some(ResolveError::NotFound));
}

#[test]
fn needs_reflects_principals() {
    let p = policy(&format!("{}{}", assign("a", "unit:x.service", "Token Reader"), assign("b", "group:g", "Token Reader")));
    let n = p.needs();
    assert!(n.unit && n.groups);
    assert!(!n.exe_hash && !n.exe_path && !n.cgroup && !n.container && !n.user_name);
}

#[test]
fn hash_is_of_source_bytes() {
    let p = parse("p", "version = 1\n").unwrap();
    let want = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"version = 1\n"));
    assert_eq!(p.hash(), want);
    assert_eq!(p.hash().len(), 64);
    let q = parse("p", "version = 1 \n").unwrap();
    assert_ne!(p.hash(), q.hash());
}

#[test]
fn syntax_errors() {
    syntax!("version = 1\nroles = [", "2:10", "invalid toml");
    syntax!("version = 2\n", "1:11", "unsupported policy version `2`");
    syntax!("", "1:1", "missing `version`");
    syntax!("version = 1\nfoo = 1\n", "2:1", "unknown key `foo`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Tokn Reader\"\n", "5:8", "unknown role `Tokn Reader`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:x\"\nrole = \"Metadata Owner\"\n", "4:13", "invalid uid `x`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"unit:nginx\"\nrole = \"Metadata Owner\"\n", "4:13", "has no `.service`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"exe:bin/x\"\nrole = \"Metadata Owner\"\n", "4:13", "not absolute");
    syntax!("version = 1\n[[roles]]\nname = \"R\"\nactions = [\"Gatehouse/tokn/read\"]\n", "4:12", "matches no known action");
    syntax!("version = 1\n[[roles]]\nname = \"token reader\"\nactions = [\"Gatehouse/*\"]\n", "3:8", "redefines the built-in role");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Token Reader\"\nidentities = [\"nope\"]\naudiences = [\"*\"]\n", "6:15", "unknown identity `nope`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Token Reader\"\n", "2:1", "has no `identities`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Metadata Owner\"\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:2\"\nrole = \"Metadata Owner\"\n", "7:8", "duplicate assignment name `a`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Metadata Owner\"\ncondition = \"true\"\n", "6:13", "conditions are not supported yet");
    syntax!("version = 1\n[identities.x]\nkind = \"user\"\n", "2:1", "needs `client_id` or `object_id`");
    syntax!("version = 1\n[identities.x]\nkind = \"system\"\nclient_id = \"nope\"\n", "4:13", "is not a guid");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Token Reader\"\nidentities = [\"*\"]\naudiences = [\"bad aud\"]\n", "7:14", "invalid audience");
    syntax!("version = 1\n[[assignments]]\nname = 5\nprincipal = \"uid:1\"\nrole = \"Metadata Owner\"\n", "3:8", "must be a string, found integer");
}

#[test]
fn all_errors_at_once() {
    let text = "version = 1\n\
[[roles]]\n\
name = \"Custom\"\n\
actions = [\"Gatehouse/instnce/read\"]\n\
[[assignments]]\n\
name = \"a\"\n\
principal = \"container:abc\"\n\
role = \"Tokn Reader\"\n\
colour = \"blue\"\n";
    let d = match parse("policy.toml", text) {
        Err(d) => d,
        Ok(_) => panic!("should fail"),
    };
    let at: Vec<String> = d.iter().map(|d| format!("{}:{}", d.line, d.column)).collect();
    assert_eq!(at, ["4:12", "7:13", "8:8", "9:1"], "{d}");
    assert_eq!(d.error_count(), 4);
    let rendered = d.to_string();
    assert!(rendered.contains("policy.toml:8:8: error: unknown role `Tokn Reader`"), "{rendered}");
    assert!(rendered.contains("8 | role = \"Tokn Reader\"\n  |        ^^^^^^^^^^^^^"), "{rendered}");
    assert!(rendered.contains("help: did you mean `Token Reader`?"), "{rendered}");
    assert!(rendered.contains("did you mean `Gatehouse/instance/read`?"), "{rendered}");
    assert!(rendered.ends_with("4 errors"), "{rendered}");
}

#[test]
fn reason_text_is_short_and_generic() {
    for r in [Reason::Allowed, Reason::NoMatchingAssignment, Reason::CallerUnknown, Reason::AmbiguousCaller, Reason::ExplicitDeny] {
        let s = r.to_string();
        assert!(!s.is_empty() && s.len() < 80);
    }
}

#[test]
fn action_strings_round_trip() {
    for a in Action::ALL {
        assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        assert_eq!(a.as_str().to_uppercase().parse::<Action>(), Ok(a));
    }
    assert!("Gatehouse/nothing".parse::<Action>().is_err());
}
