//! OpenTelemetry logs over OTLP/HTTP (protobuf): one `LogRecord` per audit
//! record, the record's JSON as the body, key fields as attributes, and the
//! host as resource attributes. The messages are `opentelemetry-proto`'s
//! (prost); the client is hyper's HTTP/1.1 connection over [`net::connect`].

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio_rustls::rustls;

use crate::line::{Level, Line};
use crate::net;
use crate::sink::{Origin, SendError, CONNECT_LIMIT};
use crate::target::Endpoint;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One OTLP sink and its HTTP connection, if any.
pub struct OtlpSink {
    endpoint: Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    path: String,
    origin: Origin,
    sender: Option<Sender>,
}

impl std::fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSink")
            .field("endpoint", &self.endpoint)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

fn severity(level: Level) -> (SeverityNumber, &'static str) {
    match level {
        Level::Info => (SeverityNumber::Info, "INFO"),
        Level::Notice => (SeverityNumber::Info2, "NOTICE"),
        Level::Warning => (SeverityNumber::Warn, "WARN"),
        Level::Error => (SeverityNumber::Error, "ERROR"),
    }
}

/// Attributes (OpenTelemetry semantic-convention names where one exists).
const ATTRS: [(&str, &str); 9] = [
    ("gatehouse.decision_id", "decision"),
    ("gatehouse.outcome", "outcome"),
    ("user.id", "caller.uid"),
    ("user.name", "caller.user"),
    ("process.pid", "caller.pid"),
    ("process.executable.path", "caller.exe"),
    ("gatehouse.identity", "request.identity"),
    ("gatehouse.audience", "request.audience"),
    ("url.path", "request.path"),
];

/// The request body for `lines`.
pub fn encode(lines: &[Line], origin: &Origin) -> Vec<u8> {
    let records = lines
        .iter()
        .map(|line| {
            let (number, name) = severity(line.level());
            let mut attributes = vec![
                int("gatehouse.seq", i64::try_from(line.seq).unwrap_or(i64::MAX)),
                text("gatehouse.hash", line.hash.clone()),
                text("gatehouse.prev", line.prev.clone()),
                text("event.name", format!("gatehouse.{}", line.kind())),
            ];
            for (key, path) in ATTRS {
                if let Some(v) = line.field(path) {
                    attributes.push(text(key, v));
                }
            }
            LogRecord {
                time_unix_nano: line.unix_nanos().unwrap_or(0),
                observed_time_unix_nano: line.unix_nanos().unwrap_or(0),
                severity_number: number as i32,
                severity_text: name.to_owned(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(
                        String::from_utf8_lossy(&line.raw).into_owned(),
                    )),
                }),
                attributes,
                event_name: format!("gatehouse.{}", line.kind()),
                ..LogRecord::default()
            }
        })
        .collect();
    let mut resource = vec![
        text("service.name", "gatehouse"),
        text("service.version", env!("CARGO_PKG_VERSION")),
        text("host.name", origin.hostname.clone()),
    ];
    if let Some(id) = &origin.vm_id {
        resource.push(text("host.id", id.clone()));
    }
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "gatehouse.audit".to_owned(),
                    version: gatehouse_audit::SCHEMA_VERSION.to_string(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    request.encode_to_vec()
}

impl OtlpSink {
    pub fn new(
        endpoint: Endpoint,
        tls: Option<Arc<rustls::ClientConfig>>,
        path: String,
        origin: Origin,
    ) -> OtlpSink {
        OtlpSink {
            endpoint,
            tls,
            path,
            origin,
            sender: None,
        }
    }

    pub fn reset(&mut self) {
        self.sender = None;
    }

    pub async fn connect(&mut self) -> Result<(), SendError> {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return Ok(());
        }
        let conn = net::connect(&self.endpoint, self.tls.as_ref(), CONNECT_LIMIT).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
            .await
            .map_err(|e| SendError::Hyper(e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// POSTs `lines`; `Ok` only on a 2xx answer (OTLP's success).
    pub async fn send(&mut self, lines: &[Line]) -> Result<(), SendError> {
        self.connect().await?;
        let Some(sender) = self.sender.as_mut() else {
            return Err(SendError::NotConnected);
        };
        sender
            .ready()
            .await
            .map_err(|e| SendError::Hyper(e.to_string()))?;
        let body = encode(lines, &self.origin);
        let request = http::Request::post(self.path.as_str())
            .header(http::header::HOST, self.endpoint.to_string())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .header(
                http::header::USER_AGENT,
                concat!("gatehouse/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Hyper(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| SendError::Hyper(e.to_string()))?;
        let status = response.status();
        // Read (a bounded part of) the answer so the connection can be reused.
        let _ = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await;
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Http {
                status: status.as_u16(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_log_record_per_audit_record_with_resource_and_severity() {
        let mk = |seq: u64, decision: &str| {
            let raw = format!(
                "{{\"seq\":{seq},\"time\":\"2026-12-03T17:00:00.500Z\",\"prev\":\"{}\",\"event\":{{\"type\":\"request\",\"outcome\":\"{decision}\",\"caller\":{{\"uid\":7}}}},\"hash\":\"{}\"}}",
                "a".repeat(64),
                "b".repeat(64)
            );
            Line::parse(raw.as_bytes()).unwrap()
        };
        let origin = Origin {
            hostname: "vm1".into(),
            vm_id: Some("id-1".into()),
        };
        let bytes = encode(&[mk(1, "allow"), mk(2, "deny")], &origin);
        let back = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
        let rl = &back.resource_logs[0];
        let res = &rl.resource.as_ref().unwrap().attributes;
        assert!(res.contains(&text("host.id", "id-1")));
        assert!(res.contains(&text("host.name", "vm1")));
        let recs = &rl.scope_logs[0].log_records;
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].severity_number, SeverityNumber::Info as i32);
        assert_eq!(recs[1].severity_number, SeverityNumber::Warn as i32);
        assert_eq!(recs[0].time_unix_nano, 1_796_317_200_500_000_000);
        assert!(recs[1].attributes.contains(&int("gatehouse.seq", 2)));
        assert!(recs[1].attributes.contains(&text("user.id", "7")));
    }
}
