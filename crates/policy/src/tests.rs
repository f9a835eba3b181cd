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
        exe_owner_uid: Some(0),
    }
}

fn with(mut c: Caller, f: impl Fn(&mut Process)) -> Caller {
    c.processes.iter_mut().for_each(f);
    c
}

fn token<'a>(identity: &'a str, audience: &'a str) -> Request<'a> {
    Request {
        action: Action::TokenRead,
        identity: Some(identity),
        audience: Some(audience),
        ..Request::new(Action::TokenRead)
    }
}

fn act(action: Action) -> Request<'static> {
    Request::new(action)
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
        assert!(
            found,
            "no error at {} containing {:?} in:\n{}",
            $at, $msg, diags
        );
        diags
    }};
}

#[test]
fn every_principal_kind() {
    let kinds = [
        "uid:1001",
        "user:u1001",
        "gid:1001",
        "group:users",
        "exe:/usr/bin/app",
        &format!("exe:sha256:{HASH}"),
        "unit:app.service",
        "cgroup:/system.slice/app.service",
        "cgroup:/system.slice/*",
        "container:0123456789ab",
        "everyone",
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
    deny!(
        p,
        with(user(1), |p| p.exe_path_verified = false),
        act(Action::VersionsRead)
    );
}

#[test]
fn cgroup_subtree_is_component_wise() {
    let p = policy(&assign(
        "a",
        "cgroup:/system.slice/app.service/*",
        "Metadata Owner",
    ));
    allow!(p, user(1), act(Action::InstanceRead));
    allow!(
        p,
        with(user(1), |p| p.cgroup =
            Some("/system.slice/app.service/sub".into())),
        act(Action::InstanceRead)
    );
    deny!(
        p,
        with(user(1), |p| p.cgroup =
            Some("/system.slice/app.service2".into())),
        act(Action::InstanceRead)
    );
}

#[test]
fn all_holders_must_match() {
    let p = policy(&assign("a", "unit:app.service", "Metadata Owner"));
    let mut forked = user(1);
    forked.processes.push(Process {
        unit: Some("evil.service".into()),
        ..proc_(1)
    });
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
    deny!(
        p,
        handed,
        act(Action::InstanceRead),
        Reason::AmbiguousCaller
    );
    deny!(
        p,
        Caller::default(),
        act(Action::InstanceRead),
        Reason::CallerUnknown
    );
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
    for spelling in [
        "https://storage.azure.com",
        "https://storage.azure.com/",
        "https://STORAGE.azure.com/.default",
    ] {
        let a = aud(spelling);
        allow!(p, user(33), token("storage-writer", &a), ["web-storage"]);
    }
    allow!(
        p,
        user(33),
        token("storage-writer", &aud("https://kv1.vault.azure.net"))
    );
    deny!(
        p,
        user(33),
        token("storage-writer", &aud("https://management.azure.com"))
    );
    deny!(
        p,
        user(33),
        token("system", &aud("https://storage.azure.com"))
    );
    deny!(
        p,
        user(33),
        Request {
            action: Action::TokenRead,
            identity: None,
            audience: Some("https://storage.azure.com"),
            ..Request::new(Action::TokenRead)
        }
    );
    deny!(
        p,
        user(33),
        Request {
            action: Action::TokenRead,
            identity: Some("storage-writer"),
            audience: None,
            ..Request::new(Action::TokenRead)
        }
    );
    deny!(
        p,
        user(34),
        token("storage-writer", &aud("https://storage.azure.com"))
    );
}

#[test]
fn allowed_names_every_assignment_sorted() {
    let body = format!(
        "{}{}{}",
        assign("zeta", "uid:7", "Token Reader"),
        assign("alpha", "group:users", "Metadata Owner"),
        assign("mid", "uid:8", "Token Reader")
    );
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
    forked.processes.push(Process {
        unit: Some("cron.service".into()),
        ..proc_(1)
    });
    deny!(p, forked, token("system", "x"), Reason::ExplicitDeny);
}

#[test]
fn identity_resolution() {
    let p = policy("");
    let name = |s: Selector<'_>| p.resolve_identity(&s).map(|i| i.name.clone());
    assert_eq!(name(Selector::None), Ok("system".into()));
    assert_eq!(
        name(Selector::ClientId(&GUID_C1.to_uppercase())),
        Ok("storage-writer".into())
    );
    assert_eq!(
        name(Selector::ObjectId(GUID_O1)),
        Ok("storage-writer".into())
    );
    assert_eq!(name(Selector::ObjectId(GUID_SYS)), Ok("system".into()));
    assert_eq!(name(Selector::ResourceId("/SUBSCRIPTIONS/s/resourcegroups/r/providers/microsoft.managedidentity/userassignedidentities/storage-writer")), Ok("storage-writer".into()));
    assert_eq!(
        name(Selector::ClientId(GUID_SYS)),
        Err(ResolveError::NotFound)
    );

    let only_users = format!("version = 1\n[identities.a]\nkind = \"user\"\nclient_id = \"{GUID_C1}\"\n[identities.b]\nkind = \"user\"\nclient_id = \"{GUID_C2}\"\n");
    let p2 = parse("p", &only_users).unwrap();
    assert_eq!(
        p2.resolve_identity(&Selector::None).err(),
        Some(ResolveError::Ambiguous)
    );
    let one_user =
        format!("version = 1\n[identities.a]\nkind = \"user\"\nclient_id = \"{GUID_C1}\"\n");
    let p3 = parse("p", &one_user).unwrap();
    assert_eq!(
        p3.resolve_identity(&Selector::None)
            .map(|i| i.name.as_str()),
        Ok("a")
    );
    let p4 = parse("p", "version = 1\n").unwrap();
    assert_eq!(
        p4.resolve_identity(&Selector::None).err(),
        Some(ResolveError::NotFound)
    );
}

#[test]
fn needs_reflects_principals() {
    let p = policy(&format!(
        "{}{}",
        assign("a", "unit:x.service", "Token Reader"),
        assign("b", "group:g", "Token Reader")
    ));
    let n = p.needs();
    assert!(n.unit && n.groups);
    // Trusted services (on by default) read the unit and executable.
    assert!(n.exe_path);
    assert!(!n.exe_hash && !n.cgroup && !n.container && !n.user_name);
}

#[test]
fn needs_for_an_action_leave_out_trusted_services_where_they_cannot_help() {
    let uid_only = policy(&assign("a", "uid:1000", "Token Reader"));
    let rows: &[(Action, bool)] = &[
        (Action::TokenRead, false),
        (Action::IdentityInfoRead, false),
        (Action::AttestedDocumentRead, false),
        (Action::InstanceRead, true),
        (Action::VersionsRead, true),
        (Action::ScheduledEventsRead, true),
        // Approving needs `trusted_services_approve`, off by default.
        (Action::ScheduledEventsApprove, false),
    ];
    for (action, trusted) in rows {
        let n = uid_only.needs_for(*action);
        assert_eq!((n.exe_path, n.unit), (*trusted, *trusted), "{action:?}");
        assert!(
            !n.groups && !n.exe_hash && !n.cgroup && !n.container,
            "{action:?}"
        );
    }
    assert_eq!(
        uid_only.needs_for(Action::TokenRead),
        Needs::default(),
        "a uid-only policy needs nothing for a token"
    );
    let off = parse("p", "version = 1\ntrusted_services = false\n").unwrap();
    assert_eq!(off.needs_for(Action::InstanceRead), Needs::default());
    let groups = policy(&assign("a", "group:g", "Token Reader"));
    assert!(groups.needs_for(Action::TokenRead).groups);
}

/// Deciding on what the assignments read first, and on the processes only when
/// `needs_after` asks for them, reaches the decision the full facts give (callers
/// whose processes are all of the socket's uid; a shared socket is the uid-only
/// path's documented exception), and looks at processes only when a trusted
/// service might change a denial.
#[test]
fn deciding_on_the_assignments_needs_first_reaches_the_full_decision() {
    let agent = with(user(0), |p| {
        p.exe_path = Some("/usr/bin/python3".into());
        p.unit = Some("walinuxagent.service".into());
    });
    let uid_only = policy(&format!(
        "{}{}",
        assign("t", "uid:1000", "Token Reader"),
        assign("i", "uid:1000", "Instance Metadata Reader")
    ));
    let by_exe = policy(&assign("i", "exe:/usr/bin/app", "Instance Metadata Reader"));
    let no_trusted = parse(
        "p",
        &format!(
            "version = 1\ntrusted_services = false\n{}",
            assign("i", "uid:1000", "Instance Metadata Reader")
        ),
    )
    .unwrap();
    // (policy, caller, action, second look wanted, allowed)
    let rows: &[(&Policy, &Caller, Action, bool, bool)] = &[
        (&uid_only, &user(1000), Action::InstanceRead, false, true),
        (&uid_only, &user(1000), Action::TokenRead, false, true),
        (&uid_only, &user(1001), Action::InstanceRead, true, false),
        (&uid_only, &user(1001), Action::TokenRead, false, false),
        (&uid_only, &agent, Action::InstanceRead, true, true),
        (
            &uid_only,
            &agent,
            Action::ScheduledEventsApprove,
            false,
            false,
        ),
        (&uid_only, &agent, Action::TokenRead, false, false),
        (&by_exe, &user(1001), Action::InstanceRead, false, true),
        (&by_exe, &agent, Action::InstanceRead, false, true),
        (&by_exe, &agent, Action::TokenRead, false, false),
        (&no_trusted, &agent, Action::InstanceRead, false, false),
        (&no_trusted, &user(1000), Action::InstanceRead, false, true),
    ];
    for (i, (p, caller, action, second, allowed)) in rows.iter().enumerate() {
        let request = if *action == Action::TokenRead {
            token("storage-writer", "https://storage.azure.com")
        } else {
            act(*action)
        };
        let full = p.decide(caller, &request);
        let first_caller = if p.needs_of_assignments() == Needs::default() {
            Caller {
                processes: Vec::new(),
                ..(*caller).clone()
            }
        } else {
            (*caller).clone()
        };
        let first = p.decide(&first_caller, &request);
        let again = p.needs_after(*action, &first);
        assert_eq!(again.is_some(), *second, "row {i}: {first:?}");
        let decided = match again {
            Some(n) => {
                assert_eq!(n, p.needs_for(*action), "row {i}");
                p.decide(caller, &request)
            }
            None => first,
        };
        assert_eq!(
            (decided.is_allowed(), full.is_allowed()),
            (*allowed, *allowed),
            "row {i}: {decided:?} / {full:?}"
        );
    }
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
    syntax!(
        "version = 1\n[[roles]]\nname = \"R\"\nactions = [\"Gatehouse/tokn/read\"]\n",
        "4:12",
        "matches no known action"
    );
    syntax!(
        "version = 1\n[[roles]]\nname = \"token reader\"\nactions = [\"Gatehouse/*\"]\n",
        "3:8",
        "redefines the built-in role"
    );
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Token Reader\"\nidentities = [\"nope\"]\naudiences = [\"*\"]\n", "6:15", "unknown identity `nope`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Token Reader\"\n", "2:1", "has no `identities`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Metadata Owner\"\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:2\"\nrole = \"Metadata Owner\"\n", "7:8", "duplicate assignment name `a`");
    syntax!("version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Instance Metadata Reader\"\ncondition = \"true\"\n", "6:18", "condition: expected an operator");
    syntax!(
        "version = 1\n[identities.x]\nkind = \"user\"\n",
        "2:1",
        "needs `client_id` or `object_id`"
    );
    syntax!(
        "version = 1\n[identities.x]\nkind = \"system\"\nclient_id = \"nope\"\n",
        "4:13",
        "is not a guid"
    );
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
    let at: Vec<String> = d
        .iter()
        .map(|d| format!("{}:{}", d.line, d.column))
        .collect();
    assert_eq!(at, ["4:12", "7:13", "8:8", "9:1"], "{d}");
    assert_eq!(d.error_count(), 4);
    let rendered = d.to_string();
    assert!(
        rendered.contains("policy.toml:8:8: error: unknown role `Tokn Reader`"),
        "{rendered}"
    );
    assert!(
        rendered.contains("8 | role = \"Tokn Reader\"\n  |        ^^^^^^^^^^^^^"),
        "{rendered}"
    );
    assert!(
        rendered.contains("help: did you mean `Token Reader`?"),
        "{rendered}"
    );
    assert!(
        rendered.contains("did you mean `Gatehouse/instance/read`?"),
        "{rendered}"
    );
    assert!(rendered.ends_with("4 errors"), "{rendered}");
}

