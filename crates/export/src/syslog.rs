//! RFC 5424 messages, one per audit record, to the local daemon
//! (`/dev/log`, one datagram each) or to a collector over TCP with
//! octet-counting framing (RFC 6587 §3.4.1), optionally TLS (RFC 5425).
//!
//! Hand-written (a few dozen lines): `fasyslog` stamps messages with the
//! wall clock at formatting time (a record must carry its own time), pulls
//! in a second `jiff` major and `nix`, and the other crates only parse.
//!
//! ```text
//! <PRI>1 TIME HOST gatehouse - TYPE [gatehouse@32473 seq="…" hash="…" …] BOM{json record}
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

use crate::line::{Level, Line};
use crate::net::{self, Conn};
use crate::target::Endpoint;
use crate::SendError;

/// The structured-data id. 32473 is the enterprise number RFC 5612 sets
/// aside for documentation; gatehouse has none of its own.
pub const SD_ID: &str = "gatehouse@32473";

/// Syslog facilities gatehouse can send with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    Auth,
    Authpriv,
    Daemon,
    Local(u8),
}

impl Facility {
    pub fn parse(s: &str) -> Option<Facility> {
        Some(match s {
            "auth" => Facility::Auth,
            "authpriv" => Facility::Authpriv,
            "daemon" => Facility::Daemon,
            _ => {
                let n: u8 = s.strip_prefix("local")?.parse().ok()?;
                if n > 7 {
                    return None;
                }
                Facility::Local(n)
            }
        })
    }

    fn code(self) -> u8 {
        match self {
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            Facility::Daemon => 3,
            Facility::Local(n) => 16 + n,
        }
    }
}

fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warning => 4,
        Level::Notice => 5,
        Level::Info => 6,
    }
}

/// Key fields carried as structured data (SD-PARAM name, event field).
const SD_FIELDS: [(&str, &str); 9] = [
    ("decision_id", "decision"),
    ("outcome", "outcome"),
    ("uid", "caller.uid"),
    ("user", "caller.user"),
    ("pid", "caller.pid"),
    ("exe", "caller.exe"),
    ("identity", "request.identity"),
    ("audience", "request.audience"),
    ("endpoint", "request.endpoint"),
];

/// RFC 5424 §6.3.3: `"`, `\` and `]` are escaped in PARAM-VALUE.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// HOSTNAME / APP-NAME / MSGID: printable US-ASCII, bounded, or `-`.
fn header_field(value: &str, max: usize) -> String {
    let clean: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".to_owned()
    } else {
        clean
    }
}

/// The RFC 5424 message for one record (no framing).
pub fn format(line: &Line, facility: Facility, hostname: &str) -> Vec<u8> {
    let pri = u16::from(facility.code()) * 8 + u16::from(severity(line.level()));
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "<{pri}>1 {} {} gatehouse - {} [{SD_ID} seq=\"{}\" hash=\"{}\" prev=\"{}\" type=\"",
        header_field(&line.time, 64),
        header_field(hostname, 255),
        header_field(line.kind(), 32),
        line.seq,
        line.hash,
        line.prev,
    );
    escape_into(&mut head, line.kind());
    head.push('"');
    for (name, path) in SD_FIELDS {
        if let Some(v) = line.field(path) {
            let _ = write!(head, " {name}=\"");
            escape_into(&mut head, &v);
            head.push('"');
        }
    }
    head.push_str("] \u{feff}");
    let mut out = head.into_bytes();
    out.extend_from_slice(&line.raw);
    out
}

/// How long the collector has to acknowledge every byte of a batch.
const ACK_LIMIT: Duration = Duration::from_secs(10);
/// After the acknowledgement, how long the connection must stay up before
/// the batch counts as delivered (a collector that resets mid-message
/// does so within this; the batch is then sent again).
const SETTLE: Duration = Duration::from_millis(100);

