//! The VM's managed identities and how a token request's selector picks one,
//! mirroring IMDS's own rules.

use crate::cloud::Cloud;
use std::collections::BTreeMap;
use std::fmt;

/// What an identity is: an Azure managed identity (system- or
/// user-assigned), an AWS instance-profile role, a GCP service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    System,
    User,
    /// `kind = "aws_role"`: the instance profile's role, by name.
    AwsRole,
    /// `kind = "gcp_service_account"`: by email, and as `default`.
    GcpServiceAccount,
}

impl IdentityKind {
    /// The kind's word in a policy file (and `@Resource[kind]`).
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::System => "system",
            IdentityKind::User => "user",
            IdentityKind::AwsRole => "aws_role",
            IdentityKind::GcpServiceAccount => "gcp_service_account",
        }
    }

    /// The cloud an identity of this kind lives in.
    pub fn cloud(self) -> Cloud {
        match self {
            IdentityKind::System | IdentityKind::User => Cloud::Azure,
            IdentityKind::AwsRole => Cloud::Aws,
            IdentityKind::GcpServiceAccount => Cloud::Gcp,
        }
    }
}

/// One managed identity, under the name policy uses for it. GUIDs are stored
/// lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub kind: IdentityKind,
    pub client_id: Option<String>,
    pub object_id: Option<String>,
    pub resource_id: Option<String>,
    /// AWS: the role's name (`iam/security-credentials/<role>`).
    pub role: Option<String>,
    /// GCP: the service account's email.
    pub email: Option<String>,
    /// GCP: this account is also `default` (at most one).
    pub default_account: bool,
    /// `[identities.NAME.tags]`, for `@Resource[tags:...]` conditions.
    pub tags: BTreeMap<String, String>,
}

/// The identity selector of a token request (`client_id`, `object_id`,
/// `msi_res_id`), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector<'a> {
    None,
    ClientId(&'a str),
    ObjectId(&'a str),
    ResourceId(&'a str),
}

/// Which selector a token request used: `@Request[selector]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorKind {
    None,
    ClientId,
    ObjectId,
    ResourceId,
}

impl SelectorKind {
    /// The query parameter's name (`none` without one).
    pub fn as_str(self) -> &'static str {
        match self {
            SelectorKind::None => "none",
            SelectorKind::ClientId => "client_id",
            SelectorKind::ObjectId => "object_id",
            SelectorKind::ResourceId => "msi_res_id",
        }
    }
}

impl Selector<'_> {
    pub fn kind(&self) -> SelectorKind {
        match self {
            Selector::None => SelectorKind::None,
            Selector::ClientId(_) => SelectorKind::ClientId,
            Selector::ObjectId(_) => SelectorKind::ObjectId,
            Selector::ResourceId(_) => SelectorKind::ResourceId,
        }
    }
}

/// Why no identity could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveError {
    /// No identity matches the selector (or, without one, none exists).
    NotFound,
    /// No selector, no system identity, several user-assigned ones.
    Ambiguous,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResolveError::NotFound => "identity not found",
            ResolveError::Ambiguous => {
                "several user-assigned identities and no system-assigned one: a selector is required"
            }
        })
    }
}

impl std::error::Error for ResolveError {}

/// Pick the identity a selector means. GUIDs and resource ids compare
/// case-insensitively.
pub(crate) fn resolve<'p>(
    identities: &'p [Identity],
    sel: &Selector<'_>,
) -> Result<&'p Identity, ResolveError> {
    let by = |field: fn(&Identity) -> Option<&String>, want: &str| {
        identities
            .iter()
            .find(|i| field(i).is_some_and(|v| v.eq_ignore_ascii_case(want)))
            .ok_or(ResolveError::NotFound)
    };
    match sel {
        Selector::ClientId(s) => by(|i| i.client_id.as_ref(), s),
        Selector::ObjectId(s) => by(|i| i.object_id.as_ref(), s),
        Selector::ResourceId(s) => by(|i| i.resource_id.as_ref(), s),
        Selector::None => {
            if let Some(system) = identities.iter().find(|i| i.kind == IdentityKind::System) {
                return Ok(system);
            }
            let mut users = identities.iter().filter(|i| i.kind == IdentityKind::User);
            match (users.next(), users.next()) {
                (Some(only), None) => Ok(only),
                (Some(_), Some(_)) => Err(ResolveError::Ambiguous),
                (None, _) => Err(ResolveError::NotFound),
            }
        }
    }
}

/// The AWS role identity named `role` (IAM role names are unique without
/// regard to case).
pub(crate) fn aws_role<'p>(identities: &'p [Identity], role: &str) -> Option<&'p Identity> {
    identities.iter().find(|i| {
        i.kind == IdentityKind::AwsRole
            && i.role
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(role))
    })
}

/// The GCP service account `account` names: `default`, or an email
/// (compared without regard to case, as Google does).
pub(crate) fn gcp_account<'p>(identities: &'p [Identity], account: &str) -> Option<&'p Identity> {
    identities.iter().find(|i| {
        i.kind == IdentityKind::GcpServiceAccount
            && ((account == "default" && i.default_account)
                || i.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(account)))
    })
}
