//! `gatehouse run`'s audit export: the settings file and `--export`
//! flags, checked at start, and the exporter (crates/export) started.
//! With `--user` this runs in the unprivileged worker (docs/threats.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_export::settings::{self, Settings};
use gatehouse_export::{Exporter, Origin, Prepared};
use gatehouse_gate::Gate;

use super::plan::{Plan, StartError};

/// How long a stopping gate keeps delivering its last records.
pub(crate) const FINISH_LIMIT: Duration = Duration::from_secs(3);
/// How long the metadata service has to tell the VM's id at start.
const VM_ID_LIMIT: Duration = Duration::from_secs(2);
/// How long each sink has to accept a connection at start.
const PROBE_LIMIT: Duration = Duration::from_secs(3);

/// The settings file named by `--settings`, or the default one if it
/// exists; every mistake printed with its place.
pub(crate) fn load_settings(named: Option<&Path>) -> Result<Settings, ExitCode> {
    let path = named.map_or_else(|| PathBuf::from(settings::DEFAULT_PATH), Path::to_path_buf);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && named.is_none() => {
            return Ok(Settings::default())
        }
        Err(e) => {
            return Err(crate::fail(
                &format!("cannot read the settings `{}`: {e}", path.display()),
                Some("name the settings file with `--settings`"),
            ))
        }
    };
    settings::parse(&path.display().to_string(), &text).map_err(|e| {
        eprintln!("{e}");
        crate::fail(
            &format!("the settings `{}` were not loaded", path.display()),
            None,
        )
    })
}

/// The settings with the `--export` flags applied.
pub(crate) fn effective(named: Option<&Path>, flags: &[String]) -> Result<Settings, ExitCode> {
    let mut s = load_settings(named)?;
    for flag in flags {
        settings::apply_flag(&mut s, flag)
            .map_err(|e| crate::fail(&format!("`--export {flag}`: {e}"), None))?;
    }
    Ok(s)
}

/// Starts the export if any sink is configured.
pub(crate) async fn start(
    plan: &Plan,
    gate: &Arc<Gate>,
    audit: &Path,
    me: u32,
) -> Result<Option<Exporter>, StartError> {
    // Checked (and any mistake printed) before the plan was made.
    let settings = effective(plan.settings.as_deref(), &plan.export)
        .map_err(|_| StartError::step("the export settings were not loaded", None))?;
    let export = settings.export;
    if export.sinks.is_empty() {
        return Ok(None);
    }
    let state_dir = match (&export.state_dir, plan.named_audit_path().is_none()) {
        (Some(d), _) => d.clone(),
        (None, true) => super::demo_dir(me)?,
        (None, false) => gatehouse_export::exporter::default_state_dir(),
    };
    if !state_dir.is_dir() {
        return Err(StartError::step(
            format!(
                "the export state directory `{}` does not exist",
                state_dir.display()
            ),
            Some("create it for the gate's user, or set `state_dir` in `[export]`"),
        ));
    }
    let origin = Origin {
        hostname: export
            .hostname
            .clone()
            .unwrap_or_else(gatehouse_export::net::host_name),
        vm_id: match &export.vm_id {
            Some(id) => Some(id.clone()),
            None => {
                let id = gate.vm_id(VM_ID_LIMIT).await;
                if id.is_none() {
                    eprintln!(
                        "gatehouse: warning: the metadata service gave no VM id; OTLP records go without `host.id`"
                    );
                    eprintln!("  help: set `vm_id` in `[export]` to name this machine yourself");
                }
                id
            }
        },
    };
    let mut prepared = Prepared::new(&export.sinks, &origin).map_err(|e| {
        StartError::step(
            e.to_string(),
            Some("fix the sink's `ca` in the settings file"),
        )
    })?;
    for bad in prepared.probe(PROBE_LIMIT).await {
        // Not fatal: metadata must not depend on the SIEM. Records queue
        // in the log and go out when the sink answers.
        eprintln!(
            "gatehouse: error: audit export sink `{}` cannot be reached: {}",
            bad.sink, bad.error
        );
        eprintln!(
            "  help: records wait in the audit log until it can; `gatehouse status` shows the lag"
        );
        tracing::error!(sink = %bad.sink, error = %bad.error, "audit export sink unreachable at start");
    }
    for s in &export.sinks {
        eprintln!("  export:    {} → {}", s.name, s.url);
    }
    let exporter = prepared.start(
        audit,
        &state_dir,
        gatehouse_gate::export::GateHost::new(gate),
    );
    gate.set_export(exporter.view());
    Ok(Some(exporter))
}
