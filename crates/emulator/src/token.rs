//! Minting emulated Entra ID access tokens: RS256 JWTs with the claims
//! managed-identity tokens carry, and the IMDS JSON that wraps them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::Serialize;

use crate::identity::Chosen;
use crate::keys::Signer;

#[cfg(test)]
mod tests;

#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    kid: &'a str,
}

/// Claims in the order Entra ID emits them.
#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    aio: &'a str,
    appid: &'a str,
    appidacr: &'static str,
    idp: &'a str,
    idtyp: &'static str,
    oid: &'a str,
    sub: &'a str,
    tid: &'a str,
    uti: &'a str,
    ver: &'static str,
    xms_mirid: &'a str,
}

/// What a token is for and when.
pub(crate) struct Grant<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) identity: &'a Chosen,
    /// The `resource` exactly as the client sent it (decoded): it becomes `aud`.
    pub(crate) resource: &'a str,
    pub(crate) now: u64,
    pub(crate) lifetime_secs: u64,
}

/// Builds and signs a JWT. Every token differs (random `uti` and `aio`).
pub(crate) fn mint(signer: &Signer, grant: &Grant<'_>) -> Result<String, serde_json::Error> {
    let iss = format!("https://sts.windows.net/{}/", grant.tenant_id);
    let uti = random_b64(16);
    let aio = random_b64(24);
    let header = Header {
        typ: "JWT",
        alg: "RS256",
        kid: signer.kid(),
    };
    let claims = Claims {
        aud: grant.resource,
        iss: &iss,
        iat: grant.now,
        nbf: grant.now,
        exp: grant.now.saturating_add(grant.lifetime_secs),
        aio: &aio,
        appid: &grant.identity.client_id,
        appidacr: "2",
        idp: &iss,
        idtyp: "app",
        oid: &grant.identity.object_id,
        sub: &grant.identity.object_id,
        tid: grant.tenant_id,
        uti: &uti,
        ver: "1.0",
        xms_mirid: &grant.identity.mirid,
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
    );
    let signature = signer.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The 200 body. Every value is a string; fields in IMDS's (alphabetical) order.
#[derive(Debug, Serialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) client_id: String,
    pub(crate) expires_in: String,
    pub(crate) expires_on: String,
    pub(crate) ext_expires_in: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) msi_res_id: Option<String>,
    pub(crate) not_before: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) object_id: Option<String>,
    pub(crate) refresh_token: String,
    pub(crate) resource: String,
    pub(crate) token_type: String,
}