#[test]
fn reason_text_is_short_and_generic() {
    for r in [
        Reason::Allowed,
        Reason::NoMatchingAssignment,
        Reason::CallerUnknown,
        Reason::AmbiguousCaller,
        Reason::ExplicitDeny,
    ] {
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

fn cond(name: &str, principal: &str, role: &str, condition: &str) -> String {
    format!(
        "{}condition = '''{condition}'''\n",
        assign(name, principal, role)
    )
}

#[test]
fn conditions_filter_their_assignment() {
    let p = policy(&cond(
        "a",
        "everyone",
        "Metadata Owner",
        "@Principal[unit] StringEquals 'app.service' AND @Principal[exeOwnerUid] NumericEquals 0",
    ));
    allow!(p, user(1), act(Action::InstanceRead), ["a"]);
    let other = with(user(1), |p| p.unit = Some("x.service".into()));
    deny!(p, other, act(Action::InstanceRead));
    let d = p.decide(
        &with(user(1), |p| p.unit = None),
        &act(Action::InstanceRead),
    );
    assert!(!d.is_allowed());
    assert_eq!(d.absent_attribute(), Some("@Principal[unit]"));
    assert!(
        d.summary().contains("`@Principal[unit]` absent"),
        "{}",
        d.summary()
    );
}

#[test]
fn request_resource_and_environment_attributes() {
    let text = format!(
        "version = 1\n[identities.w]\nkind = \"user\"\nclient_id = \"{GUID_C1}\"\n[identities.w.tags]\nenv = \"prod\"\n[identities.v]\nkind = \"user\"\nclient_id = \"{GUID_C2}\"\n{}",
        cond("tok", "uid:1", "Token Reader", "@Resource[tags:env<$key_case_sensitive$>] StringEquals 'prod' AND @Request[selector] StringEquals 'client_id' AND @Environment[UtcNow] DateTimeLessThan '2030-01-01T00:00:00Z'")
    );
    let p = parse("p", &text).unwrap();
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_750_000_000);
    let base = Request::new(Action::TokenRead)
        .audience(Some("x"))
        .selector(SelectorKind::ClientId)
        .at(now);
    allow!(p, user(1), base.identity(Some("w")));
    deny!(p, user(1), base.identity(Some("v")));
    deny!(
        p,
        user(1),
        base.identity(Some("w")).selector(SelectorKind::None)
    );
    deny!(
        p,
        user(1),
        Request {
            now: None,
            ..base.identity(Some("w"))
        }
    );
    let later = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_950_000_000);
    deny!(p, user(1), base.identity(Some("w")).at(later));
}

