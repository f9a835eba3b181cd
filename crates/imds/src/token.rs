//! The parts of a token answer the gate checks before handing it on.
//!
//! The signature is not verified (the gate holds no keys); the claims are
//! read to make sure IMDS answered for the identity the decision was about.

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Fields of IMDS's 200 body the gate reads. Every value is a string.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_on: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
}

/// Identity claims of a managed-identity access token.
#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct Claims {
    #[serde(default)]
    pub oid: Option<String>,
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub xms_mirid: Option<String>,
    #[serde(default)]
    pub aud: Option<String>,
    #[serde(default)]
    pub tid: Option<String>,
    /// GCE ID tokens (`format=full`): the service account.
    #[serde(default)]
    pub email: Option<String>,
    /// Expiry, epoch seconds (GCE ID tokens).
    #[serde(default)]
    pub exp: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimsError {
    NotAJwt,
    BadBase64,
    BadJson,
}

impl std::fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClaimsError::NotAJwt => "token is not a JWT",
            ClaimsError::BadBase64 => "token payload is not base64url",
            ClaimsError::BadJson => "token payload is not a JSON object",
        })
    }
}

impl std::error::Error for ClaimsError {}

/// Decode (without verifying) the payload of a compact JWS.
pub fn decode_claims(token: &str) -> Result<Claims, ClaimsError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClaimsError::NotAJwt);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| ClaimsError::BadBase64)?;
    serde_json::from_slice(&bytes).map_err(|_| ClaimsError::BadJson)
}

/// A short, non-reversible name for a token, safe for logs: the first 12 hex
/// digits of its SHA-256.
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut s = String::with_capacity(12);
    for b in digest.iter().take(6) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
