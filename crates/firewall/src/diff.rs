//! Structural comparison of `nft -j list table inet gatehouse` with the
//! ruleset gatehouse renders: chains by name and header, rules by their
//! expressions and comment (handles and counters ignored), in order; sets by
//! name, type, flags and elements — except the elements of the just-in-time
//! sets (`jit4`, `jit6`), which are run-time state, not drift.

use crate::ruleset::{Ruleset, FAMILY, TABLE};
use serde_json::Value;
use std::fmt;

#[cfg(test)]
mod tests;

/// One way the kernel's table differs from the rendered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// There is no `inet gatehouse` table at all.
    TableMissing,
    ChainMissing {
        chain: String,
    },
    ChainUnexpected {
        chain: String,
    },
    /// Type, hook, priority or policy differ.
    ChainHeader {
        chain: String,
        expected: String,
        found: String,
    },
    RuleMissing {
        chain: String,
        rule: String,
    },
    RuleUnexpected {
        chain: String,
        handle: Option<u64>,
        rule: String,
    },
    /// The same rules, in another order.
    RulesReordered {
        chain: String,
    },
    SetMissing {
        set: String,
    },
    /// Type or flags differ.
    SetHeader {
        set: String,
        expected: String,
        found: String,
    },
    /// A declared set (protected ports, break-glass ranges) holds other
    /// elements than rendered, in nft's words.
    SetElements {
        set: String,
        missing: Vec<String>,
        unexpected: Vec<String>,
    },
    /// A set, map, flowtable or other object we never create.
    ObjectUnexpected {
        kind: String,
        name: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::TableMissing => write!(f, "table `{FAMILY} {TABLE}` is missing"),
            Difference::ChainMissing { chain } => write!(f, "chain `{chain}` is missing"),
            Difference::ChainUnexpected { chain } => write!(f, "chain `{chain}` should not exist"),
            Difference::ChainHeader {
                chain,
                expected,
                found,
            } => {
                write!(f, "chain `{chain}` is `{found}`, expected `{expected}`")
            }
            Difference::RuleMissing { chain, rule } => {
                write!(f, "chain `{chain}`: rule missing: `{rule}`")
            }
            Difference::RuleUnexpected {
                chain,
                handle,
                rule,
            } => match handle {
                Some(h) => write!(f, "chain `{chain}`: unexpected rule (handle {h}): `{rule}`"),
                None => write!(f, "chain `{chain}`: unexpected rule: `{rule}`"),
            },
            Difference::RulesReordered { chain } => {
                write!(f, "chain `{chain}`: rules are out of order")
            }
            Difference::SetMissing { set } => write!(f, "set `{set}` is missing"),
            Difference::SetHeader {
                set,
                expected,
                found,
            } => write!(f, "set `{set}` is `{found}`, expected `{expected}`"),
            Difference::SetElements {
                set,
                missing,
                unexpected,
            } => {
                write!(f, "set `{set}`:")?;
                if !missing.is_empty() {
                    write!(f, " missing elements `{}`", missing.join(", "))?;
                }
                if !missing.is_empty() && !unexpected.is_empty() {
                    write!(f, ";")?;
                }
                if !unexpected.is_empty() {
                    write!(f, " unexpected elements `{}`", unexpected.join(", "))?;
                }
                Ok(())
            }
            Difference::ObjectUnexpected { kind, name } => {
                write!(f, "unexpected {kind} `{name}` in the table")
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListingError {
    #[error("`nft -j` output has no `nftables` array")]
    NotNftables,
}

/// A rule as listed: what it does, plus its handle for the report.
struct Listed {
    handle: Option<u64>,
    body: Value,
}

/// Compare a parsed `nft -j list table` answer (or `None` when the table does
/// not exist) with `expected`. An empty result means they are the same.
pub fn compare(
    listing: Option<&Value>,
    expected: &Ruleset,
) -> Result<Vec<Difference>, ListingError> {
    let Some(listing) = listing else {
        return Ok(vec![Difference::TableMissing]);
    };
    let items = listing
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or(ListingError::NotNftables)?;
    let mut chains: Vec<(String, Value)> = Vec::new();
    let mut rules: Vec<(String, Listed)> = Vec::new();
    let mut sets: Vec<(String, &Value)> = Vec::new();
    let mut out = Vec::new();
    let mut table_seen = false;
    for item in items {
        let Some(object) = item.as_object() else {
            continue;
        };
        for (kind, v) in object {
            if !ours(v) && kind != "metainfo" {
                continue;
            }
            match kind.as_str() {
                "metainfo" => {}
                "table" => table_seen = true,
                "chain" => chains.push((text_field(v, "name"), chain_header(v))),
                "rule" => rules.push((text_field(v, "chain"), listed_rule(v))),
                "set"
                    if expected
                        .sets
                        .iter()
                        .any(|s| s.name == text_field(v, "name")) =>
                {
                    sets.push((text_field(v, "name"), v));
                }
                other => out.push(Difference::ObjectUnexpected {
                    kind: other.to_owned(),
                    name: text_field(v, "name"),
                }),
            }
        }
    }
    if !table_seen {
        return Ok(vec![Difference::TableMissing]);
    }

    for s in &expected.sets {
        match sets.iter().find(|(name, _)| name == s.name) {
            Some((_, listed)) => compare_set(s, listed, &mut out),
            None => out.push(Difference::SetMissing {
                set: s.name.to_owned(),
            }),
        }
    }
    for c in &expected.chains {
        let Some((_, header)) = chains.iter().find(|(name, _)| name == c.name) else {
            out.push(Difference::ChainMissing {
                chain: c.name.to_owned(),
            });
            continue;
        };
        let want = c.header_json();
        if *header != want {
            out.push(Difference::ChainHeader {
                chain: c.name.to_owned(),
                expected: compact(&want),
                found: compact(header),
            });
        }
        let found: Vec<&Listed> = rules
            .iter()
            .filter(|(chain, _)| chain == c.name)
            .map(|(_, r)| r)
            .collect();
        compare_rules(c.name, &c.rules, &found, &mut out);
    }
    for (name, _) in &chains {
        if !expected.chains.iter().any(|c| c.name == name) {
            out.push(Difference::ChainUnexpected {
                chain: name.clone(),
            });
        }
    }
    Ok(out)
}

fn compare_rules(
    chain: &str,
    expected: &[crate::ruleset::Rule],
    found: &[&Listed],
    out: &mut Vec<Difference>,
) {
    let want: Vec<Value> = expected.iter().map(crate::ruleset::Rule::json).collect();
    // Multiset difference both ways; equal multisets in another order are
    // reported once as a reordering.
    let mut unmatched: Vec<Option<&Listed>> = found.iter().copied().map(Some).collect();
    let mut any_missing = false;
    for (rule, body) in expected.iter().zip(&want) {
        let hit = unmatched
            .iter_mut()
            .find(|slot| slot.is_some_and(|l| l.body == *body));
        match hit {
            Some(slot) => *slot = None,
            None => {
                any_missing = true;
                out.push(Difference::RuleMissing {
                    chain: chain.to_owned(),
                    rule: rule.text(),
                });
            }
        }
    }
    let mut any_unexpected = false;
    for l in unmatched.into_iter().flatten() {
        any_unexpected = true;
        out.push(Difference::RuleUnexpected {
            chain: chain.to_owned(),
            handle: l.handle,
            rule: describe(&l.body),
        });
    }
    if !any_missing && !any_unexpected && found.iter().map(|l| &l.body).ne(want.iter()) {
        out.push(Difference::RulesReordered {
            chain: chain.to_owned(),
        });
    }
}

fn compare_set(expected: &crate::ruleset::Set, listed: &Value, out: &mut Vec<Difference>) {
    let want = expected.header_json();
    let found = set_header(listed);
    if found != want {
        out.push(Difference::SetHeader {
            set: expected.name.to_owned(),
            expected: compact(&want),
            found: compact(&found),
        });
    }
    // `None`: run-time elements, never drift.
    let Some(elements) = &expected.elements else {
        return;
    };
    let mut unexpected: Vec<&Value> = listed
        .get("elem")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut missing = Vec::new();
    for e in elements {
        let json = e.json();
        match unexpected.iter().position(|l| **l == json) {
            Some(i) => {
                unexpected.swap_remove(i);
            }
            None => missing.push(e.text()),
        }
    }
    if !missing.is_empty() || !unexpected.is_empty() {
        out.push(Difference::SetElements {
            set: expected.name.to_owned(),
            missing,
            unexpected: unexpected.into_iter().map(element).collect(),
        });
    }
}

/// A listed set's type and flags, normalised as `Set::header_json` renders
/// them.
fn set_header(v: &Value) -> Value {
    let types = match v.get("type") {
        Some(Value::String(t)) => Value::Array(vec![Value::String(t.clone())]),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let mut flags: Vec<Value> = match v.get("flags") {
        Some(Value::Array(f)) => f.clone(),
        Some(Value::String(f)) => vec![Value::String(f.clone())],
        _ => Vec::new(),
    };
    flags.sort_by_key(compact);
    serde_json::json!({"type": types, "flags": flags})
}

/// A listed set element in nft's words.
fn element(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            if let Some(parts) = e.get("concat").and_then(Value::as_array) {
                return parts.iter().map(element).collect::<Vec<_>>().join(" . ");
            }
            if let Some(p) = e.get("prefix") {
                return format!(
                    "{}/{}",
                    text_field(p, "addr"),
                    p.get("len").map(Value::to_string).unwrap_or_default()
                );
            }
            if let Some(val) = e.get("elem").and_then(|i| i.get("val")) {
                return element(val);
            }
            compact(e)
        }
    }
}

fn ours(v: &Value) -> bool {
    let table = v.get("table").or_else(|| v.get("name"));
    v.get("family").and_then(Value::as_str) == Some(FAMILY)
        && table.and_then(Value::as_str) == Some(TABLE)
}

fn text_field(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("?").to_owned()
}

fn chain_header(v: &Value) -> Value {
    let mut header = serde_json::Map::new();
    for key in ["type", "hook", "prio", "policy"] {
        header.insert(key.to_owned(), v.get(key).cloned().unwrap_or(Value::Null));
    }
    Value::Object(header)
}

fn listed_rule(v: &Value) -> Listed {
    // Counters would make every rule look changed; we never render them.
    let expr: Vec<Value> = v
        .get("expr")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|e| e.get("counter").is_none())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut body = serde_json::Map::new();
    body.insert(
        "comment".to_owned(),
        v.get("comment").cloned().unwrap_or(Value::Null),
    );
    body.insert("expr".to_owned(), Value::Array(expr));
    Listed {
        handle: v.get("handle").and_then(Value::as_u64),
        body: Value::Object(body),
    }
}

