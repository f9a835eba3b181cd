//! The AWS EC2 instance metadata dialect (IMDSv2): canonical request targets.
//!
//! The same strength as the Azure canonicaliser: percent-decoding with the
//! ambiguous cases refused, dot segments resolved (never above the root),
//! empty segments dropped, fixed words matched without regard to case. The
//! gate decides on the [`AwsTarget`] and forwards its [`AwsTarget::upstream_target`],
//! so whatever spelling a client used, IMDS reads what was decided on. AWS
//! defines no query parameters: a query string is refused.

use crate::canonical::{canonical_path, CanonError};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

#[cfg(test)]
mod tests;

/// The AWS endpoint families gatehouse tells apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsEndpoint {
    /// `PUT /latest/api/token`: a session token.
    SessionToken,
    /// `/latest/meta-data/iam/security-credentials/` (the role's name).
    CredentialsList,
    /// `/latest/meta-data/iam/security-credentials/<role>`: the role's keys.
    Credentials { role: String },
    /// `/latest/user-data`.
    UserData,
    /// `/latest/dynamic/instance-identity/<part>` (`document`,
    /// `signature`, `pkcs7`, `rsa2048`).
    IdentityDocument { part: String },
    /// Anything else under `/latest/meta-data` or `/latest/dynamic`, or a
    /// listing (`/`, `/latest`): instance metadata. The segments after the
    /// version, as decoded; `listing` when the client ended with `/`.
    Metadata { subpath: Vec<String>, listing: bool },
}

impl AwsEndpoint {
    /// A short stable name for audit lines.
    pub fn name(&self) -> &'static str {
        match self {
            AwsEndpoint::SessionToken => "aws_session_token",
            AwsEndpoint::CredentialsList => "aws_credentials_list",
            AwsEndpoint::Credentials { .. } => "aws_credentials",
            AwsEndpoint::UserData => "aws_user_data",
            AwsEndpoint::IdentityDocument { .. } => "aws_identity_document",
            AwsEndpoint::Metadata { .. } => "aws_meta_data",
        }
    }
}

/// A request target with exactly one meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsTarget {
    /// `latest` or a dated version (`2021-07-15`); empty for `/`.
    pub version: String,
    pub endpoint: AwsEndpoint,
}

/// Unreserved characters stay; everything else is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl AwsTarget {
    /// The canonical path, as decided on and as sent upstream. `role` is
    /// the policy's spelling of the role name (the gate resolves it first).
    pub fn path_with_role(&self, role: Option<&str>) -> String {
        let v = &self.version;
        let enc = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
        match &self.endpoint {
            AwsEndpoint::SessionToken => format!("/{v}/api/token"),
            AwsEndpoint::CredentialsList => format!("/{v}/meta-data/iam/security-credentials/"),
            AwsEndpoint::Credentials { role: asked } => format!(
                "/{v}/meta-data/iam/security-credentials/{}",
                enc(role.unwrap_or(asked))
            ),
            AwsEndpoint::UserData => format!("/{v}/user-data"),
            AwsEndpoint::IdentityDocument { part } => {
                format!("/{v}/dynamic/instance-identity/{}", enc(part))
            }
            AwsEndpoint::Metadata { subpath, listing } => {
                let mut p = if v.is_empty() {
                    String::new()
                } else {
                    format!("/{v}")
                };
                for seg in subpath {
                    p.push('/');
                    p.push_str(&enc(seg));
                }
                if *listing || p.is_empty() {
                    p.push('/');
                }
                p
            }
        }
    }

    /// The canonical path with the role as the client spelled it.
    pub fn path(&self) -> String {
        self.path_with_role(None)
    }
}

/// Is `seg` an IMDS version: `latest` or `YYYY-MM-DD`?
fn version(seg: &str) -> Option<String> {
    if seg.eq_ignore_ascii_case("latest") {
        return Some("latest".to_owned());
    }
    let b = seg.as_bytes();
    let dated = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    dated.then(|| seg.to_owned())
}

/// Canonicalise an AWS request target (path and optional raw query).
pub fn canonicalise_aws(path: &str, query: Option<&str>) -> Result<AwsTarget, CanonError> {
    if query.is_some_and(|q| !q.is_empty()) {
        return Err(CanonError::UnexpectedQuery);
    }
    let listing = path.ends_with('/');
    let segments = canonical_path(path)?;
    let Some((first, rest)) = segments.split_first() else {
        // `/`: the list of versions.
        return Ok(AwsTarget {
            version: String::new(),
            endpoint: AwsEndpoint::Metadata {
                subpath: Vec::new(),
                listing: true,
            },
        });
    };
    let version = version(first).ok_or(CanonError::UnknownPath)?;
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let endpoint = match l.as_slice() {
        ["api", "token"] => AwsEndpoint::SessionToken,
        ["meta-data", "iam", "security-credentials"] => AwsEndpoint::CredentialsList,
        ["meta-data", "iam", "security-credentials", _] => AwsEndpoint::Credentials {
            role: rest.get(3).cloned().ok_or(CanonError::UnknownPath)?,
        },
        ["meta-data", "iam", "security-credentials", ..] => return Err(CanonError::UnknownPath),
        ["user-data"] => AwsEndpoint::UserData,
        ["dynamic", "instance-identity", part] => AwsEndpoint::IdentityDocument {
            part: (*part).to_owned(),
        },
        [] | ["meta-data", ..] | ["dynamic", ..] => AwsEndpoint::Metadata {
            // Fixed words in their canonical case; what follows (tag keys,
            // interface ids) as sent.
            subpath: rest
                .iter()
                .zip(&l)
                .enumerate()
                .map(|(i, (seg, low))| {
                    if i == 0 {
                        (*low).to_owned()
                    } else {
                        seg.clone()
                    }
                })
                .collect(),
            listing: listing || rest.is_empty(),
        },
        _ => return Err(CanonError::UnknownPath),
    };
    Ok(AwsTarget { version, endpoint })
}
