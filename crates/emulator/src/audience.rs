//! Which audiences (`resource=`) the emulated Entra ID knows. Real Entra ID
//! answers an unknown one with `AADSTS500011`; the emulator needs a list to do
//! the same.
//!
//! Comparison ignores the spellings clients differ in: a trailing `/`
//! (the Azure CLI keeps it), a `/.default` scope suffix, and the case of the
//! scheme and host. The path keeps its case.

#[cfg(test)]
mod tests;

/// Audiences every emulated tenant knows.
pub const DEFAULT_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://storage.azure.com",
    "https://vault.azure.net",
    "https://graph.microsoft.com",
    "https://database.windows.net",
    "https://servicebus.azure.net",
    "https://eventhubs.azure.net",
    "https://cosmos.azure.com",
    "https://monitor.azure.com",
];

/// A set of known audiences in normalised form.
#[derive(Debug, Clone)]
pub(crate) struct Audiences {
    known: Vec<String>,
}

impl Audiences {
    /// The defaults plus `extra`.
    pub(crate) fn new(extra: &[String]) -> Self {
        let known = DEFAULT_AUDIENCES
            .iter()
            .map(|a| normalise(a))
            .chain(extra.iter().map(|a| normalise(a)))
            .collect();
        Self { known }
    }

    /// Whether `resource` (as the client sent it, decoded) is known.
    pub(crate) fn contains(&self, resource: &str) -> bool {
        let wanted = normalise(resource);
        !wanted.is_empty() && self.known.contains(&wanted)
    }
}

/// Strips `/.default` and trailing slashes; lower-cases scheme and host.
pub(crate) fn normalise(audience: &str) -> String {
    let trimmed = audience.trim();
    let trimmed = trimmed.strip_suffix("/.default").unwrap_or(trimmed);
    let trimmed = trimmed.trim_end_matches('/');
    match trimmed.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                path
            )
        }
        // Application-id audiences are GUIDs, which compare case-insensitively.
        None => trimmed.to_ascii_lowercase(),
    }
}