/// A listed rule in nft's own words where we know the expression's shape,
/// compact JSON where we do not — so `verify` can name a stranger's rule.
fn describe(body: &Value) -> String {
    let parts: Vec<String> = body
        .get("expr")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(expression)
        .collect();
    let text = parts.join(" ");
    let text: String = if text.chars().count() > 300 {
        text.chars().take(300).chain("…".chars()).collect()
    } else {
        text
    };
    match body.get("comment").and_then(Value::as_str) {
        Some(c) => format!("{text} comment \"{c}\""),
        None => text,
    }
}

fn expression(e: &Value) -> String {
    let Some((key, v)) = e.as_object().and_then(|o| o.iter().next()) else {
        return compact(e);
    };
    match key.as_str() {
        "match" => {
            let left = v.get("left").map(operand).unwrap_or_default();
            let op = v.get("op").and_then(Value::as_str).unwrap_or("==");
            let right = v.get("right").map(|r| value(r, &left)).unwrap_or_default();
            if op == "==" || op == "in" {
                format!("{left} {right}")
            } else {
                format!("{left} {op} {right}")
            }
        }
        "accept" | "drop" | "return" | "continue" => key.clone(),
        "jump" | "goto" => format!("{key} {}", text_field(v, "target")),
        "reject" => match v.get("type").and_then(Value::as_str) {
            Some(t) => format!("reject with {t}"),
            None => "reject".to_owned(),
        },
        "redirect" => match v.get("port") {
            Some(p) => format!("redirect to :{p}"),
            None => "redirect".to_owned(),
        },
        "dnat" | "snat" => {
            let addr = v.get("addr").and_then(Value::as_str).unwrap_or("");
            let family = v
                .get("family")
                .and_then(Value::as_str)
                .map(|f| format!(" {f}"))
                .unwrap_or_default();
            match v.get("port") {
                Some(p) => format!("{key}{family} to {addr}:{p}"),
                None => format!("{key}{family} to {addr}"),
            }
        }
        "counter" => "counter".to_owned(),
        _ => compact(e),
    }
}

