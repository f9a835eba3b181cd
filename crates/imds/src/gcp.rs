//! The Google Compute Engine metadata server dialect: canonical request
//! targets.
//!
//! The same strength as the Azure and AWS canonicalisers: percent-decoding
//! with the ambiguous cases refused, dot segments resolved (never above the
//! root), empty segments dropped, the fixed words (`computeMetadata`, `v1`,
//! `instance`, `service-accounts`, `token`, `identity`) matched without
//! regard to case; query parameters decoded once, duplicates and a raw `+`
//! refused, and only the parameters the metadata server defines for the
//! endpoint accepted, each value in one canonical spelling. The gate decides
//! on the [`GcpTarget`] and forwards its [`GcpTarget::upstream_target`], so
//! whatever spelling a client used, the metadata server reads what was
//! decided on.
//!
//! Long polls (`wait_for_change`, `last_etag`, `timeout_sec`) are refused:
//! the gate answers within its budget. `recursive=true` above
//! `/computeMetadata/v1/` is refused, and a recursive listing that covers
//! service accounts must be JSON (`alt=text` refused there), so the gate
//! can take every token out of it.

use crate::canonical::{canonical_path, canonical_query, CanonError};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

#[cfg(test)]
mod tests;

/// Where a metadata listing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcpRoot {
    /// `/` (google-auth's "am I on GCE" probe).
    Slash,
    /// `/computeMetadata/`.
    ComputeMetadata,
    /// `/computeMetadata/v1/...`.
    V1,
}

/// The GCE endpoint families gatehouse tells apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcpEndpoint {
    /// `/computeMetadata/v1/instance/service-accounts/{account}/token`: an
    /// OAuth access token (`scopes=` is its audience).
    AccessToken { account: String },
    /// `.../service-accounts/{account}/identity`: an ID token (`audience=`).
    IdToken { account: String },
    /// `.../service-accounts/{account}/` and what is under it (`email`,
    /// `aliases`, `scopes`): the account's description. `rest` as sent.
    Account { account: String, rest: Vec<String> },
    /// `/computeMetadata/v1/instance/service-accounts/`: the accounts' names.
    Accounts,
    /// Anything else: `instance/...`, `project/...` (attributes included),
    /// `universe/...`, and the listings above them. `subpath` after `v1`,
    /// as sent (fixed words in their canonical case).
    Metadata { root: GcpRoot, subpath: Vec<String> },
}

impl GcpEndpoint {
    /// A short stable name for audit lines.
    pub fn name(&self) -> &'static str {
        match self {
            GcpEndpoint::AccessToken { .. } => "gcp_access_token",
            GcpEndpoint::IdToken { .. } => "gcp_id_token",
            GcpEndpoint::Account { .. } => "gcp_service_account",
            GcpEndpoint::Accounts => "gcp_service_accounts",
            GcpEndpoint::Metadata { .. } => "gcp_metadata",
        }
    }

    /// The service account the path names (`default` or an email, as sent
    /// but `default` lower-cased).
    pub fn account(&self) -> Option<&str> {
        match self {
            GcpEndpoint::AccessToken { account }
            | GcpEndpoint::IdToken { account }
            | GcpEndpoint::Account { account, .. } => Some(account),
            _ => None,
        }
    }
}

/// `alt=`: the listing's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alt {
    Json,
    Text,
}

/// `format=` of an ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdFormat {
    Standard,
    Full,
}

/// The query parameters, each in its one canonical spelling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcpParams {
    pub recursive: Option<bool>,
    pub alt: Option<Alt>,
    /// Access tokens: the scopes, in the order sent.
    pub scopes: Option<Vec<String>>,
    /// ID tokens: the audience exactly as sent (decoded).
    pub audience: Option<String>,
    pub format: Option<IdFormat>,
    pub licenses: Option<bool>,
}

/// A request target with exactly one meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpTarget {
    pub endpoint: GcpEndpoint,
    /// The client ended the path with `/` (a directory listing).
    pub listing: bool,
    pub params: GcpParams,
}

/// Unreserved characters stay; everything else is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

impl GcpTarget {
    /// The scopes joined the one way (`a,b`), for audit lines and cache keys.
    pub fn scopes(&self) -> Option<String> {
        self.params.scopes.as_ref().map(|s| s.join(","))
    }

    /// Is this a recursive listing that may hold service accounts? (The
    /// gate takes every token out of its answer.)
    pub fn covers_accounts(&self) -> bool {
        if self.params.recursive != Some(true) {
            return false;
        }
        match &self.endpoint {
            GcpEndpoint::Accounts => true,
            GcpEndpoint::Account { rest, .. } => rest.is_empty(),
            GcpEndpoint::Metadata { root, subpath } => {
                *root != GcpRoot::V1 || subpath.is_empty() || subpath == &["instance"]
            }
            _ => false,
        }
    }

