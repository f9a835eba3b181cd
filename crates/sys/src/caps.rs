//! Capabilities of gatehouse's two processes: the broker keeps exactly
//! [`BROKER_CAPABILITIES`], the worker none.
//!
//! Linux keeps capability sets (and the bounding set) per thread, and a new
//! thread copies its creator's: drop them on the main thread *before* any
//! other thread (an async runtime, a watcher) is started.

use rustix::thread::{
    capabilities, capability_is_in_bounding_set, clear_ambient_capability_set,
    remove_capability_from_bounding_set, set_capabilities, CapabilitySet, CapabilitySets,
};
use std::io;

/// The capabilities gatehouse has any use for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Socket marks on upstream connections; `nft` for the firewall watcher.
    NetAdmin,
    /// Reading `/proc/PID/fd` and `exe` of other users' processes.
    SysPtrace,
    /// Searching other users' `/proc/PID` directories and reading executables.
    DacReadSearch,
}

/// What the privileged process (the broker) keeps.
pub const BROKER_CAPABILITIES: [Capability; 3] = [
    Capability::NetAdmin,
    Capability::SysPtrace,
    Capability::DacReadSearch,
];

impl Capability {
    fn set(self) -> CapabilitySet {
        match self {
            Capability::NetAdmin => CapabilitySet::NET_ADMIN,
            Capability::SysPtrace => CapabilitySet::SYS_PTRACE,
            Capability::DacReadSearch => CapabilitySet::DAC_READ_SEARCH,
        }
    }

    /// The kernel's name, as `capsh` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetAdmin => "cap_net_admin",
            Capability::SysPtrace => "cap_sys_ptrace",
            Capability::DacReadSearch => "cap_dac_read_search",
        }
    }
}

/// `caps` as the bit mask `/proc/PID/status` shows in `CapEff`.
pub fn capability_mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |mask, c| mask | c.set().bits())
}

/// Drop every capability but `keep` from this thread's effective, permitted
/// and inheritable sets, its ambient set and its bounding set (so no program
/// it runs, `nft` included, can regain more). Needs CAP_SETPCAP for the
/// bounding set, so call it once, while still fully privileged.
pub fn keep_only_capabilities(keep: &[Capability]) -> io::Result<()> {
    let keep_mask = capability_mask(keep);
    for bit in 0..64u32 {
        let Some(one) = 1u64.checked_shl(bit) else {
            break;
        };
        if one & keep_mask != 0 {
            continue;
        }
        let cap = CapabilitySet::from_bits_retain(one);
        match capability_is_in_bounding_set(cap) {
            Ok(true) => remove_capability_from_bounding_set(cap)?,
            Ok(false) => {}
            // Past the kernel's last capability.
            Err(rustix::io::Errno::INVAL) => break,
            Err(e) => return Err(e.into()),
        }
    }
    clear_ambient_capability_set()?;
    let kept = CapabilitySet::from_bits_retain(keep_mask);
    set_capabilities(
        None,
        CapabilitySets {
            effective: kept,
            permitted: kept,
            inheritable: CapabilitySet::empty(),
        },
    )?;
    Ok(())
}

/// This thread's effective capabilities, as a `CapEff` bit mask.
pub fn effective_capabilities() -> io::Result<u64> {
    Ok(capabilities(None)?.effective.bits())
}

/// `PR_SET_NO_NEW_PRIVS`: nothing this process runs can gain privileges
/// (setuid binaries, file capabilities). It cannot be undone.
pub fn forbid_new_privileges() -> io::Result<()> {
    rustix::thread::set_no_new_privs(true)?;
    Ok(())
}

#[cfg(test)]
mod tests;
