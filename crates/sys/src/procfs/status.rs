//! Parser for `/proc/PID/status`: credentials, parent and thread group.

/// The fields of `/proc/PID/status` identification needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    /// Exited, not yet reaped (`State: Z`): it holds no files any more.
    pub zombie: bool,
    pub tgid: u32,
    pub ppid: u32,
    pub ruid: u32,
    pub euid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub groups: Vec<u32>,
}

/// Parses the text of `/proc/PID/status`; `None` when a credential line is missing or
/// malformed (never guess a uid).
pub fn parse_status(text: &str) -> Option<Status> {
    let mut st = Status::default();
    let (mut have_uid, mut have_gid) = (false, false);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => st.name = value.to_owned(),
            "State" => st.zombie = value.starts_with('Z'),
            "Tgid" => st.tgid = value.parse().ok()?,
            "PPid" => st.ppid = value.parse().ok()?,
            "Uid" => {
                (st.ruid, st.euid) = real_and_effective(value)?;
                have_uid = true;
            }
            "Gid" => {
                (st.rgid, st.egid) = real_and_effective(value)?;
                have_gid = true;
            }
            "Groups" => {
                st.groups = value
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?;
            }
            _ => {}
        }
    }
    (have_uid && have_gid).then_some(st)
}

/// `Uid:`/`Gid:` lines hold real, effective, saved and filesystem ids.
fn real_and_effective(value: &str) -> Option<(u32, u32)> {
    let mut ids = value.split_whitespace().map(str::parse::<u32>);
    let real = ids.next()?.ok()?;
    let effective = ids.next()?.ok()?;
    Some((real, effective))
}

#[cfg(test)]
mod tests;
