//! Condition text → tokens. Every lexical error is collected; the lexer
//! skips the offending character and goes on.

use super::ast::{Source, Span};
use super::parser::ParseError;

/// One token and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Colon,
    /// `!` (the word `NOT` is a [`Tok::Word`]).
    Bang,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    /// `'text'`
    Str(String),
    Int(i64),
    /// A bare GUID, as written.
    Guid(String),
    /// A keyword, function or quantifier name.
    Word(String),
    /// `@Source[name]`, the name as written.
    Attr(Source, String),
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Bang => "`!`".into(),
            Tok::AndAnd => "`&&`".into(),
            Tok::OrOr => "`||`".into(),
            Tok::Str(_) => "a string".into(),
            Tok::Int(i) => format!("`{i}`"),
            Tok::Guid(g) => format!("`{g}`"),
            Tok::Word(w) => format!("`{w}`"),
            Tok::Attr(s, n) => format!("`@{}[{n}]`", s.as_str()),
        }
    }
}

/// Tokenise `text`. Returns the tokens found and every lexical error.
pub fn lex(text: &str) -> (Vec<Token>, Vec<ParseError>) {
    let mut lx = Lexer {
        text,
        pos: 0,
        tokens: Vec::new(),
        errors: Vec::new(),
    };
    lx.run();
    (lx.tokens, lx.errors)
}

struct Lexer<'t> {
    text: &'t str,
    pos: usize,
    tokens: Vec<Token>,
    errors: Vec<ParseError>,
}

fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn push(&mut self, kind: Tok, start: usize) {
        self.tokens.push(Token {
            kind,
            span: Span::new(start, self.pos),
        });
    }

    fn error(&mut self, start: usize, end: usize, message: String, help: Option<&str>) {
        self.errors.push(ParseError {
            span: Span::new(start, end),
            message,
            help: help.map(str::to_owned),
        });
    }

    /// Advance while `pred` holds; returns the text passed over.
    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !pred(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.text.get(start..self.pos).unwrap_or_default()
    }

    fn run(&mut self) {
        while let Some(c) = self.peek() {
            let start = self.pos;
            let single = match c {
                '(' => Some(Tok::LParen),
                ')' => Some(Tok::RParen),
                '{' => Some(Tok::LBrace),
                '}' => Some(Tok::RBrace),
                ',' => Some(Tok::Comma),
                ':' => Some(Tok::Colon),
                _ => None,
            };
            if let Some(t) = single {
                self.pos += 1;
                self.push(t, start);
                continue;
            }
            match c {
                c if c.is_whitespace() => self.pos += c.len_utf8(),
                '!' => {
                    self.pos += 1;
                    self.push(Tok::Bang, start);
                }
                '&' | '|' => self.double(c),
                '\'' => self.string(),
                '@' => self.attribute(),
                c if is_bare(c) => self.bare(),
                other => {
                    self.pos += other.len_utf8();
                    self.error(
                        start,
                        self.pos,
                        format!("unexpected character `{}`", other.escape_debug()),
                        None,
                    );
                }
            }
        }
    }

    fn double(&mut self, c: char) {
        let start = self.pos;
        self.pos += 1;
        if self.peek() == Some(c) {
            self.pos += 1;
            self.push(if c == '&' { Tok::AndAnd } else { Tok::OrOr }, start);
        } else {
            let word = if c == '&' {
                "`&&` or `AND`"
            } else {
                "`||` or `OR`"
            };
            self.error(
                start,
                self.pos,
                format!("unexpected `{c}`"),
                Some(&format!("write {word}")),
            );
        }
    }

    fn string(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let body = self.take_while(|c| c != '\'').to_owned();
        if self.peek() == Some('\'') {
            self.pos += 1;
            self.push(Tok::Str(body), start);
        } else {
            self.error(
                start,
                self.pos,
                "unterminated string".into(),
                Some("strings are in single quotes and cannot contain `'`"),
            );
        }
    }

    fn attribute(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let source_text = self.take_while(|c| c.is_ascii_alphabetic()).to_owned();
        let source = Source::ALL.into_iter().find(|s| s.as_str() == source_text);
        if self.peek() != Some('[') {
            self.error(
                start,
                self.pos,
                format!("expected `[` after `@{source_text}`"),
                Some("an attribute is written `@Principal[name]`"),
            );
            return;
        }
        self.pos += 1;
        let name = self.take_while(|c| c != ']' && c != '\n').to_owned();
        if self.peek() != Some(']') {
            self.error(
                start,
                self.pos,
                "unterminated attribute name".into(),
                Some("close it with `]`"),
            );
            return;
        }
        self.pos += 1;
        let Some(source) = source else {
            self.error(
                start,
                start + 1 + source_text.len(),
                format!("unknown attribute source `@{source_text}`"),
                Some("expected `@Request`, `@Resource`, `@Principal` or `@Environment`"),
            );
            return;
        };
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                start,
                self.pos,
                format!("invalid attribute name `{}`", name.escape_debug()),
                None,
            );
            return;
        }
        self.push(Tok::Attr(source, name), start);
    }

    /// A run of letters, digits, `-`, `_`: a GUID, an integer or a word.
    fn bare(&mut self) {
        let start = self.pos;
        // A leading `-` belongs to a negative number only.
        let word = self.take_while(is_bare).to_owned();
        let kind = if crate::audience::is_guid(&word) {
            Some(Tok::Guid(word.clone()))
        } else if word.bytes().all(|b| b.is_ascii_digit())
            || (word.starts_with('-')
                && word.len() > 1
                && word.bytes().skip(1).all(|b| b.is_ascii_digit()))
        {
            match word.parse::<i64>() {
                Ok(i) => Some(Tok::Int(i)),
                Err(_) => {
                    self.error(
                        start,
                        self.pos,
                        format!("integer `{word}` is out of range"),
                        None,
                    );
                    return;
                }
            }
        } else if word.starts_with(|c: char| c.is_ascii_alphabetic())
            && word.chars().all(|c| c.is_ascii_alphanumeric())
        {
            Some(Tok::Word(word.clone()))
        } else {
            None
        };
        match kind {
            Some(k) => self.push(k, start),
            None => self.error(start, self.pos, format!("unexpected `{word}`"), None),
        }
    }
}
