use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::{mint, Grant};
use crate::identity::Chosen;
use crate::keys::{generate_pem, KeySource, Signer};

#[test]
fn token_has_claims_and_is_unique() {
    let signer = Signer::load(&KeySource::Pem(generate_pem().unwrap())).unwrap();
    let identity = Chosen {
        client_id: "c".into(),
        object_id: "o".into(),
        mirid: "/subscriptions/s/x".into(),
    };
    let grant = Grant {
        tenant_id: "t",
        identity: &identity,
        resource: "https://storage.azure.com/",
        now: 1000,
        lifetime_secs: 60,
    };
    let a = mint(&signer, &grant).unwrap();
    let b = mint(&signer, &grant).unwrap();
    assert_ne!(a, b);
    let parts: Vec<&str> = a.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], signer.kid());
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let want = [
        ("aud", serde_json::json!("https://storage.azure.com/")),
        ("iss", serde_json::json!("https://sts.windows.net/t/")),
        ("idp", serde_json::json!("https://sts.windows.net/t/")),
        ("iat", serde_json::json!(1000)),
        ("nbf", serde_json::json!(1000)),
        ("exp", serde_json::json!(1060)),
        ("appid", serde_json::json!("c")),
        ("appidacr", serde_json::json!("2")),
        ("idtyp", serde_json::json!("app")),
        ("oid", serde_json::json!("o")),
        ("sub", serde_json::json!("o")),
        ("tid", serde_json::json!("t")),
        ("xms_mirid", serde_json::json!("/subscriptions/s/x")),
    ];
    for (name, value) in want {
        assert_eq!(claims[name], value, "claim {name}");
    }
}
