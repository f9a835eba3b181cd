//! How much a TCP socket has sent that its peer has not acknowledged yet
//! (`SIOCOUTQ`). The audit export advances its cursor only when this is
//! zero: then the collector's kernel holds every byte, so a connection
//! reset cannot have swallowed a record the cursor already passed.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Bytes written to `socket` (a connected TCP socket) and not yet
/// acknowledged by the peer: sent or still queued.
#[allow(unsafe_code, reason = "ioctl(SIOCOUTQ) has no safe wrapper in rustix")]
pub fn unacked_bytes(socket: impl AsFd) -> io::Result<u32> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (== TIOCOUTQ on Linux) writes one `int` through the
    // pointer, which points at a live local of that type; the descriptor is
    // borrowed for the duration of the call.
    let rc = unsafe {
        libc::ioctl(
            socket.as_fd().as_raw_fd(),
            libc::TIOCOUTQ,
            &mut queued as *mut libc::c_int,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    u32::try_from(queued).map_err(|_| io::Error::other("negative send queue"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn counts_bytes_until_the_peer_acknowledges_them() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert_eq!(unacked_bytes(&client).unwrap(), 0);
        client.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).unwrap();
        // Loopback acknowledges at once; allow the stack a moment.
        for _ in 0..100 {
            if unacked_bytes(&client).unwrap() == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("bytes the peer read were never acknowledged");
    }

    #[test]
    fn a_non_socket_is_an_error() {
        let file = tempfile::tempfile().unwrap();
        assert!(unacked_bytes(&file).is_err());
    }
}
