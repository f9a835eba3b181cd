//! The Rust `azure_identity` crate, used exactly as an application on a VM
//! would: `ManagedIdentityCredential` with a user-assigned client id, no
//! endpoint override (the crate hard-codes 169.254.169.254). Run by the
//! gatehouse e2e harness inside a network namespace where that address is the
//! emulator behind the gate.
//!
//! Usage: gatehouse-e2e-rust-client CLIENT_ID [SCOPE]
//!
//! Prints one JSON line and exits 0 whatever the outcome, so the harness
//! judges the outcome, not a crash:
//!   {"ok":true,"token_len":N,"expires_on":T}
//!   {"ok":false,"error_kind":"...","message":"..."}
//! The token itself is never printed, only its length.

use azure_core::credentials::TokenCredential;
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_SCOPE: &str = "https://storage.azure.com/.default";
/// The crate retries some failures for up to 72 s; the harness wants an
/// answer sooner, and a hung gate must fail rather than stall.
const DEADLINE: Duration = Duration::from_secs(15);

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(client_id) = args.next() else {
        eprintln!("usage: gatehouse-e2e-rust-client CLIENT_ID [SCOPE]");
        return ExitCode::from(2);
    };
    let scope = args.next().unwrap_or_else(|| DEFAULT_SCOPE.to_owned());
    println!("{}", ask(client_id, &scope).await);
    ExitCode::SUCCESS
}

async fn ask(client_id: String, scope: &str) -> serde_json::Value {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: Some(UserAssignedId::ClientId(client_id)),
        ..Default::default()
    };
    let credential = match ManagedIdentityCredential::new(Some(options)) {
        Ok(c) => c,
        Err(e) => return failure(&e),
    };
    match tokio::time::timeout(DEADLINE, credential.get_token(&[scope], None)).await {
        Err(_) => {
            json!({"ok": false, "error_kind": "Timeout", "message": format!("no answer within {DEADLINE:?}")})
        }
        Ok(Err(e)) => failure(&e),
        Ok(Ok(token)) => json!({
            "ok": true,
            "token_len": token.token.secret().len(),
            "expires_on": token.expires_on.unix_timestamp(),
        }),
    }
}

fn failure(e: &azure_core::Error) -> serde_json::Value {
    json!({"ok": false, "error_kind": format!("{:?}", e.kind()), "message": e.to_string()})
}
