//! The condition AST. Nodes carry byte spans into the condition text for
//! error messages; spans never take part in equality, so an AST printed
//! with `Display` and parsed again compares equal to the original.

use std::fmt;

/// A byte range in the condition text. Always equal to any other span, so
/// layout does not change what an expression is.
#[derive(Debug, Clone, Copy, Default, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub(crate) fn to(self, other: Span) -> Span {
        Span::new(self.start, other.end.max(self.start))
    }
}

/// A condition expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Two or more operands joined by `AND` / `&&`.
    And(Vec<Expr>),
    /// Two or more operands joined by `OR` / `||`.
    Or(Vec<Expr>),
    /// `NOT` / `!`.
    Not(Box<Expr>),
    /// `ActionMatches{'pattern'}`: role-definition wildcard match on the action.
    ActionMatches(String, Span),
    /// `SubOperationMatches{'name'}`.
    SubOperationMatches(String, Span),
    /// `Exists @Source[name]`.
    Exists(Attr),
    /// `left operator right`.
    Compare {
        left: Operand,
        op: Operator,
        right: Operand,
    },
}

/// Where an attribute comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Request,
    Resource,
    Principal,
    Environment,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Request,
        Source::Resource,
        Source::Principal,
        Source::Environment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Request => "Request",
            Source::Resource => "Resource",
            Source::Principal => "Principal",
            Source::Environment => "Environment",
        }
    }
}

/// An attribute's name, split into the forms Azure allows: a plain name,
/// one tag value `base:Key<$key_case_sensitive$>`, or the set of tag keys
/// `base&$keys$&`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttrName {
    Plain(String),
    Key { base: String, key: String },
    Keys { base: String },
}

const KEY_SUFFIX: &str = "<$key_case_sensitive$>";
const KEYS_SUFFIX: &str = "&$keys$&";

impl AttrName {
    /// Split the text between `[` and `]`.
    pub fn from_text(text: &str) -> AttrName {
        if let Some(base) = text.strip_suffix(KEYS_SUFFIX) {
            return AttrName::Keys {
                base: base.to_owned(),
            };
        }
        if let Some(rest) = text.strip_suffix(KEY_SUFFIX) {
            if let Some((base, key)) = rest.rsplit_once(':') {
                return AttrName::Key {
                    base: base.to_owned(),
                    key: key.to_owned(),
                };
            }
        }
        AttrName::Plain(text.to_owned())
    }

    /// The name as the schema knows it: `base:*` stands for any tag key.
    pub fn schema_key(&self) -> String {
        match self {
            AttrName::Plain(s) => s.clone(),
            AttrName::Key { base, .. } => format!("{base}:*{KEY_SUFFIX}"),
            AttrName::Keys { base } => format!("{base}{KEYS_SUFFIX}"),
        }
    }
}

impl fmt::Display for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrName::Plain(s) => f.write_str(s),
            AttrName::Key { base, key } => write!(f, "{base}:{key}{KEY_SUFFIX}"),
            AttrName::Keys { base } => write!(f, "{base}{KEYS_SUFFIX}"),
        }
    }
}

/// `@Source[name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub source: Source,
    pub name: AttrName,
    pub span: Span,
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}[{}]", self.source.as_str(), self.name)
    }
}

/// A literal as written. Typed (a string becoming a date-time or GUID) only
/// when checked against an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Str(String, Span),
    Int(i64, Span),
    Bool(bool, Span),
    /// A bare GUID, as written.
    Guid(String, Span),
}

impl Literal {
    pub fn span(&self) -> Span {
        match self {
            Literal::Str(_, s) | Literal::Int(_, s) | Literal::Bool(_, s) | Literal::Guid(_, s) => {
                *s
            }
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s, _) => write!(f, "'{s}'"),
            Literal::Int(i, _) => write!(f, "{i}"),
            Literal::Bool(b, _) => write!(f, "{b}"),
            Literal::Guid(g, _) => f.write_str(g),
        }
    }
}

/// Either side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Attr(Attr),
    Literal(Literal),
    /// `{a, b, ...}`, possibly empty.
    List(Vec<Literal>, Span),
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Attr(a) => a.span,
            Operand::Literal(l) => l.span(),
            Operand::List(_, s) => *s,
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Attr(a) => a.fmt(f),
            Operand::Literal(l) => l.fmt(f),
            Operand::List(items, _) => {
                f.write_str("{")?;
                for (i, l) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    l.fmt(f)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// The cross-product quantifiers: left set L, right set R.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// ∃l ∃r
    ForAnyOfAnyValues,
    /// ∀l ∃r
    ForAllOfAnyValues,
    /// ∃l ∀r
    ForAnyOfAllValues,
    /// ∀l ∀r
    ForAllOfAllValues,
}

