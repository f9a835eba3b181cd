//! Keeping the table as rendered: `nft monitor` reports every change to the
//! ruleset, and a periodic check backs it up (a monitor can die, events can
//! be missed). Each time the table differs it is replaced in one batch and
//! the repair is reported, so the gate can audit it.

use crate::diff::Difference;
use crate::nft::Nft;
use crate::ruleset::{Ruleset, FAMILY, TABLE};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// Why the table was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first check when the watcher starts.
    Start,
    /// `nft monitor` reported a change to our table.
    Event,
    /// The periodic backstop.
    Periodic,
}

impl Trigger {
    pub fn label(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Event => "nft-event",
            Trigger::Periodic => "periodic",
        }
    }
}

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The table was found as rendered: at the first check, and again after
    /// a failed check or a repair that did not hold (a clean table is not
    /// reported at every period).
    Verified { trigger: Trigger },
    /// The table differed and was replaced. `remaining` is what still differs
    /// afterwards (empty when the repair worked).
    Repaired {
        trigger: Trigger,
        differences: Vec<Difference>,
        remaining: Vec<Difference>,
    },
    /// Checking or repairing failed (e.g. `nft` is gone); tried again at the
    /// next event or period.
    Failed { trigger: Trigger, error: String },
    /// `nft monitor` stopped; only the periodic check is left.
    MonitorLost { error: String },
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// How often to check without an event.
    pub every: Duration,
    /// Follow `nft monitor` (tests turn it off to exercise the backstop).
    pub monitor: bool,
    /// The caller has just checked the table with [`ensure`] and reported
    /// that: the first check then reports only a change.
    pub checked_before: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            every: Duration::from_secs(10),
            monitor: true,
            checked_before: false,
        }
    }
}

enum Msg {
    Changed,
    MonitorEnded(String),
    Stop,
}

/// A running watcher; dropping it stops it.
#[derive(Debug)]
pub struct Watcher {
    tx: Sender<Msg>,
    monitor: Option<Child>,
    threads: Vec<JoinHandle<()>>,
    verified: bool,
}

/// Start watching: check at once, then on every change to our table and
/// every `options.every`. `report` runs on the watcher's thread.
pub fn watch<F>(
    nft: Nft,
    ruleset: Ruleset,
    options: WatchOptions,
    report: F,
) -> Result<Watcher, crate::Error>
where
    F: Fn(&WatchEvent) + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    let mut monitor = None;
    if options.monitor {
        let mut command = nft.command(["monitor"]);
        // Killed with this process, even by SIGKILL: no orphaned monitor.
        gatehouse_sys::die_with_parent(&mut command);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| crate::nft::NftError::Spawn {
                program: "nft monitor".to_owned(),
                source,
            })?;
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            threads.push(std::thread::spawn(move || follow(BufReader::new(out), &tx)));
        }
        monitor = Some(child);
    }
    let every = options.every.max(Duration::from_millis(100));
    // The first check before returning, so the caller knows the table holds.
    let verified = check(
        &nft,
        &ruleset,
        Trigger::Start,
        !options.checked_before,
        &report,
    );
    threads.push(std::thread::spawn(move || {
        let mut next = Instant::now() + every;
        // Whether the last check left the table as rendered: a clean check
        // is reported only when it was not.
        let mut held = verified;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Msg::Changed) => {
                    // One transaction prints many lines: let it finish.
                    std::thread::sleep(Duration::from_millis(100));
                    let mut stop = false;
                    while let Ok(m) = rx.try_recv() {
                        stop |= matches!(m, Msg::Stop);
                    }
                    if stop {
                        return;
                    }
                    held = check(&nft, &ruleset, Trigger::Event, !held, &report);
                }
                Ok(Msg::MonitorEnded(error)) => report(&WatchEvent::MonitorLost { error }),
                Err(RecvTimeoutError::Timeout) => {
                    held = check(&nft, &ruleset, Trigger::Periodic, !held, &report);
                    next = Instant::now() + every;
                }
            }
        }
    }));
    Ok(Watcher {
        tx,
        monitor,
        threads,
        verified,
    })
}

