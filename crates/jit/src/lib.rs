//! gatehouse-jit: the just-in-time access state and the remote port request.
//!
//! - [`store`]: requests, grants, their events (an audit outbox) and seen
//!   nonces in one SQLite database (WAL, mode 0600). Every change is one
//!   transaction, so a kill -9 leaves a request fully recorded or absent.
//!   Times are passed in: the daemon's `Clock` decides what "now" is.
//! - [`signers`] and [`knock`]: a port request sent from outside as one UDP
//!   packet, signed with the requester's SSH key (`ssh-keygen -Y sign`
//!   format), checked against an allowed-signers file, with replay
//!   protection.

#![forbid(unsafe_code)]

pub mod knock;
pub mod signers;
pub mod store;
