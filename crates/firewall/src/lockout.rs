//! The check `gatehouse firewall apply` makes before it closes just-in-time
//! ports: would the operator running it over SSH lose the way back in?
//!
//! An established session survives the apply (conntrack), so the danger is
//! the *next* login: after a disconnect the port is closed to the operator
//! unless their address is in a break-glass range or has an open element.

use crate::jit::{Element, Protocol};
use crate::ruleset::Options;
use std::net::IpAddr;

#[cfg(test)]
mod tests;

/// `Some(message)` when applying `opts` would keep the SSH client of this
/// session (`$SSH_CONNECTION`: "client_ip client_port server_ip server_port")
/// from connecting again: the session's server port is a protected TCP port
/// and the client's address is neither in `[jit] break_glass` nor opened by an
/// element of `current`. The message says how to proceed.
///
/// `None` without just-in-time ports, outside SSH (`ssh_connection` `None`
/// or empty), or when the client can come back. A value that is not an
/// `$SSH_CONNECTION` is reported: the check cannot vouch for the session.
pub fn would_lock_out(
    opts: &Options,
    ssh_connection: Option<&str>,
    current: &[Element],
) -> Option<String> {
    let jit = opts.jit.as_ref()?;
    let conn = ssh_connection.map(str::trim).filter(|s| !s.is_empty())?;
    let Some((client, server_port)) = parse(conn) else {
        return Some(format!(
            "cannot tell whether closing the just-in-time ports locks this session out: \
             `$SSH_CONNECTION` is `{conn}`, expected `CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT`; \
             pass `--allow-lockout` if you can get back in another way"
        ));
    };
    if !jit.ports.contains(&(Protocol::Tcp, server_port)) {
        return None;
    }
    if jit.break_glass.iter().any(|net| net.contains(&client)) {
        return None;
    }
    let opened = current.iter().any(|e| {
        e.source.to_canonical() == client && e.proto == Protocol::Tcp && e.port == server_port
    });
    if opened {
        return None;
    }
    Some(format!(
        "this SSH session comes from `{client}` to port {server_port}, which the just-in-time \
         rules close: the session itself survives, but once it ends you cannot connect again. \
         Add a range holding `{client}` to `[jit] break_glass`, or open port {server_port} for \
         yourself first (request just-in-time access from `{client}`), or pass `--allow-lockout` \
         if you can get back in another way"
    ))
}

/// The client's address and the server's port; `None` unless all four
/// fields are there and well formed.
fn parse(conn: &str) -> Option<(IpAddr, u16)> {
    let mut fields = conn.split_whitespace();
    let (client, client_port, _server, server_port) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if fields.next().is_some() {
        return None;
    }
    // A link-local client carries its zone: `fe80::1%eth0`.
    let client = client.split('%').next()?;
    let client: IpAddr = client.parse().ok()?;
    client_port.parse::<u16>().ok()?;
    let server_port = server_port.parse::<u16>().ok()?;
    Some((client.to_canonical(), server_port))
}
