//! Load-time diagnostics with file, line, column and span, rendered like
//! rustc so an operator can find the mistake at a glance.

use std::fmt;
use std::ops::Range;

/// How bad a diagnostic is. Any error rejects the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Lowercase; user input in backticks.
    pub message: String,
    pub help: Option<String>,
    /// The source name given to [`crate::parse`].
    pub source: String,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column (in characters) of `span.start`.
    pub column: usize,
    /// Byte range in the source text.
    pub span: Range<usize>,
    /// The text of line `line`, for rendering.
    pub snippet: String,
    /// A warning's code (`orphan`, `redundant`, …: what `allow_warnings`
    /// accepts, and the rule id of `check --format sarif`); `None` for errors.
    pub code: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `span` of `text` (also used for gatehouse's other
    /// TOML files, so every file reports mistakes the same way).
    pub fn new(
        severity: Severity,
        source: &str,
        text: &str,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
        let before = text.get(..start).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = text
            .get(start..)
            .and_then(|rest| rest.find('\n'))
            .map_or(text.len(), |i| start + i);
        let snippet = text
            .get(line_start..line_end)
            .unwrap_or_default()
            .trim_end_matches('\r')
            .to_owned();
        Diagnostic {
            severity,
            message,
            help,
            source: source.to_owned(),
            line: before.matches('\n').count() + 1,
            column: text.get(line_start..start).map_or(0, |s| s.chars().count()) + 1,
            span: start..end,
            snippet,
            code: None,
        }
    }
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}: {}",
            self.source, self.line, self.column, self.severity, self.message
        )?;
        let gutter = self.line.to_string();
        let pad = " ".repeat(gutter.len());
        let line_len = self.snippet.chars().count();
        let col = self.column.saturating_sub(1);
        let width = self.span.len().min(line_len.saturating_sub(col)).max(1);
        writeln!(f, "{pad} |")?;
        writeln!(f, "{gutter} | {}", self.snippet)?;
        write!(f, "{pad} | {}{}", " ".repeat(col), "^".repeat(width))?;
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Every diagnostic from one load, sorted by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub(crate) fn sort(&mut self) {
        self.items.sort_by_key(|d| (d.span.start, d.span.end));
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of errors (as opposed to warnings).
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{d}\n")?;
        }
        let errors = self.error_count();
        let warnings = self.items.len() - errors;
        write!(f, "{errors} error{}", if errors == 1 { "" } else { "s" })?;
        if warnings > 0 {
            write!(
                f,
                ", {warnings} warning{}",
                if warnings == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