#[test]
fn deny_assignments_beat_conditions_and_conditions_never_deny() {
    let body = format!(
        "{}{}{}",
        cond("c", "uid:1", "Metadata Owner", "@Principal[user] StringEquals 'nobody'"),
        assign("plain", "uid:1", "Instance Metadata Reader"),
        "[[deny_assignments]]\nname = \"d\"\nprincipals = [\"uid:2\"]\nactions = [\"Gatehouse/*\"]\n"
    );
    let p = policy(&body);
    allow!(p, user(1), act(Action::InstanceRead), ["plain"]);
    deny!(p, user(1), act(Action::ScheduledEventsRead));
    deny!(p, user(2), act(Action::InstanceRead), Reason::ExplicitDeny);
}

#[test]
fn modes_per_family() {
    let text = format!(
        "version = 1\n[modes]\ninstance = \"audit\"\nscheduled_events = \"off\"\n{}",
        assign("a", "uid:1", "Token Reader")
    );
    let p = parse("p", &text).unwrap();
    assert_eq!(p.mode(Action::InstanceRead), Mode::Audit);
    assert_eq!(p.mode(Action::VersionsRead), Mode::Audit);
    assert_eq!(p.mode(Action::TokenRead), Mode::Enforce);
    assert_eq!(p.mode(Action::ScheduledEventsApprove), Mode::Off);
    let d = p.decide(&user(2), &act(Action::InstanceRead));
    assert!(d.is_allowed() && d.would_deny());
    assert_eq!(d.reason(), Reason::NoMatchingAssignment);
    assert_eq!(d, p.decide_naive(&user(2), &act(Action::InstanceRead)));
    let off = p.decide(&user(2), &act(Action::ScheduledEventsRead));
    assert!(off.is_allowed() && !off.would_deny());
    assert_eq!(off.reason(), Reason::Unmediated);
    deny!(p, user(2), token("x", "y"));
    syntax!(
        "version = 1\n[modes]\ntoken = \"loud\"\n",
        "3:9",
        "unknown mode `loud`"
    );
    syntax!(
        "version = 1\n[modes]\ntokens = \"off\"\n",
        "3:1",
        "unknown endpoint family `tokens`"
    );
}

