//! Type checking at load time: every attribute must exist in the schema,
//! and every operand must have the type its function compares, so a
//! DateTime operator on a string attribute is a load error, not a runtime
//! surprise. All errors are reported.

use std::fmt;

use super::ast::{Attr, AttrName, Expr, FuncKind, Literal, Operand, Operator, Source};
use super::datetime;
use super::parser::ParseError;

/// A type error has the same shape as a syntax error.
pub type TypeError = ParseError;

/// The value types of the condition language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Integer,
    Boolean,
    DateTime,
    Guid,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::String => "string",
            Ty::Integer => "integer",
            Ty::Boolean => "boolean",
            Ty::DateTime => "datetime",
            Ty::Guid => "guid",
        })
    }
}

/// An attribute's type; `multi` for a set of values (a quantifier needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrType {
    pub ty: Ty,
    pub multi: bool,
}

/// The attributes a condition may use.
pub trait Schema {
    /// The type of `@source[name]`, or `None` if there is no such attribute.
    fn attribute(&self, source: Source, name: &AttrName) -> Option<AttrType>;
    /// Names known under `source`, for "did you mean" hints.
    fn names(&self, source: Source) -> Vec<String>;
}

/// The type a function compares.
pub fn func_ty(kind: FuncKind) -> Ty {
    use FuncKind::*;
    match kind {
        StringEquals | StringStartsWith | StringLike => Ty::String,
        NumericEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => Ty::Integer,
        DateTimeEquals
        | DateTimeLessThan
        | DateTimeLessThanEquals
        | DateTimeGreaterThan
        | DateTimeGreaterThanEquals => Ty::DateTime,
        BoolEquals => Ty::Boolean,
        GuidEquals => Ty::Guid,
    }
}

/// Can `lit` be read as a value of type `ty`?
pub fn literal_fits(lit: &Literal, ty: Ty) -> bool {
    match (lit, ty) {
        (Literal::Str(_, _), Ty::String) => true,
        (Literal::Str(s, _), Ty::DateTime) => datetime::parse(s).is_some(),
        (Literal::Str(s, _) | Literal::Guid(s, _), Ty::Guid) => crate::audience::is_guid(s),
        (Literal::Int(_, _), Ty::Integer) | (Literal::Bool(_, _), Ty::Boolean) => true,
        _ => false,
    }
}

/// Check `expr` against `schema`; every error found.
pub fn check(expr: &Expr, schema: &dyn Schema) -> Vec<TypeError> {
    let mut errors = Vec::new();
    expr.walk(&mut |e| match e {
        Expr::Exists(a) => {
            lookup(schema, a, &mut errors);
        }
        Expr::Compare { left, op, right } => compare(schema, left, op, right, &mut errors),
        _ => {}
    });
    errors
}

fn err(errors: &mut Vec<TypeError>, span: super::ast::Span, message: String, help: Option<String>) {
    errors.push(ParseError {
        span,
        message,
        help,
    });
}

fn lookup(schema: &dyn Schema, a: &Attr, errors: &mut Vec<TypeError>) -> Option<AttrType> {
    let found = schema.attribute(a.source, &a.name);
    if found.is_none() {
        let names = schema.names(a.source);
        let help = crate::suggest::closest(&a.name.to_string(), names.iter().map(String::as_str))
            .map(|n| format!("did you mean `@{}[{n}]`?", a.source.as_str()))
            .or_else(|| {
                (!names.is_empty())
                    .then(|| format!("`@{}` has: {}", a.source.as_str(), names.join(", ")))
            });
        err(errors, a.span, format!("unknown attribute `{a}`"), help);
    }
    found
}

fn compare(
    schema: &dyn Schema,
    left: &Operand,
    op: &Operator,
    right: &Operand,
    errors: &mut Vec<TypeError>,
) {
    let ty = func_ty(op.func.kind);
    let name = op.func.name();
    if op.quantifier.is_some() && matches!(ty, Ty::DateTime | Ty::Boolean) {
        err(
            errors,
            op.span,
            format!("`{op}`: quantifiers apply only to string, numeric and guid functions"),
            None,
        );
    }
    for operand in [left, right] {
        match operand {
            Operand::Attr(a) => {
                let Some(at) = lookup(schema, a, errors) else {
                    continue;
                };
                if at.ty != ty {
                    err(
                        errors,
                        a.span,
                        format!("`{name}` compares {ty} values, but `{a}` is a {}", at.ty),
                        None,
                    );
                }
                if at.multi && op.quantifier.is_none() {
                    err(
                        errors,
                        a.span,
                        format!("`{a}` has several values"),
                        Some(format!("use a quantifier, e.g. `ForAnyOfAnyValues:{name}`")),
                    );
                }
            }
            Operand::Literal(l) => literal(l, ty, &name, errors),
            Operand::List(items, span) => {
                if op.quantifier.is_none() {
                    err(
                        errors,
                        *span,
                        "a list needs a quantifier".into(),
                        Some(format!("e.g. `ForAnyOfAnyValues:{name}`")),
                    );
                }
                for l in items {
                    literal(l, ty, &name, errors);
                }
            }
        }
    }
}

fn literal(l: &Literal, ty: Ty, name: &str, errors: &mut Vec<TypeError>) {
    if literal_fits(l, ty) {
        return;
    }
    let help = match ty {
        Ty::DateTime => Some("write a date-time as `'2025-01-31T08:00:00.0Z'` (UTC)".to_owned()),
        Ty::Guid => Some("write a GUID as `8-4-4-4-12` hex digits".to_owned()),
        Ty::String => Some("put strings in single quotes".to_owned()),
        Ty::Integer | Ty::Boolean => None,
    };
    err(
        errors,
        l.span(),
        format!("`{name}` compares {ty} values, but `{l}` is not one"),
        help,
    );
}
