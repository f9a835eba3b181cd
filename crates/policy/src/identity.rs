//! The VM's managed identities and how a token request's selector picks one,
//! mirroring IMDS's own rules.

use std::collections::BTreeMap;
use std::fmt;

/// System-assigned or user-assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    System,
    User,
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
