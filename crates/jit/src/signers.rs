//! The OpenSSH allowed-signers file (`man ssh-keygen`, ALLOWED SIGNERS):
//! which SSH key may sign a port request, as which principal, for which
//! signature namespaces and when.
//!
//! We read the same file `ssh-keygen -Y verify -f FILE` reads, so operators
//! keep one list and can check a request by hand. Where OpenSSH would need
//! something we deliberately do not do, the line is an error rather than
//! silently read differently:
//!
//! - `cert-authority`: we check plain keys only, never certificates.
//! - times without `Z`: OpenSSH reads them in the machine's local time zone;
//!   a daemon guessing the zone could open a window hours early, so we
//!   insist on UTC.
//! - negated patterns (`!name`): a deny inside an allow list is easy to get
//!   wrong; list who may sign instead.
//!
//! Grammar, one entry per line (blank lines and `#` lines are skipped):
//!
//! ```text
//! line       = principals [options] keytype base64-key [comment]
//! principals = pattern *("," pattern)          ; `*` and `?` are wildcards
//! options    = option *("," option)            ; no spaces outside quotes
//! option     = "namespaces=" quoted-pattern-list
//!            | "valid-after=" time | "valid-before=" time
//! time       = ["\""] YYYYMMDD[HHMM[SS]] "Z" ["\""]
//! ```

use std::fmt;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ssh_key::{HashAlg, PublicKey};

mod time;

#[cfg(test)]
mod tests;

/// An allowed-signers file is a short list of people; anything larger is a
/// mistake (the wrong file), not something to read into memory.
const MAX_FILE: u64 = 4 << 20;

/// A parsed allowed-signers file: its entries in file order.
#[derive(Clone, Default)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    line: usize,
    principals: Vec<String>,
    /// `None`: no `namespaces=` option, so every namespace applies (as in OpenSSH).
    namespaces: Option<Vec<String>>,
    valid_after: Option<u64>,
    valid_before: Option<u64>,
    key: PublicKey,
}

/// One problem on one line of an allowed-signers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong (lowercase, user input in backticks).
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl fmt::Display for SignerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {} (help: {})",
            self.line, self.message, self.help
        )
    }
}

impl std::error::Error for SignerError {}

/// Why an allowed-signers file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read allowed-signers file `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("allowed-signers file `{}` is not a regular file; point to the file itself", path.display())]
    NotAFile { path: PathBuf },
    #[error(
        "allowed-signers file `{}` is larger than {MAX_FILE} bytes; check that this is the right file",
        path.display()
    )]
    TooLarge { path: PathBuf },
    #[error(
        "allowed-signers file `{}` has mode {mode:04o}, writable by group or others, so anyone in them could \
         add a key; run `chmod go-w {}`",
        path.display(), path.display()
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error(
        "allowed-signers file `{}` is owned by uid {uid}, not root or this process (uid {euid}), so its owner \
         could add a key; run `chown root {}`",
        path.display(), path.display()
    )]
    Owner { path: PathBuf, uid: u32, euid: u32 },
    #[error("allowed-signers file `{}` is not UTF-8 text; rewrite it as plain text", path.display())]
    NotText { path: PathBuf },
    #[error("allowed-signers file `{}` has {} error(s):\n{}", path.display(), errors.len(), list(errors))]
    Parse {
        path: PathBuf,
        errors: Vec<SignerError>,
    },
}

