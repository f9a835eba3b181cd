//! `gatehouse generate man|completions DIR` (hidden): the man pages and
//! shell completions, generated from the clap definitions themselves (and
//! `gatehouse-policy(5)` from docs/policy.md), so they cannot drift from
//! `--help`. The Debian package and the tests use these files.

use clap::{CommandFactory, Parser};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `gatehouse generate`, parsed on its own (see `main`).
#[derive(Parser)]
#[command(
    name = "gatehouse generate",
    about = "Write gatehouse's man pages or shell completions into a directory (for packaging)"
)]
pub struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
pub enum What {
    /// gatehouse(1), gatehouse-SUBCOMMAND(1) for every subcommand, and
    /// gatehouse-policy(5).
    Man {
        /// Directory to write the pages into (created if missing).
        dir: PathBuf,
    },
    /// Completions for bash (`gatehouse`), zsh (`_gatehouse`) and fish
    /// (`gatehouse.fish`).
    Completions {
        /// Directory to write the scripts into (created if missing).
        dir: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
enum GenerateError {
    #[error("cannot write into `{}`: {source}", dir.display())]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
}

pub fn main(cli: Cli) -> ExitCode {
    let result = match &cli.what {
        What::Man { dir } => man_pages(dir),
        What::Completions { dir } => completions(dir),
    };
    match result {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e.to_string(), Some("name a directory you may write to")),
    }
}

/// The command tree as the pages and completions see it (`help` not
/// listed as a subcommand).
fn command() -> clap::Command {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn man_pages(dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    let err = |source| GenerateError::Write {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut written = Vec::new();
    let mut pending = vec![command()];
    while let Some(cmd) = pending.pop() {
        pending.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        let man = clap_mangen::Man::new(cmd.clone()).manual("gatehouse manual");
        let path = dir.join(man.get_filename());
        let mut page = Vec::new();
        man.render(&mut page).map_err(err)?;
        page.extend_from_slice(see_also(&cmd).as_bytes());
        std::fs::write(&path, page).map_err(err)?;
        written.push(path);
    }
    let path = dir.join("gatehouse-policy.5");
    std::fs::write(&path, crate::policy_man::page(env!("CARGO_PKG_VERSION"))).map_err(err)?;
    written.push(path);
    written.sort();
    Ok(written)
}

/// A SEE ALSO section: the parent and children of this page, the policy
/// file's page, and nft(8) for the firewall.
fn see_also(cmd: &clap::Command) -> String {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let mut refs: Vec<String> = Vec::new();
    if let Some((parent, _)) = name.rsplit_once('-') {
        refs.push(format!("{parent}(1)"));
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        refs.push(format!(
            "{}(1)",
            sub.get_display_name().unwrap_or(sub.get_name())
        ));
    }
    refs.push("gatehouse-policy(5)".into());
    if name.starts_with("gatehouse-firewall") || name == "gatehouse" {
        refs.push("nft(8)".into());
    }
    let items: Vec<String> = refs
        .iter()
        .filter_map(|r| {
            let (page, section) = r.split_once('(')?;
            Some(format!("\\fB{}\\fR({}", page.replace('-', "\\-"), section))
        })
        .collect();
    format!(".SH \"SEE ALSO\"\n{}\n", items.join(",\n"))
}

fn completions(dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    use clap_complete::Shell;
    let err = |source| GenerateError::Write {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut written = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "gatehouse"),
        (Shell::Zsh, "_gatehouse"),
        (Shell::Fish, "gatehouse.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command(), "gatehouse", &mut script);
        let path = dir.join(file);
        let mut f = std::fs::File::create(&path).map_err(err)?;
        f.write_all(&script).map_err(err)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
