//! Tokens → AST, by recursive descent with a depth cap. Each function's doc
//! comment shows the grammar rule it parses (from `conditions.md`).

use std::fmt;

use super::ast::{Attr, AttrName, Expr, Func, Literal, Operand, Operator, Quantifier, Span};
use super::token::{lex, Tok, Token};

/// Longest condition accepted, in bytes (Azure's limit).
pub const MAX_LEN: usize = 8 * 1024;
/// Deepest nesting of parentheses and `NOT` accepted.
pub const MAX_DEPTH: usize = 32;

/// A syntax error at `span` (byte offsets into the condition text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.message, self.span.start)
    }
}

impl std::error::Error for ParseError {}

/// Parse a condition. Every lexical error is reported; parsing stops at the
/// first grammar error, since what follows it cannot be read reliably.
pub fn parse(text: &str) -> Result<Expr, Vec<ParseError>> {
    if text.len() > MAX_LEN {
        return Err(vec![ParseError {
            span: Span::new(0, 0),
            message: format!(
                "condition is {} bytes, more than the limit of {MAX_LEN}",
                text.len()
            ),
            help: None,
        }]);
    }
    let (tokens, mut errors) = lex(text);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
        end: text.len(),
    };
    let result = p.expr().and_then(|e| match p.peek() {
        None => Ok(e),
        Some(t) => Err(p.unexpected(t, "the end of the condition")),
    });
    match result {
        Ok(e) => Ok(e),
        Err(e) => {
            errors.push(e);
            Err(errors)
        }
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    depth: usize,
    end: usize,
}

type PResult<T> = Result<T, ParseError>;

