//! Local principals (`kind:value` strings): parsing with validation, and
//! matching against a [`Caller`].

use std::fmt;

use crate::caller::{Caller, Process};

/// Who an assignment is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    Uid(u32),
    User(String),
    Gid(u32),
    Group(String),
    /// Absolute, canonical path; needs a verified path on every holder.
    ExePath(String),
    /// Lower-case hex SHA-256 of the executable.
    ExeHash(String),
    /// systemd system unit name, with its type suffix.
    Unit(String),
    /// Exact cgroup path.
    Cgroup(String),
    /// cgroup subtree: this path and everything below it (`/path/*`).
    CgroupTree(String),
    /// Lower-case hex container id prefix, at least 12 digits.
    Container(String),
    Everyone,
}

/// Why a principal string is invalid: a message and an optional hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalError {
    pub message: String,
    pub help: Option<String>,
}

fn err(message: impl Into<String>, help: Option<&str>) -> PrincipalError {
    PrincipalError {
        message: message.into(),
        help: help.map(str::to_owned),
    }
}

const KINDS: &str = "expected one of `uid:`, `user:`, `gid:`, `group:`, `exe:`, `unit:`, `cgroup:`, `container:` or `everyone`";
const UNIT_SUFFIXES: [&str; 2] = [".service", ".scope"];

impl Principal {
    /// Parse and validate `kind:value`.
    pub fn parse(s: &str) -> Result<Principal, PrincipalError> {
        if s == "everyone" {
            return Ok(Principal::Everyone);
        }
        let Some((kind, value)) = s.split_once(':') else {
            return Err(err(format!("invalid principal `{s}`"), Some(KINDS)));
        };
        match kind {
            "uid" => parse_id(value, "uid").map(Principal::Uid),
            "gid" => parse_id(value, "gid").map(Principal::Gid),
            "user" => parse_name(value, "user").map(Principal::User),
            "group" => parse_name(value, "group").map(Principal::Group),
            "exe" => parse_exe(value),
            "unit" => parse_unit(value).map(Principal::Unit),
            "cgroup" => parse_cgroup(value),
            "container" => parse_container(value).map(Principal::Container),
            _ => Err(err(format!("unknown principal kind `{kind}`"), Some(KINDS))),
        }
    }

    /// Principals about process attributes follow the all-holders rule.
    pub fn is_process_attribute(&self) -> bool {
        matches!(
            self,
            Principal::ExePath(_)
                | Principal::ExeHash(_)
                | Principal::Unit(_)
                | Principal::Cgroup(_)
                | Principal::CgroupTree(_)
                | Principal::Container(_)
        )
    }

    /// Does this principal grant to `caller`? Process attributes need at
    /// least one holder and every holder to match, so a parent that forked
    /// after connecting cannot borrow its child's identity.
    pub fn grants_to(&self, caller: &Caller) -> bool {
        match self {
            Principal::Uid(uid) => caller.uid == Some(*uid),
            Principal::User(name) => caller.user.as_deref() == Some(name.as_str()),
            Principal::Gid(gid) => caller.gids.contains(gid),
            Principal::Group(name) => caller.group_names.iter().any(|g| g == name),
            Principal::Everyone => true,
            _ => {
                !caller.processes.is_empty()
                    && caller.processes.iter().all(|p| self.matches_process(p))
            }
        }
    }

    /// Does this principal cover `caller` for a deny? Errs the other way:
    /// one matching holder is enough.
    pub fn denies_to(&self, caller: &Caller) -> bool {
        if self.is_process_attribute() {
            caller.processes.iter().any(|p| self.matches_process(p))
        } else {
            self.grants_to(caller)
        }
    }

    pub(crate) fn matches_process(&self, p: &Process) -> bool {
        match self {
            Principal::ExePath(path) => {
                p.exe_path_verified && p.exe_path.as_deref() == Some(path.as_str())
            }
            Principal::ExeHash(hash) => p
                .exe_sha256
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(hash)),
            Principal::Unit(unit) => p.unit.as_deref() == Some(unit.as_str()),
            Principal::Cgroup(path) => p.cgroup.as_deref() == Some(path.as_str()),
            Principal::CgroupTree(root) => p.cgroup.as_deref().is_some_and(|c| in_tree(root, c)),
            Principal::Container(prefix) => p.container.as_deref().is_some_and(|c| {
                c.len() >= prefix.len() && c.to_ascii_lowercase().starts_with(prefix)
            }),
            _ => false,
        }
    }
}