fn list(errors: &[SignerError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl AllowedSigners {
    /// Parses the whole text and reports every bad line at once, so an
    /// operator fixes the file in one pass.
    pub fn parse(text: &str) -> Result<AllowedSigners, Vec<SignerError>> {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index.saturating_add(1);
            match parse_line(line, raw) {
                Ok(Some(entry)) => entries.push(entry),
                Ok(None) => {}
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(AllowedSigners { entries })
        } else {
            Err(errors)
        }
    }

    /// Reads and parses `path`, refusing a file someone other than root or
    /// us could change: whoever can write it can open ports.
    ///
    /// Ownership and mode are checked on the opened file (not the path), so
    /// the file checked is the file read.
    pub fn load(path: &Path) -> Result<AllowedSigners, LoadError> {
        let io = |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(LoadError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let euid = rustix::process::geteuid().as_raw();
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(LoadError::Owner {
                path: path.to_path_buf(),
                uid: meta.uid(),
                euid,
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(LoadError::Writable {
                path: path.to_path_buf(),
                mode: meta.mode() & 0o7777,
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE {
            return Err(LoadError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| LoadError::NotText {
            path: path.to_path_buf(),
        })?;
        AllowedSigners::parse(&text).map_err(|errors| LoadError::Parse {
            path: path.to_path_buf(),
            errors,
        })
    }

    /// Which principal does this key sign as? The first principal named on
    /// the first line whose key equals `key` and that applies to
    /// `namespace` at `now`.
    ///
    /// A wildcard pattern cannot name a requester (`*@example.com` says who
    /// may sign, not who did), so a line with only wildcard principals
    /// gives no name and the search goes on to later lines; `None` if no
    /// line names one.
    pub fn principal_for(
        &self,
        key: &PublicKey,
        namespace: &str,
        now: SystemTime,
    ) -> Option<String> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.entries
            .iter()
            .filter(|e| e.key.key_data() == key.key_data())
            .filter(|e| e.applies(namespace, now))
            .find_map(|e| e.principals.iter().find(|p| !is_wildcard(p)).cloned())
    }

    /// How many entries (key lines) the file has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Public keys are not secret, but a key's fingerprint is all anyone reading
/// a log needs.
impl fmt::Debug for AllowedSigners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.entries).finish()
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("line", &self.line)
            .field("principals", &self.principals)
            .field("namespaces", &self.namespaces)
            .field("valid_after", &self.valid_after)
            .field("valid_before", &self.valid_before)
            .field("key", &self.key.fingerprint(HashAlg::Sha256).to_string())
            .finish()
    }
}

impl Entry {
    /// OpenSSH semantics: both bounds inclusive; no `namespaces=` means all.
    fn applies(&self, namespace: &str, now: u64) -> bool {
        let in_namespace = self
            .namespaces
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| glob(p, namespace)));
        in_namespace
            && self.valid_after.is_none_or(|after| now >= after)
            && self.valid_before.is_none_or(|before| now <= before)
    }
}

fn is_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// OpenSSH `match_pattern`: `*` matches any run of characters, `?` exactly
/// one; case-sensitive. The policy's matching loop (one backtrack point,
/// never recursive) over characters.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    gatehouse_policy::glob(&p, &t, |c| *c == '*', |pc, tc| *pc == '?' || pc == tc)
}

fn err(line: usize, message: impl Into<String>, help: impl Into<String>) -> SignerError {
    SignerError {
        line,
        message: message.into(),
        help: help.into(),
    }
}

/// Bounds how much of a user's token is echoed back in an error.
fn shown(token: &str) -> String {
    let mut s: String = token.chars().take(60).collect();
    if s.len() < token.len() {
        s.push('…');
    }
    s.escape_debug().to_string()
}

/// `line = principals [options] keytype base64-key [comment]`; `Ok(None)` for
/// blank and comment lines. Returns every problem on the line.
fn parse_line(line: usize, raw: &str) -> Result<Option<Entry>, Vec<SignerError>> {
    let rest = raw.trim_start_matches([' ', '\t']);
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }
    let mut errors = Vec::new();
    let (principals_token, rest) = token(rest);
    let principals = principals(line, principals_token)
        .map_err(|e| errors.push(e))
        .ok();

    let (next, mut rest) = token(rest);
    let mut options = Options::default();
    let key_type = if next.is_empty() || looks_like_key_type(next) {
        next
    } else {
        match parse_options(line, next) {
            Ok(o) => options = o,
            Err(mut e) => errors.append(&mut e),
        }
        let (key_type, after) = token(rest);
        rest = after;
        key_type
    };
    let (base64, _comment) = token(rest);
    let key = key(line, key_type, base64).map_err(|e| errors.push(e)).ok();

    match (principals, key) {
        (Some(principals), Some(key)) if errors.is_empty() => Ok(Some(Entry {
            line,
            principals,
            namespaces: options.namespaces,
            valid_after: options.valid_after,
            valid_before: options.valid_before,
            key,
        })),
        _ => Err(errors),
    }
}

/// The next field: up to the first space or tab outside double quotes.
/// Returns the field and what follows it, leading blanks removed.
fn token(s: &str) -> (&str, &str) {
    let mut quoted = false;
    let end = s
        .char_indices()
        .find(|&(_, c)| {
            if c == '"' {
                quoted = !quoted;
            }
            !quoted && (c == ' ' || c == '\t')
        })
        .map_or(s.len(), |(i, _)| i);
    let (field, rest) = s.split_at(end);
    (field, rest.trim_start_matches([' ', '\t']))
}

fn looks_like_key_type(token: &str) -> bool {
    !token.contains(['=', '"', ','])
        && (ssh_key::Algorithm::new(token).is_ok()
            || ["ssh-", "ecdsa-", "sk-", "rsa-"]
                .iter()
                .any(|p| token.starts_with(p)))
}

/// `principals = pattern *("," pattern)`
fn principals(line: usize, token: &str) -> Result<Vec<String>, SignerError> {
    if token.contains('"') {
        return Err(err(
            line,
            format!("quoted principals `{}` are not supported", shown(token)),
            "write the principals unquoted, comma-separated, with no spaces",
        ));
    }
    let list: Vec<String> = token.split(',').map(str::to_owned).collect();
    if list.iter().any(String::is_empty) {
        return Err(err(
            line,
            format!("empty principal in `{}`", shown(token)),
            "remove the extra comma: principals are `name[,name...]`",
        ));
    }
    if let Some(p) = list.iter().find(|p| p.starts_with('!')) {
        return Err(err(
            line,
            format!("negated principal `{}` is not supported", shown(p)),
            "list the principals who may sign instead of excluding some",
        ));
    }
    Ok(list)
}

#[derive(Default)]
struct Options {
    namespaces: Option<Vec<String>>,
    valid_after: Option<u64>,
    valid_before: Option<u64>,
}

/// `options = option *("," option)`
fn parse_options(line: usize, token: &str) -> Result<Options, Vec<SignerError>> {
    let mut options = Options::default();
    let mut errors = Vec::new();
    for option in split_unquoted(token, ',') {
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(v)),
            None => (option.to_ascii_lowercase(), None),
        };
        let result = match (name.as_str(), value) {
            ("cert-authority", None) => Err(err(
                line,
                "`cert-authority` is not supported",
                "gatehouse accepts plain keys only, not certificates: list each user's own public key",
            )),
            ("namespaces", Some(v)) => namespaces(line, v).map(|n| set(&mut options.namespaces, n, line, &name)),
            ("valid-after", Some(v)) => {
                time::parse(line, &name, v).map(|t| set(&mut options.valid_after, t, line, &name))
            }
            ("valid-before", Some(v)) => {
                time::parse(line, &name, v).map(|t| set(&mut options.valid_before, t, line, &name))
            }
            ("namespaces" | "valid-after" | "valid-before", None) => Err(err(
                line,
                format!("option `{name}` needs a value"),
                format!("write `{name}=VALUE`"),
            )),
            _ => Err(err(
                line,
                format!("unknown option `{}`", shown(option)),
                "supported options are `namespaces=\"...\"`, `valid-after=...Z` and `valid-before=...Z`; \
                 if this was meant as the key type, check its spelling",
            )),
        };
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => errors.push(e),
        }
    }
    if let (Some(after), Some(before)) = (options.valid_after, options.valid_before) {
        if after > before {
            errors.push(err(
                line,
                "`valid-after` is later than `valid-before`, so the key is never valid",
                "swap or correct the two times",
            ));
        }
    }
    if errors.is_empty() {
        Ok(options)
    } else {
        Err(errors)
    }
}

