//! The attested document. Real IMDS returns a CMS/PKCS#7 SignedData blob;
//! building CMS is out of scope, so this is PKCS#7-*shaped*, not CMS:
//! `{"encoding":"pkcs7","signature":"<base64>"}` where the base64 decodes to
//! a JSON envelope `{"alg":"RS256","kid":..,"payload":<base64 payload>,
//! "sig":<base64 RS256 signature over the payload bytes>}`. The payload is
//! what IMDS attests: nonce, vmId, subscriptionId, sku, timeStamp, plan,
//! licenseType. Clients that only pass the blob on work; clients that parse
//! CMS will not.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;

use crate::civil::DateTime;
use crate::config::EmulatorConfig;
use crate::keys::Signer;

/// How long an attestation is valid, as on IMDS.
const VALIDITY_SECS: u64 = 6 * 3600;
const MAX_NONCE_LEN: usize = 32;

/// Whether a client-supplied nonce is acceptable (1–32 alphanumerics).
pub(crate) fn nonce_ok(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Builds the response body. Without a nonce IMDS uses the time (`YYYYMMDD-HHMMSS`).
pub(crate) fn document(
    config: &EmulatorConfig,
    signer: &Signer,
    nonce: Option<&str>,
    now: u64,
) -> serde_json::Result<serde_json::Value> {
    let created = DateTime::from_unix(now);
    let nonce = nonce.map_or_else(|| created.compact(), str::to_string);
    let payload = json!({
        "licenseType": "",
        "nonce": nonce,
        "plan": { "name": "", "product": "", "publisher": "" },
        "sku": config.vm.sku,
        "subscriptionId": config.subscription_id,
        "timeStamp": {
            "createdOn": created.attested(),
            "expiresOn": DateTime::from_unix(now.saturating_add(VALIDITY_SECS)).attested(),
        },
        "vmId": config.vm.vm_id,
    });
    let payload = serde_json::to_vec(&payload)?;
    let sig = signer.sign(&payload);
    let envelope = json!({
        "alg": "RS256",
        "kid": signer.kid(),
        "payload": STANDARD.encode(&payload),
        "sig": STANDARD.encode(sig),
    });
    Ok(json!({
        "encoding": "pkcs7",
        "signature": STANDARD.encode(serde_json::to_vec(&envelope)?),
    }))
}
