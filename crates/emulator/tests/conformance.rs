//! Conformance of the emulator with the Azure sections of
//! shared/imds-protocol.md, over real loopback HTTP. Raw request bytes are
//! used throughout so exact headers (or their absence) are under test control.

// Helpers outside #[test] fns count as non-test code to clippy; a test
// helper failing loudly on an unexpected response is the point.
#![allow(
    clippy::disallowed_methods,
    reason = "tests seed manual clocks and check answers against the wall clock"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers fail loudly on unexpected responses"
)]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use gatehouse_emulator::{
    start, Emulator, EmulatorConfig, Endpoint, Faults, ForcedStatus, KeySource, Options,
    ScheduledEvent,
};

const TOKEN: &str = "/metadata/identity/oauth2/token";
const SYSTEM_CLIENT: &str = "1e5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b708";
const SYSTEM_OBJECT: &str = "0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607";
const STORAGE_CLIENT: &str = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809";
const STORAGE_OBJECT: &str = "3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a";
const VAULT_CLIENT: &str = "4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb";
const STORAGE_RID: &str = "/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourcegroups/gatehouse-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-writer";
const TENANT: &str = "b5a9c1d2-3e4f-4a6b-8c7d-9e0f1a2b3c4d";
const API_VERSION_ERROR: &str = "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds";

fn key() -> KeySource {
    static PEM: OnceLock<String> = OnceLock::new();
    KeySource::Pem(
        PEM.get_or_init(|| gatehouse_emulator::generate_key_pem().unwrap())
            .clone(),
    )
}

async fn emulator_with(config: EmulatorConfig, rate_limits: bool) -> Emulator {
    let options = Options {
        rate_limits,
        key: key(),
        control_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Options::default()
    };
    start(config, options).await.unwrap()
}

async fn emulator() -> Emulator {
    emulator_with(EmulatorConfig::demo(), false).await
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not json ({e}): {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_response(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {text:?}"));
    let mut lines = head.lines();
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Sends raw bytes, reads until the server closes.
async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    out
}

async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut req =
        format!("{method} {target} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    parse_response(&send_raw(addr, req.as_bytes()).await)
}

async fn get(addr: SocketAddr, target: &str) -> Resp {
    request(addr, "GET", target, &[("Metadata", "true")], "").await
}

async fn token(addr: SocketAddr, query: &str) -> Resp {
    get(addr, &format!("{TOKEN}?{query}")).await
}

fn jwt_claims(emulator: &Emulator, jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "jwt has three parts");
    let jwks = emulator.jwks();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let public = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e)).unwrap();
    let signature =
        Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice()).unwrap();
    VerifyingKey::<Sha256>::new(public)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("jwt signature verifies against jwks()");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], jwk["kid"]);
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

// ---------------------------------------------------------------- headers

#[tokio::test]
async fn metadata_header_is_required_everywhere() {
    let emu = emulator().await;
    let identity_body = json!({"error":"invalid_request","error_description":"Required metadata header not specified"});
    let instance_body = json!({"error":"Bad request. Required metadata header not specified"});
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a Value);
    let cases: &[Case<'_>] = &[
        ("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com", &[], &identity_body),
        ("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com", &[("Metadata", "True")], &identity_body),
        ("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com", &[("Metadata", "false")], &identity_body),
        ("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com", &[("Metadata", "true"), ("Metadata", "true")], &identity_body),
        ("/metadata/identity/info?api-version=2018-02-01", &[], &identity_body),
        ("/metadata/instance?api-version=2021-02-01", &[], &instance_body),
        ("/metadata/versions", &[], &instance_body),
        ("/metadata/attested/document?api-version=2021-02-01", &[], &instance_body),
        ("/metadata/scheduledevents?api-version=2020-07-01", &[], &instance_body),
    ];
    for (target, headers, want) in cases {
        let resp = request(emu.addr(), "GET", target, headers, "").await;
        assert_eq!(resp.status, 400, "{target} {headers:?}");
        assert_eq!(resp.json(), **want, "{target} {headers:?}");
    }
    // Header name is case-insensitive (HTTP), value must be lower-case `true`.
    let resp = request(
        emu.addr(),
        "GET",
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com",
        &[("METADATA", "true")],
        "",
    )
    .await;
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn x_forwarded_for_is_rejected() {
    let emu = emulator().await;
    for target in [
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com",
        "/metadata/instance?api-version=2021-02-01",
    ] {
        let resp = request(
            emu.addr(),
            "GET",
            target,
            &[("Metadata", "true"), ("X-Forwarded-For", "10.0.0.9")],
            "",
        )
        .await;
        assert_eq!(resp.status, 400, "{target}");
        assert!(resp.body.contains("X-Forwarded-For"), "{}", resp.body);
    }
}

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn token_200_shape_every_value_a_string() {
    let emu = emulator().await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let resp = token(
        emu.addr(),
        "api-version=2018-02-01&resource=https://management.azure.com",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let body = resp.json();
    let map = body.as_object().unwrap();
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    for key in [
        "access_token",
        "client_id",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "refresh_token",
        "resource",
        "token_type",
    ] {
        assert!(keys.contains(&key), "missing {key}");
    }
    assert!(map.values().all(Value::is_string), "{body}");
    // IMDS order (alphabetical) on the wire.
    let positions: Vec<usize> = [
        "\"access_token\"",
        "\"client_id\"",
        "\"expires_in\"",
        "\"resource\"",
        "\"token_type\"",
    ]
    .iter()
    .map(|k| resp.body.find(k).unwrap())
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}", resp.body);
    assert_eq!(body["expires_in"], "86399");
    assert_eq!(body["ext_expires_in"], "86399");
    assert_eq!(body["refresh_token"], "");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], "https://management.azure.com");
    assert_eq!(body["client_id"], SYSTEM_CLIENT);
    let expires_on: u64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    let not_before: u64 = body["not_before"].as_str().unwrap().parse().unwrap();
    assert!(not_before >= before && not_before <= before + 5);
    assert_eq!(expires_on, not_before + 86_399);
    assert!(body.get("object_id").is_none() && body.get("msi_res_id").is_none());
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    let mut config = EmulatorConfig::demo();
    config.token_lifetime_secs = 3599;
    let emu = emulator_with(config, false).await;
    let body = token(
        emu.addr(),
        "api-version=2018-02-01&resource=https://vault.azure.net",
    )
    .await
    .json();
    assert_eq!(body["expires_in"], "3599");
    let claims = jwt_claims(&emu, body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3599
    );
}

