//! Canonicalisation of a request target.
//!
//! The gate decides on the canonical form and forwards the canonical form, so
//! there is no second parser upstream that could read the request differently
//! from the one that decided. Whatever cannot be given exactly one meaning is
//! refused: double encoding, `%00`, backslashes, dot segments above the root,
//! a raw `+` in a query value (space or plus?), duplicate parameters.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt;

#[cfg(test)]
mod tests;

/// The endpoint families gatehouse knows. Anything else is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    IdentityInfo,
    /// `/metadata/instance` plus a sub-path filter (as the client spelled its
    /// segments, after decoding; may be empty).
    Instance {
        subpath: Vec<String>,
    },
    Versions,
    AttestedDocument,
    ScheduledEvents,
    LoadBalancer,
}

impl Endpoint {
    /// The canonical path sent upstream.
    pub fn path(&self) -> String {
        match self {
            Endpoint::Token => "/metadata/identity/oauth2/token".to_owned(),
            Endpoint::IdentityInfo => "/metadata/identity/info".to_owned(),
            Endpoint::Instance { subpath } => {
                let mut p = "/metadata/instance".to_owned();
                for seg in subpath {
                    p.push('/');
                    p.extend(utf8_percent_encode(seg, PATH_SEGMENT));
                }
                p
            }
            Endpoint::Versions => "/metadata/versions".to_owned(),
            Endpoint::AttestedDocument => "/metadata/attested/document".to_owned(),
            Endpoint::ScheduledEvents => "/metadata/scheduledevents".to_owned(),
            Endpoint::LoadBalancer => "/metadata/loadbalancer".to_owned(),
        }
    }

    /// A short stable name for audit lines.
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::IdentityInfo => "identity_info",
            Endpoint::Instance { .. } => "instance",
            Endpoint::Versions => "versions",
            Endpoint::AttestedDocument => "attested_document",
            Endpoint::ScheduledEvents => "scheduled_events",
            Endpoint::LoadBalancer => "load_balancer",
        }
    }
}

/// Which identity the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    None,
    ClientId(String),
    ObjectId(String),
    /// `msi_res_id`, or the older `mi_res_id`.
    ResourceId(String),
}

impl Selector {
    pub fn kind(&self) -> &'static str {
        match self {
            Selector::None => "none",
            Selector::ClientId(_) => "client_id",
            Selector::ObjectId(_) => "object_id",
            Selector::ResourceId(_) => "msi_res_id",
        }
    }
}

/// A request target with exactly one meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    pub endpoint: Endpoint,
    /// Decoded query parameters, keys lower-cased, in the order sent.
    pub params: Vec<(String, String)>,
    pub selector: Selector,
}

impl Canonical {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The audience exactly as the client sent it (decoded), for token requests.
    pub fn resource(&self) -> Option<&str> {
        self.param("resource")
    }

    pub fn api_version(&self) -> Option<&str> {
        self.param("api-version")
    }

    /// The canonical target to send upstream: canonical path, every parameter
    /// re-encoded the one way. The resource value is the client's own string.
    ///
    /// For the token endpoint only the parameters IMDS defines travel on, so
    /// nothing gatehouse did not decide on can change what IMDS issues.
    pub fn upstream_target(&self) -> String {
        let mut t = self.endpoint.path();
        let forwarded = self.params.iter().filter(|(k, _)| {
            self.endpoint != Endpoint::Token || TOKEN_PARAMS.contains(&k.as_str())
        });
        for (i, (k, v)) in forwarded.enumerate() {
            t.push(if i == 0 { '?' } else { '&' });
            t.extend(utf8_percent_encode(k, QUERY_COMPONENT));
            t.push('=');
            t.extend(utf8_percent_encode(v, QUERY_COMPONENT));
        }
        t
    }
}

/// Why a target was refused. Each maps to an IMDS-shaped 400 or 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanonError {
    BadEncoding(&'static str),
    DotSegmentAboveRoot,
    UnknownPath,
    DuplicateParameter(String),
    AmbiguousPlus,
    SeveralSelectors,
    /// A query string where the service defines none (AWS).
    UnexpectedQuery,
    /// A parameter this dialect does not define (GCP).
    UnknownParameter(String),
    /// A parameter value the service would refuse.
    BadValue(&'static str),
}

impl fmt::Display for CanonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanonError::BadEncoding(what) => write!(f, "request target is not canonical: {what}"),
            CanonError::DotSegmentAboveRoot => write!(f, "request path climbs above the root"),
            CanonError::UnknownPath => write!(f, "unknown metadata path"),
            CanonError::DuplicateParameter(k) => write!(f, "duplicate query parameter `{k}`"),
            CanonError::AmbiguousPlus => {
                write!(
                    f,
                    "a raw `+` in the query is ambiguous; send `%2B` or `%20`"
                )
            }
            CanonError::UnexpectedQuery => {
                write!(f, "this metadata path takes no query string")
            }
            CanonError::UnknownParameter(k) => {
                write!(f, "unknown query parameter `{k}`")
            }
            CanonError::BadValue(what) => write!(f, "invalid value for {what}"),
            CanonError::SeveralSelectors => write!(
                f,
                "at most one of `client_id`, `object_id`, `msi_res_id` may be given"
            ),
        }
    }
}

