//! The gate's checkpoint key: created once in the state directory (0600),
//! refused when anyone but its owner could read or change it; signs
//! [`Checkpoint`]s, and its public half verifies them off the machine.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rustix::fs::{Mode, OFlags};
use sha2::{Digest, Sha256};

use crate::event::{statement, Checkpoint};

/// First word of a key file; the rest of the line is the hex seed.
const KEY_FILE_TAG: &str = "gatehouse-audit-key-v1 ed25519 ";
/// How a public key is written: `ed25519:<64 hex>`.
const PUBLIC_TAG: &str = "ed25519:";
/// Longest key file read (a key file is ~96 bytes).
const MAX_KEY_FILE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("checkpoint key `{}`: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint key `{}` has mode {mode:04o}: group or others could read it; fix it with `chmod 0600`", path.display())]
    Mode { path: PathBuf, mode: u32 },
    #[error("checkpoint key `{}` belongs to uid {owner}, not to uid {expected} which signs with it; fix it with `chown {expected}`", path.display())]
    Owner {
        path: PathBuf,
        owner: u32,
        expected: u32,
    },
    #[error("checkpoint key `{}` is not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("checkpoint key `{}` is not a gatehouse audit key (`{KEY_FILE_TAG}<64 hex>`); move it away to have a new one made", path.display())]
    Format { path: PathBuf },
    #[error("cannot make a checkpoint key: the system's random source failed: {0}")]
    Random(String),
}

/// The signing half. Its `Debug` shows the fingerprint only.
pub struct CheckpointKey {
    signing: SigningKey,
    public: PublicKey,
}

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("key_id", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

impl CheckpointKey {
    /// Loads the key at `path`, or creates it (mode 0600, its directory
    /// 0700 if missing) when there is none. Refused unless it is a regular
    /// file of this process's effective uid with no group or other bits.
    pub fn load_or_create(path: &Path) -> Result<(CheckpointKey, bool), KeyError> {
        match CheckpointKey::load(path) {
            Ok(key) => Ok((key, false)),
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                CheckpointKey::create(path).map(|key| (key, true))
            }
            Err(e) => Err(e),
        }
    }

    /// Loads an existing key (`gatehouse audit key`); never creates one.
    pub fn load(path: &Path) -> Result<CheckpointKey, KeyError> {
        let io = |op| {
            move |source| KeyError::Io {
                path: path.to_path_buf(),
                op,
                source,
            }
        };
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open")(std::io::Error::from(e)))?;
        let mut file = std::fs::File::from(fd);
        let meta = file.metadata().map_err(io("stat"))?;
        if !meta.file_type().is_file() {
            return Err(KeyError::NotRegular {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Mode {
                path: path.to_path_buf(),
                mode,
            });
        }
        let expected = rustix::process::geteuid().as_raw();
        if meta.uid() != expected {
            return Err(KeyError::Owner {
                path: path.to_path_buf(),
                owner: meta.uid(),
                expected,
            });
        }
        let mut text = String::new();
        (&mut file)
            .take(MAX_KEY_FILE)
            .read_to_string(&mut text)
            .map_err(io("read"))?;
        let format = || KeyError::Format {
            path: path.to_path_buf(),
        };
        let seed = text
            .strip_prefix(KEY_FILE_TAG)
            .and_then(|rest| rest.strip_suffix('\n'))
            .and_then(|hex_seed| hex::decode(hex_seed).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(format)?;
        Ok(CheckpointKey::from_seed(&seed))
    }

    fn create(path: &Path) -> Result<CheckpointKey, KeyError> {
        let io = |op| {
            move |source| KeyError::Io {
                path: path.to_path_buf(),
                op,
                source,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io("create the directory of"))?;
            }
        }
        let mut seed = [0u8; 32];
        rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut seed)
            .map_err(|e| KeyError::Random(e.to_string()))?;
        let key = CheckpointKey::from_seed(&seed);
        // Written aside and linked into place: a gate starting at the same
        // moment finds either no key or a whole one, never a partial file.
        let aside = {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".new-{}", std::process::id()));
            PathBuf::from(name)
        };
        let fd = rustix::fs::open(
            &aside,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io("create")(std::io::Error::from(e)))?;
        let mut file = std::fs::File::from(fd);
        let line = format!("{KEY_FILE_TAG}{}\n", hex::encode(seed));
        seed.fill(0);
        let written = file
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io("write"));
        let linked = written.and_then(|()| std::fs::hard_link(&aside, path).map_err(io("create")));
        let _ = std::fs::remove_file(&aside);
        match linked {
            Ok(()) => Ok(key),
            // Another gate made it first: use that one.
            Err(KeyError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                CheckpointKey::load(path)
            }
            Err(e) => Err(e),
        }
    }

    /// A key from its 32-byte seed (tests, and the file's contents).
    pub fn from_seed(seed: &[u8; 32]) -> CheckpointKey {
        let signing = SigningKey::from_bytes(seed);
        let public = PublicKey(signing.verifying_key());
        CheckpointKey { signing, public }
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// A checkpoint of the head `(head_seq, head_hash)`, signed now.
    pub fn sign(
        &self,
        head_seq: u64,
        head_hash: &str,
        signed_at: &str,
        rotated_kept: Option<u64>,
    ) -> Checkpoint {
        let key_id = self.public.key_id();
        let message = statement(head_seq, head_hash, signed_at, rotated_kept, &key_id);
        let signature = self.signing.sign(&message);
        Checkpoint {
            head_seq,
            head_hash: head_hash.to_owned(),
            signed_at: signed_at.to_owned(),
            rotated_kept,
            key_id,
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// The public half: `ed25519:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_TAG}{}", hex::encode(self.0.as_bytes()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyError {
    #[error("`{0}` is not a checkpoint public key (`ed25519:<64 hex>`, as `gatehouse audit key` prints it)")]
    Syntax(String),
    #[error("the key `{key}` has fingerprint `{actual}`, not `{claimed}` as written beside it")]
    Fingerprint {
        key: String,
        claimed: String,
        actual: String,
    },
}

impl PublicKey {
    /// Parses `ed25519:<hex> [fingerprint]`, the line `gatehouse audit key`
    /// prints; a fingerprint beside the key must be the key's.
    pub fn parse(text: &str) -> Result<PublicKey, PublicKeyError> {
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or_default();
        let syntax = || PublicKeyError::Syntax(first.chars().take(80).collect());
        let bytes = first
            .strip_prefix(PUBLIC_TAG)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(syntax)?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| syntax())?;
        if let Some(claimed) = words.next() {
            if claimed != key.key_id() {
                return Err(PublicKeyError::Fingerprint {
                    key: first.to_owned(),
                    claimed: claimed.to_owned(),
                    actual: key.key_id(),
                });
            }
        }
        Ok(key)
    }

    /// The fingerprint a checkpoint names its key by:
    /// `SHA256:` and the first 32 hex digits of SHA-256 of the 32 key bytes.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        let hex = hex::encode(digest);
        format!("SHA256:{}", hex.get(..32).unwrap_or(&hex))
    }

    /// Whether `checkpoint` is signed by this key (strict Ed25519: no
    /// malleable or small-order signatures).
    pub fn verifies(&self, checkpoint: &Checkpoint) -> bool {
        let Some(bytes) = hex::decode(&checkpoint.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        let signature = Signature::from_bytes(&bytes);
        checkpoint.key_id == self.key_id()
            && self
                .0
                .verify_strict(&checkpoint.signed_bytes(), &signature)
                .is_ok()
    }
}