#[tokio::test]
async fn jwt_verifies_and_aud_is_resource_as_sent() {
    let emu = emulator().await;
    let mut seen = Vec::new();
    for (query, aud) in [
        (
            "resource=https://storage.azure.com",
            "https://storage.azure.com",
        ),
        (
            "resource=https://storage.azure.com/",
            "https://storage.azure.com/",
        ),
        (
            "resource=https%3A%2F%2Fstorage.azure.com%2F",
            "https://storage.azure.com/",
        ),
    ] {
        let body = token(emu.addr(), &format!("api-version=2019-08-01&{query}"))
            .await
            .json();
        assert_eq!(body["resource"], aud);
        let jwt = body["access_token"].as_str().unwrap().to_string();
        let claims = jwt_claims(&emu, &jwt);
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["iss"], format!("https://sts.windows.net/{TENANT}/"));
        assert_eq!(claims["idp"], claims["iss"]);
        assert_eq!(claims["tid"], TENANT);
        assert_eq!(claims["oid"], SYSTEM_OBJECT);
        assert_eq!(claims["sub"], SYSTEM_OBJECT);
        assert_eq!(claims["appid"], SYSTEM_CLIENT);
        assert_eq!(claims["appidacr"], "2");
        assert_eq!(claims["idtyp"], "app");
        assert_eq!(
            claims["xms_mirid"],
            "/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourcegroups/gatehouse-demo/providers/Microsoft.Compute/virtualMachines/demo-vm"
        );
        assert!(claims["nbf"].as_u64().unwrap() <= claims["exp"].as_u64().unwrap());
        seen.push(jwt);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "each token is unique");
}

#[tokio::test]
async fn selectors_choose_identity_and_echo() {
    let emu = emulator().await;
    let res = "resource=https://storage.azure.com";
    let enc_rid = STORAGE_RID.replace('/', "%2F");
    type Echo = Option<(&'static str, &'static str)>;
    let cases: Vec<(String, &str, Echo)> = vec![
        (format!("client_id={STORAGE_CLIENT}"), STORAGE_CLIENT, None),
        (
            format!("client_id={}", STORAGE_CLIENT.to_uppercase()),
            STORAGE_CLIENT,
            None,
        ),
        (format!("client_id={VAULT_CLIENT}"), VAULT_CLIENT, None),
        (
            format!("object_id={STORAGE_OBJECT}"),
            STORAGE_CLIENT,
            Some(("object_id", STORAGE_OBJECT)),
        ),
        (
            format!("object_id={SYSTEM_OBJECT}"),
            SYSTEM_CLIENT,
            Some(("object_id", SYSTEM_OBJECT)),
        ),
        (
            format!("msi_res_id={STORAGE_RID}"),
            STORAGE_CLIENT,
            Some(("msi_res_id", STORAGE_RID)),
        ),
        (
            format!("msi_res_id={enc_rid}"),
            STORAGE_CLIENT,
            Some(("msi_res_id", STORAGE_RID)),
        ),
        (
            format!("msi_res_id={}", STORAGE_RID.to_uppercase()),
            STORAGE_CLIENT,
            Some(("msi_res_id", STORAGE_RID)),
        ),
        (
            format!("mi_res_id={STORAGE_RID}"),
            STORAGE_CLIENT,
            Some(("msi_res_id", STORAGE_RID)),
        ),
    ];
    for (selector, client, echo) in cases {
        let resp = token(
            emu.addr(),
            &format!("api-version=2018-02-01&{res}&{selector}"),
        )
        .await;
        assert_eq!(resp.status, 200, "{selector}: {}", resp.body);
        let body = resp.json();
        assert_eq!(body["client_id"], client, "{selector}");
        if let Some((field, value)) = echo {
            assert_eq!(body[field], value, "{selector}");
        }
        let claims = jwt_claims(&emu, body["access_token"].as_str().unwrap());
        assert_eq!(claims["appid"], client, "{selector}");
        if client == STORAGE_CLIENT {
            assert_eq!(claims["xms_mirid"], STORAGE_RID);
        }
    }
}

