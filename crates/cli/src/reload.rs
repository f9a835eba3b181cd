//! `gatehouse reload`: SIGHUP the running gate named by its pid file.

use std::path::PathBuf;
use std::process::ExitCode;

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
                &format!("cannot read pid file `{}`: {e}", args.pid_file.display()),
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
    match gatehouse_sys::send_reload_signal(pid) {
        Ok(()) => {
            println!("sent SIGHUP to gatehouse (pid {pid}); the audit log records whether the new policy took effect");
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&format!("cannot signal pid {pid}: {e}"), None),
    }
}
