//! The signed-request listener: one UDP packet asks to open a port. A
//! packet that does not verify gets no answer at all (the port looks
//! closed, as with single-packet authorization); a verified one gets a
//! short answer with the request's id and state. Refusals are audited, at
//! most [`AUDIT_PER_MINUTE`] a minute so a flood cannot fill the log.

use super::JitService;
use gatehouse_jit::knock::{verify_packet, MAX_PACKET};
use gatehouse_jit::signers::AllowedSigners;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

pub const AUDIT_PER_MINUTE: u32 = 60;

/// With `host`, a request must name this host (what `gatehouse jit knock
/// HOST` puts in the signed text), so a packet signed for one machine is
/// refused by another that trusts the same key.
pub async fn serve(
    socket: UdpSocket,
    signers: Arc<AllowedSigners>,
    service: Arc<JitService>,
    host: Option<String>,
) {
    let host = Arc::new(host);
    let budget = Arc::new(Mutex::new((Instant::now(), 0u32, 0u64)));
    let mut buf = vec![0u8; MAX_PACKET + 1];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "signed requests: receive failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let packet = buf.get(..n).unwrap_or_default().to_vec();
        let (signers, service2, budget, host) = (
            Arc::clone(&signers),
            Arc::clone(&service),
            Arc::clone(&budget),
            Arc::clone(&host),
        );
        let answer = tokio::task::spawn_blocking(move || {
            let now = service2.now();
            match verify_packet(&packet, from.ip(), &signers, now) {
                Ok(verified) => {
                    let fp = verified.key_fingerprint.clone();
                    let for_us = match (host.as_deref(), verified.request.host.as_deref()) {
                        (None, _) => Ok(()),
                        (Some(want), Some(got)) if want.eq_ignore_ascii_case(got) => Ok(()),
                        (Some(want), got) => Err(super::api::ApiError::new(
                            super::api::ErrorKind::WrongHost,
                            format!(
                                "the request names host `{}`, this gate is `{want}`",
                                got.unwrap_or("(none)")
                            ),
                        )),
                    };
                    match for_us.and_then(|()| service2.knock(&verified)) {
                        Ok(resp) => Some(json!({
                            "ok": true,
                            "id": resp.record.as_ref().map(|r| r.id.clone()),
                            "state": resp.record.as_ref().map(|r| r.state),
                            "notices": resp.notices,
                        })),
                        Err(e) => {
                            if within_budget(&budget) {
                                service2.audit_refused_knock(
                                    from.ip(),
                                    e.kind.as_str(),
                                    &format!("{} (key {fp})", e.message),
                                    Some(&verified.signer),
                                );
                            }
                            // The signer is known: tell them why.
                            Some(json!({"ok": false, "error": e}))
                        }
                    }
                }
                Err(e) => {
                    if within_budget(&budget) {
                        service2.audit_refused_knock(from.ip(), e.kind(), &e.to_string(), None);
                    }
                    None
                }
            }
        })
        .await
        .ok()
        .flatten();
        if let Some(answer) = answer {
            if let Ok(bytes) = serde_json::to_vec(&answer) {
                let _ = socket.send_to(&bytes, from).await;
            }
        }
    }
}

/// At most AUDIT_PER_MINUTE refusals audited per minute; the rest counted.
fn within_budget(budget: &Mutex<(Instant, u32, u64)>) -> bool {
    let Ok(mut b) = budget.lock() else {
        return false;
    };
    if b.0.elapsed() >= Duration::from_secs(60) {
        if b.2 > 0 {
            tracing::warn!(
                dropped = b.2,
                "signed requests: refusals not audited (rate limit)"
            );
        }
        *b = (Instant::now(), 0, 0);
    }
    if b.1 < AUDIT_PER_MINUTE {
        b.1 += 1;
        true
    } else {
        b.2 += 1;
        false
    }
}