    /// The canonical path (no query), with `account` in place of the
    /// account the client named (the gate uses the policy's email).
    pub fn path_with_account(&self, account: Option<&str>) -> String {
        let v1 = "/computeMetadata/v1";
        let sa = |asked: &str| enc(account.unwrap_or(asked));
        let mut p = match &self.endpoint {
            GcpEndpoint::AccessToken { account: a } => {
                format!("{v1}/instance/service-accounts/{}/token", sa(a))
            }
            GcpEndpoint::IdToken { account: a } => {
                format!("{v1}/instance/service-accounts/{}/identity", sa(a))
            }
            GcpEndpoint::Account { account: a, rest } => {
                let mut p = format!("{v1}/instance/service-accounts/{}", sa(a));
                for seg in rest {
                    p.push('/');
                    p.push_str(&enc(seg));
                }
                p
            }
            GcpEndpoint::Accounts => format!("{v1}/instance/service-accounts"),
            GcpEndpoint::Metadata { root, subpath } => match root {
                GcpRoot::Slash => String::new(),
                GcpRoot::ComputeMetadata => "/computeMetadata".to_owned(),
                GcpRoot::V1 => {
                    let mut p = v1.to_owned();
                    for seg in subpath {
                        p.push('/');
                        p.push_str(&enc(seg));
                    }
                    p
                }
            },
        };
        let dir = match &self.endpoint {
            GcpEndpoint::AccessToken { .. } | GcpEndpoint::IdToken { .. } => false,
            GcpEndpoint::Accounts => true,
            GcpEndpoint::Account { rest, .. } => rest.is_empty() || self.listing,
            GcpEndpoint::Metadata { root, subpath } => {
                *root != GcpRoot::V1 || subpath.is_empty() || self.listing
            }
        };
        if dir {
            p.push('/');
        }
        p
    }

    /// The canonical path with the account as the client named it.
    pub fn path(&self) -> String {
        self.path_with_account(None)
    }

    /// The canonical query, every parameter the one way (empty or `?...`).
    pub fn query(&self) -> String {
        let p = &self.params;
        let mut q: Vec<String> = Vec::new();
        let b = |v: bool| if v { "true" } else { "false" };
        if let Some(r) = p.recursive {
            q.push(format!("recursive={}", b(r)));
        }
        if let Some(a) = p.alt {
            q.push(format!(
                "alt={}",
                match a {
                    Alt::Json => "json",
                    Alt::Text => "text",
                }
            ));
        }
        if let Some(s) = &p.scopes {
            let list: Vec<String> = s.iter().map(|x| enc(x)).collect();
            q.push(format!("scopes={}", list.join(",")));
        }
        if let Some(a) = &p.audience {
            q.push(format!("audience={}", enc(a)));
        }
        if let Some(f) = p.format {
            q.push(format!(
                "format={}",
                match f {
                    IdFormat::Standard => "standard",
                    IdFormat::Full => "full",
                }
            ));
        }
        if let Some(l) = p.licenses {
            q.push(format!("licenses={}", if l { "TRUE" } else { "FALSE" }));
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }

    /// What the gate sends upstream: canonical path and query.
    pub fn upstream_target(&self, account: Option<&str>) -> String {
        format!("{}{}", self.path_with_account(account), self.query())
    }
}

/// A service account segment: `default` (any case) or an email.
fn account(seg: &str) -> Result<String, CanonError> {
    if seg.eq_ignore_ascii_case("default") {
        return Ok("default".to_owned());
    }
    let email = seg.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty()
            && !d.is_empty()
            && !d.contains('@')
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@.-_".contains(&b))
    });
    if email {
        Ok(seg.to_owned())
    } else {
        Err(CanonError::UnknownPath)
    }
}

fn boolean(v: &str, what: &'static str) -> Result<bool, CanonError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(CanonError::BadValue(what)),
    }
}

