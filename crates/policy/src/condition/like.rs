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
    crate::wildcard::backtrack(
        &p,
        &t,
        |x| *x == Piece::Run,
        |x, c| match x {
            Piece::One => true,
            Piece::Char(pc) => pc == c,
            Piece::Run => false,
        },
    )
}

/// Case-insensitive variant (Unicode lower-casing of both sides).
pub fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    matches(&pattern.to_lowercase(), &text.to_lowercase())
}
