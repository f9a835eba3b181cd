//! Audit export: every record of the local audit log, shipped to the
//! collectors a security team runs (syslog RFC 5424, OpenTelemetry OTLP/HTTP),
//! at least once and in order. See docs/audit.md, "Export".
//!
//! The log file is the source of truth and the only queue: each sink has a
//! [`LogReader`] and a durable [`Cursor`]; a sink that is down or slow only
//! falls behind, it never holds up the gate's decisions.

#![forbid(unsafe_code)]

pub mod cursor;
pub mod exporter;
pub mod line;
pub mod net;
pub mod otlp;
pub mod pump;
pub mod reader;
pub mod settings;
pub mod sink;
pub mod syslog;
pub mod target;

pub use cursor::Cursor;
pub use exporter::{Exporter, Prepared, Unreachable};
pub use line::{Level, Line};
pub use pump::{Host, SinkStatus};
pub use reader::{Batch, Discontinuity, LogReader};
pub use settings::{Settings, SettingsError, SinkConfig};
pub use sink::{Origin, SendError};
pub use target::Target;
