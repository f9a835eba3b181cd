//! Events the broker has the worker audit (firewall repairs): the audit log
//! has exactly one writer, the worker.

use super::wire::MAX_EVENT;
use gatehouse_audit::Event;
use std::io;
use std::os::fd::AsFd;

/// Send one event to the worker.
pub fn send_event(events: impl AsFd, event: &Event) -> io::Result<()> {
    let bytes = serde_json::to_vec(event).map_err(io::Error::other)?;
    gatehouse_sys::send_message(events, &bytes, &[])
}

/// The next event; `Ok(None)` when the broker is gone. Anything but an
/// [`Event`] without descriptors is an error.
pub fn recv_event(events: impl AsFd) -> io::Result<Option<Event>> {
    let Some(message) = gatehouse_sys::recv_message(events, MAX_EVENT)? else {
        return Ok(None);
    };
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    if !message.fds.is_empty() {
        return Err(invalid("an event carries no descriptors"));
    }
    serde_json::from_slice(&message.bytes)
        .map(Some)
        .map_err(|e| invalid(&format!("not an audit event: {e}")))
}
