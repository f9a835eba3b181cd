//! The control port (only when `Options::control_listen` is set): stats,
//! faults, reset and the JWKS, for tests and benchmarks driving an emulator
//! in another process. It is a separate listener so nothing on the IMDS port
//! can change the emulator's behaviour.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::ALLOW;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use crate::faults::Faults;
use crate::reply::{self, Reply};
use crate::state::{lock, State};
use crate::stats::Stats;

/// Serves one control request.
pub(crate) async fn serve(state: Arc<State>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let reply = match (method, path.as_str()) {
        (Method::GET, "/stats") => reply::json(StatusCode::OK, &*lock(&state.stats)),
        (Method::GET, "/faults") => reply::json(StatusCode::OK, &*lock(&state.faults)),
        (Method::PUT, "/faults") => put_faults(&state, req).await,
        (Method::POST, "/reset") => {
            reset(&state);
            reply::empty_ok()
        }
        (Method::GET, "/jwks") => reply::json(StatusCode::OK, &state.signer.jwks()),
        (_, "/stats" | "/faults" | "/jwks" | "/reset") => {
            let allow = match path.as_str() {
                "/faults" => "GET, PUT",
                "/reset" => "POST",
                _ => "GET",
            };
            let reply = reply::imds_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            reply::with_header(reply, ALLOW, allow)
        }
        _ => reply::imds_error(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(reply)
}

async fn put_faults(state: &State, req: Request<Incoming>) -> Reply {
    let Some(body) = crate::body::read(req.into_body()).await else {
        return reply::imds_error(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(err) => {
            return reply::imds_error(StatusCode::BAD_REQUEST, &format!("invalid faults: {err}"))
        }
    };
    if let Err(err) = faults.validate() {
        return reply::imds_error(StatusCode::BAD_REQUEST, &format!("invalid faults: {err}"));
    }
    *lock(&state.faults) = faults.clone();
    reply::json(StatusCode::OK, &faults)
}

/// Clears faults and counters (not scheduled events).
pub(crate) fn reset(state: &State) {
    *lock(&state.faults) = Faults::default();
    *lock(&state.stats) = Stats::default();
    *lock(&state.peaks) = crate::stats::Peaks::default();
}