impl std::error::Error for CanonError {}

const TOKEN_PARAMS: &[&str] = &[
    "api-version",
    "resource",
    "client_id",
    "object_id",
    "msi_res_id",
];

/// Unreserved characters stay; everything else is escaped.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
const PATH_SEGMENT: &AsciiSet = QUERY_COMPONENT;

/// Canonicalise a path and an optional raw query string.
pub fn canonicalise(path: &str, query: Option<&str>) -> Result<Canonical, CanonError> {
    let segments = canonical_path(path)?;
    let endpoint = classify(&segments)?;
    let params = canonical_query(query.unwrap_or(""))?;
    let selector = selector(&params)?;
    Ok(Canonical {
        endpoint,
        params,
        selector,
    })
}

pub(crate) fn decode(raw: &str) -> Result<String, CanonError> {
    if raw.contains('\\') {
        return Err(CanonError::BadEncoding("backslash"));
    }
    check_escapes(raw)?;
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| CanonError::BadEncoding("not UTF-8 after decoding"))?;
    if decoded.contains('%') {
        return Err(CanonError::BadEncoding("double percent-encoding"));
    }
    if decoded.chars().any(char::is_control) {
        return Err(CanonError::BadEncoding("control character"));
    }
    if decoded.contains('\\') {
        return Err(CanonError::BadEncoding("encoded backslash"));
    }
    Ok(decoded.into_owned())
}

/// `percent_decode_str` leaves a malformed `%zz` alone; we refuse it.
fn check_escapes(raw: &str) -> Result<(), CanonError> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let ok = matches!(
                (bytes.get(i + 1), bytes.get(i + 2)),
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit()
            );
            if !ok {
                return Err(CanonError::BadEncoding("malformed percent escape"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Decode, then drop empty and `.` segments and resolve `..`.
pub(crate) fn canonical_path(raw: &str) -> Result<Vec<String>, CanonError> {
    let decoded = decode(raw)?;
    let mut out: Vec<String> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(CanonError::DotSegmentAboveRoot);
                }
            }
            s => out.push(s.to_owned()),
        }
    }
    Ok(out)
}

fn classify(segments: &[String]) -> Result<Endpoint, CanonError> {
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    match l.as_slice() {
        ["metadata", "identity", "oauth2", "token"] => Ok(Endpoint::Token),
        ["metadata", "identity", "info"] => Ok(Endpoint::IdentityInfo),
        ["metadata", "versions"] => Ok(Endpoint::Versions),
        ["metadata", "attested", "document"] => Ok(Endpoint::AttestedDocument),
        ["metadata", "scheduledevents"] => Ok(Endpoint::ScheduledEvents),
        ["metadata", "loadbalancer"] => Ok(Endpoint::LoadBalancer),
        ["metadata", "instance", ..] => Ok(Endpoint::Instance {
            subpath: segments.iter().skip(2).cloned().collect(),
        }),
        _ => Err(CanonError::UnknownPath),
    }
}

pub(crate) fn canonical_query(raw: &str) -> Result<Vec<(String, String)>, CanonError> {
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        if pair.contains('+') {
            return Err(CanonError::AmbiguousPlus);
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k)?.to_ascii_lowercase();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(CanonError::BadEncoding("parameter name"));
        }
        let key = if key == "mi_res_id" {
            "msi_res_id".to_owned()
        } else {
            key
        };
        let value = decode(v)?;
        if params.iter().any(|(existing, _)| *existing == key) {
            return Err(CanonError::DuplicateParameter(key));
        }
        params.push((key, value));
    }
    Ok(params)
}

fn selector(params: &[(String, String)]) -> Result<Selector, CanonError> {
    let mut found = Selector::None;
    for (k, v) in params {
        let s = match k.as_str() {
            "client_id" => Selector::ClientId(v.clone()),
            "object_id" => Selector::ObjectId(v.clone()),
            "msi_res_id" => Selector::ResourceId(v.clone()),
            _ => continue,
        };
        if found != Selector::None {
            return Err(CanonError::SeveralSelectors);
        }
        found = s;
    }
    Ok(found)
}
