//! AWS IMDSv2 session tokens issued by the gate itself.
//!
//! A client's `PUT /latest/api/token` is answered here, never forwarded:
//! the token is 32 random bytes the gate remembers together with the uid
//! of the socket that asked (the kernel's answer, from `sock_diag`) and the
//! end of its TTL. Every later request must carry a live token *and* come
//! from a socket of that same uid, so a token read out of another user's
//! process, log or SSRF answer is useless to whoever holds it. The token
//! carries only the session; the decision is made per request, on the
//! caller the kernel reports, as on Azure. The gate's own session with
//! IMDS (upstream.rs) is never handed to a client.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// EC2's bounds on `X-aws-ec2-metadata-token-ttl-seconds`.
pub const TTL_MIN: u64 = 1;
pub const TTL_MAX: u64 = 21600;
/// Live sessions one uid may hold (botocore takes one per process and
/// renews it; a loop that asks for thousands is refused, not stored).
pub const MAX_PER_UID: usize = 1024;
/// Live sessions in all.
pub const MAX_TOTAL: usize = 65536;

#[derive(Debug, Clone, Copy)]
struct Session {
    uid: u32,
    until: Instant,
}

/// Why a request's session token does not let it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no session token (IMDSv1 is refused; set `aws_allow_imdsv1` to allow it)")]
    Missing,
    #[error("more than one session token")]
    Several,
    #[error("no such session token (or it expired)")]
    Unknown,
    #[error("session token was issued to another uid")]
    OtherCaller,
    #[error("too many live session tokens for this uid")]
    Full,
}

#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `uid`, valid `ttl` from `now`.
    pub fn issue(&self, uid: u32, ttl: Duration, now: Instant) -> Result<String, SessionError> {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mine = live.values().filter(|s| s.uid == uid).count();
        if mine >= MAX_PER_UID || live.len() >= MAX_TOTAL {
            live.retain(|_, s| s.until > now);
            let mine = live.values().filter(|s| s.uid == uid).count();
            if mine >= MAX_PER_UID || live.len() >= MAX_TOTAL {
                return Err(SessionError::Full);
            }
        }
        live.insert(
            token.clone(),
            Session {
                uid,
                until: now + ttl,
            },
        );
        Ok(token)
    }

    /// Is `token` live at `now`, and was it issued to `uid`?
    pub fn check(&self, token: &str, uid: u32, now: Instant) -> Result<(), SessionError> {
        let live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match live.get(token) {
            Some(s) if s.until <= now => Err(SessionError::Unknown),
            Some(s) if s.uid != uid => Err(SessionError::OtherCaller),
            Some(_) => Ok(()),
            None => Err(SessionError::Unknown),
        }
    }

    /// Live sessions now (for `status`).
    pub fn count(&self, now: Instant) -> usize {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|s| s.until > now)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_its_uids_until_it_ends() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let token = s.issue(1000, Duration::from_secs(10), t0).unwrap();
        assert_eq!(token.len(), 43);
        assert_eq!(s.check(&token, 1000, t0), Ok(()));
        assert_eq!(s.check(&token, 1001, t0), Err(SessionError::OtherCaller));
        assert_eq!(
            s.check(&token, 1000, t0 + Duration::from_secs(10)),
            Err(SessionError::Unknown)
        );
        assert_eq!(s.check("forged", 1000, t0), Err(SessionError::Unknown));
        let other = s.issue(1000, Duration::from_secs(10), t0).unwrap();
        assert_ne!(token, other, "tokens are random");
    }

    #[test]
    fn one_uid_cannot_fill_the_table() {
        let s = Sessions::default();
        let t0 = Instant::now();
        for _ in 0..MAX_PER_UID {
            s.issue(7, Duration::from_secs(5), t0).unwrap();
        }
        assert_eq!(
            s.issue(7, Duration::from_secs(5), t0),
            Err(SessionError::Full)
        );
        // Another uid is unaffected, and expired sessions make room.
        assert!(s.issue(8, Duration::from_secs(5), t0).is_ok());
        assert!(s
            .issue(7, Duration::from_secs(5), t0 + Duration::from_secs(6))
            .is_ok());
    }
}
