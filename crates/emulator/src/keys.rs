//! The emulator's RSA signing key: where it comes from, signing, and the
//! public JWKS that lets tests and the gate verify emulated tokens.

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;
use sha2::{Digest as _, Sha256};

#[cfg(test)]
mod tests;

/// Key size for generated keys; Entra ID signs with 2048-bit RSA.
const KEY_BITS: usize = 2048;

/// Where the signing key comes from.
#[derive(Clone, Default)]
pub enum KeySource {
    /// A fresh key per start (slow-ish: 0.1–1 s).
    #[default]
    Generate,
    /// A PKCS#8 or PKCS#1 PEM file.
    PemFile(PathBuf),
    /// PKCS#8 or PKCS#1 PEM text (tests share one generated key this way).
    Pem(String),
}

impl std::fmt::Debug for KeySource {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Generate => f.write_str("Generate"),
            Self::PemFile(path) => f.debug_tuple("PemFile").field(path).finish(),
            Self::Pem(_) => f.write_str("Pem(<redacted>)"),
        }
    }
}

/// Why a key could not be obtained. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate an rsa key: {0}")]
    Generate(String),
    #[error("cannot read key file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key is neither a PKCS#8 nor a PKCS#1 RSA private key in PEM form")]
    Parse,
    #[error("cannot encode the key as PKCS#8 PEM")]
    Encode,
}

/// An RS256 signer with its key id.
pub(crate) struct Signer {
    key: SigningKey<Sha256>,
    kid: String,
    n: String,
    e: String,
}

impl Signer {
    /// Loads or generates the key. Generation is CPU-bound; call from a blocking task.
    pub(crate) fn load(source: &KeySource) -> Result<Self, KeyError> {
        let key = match source {
            KeySource::Generate => generate()?,
            KeySource::PemFile(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_pem(&text)?
            }
            KeySource::Pem(text) => parse_pem(text)?,
        };
        Ok(Self::from_key(key))
    }

    fn from_key(key: RsaPrivateKey) -> Self {
        let n = key.n().to_bytes_be();
        let e = key.e().to_bytes_be();
        let mut hasher = Sha256::new();
        hasher.update(&n);
        hasher.update(&e);
        let kid = URL_SAFE_NO_PAD.encode(hasher.finalize());
        Self {
            key: SigningKey::<Sha256>::new(key),
            kid,
            n: URL_SAFE_NO_PAD.encode(n),
            e: URL_SAFE_NO_PAD.encode(e),
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).to_vec()
    }

    /// The key id in token headers and the JWKS.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK set.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": self.kid,
                "n": self.n,
                "e": self.e,
            }]
        })
    }
}

fn generate() -> Result<RsaPrivateKey, KeyError> {
    RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
        .map_err(|e| KeyError::Generate(e.to_string()))
}

fn parse_pem(text: &str) -> Result<RsaPrivateKey, KeyError> {
    RsaPrivateKey::from_pkcs8_pem(text)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(text))
        .map_err(|_| KeyError::Parse)
}

/// A fresh 2048-bit key as PKCS#8 PEM, for writing a key file once.
pub(crate) fn generate_pem() -> Result<String, KeyError> {
    let key = generate()?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| KeyError::Encode)?;
    Ok(pem.to_string())
}