#[tokio::test]
async fn token_errors() {
    let emu = emulator().await;
    let res = "resource=https://management.azure.com";
    let not_found = json!({"error":"invalid_request","error_description":"Identity not found"});
    let cases: Vec<(String, u16, &str, Option<&str>)> = vec![
        (format!("api-version=2018-02-01&{res}&client_id=00000000-0000-0000-0000-000000000000"), 400, "invalid_request", Some("Identity not found")),
        (format!("api-version=2018-02-01&{res}&object_id=00000000-0000-0000-0000-000000000000"), 400, "invalid_request", Some("Identity not found")),
        (format!("api-version=2018-02-01&{res}&msi_res_id=/subscriptions/x/nope"), 400, "invalid_request", Some("Identity not found")),
        (format!("api-version=2018-02-01&{res}&client_id={STORAGE_CLIENT}&object_id={STORAGE_OBJECT}"), 400, "invalid_request", None),
        (format!("api-version=2018-02-01&{res}&msi_res_id={STORAGE_RID}&mi_res_id={STORAGE_RID}"), 400, "invalid_request", None),
        (format!("api-version=2018-02-01&{res}&{res}"), 400, "invalid_request", None),
        (format!("api-version=2018-02-01&api-version=2019-08-01&{res}"), 400, "invalid_request", None),
        (format!("api-version=2018-02-01&{res}&resource=https%3A%2F%2Fmanagement.azure.com"), 400, "invalid_request", None),
        (res.to_string(), 400, "invalid_request", None),
        (format!("api-version=2017-12-01&{res}"), 400, "invalid_request", None),
        (format!("api-version=garbage&{res}"), 400, "invalid_request", None),
        ("api-version=2018-02-01".to_string(), 400, "invalid_request", Some("Required audience parameter not specified")),
        ("api-version=2018-02-01&resource=".to_string(), 400, "invalid_request", Some("Required audience parameter not specified")),
        ("api-version=2018-02-01&resource=https://unknown.example".to_string(), 400, "invalid_resource", None),
        ("api-version=2018-02-01&resource=%zz".to_string(), 400, "invalid_request", None),
    ];
    for (query, status, error, description) in cases {
        let resp = token(emu.addr(), &query).await;
        assert_eq!(resp.status, status, "{query}: {}", resp.body);
        let body = resp.json();
        assert_eq!(body["error"], error, "{query}");
        assert!(body["error_description"].is_string(), "{query}");
        if let Some(description) = description {
            assert_eq!(body["error_description"], description, "{query}");
        }
    }
    let body = token(
        emu.addr(),
        &format!("api-version=2018-02-01&{res}&client_id=00000000-0000-0000-0000-000000000000"),
    )
    .await
    .json();
    assert_eq!(body, not_found);
    let body = token(
        emu.addr(),
        "api-version=2018-02-01&resource=https://unknown.example",
    )
    .await
    .json();
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with("AADSTS500011"), "{description}");
    assert!(
        description.contains("https://unknown.example"),
        "{description}"
    );
}