impl Quantifier {
    pub const ALL: [Quantifier; 4] = [
        Quantifier::ForAnyOfAnyValues,
        Quantifier::ForAllOfAnyValues,
        Quantifier::ForAnyOfAllValues,
        Quantifier::ForAllOfAllValues,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Quantifier::ForAnyOfAnyValues => "ForAnyOfAnyValues",
            Quantifier::ForAllOfAnyValues => "ForAllOfAnyValues",
            Quantifier::ForAnyOfAllValues => "ForAnyOfAllValues",
            Quantifier::ForAllOfAllValues => "ForAllOfAllValues",
        }
    }

    /// (for all of the left set?, for all of the right set?)
    pub(crate) fn all_left_all_right(self) -> (bool, bool) {
        match self {
            Quantifier::ForAnyOfAnyValues => (false, false),
            Quantifier::ForAllOfAnyValues => (true, false),
            Quantifier::ForAnyOfAllValues => (false, true),
            Quantifier::ForAllOfAllValues => (true, true),
        }
    }
}

/// What a function compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuncKind {
    StringEquals,
    StringStartsWith,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateTimeEquals,
    DateTimeLessThan,
    DateTimeLessThanEquals,
    DateTimeGreaterThan,
    DateTimeGreaterThanEquals,
    BoolEquals,
    GuidEquals,
}

/// A comparison function: a kind, negated (`StringNotEquals`), and for
/// string functions `IgnoreCase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Func {
    pub kind: FuncKind,
    pub negated: bool,
    pub ignore_case: bool,
}

impl Func {
    /// Every function name with its meaning (the canonical spellings only).
    pub fn all() -> Vec<(String, Func)> {
        use FuncKind::*;
        let mut out = Vec::new();
        let f = |kind, negated, ignore_case| Func {
            kind,
            negated,
            ignore_case,
        };
        for (pos, neg, kind) in [
            ("StringEquals", "StringNotEquals", StringEquals),
            ("StringStartsWith", "StringNotStartsWith", StringStartsWith),
            ("StringLike", "StringNotLike", StringLike),
        ] {
            for ic in [false, true] {
                let sfx = if ic { "IgnoreCase" } else { "" };
                out.push((format!("{pos}{sfx}"), f(kind, false, ic)));
                out.push((format!("{neg}{sfx}"), f(kind, true, ic)));
            }
        }
        for (prefix, eq, lt, le, gt, ge) in [
            (
                "Numeric",
                NumericEquals,
                NumericLessThan,
                NumericLessThanEquals,
                NumericGreaterThan,
                NumericGreaterThanEquals,
            ),
            (
                "DateTime",
                DateTimeEquals,
                DateTimeLessThan,
                DateTimeLessThanEquals,
                DateTimeGreaterThan,
                DateTimeGreaterThanEquals,
            ),
        ] {
            out.push((format!("{prefix}Equals"), f(eq, false, false)));
            out.push((format!("{prefix}NotEquals"), f(eq, true, false)));
            out.push((format!("{prefix}LessThan"), f(lt, false, false)));
            out.push((format!("{prefix}LessThanEquals"), f(le, false, false)));
            out.push((format!("{prefix}GreaterThan"), f(gt, false, false)));
            out.push((format!("{prefix}GreaterThanEquals"), f(ge, false, false)));
        }
        out.push(("BoolEquals".into(), f(BoolEquals, false, false)));
        out.push(("BoolNotEquals".into(), f(BoolEquals, true, false)));
        out.push(("GuidEquals".into(), f(GuidEquals, false, false)));
        out.push(("GuidNotEquals".into(), f(GuidEquals, true, false)));
        out
    }

    /// The function's canonical name.
    pub fn name(&self) -> String {
        Func::all()
            .into_iter()
            .find(|(_, f)| f == self)
            .map(|(n, _)| n)
            .unwrap_or_default()
    }
}

/// `[Quantifier:]Function`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub quantifier: Option<Quantifier>,
    pub func: Func,
    pub span: Span,
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(q) = self.quantifier {
            write!(f, "{}:", q.as_str())?;
        }
        f.write_str(&self.func.name())
    }
}

impl Expr {
    /// Every `ActionMatches` pattern, for lints.
    pub fn action_patterns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::ActionMatches(p, _) = e {
                out.push(p.as_str());
            }
        });
        out
    }

    /// Visit every node, parents first.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| x.walk(f)),
            Expr::Not(x) => x.walk(f),
            _ => {}
        }
    }

    fn is_junction(&self) -> bool {
        matches!(self, Expr::And(_) | Expr::Or(_))
    }
}

/// Prints canonical text: keywords `AND`/`OR`/`NOT`, nested junctions in
/// parentheses. Parsing it gives back an equal AST.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let child = |f: &mut fmt::Formatter<'_>, e: &Expr| {
            if e.is_junction() {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        match self {
            Expr::And(xs) | Expr::Or(xs) => {
                let sep = if matches!(self, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    child(f, x)?;
                }
                Ok(())
            }
            Expr::Not(x) => {
                f.write_str("NOT ")?;
                child(f, x)
            }
            Expr::ActionMatches(p, _) => write!(f, "ActionMatches{{'{p}'}}"),
            Expr::SubOperationMatches(p, _) => write!(f, "SubOperationMatches{{'{p}'}}"),
            Expr::Exists(a) => write!(f, "Exists {a}"),
            Expr::Compare { left, op, right } => write!(f, "{left} {op} {right}"),
        }
    }
}