fn agent() -> Caller {
    let mut c = user(0);
    c.processes = vec![Process {
        exe_path: Some("/usr/bin/python3".into()),
        exe_path_verified: true,
        exe_owner_uid: Some(0),
        unit: Some("walinuxagent.service".into()),
        cgroup: Some("/system.slice/walinuxagent.service".into()),
        ..proc_(0)
    }];
    c
}

#[test]
fn trusted_services() {
    let p = parse("p", "version = 1\n").unwrap();
    let d = p.decide(&agent(), &act(Action::InstanceRead));
    assert!(d.is_allowed());
    assert_eq!(d.reason(), Reason::TrustedService("azure-linux-agent"));
    allow!(p, agent(), act(Action::ScheduledEventsRead));
    deny!(p, agent(), act(Action::ScheduledEventsApprove));
    deny!(p, agent(), token("x", "y"));
    deny!(p, agent(), act(Action::IdentityInfoRead));
    deny!(
        p,
        with(agent(), |p| p.unit = Some("evil.service".into())),
        act(Action::InstanceRead)
    );
    deny!(
        p,
        with(agent(), |p| p.exe_owner_uid = Some(1000)),
        act(Action::InstanceRead)
    );
    deny!(
        p,
        with(agent(), |p| p.exe_path_verified = false),
        act(Action::InstanceRead)
    );
    let mut forked = agent();
    forked.processes.push(proc_(0));
    deny!(p, forked, act(Action::InstanceRead));
    let off = parse("p", "version = 1\ntrusted_services = false\n").unwrap();
    deny!(off, agent(), act(Action::InstanceRead));
    let approve = parse("p", "version = 1\ntrusted_services_approve = true\n").unwrap();
    allow!(approve, agent(), act(Action::ScheduledEventsApprove));
}

