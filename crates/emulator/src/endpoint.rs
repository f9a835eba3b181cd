//! The IMDS endpoints the emulator knows, named the same way in stats,
//! faults and rate-limit categories.

use serde::{Deserialize, Serialize};

/// One IMDS endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/metadata/identity/oauth2/token`
    Token,
    /// `/metadata/identity/info`
    IdentityInfo,
    /// `/metadata/instance[/...]`
    Instance,
    /// `/metadata/versions`
    Versions,
    /// `/metadata/attested/document`
    Attested,
    /// `/metadata/scheduledevents`
    ScheduledEvents,
    /// AWS `PUT /latest/api/token`.
    SessionToken,
    /// AWS `/latest/user-data`.
    UserData,
    /// Anything else (404).
    Unknown,
}

/// Rate-limit category: IMDS throttles identity separately from the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Identity,
    Other,
}

impl Endpoint {
    /// Classifies a request path (not decoded: `%2F` is not a separator to IMDS).
    pub fn classify(path: &str) -> Self {
        match path {
            "/metadata/identity/oauth2/token" => Self::Token,
            "/metadata/identity/info" => Self::IdentityInfo,
            "/metadata/versions" => Self::Versions,
            "/metadata/attested/document" => Self::Attested,
            "/metadata/scheduledevents" => Self::ScheduledEvents,
            "/metadata/instance" => Self::Instance,
            p if p.starts_with("/metadata/instance/") => Self::Instance,
            _ => Self::Unknown,
        }
    }

    /// Classifies an AWS request path: role credentials count as the
    /// token endpoint (faults, stats and limits name them `token`).
    pub fn classify_aws(path: &str) -> Self {
        let rest = match path.split_once('/') {
            Some(("", after)) => after.split_once('/').map_or("", |(_, r)| r),
            _ => return Self::Unknown,
        };
        match rest {
            "api/token" => Self::SessionToken,
            "user-data" => Self::UserData,
            r if r.starts_with("meta-data/iam/security-credentials/")
                && r.len() > "meta-data/iam/security-credentials/".len() =>
            {
                Self::Token
            }
            "dynamic/instance-identity/document" | "dynamic/instance-identity/signature" => {
                Self::Attested
            }
            "" => Self::Versions,
            r if r.starts_with("meta-data") || r.starts_with("dynamic") => Self::Instance,
            _ => Self::Unknown,
        }
    }

    pub(crate) fn category(self) -> Option<Category> {
        match self {
            Self::Token | Self::IdentityInfo => Some(Category::Identity),
            Self::Unknown => None,
            _ => Some(Category::Other),
        }
    }

    /// Identity endpoints answer errors as `{"error","error_description"}`,
    /// the others as `{"error": "Bad request. ..."}`.
    pub(crate) fn is_identity(self) -> bool {
        matches!(self, Self::Token | Self::IdentityInfo)
    }
}
