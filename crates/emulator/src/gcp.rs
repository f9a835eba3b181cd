//! Google Compute Engine's metadata server, as `gatehouse emulate --cloud
//! gcp` serves it: every request needs `Metadata-Flavor: Google` (403
//! without, and with `X-Forwarded-For`), every answer carries it; the
//! instance's service accounts by `default` and by email, their access
//! tokens (`scopes=`; the same token until less than 5 minutes are left,
//! `expires_in` counted down) and ID tokens (RS256 JWTs whose `aud` is the
//! `audience=`, `format=full` adding the email and instance claims),
//! `recursive=true` listings (which, as on GCE, hold no tokens), project
//! and instance attributes. Paths are matched as sent: this is the
//! service, not a canonicaliser.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use rand::RngCore as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{GcpConfig, GcpServiceAccount};
use crate::endpoint::Endpoint;
use crate::query::Query;
use crate::reply::{self, Reply};
use crate::state::{lock, State};

/// GCE serves the same access token until this little of it is left.
const REISSUE_BELOW_SECS: u64 = 300;

/// Access tokens currently served, by (account email, scopes).
#[derive(Default)]
pub(crate) struct GcpState {
    tokens: HashMap<(String, String), (String, u64)>,
}

/// Every answer says who it is from (google-auth's probe checks it).
pub(crate) fn flavored(mut reply: Reply) -> Reply {
    reply
        .headers_mut()
        .insert("metadata-flavor", HeaderValue::from_static("Google"));
    reply
}

fn typed(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut r = reply::text(status, body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// GCE's error pages: a small HTML document.
pub(crate) fn error(status: StatusCode, message: &str) -> Reply {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    typed(
        status,
        "text/html; charset=UTF-8",
        format!(
            "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error {code} ({reason})!!1</title>\n  <p><b>{code}.</b> <ins>That\u{2019}s an error.</ins>\n  <p>{message}\n</html>\n"
        ),
    )
}

fn text(body: String) -> Reply {
    typed(StatusCode::OK, "application/text", body)
}

fn listing(entries: &[&str]) -> Reply {
    let mut body = entries.join("\n");
    body.push('\n');
    text(body)
}

fn json_reply(value: &Value) -> Reply {
    typed(
        StatusCode::OK,
        "application/json",
        serde_json::to_string(value).unwrap_or_default(),
    )
}

/// A request path of the GCP dialect, for stats, faults and limits: tokens
/// are `token`, account descriptions `identity_info`.
pub(crate) fn classify(path: &str) -> Endpoint {
    let Some(rest) = path.strip_prefix("/computeMetadata/v1/") else {
        return match path {
            "/" | "/computeMetadata/" | "/computeMetadata/v1" => Endpoint::Instance,
            _ => Endpoint::Unknown,
        };
    };
    match rest.strip_prefix("instance/service-accounts/") {
        Some(sa) if sa.ends_with("/token") || sa.ends_with("/identity") => Endpoint::Token,
        Some(_) => Endpoint::IdentityInfo,
        None => Endpoint::Instance,
    }
}

/// One request to the GCP dialect, after faults and rate limits.
pub(crate) fn respond(state: &State, req: &Request<Incoming>) -> Reply {
    let path = req.uri().path();
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
    }
    if req.headers().contains_key("x-forwarded-for") {
        return error(
            StatusCode::FORBIDDEN,
            "Your client does not have permission to get URL from this server. Requests with X-Forwarded-For are not accepted.",
        );
    }
    let flavors: Vec<&HeaderValue> = req.headers().get_all("metadata-flavor").iter().collect();
    if !matches!(flavors.as_slice(), [v] if v.as_bytes() == b"Google") {
        return error(
            StatusCode::FORBIDDEN,
            "Your client does not have permission to get URL from this server. Missing Metadata-Flavor:Google header.",
        );
    }
    let Ok(query) = Query::parse(req.uri().query()) else {
        return error(StatusCode::BAD_REQUEST, "Invalid query string.");
    };
    let recursive = query
        .get("recursive")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let gcp = &state.config.gcp;
    match path {
        "/" => return text("computeMetadata/\n".into()),
        "/computeMetadata/" => return text("v1/\n".into()),
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/computeMetadata/v1/") else {
        return not_found();
    };
    if let Some(sa) = rest.strip_prefix("instance/service-accounts/") {
        return service_accounts(state, sa, &query, recursive);
    }
    let attributes = |map: &std::collections::BTreeMap<String, String>, key: &str| {
        if key.is_empty() {
            if recursive {
                return json_reply(&json!(map));
            }
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            return listing(&keys);
        }
        map.get(key).map_or_else(not_found, |v| text(v.clone()))
    };
    let no_project_attributes = std::collections::BTreeMap::new();
    match rest {
        "" if recursive => json_reply(&json!({
            "instance": instance_json(gcp),
            "project": project_json(gcp),
        })),
        "" => listing(&["instance/", "project/", "universe/"]),
        "project/" if recursive => json_reply(&project_json(gcp)),
        "project/" => listing(&["attributes/", "numeric-project-id", "project-id"]),
        "project/project-id" => text(gcp.project_id.clone()),
        "project/numeric-project-id" => text(gcp.numeric_project_id.to_string()),
        "instance/" if recursive => json_reply(&instance_json(gcp)),
        "instance/" => listing(&[
            "attributes/",
            "hostname",
            "id",
            "machine-type",
            "name",
            "service-accounts/",
            "zone",
        ]),
        "instance/id" => text(gcp.instance_id.to_string()),
        "instance/name" => text(gcp.instance_name.clone()),
        "instance/hostname" => text(hostname(gcp)),
        "instance/zone" => text(zone(gcp)),
        "instance/machine-type" => text(format!(
            "projects/{}/machineTypes/e2-small",
            gcp.numeric_project_id
        )),
        "universe/universe-domain" => text("googleapis.com".into()),
        r => {
            if let Some(key) = r.strip_prefix("instance/attributes/") {
                attributes(&gcp.attributes, key)
            } else if let Some(key) = r.strip_prefix("project/attributes/") {
                attributes(&no_project_attributes, key)
            } else {
                not_found()
            }
        }
    }
}

fn not_found() -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "The requested URL was not found on this server.",
    )
}

