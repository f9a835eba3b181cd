//! `gatehouse reload`: ask the running gate named by its pid file to reload
//! its policy, wait for the outcome and say it. The request goes to the
//! gate's control socket beside the pid file (`gatehouse.pid` →
//! `gatehouse.sock`, root's, mode 0600); SIGHUP does the same reload without
//! an answer.
//!
//! Exit status: 0 the new policy is in force; 1 it was refused and the last
//! good one stays in force (the reason is printed); 2 no gate answered.

use gatehouse_gate::lifecycle::{ControlReply, ControlRequest, ReloadOutcome, MAX_CONTROL_MESSAGE};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The gate answers within its own 10 s limit for the worker's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(clap::Args)]
pub struct Args {
    /// The pid file the gate wrote (`gatehouse run --pid-file`).
    #[arg(long, default_value = "/run/gatehouse/gatehouse.pid")]
    pid_file: PathBuf,
}

pub fn main(args: Args) -> ExitCode {
    let text = match std::fs::read_to_string(&args.pid_file) {
        Ok(t) => t,
        Err(e) => {
            return crate::fail(
                &format!(
                    "no gate answers: cannot read pid file `{}`: {e}",
                    args.pid_file.display()
                ),
                Some("is the gate running, and with this `--pid-file`?"),
            )
        }
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return crate::fail(
            &format!("pid file `{}` does not hold a pid", args.pid_file.display()),
            None,
        );
    };
    if !gatehouse_sys::is_live_gatehouse(pid) {
        return crate::fail(
            &format!(
                "no gate answers: the pid file `{}` names pid {pid}, which is not a running gatehouse (a stale pid file)",
                args.pid_file.display()
            ),
            Some("start the gate (`systemctl start gatehouse`)"),
        );
    }
    let socket = crate::run::lifecycle::control_path(&args.pid_file);
    match ask(&socket) {
        Ok(ReloadOutcome::Loaded { policy }) => {
            println!(
                "gatehouse (pid {pid}): {}",
                ReloadOutcome::Loaded { policy }.describe()
            );
            ExitCode::SUCCESS
        }
        Ok(outcome @ ReloadOutcome::Kept { .. }) => {
            if let ReloadOutcome::Kept { details, .. } = &outcome {
                eprintln!("{details}");
            }
            eprintln!("gatehouse: error: {}", outcome.describe());
            eprintln!("  help: fix the policy (`gatehouse check`) and reload again");
            ExitCode::from(1)
        }
        Ok(outcome @ ReloadOutcome::Unanswered { .. }) => crate::fail(&outcome.describe(), None),
        Err(e) => crate::fail(
            &format!("no gate answers on `{}` (pid {pid}): {e}", socket.display()),
            Some("a gate started with this `--pid-file` listens there; run as root"),
        ),
    }
}

fn ask(socket: &std::path::Path) -> std::io::Result<ReloadOutcome> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let mut request = serde_json::to_vec(&ControlRequest::Reload).map_err(std::io::Error::other)?;
    request.push(b'\n');
    stream.write_all(&request)?;
    let limit = u64::try_from(MAX_CONTROL_MESSAGE).unwrap_or(u64::MAX);
    let mut line = String::new();
    let n = BufReader::new(stream.take(limit)).read_line(&mut line)?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the gate closed the connection without an answer",
        ));
    }
    let reply: ControlReply = serde_json::from_str(line.trim()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed answer: {e}"),
        )
    })?;
    Ok(reply.reload)
}