/// A syslog sink's transport.
#[derive(Debug, Clone)]
pub enum Transport {
    Unix(PathBuf),
    Tcp(Endpoint),
    Tls(Endpoint, Arc<rustls::ClientConfig>),
}

/// One syslog sink and its connection, if any.
#[derive(Debug)]
pub struct SyslogSink {
    transport: Transport,
    facility: Facility,
    hostname: String,
    connect_limit: Duration,
    conn: Option<Conn>,
    datagram: Option<tokio::net::UnixDatagram>,
}

impl SyslogSink {
    pub fn new(
        transport: Transport,
        facility: Facility,
        hostname: String,
        connect_limit: Duration,
    ) -> SyslogSink {
        SyslogSink {
            transport,
            facility,
            hostname,
            connect_limit,
            conn: None,
            datagram: None,
        }
    }

    pub fn is_stream(&self) -> bool {
        !matches!(self.transport, Transport::Unix(_))
    }

    /// A stream connection that is still up (checked without waiting).
    pub async fn alive(&mut self) -> bool {
        match self.conn.as_mut() {
            Some(conn) => {
                let mut scratch = [0u8; 512];
                loop {
                    match tokio::time::timeout(Duration::from_millis(1), conn.read(&mut scratch))
                        .await
                    {
                        Err(_) => return true,
                        Ok(Ok(0) | Err(_)) => return false,
                        Ok(Ok(_)) => {}
                    }
                }
            }
            None => !self.is_stream(),
        }
    }

    /// Drops the connection; the next send reconnects.
    pub fn reset(&mut self) {
        self.conn = None;
        self.datagram = None;
    }

    /// Connects if not connected (for the check at start).
    pub async fn connect(&mut self) -> Result<(), SendError> {
        match &self.transport {
            Transport::Unix(path) => {
                if self.datagram.is_none() {
                    let sock = tokio::net::UnixDatagram::unbound().map_err(SendError::Io)?;
                    sock.connect(path).map_err(|e| SendError::Socket {
                        path: path.clone(),
                        source: e,
                    })?;
                    self.datagram = Some(sock);
                }
            }
            Transport::Tcp(ep) => {
                if self.conn.is_none() {
                    self.conn = Some(net::connect(ep, None, self.connect_limit).await?);
                }
            }
            Transport::Tls(ep, config) => {
                if self.conn.is_none() {
                    self.conn = Some(net::connect(ep, Some(config), self.connect_limit).await?);
                }
            }
        }
        Ok(())
    }

