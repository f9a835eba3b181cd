//! Warnings about mechanisms that redirect metadata traffic before nftables
//! sees it. A cgroup `connect4`/`sendmsg4` BPF program (Azure's Guest Proxy
//! Agent installs one) rewrites the destination inside `connect()`, so the
//! packets never carry 169.254.169.254 and our rules never match.
//!
//! Listing attached cgroup programs needs the `bpf()` syscall; we ask
//! `bpftool` when it is installed, and otherwise look for the Guest Proxy
//! Agent's files and say that the BPF check could not run.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

#[cfg(test)]
mod tests;

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BypassReport {
    /// Something does redirect (or may redirect) metadata traffic.
    pub warnings: Vec<String>,
    /// What could not be checked.
    pub notes: Vec<String>,
}

/// cgroup v2 mounts where programs may be attached (the unified hierarchy
/// sits at the first on pure-v2 systems, the second on hybrid ones).
const CGROUP_ROOTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/// Files the Azure Guest Proxy Agent installs.
const GUEST_PROXY_AGENT: [&str; 5] = [
    "/usr/sbin/azure-proxy-agent",
    "/usr/lib/systemd/system/azure-proxy-agent.service",
    "/lib/systemd/system/azure-proxy-agent.service",
    "/etc/systemd/system/azure-proxy-agent.service",
    "/etc/azure/proxy-agent.json",
];

/// Run every check this machine allows.
pub fn check() -> BypassReport {
    let mut report = BypassReport::default();
    let mut bpf_checked = false;
    for root in CGROUP_ROOTS {
        let Some(listing) = bpftool_cgroup_tree(root) else {
            continue;
        };
        bpf_checked = true;
        for found in address_rewriters(&listing) {
            report.warnings.push(format!(
                "a cgroup BPF program rewrites connections before nftables sees them: {found}; \
                 traffic it redirects never reaches gatehouse"
            ));
        }
    }
    if !bpf_checked {
        report.notes.push(
            "cgroup BPF programs were not checked: `bpftool` is not installed (or found no cgroup v2 mount)".to_owned(),
        );
    }
    for path in GUEST_PROXY_AGENT {
        if Path::new(path).exists() {
            report.warnings.push(format!(
                "the Azure Guest Proxy Agent is installed (`{path}`): its BPF program redirects IMDS \
                 and WireServer connections before nftables sees them"
            ));
        }
    }
    report
}

/// `bpftool -j cgroup tree ROOT`, or `None` when it cannot run there.
fn bpftool_cgroup_tree(root: &str) -> Option<Value> {
    let out = Command::new("bpftool")
        .args(["-j", "cgroup", "tree", root])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Programs in a `bpftool -j cgroup tree` listing attached where they can
/// change a socket's destination: `connect4/6`, `sendmsg4/6`.
fn address_rewriters(listing: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for cgroup in listing.as_array().map(Vec::as_slice).unwrap_or_default() {
        let path = cgroup.get("cgroup").and_then(Value::as_str).unwrap_or("?");
        for prog in cgroup
            .get("programs")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let attach = prog
                .get("attach_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let rewrites = [
                "connect4",
                "connect6",
                "sendmsg4",
                "sendmsg6",
                "inet4_connect",
                "inet6_connect",
                "udp4_sendmsg",
                "udp6_sendmsg",
            ]
            .iter()
            .any(|t| attach.contains(t));
            if rewrites {
                let name = prog.get("name").and_then(Value::as_str).unwrap_or("?");
                let id = prog.get("id").and_then(Value::as_u64).unwrap_or(0);
                found.push(format!("`{name}` (id {id}, {attach}) on `{path}`"));
            }
        }
    }
    found
}
