use super::*;
use crate::ruleset::tests::options;
use crate::ruleset::{Containers, Ipv6, Options};
use serde_json::json;

fn ruleset() -> Ruleset {
    Ruleset::new(&options()).unwrap()
}

/// What `nft -j list table inet gatehouse` prints for `r`, with handles and
/// the metainfo header, built independently of `compare`.
fn listing(r: &Ruleset) -> serde_json::Value {
    let mut items = vec![
        json!({"metainfo": {"version": "1.0.6", "json_schema_version": 1}}),
        json!({"table": {"family": "inet", "name": "gatehouse", "handle": 3}}),
    ];
    let mut handle = 1;
    for s in &r.sets {
        let mut set =
            json!({"family": "inet", "name": s.name, "table": "gatehouse", "handle": handle});
        set["type"] = match s.types.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        if !s.flags.is_empty() {
            set["flags"] = json!(s.flags);
        }
        if let Some(elements) = s.elements.as_ref().filter(|e| !e.is_empty()) {
            // nft lists them in its own order.
            let mut elem: Vec<_> = elements.iter().map(|e| e.json()).collect();
            elem.reverse();
            set["elem"] = json!(elem);
        }
        items.push(json!({ "set": set }));
        handle += 1;
    }
    for c in &r.chains {
        items.push(json!({"chain": {"family": "inet", "table": "gatehouse", "name": c.name, "handle": handle,
            "type": c.kind, "hook": c.hook, "prio": c.priority, "policy": "accept"}}));
        handle += 1;
    }
    for c in &r.chains {
        for rule in &c.rules {
            let body = rule.json();
            items.push(json!({"rule": {"family": "inet", "table": "gatehouse", "chain": c.name, "handle": handle,
                "comment": body["comment"], "expr": body["expr"]}}));
            handle += 1;
        }
    }
    json!({"nftables": items})
}

fn rules_mut(v: &mut serde_json::Value) -> &mut Vec<serde_json::Value> {
    v["nftables"].as_array_mut().unwrap()
}

