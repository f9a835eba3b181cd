//! The nftables table that makes the kernel send every IMDS connection on
//! the machine through the gate — rendered from a few options, applied in one
//! `nft -f -` transaction, verified structurally against `nft -j list`,
//! watched and repaired, and removed without touching any other table.
//!
//! Rendering and comparison are pure ([`ruleset`], [`diff`], [`lockout`]);
//! everything that runs a program is in [`nft`], [`watch`](mod@watch), [`bypass`] and
//! [`jit`] (the run-time elements of the just-in-time port sets).

#![forbid(unsafe_code)]

pub mod bypass;
pub mod diff;
pub mod expr;
pub mod jit;
pub mod lockout;
pub mod nft;
pub mod ruleset;
pub mod watch;

pub use diff::Difference;
pub use jit::{Element, JitError, Protocol, SyncReport};
pub use lockout::would_lock_out;
pub use nft::{Nft, NftError};
pub use ruleset::{Containers, Ipv6, JitPorts, Options, OptionsError, Ruleset};
pub use watch::{ensure, watch, Trigger, WatchEvent, WatchOptions, Watcher};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error(transparent)]
    Listing(#[from] diff::ListingError),
    #[error(transparent)]
    Jit(#[from] JitError),
}

/// Replace our table with `ruleset` in one transaction (idempotent).
///
/// The table is deleted and declared again, so the run-time elements of
/// `jit4`/`jit6` (ports opened just in time) are gone afterwards: whoever
/// keeps them (the daemon) must call [`jit::sync`] after every apply,
/// including the watcher's repairs. Established sessions are unaffected.
pub fn apply(nft: &Nft, ruleset: &Ruleset) -> Result<(), Error> {
    nft.run_batch(&ruleset.batch())?;
    Ok(())
}

/// How the kernel's table differs from `ruleset` (empty: it is the same).
pub fn verify(nft: &Nft, ruleset: &Ruleset) -> Result<Vec<Difference>, Error> {
    let listing = nft.list_table()?;
    Ok(diff::compare(listing.as_ref(), ruleset)?)
}

/// Delete our table, and nothing else; succeeds when it is already gone.
pub fn remove(nft: &Nft) -> Result<(), Error> {
    nft.run_batch(&ruleset::remove_batch())?;
    Ok(())
}