fn hostname(gcp: &GcpConfig) -> String {
    format!(
        "{}.{}.c.{}.internal",
        gcp.instance_name, gcp.zone, gcp.project_id
    )
}

fn zone(gcp: &GcpConfig) -> String {
    format!("projects/{}/zones/{}", gcp.numeric_project_id, gcp.zone)
}

fn account_json(sa: &GcpServiceAccount, default: bool) -> Value {
    let mut aliases = Vec::new();
    if default {
        aliases.push("default");
    }
    json!({ "aliases": aliases, "email": sa.email, "scopes": sa.scopes })
}

fn accounts_json(gcp: &GcpConfig) -> Value {
    let mut map = serde_json::Map::new();
    for (i, sa) in gcp.service_accounts.iter().enumerate() {
        if i == 0 {
            map.insert("default".into(), account_json(sa, true));
        }
        map.insert(sa.email.clone(), account_json(sa, i == 0));
    }
    Value::Object(map)
}

fn instance_json(gcp: &GcpConfig) -> Value {
    json!({
        "attributes": gcp.attributes,
        "hostname": hostname(gcp),
        "id": gcp.instance_id,
        "machineType": format!("projects/{}/machineTypes/e2-small", gcp.numeric_project_id),
        "name": gcp.instance_name,
        "serviceAccounts": accounts_json(gcp),
        "zone": zone(gcp),
    })
}

fn project_json(gcp: &GcpConfig) -> Value {
    json!({
        "attributes": {},
        "numericProjectId": gcp.numeric_project_id,
        "projectId": gcp.project_id,
    })
}

