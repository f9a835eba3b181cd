//! `gatehouse emulate`: the IMDS emulator on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Emulator config (identities, instance document). Default: the built-in demo VM.
    #[arg(long)]
    config: Option<PathBuf>,

    /// Address to serve IMDS on. Inside a network namespace of your own this
    /// may be 169.254.169.254:80; never on a real VM.
    #[arg(long, default_value = "127.0.0.1:16980")]
    listen: SocketAddr,

    /// Control endpoint (stats, faults, JWKS) on a separate address.
    #[arg(long)]
    control: Option<SocketAddr>,

    /// Turn off IMDS's rate limits (identity: 20 req/s, 5 concurrent; others 5 req/s).
    #[arg(long)]
    no_rate_limits: bool,

    /// Sign tokens with this PEM key instead of one made at start.
    #[arg(long)]
    key_file: Option<PathBuf>,

    /// Write a fresh signing key (PKCS#8 PEM, mode 0600) to this file and exit.
    #[arg(long, value_name = "PATH")]
    write_key: Option<PathBuf>,

    /// Faults at start, as JSON (the same shape `PUT /faults` takes on the control port).
    #[arg(long)]
    faults: Option<String>,

    /// Which metadata service to be: `azure` (IMDS), `aws` (EC2 IMDSv2:
    /// session tokens, 401 without one, role credentials, user data) or
    /// `gcp` (Compute Engine: 403 without `Metadata-Flavor: Google`,
    /// service-account access and ID tokens, attributes).
    #[arg(long, default_value = "azure", value_name = "azure|aws|gcp")]
    cloud: gatehouse_policy::Cloud,
}

/// The emulator's dialect for `--cloud`.
pub(crate) fn dialect_of(cloud: gatehouse_policy::Cloud) -> gatehouse_emulator::Dialect {
    match cloud {
        gatehouse_policy::Cloud::Azure => gatehouse_emulator::Dialect::Azure,
        gatehouse_policy::Cloud::Aws => gatehouse_emulator::Dialect::Aws,
        gatehouse_policy::Cloud::Gcp => gatehouse_emulator::Dialect::Gcp,
    }
}

pub fn main(args: Args) -> ExitCode {
    if let Some(path) = &args.write_key {
        return write_key(path);
    }
    let config = match &args.config {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    return crate::fail(&format!("cannot read `{}`: {e}", path.display()), None)
                }
            };
            match gatehouse_emulator::EmulatorConfig::from_toml(&text) {
                Ok(c) => c,
                Err(e) => return crate::fail(&format!("`{}`: {e}", path.display()), None),
            }
        }
        None => gatehouse_emulator::EmulatorConfig::demo(),
    };
    let faults = match &args.faults {
        Some(json) => match serde_json::from_str(json) {
            Ok(f) => f,
            Err(e) => return crate::fail(&format!("`--faults` is not valid: {e}"), None),
        },
        None => gatehouse_emulator::Faults::default(),
    };
    let dialect = dialect_of(args.cloud);
    let options = gatehouse_emulator::Options {
        dialect,
        listen: args.listen,
        control_listen: args.control,
        rate_limits: !args.no_rate_limits,
        key: match &args.key_file {
            Some(p) => gatehouse_emulator::KeySource::PemFile(p.clone()),
            None => gatehouse_emulator::KeySource::Generate,
        },
        faults,
    };
    let rt = match crate::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let emulator = match gatehouse_emulator::start(config, options).await {
            Ok(e) => e,
            Err(e) => return crate::fail(&format!("cannot start the emulator: {e}"), None),
        };
        eprintln!("gatehouse emulator: IMDS on http://{}", emulator.addr());
        eprintln!("  dialect: {}", args.cloud);
        if let Some(c) = emulator.control_addr() {
            eprintln!("  control: http://{c}/stats, /faults (GET/PUT), /reset (POST), /jwks");
        }
        let _ = tokio::signal::ctrl_c().await;
        emulator.shutdown();
        ExitCode::SUCCESS
    })
}

fn write_key(path: &std::path::Path) -> ExitCode {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let pem = match gatehouse_emulator::generate_key_pem() {
        Ok(p) => p,
        Err(e) => return crate::fail(&format!("cannot make a key: {e}"), None),
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match file.and_then(|mut f| f.write_all(pem.as_bytes())) {
        Ok(()) => {
            eprintln!("wrote a new signing key to {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(
            &format!("cannot write `{}`: {e}", path.display()),
            Some("the file must not exist yet"),
        ),
    }
}
