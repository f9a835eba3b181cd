//! A remote port request: one UDP packet, signed with the requester's SSH
//! key, the way single-packet-authorization tools (fwknop) ask a closed
//! host to open a port.
//!
//! # The packet
//!
//! ```text
//! packet    = message signature
//! message   = the request text of [`PortRequest::message`]; every line,
//!             the last included, ends with "\n"
//! signature = "-----BEGIN SSH SIGNATURE-----\n" ... "-----END SSH SIGNATURE-----" ["\n"]
//!             exactly as `ssh-keygen -Y sign -n gatehouse-jit@v1` writes it
//! ```
//!
//! The message ends where the first line reading
//! `-----BEGIN SSH SIGNATURE-----` starts. That is unambiguous: every
//! message line after the header is `key=value` and no value may hold a
//! line break, so no message line can be the armor line. The signed bytes
//! are exactly the message bytes, newline included, so
//! `ssh-keygen -Y verify` on the two halves agrees with us, and a person
//! can read the whole packet. At most [`MAX_PACKET`] bytes.
//!
//! # What the server checks
//!
//! [`verify_packet`]: size, framing, message syntax, signature syntax,
//! namespace, signature, signer (the allowed-signers file), time
//! (±[`MAX_SKEW`]) and source address, in that order. Replay is the
//! caller's: it records (signer, nonce) until `timestamp + MAX_SKEW` and
//! refuses a second sight; past that the timestamp check refuses it.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::signers::AllowedSigners;

mod request;
#[cfg(test)]
mod tests;

pub use request::{PortRequest, MAX_DURATION_SECS, MAX_HOST, MAX_REASON, MAX_TICKET};

/// The SSHSIG namespace: a signature made for anything else (`file`,
/// `git`, ...) can never open a port.
pub const NAMESPACE: &str = "gatehouse-jit@v1";
/// UDP port the daemon listens on (fwknop's).
pub const DEFAULT_PORT: u16 = 62201;
/// The largest packet read; an RSA-4096 request with full reason and
/// ticket is well under half of it.
pub const MAX_PACKET: usize = 8192;
/// How far a request's timestamp may be from the server's clock, either way.
pub const MAX_SKEW: Duration = Duration::from_secs(120);

const BEGIN: &[u8] = b"-----BEGIN SSH SIGNATURE-----";
const END: &[u8] = b"-----END SSH SIGNATURE-----";

/// A request that passed every check of [`verify_packet`] except replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The principal the allowed-signers file names for the key.
    pub signer: String,
    pub request: PortRequest,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub key_fingerprint: String,
}

/// Why a packet was refused or a request could not be signed. Never holds
/// signature or key bytes, only fingerprints.
#[derive(Debug, thiserror::Error)]
pub enum KnockError {
    #[error(
        "packet is {len} bytes, over the {MAX_PACKET}-byte limit; shorten the reason or ticket"
    )]
    TooLarge { len: usize },
    #[error("packet framing: {problem}; send the request message followed by the signature exactly as `ssh-keygen -Y sign` wrote it")]
    Framing { problem: &'static str },
    #[error("request message line {line}: {problem}")]
    Message { line: usize, problem: String },
    #[error("signature does not parse ({reason}); send the armored signature exactly as `ssh-keygen -Y sign` wrote it")]
    SignatureFormat { reason: String },
    #[error("signature is for namespace `{found}`, not `{NAMESPACE}`; sign with `ssh-keygen -Y sign -n {NAMESPACE}`")]
    WrongNamespace { found: String },
    #[error("signature by key {fingerprint} does not verify over the request: the request was altered after signing, or different bytes were signed")]
    BadSignature { fingerprint: String },
    #[error("key {fingerprint} may not sign `{NAMESPACE}` requests now; an operator must list it in the allowed-signers file (check its `namespaces`, `valid-after` and `valid-before`)")]
    UnknownSigner { fingerprint: String },
    #[error("request timestamp {timestamp} is {} s from the server's clock ({now}), over the {} s allowed; fix the client's clock or send a fresh request", timestamp.abs_diff(*now), MAX_SKEW.as_secs())]
    Skew { timestamp: u64, now: u64 },
    #[error("request asks to open the port for {requested} but the packet came from {actual}; name the address you send from (behind NAT: your public address)")]
    SourceMismatch { requested: IpAddr, actual: IpAddr },
    #[error("cannot run `ssh-keygen` ({source}); install openssh-client")]
    SshKeygenMissing { source: std::io::Error },
    #[error("`ssh-keygen -Y sign` failed ({status}): {stderr}; check the key file, its passphrase or the ssh-agent")]
    Sign { status: String, stderr: String },
}

impl KnockError {
    /// A stable snake_case name for audit lines and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            KnockError::TooLarge { .. } => "too_large",
            KnockError::Framing { .. } => "framing",
            KnockError::Message { .. } => "bad_message",
            KnockError::SignatureFormat { .. } => "bad_signature_format",
            KnockError::WrongNamespace { .. } => "wrong_namespace",
            KnockError::BadSignature { .. } => "bad_signature",
            KnockError::UnknownSigner { .. } => "unknown_signer",
            KnockError::Skew { .. } => "clock_skew",
            KnockError::SourceMismatch { .. } => "source_mismatch",
            KnockError::SshKeygenMissing { .. } => "ssh_keygen_missing",
            KnockError::Sign { .. } => "sign_failed",
        }
    }
}