/// Is cgroup `path` `root` itself or below it?
pub(crate) fn in_tree(root: &str, path: &str) -> bool {
    if root == "/" {
        return path.starts_with('/');
    }
    path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Uid(v) => write!(f, "uid:{v}"),
            Principal::User(v) => write!(f, "user:{v}"),
            Principal::Gid(v) => write!(f, "gid:{v}"),
            Principal::Group(v) => write!(f, "group:{v}"),
            Principal::ExePath(v) => write!(f, "exe:{v}"),
            Principal::ExeHash(v) => write!(f, "exe:sha256:{v}"),
            Principal::Unit(v) => write!(f, "unit:{v}"),
            Principal::Cgroup(v) => write!(f, "cgroup:{v}"),
            Principal::CgroupTree(v) if v == "/" => write!(f, "cgroup:/*"),
            Principal::CgroupTree(v) => write!(f, "cgroup:{v}/*"),
            Principal::Container(v) => write!(f, "container:{v}"),
            Principal::Everyone => f.write_str("everyone"),
        }
    }
}

fn parse_id(value: &str, kind: &str) -> Result<u32, PrincipalError> {
    let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<u32>() {
        Ok(id) if valid && id != u32::MAX => Ok(id),
        _ => Err(err(
            format!("invalid {kind} `{value}`"),
            Some("expected a decimal number from 0 to 4294967294"),
        )),
    }
}

fn parse_name(value: &str, kind: &str) -> Result<String, PrincipalError> {
    let valid = !value.is_empty()
        && value.len() <= 256
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$' | '@'));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(err(
            format!("invalid {kind} name `{value}`"),
            Some("names use letters, digits, `_`, `-`, `.`, `@` and a trailing `$`"),
        ))
    }
}

fn parse_exe(value: &str) -> Result<Principal, PrincipalError> {
    if let Some(hash) = value.strip_prefix("sha256:") {
        if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Principal::ExeHash(hash.to_ascii_lowercase()));
        }
        return Err(err(
            format!("invalid executable hash `{hash}`"),
            Some("expected 64 hex digits (`sha256sum /path/to/exe`)"),
        ));
    }
    if !value.starts_with('/') {
        return Err(err(
            format!("executable path `{value}` is not absolute"),
            Some("write the full path, e.g. `exe:/usr/bin/python3`, or `exe:sha256:<hex>`"),
        ));
    }
    if !is_canonical_path(value) || value == "/" {
        return Err(err(
            format!("executable path `{value}` is not canonical"),
            Some("no `//`, `.` or `..` segments, no trailing `/`: write the path `/proc/PID/exe` shows"),
        ));
    }
    Ok(Principal::ExePath(value.to_owned()))
}

/// Absolute, no empty, `.` or `..` segments, no trailing slash (root allowed).
fn is_canonical_path(p: &str) -> bool {
    if p == "/" {
        return true;
    }
    let Some(rest) = p.strip_prefix('/') else {
        return false;
    };
    !p.chars().any(char::is_control)
        && rest
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

fn parse_unit(value: &str) -> Result<String, PrincipalError> {
    let Some(suffix) = UNIT_SUFFIXES.iter().find(|s| value.ends_with(*s)) else {
        return Err(err(
            format!("unit `{value}` has no `.service` or `.scope` suffix"),
            Some("name the systemd system unit in full, e.g. `unit:nginx.service`"),
        ));
    };
    let stem = value.strip_suffix(suffix).unwrap_or_default();
    let valid = !stem.is_empty()
        && value.len() <= 255
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-' | '@' | '\\'));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(err(format!("invalid unit name `{value}`"), None))
    }
}

fn parse_cgroup(value: &str) -> Result<Principal, PrincipalError> {
    let (path, tree) = match value.strip_suffix("/*") {
        Some("") => ("/", true),
        Some(p) => (p, true),
        None => (value, false),
    };
    if !path.starts_with('/') || !is_canonical_path(path) {
        return Err(err(
            format!("invalid cgroup path `{value}`"),
            Some("an absolute, canonical cgroup v2 path, optionally ending in `/*` for a subtree"),
        ));
    }
    Ok(if tree {
        Principal::CgroupTree(path.to_owned())
    } else {
        Principal::Cgroup(path.to_owned())
    })
}

fn parse_container(value: &str) -> Result<String, PrincipalError> {
    if (12..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(err(
            format!("invalid container id `{value}`"),
            Some("expected 12 to 64 hex digits (a prefix of the full id)"),
        ))
    }
}

#[cfg(test)]
mod tests;
