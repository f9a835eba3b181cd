//! Reading small request bodies (scheduled-event approvals, control PUTs)
//! with a size cap, so a client cannot make the emulator buffer without bound.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;

/// Largest body the emulator reads.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The whole body, or `None` if it is too large or the read failed.
pub(crate) async fn read(body: Incoming) -> Option<Bytes> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}
