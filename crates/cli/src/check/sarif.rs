//! `gatehouse check --format sarif`: the diagnostics as a SARIF 2.1.0 log
//! (OASIS), so a policy repository's CI (GitHub code scanning, GitLab,
//! Azure DevOps) shows each finding on its line. Typed serde structs of the
//! few objects used; `crates/cli/tests/check_sarif.rs` validates the output
//! against the standard's JSON schema.

use gatehouse_policy::{Diagnostic, Diagnostics, Severity};
use serde::Serialize;

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Every rule `check` can report: the warning codes, and errors.
const RULES: &[(&str, &str)] = &[
    ("error", "The policy does not load: the gate refuses it."),
    (
        "orphan",
        "A principal that matches nothing on this machine.",
    ),
    ("exe-by-path", "An executable trusted by its path only."),
    ("over-broad", "Tokens for any identity and any audience."),
    (
        "condition-targets-nothing",
        "A condition whose ActionMatches blocks never apply.",
    ),
    (
        "sub-operation",
        "SubOperationMatches, which is always false here.",
    ),
    (
        "unknown-identity",
        "A condition naming an identity the policy does not define.",
    ),
    (
        "bypassed",
        "A condition another, unconditioned assignment makes moot.",
    ),
    ("duplicate", "An assignment identical to an earlier one."),
    (
        "unreachable",
        "An assignment a deny assignment always blocks, or that grants nothing.",
    ),
    (
        "always-false",
        "An assignment whose condition no request can make true.",
    ),
    (
        "redundant",
        "An assignment another one already grants in full.",
    ),
];

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool,
    results: Vec<SarifResult<'a>>,
    column_kind: &'static str,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    semantic_version: &'static str,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: &'static str,
    short_description: Text,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<Location<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    physical_location: PhysicalLocation<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation<'a> {
    artifact_location: ArtifactLocation,
    region: Region<'a>,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region<'a> {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
    snippet: Snippet<'a>,
}

#[derive(Serialize)]
struct Snippet<'a> {
    text: &'a str,
}

/// The log for the diagnostics of `file` (whose text is `text`).
pub(super) fn render(
    file: &str,
    text: &str,
    diags: &Diagnostics,
) -> Result<String, serde_json::Error> {
    let uri = file_uri(file);
    let results = diags
        .iter()
        .map(|d| {
            let rule_id = rule_of(d);
            let rule_index = RULES.iter().position(|(id, _)| *id == rule_id).unwrap_or(0);
            let (end_line, end_column) = position(text, d.span.end.max(d.span.start + 1));
            let message = match &d.help {
                Some(h) => format!("{}\nhelp: {h}", d.message),
                None => d.message.clone(),
            };
            SarifResult {
                rule_id,
                rule_index,
                level: match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                message: Text { text: message },
                locations: vec![Location {
                    physical_location: PhysicalLocation {
                        artifact_location: ArtifactLocation { uri: uri.clone() },
                        region: Region {
                            start_line: d.line,
                            start_column: d.column,
                            end_line,
                            end_column,
                            snippet: Snippet { text: &d.snippet },
                        },
                    },
                }],
            }
        })
        .collect();
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "gatehouse check",
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    rules: RULES
                        .iter()
                        .map(|(id, what)| Rule {
                            id,
                            short_description: Text {
                                text: (*what).to_owned(),
                            },
                        })
                        .collect(),
                },
            },
            results,
            column_kind: "unicodeCodePoints",
        }],
    };
    serde_json::to_string_pretty(&log)
}

fn rule_of(d: &Diagnostic) -> &str {
    match (&d.severity, d.code.as_deref()) {
        (Severity::Warning, Some(code)) if RULES.iter().any(|(id, _)| *id == code) => code,
        (Severity::Warning, _) => "orphan",
        (Severity::Error, _) => "error",
    }
}

/// 1-based line and column (in characters) of the byte offset `at`; a
/// region's end column is the one just past its last character.
fn position(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = text.get(..at).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (before.matches('\n').count() + 1, column)
}

/// The policy's path as a URI reference: relative paths stay relative (the
/// repository's CI resolves them), absolute ones become `file://` URIs.
fn file_uri(path: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(path, KEEP).to_string();
    if path.starts_with('/') {
        format!("file://{encoded}")
    } else {
        encoded
    }
}
