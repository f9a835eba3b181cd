//! Audience (IMDS `resource`) normalisation, so that the spellings real
//! clients send for one audience compare equal. Used for matching only: the
//! gate forwards the client's own string upstream.

use crate::wildcard;

/// Normalise an audience for matching, or `None` if it is not acceptable.
///
/// Rules: reject empty strings and any whitespace or control character
/// (nothing is trimmed silently); lower-case the scheme and host of
/// `scheme://host/...` but keep the path's case; strip a `/.default` suffix
/// (azure-identity scopes); strip one trailing `/` (the Azure CLI keeps it);
/// lower-case a bare GUID.
pub fn normalise_audience(s: &str) -> Option<String> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let s = s.strip_suffix("/.default").unwrap_or(s);
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    if is_guid(s) {
        return Some(s.to_ascii_lowercase());
    }
    if let Some((scheme, rest)) = s.split_once("://") {
        let (host, path) = match rest.find(['/', '?', '#']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        return Some(format!(
            "{}://{}{}",
            scheme.to_ascii_lowercase(),
            host.to_ascii_lowercase(),
            path
        ));
    }
    Some(s.to_owned())
}

/// Does a normalised audience match a normalised pattern? `*` alone is any
/// audience; elsewhere `*` is any run.
pub(crate) fn pattern_matches(pattern: &str, audience: &str) -> bool {
    pattern == "*" || wildcard::matches(pattern, audience)
}

/// `8-4-4-4-12` hex digits.
pub(crate) fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8usize, 4, 4, 4, 12];
    groups.len() == lens.len()
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests;