fn classify(segments: &[String]) -> Result<GcpEndpoint, CanonError> {
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let after = |n: usize| segments.iter().skip(n).cloned().collect::<Vec<String>>();
    Ok(match l.as_slice() {
        [] => GcpEndpoint::Metadata {
            root: GcpRoot::Slash,
            subpath: Vec::new(),
        },
        ["computemetadata"] => GcpEndpoint::Metadata {
            root: GcpRoot::ComputeMetadata,
            subpath: Vec::new(),
        },
        ["computemetadata", "v1", "instance", "service-accounts"] => GcpEndpoint::Accounts,
        ["computemetadata", "v1", "instance", "service-accounts", _, "token"] => {
            GcpEndpoint::AccessToken {
                account: account(segments.get(4).ok_or(CanonError::UnknownPath)?)?,
            }
        }
        ["computemetadata", "v1", "instance", "service-accounts", _, "identity"] => {
            GcpEndpoint::IdToken {
                account: account(segments.get(4).ok_or(CanonError::UnknownPath)?)?,
            }
        }
        // Nothing lives under a token.
        ["computemetadata", "v1", "instance", "service-accounts", _, "token" | "identity", ..] => {
            return Err(CanonError::UnknownPath)
        }
        ["computemetadata", "v1", "instance", "service-accounts", _, ..] => GcpEndpoint::Account {
            account: account(segments.get(4).ok_or(CanonError::UnknownPath)?)?,
            rest: after(5),
        },
        ["computemetadata", "v1", rest @ ..] => GcpEndpoint::Metadata {
            root: GcpRoot::V1,
            subpath: rest
                .iter()
                .zip(segments.iter().skip(2))
                .enumerate()
                .map(|(i, (low, seg))| {
                    // The top word (`instance`, `project`) in its canonical
                    // case; keys below it as sent.
                    if i == 0 {
                        (*low).to_owned()
                    } else {
                        seg.clone()
                    }
                })
                .collect(),
        },
        _ => return Err(CanonError::UnknownPath),
    })
}

/// Canonicalise a GCE request target (path and optional raw query).
pub fn canonicalise_gcp(path: &str, query: Option<&str>) -> Result<GcpTarget, CanonError> {
    let listing = path.ends_with('/');
    let segments = canonical_path(path)?;
    let endpoint = classify(&segments)?;
    let mut params = GcpParams::default();
    for (k, v) in canonical_query(query.unwrap_or(""))? {
        let token = matches!(endpoint, GcpEndpoint::AccessToken { .. });
        let identity = matches!(endpoint, GcpEndpoint::IdToken { .. });
        match k.as_str() {
            "scopes" if token => {
                let scopes: Vec<String> = v.split(',').map(str::to_owned).collect();
                if scopes
                    .iter()
                    .any(|s| s.is_empty() || s.chars().any(char::is_whitespace))
                {
                    return Err(CanonError::BadValue(
                        "scopes (a comma-separated list without spaces or empty entries)",
                    ));
                }
                params.scopes = Some(scopes);
            }
            "audience" if identity => {
                if v.is_empty() || v.chars().any(char::is_whitespace) {
                    return Err(CanonError::BadValue("audience (non-empty, without spaces)"));
                }
                params.audience = Some(v);
            }
            "format" if identity => {
                params.format = Some(match v.to_ascii_lowercase().as_str() {
                    "standard" => IdFormat::Standard,
                    "full" => IdFormat::Full,
                    _ => return Err(CanonError::BadValue("format (`standard` or `full`)")),
                });
            }
            "licenses" if identity => {
                params.licenses = Some(boolean(&v, "licenses (`TRUE` or `FALSE`)")?);
            }
            "recursive" if !token && !identity => {
                params.recursive = Some(boolean(&v, "recursive (`true` or `false`)")?);
            }
            "alt" if !token && !identity => {
                params.alt = Some(match v.to_ascii_lowercase().as_str() {
                    "json" => Alt::Json,
                    "text" => Alt::Text,
                    _ => return Err(CanonError::BadValue("alt (`json` or `text`)")),
                });
            }
            "wait_for_change" | "last_etag" | "timeout_sec" => {
                return Err(CanonError::BadValue(
                    "wait_for_change (long polls are not served through gatehouse)",
                ))
            }
            _ => return Err(CanonError::UnknownParameter(k)),
        }
    }
    if matches!(endpoint, GcpEndpoint::IdToken { .. }) && params.audience.is_none() {
        return Err(CanonError::BadValue("audience (required)"));
    }
    let target = GcpTarget {
        endpoint,
        listing,
        params,
    };
    if target.params.recursive == Some(true) {
        if let GcpEndpoint::Metadata { root, .. } = &target.endpoint {
            if *root != GcpRoot::V1 {
                return Err(CanonError::BadValue(
                    "recursive (only at /computeMetadata/v1/ and below)",
                ));
            }
        }
        if target.covers_accounts() && target.params.alt == Some(Alt::Text) {
            return Err(CanonError::BadValue(
                "alt (a recursive listing of service accounts is JSON only)",
            ));
        }
    }
    Ok(target)
}