/// `instance/service-accounts/...`.
fn service_accounts(state: &State, rest: &str, query: &Query, recursive: bool) -> Reply {
    let gcp = &state.config.gcp;
    if rest.is_empty() {
        if recursive {
            return json_reply(&accounts_json(gcp));
        }
        let mut names: Vec<String> = Vec::new();
        if !gcp.service_accounts.is_empty() {
            names.push("default/".into());
        }
        names.extend(gcp.service_accounts.iter().map(|s| format!("{}/", s.email)));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        return listing(&refs);
    }
    let (name, what) = rest.split_once('/').unwrap_or((rest, ""));
    let found = gcp
        .service_accounts
        .iter()
        .enumerate()
        .find(|(i, sa)| (name == "default" && *i == 0) || sa.email == name);
    let Some((index, sa)) = found else {
        return not_found();
    };
    match what {
        "" if recursive => json_reply(&account_json(sa, index == 0)),
        "" => listing(&["aliases", "email", "identity", "scopes", "token"]),
        "email" => text(sa.email.clone()),
        "aliases" => text(if index == 0 {
            "default".into()
        } else {
            String::new()
        }),
        "scopes" => {
            let mut body = sa.scopes.join("\n");
            body.push('\n');
            text(body)
        }
        "token" => access_token(state, sa, query),
        "identity" => id_token(state, sa, index, query),
        _ => not_found(),
    }
}

fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn access_token(state: &State, sa: &GcpServiceAccount, query: &Query) -> Reply {
    let scopes = query
        .get("scopes")
        .map_or_else(|| sa.scopes.join(","), str::to_owned);
    if scopes.split(',').any(str::is_empty) {
        return error(StatusCode::BAD_REQUEST, "Invalid scopes.");
    }
    let now = state.clock.unix_now();
    let life = state.config.gcp.token_lifetime_secs.max(1);
    let mut gcp = lock(&state.gcp);
    let key = (sa.email.clone(), scopes);
    let (token, until) = match gcp.tokens.get(&key) {
        Some((t, until)) if until.saturating_sub(now) > REISSUE_BELOW_SECS.min(life / 2) => {
            (t.clone(), *until)
        }
        _ => {
            let t = format!("ya29.{}", random_b64(96));
            gcp.tokens.insert(key, (t.clone(), now + life));
            (t, now + life)
        }
    };
    drop(gcp);
    json_reply(&json!({
        "access_token": token,
        "expires_in": until.saturating_sub(now),
        "token_type": "Bearer",
    }))
}

#[derive(Serialize)]
struct IdClaims<'a> {
    aud: &'a str,
    azp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    google: Option<Value>,
    iat: u64,
    iss: &'static str,
    sub: String,
}

fn id_token(state: &State, sa: &GcpServiceAccount, index: usize, query: &Query) -> Reply {
    let audience = query.get("audience").unwrap_or("");
    if audience.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "non-empty audience parameter required",
        );
    }
    let full = match query.get("format").unwrap_or("standard") {
        "standard" => false,
        "full" => true,
        _ => return error(StatusCode::BAD_REQUEST, "Invalid format."),
    };
    let gcp = &state.config.gcp;
    let now = state.clock.unix_now();
    let life = gcp.token_lifetime_secs.max(1) + 1;
    // A stable numeric id per account, as Google's are.
    let id = format!("1{:020}", gcp.numeric_project_id * 100 + index as u64);
    let claims = IdClaims {
        aud: audience,
        azp: id.clone(),
        email: full.then_some(sa.email.as_str()),
        email_verified: full.then_some(true),
        exp: now + life,
        google: full.then(|| {
            json!({"compute_engine": {
                "instance_creation_timestamp": 1_764_806_400,
                "instance_id": gcp.instance_id.to_string(),
                "instance_name": gcp.instance_name,
                "project_id": gcp.project_id,
                "project_number": gcp.numeric_project_id,
                "zone": gcp.zone,
            }})
        }),
        iat: now,
        iss: "https://accounts.google.com",
        sub: id,
    };
    let header = json!({"alg": "RS256", "kid": state.signer.kid(), "typ": "JWT"});
    let (Ok(h), Ok(c)) = (serde_json::to_vec(&header), serde_json::to_vec(&claims)) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(h),
        URL_SAFE_NO_PAD.encode(c)
    );
    let signature = URL_SAFE_NO_PAD.encode(state.signer.sign(signing_input.as_bytes()));
    text(format!("{signing_input}.{signature}"))
}
