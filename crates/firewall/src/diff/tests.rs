use super::*;
use crate::ruleset::{Containers, Options};
use serde_json::json;

fn ruleset() -> Ruleset {
    Ruleset::new(&Options {
        listen: "127.0.0.1:16925".parse().unwrap(),
        mark: 0x6761,
        wireserver: true,
        containers: Containers::Drop,
    })
    .unwrap()
}

/// What `nft -j list table inet gatehouse` prints for `r`, with handles and
/// the metainfo header, built independently of `compare`.
fn listing(r: &Ruleset) -> serde_json::Value {
    let mut items = vec![
        json!({"metainfo": {"version": "1.0.6", "json_schema_version": 1}}),
        json!({"table": {"family": "inet", "name": "gatehouse", "handle": 3}}),
    ];
    let mut handle = 1;
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
        "chain `nat-output`: unexpected rule (handle 4): `ip daddr 169.254.169.254 tcp dport 80 meta mark != 0x00000001 \
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
        listen: "127.0.0.1:99".parse().unwrap(),
        mark: 5,
        wireserver: true,
    };
    let other = Options {
        containers: Containers::Redirect,
        listen: "10.0.0.1:99".parse().unwrap(),
        mark: 5,
        wireserver: true,
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
