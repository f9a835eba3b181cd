//! `*`-only glob matching, shared by role actions and audience patterns.
//!
//! Iterative with single-star backtracking: linear in practice and never
//! recursive, so a hostile pattern cannot blow the stack or take exponential
//! time.

/// Does `text` match `pattern`, where `*` stands for any run (possibly empty)?
/// Comparison is byte-exact; callers lower-case first when they want
/// case-insensitive matching.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    backtrack(
        pattern.as_bytes(),
        text.as_bytes(),
        |p| *p == b'*',
        |p, t| p == t,
    )
}

/// The one matching loop behind every glob in gatehouse: `*` here,
/// `StringLike`'s pieces in conditions, and the allowed-signers file's
/// `namespaces=` patterns (`gatehouse_policy::glob`). `is_run` says which
/// pattern items stand for any run; `step` whether an item consumes one
/// text item. Iterative with single-star backtracking.
pub fn backtrack<P, T>(
    p: &[P],
    t: &[T],
    is_run: impl Fn(&P) -> bool,
    step: impl Fn(&P, &T) -> bool,
) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position of the last run seen and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some(pc), _) if is_run(pc) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(pc), Some(tc)) if step(pc, tc) => {
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
    p.get(pi..).is_some_and(|rest| rest.iter().all(&is_run))
}

/// Case-insensitive (ASCII) variant, as Azure role-definition matching is.
pub(crate) fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    matches(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
