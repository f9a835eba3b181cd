//! The daemon settings file, `/etc/gatehouse/gatehouse.toml`: settings of
//! the running gate that are not policy — for now, where the audit goes.
//! Validated like the policy file: every mistake at once, each with file,
//! line and column.
//!
//! ```toml
//! [export]
//! state_dir = "/var/lib/gatehouse"   # the cursors (default)
//! hostname = "vm-17"          # default: the kernel's host name
//! vm_id = "…"                 # default: asked of the metadata service (OTLP `host.id`)
//!
//! [export.sink.siem]          # name: a-z 0-9 - _, at most 32
//! url = "syslog+tls://siem.example:6514"
//! ca = "/etc/gatehouse/siem-ca.pem"   # TLS only; default: the system bundle
//! facility = "authpriv"       # syslog only; auth, authpriv, daemon, local0-7
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use gatehouse_policy::{Diagnostic, Severity};
use serde::Deserialize;
use toml::Spanned;

use crate::syslog::Facility;
use crate::target::Target;

/// The default place of the settings file.
pub const DEFAULT_PATH: &str = "/etc/gatehouse/gatehouse.toml";

/// The settings, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub export: Export,
}

/// `[export]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Export {
    /// Where the cursors live (default `/var/lib/gatehouse`).
    pub state_dir: Option<PathBuf>,
    pub hostname: Option<String>,
    pub vm_id: Option<String>,
    pub sinks: Vec<SinkConfig>,
}

/// One `[export.sink.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    pub name: String,
    pub url: String,
    pub target: Target,
    pub ca: Option<PathBuf>,
    pub facility: Facility,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    export: Option<RawExport>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExport {
    state_dir: Option<Spanned<String>>,
    hostname: Option<Spanned<String>>,
    vm_id: Option<Spanned<String>>,
    #[serde(default)]
    sink: BTreeMap<String, Spanned<RawSink>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    url: Spanned<String>,
    ca: Option<Spanned<String>>,
    facility: Option<Spanned<String>>,
}

/// Every problem of one settings file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}\n")?;
        }
        let n = self.diagnostics.len();
        write!(f, "{n} error{}", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for SettingsError {}

/// A sink name: bounded and safe in a file name and a metric label.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

struct Collect<'a> {
    source: &'a str,
    text: &'a str,
    out: Vec<Diagnostic>,
}

impl Collect<'_> {
    fn error(&mut self, span: std::ops::Range<usize>, message: String, help: Option<&str>) {
        self.out.push(Diagnostic::new(
            Severity::Error,
            self.source,
            self.text,
            span,
            message,
            help.map(str::to_owned),
        ));
    }
}

/// Parses and validates the settings in `text` (named `source` in errors).
pub fn parse(source: &str, text: &str) -> Result<Settings, SettingsError> {
    let mut c = Collect {
        source,
        text,
        out: Vec::new(),
    };
    let raw: RawFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            c.error(e.span().unwrap_or(0..0), e.message().to_owned(), None);
            return Err(SettingsError { diagnostics: c.out });
        }
    };
    let mut settings = Settings::default();
    if let Some(export) = raw.export {
        if let Some(dir) = export.state_dir {
            if dir.get_ref().starts_with('/') {
                settings.export.state_dir = Some(PathBuf::from(dir.into_inner()));
            } else {
                c.error(
                    dir.span(),
                    format!("`{}` is not an absolute path", dir.get_ref()),
                    None,
                );
            }
        }
        settings.export.hostname = export.hostname.map(Spanned::into_inner);
        settings.export.vm_id = export.vm_id.map(Spanned::into_inner);
        for (name, sink) in export.sink {
            let span = sink.span();
            let sink = sink.into_inner();
            if !valid_name(&name) {
                c.error(
                    span.clone(),
                    format!("sink name `{name}` is not allowed"),
                    Some("use 1 to 32 of a-z, 0-9, `-` and `_`"),
                );
            }
            let target = match Target::parse(sink.url.get_ref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    c.error(sink.url.span(), e.to_string(), Some(e.help()));
                    None
                }
            };
            let facility = match &sink.facility {
                None => Facility::Authpriv,
                Some(f) => Facility::parse(f.get_ref()).unwrap_or_else(|| {
                    c.error(
                        f.span(),
                        format!("unknown syslog facility `{}`", f.get_ref()),
                        Some("use `auth`, `authpriv`, `daemon` or `local0` to `local7`"),
                    );
                    Facility::Authpriv
                }),
            };
            if let (Some(f), Some(Target::Otlp { .. })) = (&sink.facility, &target) {
                c.error(
                    f.span(),
                    "`facility` is for syslog sinks".to_owned(),
                    Some("remove it"),
                );
            }
            if let (Some(ca), Some(t)) = (&sink.ca, &target) {
                if !t.tls() {
                    c.error(
                        ca.span(),
                        "`ca` is for TLS sinks".to_owned(),
                        Some("use `syslog+tls://` or `otlp+https://`, or remove `ca`"),
                    );
                } else if !ca.get_ref().starts_with('/') {
                    c.error(
                        ca.span(),
                        format!("`{}` is not an absolute path", ca.get_ref()),
                        None,
                    );
                }
            }
            if let Some(target) = target {
                settings.export.sinks.push(SinkConfig {
                    name,
                    url: sink.url.into_inner(),
                    target,
                    ca: sink.ca.map(|c| PathBuf::from(c.into_inner())),
                    facility,
                });
            }
        }
    }
    if c.out.is_empty() {
        Ok(settings)
    } else {
        Err(SettingsError { diagnostics: c.out })
    }
}

/// `--export NAME=URL`: adds a sink, or replaces the URL of the file's
/// sink of that name (its other settings stay).
pub fn apply_flag(settings: &mut Settings, flag: &str) -> Result<(), String> {
    let (name, url) = flag
        .split_once('=')
        .ok_or_else(|| format!("`{flag}` is not NAME=URL"))?;
    if !valid_name(name) {
        return Err(format!(
            "sink name `{name}` is not allowed: use 1 to 32 of a-z, 0-9, `-` and `_`"
        ));
    }
    let target = Target::parse(url).map_err(|e| format!("{e}: {}", e.help()))?;
    match settings.export.sinks.iter_mut().find(|s| s.name == name) {
        Some(s) => {
            s.url = url.to_owned();
            s.target = target;
        }
        None => settings.export.sinks.push(SinkConfig {
            name: name.to_owned(),
            url: url.to_owned(),
            target,
            ca: None,
            facility: Facility::Authpriv,
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
