//! `StringLike`: `*` any run, `?` one character, `\*` `\?` `\\` literal.
//! Iterative with single-star backtracking, so no pattern can take
//! exponential time or recurse.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    Char(char),
    One,
    Run,
}

fn pieces(pattern: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Piece::Run,
            '?' => Piece::One,
            '\\' => match chars.next() {
                Some(next) => Piece::Char(next),
                None => Piece::Char('\\'),
            },
            c => Piece::Char(c),
        });
    }
    out
}

/// Does `text` match the Like `pattern`?
pub fn matches(pattern: &str, text: &str) -> bool {
    let p = pieces(pattern);
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let tc = t.get(ti).copied();
        match (p.get(pi), tc) {
            (Some(Piece::Run), _) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(Piece::One), Some(_)) => {
                pi += 1;
                ti += 1;
            }
            (Some(Piece::Char(pc)), Some(tc)) if *pc == tc => {
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
    p.get(pi..).is_some_and(|rest| rest.iter().all(|x| *x == Piece::Run))
}

/// Case-insensitive variant (Unicode lower-casing of both sides).
pub fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    matches(&pattern.to_lowercase(), &text.to_lowercase())
}