impl Watcher {
    /// Whether the first check found the table as rendered (or repaired it
    /// so), before [`watch`] returned.
    pub fn verified_at_start(&self) -> bool {
        self.verified
    }

    /// Stop and wait for the watcher's threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(mut child) = self.monitor.take() {
            // Our own child: kill() fails only if it cannot be signalled.
            if let Err(e) = child.kill().and_then(|()| child.wait().map(drop)) {
                eprintln!(
                    "gatehouse: cannot stop `nft monitor` (pid {}): {e}",
                    child.id()
                );
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Forward a "changed" for every monitor line about our table.
fn follow<R: BufRead>(lines: R, tx: &Sender<Msg>) {
    let needle = format!(" {FAMILY} {TABLE}");
    for line in lines.lines() {
        match line {
            Ok(l) if l.contains(&needle) => {
                if tx.send(Msg::Changed).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Msg::MonitorEnded(e.to_string()));
                return;
            }
        }
    }
    let _ = tx.send(Msg::MonitorEnded("`nft monitor` exited".to_owned()));
}

/// The watcher's first check on its own, without a watcher: the table
/// verified (and repaired if it differs) before anything serves behind it.
/// Whether it is as rendered afterwards; the verdict (verified, repaired
/// or failed) goes to `report` as [`Trigger::Start`]. It starts no thread,
/// so it may run before a capability drop.
pub fn ensure<F: Fn(&WatchEvent)>(nft: &Nft, ruleset: &Ruleset, report: F) -> bool {
    check(nft, ruleset, Trigger::Start, true, &report)
}

/// Check (and repair) the table; whether it is as rendered afterwards.
/// A clean table is reported only with `report_clean`.
fn check<F: Fn(&WatchEvent)>(
    nft: &Nft,
    ruleset: &Ruleset,
    trigger: Trigger,
    report_clean: bool,
    report: &F,
) -> bool {
    let failed = |error: String| {
        report(&WatchEvent::Failed { trigger, error });
        false
    };
    let differences = match crate::verify(nft, ruleset) {
        Ok(d) if d.is_empty() => {
            if report_clean {
                report(&WatchEvent::Verified { trigger });
            }
            return true;
        }
        Ok(d) => d,
        Err(e) => return failed(e.to_string()),
    };
    if let Err(e) = crate::apply(nft, ruleset) {
        return failed(e.to_string());
    }
    match crate::verify(nft, ruleset) {
        Ok(remaining) => {
            let holds = remaining.is_empty();
            report(&WatchEvent::Repaired {
                trigger,
                differences,
                remaining,
            });
            holds
        }
        Err(e) => failed(format!("replaced the table but cannot verify it: {e}")),
    }
}

impl WatchEvent {
    /// The audit record for this event (differences as `verify` words them).
    pub fn audit_record(&self) -> gatehouse_audit::Event {
        use gatehouse_audit::Event;
        let words = |d: &[Difference]| d.iter().map(ToString::to_string).collect::<Vec<_>>();
        match self {
            WatchEvent::Verified { trigger } => Event::FirewallVerified {
                trigger: trigger.label().to_owned(),
            },
            WatchEvent::Repaired {
                trigger,
                differences,
                remaining,
            } => Event::FirewallRepaired {
                trigger: trigger.label().to_owned(),
                differences: words(differences),
                remaining: words(remaining),
            },
            WatchEvent::Failed { trigger, error } => Event::FirewallRepairFailed {
                trigger: trigger.label().to_owned(),
                error: error.clone(),
            },
            WatchEvent::MonitorLost { error } => Event::FirewallMonitorLost {
                error: error.clone(),
            },
        }
    }
}
