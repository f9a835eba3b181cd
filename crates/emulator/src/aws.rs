//! The AWS EC2 instance metadata service (IMDSv2), as `gatehouse emulate
//! --cloud aws` serves it: session tokens by `PUT /latest/api/token` (TTL
//! 1–21600 s, refused with `X-Forwarded-For`), every GET answered 401
//! without a valid token (`HttpTokens=required`; `[aws] tokens_optional`
//! for IMDSv1), the role's credentials with their own `Expiration`, user
//! data and the signed instance-identity document. Paths are matched as
//! sent: this is the service, not a canonicaliser.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use rand::RngCore as _;
use serde::Serialize;

use crate::endpoint::Endpoint;
use crate::reply::{self, Reply};
use crate::state::{lock, State};

/// Which metadata service the emulator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Azure,
    Aws,
    /// Google Compute Engine's metadata server (`gcp.rs`).
    Gcp,
}

/// EC2's bounds on a session token's lifetime.
pub(crate) const TTL_MIN: u64 = 1;
pub(crate) const TTL_MAX: u64 = 21600;
/// Live sessions kept at most (expired ones are dropped first).
const MAX_SESSIONS: usize = 65536;

/// Session tokens and the role's current credentials.
#[derive(Default)]
pub(crate) struct AwsState {
    sessions: HashMap<String, Instant>,
    credentials: Option<Credentials>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Credentials {
    code: &'static str,
    last_updated: String,
    #[serde(rename = "Type")]
    kind: &'static str,
    access_key_id: String,
    secret_access_key: String,
    token: String,
    expiration: String,
    #[serde(skip)]
    expires_at: u64,
    #[serde(skip)]
    issued_at: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityDocument<'a> {
    account_id: &'a str,
    architecture: &'static str,
    availability_zone: String,
    image_id: &'static str,
    instance_id: &'a str,
    instance_type: &'static str,
    pending_time: String,
    private_ip: &'a str,
    region: &'a str,
    version: &'static str,
}

fn random(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// `2026-12-03T17:00:00Z`, as EC2 writes times.
fn iso(secs: u64) -> String {
    let c = crate::civil::DateTime::from_unix(secs);
    c.iso()
}

/// EC2's error pages: a small XHTML document with the status.
pub(crate) fn error(status: StatusCode) -> Reply {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>{code} - {reason}</title>\n </head>\n <body>\n  <h1>{code} - {reason}</h1>\n </body>\n</html>\n"
    );
    let mut r = reply::text(status, body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

fn plain(body: String) -> Reply {
    reply::text(StatusCode::OK, body)
}

/// One request to the AWS dialect, after faults and rate limits.
pub(crate) fn respond(state: &State, endpoint: Endpoint, req: &Request<Incoming>) -> Reply {
    let now = state.clock.instant_now();
    if endpoint == Endpoint::SessionToken {
        if req.method() != Method::PUT {
            return error(StatusCode::METHOD_NOT_ALLOWED);
        }
        return issue_session(state, req.headers(), now);
    }
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED);
    }
    if let Some(refused) = check_session(state, req.headers(), now) {
        return refused;
    }
    let aws = &state.config.aws;
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/latest") else {
        return match path {
            "/" => plain("1.0\nlatest".into()),
            _ => error(StatusCode::NOT_FOUND),
        };
    };
    let prefix = "/meta-data/iam/security-credentials/";
    match rest {
        "" | "/" => plain("dynamic\nmeta-data\nuser-data".into()),
        "/meta-data" | "/meta-data/" => plain(
            "ami-id\nhostname\niam/\ninstance-id\ninstance-type\nlocal-ipv4\nplacement/".into(),
        ),
        "/meta-data/ami-id" => plain("ami-0123456789abcdef0".into()),
        "/meta-data/hostname" => plain(format!("ip-10-0-0-4.{}.compute.internal", aws.region)),
        "/meta-data/instance-id" => plain(aws.instance_id.clone()),
        "/meta-data/instance-type" => plain("t3.micro".into()),
        "/meta-data/local-ipv4" => plain(state.config.vm.private_ip.clone()),
        "/meta-data/placement" | "/meta-data/placement/" => {
            plain("availability-zone\nregion".into())
        }
        "/meta-data/placement/region" => plain(aws.region.clone()),
        "/meta-data/placement/availability-zone" => plain(format!("{}a", aws.region)),
        "/meta-data/iam" | "/meta-data/iam/" => plain("info\nsecurity-credentials/".into()),
        "/meta-data/iam/info" => {
            let body = serde_json::json!({
                "Code": "Success",
                "LastUpdated": iso(state.clock.unix_now()),
                "InstanceProfileArn": format!("arn:aws:iam::{}:instance-profile/{}", aws.account_id, aws.role),
                "InstanceProfileId": "AIPAEXAMPLEPROFILEID0",
            });
            reply::json(StatusCode::OK, &body)
        }
        "/meta-data/iam/security-credentials" | "/meta-data/iam/security-credentials/" => {
            plain(aws.role.clone())
        }
        r if r.starts_with(prefix) => {
            if r.get(prefix.len()..) == Some(aws.role.as_str()) {
                reply::json(StatusCode::OK, &credentials(state))
            } else {
                error(StatusCode::NOT_FOUND)
            }
        }
        "/user-data" => {
            let mut r = reply::text(StatusCode::OK, aws.user_data.clone());
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        "/dynamic" | "/dynamic/" => plain("instance-identity/".into()),
        "/dynamic/instance-identity" | "/dynamic/instance-identity/" => {
            plain("document\nsignature".into())
        }
        "/dynamic/instance-identity/document" => plain(document(state)),
        "/dynamic/instance-identity/signature" => {
            plain(STANDARD.encode(state.signer.sign(document(state).as_bytes())))
        }
        _ => error(StatusCode::NOT_FOUND),
    }
}

fn document(state: &State) -> String {
    let aws = &state.config.aws;
    let doc = IdentityDocument {
        account_id: &aws.account_id,
        architecture: "x86_64",
        availability_zone: format!("{}a", aws.region),
        image_id: "ami-0123456789abcdef0",
        instance_id: &aws.instance_id,
        instance_type: "t3.micro",
        pending_time: iso(0),
        private_ip: &state.config.vm.private_ip,
        region: &aws.region,
        version: "2017-09-30",
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// `PUT /latest/api/token`: a session for TTL seconds.
fn issue_session(state: &State, headers: &http::HeaderMap, now: Instant) -> Reply {
    if headers.contains_key("x-forwarded-for") {
        return error(StatusCode::FORBIDDEN);
    }
    let ttl = headers
        .get("x-aws-ec2-metadata-token-ttl-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|t| (TTL_MIN..=TTL_MAX).contains(t));
    let Some(ttl) = ttl else {
        return error(StatusCode::BAD_REQUEST);
    };
    let token = STANDARD.encode(random(42));
    let mut aws = lock(&state.aws);
    if aws.sessions.len() >= MAX_SESSIONS {
        aws.sessions.retain(|_, until| *until > now);
    }
    if aws.sessions.len() >= MAX_SESSIONS {
        return error(StatusCode::SERVICE_UNAVAILABLE);
    }
    aws.sessions
        .insert(token.clone(), now + Duration::from_secs(ttl));
    drop(aws);
    reply::with_header(
        plain(token),
        http::header::HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds"),
        &ttl.to_string(),
    )
}

/// A GET carries a live session token, or the instance allows IMDSv1.
fn check_session(state: &State, headers: &http::HeaderMap, now: Instant) -> Option<Reply> {
    let mut tokens = headers.get_all("x-aws-ec2-metadata-token").iter();
    match (tokens.next(), tokens.next()) {
        (None, _) if state.config.aws.tokens_optional => None,
        (Some(t), None) => {
            let live = t
                .to_str()
                .ok()
                .and_then(|t| lock(&state.aws).sessions.get(t).copied())
                .is_some_and(|until| until > now);
            (!live).then(|| error(StatusCode::UNAUTHORIZED))
        }
        _ => Some(error(StatusCode::UNAUTHORIZED)),
    }
}

/// The role's credentials: the same keys until less than half their life
/// is left, then new ones (EC2 rotates well before `Expiration`).
fn credentials(state: &State) -> Credentials {
    let now = state.clock.unix_now();
    let life = state.config.aws.credential_lifetime_secs.max(2);
    let mut aws = lock(&state.aws);
    if let Some(c) = &aws.credentials {
        if c.expires_at.saturating_sub(now) > life / 2 && c.issued_at <= now {
            return c.clone();
        }
    }
    let alnum = |n: usize| -> String {
        random(n)
            .iter()
            .filter_map(|b| {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
                    .get(usize::from(b % 32))
                    .map(|c| char::from(*c))
            })
            .collect()
    };
    let c = Credentials {
        code: "Success",
        last_updated: iso(now),
        kind: "AWS-HMAC",
        access_key_id: format!("ASIA{}", alnum(16)),
        secret_access_key: STANDARD.encode(random(30)),
        token: STANDARD.encode(random(96)),
        expiration: iso(now + life),
        expires_at: now + life,
        issued_at: now,
    };
    aws.credentials = Some(c.clone());
    c
}