fn rendered(v: &serde_json::Value, r: &Ruleset) -> Vec<String> {
    compare(Some(v), r)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn identical_listing_has_no_differences() {
    let r = ruleset();
    assert_eq!(compare(Some(&listing(&r)), &r).unwrap(), vec![]);
}

#[test]
fn counters_and_handles_are_ignored() {
    let r = ruleset();
    let mut v = listing(&r);
    for item in rules_mut(&mut v) {
        if let Some(rule) = item.get_mut("rule") {
            rule["handle"] = json!(999);
            rule["expr"]
                .as_array_mut()
                .unwrap()
                .insert(0, json!({"counter": {"packets": 5, "bytes": 300}}));
        }
    }
    assert_eq!(compare(Some(&v), &r).unwrap(), vec![]);
}

#[test]
fn missing_table() {
    let r = ruleset();
    assert_eq!(compare(None, &r).unwrap(), vec![Difference::TableMissing]);
    let other = json!({"nftables": [{"metainfo": {}}]});
    assert_eq!(
        compare(Some(&other), &r).unwrap(),
        vec![Difference::TableMissing]
    );
    assert_eq!(
        compare(Some(&json!({})), &r),
        Err(ListingError::NotNftables)
    );
}

/// Each tampering → the one line `verify` prints for it.
#[test]
fn tampering_is_named() {
    type Tamper = fn(&mut Vec<serde_json::Value>);
    let table: [(&str, Tamper, &str); 7] = [
        (
            "deleted drop rule",
            |items| items.retain(|i| i["rule"]["comment"] != "after nat: anything else unmarked to IMDS is dropped"),
            "chain `output`: rule missing: `ip daddr 169.254.169.254 meta mark != 0x00006761 drop comment \"after nat: anything else unmarked to IMDS is dropped\"`",
        ),
        (
            "added accept",
            |items| items.push(json!({"rule": {"family": "inet", "table": "gatehouse", "chain": "output", "handle": 77, "expr": [{"accept": null}]}})),
            "chain `output`: unexpected rule (handle 77): `accept`",
        ),
        (
            "deleted chain",
            |items| items.retain(|i| i["chain"]["name"] != "forward" && i["rule"]["chain"] != "forward"),
            "chain `forward` is missing",
        ),
        (
            "extra chain",
            |items| items.push(json!({"chain": {"family": "inet", "table": "gatehouse", "name": "sneaky", "handle": 50}})),
            "chain `sneaky` should not exist",
        ),
        (
            "priority changed",
            |items| {
                for i in items.iter_mut() {
                    if i["chain"]["name"] == "nat-output" {
                        i["chain"]["prio"] = json!(-90);
                    }
                }
            },
            "chain `nat-output` is `{\"hook\":\"output\",\"policy\":\"accept\",\"prio\":-90,\"type\":\"nat\"}`, expected `{\"hook\":\"output\",\"policy\":\"accept\",\"prio\":-100,\"type\":\"nat\"}`",
        ),
        (
            "a set",
            |items| items.push(json!({"set": {"family": "inet", "table": "gatehouse", "name": "allow", "handle": 60}})),
            "unexpected set `allow` in the table",
        ),
        (
            "two rules swapped",
            |items| {
                let a = items.iter().position(|i| i["rule"]["comment"] == "after nat: unmarked tcp still to IMDS is refused").unwrap();
                items.swap(a, a + 1);
            },
            "chain `output`: rules are out of order",
        ),
    ];
    let r = ruleset();
    for (what, tamper, expected) in table {
        let mut v = listing(&r);
        tamper(rules_mut(&mut v));
        assert_eq!(rendered(&v, &r), vec![expected.to_owned()], "{what}");
    }
}

#[test]
fn changed_mark_is_one_missing_and_one_unexpected_rule() {
    let r = ruleset();
    let mut v = listing(&r);
    for i in rules_mut(&mut v) {
        if i["rule"]["comment"] == "local IMDS connections go to the gate" {
            i["rule"]["expr"][2]["match"]["right"] = json!(1);
        }
    }
    let got = rendered(&v, &r);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("chain `nat-output`: rule missing: `ip daddr 169.254.169.254 tcp dport 80 meta mark != 0x00006761"), "{got:?}");
    assert_eq!(
        got[1],
        "chain `nat-output`: unexpected rule (handle 5): `ip daddr 169.254.169.254 tcp dport 80 meta mark != 0x00000001 \
         redirect to :16925 comment \"local IMDS connections go to the gate\"`"
    );
}

