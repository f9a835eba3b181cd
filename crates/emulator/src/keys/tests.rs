use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey as _, LineEnding};
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

use super::{generate_pem, KeyError, KeySource, Signer};

fn pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| generate_pem().unwrap())
}

fn public_from_jwks(jwks: &serde_json::Value) -> RsaPublicKey {
    let key = &jwks["keys"][0];
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e)).unwrap()
}

#[test]
fn signature_verifies_with_jwks() {
    let signer = Signer::load(&KeySource::Pem(pem().to_string())).unwrap();
    let sig = signer.sign(b"hello");
    let public = public_from_jwks(&signer.jwks());
    let verifier = VerifyingKey::<Sha256>::new(public);
    let sig = Signature::try_from(sig.as_slice()).unwrap();
    verifier.verify(b"hello", &sig).unwrap();
    assert!(verifier.verify(b"hellO", &sig).is_err());
    assert_eq!(signer.jwks()["keys"][0]["kid"], signer.kid());
}

#[test]
fn pkcs1_pem_and_file_load_to_same_kid() {
    let key = RsaPrivateKey::from_pkcs8_pem(pem()).unwrap();
    let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pem");
    std::fs::write(&path, pem()).unwrap();
    let a = Signer::load(&KeySource::Pem(pem().to_string())).unwrap();
    let b = Signer::load(&KeySource::Pem(pkcs1)).unwrap();
    let c = Signer::load(&KeySource::PemFile(path)).unwrap();
    assert_eq!(a.kid(), b.kid());
    assert_eq!(a.kid(), c.kid());
}

#[test]
fn bad_sources_fail_without_leaking() {
    let err = Signer::load(&KeySource::Pem("not a key".into()))
        .err()
        .unwrap();
    assert!(matches!(err, KeyError::Parse));
    let err = Signer::load(&KeySource::PemFile("/nonexistent/key.pem".into()))
        .err()
        .unwrap();
    assert!(err.to_string().contains("/nonexistent/key.pem"));
    let debug = format!("{:?}", KeySource::Pem(pem().to_string()));
    assert!(!debug.contains("PRIVATE"), "{debug}");
}
