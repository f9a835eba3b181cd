//! Where gatehouse's own log lines go (not the audit log, which is its own
//! file): the systemd journal with structured fields when systemd started us
//! with stderr connected to the journal, otherwise stderr as text, or JSON
//! lines with `--log-format json` for collectors that read stderr.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// The journal when stderr is systemd's journal stream (`JOURNAL_STREAM`
    /// names it), else `text`.
    Auto,
    /// One human-readable line per event on stderr.
    Text,
    /// One JSON object per line on stderr (fields flattened, a `timestamp`,
    /// `level` and `target`): for log collectors.
    Json,
    /// The systemd journal's native protocol, structured fields prefixed
    /// `GATEHOUSE_` (falls back to `text` if the journal cannot be reached).
    Journal,
}

/// Where the log goes once `--log-format` and the environment are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    Text,
    Json,
    Journal,
}

/// `auto` picks the journal only when `JOURNAL_STREAM` (`DEVICE:INODE`, set by
/// systemd for a service whose stderr it connected to the journal) names the
/// file that stderr is now: a shell or wrapper that redirected stderr
/// elsewhere gets what it asked for.
#[must_use]
pub fn choose(format: LogFormat, journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> Sink {
    match format {
        LogFormat::Text => Sink::Text,
        LogFormat::Json => Sink::Json,
        LogFormat::Journal => Sink::Journal,
        LogFormat::Auto => {
            let named = journal_stream.and_then(|v| {
                let (dev, ino) = v.trim().split_once(':')?;
                Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
            });
            match (named, stderr) {
                (Some(n), Some(s)) if n == s => Sink::Journal,
                _ => Sink::Text,
            }
        }
    }
}

/// Install the global subscriber. Filter: `GATEHOUSE_LOG` (an `EnvFilter`
/// directive such as `debug` or `gatehouse=debug`), default `info`.
pub fn init(format: LogFormat) {
    let filter =
        || EnvFilter::try_from_env("GATEHOUSE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let stream = std::env::var("JOURNAL_STREAM").ok();
    let sink = choose(format, stream.as_deref(), gatehouse_sys::stderr_identity());
    match sink {
        Sink::Journal => match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer
                    .with_field_prefix(Some("GATEHOUSE".into()))
                    .with_syslog_identifier("gatehouse".into());
                tracing_subscriber::registry()
                    .with(filter())
                    .with(layer)
                    .init();
            }
            Err(e) => {
                text(filter());
                tracing::warn!(error = %e, "cannot reach the journal; logging to stderr");
            }
        },
        Sink::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            // A closed stderr must not break a request: tracing's own
            // report of a failed write is an eprintln!, which panics then.
            .log_internal_errors(false)
            .init(),
        Sink::Text => text(filter()),
    }
}

fn text(filter: EnvFilter) {
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .init();
}

#[cfg(test)]
mod tests;
