//! An Azure Instance Metadata Service (IMDS) emulator, faithful enough that
//! real clients (azure-identity, msal, the Azure CLI, the Rust
//! `azure_identity` crate, curl) run against it unchanged, and fast enough
//! to be the baseline in benchmarks.
//!
//! It serves managed-identity tokens (RS256 JWTs verifiable with
//! [`Emulator::jwks`]), the instance document, versions, identity info, an
//! attested document, and scheduled events; it throttles like IMDS and can
//! inject faults. It shares no code with the gate on purpose: two
//! independent readings of the protocol catch each other's mistakes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gatehouse_emulator::Error> {
//! use gatehouse_emulator::{start, EmulatorConfig, Options};
//! let emulator = start(EmulatorConfig::demo(), Options::default()).await?;
//! println!("IMDS at http://{}", emulator.addr());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod attested;
mod audience;
mod aws;
mod body;
mod civil;
mod clock;
mod config;
mod control;
mod endpoint;
mod events;
mod faults;
mod gcp;
mod identity;
mod imds;
mod instance;
mod keys;
mod query;
mod ratelimit;
mod reply;
mod server;
mod state;
mod stats;
mod token;
mod versions;

pub use audience::DEFAULT_AUDIENCES;
pub use aws::Dialect;
pub use config::{
    AwsConfig, ConfigError, EmulatorConfig, GcpConfig, GcpServiceAccount, ScheduledEvent,
    SystemIdentity, UserAssignedIdentity, VmConfig,
};
pub use endpoint::Endpoint;
pub use faults::{Faults, FaultsError, ForcedStatus};
pub use keys::{KeyError, KeySource};
pub use server::{generate_key_pem, load_config, start, Emulator, Error, LoadError, Options};
pub use stats::Stats;
pub use versions::API_VERSIONS;
