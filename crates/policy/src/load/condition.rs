//! An assignment's `condition`: parse, type check against gatehouse's
//! vocabulary, and place every error at its line and column in the file.

use crate::condition::{self, ParseError};
use crate::model::Condition;
use crate::vocabulary::GatehouseSchema;

use super::fields::{Fields, Sink};

/// The condition, or `None` if there is none or it has errors (reported).
pub(super) fn load(sink: &mut Sink<'_>, f: &Fields<'_, '_>) -> Option<Condition> {
    if let Some((v, span)) = f.opt_str(sink, "condition_version") {
        if v != "2.0" {
            sink.error(
                span,
                format!("unsupported `condition_version` `{v}`"),
                Some("gatehouse reads conditionVersion `2.0`".into()),
            );
        }
    }
    text_at(
        sink,
        f,
        "condition",
        "remove `condition` to grant unconditionally",
    )
}

/// The condition written under `key`, or `None` if there is none or it has
/// errors (reported). `empty_help` says what to do about an empty one.
pub(super) fn text_at(
    sink: &mut Sink<'_>,
    f: &Fields<'_, '_>,
    key: &str,
    empty_help: &str,
) -> Option<Condition> {
    let value = f.get(key)?;
    let (text, span) = f.opt_str(sink, key)?;
    let base = inner_offset(sink.text, span.clone(), &text);
    let place = |e: &ParseError| match base {
        Some(b) => (b + e.span.start)..(b + e.span.end.max(e.span.start)),
        None => span.clone(),
    };
    if text.trim().is_empty() {
        sink.error(
            value.span(),
            "empty condition".into(),
            Some(empty_help.into()),
        );
        return None;
    }
    let expr = match condition::parse(&text) {
        Ok(e) => e,
        Err(errors) => {
            for e in &errors {
                sink.error(
                    place(e),
                    format!("condition: {}", e.message),
                    e.help.clone(),
                );
            }
            return None;
        }
    };
    let errors = condition::check(&expr, &GatehouseSchema);
    for e in &errors {
        sink.error(
            place(e),
            format!("condition: {}", e.message),
            e.help.clone(),
        );
    }
    errors.is_empty().then_some(Condition { text, expr })
}

/// Where the decoded string `value` starts in the file, if the TOML string
/// at `span` holds it verbatim (a literal string, or a basic string without
/// escapes); otherwise errors point at the whole string.
fn inner_offset(text: &str, span: std::ops::Range<usize>, value: &str) -> Option<usize> {
    let raw = text.get(span.clone())?;
    let mut start = span.start;
    if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        start += 3;
        if text.get(start..)?.starts_with("\r\n") {
            start += 2;
        } else if text.get(start..)?.starts_with('\n') {
            start += 1;
        }
    } else if raw.starts_with('\'') || raw.starts_with('"') {
        start += 1;
    } else {
        return None;
    }
    (text.get(start..start + value.len())? == value).then_some(start)
}
