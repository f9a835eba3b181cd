use super::*;
use serde_json::json;

fn el(source: &str, proto: Protocol, port: u16, secs: u64) -> Element {
    Element {
        source: source.parse().unwrap(),
        proto,
        port,
        expires_in: Duration::from_secs(secs),
    }
}

fn listed_of(e: &Element) -> Listed {
    Listed {
        key: Key::of(e),
        element: Some(e.clone()),
    }
}

/// What nft 1.0.6 lists for the two sets (copied from a real listing).
fn listing(jit4: Value, jit6: Value) -> Value {
    let mut four = json!({"family": "inet", "name": "jit4", "table": "gatehouse",
        "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 5, "flags": ["timeout"]});
    let mut six = json!({"family": "inet", "name": "jit6", "table": "gatehouse",
        "type": ["ipv6_addr", "inet_proto", "inet_service"], "handle": 6, "flags": ["timeout"]});
    if !jit4.as_array().unwrap().is_empty() {
        four["elem"] = jit4;
    }
    if !jit6.as_array().unwrap().is_empty() {
        six["elem"] = jit6;
    }
    json!({"nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"table": {"family": "inet", "name": "gatehouse", "handle": 2}},
        {"set": four},
        {"set": six},
    ]})
}

#[test]
fn listing_is_parsed() {
    let v = listing(
        json!([
            {"elem": {"val": {"concat": ["10.1.2.3", "tcp", 2222]}, "timeout": 30, "expires": 29}},
            {"concat": ["10.1.2.4", "udp", 53]},
            {"elem": {"val": {"concat": ["10.1.2.5", "icmp", 0]}, "timeout": 30, "expires": 3}},
        ]),
        json!([{"elem": {"val": {"concat": ["fd77::2", "tcp", 2222]}, "timeout": 3600, "expires": 3599}}]),
    );
    let got = parse_listing(&v).unwrap();
    let elements: Vec<Option<Element>> = got.iter().map(|l| l.element.clone()).collect();
    assert_eq!(
        elements,
        vec![
            Some(el("10.1.2.3", Protocol::Tcp, 2222, 29)),
            Some(Element {
                expires_in: Duration::MAX,
                ..el("10.1.2.4", Protocol::Udp, 53, 0)
            }),
            None,
            Some(el("fd77::2", Protocol::Tcp, 2222, 3599)),
        ]
    );
    assert_eq!(got[2].key.text, "10.1.2.5 . icmp . 0");
    assert_eq!(got[3].key.set, "jit6");
}

#[test]
fn listing_without_sets_says_what_to_do() {
    let v = json!({"nftables": [{"table": {"family": "inet", "name": "gatehouse"}}]});
    let err = parse_listing(&v).unwrap_err();
    assert_eq!(err, JitError::SetMissing("jit4"));
    assert!(err.to_string().contains("enable `[jit]`"), "{err}");
    assert_eq!(
        parse_listing(&json!({})).unwrap_err(),
        JitError::NotNftables
    );
}

#[test]
fn timeouts_round_up_to_whole_seconds() {
    let cases = [
        (Duration::ZERO, 1),
        (Duration::from_millis(1), 1),
        (Duration::from_millis(1000), 1),
        (Duration::from_millis(1001), 2),
        (Duration::from_secs(1800), 1800),
        (Duration::MAX, u64::MAX),
    ];
    for (d, want) in cases {
        assert_eq!(timeout(d).as_secs(), want, "{d:?}");
    }
}

#[test]
fn plan_adds_removes_keeps_and_replaces() {
    let a = el("10.0.0.1", Protocol::Tcp, 22, 100);
    let b = el("10.0.0.2", Protocol::Tcp, 22, 100);
    let c = el("fd00::3", Protocol::Udp, 53, 100);
    let a_drifted = el("10.0.0.1", Protocol::Tcp, 22, 10);
    let a_close = el("10.0.0.1", Protocol::Tcp, 22, 97);
    struct Case {
        name: &'static str,
        current: Vec<Element>,
        desired: Vec<Element>,
        added: Vec<Element>,
        removed: Vec<Element>,
        kept: usize,
    }
    let cases = [
        Case {
            name: "empty",
            current: vec![],
            desired: vec![],
            added: vec![],
            removed: vec![],
            kept: 0,
        },
        Case {
            name: "add to empty",
            current: vec![],
            desired: vec![a.clone(), c.clone()],
            added: vec![a.clone(), c.clone()],
            removed: vec![],
            kept: 0,
        },
        Case {
            name: "remove undesired, keep close expiry",
            current: vec![a_close.clone(), b.clone()],
            desired: vec![a.clone()],
            added: vec![],
            removed: vec![b.clone()],
            kept: 1,
        },
        Case {
            name: "replace drifted expiry",
            current: vec![a_drifted.clone(), c.clone()],
            desired: vec![a.clone(), c.clone()],
            added: vec![a.clone()],
            removed: vec![a_drifted.clone()],
            kept: 1,
        },
        Case {
            name: "duplicates: the later expiry wins",
            current: vec![],
            desired: vec![a_drifted.clone(), a.clone(), a_close.clone()],
            added: vec![a.clone()],
            removed: vec![],
            kept: 0,
        },
        Case {
            name: "v4-mapped is v4",
            current: vec![a.clone()],
            desired: vec![el("::ffff:10.0.0.1", Protocol::Tcp, 22, 100)],
            added: vec![],
            removed: vec![],
            kept: 1,
        },
    ];
    for case in cases {
        let current: Vec<Listed> = case.current.iter().map(listed_of).collect();
        let plan = plan(&current, &case.desired);
        assert_eq!(
            plan.report,
            SyncReport {
                added: case.added,
                removed: case.removed,
                kept: case.kept
            },
            "{}",
            case.name
        );
        assert_eq!(
            plan.batch.is_empty(),
            plan.report.added.is_empty() && plan.report.removed.is_empty(),
            "{}: {}",
            case.name,
            plan.batch
        );
    }
}

#[test]
fn batch_text() {
    let current = vec![
        listed_of(&el("10.0.0.2", Protocol::Tcp, 22, 100)),
        Listed {
            key: Key {
                set: "jit4",
                text: "10.0.0.9 . icmp . 0".to_owned(),
            },
            element: None,
        },
    ];
    let plan = plan(
        &current,
        &[Element {
            expires_in: Duration::from_millis(2500),
            ..el("fd00::3", Protocol::Udp, 53, 0)
        }],
    );
    assert_eq!(
        plan.batch,
        "add element inet gatehouse jit4 { 10.0.0.2 . tcp . 22 }\n\
         delete element inet gatehouse jit4 { 10.0.0.2 . tcp . 22 }\n\
         add element inet gatehouse jit4 { 10.0.0.9 . icmp . 0 }\n\
         delete element inet gatehouse jit4 { 10.0.0.9 . icmp . 0 }\n\
         add element inet gatehouse jit6 { fd00::3 . udp . 53 timeout 3s }\n"
    );
    assert_eq!(
        plan.report.removed.len(),
        1,
        "the icmp element is not reported"
    );
}
