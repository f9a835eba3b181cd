//! Query-string parsing for IMDS requests, written independently of the
//! gate's canonicaliser so the two can be tested against each other.
//!
//! Decisions (matching what IMDS and its clients do):
//! - Values are form-decoded: `+` is a space and `%XX` is a byte, so
//!   azure-identity's raw `resource=https://x` and msal's
//!   `resource=https%3A%2F%2Fx` mean the same. `+` is decoded as a space
//!   because both Python clients encode spaces that way (`urlencode`), and no
//!   Azure audience, GUID or resource id contains a literal `+`; a real `+`
//!   must be sent as `%2B`.
//! - Parameter names compare ASCII-case-insensitively, and a name given twice
//!   (in any case or encoding) is an error: a request smuggling a second
//!   `resource` must not be read one way here and another way elsewhere.
//! - A bad escape (`%zz`) or a value that is not UTF-8 after decoding is an error.

use percent_encoding::percent_decode_str;

#[cfg(test)]
mod tests;

/// Why a query string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueryError {
    #[error("query parameter `{0}` is given more than once")]
    Duplicate(String),
    #[error("query string is not valid percent-encoded UTF-8")]
    Encoding,
}

/// Decoded query parameters, names lower-cased.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses the raw query (the part after `?`, if any).
    pub(crate) fn parse(raw: Option<&str>) -> Result<Self, QueryError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name)?.to_ascii_lowercase();
            let value = decode(value)?;
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(QueryError::Duplicate(name));
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// The value of `name` (give it lower-case).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn decode(text: &str) -> Result<String, QueryError> {
    if !escapes_are_valid(text) {
        return Err(QueryError::Encoding);
    }
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| QueryError::Encoding)
}

/// Every `%` is followed by two hex digits.
fn escapes_are_valid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || matches!(
                (bytes.get(i + 1), bytes.get(i + 2)),
                (Some(x), Some(y)) if x.is_ascii_hexdigit() && y.is_ascii_hexdigit()
            )
    })
}
