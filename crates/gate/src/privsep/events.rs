//! The event socket, both ways. Broker → worker: events to audit (the audit
//! log has exactly one writer, the worker) and the commands signals turn into
//! (reload, stop). Worker → broker: readiness, reload outcomes and the
//! request loop's heartbeat, which the broker relays to the service manager.

use super::wire::{ToBroker, ToWorker, MAX_EVENT};
use gatehouse_audit::Event;
use std::io;
use std::os::fd::AsFd;

/// Send one event to the worker to audit.
pub fn send_event(events: impl AsFd, event: &Event) -> io::Result<()> {
    send_to_worker(events, &ToWorker::Audit(event.clone()))
}

/// Send the worker one message.
pub fn send_to_worker(events: impl AsFd, message: &ToWorker) -> io::Result<()> {
    send(events, message)
}

/// Send the broker one message.
pub fn send_to_broker(events: impl AsFd, message: &ToBroker) -> io::Result<()> {
    send(events, message)
}

/// The broker's next message; `Ok(None)` when the broker is gone. Anything
/// malformed (an audit event outside the schema too), or carrying
/// descriptors, is an error.
pub fn recv_from_broker(events: impl AsFd) -> io::Result<Option<ToWorker>> {
    recv(events)
}

/// The worker's next message; `Ok(None)` when the worker is gone.
pub fn recv_from_worker(events: impl AsFd) -> io::Result<Option<ToBroker>> {
    recv(events)
}

/// The next audit event only (tests and simple readers).
pub fn recv_event(events: impl AsFd) -> io::Result<Option<Event>> {
    match recv_from_broker(events)? {
        None => Ok(None),
        Some(ToWorker::Audit(v)) => Ok(Some(v)),
        Some(_) => Err(invalid("expected an event, got a command")),
    }
}

fn send<T: serde::Serialize>(events: impl AsFd, message: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(message).map_err(io::Error::other)?;
    gatehouse_sys::send_message(events, &bytes, &[])
}

fn recv<T: serde::de::DeserializeOwned>(events: impl AsFd) -> io::Result<Option<T>> {
    let Some(message) = gatehouse_sys::recv_message(events, MAX_EVENT)? else {
        return Ok(None);
    };
    if !message.fds.is_empty() {
        return Err(invalid("an event carries no descriptors"));
    }
    serde_json::from_slice(&message.bytes)
        .map(Some)
        .map_err(|_| invalid("malformed message on the event socket"))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}
