//! Typed, spanned access to one TOML table's fields, reporting type errors,
//! missing keys and unknown keys into the shared diagnostics.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::suggest;

/// Where diagnostics go, with the text needed to place them.
pub(crate) struct Sink<'t> {
    pub source: &'t str,
    pub text: &'t str,
    pub diags: Diagnostics,
}

impl Sink<'_> {
    pub(crate) fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        self.diags.push(Diagnostic::new(
            Severity::Error,
            self.source,
            self.text,
            span,
            message,
            help,
        ));
    }
}

/// A string value and where it was written.
pub(crate) type Str = (String, Range<usize>);

/// One table's fields. `what` names the table in messages (`assignment`).
pub(crate) struct Fields<'a, 'i> {
    table: &'a DeTable<'i>,
    span: Range<usize>,
    what: &'static str,
}

impl<'a, 'i> Fields<'a, 'i> {
    /// Wrap `table`, reporting every key not in `allowed`.
    pub(crate) fn new(
        sink: &mut Sink<'_>,
        table: &'a DeTable<'i>,
        span: Range<usize>,
        what: &'static str,
        allowed: &[&str],
    ) -> Fields<'a, 'i> {
        for key in table.keys() {
            let k: &str = key.get_ref();
            if !allowed.contains(&k) {
                let help = suggest::closest(k, allowed.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some(format!("expected one of {}", quoted(allowed))));
                sink.error(key.span(), format!("unknown key `{k}` in {what}"), help);
            }
        }
        Fields { table, span, what }
    }

    /// The table's own span (its header, or the whole inline table).
    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.table
            .iter()
            .find(|(k, _)| {
                let k: &str = k.get_ref();
                k == key
            })
            .map(|(_, v)| v)
    }

    /// Where `key` itself (not its value) is written.
    pub(crate) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table
            .keys()
            .find(|k| {
                let k: &str = k.get_ref();
                k == key
            })
            .map(|k| k.span())
    }

    /// An optional `true` / `false`.
    pub(crate) fn opt_bool(&self, sink: &mut Sink<'_>, key: &str) -> Option<(bool, Range<usize>)> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some((*b, v.span())),
            other => {
                sink.error(
                    v.span(),
                    format!(
                        "`{key}` must be `true` or `false`, found {}",
                        other.type_str()
                    ),
                    None,
                );
                None
            }
        }
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn missing(&self, sink: &mut Sink<'_>, key: &str) {
        sink.error(
            self.span(),
            format!("missing `{key}` in {}", self.what),
            None,
        );
    }

    /// An optional string.
    pub(crate) fn opt_str(&self, sink: &mut Sink<'_>, key: &str) -> Option<Str> {
        let v = self.get(key)?;
        expect_str(sink, key, v)
    }

    /// A required string; reports it missing.
    pub(crate) fn str(&self, sink: &mut Sink<'_>, key: &str) -> Option<Str> {
        if !self.has(key) {
            self.missing(sink, key);
            return None;
        }
        self.opt_str(sink, key)
    }

    /// An optional list of strings; bad elements are reported and dropped.
    pub(crate) fn opt_list(
        &self,
        sink: &mut Sink<'_>,
        key: &str,
    ) -> Option<(Vec<Str>, Range<usize>)> {
        let v = self.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            sink.error(
                v.span(),
                format!(
                    "`{key}` must be a list of strings, found {}",
                    v.get_ref().type_str()
                ),
                None,
            );
            return None;
        };
        let list = items
            .iter()
            .filter_map(|item| expect_str(sink, key, item))
            .collect();
        Some((list, v.span()))
    }

    /// A required, non-empty list of strings.
    pub(crate) fn list(&self, sink: &mut Sink<'_>, key: &str) -> Option<(Vec<Str>, Range<usize>)> {
        if !self.has(key) {
            self.missing(sink, key);
            return None;
        }
        let (list, span) = self.opt_list(sink, key)?;
        if list.is_empty() {
            sink.error(span, format!("`{key}` is empty"), None);
            return None;
        }
        Some((list, span))
    }

    /// A required sub-table.
    pub(crate) fn opt_table(
        &self,
        sink: &mut Sink<'_>,
        key: &str,
    ) -> Option<(&'a DeTable<'i>, Range<usize>)> {
        let v = self.get(key)?;
        as_table(sink, key, v)
    }

    /// An optional array of tables (`[[key]]`).
    pub(crate) fn opt_tables(
        &self,
        sink: &mut Sink<'_>,
        key: &str,
    ) -> Vec<(&'a DeTable<'i>, Range<usize>)> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            sink.error(
                v.span(),
                format!(
                    "`{key}` must be an array of tables (`[[{key}]]`), found {}",
                    v.get_ref().type_str()
                ),
                None,
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| as_table(sink, key, item))
            .collect()
    }
}

fn expect_str(sink: &mut Sink<'_>, key: &str, v: &Spanned<DeValue<'_>>) -> Option<Str> {
    match v.get_ref() {
        DeValue::String(s) => Some((s.to_string(), v.span())),
        other => {
            sink.error(
                v.span(),
                format!("`{key}` must be a string, found {}", other.type_str()),
                None,
            );
            None
        }
    }
}

pub(crate) fn as_table<'a, 'i>(
    sink: &mut Sink<'_>,
    key: &str,
    v: &'a Spanned<DeValue<'i>>,
) -> Option<(&'a DeTable<'i>, Range<usize>)> {
    match v.get_ref() {
        DeValue::Table(t) => Some((t, v.span())),
        other => {
            sink.error(
                v.span(),
                format!("`{key}` must be a table, found {}", other.type_str()),
                None,
            );
            None
        }
    }
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