#[tokio::test]
async fn audiences_match_spellings() {
    let emu = emulator().await;
    for resource in [
        "https://management.core.windows.net/",
        "https://management.azure.com/.default",
        "HTTPS://Vault.Azure.NET",
        "https://graph.microsoft.com",
        "https://database.windows.net/",
        "https://servicebus.azure.net",
        "https://eventhubs.azure.net",
        "https://cosmos.azure.com",
        "https://monitor.azure.com",
    ] {
        let resp = token(
            emu.addr(),
            &format!("api-version=2018-02-01&resource={resource}"),
        )
        .await;
        assert_eq!(resp.status, 200, "{resource}: {}", resp.body);
        assert_eq!(resp.json()["resource"], resource);
    }
    let mut config = EmulatorConfig::demo();
    config.extra_audiences = vec!["api://my-app".into()];
    let emu = emulator_with(config, false).await;
    let resp = token(emu.addr(), "api-version=2018-02-01&resource=api://my-app").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

#[tokio::test]
async fn user_assigned_only_vms() {
    let mut config = EmulatorConfig::demo();
    config.system_identity = None;
    let emu = emulator_with(config.clone(), false).await;
    let resp = token(
        emu.addr(),
        "api-version=2018-02-01&resource=https://management.azure.com",
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.json(),
        json!({"error":"invalid_request","error_description":"Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"})
    );
    let resp = token(
        emu.addr(),
        &format!(
            "api-version=2018-02-01&resource=https://management.azure.com&client_id={VAULT_CLIENT}"
        ),
    )
    .await;
    assert_eq!(resp.status, 200);
    // No system identity: its client id is unknown now.
    let resp = token(emu.addr(), &format!("api-version=2018-02-01&resource=https://management.azure.com&client_id={SYSTEM_CLIENT}")).await;
    assert_eq!(resp.json()["error_description"], "Identity not found");

    config.user_assigned.truncate(1);
    let emu = emulator_with(config.clone(), false).await;
    let body = token(
        emu.addr(),
        "api-version=2018-02-01&resource=https://management.azure.com",
    )
    .await
    .json();
    assert_eq!(body["client_id"], STORAGE_CLIENT);

    config.user_assigned.clear();
    let emu = emulator_with(config, false).await;
    let resp = token(
        emu.addr(),
        "api-version=2018-02-01&resource=https://management.azure.com",
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error_description"], "Identity not found");
}

// ---------------------------------------------------------------- instance & friends

fn assert_all_strings(value: &Value) {
    match value {
        Value::String(_) => {}
        Value::Array(items) => items.iter().for_each(assert_all_strings),
        Value::Object(map) => map.values().for_each(assert_all_strings),
        other => panic!("non-string primitive {other}"),
    }
}

#[tokio::test]
async fn instance_document_and_filters() {
    let emu = emulator().await;
    let resp = get(emu.addr(), "/metadata/instance?api-version=2021-02-01").await;
    assert_eq!(resp.status, 200);
    let doc = resp.json();
    assert_all_strings(&doc);
    let compute = &doc["compute"];
    for field in [
        "azEnvironment",
        "location",
        "name",
        "offer",
        "osType",
        "publisher",
        "resourceGroupName",
        "resourceId",
        "sku",
        "subscriptionId",
        "tags",
        "tagsList",
        "vmId",
        "vmSize",
        "zone",
        "storageProfile",
    ] {
        assert!(compute.get(field).is_some(), "compute.{field}");
    }
    assert_eq!(compute["vmId"], "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d");
    assert_eq!(compute["location"], "westeurope");
    assert_eq!(compute["vmSize"], "Standard_D2s_v5");
    assert_eq!(compute["zone"], "");

    let cases: &[(&str, u16, Option<&str>)] = &[
        ("/metadata/instance/compute/vmId?api-version=2021-02-01&format=text", 200, Some("9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d")),
        ("/metadata/instance/compute/azEnvironment?api-version=2021-02-01&format=text", 200, Some("AzurePublicCloud")),
        ("/metadata/instance/compute/name?api-version=2025-04-07&format=text", 200, Some("demo-vm")),
        ("/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01&format=text", 200, Some("10.0.0.4")),
        ("/metadata/instance/compute/zone?api-version=2021-02-01&format=text", 200, Some("")),
        ("/metadata/instance/compute/vmId?api-version=2021-02-01&format=json", 400, None),
        ("/metadata/instance/compute/vmId?api-version=2021-02-01", 400, None),
        ("/metadata/instance/compute?api-version=2021-02-01&format=text", 400, None),
        ("/metadata/instance/compute/vmId?api-version=2021-02-01&format=xml", 400, None),
        ("/metadata/instance/compute/nope?api-version=2021-02-01", 404, None),
        ("/metadata/instance/network/interface/7?api-version=2021-02-01", 404, None),
        ("/metadata/instance/compute//vmId?api-version=2021-02-01&format=text", 404, None),
        ("/metadata/instance?api-version=2021-02-01&api-version=2021-02-01", 400, None),
    ];
    for (target, status, body) in cases {
        let resp = get(emu.addr(), target).await;
        assert_eq!(resp.status, *status, "{target}: {}", resp.body);
        if let Some(body) = body {
            assert_eq!(resp.body, *body, "{target}");
            assert!(resp
                .header("content-type")
                .unwrap()
                .starts_with("text/plain"));
        }
        if *status == 400 || *status == 404 {
            assert!(resp.json()["error"].is_string(), "{target}");
        }
    }
    let resp = get(
        emu.addr(),
        "/metadata/instance/network/interface/0?api-version=2021-02-01",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json()["ipv4"]["ipAddress"][0]["privateIpAddress"],
        "10.0.0.4"
    );
    let resp = get(
        emu.addr(),
        "/metadata/instance/compute/?api-version=2021-02-01",
    )
    .await;
    assert_eq!(resp.json()["name"], "demo-vm");
}

#[tokio::test]
async fn instance_api_version_errors() {
    let emu = emulator().await;
    for target in [
        "/metadata/instance",
        "/metadata/instance?api-version=2099-01-01",
        "/metadata/instance/compute?api-version=",
        "/metadata/attested/document",
    ] {
        let resp = get(emu.addr(), target).await;
        assert_eq!(resp.status, 400, "{target}");
        let body = resp.json();
        assert_eq!(body["error"], API_VERSION_ERROR, "{target}");
        assert_eq!(body["newest-versions"][0], "2025-04-07", "{target}");
    }
}

#[tokio::test]
async fn versions_and_identity_info() {
    let emu = emulator().await;
    let resp = get(emu.addr(), "/metadata/versions").await;
    assert_eq!(resp.status, 200);
    let versions = resp.json()["apiVersions"].as_array().unwrap().clone();
    assert!(versions.len() > 10);
    assert_eq!(versions.last().unwrap(), "2025-04-07");
    assert!(versions.contains(&json!("2018-02-01")) && versions.contains(&json!("2021-02-01")));

    let resp = get(emu.addr(), "/metadata/identity/info?api-version=2018-02-01").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!({ "tenantId": TENANT }));
    let resp = get(emu.addr(), "/metadata/identity/info").await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"], "invalid_request");
}

#[tokio::test]
async fn attested_document_is_signed() {
    let emu = emulator().await;
    let resp = get(
        emu.addr(),
        "/metadata/attested/document?api-version=2021-02-01&nonce=abcde12345",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["encoding"], "pkcs7");
    let envelope: Value = serde_json::from_slice(
        &STANDARD
            .decode(body["signature"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let sig = STANDARD.decode(envelope["sig"].as_str().unwrap()).unwrap();
    let jwks = emu.jwks();
    let n = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["n"].as_str().unwrap())
        .unwrap();
    let e = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["e"].as_str().unwrap())
        .unwrap();
    let public = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e)).unwrap();
    VerifyingKey::<Sha256>::new(public)
        .verify(&payload, &Signature::try_from(sig.as_slice()).unwrap())
        .unwrap();
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["nonce"], "abcde12345");
    assert_eq!(payload["vmId"], "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d");
    assert_eq!(
        payload["subscriptionId"],
        "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    );
    assert_eq!(payload["sku"], "server");
    assert!(payload["timeStamp"]["createdOn"].is_string());

    let resp = get(
        emu.addr(),
        "/metadata/attested/document?api-version=2021-02-01",
    )
    .await;
    assert_eq!(resp.status, 200);
    let resp = get(
        emu.addr(),
        "/metadata/attested/document?api-version=2021-02-01&nonce=bad!nonce",
    )
    .await;
    assert_eq!(resp.status, 400);
}