    /// Sends `lines` in order; `Ok` once the collector has them all.
    pub async fn send(&mut self, lines: &[Line]) -> Result<(), SendError> {
        self.connect().await?;
        if let Some(sock) = &self.datagram {
            for line in lines {
                let msg = format(line, self.facility, &self.hostname);
                sock.send(&msg).await.map_err(SendError::Io)?;
            }
            return Ok(());
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(SendError::NotConnected);
        };
        let mut buf = Vec::new();
        for line in lines {
            let msg = format(line, self.facility, &self.hostname);
            buf.extend_from_slice(msg.len().to_string().as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(&msg);
        }
        conn.write_all(&buf).await.map_err(SendError::Io)?;
        conn.flush().await.map_err(SendError::Io)?;
        wait_acked(conn).await?;
        settle(conn).await
    }
}

/// Waits until the peer's TCP has acknowledged every byte written.
async fn wait_acked(conn: &Conn) -> Result<(), SendError> {
    let deadline = tokio::time::Instant::now() + ACK_LIMIT;
    loop {
        let unacked = conn.unacked().map_err(SendError::Io)?;
        if unacked == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(SendError::NotAcked {
                bytes: unacked,
                secs: ACK_LIMIT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The connection must stay up for [`SETTLE`]; a collector says nothing,
/// so anything read is ignored, and an end or a reset fails the batch.
async fn settle(conn: &mut Conn) -> Result<(), SendError> {
    let mut scratch = [0u8; 512];
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut scratch)).await {
            Err(_) => return Ok(()),
            Ok(Ok(0)) => return Err(SendError::Closed),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(SendError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(event: &str) -> Line {
        let raw = format!(
            "{{\"seq\":7,\"time\":\"2026-12-03T17:00:00.123Z\",\"prev\":\"{}\",\"event\":{event},\"hash\":\"{}\"}}",
            "a".repeat(64),
            "b".repeat(64)
        );
        Line::parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn formats_rfc5424_with_structured_data_and_the_record_as_msg() {
        let l = line(
            r#"{"type":"request","decision":"d1","outcome":"deny","caller":{"uid":1000,"exe":"/usr/bin/a\"b]"}}"#,
        );
        let msg = String::from_utf8(format(&l, Facility::Authpriv, "vm1")).unwrap();
        let want = format!(
            "<84>1 2026-12-03T17:00:00.123Z vm1 gatehouse - request [gatehouse@32473 seq=\"7\" hash=\"{b}\" prev=\"{a}\" type=\"request\" decision_id=\"d1\" outcome=\"deny\" uid=\"1000\" exe=\"/usr/bin/a\\\"b\\]\"] \u{feff}",
            a = "a".repeat(64),
            b = "b".repeat(64)
        );
        assert!(msg.starts_with(&want), "{msg}");
        assert!(msg.ends_with(&String::from_utf8(l.raw.clone()).unwrap()));
    }

    #[test]
    fn priority_by_facility_and_decision() {
        let cases = [
            (
                r#"{"type":"request","decision":"d1","outcome":"allow"}"#,
                Facility::Authpriv,
                "<86>",
            ),
            (
                r#"{"type":"request","decision":"d1","outcome":"deny"}"#,
                Facility::Authpriv,
                "<84>",
            ),
            (r#"{"type":"gate_started"}"#, Facility::Local(3), "<157>"),
            (
                r#"{"type":"firewall_repair_failed"}"#,
                Facility::Daemon,
                "<27>",
            ),
        ];
        for (event, facility, pri) in cases {
            let msg = format(&line(event), facility, "h");
            assert!(msg.starts_with(pri.as_bytes()), "{event}");
        }
    }

    #[test]
    fn facilities() {
        assert_eq!(Facility::parse("authpriv"), Some(Facility::Authpriv));
        assert_eq!(Facility::parse("local7"), Some(Facility::Local(7)));
        assert_eq!(Facility::parse("local8"), None);
        assert_eq!(Facility::parse("kern"), None);
    }
}

#[cfg(test)]
mod datagram_tests {
    use super::*;

    #[tokio::test]
    async fn one_datagram_per_record_to_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = tokio::net::UnixDatagram::bind(&path).unwrap();
        let mut sink = SyslogSink::new(
            Transport::Unix(path.clone()),
            Facility::Authpriv,
            "vm1".into(),
            Duration::from_secs(1),
        );
        let lines: Vec<Line> = (1..=3)
            .map(|seq| {
                let raw = format!(
                    "{{\"seq\":{seq},\"time\":\"2026-12-03T17:00:00.000Z\",\"prev\":\"{}\",\"event\":{{\"type\":\"policy_loaded\"}},\"hash\":\"{}\"}}",
                    "a".repeat(64),
                    "b".repeat(64)
                );
                Line::parse(raw.as_bytes()).unwrap()
            })
            .collect();
        sink.send(&lines).await.unwrap();
        let mut buf = vec![0; 4096];
        for line in &lines {
            let n = daemon.recv(&mut buf).await.unwrap();
            assert_eq!(
                &buf[..n],
                format(line, Facility::Authpriv, "vm1").as_slice()
            );
        }
        // The daemon gone: an error to retry, not a silent drop.
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        sink.reset();
        assert!(sink.send(&lines).await.is_err());
    }
}