fn set<T>(slot: &mut Option<T>, value: T, line: usize, name: &str) -> Result<(), SignerError> {
    if slot.is_some() {
        return Err(err(
            line,
            format!("option `{name}` is given twice"),
            "keep one",
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// Splits on `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(s.get(start..i).unwrap_or(""));
            start = i + c.len_utf8();
        }
    }
    parts.push(s.get(start..).unwrap_or(""));
    parts
}

/// `namespaces="pattern[,pattern...]"`
fn namespaces(line: usize, value: &str) -> Result<Vec<String>, SignerError> {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| !v.contains('"'));
    let Some(inner) = inner else {
        return Err(err(
            line,
            format!("`namespaces={}` is not quoted", shown(value)),
            "write `namespaces=\"gatehouse-jit@v1\"` (several: `namespaces=\"a,b\"`)",
        ));
    };
    let list: Vec<String> = inner.split(',').map(str::to_owned).collect();
    if list.iter().any(|n| n.is_empty() || n.starts_with('!')) {
        return Err(err(
            line,
            format!("`namespaces=\"{}\"` has an empty or negated name", shown(inner)),
            "list the namespaces this key may sign for, comma-separated, e.g. `namespaces=\"gatehouse-jit@v1\"`",
        ));
    }
    Ok(list)
}

fn key(line: usize, key_type: &str, base64: &str) -> Result<PublicKey, SignerError> {
    const HELP: &str =
        "copy the key type and key from the user's `.pub` file, e.g. `ssh-ed25519 AAAA...`";
    if key_type.is_empty() {
        return Err(err(line, "missing key type and key", HELP));
    }
    if key_type.contains("-cert-") {
        return Err(err(
            line,
            format!(
                "certificate key type `{}` is not supported",
                shown(key_type)
            ),
            "list the user's plain public key, not a certificate",
        ));
    }
    if base64.is_empty() {
        return Err(err(
            line,
            format!("missing the base64 key after `{}`", shown(key_type)),
            HELP,
        ));
    }
    PublicKey::from_openssh(&format!("{key_type} {base64}")).map_err(|e| {
        err(
            line,
            format!("the `{}` key does not parse ({e})", shown(key_type)),
            HELP,
        )
    })
}