#[tokio::test]
async fn scheduled_events_get_and_approve() {
    let mut config = EmulatorConfig::demo();
    config.scheduled_events = ["ev-1", "ev-2"]
        .iter()
        .map(|id| ScheduledEvent {
            event_id: (*id).into(),
            event_type: "Reboot".into(),
            resource_type: "VirtualMachine".into(),
            resources: vec![],
            event_status: "Scheduled".into(),
            not_before: "Mon, 19 Sep 2016 18:29:47 GMT".into(),
            description: "Host maintenance".into(),
            event_source: "Platform".into(),
            duration_in_seconds: 10,
        })
        .collect();
    let emu = emulator_with(config, false).await;
    let target = "/metadata/scheduledevents?api-version=2020-07-01";
    let doc = get(emu.addr(), target).await.json();
    assert_eq!(doc["DocumentIncarnation"], 1);
    assert_eq!(doc["Events"].as_array().unwrap().len(), 2);
    assert_eq!(doc["Events"][0]["EventId"], "ev-1");
    assert_eq!(doc["Events"][0]["Resources"], json!(["demo-vm"]));
    assert_eq!(doc["Events"][0]["EventType"], "Reboot");

    let approve = r#"{"StartRequests":[{"EventId":"ev-1"}]}"#;
    let resp = request(
        emu.addr(),
        "POST",
        target,
        &[("Metadata", "true"), ("Content-Type", "application/json")],
        approve,
    )
    .await;
    assert_eq!(resp.status, 200);
    let doc = get(emu.addr(), target).await.json();
    assert_eq!(doc["DocumentIncarnation"], 2);
    assert_eq!(doc["Events"].as_array().unwrap().len(), 1);
    assert_eq!(doc["Events"][0]["EventId"], "ev-2");

    let resp = request(
        emu.addr(),
        "POST",
        target,
        &[("Metadata", "true")],
        "not json",
    )
    .await;
    assert_eq!(resp.status, 400);
    let resp = request(emu.addr(), "POST", target, &[], approve).await;
    assert_eq!(resp.status, 400, "metadata header required on POST too");
    let resp = get(
        emu.addr(),
        "/metadata/scheduledevents?api-version=2021-02-01",
    )
    .await;
    assert_eq!(resp.status, 400);
}

