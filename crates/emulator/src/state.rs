//! Everything a running emulator shares between connections.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::audience::Audiences;
use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::events::Events;
use crate::faults::Faults;
use crate::keys::Signer;
use crate::ratelimit::Limits;
use crate::stats::{Peaks, Stats};

pub(crate) struct State {
    pub(crate) config: EmulatorConfig,
    pub(crate) audiences: Audiences,
    pub(crate) signer: Signer,
    /// Built once: the document only depends on the config.
    pub(crate) instance_doc: serde_json::Value,
    pub(crate) clock: Arc<dyn Clock>,
    /// `None` when rate limits are off.
    pub(crate) limits: Option<Limits>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) peaks: Mutex<Peaks>,
    pub(crate) events: Mutex<Events>,
    /// Which service this is.
    pub(crate) dialect: crate::aws::Dialect,
    /// AWS sessions and credentials (unused for Azure).
    pub(crate) aws: Mutex<crate::aws::AwsState>,
    /// GCP access tokens (unused elsewhere).
    pub(crate) gcp: Mutex<crate::gcp::GcpState>,
}

impl State {
    pub(crate) fn new(
        config: EmulatorConfig,
        signer: Signer,
        rate_limits: bool,
        faults: Faults,
        clock: Arc<dyn Clock>,
        dialect: crate::aws::Dialect,
    ) -> Self {
        let limits = rate_limits.then(|| Limits::new(clock.instant_now()));
        Self {
            audiences: Audiences::new(&config.extra_audiences),
            instance_doc: crate::instance::document(&config),
            events: Mutex::new(Events::new(
                config.scheduled_events.clone(),
                &config.vm.name,
            )),
            config,
            signer,
            clock,
            limits,
            faults: Mutex::new(faults),
            stats: Mutex::new(Stats::default()),
            peaks: Mutex::new(Peaks::default()),
            dialect,
            aws: Mutex::new(crate::aws::AwsState::default()),
            gcp: Mutex::new(crate::gcp::GcpState::default()),
        }
    }
}

/// Locks a mutex; a panic elsewhere while holding it leaves plain data that
/// is still usable, so poisoning is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
