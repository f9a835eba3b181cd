//! Property: the indexed evaluator agrees with the naive model on random
//! small policies (with conditions and eligible assignments), callers,
//! requests and just-in-time grants.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_policy::{parse, Action, Caller, Grant, Process, Request};
use proptest::prelude::*;

const PRINCIPALS: &[&str] = &[
    "uid:0",
    "uid:1",
    "user:u1",
    "gid:1",
    "gid:2",
    "group:g1",
    "exe:/bin/a",
    "exe:sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "unit:a.service",
    "cgroup:/s/a",
    "cgroup:/s/*",
    "container:abcdefabcdef",
    "everyone",
];
const ROLES: &[&str] = &[
    "Token Reader",
    "Instance Metadata Reader",
    "Scheduled Events Reader",
    "Scheduled Events Approver",
    "Metadata Owner",
    "Custom",
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

/// Principals an eligible assignment may have (people only): the first six.
const PEOPLE: usize = 6;

fn assignment(i: usize, (p, r, ids, auds, c, eligible): Spec) -> String {
    let p = if eligible { p % PEOPLE } else { p };
    let list = |v: &[usize], pool: &[&str]| {
        v.iter()
            .map(|&i| format!("\"{}\"", pool.get(i).copied().unwrap_or("*")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[[assignments]]\nname = \"a{i}\"\nprincipal = \"{}\"\nrole = \"{}\"\nidentities = [{}]\naudiences = [{}]\n",
        at(PRINCIPALS, p), at(ROLES, r), list(&ids, IDENTITIES), list(&auds, AUDIENCES)
    ) + &CONDITIONS.get(c).map(|c| format!("condition = '''{c}'''\n")).unwrap_or_default()
        + if eligible { "eligible = true\napprovers = [\"group:g2\"]\n" } else { "" }
}

/// (principal, role, identities, audiences, condition) indices, eligible.
type Spec = (usize, usize, Vec<usize>, Vec<usize>, usize, bool);

fn policy_text(assignments: Vec<Spec>, deny: Option<(usize, usize)>) -> String {
    let mut s = String::from(
        "version = 1\n[identities.system]\nkind = \"system\"\n\
         [identities.u1]\nkind = \"user\"\nclient_id = \"00000000-0000-0000-0000-000000000001\"\n\
         [identities.u2]\nkind = \"user\"\nclient_id = \"00000000-0000-0000-0000-000000000002\"\n\
         [[roles]]\nname = \"Custom\"\nactions = [\"Gatehouse/*/read\"]\nnot_actions = [\"Gatehouse/instance/*\"]\n",
    );
    for (i, spec) in assignments.into_iter().enumerate() {
        s.push_str(&assignment(i, spec));
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
        pick(&[
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "bb",
        ]),
        pick(&["a.service", "b.service"]),
        pick(&["/s/a", "/s/b/c", "/t", "/s"]),
        pick(&["abcdefabcdef00", "abcdefabcdee00"]),
    )
        .prop_map(
            |(uid, exe, verified, hash, unit, cgroup, container)| Process {
                pid: 1,
                uid,
                exe_path: exe,
                exe_path_verified: verified,
                exe_sha256: hash,
                unit,
                cgroup,
                container,
                exe_owner_uid: Some(0),
            },
        )
}

fn caller() -> impl Strategy<Value = Caller> {
    (
        proptest::option::weighted(0.8, 0u32..2),
        pick(&["u1", "u2"]),
        proptest::collection::vec(0u32..3, 0..3),
        proptest::collection::vec(
            proptest::sample::select(&["g1", "g2"][..]).prop_map(str::to_owned),
            0..2,
        ),
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
            Caller {
                uid,
                user,
                gids,
                group_names,
                processes,
            }
        })
}

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000 + secs)
}

/// Grants for assignments `a0`..`a6` (some missing, some standing), with
/// random uids, identities, audiences and windows around the request time.
fn grants() -> impl Strategy<Value = Vec<Grant>> {
    let grant = (
        0..7usize,
        0u32..2,
        0..4usize,
        proptest::option::of(0..5usize),
        0u64..6,
        4u64..20,
    )
        .prop_map(|(a, uid, id, aud, start, len)| Grant {
            id: format!("g{a}-{uid}-{start}"),
            assignment: format!("a{a}"),
            uid,
            identity: IDENTITIES.get(id).copied().unwrap_or("nope").to_owned(),
            audience: aud.map(|i| {
                [
                    "https://a.example",
                    "https://z.example",
                    "b",
                    "c",
                    "https://*.example",
                ]
                .get(i)
                .copied()
                .unwrap_or("b")
                .to_owned()
            }),
            starts: t(start),
            expires: t(start + len),
        });
    proptest::collection::vec(grant, 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]
    #[test]
    fn indexed_equals_naive(
        assignments in proptest::collection::vec(
            (0..PRINCIPALS.len(), 0..ROLES.len(),
             proptest::collection::vec(0..4usize, 1..3),
             proptest::collection::vec(0..4usize, 1..3),
             0..CONDITIONS.len() * 2,
             any::<bool>()),
            1..6),
        deny in proptest::option::of((0..PRINCIPALS.len(), 0..PRINCIPALS.len())),
        callers in proptest::collection::vec(caller(), 1..4),
        action in proptest::sample::select(&Action::ALL[..]),
        identity in pick(&["system", "u1", "u2"]),
        audience in pick(&["https://a.example", "https://z.example", "b", "c"]),
        grants in grants(),
        now in proptest::option::weighted(0.9, 0u64..25),
    ) {
        let text = policy_text(assignments, deny);
        let policy = match parse("prop.toml", &text) {
            Ok(p) => p,
            Err(d) => panic!("generated policy did not load:\n{d}\n{text}"),
        };
        let mut request = Request::new(action).identity(identity.as_deref()).audience(audience.as_deref());
        request.now = now.map(t);
        for c in &callers {
            let fast = policy.decide(c, &request);
            let slow = policy.decide_naive(c, &request);
            prop_assert_eq!(&fast, &slow, "caller {:?}\n{}", c, text);
            prop_assert_eq!(&fast, &policy.decide_with(c, &request, &[]));
            let fast = policy.decide_with(c, &request, &grants);
            let slow = policy.decide_naive_with(c, &request, &grants);
            prop_assert_eq!(fast, slow, "caller {:?} grants {:?}\n{}", c, grants, text);
        }
    }
}