#[test]
fn other_tables_in_the_listing_are_ignored() {
    let r = ruleset();
    let mut v = listing(&r);
    rules_mut(&mut v)
        .push(json!({"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1}}));
    assert_eq!(compare(Some(&v), &r).unwrap(), vec![]);
}

/// An unexpected rule is named in nft's words: every rule we render,
/// described from its JSON, reads back as the text we render.
#[test]
fn listed_rules_are_described_as_nft_writes_them() {
    let redirect = Options {
        containers: Containers::Redirect,
        ipv6: Ipv6::Intercept,
        listen: "127.0.0.1:99".parse().unwrap(),
        mark: 5,
        wireserver: true,
        jit: None,
    };
    let other = Options {
        containers: Containers::Redirect,
        ipv6: Ipv6::Intercept,
        listen: "10.0.0.1:99".parse().unwrap(),
        mark: 5,
        wireserver: true,
        jit: None,
    };
    for r in [
        ruleset(),
        Ruleset::new(&redirect).unwrap(),
        Ruleset::new(&other).unwrap(),
    ] {
        for c in &r.chains {
            for rule in &c.rules {
                assert_eq!(describe(&rule.json()), rule.text());
            }
        }
    }
    assert_eq!(
        describe(&json!({"expr": [{"jump": {"target": "x"}}]})),
        "jump x"
    );
    assert_eq!(
        describe(&json!({"expr": [{"queue": {"num": 1}}]})),
        "{\"queue\":{\"num\":1}}"
    );
}

fn jit_ruleset() -> Ruleset {
    Ruleset::new(&Options {
        jit: Some(crate::ruleset::JitPorts {
            ports: vec![
                (crate::jit::Protocol::Tcp, 22),
                (crate::jit::Protocol::Udp, 60001),
            ],
            break_glass: vec![
                "10.0.0.0/8".parse().unwrap(),
                "192.168.1.5/32".parse().unwrap(),
            ],
        }),
        ..options()
    })
    .unwrap()
}

fn set_mut<'a>(v: &'a mut serde_json::Value, name: &str) -> &'a mut serde_json::Value {
    rules_mut(v)
        .iter_mut()
        .find(|i| i["set"]["name"] == name)
        .map(|i| &mut i["set"])
        .unwrap()
}

#[test]
fn jit_elements_are_state_not_drift() {
    let r = jit_ruleset();
    let mut v = listing(&r);
    assert_eq!(rendered(&v, &r), Vec::<String>::new());
    set_mut(&mut v, "jit4")["elem"] = json!([
        {"elem": {"val": {"concat": ["10.1.2.3", "tcp", 22]}, "timeout": 30, "expires": 29}}
    ]);
    set_mut(&mut v, "jit6")["elem"] = json!([
        {"elem": {"val": {"concat": ["fd77::2", "tcp", 22]}, "timeout": 30, "expires": 29}}
    ]);
    assert_eq!(rendered(&v, &r), Vec::<String>::new());
}

#[test]
fn jit_sets_are_compared() {
    let r = jit_ruleset();
    type Tamper = fn(&mut serde_json::Value);
    let cases: &[(&str, Tamper, &[&str])] = &[
        (
            "break-glass range added",
            |v| {
                set_mut(v, "break_glass4")["elem"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"prefix": {"addr": "0.0.0.0", "len": 0}}));
            },
            &["set `break_glass4`: unexpected elements `0.0.0.0/0`"],
        ),
        (
            "protected port swapped",
            |v| {
                set_mut(v, "jit_ports")["elem"] = json!([{"concat": ["tcp", 2222]}, {"concat": ["udp", 60001]}]);
            },
            &["set `jit_ports`: missing elements `tcp . 22`; unexpected elements `tcp . 2222`"],
        ),
        (
            "break-glass emptied",
            |v| {
                set_mut(v, "break_glass4").as_object_mut().unwrap().remove("elem");
            },
            &["set `break_glass4`: missing elements `10.0.0.0/8, 192.168.1.5`"],
        ),
        (
            "jit set lost its timeout flag",
            |v| {
                set_mut(v, "jit6").as_object_mut().unwrap().remove("flags");
            },
            &["set `jit6` is `{\"flags\":[],\"type\":[\"ipv6_addr\",\"inet_proto\",\"inet_service\"]}`, expected `{\"flags\":[\"timeout\"],\"type\":[\"ipv6_addr\",\"inet_proto\",\"inet_service\"]}`"],
        ),
        (
            "set deleted",
            |v| {
                rules_mut(v).retain(|i| i["set"]["name"] != "jit4");
            },
            &["set `jit4` is missing"],
        ),
        (
            "foreign set",
            |v| {
                rules_mut(v).push(json!({"set": {"family": "inet", "table": "gatehouse", "name": "extra", "type": "ipv4_addr"}}));
            },
            &["unexpected set `extra` in the table"],
        ),
    ];
    for (name, tamper, want) in cases {
        let mut v = listing(&r);
        tamper(&mut v);
        assert_eq!(rendered(&v, &r), *want, "{name}");
    }
}

#[test]
fn jit_rules_are_described_as_nft_writes_them() {
    let r = jit_ruleset();
    let chain = r.chains.iter().find(|c| c.name == "jit_input").unwrap();
    for rule in &chain.rules {
        assert_eq!(describe(&rule.json()), rule.text());
    }
}