#[test]
fn condition_errors_point_into_the_file() {
    let text = "version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Instance Metadata Reader\"\ncondition = '''\n@Principal[user] DateTimeEquals '2025-01-01T00:00:00Z'\nAND @Principal[nope] StringEquals 'x'\n'''\n";
    let d = syntax!(text, "7:1", "compares datetime values");
    syntax!(text, "8:5", "unknown attribute `@Principal[nope]`");
    assert_eq!(d.error_count(), 2, "{d}");
}

struct FakeMachine;

impl Machine for FakeMachine {
    fn user_exists(&self, name: &str) -> bool {
        name == "u1"
    }
    fn group_exists(&self, name: &str) -> bool {
        name == "users"
    }
    fn file_exists(&self, path: &str) -> bool {
        path == "/usr/bin/app"
    }
    fn unit_exists(&self, unit: &str) -> bool {
        unit == "app.service"
    }
}

#[test]
fn lints() {
    let cases: &[(&str, &str)] = &[
        (&assign("a", "user:ghost", "Instance Metadata Reader"), "user `ghost` does not exist"),
        (&assign("a", "group:ghosts", "Instance Metadata Reader"), "group `ghosts` does not exist"),
        (&assign("a", "unit:ghost.service", "Instance Metadata Reader"), "unit `ghost.service` does not exist"),
        (&assign("a", "exe:/usr/bin/ghost", "Instance Metadata Reader"), "executable `/usr/bin/ghost` does not exist"),
        (&assign("a", "exe:/usr/bin/app", "Instance Metadata Reader"), "by path only"),
        (&assign("a", "user:u1", "Token Reader"), "any identity and any audience"),
        (&cond("a", "user:u1", "Instance Metadata Reader", "!(ActionMatches{'Gatehouse/token/read'}) OR @Principal[uid] NumericEquals 1"), "targets none of the actions"),
        (&cond("a", "user:u1", "Instance Metadata Reader", "NOT SubOperationMatches{'x'}"), "uses `SubOperationMatches`"),
        (&cond("a", "user:u1", "Instance Metadata Reader", "@Resource[name] StringEquals 'nobody'"), "unknown identity `nobody`"),
        (&format!("{}{}", cond("a", "user:u1", "Instance Metadata Reader", "@Principal[uid] NumericEquals 1"), assign("b", "everyone", "Metadata Owner")), "bypassed by unconditioned assignment `b`"),
        (&format!("{}{}", assign("a", "user:u1", "Instance Metadata Reader"), assign("b", "user:u1", "Instance Metadata Reader")), "`b` duplicates `a`"),
        (&format!("{}[[deny_assignments]]\nname = \"d\"\nprincipals = [\"everyone\"]\nactions = [\"Gatehouse/*\"]\n", assign("a", "user:u1", "Instance Metadata Reader")), "unreachable"),
    ];
    for (body, want) in cases {
        let text = format!("version = 1\n[identities.system]\nkind = \"system\"\n{body}");
        let p = parse("p", &text).unwrap_or_else(|d| panic!("{d}"));
        let w = p.lint("p", &text, &FakeMachine);
        assert!(
            w.iter()
                .any(|d| d.severity == Severity::Warning && d.message.contains(want)),
            "{want}: {w}"
        );
        assert_eq!(w.error_count(), 0);
    }
    let clean = format!(
        "version = 1\n{}",
        assign("a", "user:u1", "Instance Metadata Reader")
    );
    let p = parse("p", &clean).unwrap();
    assert!(p.lint("p", &clean, &FakeMachine).is_empty());
}

#[test]
fn explain_trail_lists_candidates_and_values() {
    let p = policy(&format!(
        "{}{}",
        cond(
            "c",
            "uid:1",
            "Metadata Owner",
            "@Principal[user] StringEquals 'u2'"
        ),
        assign("other", "uid:9", "Metadata Owner")
    ));
    let d = p.decide(&user(1), &act(Action::InstanceRead));
    let t = d.trail();
    assert_eq!(t.candidates.len(), 1);
    let shown = t.to_string();
    assert!(
        shown.contains("assignment `c`: does not allow")
            && shown.contains("@Principal[user] = 'u1'"),
        "{shown}"
    );
}
