//! The system user the unprivileged part of the gate runs as.

use std::io;

/// A user's uid and primary gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// `name` (a user name, or a numeric uid) in `/etc/passwd`. A numeric uid
/// without an entry gets the gid of the same number.
pub fn lookup_account(name: &str) -> io::Result<Option<Account>> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    Ok(find_account(&passwd, name))
}

/// `name` in the text of a passwd file.
pub fn find_account(passwd: &str, name: &str) -> Option<Account> {
    let numeric: Option<u32> = name.parse().ok();
    for line in passwd.lines() {
        let mut fields = line.split(':');
        let (Some(user), Some(_), Some(uid), Some(gid)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(uid), Ok(gid)) = (uid.parse::<u32>(), gid.parse::<u32>()) else {
            continue;
        };
        if user == name || numeric == Some(uid) {
            return Some(Account { uid, gid });
        }
    }
    numeric.map(|uid| Account { uid, gid: uid })
}

#[cfg(test)]
mod tests;
