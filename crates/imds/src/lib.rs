//! IMDS protocol types shared by the gate: how a request target is
//! canonicalised for policy matching, the error bodies IMDS answers with, and
//! the parts of a token response the gate checks.
//!
//! Pure: no I/O, no clock.
#![forbid(unsafe_code)]

pub mod aws;
pub mod canonical;
pub mod errors;
pub mod gcp;
pub mod token;

pub use aws::{canonicalise_aws, AwsEndpoint, AwsTarget};
pub use canonical::{canonicalise, CanonError, Canonical, Endpoint, Selector};
pub use errors::ImdsError;
pub use gcp::{canonicalise_gcp, GcpEndpoint, GcpTarget};
