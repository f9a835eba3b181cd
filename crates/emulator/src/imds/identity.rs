//! `/metadata/identity/oauth2/token` and `/metadata/identity/info`.

use http::StatusCode;

use crate::identity::{choose, selector, SelectError, Selector};
use crate::query::Query;
use crate::reply::{self, Reply};
use crate::state::State;
use crate::token::{mint, Grant, TokenResponse};
use crate::versions::identity_version_ok;

const MULTIPLE_IDENTITIES: &str = "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request";

fn bad_request(description: &str) -> Reply {
    reply::oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn version_ok(query: &Query) -> bool {
    query.get("api-version").is_some_and(identity_version_ok)
}

const BAD_VERSION: &str = "api-version is invalid or was not specified in the request";

/// Issues a token, or the IMDS error for why not.
pub(super) fn token(state: &State, query: &Query) -> Reply {
    if !version_ok(query) {
        return bad_request(BAD_VERSION);
    }
    let Some(resource) = query.get("resource").filter(|r| !r.trim().is_empty()) else {
        return bad_request("Required audience parameter not specified");
    };
    let chosen_selector = match selector(query) {
        Ok(selector) => selector,
        Err(_) => {
            return bad_request("Only one of client_id, object_id, msi_res_id may be specified")
        }
    };
    let chosen = match choose(&state.config, chosen_selector) {
        Ok(chosen) => chosen,
        Err(SelectError::NotFound) => return bad_request("Identity not found"),
        Err(SelectError::Ambiguous) => return bad_request(MULTIPLE_IDENTITIES),
        Err(SelectError::TooManySelectors) => {
            return bad_request("Only one of client_id, object_id, msi_res_id may be specified")
        }
    };
    let tenant = &state.config.tenant_id;
    if !state.audiences.contains(resource) {
        let description = format!(
            "AADSTS500011: The resource principal named {resource} was not found in the tenant named {tenant}. \
             This can happen if the application has not been installed by the administrator of the tenant or \
             consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
        );
        return reply::oauth_error(StatusCode::BAD_REQUEST, "invalid_resource", &description);
    }
    let now = state.clock.unix_now();
    let lifetime = state.config.token_lifetime_secs;
    let grant = Grant {
        tenant_id: tenant,
        identity: &chosen,
        resource,
        now,
        lifetime_secs: lifetime,
    };
    let Ok(access_token) = mint(&state.signer, &grant) else {
        return reply::oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "token signing failed",
        );
    };
    let body = TokenResponse {
        access_token,
        client_id: chosen.client_id.clone(),
        expires_in: lifetime.to_string(),
        expires_on: now.saturating_add(lifetime).to_string(),
        ext_expires_in: lifetime.to_string(),
        msi_res_id: matches!(chosen_selector, Some(Selector::Resource(_)))
            .then(|| chosen.mirid.clone()),
        not_before: now.to_string(),
        object_id: matches!(chosen_selector, Some(Selector::Object(_)))
            .then(|| chosen.object_id.clone()),
        refresh_token: String::new(),
        resource: resource.to_string(),
        token_type: "Bearer".to_string(),
    };
    reply::json(StatusCode::OK, &body)
}

/// `{"tenantId": ...}`.
pub(super) fn info(state: &State, query: &Query) -> Reply {
    if !version_ok(query) {
        return bad_request(BAD_VERSION);
    }
    reply::json(
        StatusCode::OK,
        &serde_json::json!({ "tenantId": state.config.tenant_id }),
    )
}