fn operand(v: &Value) -> String {
    if let Some(parts) = v.get("concat").and_then(Value::as_array) {
        return parts.iter().map(operand).collect::<Vec<_>>().join(" . ");
    }
    if let Some(p) = v.get("payload") {
        return format!("{} {}", text_field(p, "protocol"), text_field(p, "field"));
    }
    if let Some(m) = v.get("meta") {
        let key = text_field(m, "key");
        return if matches!(key.as_str(), "iifname" | "oifname" | "iif" | "oif") {
            key
        } else {
            format!("meta {key}")
        };
    }
    if let Some(c) = v.get("ct") {
        return match c.get("dir").and_then(Value::as_str) {
            Some(dir) => format!("ct {dir} {}", text_field(c, "key")),
            None => format!("ct {}", text_field(c, "key")),
        };
    }
    compact(v)
}

fn value(v: &Value, left: &str) -> String {
    match v {
        Value::String(s) if left.ends_with("name") || left == "iif" || left == "oif" => {
            format!("\"{s}\"")
        }
        Value::String(s) => s.clone(),
        Value::Number(n) if left == "meta mark" => n
            .as_u64()
            .map_or_else(|| n.to_string(), |m| format!("0x{m:08x}")),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|i| value(i, left))
            .collect::<Vec<_>>()
            .join(","),
        _ => match v.get("prefix") {
            Some(p) => format!(
                "{}/{}",
                text_field(p, "addr"),
                p.get("len").map(Value::to_string).unwrap_or_default()
            ),
            None => compact(v),
        },
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
