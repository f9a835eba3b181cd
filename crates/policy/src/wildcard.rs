//! `*`-only glob matching, shared by role actions and audience patterns.
//!
//! Iterative with single-star backtracking: linear in practice and never
//! recursive, so a hostile pattern cannot blow the stack or take exponential
//! time.

/// Does `text` match `pattern`, where `*` stands for any run (possibly empty)?
/// Comparison is byte-exact; callers lower-case first when they want
/// case-insensitive matching.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position of the last `*` seen and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some(b'*'), _) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(pc), Some(tc)) if pc == tc => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Case-insensitive (ASCII) variant, as Azure role-definition matching is.
pub(crate) fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    matches(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