/// The packet for `message` (from [`PortRequest::message`], which ends in a
/// line break) and the armored signature `ssh-keygen -Y sign` wrote for it:
/// the two, concatenated, unchanged.
pub fn encode_packet(message: &str, armored_signature: &str) -> Vec<u8> {
    let mut packet = Vec::with_capacity(message.len().saturating_add(armored_signature.len()));
    packet.extend_from_slice(message.as_bytes());
    packet.extend_from_slice(armored_signature.as_bytes());
    packet
}

/// Checks a packet that came from `packet_source` (see the module docs for
/// the order of checks). Replay is not checked here.
pub fn verify_packet(
    bytes: &[u8],
    packet_source: IpAddr,
    signers: &AllowedSigners,
    now: SystemTime,
) -> Result<Verified, KnockError> {
    if bytes.len() > MAX_PACKET {
        return Err(KnockError::TooLarge { len: bytes.len() });
    }
    let (message, armored) = split(bytes)?;
    let text = std::str::from_utf8(message).map_err(|_| KnockError::Message {
        line: 0,
        problem: "not UTF-8 text".to_owned(),
    })?;
    let request = PortRequest::parse_message(text)?;

    let signature = SshSig::from_pem(armored).map_err(|e| KnockError::SignatureFormat {
        reason: e.to_string(),
    })?;
    if signature.namespace() != NAMESPACE {
        return Err(KnockError::WrongNamespace {
            found: shown(signature.namespace()),
        });
    }
    let key = PublicKey::from(signature.public_key().clone());
    let key_fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    key.verify(NAMESPACE, message, &signature)
        .map_err(|_| KnockError::BadSignature {
            fingerprint: key_fingerprint.clone(),
        })?;
    let signer =
        signers
            .principal_for(&key, NAMESPACE, now)
            .ok_or_else(|| KnockError::UnknownSigner {
                fingerprint: key_fingerprint.clone(),
            })?;

    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if request.timestamp.abs_diff(now_secs) > MAX_SKEW.as_secs() {
        return Err(KnockError::Skew {
            timestamp: request.timestamp,
            now: now_secs,
        });
    }
    let actual = request::canonical(packet_source);
    if request.source != actual {
        return Err(KnockError::SourceMismatch {
            requested: request.source,
            actual,
        });
    }
    Ok(Verified {
        signer,
        request,
        key_fingerprint,
    })
}

/// Splits a packet into the signed message and the armored signature.
fn split(bytes: &[u8]) -> Result<(&[u8], &[u8]), KnockError> {
    let framing = |problem| KnockError::Framing { problem };
    let start = bytes
        .windows(BEGIN.len().saturating_add(1))
        .position(|w| w.first() == Some(&b'\n') && w.get(1..) == Some(BEGIN))
        .ok_or_else(|| {
            if bytes.starts_with(BEGIN) {
                framing("the packet starts with the signature; the request message must come first")
            } else {
                framing("no `-----BEGIN SSH SIGNATURE-----` line after the request message")
            }
        })?;
    let (message, armored) = bytes.split_at(start.saturating_add(1));
    let body = armored.strip_suffix(b"\n").unwrap_or(armored);
    if !body.ends_with(END) {
        return Err(framing(
            "the signature does not end with a `-----END SSH SIGNATURE-----` line",
        ));
    }
    if occurrences(armored, BEGIN) != 1 || occurrences(armored, END) != 1 {
        return Err(framing("more than one signature armor in the packet"));
    }
    Ok((message, armored))
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Bounds and escapes attacker-chosen text before it reaches an error.
fn shown(text: &str) -> String {
    text.chars()
        .take(64)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

/// For the client: signs `message` by running
/// `ssh-keygen -Y sign -n gatehouse-jit@v1 -f KEY_FILE` with the message on
/// stdin, and returns the armored signature it writes. `key_file` is a
/// private key, or a public key whose private half is in the ssh-agent.
/// ssh-keygen does the signing so the private key never passes through us.
pub fn sign_with_ssh_keygen(key_file: &Path, message: &str) -> Result<String, KnockError> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(key_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| KnockError::SshKeygenMissing { source })?;
    // The message is far smaller than a pipe buffer and ssh-keygen reads all
    // of it before writing, so writing first cannot deadlock.
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(message.as_bytes()));
    let output = child.wait_with_output().map_err(|e| KnockError::Sign {
        status: "not waited for".to_owned(),
        stderr: e.to_string(),
    })?;
    let stderr = || shown_lines(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(KnockError::Sign {
            status: output.status.to_string(),
            stderr: stderr(),
        });
    }
    if let Some(Err(e)) = written {
        return Err(KnockError::Sign {
            status: "message not written".to_owned(),
            stderr: e.to_string(),
        });
    }
    let armored = String::from_utf8(output.stdout).map_err(|_| KnockError::Sign {
        status: output.status.to_string(),
        stderr: "ssh-keygen wrote a signature that is not text".to_owned(),
    })?;
    let signature = SshSig::from_pem(&armored).map_err(|e| KnockError::SignatureFormat {
        reason: e.to_string(),
    })?;
    if signature.namespace() != NAMESPACE {
        return Err(KnockError::WrongNamespace {
            found: shown(signature.namespace()),
        });
    }
    Ok(armored)
}

/// ssh-keygen's stderr on one line, bounded (it names files and problems,
/// never key material).
fn shown_lines(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}
