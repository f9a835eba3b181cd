//! The JSON Schema of a record line, generated from the types, and the
//! reference tables of `docs/audit.md`, generated from that schema.

use schemars::JsonSchema;
use serde_json::Value;

use crate::event::{Event, SCHEMA_VERSION};

/// One line of the log (see the crate documentation for the chain).
#[derive(JsonSchema)]
#[schemars(title = "gatehouse audit record", deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "describes the line for the schema only; never built"
)]
struct Line {
    /// 1 for the first record ever written, then each predecessor's + 1, across rotation.
    seq: u64,
    /// When it was written: RFC 3339, UTC, milliseconds (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
    time: String,
    /// The previous record's `hash` (64 lowercase hex digits), or 64 `0`s for seq 1.
    prev: String,
    /// What happened.
    event: Event,
    /// SHA-256 (lowercase hex) of `prev`, a newline, and the line up to `,"hash":`.
    hash: String,
}

/// The JSON Schema (2020-12) of one record line.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(Line).to_value();
    if let Value::Object(map) = &mut schema {
        map.insert(
            "$comment".into(),
            Value::String(format!(
                "gatehouse audit schema version {SCHEMA_VERSION}; generated from the Rust types \
                 (crates/audit/src/event), do not edit"
            )),
        );
    }
    schema
}

/// The reference part of `docs/audit.md`: one section per record type and
/// one per shared structure, each a table of its fields, all from
/// [`json_schema`] (so from the types' own doc comments).
pub fn markdown_reference() -> String {
    let schema = json_schema();
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let mut out = String::new();
    out.push_str("## The record line\n\n");
    table(&mut out, &schema, &defs);
    out.push_str("\n## Record types\n\n");
    let variants = defs
        .get("Event")
        .and_then(|e| e.get("oneOf"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for variant in &variants {
        let name = variant
            .pointer("/properties/type/const")
            .and_then(Value::as_str)
            .unwrap_or("?");
        out.push_str(&format!("### `{name}`\n\n"));
        description(&mut out, variant);
        table(&mut out, variant, &defs);
        out.push('\n');
    }
    out.push_str("## Shared structures\n\n");
    if let Value::Object(map) = &defs {
        for (name, def) in map {
            if name == "Event" {
                continue;
            }
            out.push_str(&format!("### {name}\n\n"));
            description(&mut out, def);
            if def.get("properties").is_some() {
                table(&mut out, def, &defs);
            } else if let Some(choices) = def.get("oneOf").or_else(|| def.get("anyOf")) {
                for choice in choices.as_array().into_iter().flatten() {
                    let what = match choice.get("const") {
                        Some(c) => format!("`{}`", c.as_str().unwrap_or("?")),
                        None => type_of(choice),
                    };
                    let why = one_line(choice.get("description"));
                    out.push_str(&format!(
                        "- {what}{}\n",
                        if why.is_empty() {
                            String::new()
                        } else {
                            format!(": {why}")
                        }
                    ));
                }
            }
            out.push('\n');
        }
    }
    out
}

fn description(out: &mut String, schema: &Value) {
    let text = one_line(schema.get("description"));
    if !text.is_empty() {
        out.push_str(&text);
        out.push_str("\n\n");
    }
}

/// A doc comment as one line of markdown.
fn one_line(text: Option<&Value>) -> String {
    let text = text.and_then(Value::as_str).unwrap_or("");
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn table(out: &mut String, schema: &Value, _defs: &Value) {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let fields: Vec<_> = props
        .iter()
        .filter(|(name, _)| name.as_str() != "type")
        .collect();
    if fields.is_empty() {
        out.push_str("No fields besides `type`.\n");
        return;
    }
    out.push_str("| field | type | meaning |\n|---|---|---|\n");
    for (name, prop) in fields {
        let optional = if required.contains(&name.as_str()) {
            ""
        } else {
            " (may be absent)"
        };
        out.push_str(&format!(
            "| `{name}` | {}{optional} | {} |\n",
            type_of(prop),
            one_line(prop.get("description"))
        ));
    }
}

/// A field's type in words: `string`, `integer`, `array of Holder`, …
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        return any.iter().map(type_of).collect::<Vec<_>>().join(" or ");
    }
    let base = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => vec!["any".to_owned()],
    };
    base.iter()
        .map(|t| match t.as_str() {
            "array" => format!(
                "array of {}",
                schema
                    .get("items")
                    .map(type_of)
                    .unwrap_or_else(|| "any".to_owned())
            ),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}
