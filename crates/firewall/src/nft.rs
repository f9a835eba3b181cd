//! Running the `nft` program: one batch on stdin per change (one atomic
//! transaction, ~3 ms), `-j list` to read the table back.

use crate::ruleset::{FAMILY, TABLE};
use serde_json::Value;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start `nft`: the program itself, or a wrapper such as
/// `ip netns exec NAME nft` (tests use their own namespace).
#[derive(Debug, Clone)]
pub struct Nft {
    program: OsString,
    prefix: Vec<OsString>,
}

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`nft {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("`nft {args}` did not finish within {secs} s")]
    Timeout { args: String, secs: u64 },
    #[error("`nft -j list` printed something that is not JSON: {0}")]
    NotJson(String),
}

/// Generous: one `nft` run takes milliseconds.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Nft {
    /// `nft` from `PATH`.
    pub fn system() -> Nft {
        Nft {
            program: "nft".into(),
            prefix: Vec::new(),
        }
    }

    /// `nft` inside the named network namespace (`ip netns exec NAME nft`).
    pub fn in_netns(name: &str) -> Nft {
        Nft {
            program: "ip".into(),
            prefix: vec!["netns".into(), "exec".into(), name.into(), "nft".into()],
        }
    }

    /// A command that runs `nft` with `args`.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix)
            .args(args.into_iter().map(Into::into));
        cmd
    }

    /// Run `nft -f -` with `batch` on stdin: one transaction, all or nothing.
    pub fn run_batch(&self, batch: &str) -> Result<(), NftError> {
        self.run(&["-f", "-"], Some(batch)).map(|_| ())
    }

    /// `nft -j list table inet gatehouse`, parsed; `None` when the table does
    /// not exist.
    pub fn list_table(&self) -> Result<Option<Value>, NftError> {
        match self.run(&["-j", "list", "table", FAMILY, TABLE], None) {
            Ok(out) => serde_json::from_str(&out)
                .map(Some)
                .map_err(|e| NftError::NotJson(e.to_string())),
            Err(NftError::Failed { stderr, .. })
                if stderr.contains("No such file or directory") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
        let shown = args.join(" ");
        let mut child = self
            .command(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NftError::Spawn {
                program: self.program.to_string_lossy().into_owned(),
                source,
            })?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A write error shows up as nft's own failure below.
            let _ = pipe.write_all(text.as_bytes());
        }
        // Read both pipes on threads so a large listing cannot fill a pipe
        // while we wait for the exit.
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let status = wait_bounded(&mut child, TIMEOUT);
        let stdout = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        match status {
            Some(s) if s.success() => Ok(stdout),
            Some(_) => Err(NftError::Failed {
                args: shown,
                stderr: stderr.trim().to_owned(),
            }),
            None => Err(NftError::Timeout {
                args: shown,
                secs: TIMEOUT.as_secs(),
            }),
        }
    }
}

fn drain<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// Wait for `child` at most `limit`; kill it (our own child) past that.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                if let Err(e) = child.kill().and_then(|()| child.wait().map(drop)) {
                    eprintln!("gatehouse: cannot stop `nft` (pid {}): {e}", child.id());
                }
                return None;
            }
        }
    }
}
