//! Which managed identity a token request is for, following IMDS's rules:
//! at most one selector; GUIDs and resource ids compare case-insensitively;
//! without a selector the system identity wins, else a lone user-assigned one.

use crate::config::EmulatorConfig;
use crate::query::Query;

#[cfg(test)]
mod tests;

/// The selector a request named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selector<'a> {
    Client(&'a str),
    Object(&'a str),
    /// `msi_res_id` or its older spelling `mi_res_id`.
    Resource(&'a str),
}

/// The identity a token will be minted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chosen {
    pub(crate) client_id: String,
    pub(crate) object_id: String,
    /// `xms_mirid`: the user-assigned identity's id, or the VM's for the system one.
    pub(crate) mirid: String,
}

/// Why no identity could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SelectError {
    #[error("more than one identity selector")]
    TooManySelectors,
    #[error("identity not found")]
    NotFound,
    #[error("several user-assigned identities and no selector")]
    Ambiguous,
}

/// Reads the selector parameters from `query`.
pub(crate) fn selector(query: &Query) -> Result<Option<Selector<'_>>, SelectError> {
    let found: Vec<Selector<'_>> = [
        query.get("client_id").map(Selector::Client),
        query.get("object_id").map(Selector::Object),
        query.get("msi_res_id").map(Selector::Resource),
        query.get("mi_res_id").map(Selector::Resource),
    ]
    .into_iter()
    .flatten()
    .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(SelectError::TooManySelectors),
    }
}

/// Resolves `selector` against the configured identities.
pub(crate) fn choose(
    config: &EmulatorConfig,
    selector: Option<Selector<'_>>,
) -> Result<Chosen, SelectError> {
    let system = config.system_identity.as_ref().map(|s| Chosen {
        client_id: s.client_id.clone(),
        object_id: s.object_id.clone(),
        mirid: config.vm_mirid(),
    });
    let users = config.user_assigned.iter().map(|u| {
        (
            u,
            Chosen {
                client_id: u.client_id.clone(),
                object_id: u.object_id.clone(),
                mirid: u.resource_id.clone(),
            },
        )
    });
    let same = |a: &str, b: &str| !a.is_empty() && a.eq_ignore_ascii_case(b);
    match selector {
        None => {
            if let Some(system) = system {
                return Ok(system);
            }
            let mut all: Vec<Chosen> = users.map(|(_, c)| c).collect();
            match all.len() {
                0 => Err(SelectError::NotFound),
                1 => all.pop().ok_or(SelectError::NotFound),
                _ => Err(SelectError::Ambiguous),
            }
        }
        Some(Selector::Client(id)) => system
            .into_iter()
            .chain(users.map(|(_, c)| c))
            .find(|c| same(id, &c.client_id))
            .ok_or(SelectError::NotFound),
        Some(Selector::Object(id)) => system
            .into_iter()
            .chain(users.map(|(_, c)| c))
            .find(|c| same(id, &c.object_id))
            .ok_or(SelectError::NotFound),
        Some(Selector::Resource(id)) => users
            .filter(|(u, _)| same(id, &u.resource_id))
            .map(|(_, c)| c)
            .next()
            .ok_or(SelectError::NotFound),
    }
}