#[derive(PartialEq, Clone, Copy)]
enum Junction {
    And,
    Or,
}

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<&'t Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&'t Token> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn eof_span(&self) -> Span {
        Span::new(self.end, self.end)
    }

    fn unexpected(&self, t: &Token, wanted: &str) -> ParseError {
        ParseError {
            span: t.span,
            message: format!("expected {wanted}, found {}", t.kind.describe()),
            help: None,
        }
    }

    fn eof(&self, wanted: &str) -> ParseError {
        ParseError {
            span: self.eof_span(),
            message: format!("expected {wanted}, found the end of the condition"),
            help: None,
        }
    }

    fn expect(&mut self, want: &Tok, what: &str) -> PResult<Span> {
        match self.next() {
            Some(t) if &t.kind == want => Ok(t.span),
            Some(t) => Err(self.unexpected(t, what)),
            None => Err(self.eof(what)),
        }
    }

    fn junction(&self) -> Option<(Junction, Span)> {
        let t = self.peek()?;
        match &t.kind {
            Tok::AndAnd => Some((Junction::And, t.span)),
            Tok::OrOr => Some((Junction::Or, t.span)),
            Tok::Word(w) if w == "AND" => Some((Junction::And, t.span)),
            Tok::Word(w) if w == "OR" => Some((Junction::Or, t.span)),
            _ => None,
        }
    }

    /// `expr = unary , { and_op , unary } | unary , or_op , unary , { or_op , unary }`
    /// — mixing `AND` and `OR` at one level needs parentheses.
    fn expr(&mut self) -> PResult<Expr> {
        let first = self.unary()?;
        let Some((kind, _)) = self.junction() else {
            return Ok(first);
        };
        let mut items = vec![first];
        while let Some((j, span)) = self.junction() {
            if j != kind {
                return Err(ParseError {
                    span,
                    message: "`AND` and `OR` mixed without parentheses".into(),
                    help: Some(
                        "add parentheses to say which binds first, e.g. `(a AND b) OR c`".into(),
                    ),
                });
            }
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(match kind {
            Junction::And => Expr::And(items),
            Junction::Or => Expr::Or(items),
        })
    }

    /// `unary = not_op , unary | "(" , expr , ")" | predicate`
    fn unary(&mut self) -> PResult<Expr> {
        let Some(t) = self.peek() else {
            return Err(self.eof("an expression"));
        };
        let nests = matches!(&t.kind, Tok::Bang | Tok::LParen)
            || matches!(&t.kind, Tok::Word(w) if w == "NOT");
        if !nests {
            return self.predicate();
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError {
                span: t.span,
                message: format!("condition nests deeper than {MAX_DEPTH} levels"),
                help: None,
            });
        }
        self.pos += 1;
        let e = if t.kind == Tok::LParen {
            let inner = self.expr()?;
            self.expect(&Tok::RParen, "`)`")?;
            inner
        } else {
            Expr::Not(Box::new(self.unary()?))
        };
        self.depth -= 1;
        Ok(e)
    }

    /// `predicate = "ActionMatches" , "{" , string , "}" | "SubOperationMatches" , "{" , string , "}"
    ///            | "Exists" , attribute | operand , operator , operand`
    fn predicate(&mut self) -> PResult<Expr> {
        if let Some(Token {
            kind: Tok::Word(w),
            span,
        }) = self.peek()
        {
            match w.as_str() {
                "ActionMatches" | "SubOperationMatches" => {
                    self.pos += 1;
                    self.expect(&Tok::LBrace, "`{`")?;
                    let s = self.string()?;
                    let end = self.expect(&Tok::RBrace, "`}`")?;
                    let span = span.to(end);
                    return Ok(if w == "ActionMatches" {
                        Expr::ActionMatches(s, span)
                    } else {
                        Expr::SubOperationMatches(s, span)
                    });
                }
                "Exists" => {
                    self.pos += 1;
                    return match self.next() {
                        Some(Token {
                            kind: Tok::Attr(source, name),
                            span,
                        }) => Ok(Expr::Exists(Attr {
                            source: *source,
                            name: AttrName::from_text(name),
                            span: *span,
                        })),
                        Some(t) => Err(self.unexpected(t, "an attribute after `Exists`")),
                        None => Err(self.eof("an attribute after `Exists`")),
                    };
                }
                _ => {}
            }
        }
        let left = self.operand()?;
        let op = self.operator()?;
        let right = self.operand()?;
        Ok(Expr::Compare { left, op, right })
    }

    fn string(&mut self) -> PResult<String> {
        match self.next() {
            Some(Token {
                kind: Tok::Str(s), ..
            }) => Ok(s.clone()),
            Some(t) => Err(self.unexpected(t, "a string in single quotes")),
            None => Err(self.eof("a string in single quotes")),
        }
    }

    /// `operand = attribute | literal | list`
    fn operand(&mut self) -> PResult<Operand> {
        let Some(t) = self.peek() else {
            return Err(self.eof("an attribute, a literal or a list"));
        };
        if let Tok::Attr(source, name) = &t.kind {
            self.pos += 1;
            return Ok(Operand::Attr(Attr {
                source: *source,
                name: AttrName::from_text(name),
                span: t.span,
            }));
        }
        if t.kind == Tok::LBrace {
            return self.list();
        }
        self.literal().map(Operand::Literal)
    }

    /// `list = "{" , [ literal , { "," , literal } ] , "}"`
    fn list(&mut self) -> PResult<Operand> {
        let start = self.expect(&Tok::LBrace, "`{`")?;
        let mut items = Vec::new();
        if let Some(Token {
            kind: Tok::RBrace,
            span,
        }) = self.peek()
        {
            self.pos += 1;
            return Ok(Operand::List(items, start.to(*span)));
        }
        loop {
            items.push(self.literal()?);
            match self.next() {
                Some(Token {
                    kind: Tok::Comma, ..
                }) => {}
                Some(Token {
                    kind: Tok::RBrace,
                    span,
                }) => return Ok(Operand::List(items, start.to(*span))),
                Some(t) => return Err(self.unexpected(t, "`,` or `}`")),
                None => return Err(self.eof("`,` or `}`")),
            }
        }
    }

    /// `literal = string | integer | "true" | "false" | guid`
    fn literal(&mut self) -> PResult<Literal> {
        let wanted = "an attribute, a literal or a list";
        let Some(t) = self.next() else {
            return Err(self.eof(wanted));
        };
        match &t.kind {
            Tok::Str(s) => Ok(Literal::Str(s.clone(), t.span)),
            Tok::Int(i) => Ok(Literal::Int(*i, t.span)),
            Tok::Guid(g) => Ok(Literal::Guid(g.clone(), t.span)),
            Tok::Word(w) if w == "true" => Ok(Literal::Bool(true, t.span)),
            Tok::Word(w) if w == "false" => Ok(Literal::Bool(false, t.span)),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => {
                Err(ParseError {
                    span: t.span,
                    message: format!("`{w}` is not a keyword"),
                    help: Some(format!("write `{}`", w.to_ascii_lowercase())),
                })
            }
            _ => Err(self.unexpected(t, wanted)),
        }
    }

    /// `operator = [ quantifier , ":" ] , function`
    fn operator(&mut self) -> PResult<Operator> {
        let wanted = "an operator such as `StringEquals`";
        let Some(t) = self.next() else {
            return Err(self.eof(wanted));
        };
        let Tok::Word(first) = &t.kind else {
            return Err(self.unexpected(t, wanted));
        };
        let mut quantifier = None;
        let mut name = first;
        let mut span = t.span;
        if let Some(q) = Quantifier::ALL.into_iter().find(|q| q.as_str() == first) {
            quantifier = Some(q);
            self.expect(&Tok::Colon, "`:` after the quantifier")?;
            match self.next() {
                Some(Token {
                    kind: Tok::Word(w),
                    span: s,
                }) => {
                    name = w;
                    span = span.to(*s);
                }
                Some(t) => return Err(self.unexpected(t, "a function name after the quantifier")),
                None => return Err(self.eof("a function name after the quantifier")),
            }
        }
        let all = Func::all();
        if let Some((_, func)) = all.iter().find(|(n, _)| n == name) {
            return Ok(Operator {
                quantifier,
                func: *func,
                span,
            });
        }
        let names = all.iter().map(|(n, _)| n.as_str());
        let canonical = names.clone().find(|n| n.eq_ignore_ascii_case(name));
        let help = match canonical {
            Some(c) => Some(format!("keywords are case-sensitive: write `{c}`")),
            None => crate::suggest::closest(name, names).map(|c| format!("did you mean `{c}`?")),
        };
        Err(ParseError {
            span,
            message: format!("unknown operator `{name}`"),
            help,
        })
    }
}
