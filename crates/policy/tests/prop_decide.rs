//! Property: the indexed evaluator agrees with the naive model on random
//! small policies (with conditions), callers and requests.

use gatehouse_policy::{parse, Action, Caller, Process, Request};
use proptest::prelude::*;

const PRINCIPALS: &[&str] = &[
    "uid:0", "uid:1", "user:u1", "gid:1", "gid:2", "group:g1", "exe:/bin/a",
    "exe:sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "unit:a.service", "cgroup:/s/a", "cgroup:/s/*", "container:abcdefabcdef", "everyone",
];
const ROLES: &[&str] = &[
    "Token Reader", "Instance Metadata Reader", "Scheduled Events Reader",
    "Scheduled Events Approver", "Metadata Owner", "Custom",
];
const CONDITIONS: &[&str] = &[
    "@Principal[unit] StringEquals 'a.service'",
    "NOT @Principal[user] StringEquals 'u1'",
    "@Principal[groups] ForAnyOfAnyValues:StringEquals {'g1'}",
    "!(ActionMatches{'Gatehouse/token/read'}) OR @Resource[name] StringEquals 'u1'",
    "@Principal[gids] ForAllOfAnyValues:NumericEquals {0, 1}",
    "@Principal[exe] StringLike '/bin/*' || NOT Exists @Principal[containerId]",
    "@Request[audience] StringStartsWith 'https://'",
];
const IDENTITIES: &[&str] = &["system", "u1", "u2"];
const AUDIENCES: &[&str] = &["https://a.example", "https://*.example", "b"];

fn at(pool: &[&'static str], i: usize) -> &'static str {
    pool.get(i).copied().unwrap_or("everyone")
}

fn assignment(i: usize, p: usize, r: usize, ids: Vec<usize>, auds: Vec<usize>, c: usize) -> String {
    let list = |v: &[usize], pool: &[&str]| {
        v.iter().map(|&i| format!("\"{}\"", pool.get(i).copied().unwrap_or("*"))).collect::<Vec<_>>().join(", ")
    };
    format!(
        "[[assignments]]\nname = \"a{i}\"\nprincipal = \"{}\"\nrole = \"{}\"\nidentities = [{}]\naudiences = [{}]\n",
        at(PRINCIPALS, p), at(ROLES, r), list(&ids, IDENTITIES), list(&auds, AUDIENCES)
    ) + &CONDITIONS.get(c).map(|c| format!("condition = '''{c}'''\n")).unwrap_or_default()
}

/// (principal, role, identities, audiences, condition) indices.
type Spec = (usize, usize, Vec<usize>, Vec<usize>, usize);

fn policy_text(assignments: Vec<Spec>, deny: Option<(usize, usize)>) -> String {
    let mut s = String::from(
        "version = 1\n[identities.system]\nkind = \"system\"\n\
         [identities.u1]\nkind = \"user\"\nclient_id = \"00000000-0000-0000-0000-000000000001\"\n\
         [identities.u2]\nkind = \"user\"\nclient_id = \"00000000-0000-0000-0000-000000000002\"\n\
         [[roles]]\nname = \"Custom\"\nactions = [\"Gatehouse/*/read\"]\nnot_actions = [\"Gatehouse/instance/*\"]\n",
    );
    for (i, (p, r, ids, auds, c)) in assignments.into_iter().enumerate() {
        s.push_str(&assignment(i, p, r, ids, auds, c));
    }
    if let Some((p, x)) = deny {
        s.push_str(&format!(
            "[[deny_assignments]]\nname = \"d\"\nprincipals = [\"{}\"]\nexcluded_principals = [\"{}\"]\nactions = [\"Gatehouse/token/read\"]\n",
            at(PRINCIPALS, p), at(PRINCIPALS, x)
        ));
    }
    s
}

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(proptest::sample::select(pool).prop_map(str::to_owned))
}

fn process() -> impl Strategy<Value = Process> {
    (
        0u32..2,
        pick(&["/bin/a", "/bin/b"]),
        any::<bool>(),
        pick(&["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bb"]),
        pick(&["a.service", "b.service"]),
        pick(&["/s/a", "/s/b/c", "/t", "/s"]),
        pick(&["abcdefabcdef00", "abcdefabcdee00"]),
    )
        .prop_map(|(uid, exe, verified, hash, unit, cgroup, container)| Process {
            pid: 1,
            uid,
            exe_path: exe,
            exe_path_verified: verified,
            exe_sha256: hash,
            unit,
            cgroup,
            container,
            exe_owner_uid: Some(0),
        })
}

fn caller() -> impl Strategy<Value = Caller> {
    (
        proptest::option::of(0u32..2),
        pick(&["u1", "u2"]),
        proptest::collection::vec(0u32..3, 0..3),
        proptest::collection::vec(proptest::sample::select(&["g1", "g2"][..]).prop_map(str::to_owned), 0..2),
        proptest::collection::vec(process(), 0..3),
    )
        .prop_map(|(uid, user, gids, group_names, mut processes)| {
            // Mostly keep holders on the socket's uid so decisions get past
            // the AmbiguousCaller check.
            if let Some(u) = uid {
                for p in processes.iter_mut().skip(1) {
                    p.uid = u;
                }
                if let Some(p) = processes.first_mut() {
                    if p.uid == 1 {
                        p.uid = u;
                    }
                }
            }
            Caller { uid, user, gids, group_names, processes }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn indexed_equals_naive(
        assignments in proptest::collection::vec(
            (0..PRINCIPALS.len(), 0..ROLES.len(),
             proptest::collection::vec(0..4usize, 1..3),
             proptest::collection::vec(0..4usize, 1..3),
             0..CONDITIONS.len() * 2),
            0..6),
        deny in proptest::option::of((0..PRINCIPALS.len(), 0..PRINCIPALS.len())),
        callers in proptest::collection::vec(caller(), 1..4),
        action in proptest::sample::select(&Action::ALL[..]),
        identity in pick(&["system", "u1", "u2"]),
        audience in pick(&["https://a.example", "https://z.example", "b", "c"]),
    ) {
        let text = policy_text(assignments, deny);
        let policy = match parse("prop.toml", &text) {
            Ok(p) => p,
            Err(d) => panic!("generated policy did not load:\n{d}\n{text}"),
        };
        let request = Request::new(action).identity(identity.as_deref()).audience(audience.as_deref());
        for c in &callers {
            let fast = policy.decide(c, &request);
            let slow = policy.decide_naive(c, &request);
            prop_assert_eq!(fast, slow, "caller {:?}\n{}", c, text);
        }
    }
}
