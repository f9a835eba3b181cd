//! Events the broker has the worker audit (firewall repairs): the audit log
//! has exactly one writer, the worker.

use super::wire::MAX_EVENT;
use std::io;
use std::os::fd::AsFd;

/// Send one event (a JSON object) to the worker.
pub fn send_event(events: impl AsFd, event: &serde_json::Value) -> io::Result<()> {
    let bytes = serde_json::to_vec(event).map_err(io::Error::other)?;
    gatehouse_sys::send_message(events, &bytes, &[])
}

/// The next event; `Ok(None)` when the broker is gone. Anything but a JSON
/// object without descriptors is an error.
pub fn recv_event(events: impl AsFd) -> io::Result<Option<serde_json::Value>> {
    let Some(message) = gatehouse_sys::recv_message(events, MAX_EVENT)? else {
        return Ok(None);
    };
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    if !message.fds.is_empty() {
        return Err(invalid("an event carries no descriptors"));
    }
    match serde_json::from_slice(&message.bytes) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(Some(v)),
        _ => Err(invalid("an event is a JSON object")),
    }
}