#[tokio::test]
async fn methods_and_unknown_paths() {
    let emu = emulator().await;
    let cases: &[(&str, &str, u16)] = &[
        ("POST", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com", 405),
        ("PUT", "/metadata/instance?api-version=2021-02-01", 405),
        ("DELETE", "/metadata/versions", 405),
        ("HEAD", "/metadata/identity/info?api-version=2018-02-01", 405),
        ("PUT", "/metadata/scheduledevents?api-version=2020-07-01", 405),
        ("GET", "/metadata/nope", 404),
        ("GET", "/", 404),
        ("GET", "/metadata/identity/oauth2/token/", 404),
        ("GET", "/metadata/instancex?api-version=2021-02-01", 404),
        ("GET", "/stats", 404),
        ("GET", "/jwks", 404),
        ("PUT", "/faults", 404),
    ];
    for (method, target, status) in cases {
        let resp = request(emu.addr(), method, target, &[("Metadata", "true")], "").await;
        assert_eq!(resp.status, *status, "{method} {target}");
        if *status == 405 {
            assert!(resp.header("allow").is_some(), "{method} {target}");
        }
    }
}

// ---------------------------------------------------------------- HTTP behaviour

#[tokio::test]
async fn keep_alive_and_malformed_requests() {
    let emu = emulator().await;
    let one = "GET /metadata/versions HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n";
    let two = "GET /metadata/identity/info?api-version=2018-02-01 HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nConnection: close\r\n\r\n";
    let raw = send_raw(emu.addr(), format!("{one}{two}").as_bytes()).await;
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    assert!(text.contains("apiVersions") && text.contains("tenantId"));

    let raw = send_raw(emu.addr(), b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 400"),
        "{raw:?}"
    );
    // Still serving afterwards.
    assert_eq!(get(emu.addr(), "/metadata/versions").await.status, 200);
}

// ---------------------------------------------------------------- rate limits

#[tokio::test]
async fn identity_rate_limit_burst() {
    let emu = emulator_with(EmulatorConfig::demo(), true).await;
    let started = Instant::now();
    let mut ok = 0;
    let mut throttled = Vec::new();
    for _ in 0..40 {
        let resp = get(emu.addr(), "/metadata/identity/info?api-version=2018-02-01").await;
        match resp.status {
            200 => ok += 1,
            429 => throttled.push(resp),
            other => panic!("unexpected {other}"),
        }
    }
    let elapsed = started.elapsed();
    // 20 up front, then one more per 50 ms of refill (plus one for rounding).
    let refill = (elapsed.as_secs_f64() * 20.0).ceil() as usize;
    assert!((20..=21 + refill).contains(&ok), "ok {ok} in {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(1),
        "burst too slow to judge: {elapsed:?}"
    );
    assert!(!throttled.is_empty());
    let first = &throttled[0];
    assert!(first.header("retry-after").is_some());
    assert_eq!(first.json()["error"], "too_many_requests");
    assert_eq!(
        emu.stats().by_status.get(&429).copied().unwrap_or(0),
        throttled.len() as u64
    );
}

#[tokio::test]
async fn other_endpoints_rate_limit() {
    let emu = emulator_with(EmulatorConfig::demo(), true).await;
    let mut ok = 0;
    let mut limited = 0;
    for _ in 0..15 {
        match get(emu.addr(), "/metadata/versions").await.status {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!((5..=6).contains(&ok), "ok {ok}");
    assert!(limited >= 9);
    // The identity bucket is separate.
    assert_eq!(
        get(emu.addr(), "/metadata/identity/info?api-version=2018-02-01")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn identity_concurrency_limit() {
    let emu = emulator_with(EmulatorConfig::demo(), true).await;
    emu.set_faults(Faults {
        endpoint_latency_ms: [(Endpoint::Token, 600)].into_iter().collect(),
        ..Faults::default()
    });
    let addr = emu.addr();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move {
                token(
                    addr,
                    "api-version=2018-02-01&resource=https://management.azure.com",
                )
                .await
                .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429, 429, 429]);
}

#[tokio::test]
async fn rate_limits_can_be_turned_off() {
    let emu = emulator().await;
    for _ in 0..30 {
        assert_eq!(get(emu.addr(), "/metadata/versions").await.status, 200);
    }
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn latency_fault() {
    let emu = emulator().await;
    emu.set_faults(Faults {
        latency_ms: 100,
        endpoint_latency_ms: [(Endpoint::Versions, 150)].into_iter().collect(),
        ..Faults::default()
    });
    let started = Instant::now();
    assert_eq!(get(emu.addr(), "/metadata/versions").await.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(
        get(emu.addr(), "/metadata/identity/info?api-version=2018-02-01")
            .await
            .status,
        200
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < Duration::from_millis(250),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn forced_status_faults() {
    let emu = emulator().await;
    let q = "api-version=2018-02-01&resource=https://management.azure.com";
    emu.set_faults(Faults {
        forced: vec![ForcedStatus {
            endpoint: Some(Endpoint::Token),
            status: 500,
            body: None,
            retry_after_secs: None,
            count: Some(3),
        }],
        ..Faults::default()
    });
    for _ in 0..3 {
        assert_eq!(token(emu.addr(), q).await.status, 500);
        assert_eq!(
            get(emu.addr(), "/metadata/versions").await.status,
            200,
            "other endpoints unaffected"
        );
    }
    assert_eq!(token(emu.addr(), q).await.status, 200);
    assert!(emu.faults().forced.is_empty());

    for (status, retry_after, body) in [
        (429, Some(7), Some(r#"{"error":"throttled"}"#)),
        (404, None, None),
        (410, None, Some("IMDS is updating")),
        (503, Some(1), None),
    ] {
        emu.set_faults(Faults {
            forced: vec![ForcedStatus {
                endpoint: None,
                status,
                body: body.map(str::to_string),
                retry_after_secs: retry_after,
                count: None,
            }],
            ..Faults::default()
        });
        for _ in 0..2 {
            let resp = token(emu.addr(), q).await;
            assert_eq!(resp.status, status);
            assert_eq!(
                resp.header("retry-after"),
                retry_after.map(|s| s.to_string()).as_deref()
            );
            match body {
                Some(body) => assert_eq!(resp.body, body),
                None => assert!(resp.json()["error"].is_string()),
            }
        }
    }
}

#[tokio::test]
async fn outage_fault_closes_without_answer() {
    let emu = emulator().await;
    emu.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    let raw = send_raw(
        emu.addr(),
        b"GET /metadata/versions HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n",
    )
    .await;
    assert!(
        raw.is_empty(),
        "expected no bytes, got {:?}",
        String::from_utf8_lossy(&raw)
    );
    let stats = emu.stats();
    assert_eq!(stats.dropped, 1);
    assert_eq!(stats.total, 1);
    emu.set_faults(Faults::default());
    assert_eq!(get(emu.addr(), "/metadata/versions").await.status, 200);
}

#[tokio::test]
async fn faults_at_start() {
    let options = Options {
        key: key(),
        rate_limits: false,
        faults: Faults {
            forced: vec![ForcedStatus {
                endpoint: None,
                status: 503,
                body: None,
                retry_after_secs: None,
                count: Some(1),
            }],
            ..Faults::default()
        },
        ..Options::default()
    };
    let emu = start(EmulatorConfig::demo(), options).await.unwrap();
    assert_eq!(get(emu.addr(), "/metadata/versions").await.status, 503);
    assert_eq!(get(emu.addr(), "/metadata/versions").await.status, 200);
    assert!(emu.control_addr().is_none());

    let bad = Options {
        key: key(),
        faults: Faults {
            forced: vec![ForcedStatus {
                endpoint: None,
                status: 42,
                body: None,
                retry_after_secs: None,
                count: None,
            }],
            ..Faults::default()
        },
        ..Options::default()
    };
    assert!(start(EmulatorConfig::demo(), bad).await.is_err());
}

// ---------------------------------------------------------------- control & stats

#[tokio::test]
async fn control_endpoint() {
    let emu = emulator().await;
    let control = emu.control_addr().unwrap();
    assert_ne!(control, emu.addr());
    token(
        emu.addr(),
        "api-version=2018-02-01&resource=https://management.azure.com",
    )
    .await;
    get(emu.addr(), "/metadata/nope").await;

    let stats = request(control, "GET", "/stats", &[], "").await;
    assert_eq!(stats.status, 200);
    let stats = stats.json();
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["by_endpoint"]["token"], 1);
    assert_eq!(stats["by_endpoint"]["unknown"], 1);
    assert_eq!(stats["by_status"]["200"], 1);
    assert_eq!(stats["by_status"]["404"], 1);

    let jwks = request(control, "GET", "/jwks", &[], "").await;
    assert_eq!(jwks.json(), emu.jwks());

    let faults = r#"{"forced":[{"endpoint":"token","status":500,"count":1}]}"#;
    let resp = request(
        control,
        "PUT",
        "/faults",
        &[("Content-Type", "application/json")],
        faults,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let current = request(control, "GET", "/faults", &[], "").await.json();
    assert_eq!(current["forced"][0]["status"], 500);
    assert_eq!(
        token(
            emu.addr(),
            "api-version=2018-02-01&resource=https://management.azure.com"
        )
        .await
        .status,
        500
    );

    let resp = request(
        control,
        "PUT",
        "/faults",
        &[],
        r#"{"forced":[{"status":42}]}"#,
    )
    .await;
    assert_eq!(resp.status, 400);
    let resp = request(control, "PUT", "/faults", &[], r#"{"bogus":true}"#).await;
    assert_eq!(resp.status, 400);
    let resp = request(control, "DELETE", "/faults", &[], "").await;
    assert_eq!(resp.status, 405);
    let resp = request(
        control,
        "GET",
        "/metadata/versions",
        &[("Metadata", "true")],
        "",
    )
    .await;
    assert_eq!(resp.status, 404, "imds is not served on the control port");

    request(control, "PUT", "/faults", &[], r#"{"latency_ms":5}"#).await;
    let resp = request(control, "POST", "/reset", &[], "").await;
    assert_eq!(resp.status, 200);
    assert_eq!(emu.faults(), Faults::default());
    let stats = emu.stats();
    assert_eq!(stats.total, 0);
    assert!(stats.by_endpoint.is_empty());
}

#[tokio::test]
async fn stats_count_every_request() {
    let emu = emulator().await;
    get(emu.addr(), "/metadata/versions").await;
    get(emu.addr(), "/metadata/versions").await;
    request(
        emu.addr(),
        "GET",
        "/metadata/instance?api-version=2021-02-01",
        &[],
        "",
    )
    .await;
    token(
        emu.addr(),
        "api-version=2018-02-01&resource=https://management.azure.com",
    )
    .await;
    let stats = emu.stats();
    assert_eq!(stats.total, 4);
    assert_eq!(stats.by_endpoint[&Endpoint::Versions], 2);
    assert_eq!(stats.by_endpoint[&Endpoint::Instance], 1);
    assert_eq!(stats.by_endpoint[&Endpoint::Token], 1);
    assert_eq!(stats.by_status[&200], 3);
    assert_eq!(stats.by_status[&400], 1);
    emu.reset();
    assert_eq!(emu.stats().total, 0);
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let emu = emulator().await;
    let addr = emu.addr();
    assert_eq!(get(addr, "/metadata/versions").await.status, 200);
    emu.shutdown();
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "listener still accepting after shutdown");
}

#[tokio::test]
async fn example_config_file_matches_demo() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/emulator.toml");
    let loaded = gatehouse_emulator::load_config(std::path::Path::new(path)).unwrap();
    assert_eq!(loaded, EmulatorConfig::demo());
    let err =
        gatehouse_emulator::load_config(std::path::Path::new("/nonexistent.toml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent.toml"));
}

// ---- the AWS dialect (IMDSv2) ------------------------------------------------

async fn aws_emulator(tokens_optional: bool) -> Emulator {
    let mut config = EmulatorConfig::demo();
    config.aws.tokens_optional = tokens_optional;
    let options = Options {
        rate_limits: false,
        key: key(),
        dialect: gatehouse_emulator::Dialect::Aws,
        ..Options::default()
    };
    start(config, options).await.unwrap()
}

async fn aws_session(addr: SocketAddr, ttl: &str) -> Resp {
    request(
        addr,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", ttl)],
        "",
    )
    .await
}

const AWS_CREDS: &str = "/latest/meta-data/iam/security-credentials/gatehouse-demo-role";

#[tokio::test]
async fn aws_sessions_have_imdsv2_limits_and_failure_modes() {
    let e = aws_emulator(false).await;
    let addr = e.addr();
    for bad in ["0", "21601", "x", ""] {
        assert_eq!(aws_session(addr, bad).await.status, 400, "ttl `{bad}`");
    }
    let xff = request(
        addr,
        "PUT",
        "/latest/api/token",
        &[
            ("X-aws-ec2-metadata-token-ttl-seconds", "60"),
            ("X-Forwarded-For", "10.0.0.1"),
        ],
        "",
    )
    .await;
    assert_eq!(xff.status, 403);
    let ok = aws_session(addr, "21600").await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    let token = ok.body.clone();
    // HttpTokens=required: no token, a wrong one, or an expired one is 401.
    assert_eq!(request(addr, "GET", AWS_CREDS, &[], "").await.status, 401);
    let wrong = request(
        addr,
        "GET",
        AWS_CREDS,
        &[("X-aws-ec2-metadata-token", "nope")],
        "",
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("401 - Unauthorized"));
    let short = aws_session(addr, "1").await.body;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let expired = request(
        addr,
        "GET",
        AWS_CREDS,
        &[("X-aws-ec2-metadata-token", &short)],
        "",
    )
    .await;
    assert_eq!(expired.status, 401);
    let with = |t: &str| vec![("X-aws-ec2-metadata-token", t.to_owned())];
    let h = with(&token);
    let hdr: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let list = request(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &hdr,
        "",
    )
    .await;
    assert_eq!(
        (list.status, list.body.as_str()),
        (200, "gatehouse-demo-role")
    );
    let creds = request(addr, "GET", AWS_CREDS, &hdr, "").await;
    assert_eq!(creds.status, 200);
    let c = creds.json();
    assert_eq!(c["Code"], "Success");
    assert_eq!(c["Type"], "AWS-HMAC");
    let exp: jiff::Timestamp = c["Expiration"].as_str().unwrap().parse().unwrap();
    let left = exp.as_second() - jiff::Timestamp::now().as_second();
    assert!((21_500..=21_600).contains(&left), "{left}");
    // The same credentials until rotation.
    let again = request(addr, "GET", AWS_CREDS, &hdr, "").await.json();
    assert_eq!(again["AccessKeyId"], c["AccessKeyId"]);
    let other = request(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/other",
        &hdr,
        "",
    )
    .await;
    assert_eq!(other.status, 404);
    let ud = request(addr, "GET", "/latest/user-data", &hdr, "").await;
    assert_eq!(ud.status, 200);
    assert!(ud.body.contains("DB_PASSWORD"));
    let doc = request(
        addr,
        "GET",
        "/latest/dynamic/instance-identity/document",
        &hdr,
        "",
    )
    .await;
    assert_eq!(doc.json()["accountId"], "123456789012");
    // The same fault switches as for Azure: credentials are `token`.
    e.set_faults(Faults {
        forced: vec![ForcedStatus {
            endpoint: Some(Endpoint::Token),
            status: 500,
            body: None,
            retry_after_secs: None,
            count: Some(1),
        }],
        ..Faults::default()
    });
    assert_eq!(request(addr, "GET", AWS_CREDS, &hdr, "").await.status, 500);
    assert_eq!(request(addr, "GET", AWS_CREDS, &hdr, "").await.status, 200);
    assert_eq!(
        request(addr, "GET", "/latest/api/token", &hdr, "")
            .await
            .status,
        405,
        "the token path takes PUT only"
    );
}

#[tokio::test]
async fn aws_imdsv1_is_served_where_tokens_are_optional() {
    let e = aws_emulator(true).await;
    let r = request(e.addr(), "GET", "/latest/meta-data/instance-id", &[], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "i-0abc1234def567890"));
}

// ---- the GCP dialect (Compute Engine's metadata server) ----------------------

async fn gcp_emulator() -> Emulator {
    let options = Options {
        rate_limits: false,
        key: key(),
        dialect: gatehouse_emulator::Dialect::Gcp,
        ..Options::default()
    };
    start(EmulatorConfig::demo(), options).await.unwrap()
}

async fn gcp_get(addr: SocketAddr, target: &str) -> Resp {
    request(addr, "GET", target, &[("Metadata-Flavor", "Google")], "").await
}

const GCP_SA: &str = "/computeMetadata/v1/instance/service-accounts";

#[tokio::test]
async fn gcp_needs_the_flavor_header_and_names_itself() {
    let e = gcp_emulator().await;
    let addr = e.addr();
    let target = format!("{GCP_SA}/default/token");
    for headers in [
        vec![],
        vec![("Metadata-Flavor", "google")],
        vec![("Metadata", "true")],
        vec![("Metadata-Flavor", "Google"), ("Metadata-Flavor", "Google")],
        vec![
            ("Metadata-Flavor", "Google"),
            ("X-Forwarded-For", "10.0.0.1"),
        ],
    ] {
        let r = request(addr, "GET", &target, &headers, "").await;
        assert_eq!(r.status, 403, "{headers:?}");
        assert_eq!(r.header("metadata-flavor"), Some("Google"), "{headers:?}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
    }
    let post = request(addr, "POST", &target, &[("Metadata-Flavor", "Google")], "").await;
    assert_eq!(post.status, 405);
    let probe = gcp_get(addr, "/").await;
    assert_eq!(
        (probe.status, probe.body.as_str()),
        (200, "computeMetadata/\n")
    );
    assert_eq!(probe.header("metadata-flavor"), Some("Google"));
    assert_eq!(
        gcp_get(addr, "/computeMetadata/v1/nothing").await.status,
        404
    );
    assert_eq!(
        gcp_get(addr, "/computeMetadata/v1/project/project-id")
            .await
            .body,
        "gatehouse-demo"
    );
}

#[tokio::test]
async fn gcp_tokens_accounts_and_listings() {
    let e = gcp_emulator().await;
    let addr = e.addr();
    let email = "app@gatehouse-demo.iam.gserviceaccount.com";
    let info = gcp_get(addr, &format!("{GCP_SA}/default/?recursive=true")).await;
    assert_eq!(info.json()["email"], email);
    assert_eq!(info.json()["aliases"][0], "default");
    let listing = gcp_get(addr, &format!("{GCP_SA}/")).await;
    assert_eq!(listing.body, format!("default/\n{email}/\n"));
    // The same token while it has time left, by `default` and by email.
    let t1 = gcp_get(addr, &format!("{GCP_SA}/default/token"))
        .await
        .json();
    let t2 = gcp_get(addr, &format!("{GCP_SA}/{email}/token"))
        .await
        .json();
    assert_eq!(t1["access_token"], t2["access_token"]);
    assert_eq!(t1["token_type"], "Bearer");
    assert!(t1["expires_in"].as_u64().unwrap() <= 3599);
    let scoped = gcp_get(addr, &format!("{GCP_SA}/default/token?scopes=a,b"))
        .await
        .json();
    assert_ne!(scoped["access_token"], t1["access_token"]);
    assert_eq!(
        gcp_get(
            addr,
            &format!("{GCP_SA}/other@x.iam.gserviceaccount.com/token")
        )
        .await
        .status,
        404
    );
    // Recursive listings hold no token, as on GCE.
    for target in [
        format!("{GCP_SA}/?recursive=true"),
        "/computeMetadata/v1/instance/?recursive=true".to_owned(),
        "/computeMetadata/v1/?recursive=true".to_owned(),
    ] {
        let r = gcp_get(addr, &target).await;
        assert_eq!(r.status, 200, "{target}");
        assert!(r.body.contains(email), "{target}");
        assert!(!r.body.contains("ya29."), "{target}");
    }
    // ID tokens: `aud` is the audience, `format=full` adds the email.
    assert_eq!(
        gcp_get(addr, &format!("{GCP_SA}/default/identity"))
            .await
            .status,
        400
    );
    let id = gcp_get(
        addr,
        &format!("{GCP_SA}/default/identity?audience=https://x.example&format=full"),
    )
    .await;
    assert_eq!(id.status, 200);
    let claims = jwt_claims(&e, &id.body);
    assert_eq!(claims["aud"], "https://x.example");
    assert_eq!(claims["email"], email);
    assert_eq!(claims["iss"], "https://accounts.google.com");
    let standard = gcp_get(addr, &format!("{GCP_SA}/default/identity?audience=y")).await;
    assert!(jwt_claims(&e, &standard.body).get("email").is_none());
}
