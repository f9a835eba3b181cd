//! Parser for `/proc/PID/cgroup`: the cgroup v2 path, systemd units and container ids.

/// What a cgroup v2 path says about a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupFacts {
    /// The unified-hierarchy path, e.g. `/system.slice/x.service`.
    pub path: String,
    /// A unit of the system manager: only under `/system.slice/`.
    pub system_unit: Option<String>,
    /// A unit of a user manager (under `user@UID.service/`), whatever its name: a user can
    /// name their own unit `sshd.service`, so it must never count as a system unit.
    pub user_unit: Option<String>,
    pub container_id: Option<String>,
}

/// The cgroup v2 path from the text of `/proc/PID/cgroup` (the `0::` line).
pub fn parse_cgroup_file(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Classifies a cgroup v2 path.
pub fn classify_cgroup(path: &str) -> CgroupFacts {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let system_unit = match parts.first() {
        Some(&"system.slice") => first_unit(parts.get(1..).unwrap_or_default()),
        _ => None,
    };
    let user_unit = match parts.first() {
        Some(&"user.slice") => parts
            .iter()
            .position(|p| is_user_manager(p))
            .and_then(|i| first_unit(parts.get(i + 1..).unwrap_or_default())),
        _ => None,
    };
    CgroupFacts {
        path: path.to_owned(),
        system_unit,
        user_unit,
        container_id: container_id(&parts),
    }
}

/// The first component that is a unit rather than a slice (`.slice` groups units).
fn first_unit(parts: &[&str]) -> Option<String> {
    parts
        .iter()
        .find(|p| !p.ends_with(".slice"))
        .filter(|p| p.contains('.'))
        .map(|p| (*p).to_owned())
}

/// `user@1000.service`: the per-user systemd manager.
fn is_user_manager(part: &str) -> bool {
    part.strip_prefix("user@")
        .and_then(|r| r.strip_suffix(".service"))
        .is_some_and(|uid| !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()))
}

/// The innermost container id: `docker-<id>.scope`, `/docker/<id>`,
/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope`, and the cgroupfs
/// layout `/kubepods/.../<id>`. Ids must be 64 hex digits.
fn container_id(parts: &[&str]) -> Option<String> {
    const SCOPED: [&str; 4] = ["docker-", "cri-containerd-", "crio-", "libpod-"];
    let in_kubepods = parts.first().is_some_and(|p| p.starts_with("kubepods"));
    let mut found = None;
    let mut previous = "";
    for part in parts {
        let scoped = SCOPED.iter().find_map(|prefix| {
            part.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(".scope"))
        });
        let candidate = match scoped {
            Some(id) => Some(id),
            None if previous == "docker" || previous == "libpod" || in_kubepods => Some(*part),
            None => None,
        };
        if let Some(id) = candidate.filter(|id| is_container_id(id)) {
            found = Some(id.to_owned());
        }
        previous = part;
    }
    found
}

fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests;
