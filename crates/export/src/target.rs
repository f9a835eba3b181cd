//! Where a sink sends: parsed from its URL.
//!
//! | URL | sink |
//! |---|---|
//! | `syslog+unix:///dev/log` | RFC 5424 datagrams to the local syslog daemon |
//! | `syslog+tcp://HOST:PORT` | RFC 5424 over TCP, octet-counting framing (RFC 6587) |
//! | `syslog+tls://HOST:PORT` | the same over TLS (RFC 5425; port 6514 by convention) |
//! | `otlp+http://HOST:PORT/PATH` | OTLP/HTTP logs, protobuf (default path `/v1/logs`) |
//! | `otlp+https://HOST:PORT/PATH` | the same over TLS |

use std::fmt;
use std::path::PathBuf;

/// A sink's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    SyslogUnix(PathBuf),
    SyslogTcp(Endpoint),
    SyslogTls(Endpoint),
    Otlp {
        endpoint: Endpoint,
        tls: bool,
        path: String,
    },
}

/// A host and port to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a sink URL is not one gatehouse can send to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}` is not a sink URL")]
    NotUrl(String),
    #[error("unknown sink scheme `{0}`")]
    Scheme(String),
    #[error("`{0}` names no host")]
    NoHost(String),
    #[error("`{0}` has no valid port")]
    Port(String),
    #[error("`{0}`: a syslog socket is a path, e.g. `syslog+unix:///dev/log`")]
    NoPath(String),
}

impl TargetError {
    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            TargetError::NotUrl(_) | TargetError::Scheme(_) => {
                "use `syslog+unix:///dev/log`, `syslog+tcp://HOST:PORT`, `syslog+tls://HOST:PORT`, `otlp+http://HOST:PORT` or `otlp+https://HOST:PORT`"
            }
            TargetError::NoHost(_) => "name the collector's host, e.g. `syslog+tcp://collector.example:514`",
            TargetError::Port(_) => "give the port as a number from 1 to 65535",
            TargetError::NoPath(_) => "give the socket's absolute path",
        }
    }
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| TargetError::NotUrl(url.to_owned()))?;
        match scheme {
            "syslog+unix" => {
                if !rest.starts_with('/') || rest.len() < 2 {
                    return Err(TargetError::NoPath(url.to_owned()));
                }
                Ok(Target::SyslogUnix(PathBuf::from(rest)))
            }
            "syslog+tcp" | "syslog+tls" => {
                let (hostport, path) = split_path(rest);
                if !path.is_empty() && path != "/" {
                    return Err(TargetError::NotUrl(url.to_owned()));
                }
                let endpoint = endpoint(url, hostport, None)?;
                Ok(if scheme == "syslog+tcp" {
                    Target::SyslogTcp(endpoint)
                } else {
                    Target::SyslogTls(endpoint)
                })
            }
            "otlp+http" | "otlp+https" => {
                let tls = scheme == "otlp+https";
                let (hostport, path) = split_path(rest);
                let endpoint = endpoint(url, hostport, Some(if tls { 443 } else { 4318 }))?;
                let path = if path.is_empty() || path == "/" {
                    "/v1/logs".to_owned()
                } else {
                    path.to_owned()
                };
                if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    return Err(TargetError::NotUrl(url.to_owned()));
                }
                Ok(Target::Otlp {
                    endpoint,
                    tls,
                    path,
                })
            }
            other => Err(TargetError::Scheme(other.to_owned())),
        }
    }

    /// Whether a TLS handshake is part of connecting.
    pub fn tls(&self) -> bool {
        matches!(self, Target::SyslogTls(_) | Target::Otlp { tls: true, .. })
    }

    pub fn endpoint(&self) -> Option<&Endpoint> {
        match self {
            Target::SyslogUnix(_) => None,
            Target::SyslogTcp(e) | Target::SyslogTls(e) | Target::Otlp { endpoint: e, .. } => {
                Some(e)
            }
        }
    }
}

fn split_path(rest: &str) -> (&str, &str) {
    match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("")),
        None => (rest, ""),
    }
}

fn endpoint(url: &str, hostport: &str, default_port: Option<u16>) -> Result<Endpoint, TargetError> {
    if hostport.contains('@') {
        // Credentials do not belong in a URL that is logged and shown.
        return Err(TargetError::NotUrl(url.to_owned()));
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| TargetError::NotUrl(url.to_owned()))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty()
        || host
            .bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b"-._:".contains(&b)))
    {
        return Err(TargetError::NoHost(url.to_owned()));
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| TargetError::Port(url.to_owned()))?,
        (None, Some(d)) => d,
        (None, None) => return Err(TargetError::Port(url.to_owned())),
    };
    Ok(Endpoint {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ep = |h: &str, p| Endpoint {
            host: h.into(),
            port: p,
        };
        let ok: [(&str, Target); 7] = [
            (
                "syslog+unix:///dev/log",
                Target::SyslogUnix("/dev/log".into()),
            ),
            (
                "syslog+tcp://10.0.0.1:514",
                Target::SyslogTcp(ep("10.0.0.1", 514)),
            ),
            (
                "syslog+tls://siem.example:6514",
                Target::SyslogTls(ep("siem.example", 6514)),
            ),
            (
                "syslog+tcp://[fd00::1]:514",
                Target::SyslogTcp(ep("fd00::1", 514)),
            ),
            (
                "otlp+http://otel:4318",
                Target::Otlp {
                    endpoint: ep("otel", 4318),
                    tls: false,
                    path: "/v1/logs".into(),
                },
            ),
            (
                "otlp+https://otel.example",
                Target::Otlp {
                    endpoint: ep("otel.example", 443),
                    tls: true,
                    path: "/v1/logs".into(),
                },
            ),
            (
                "otlp+http://127.0.0.1:9/custom/logs",
                Target::Otlp {
                    endpoint: ep("127.0.0.1", 9),
                    tls: false,
                    path: "/custom/logs".into(),
                },
            ),
        ];
        for (url, want) in ok {
            assert_eq!(Target::parse(url), Ok(want), "{url}");
        }
        type Is = fn(&TargetError) -> bool;
        let bad: [(&str, Is); 8] = [
            ("collector:514", |e| matches!(e, TargetError::NotUrl(_))),
            ("udp://collector:514", |e| {
                matches!(e, TargetError::Scheme(_))
            }),
            ("syslog+tcp://collector", |e| {
                matches!(e, TargetError::Port(_))
            }),
            ("syslog+tcp://collector:0", |e| {
                matches!(e, TargetError::Port(_))
            }),
            ("syslog+tcp://collector:99999", |e| {
                matches!(e, TargetError::Port(_))
            }),
            ("syslog+tcp://:514", |e| matches!(e, TargetError::NoHost(_))),
            ("otlp+http://user:pw@otel:4318", |e| {
                matches!(e, TargetError::NotUrl(_))
            }),
            ("syslog+unix://dev/log", |e| {
                matches!(e, TargetError::NoPath(_))
            }),
        ];
        for (url, want) in bad {
            let got = Target::parse(url);
            assert!(got.as_ref().is_err_and(want), "{url}: {got:?}");
        }
    }
}
