//! `gatehouse check`: parse a policy and report every error at once.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The policy file to check.
    #[arg(long, default_value = "/etc/gatehouse/policy.toml")]
    policy: PathBuf,
}

pub fn main(args: Args) -> ExitCode {
    let text = match std::fs::read_to_string(&args.policy) {
        Ok(t) => t,
        Err(e) => {
            return crate::fail(
                &format!("cannot read `{}`: {e}", args.policy.display()),
                None,
            )
        }
    };
    match gatehouse_policy::parse(&args.policy.display().to_string(), &text) {
        Ok(p) => {
            println!(
                "{}: ok (sha256 {})",
                args.policy.display(),
                p.hash().get(..16).unwrap_or("")
            );
            ExitCode::SUCCESS
        }
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            ExitCode::from(2)
        }
    }
}
