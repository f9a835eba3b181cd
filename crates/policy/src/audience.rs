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
/// audience. In a `scheme://host/path` pattern the scheme-and-host and the
/// path are matched separately, so a `*` in the host never runs on into the
/// path (`https://*.vault.azure.net` does not match
/// `https://evil.example/x.vault.azure.net`), and a host with userinfo
/// (`@`) never matches a wildcard; `scheme://*` with no path is any audience
/// of that scheme. Elsewhere `*` is any run.
pub(crate) fn pattern_matches(pattern: &str, audience: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match (split_authority(pattern), split_authority(audience)) {
        (Some((p_host, p_path)), Some((a_host, a_path))) => {
            if a_host.contains('@') && p_host.contains('*') {
                return false;
            }
            let any_path = p_path.is_empty() && p_host.ends_with("://*");
            wildcard::matches(p_host, a_host) && (any_path || wildcard::matches(p_path, a_path))
        }
        (Some(_), None) | (None, Some(_)) => false,
        (None, None) => wildcard::matches(pattern, audience),
    }
}

/// `scheme://host` and the rest (path, query, fragment), for URI audiences.
fn split_authority(s: &str) -> Option<(&str, &str)> {
    let start = s.find("://")? + 3;
    let rest = s.get(start..)?;
    let at = rest.find(['/', '?', '#']).map_or(s.len(), |i| start + i);
    Some((s.get(..at)?, s.get(at..)?))
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
