//! Evaluating a checked condition against the facts of one request.
//!
//! Evaluation is left to right and short-circuits, so Azure's block pattern
//! `!(ActionMatches{..}) OR (<expression>)` never looks at attributes the
//! request does not have. But once evaluation *needs* an attribute that is
//! absent, the whole condition is false, whatever `NOT`s surround it: a
//! missing attribute must never turn into an allow.

use std::fmt;

use super::ast::{Attr, Expr, Func, FuncKind, Literal, Operand, Operator};
use super::check::{func_ty, Ty};
use super::datetime::{self, Nanos};
use crate::wildcard;

/// A fact's value, as the vocabulary supplies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Time(Nanos),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "'{s}'"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Time(t) => write!(f, "'{}'", datetime::format(*t)),
        }
    }
}

/// What a request offers a condition.
pub trait Facts {
    /// The action being performed, e.g. `Gatehouse/token/read`.
    fn action(&self) -> &str;
    /// The sub-operation, if the action has one.
    fn sub_operation(&self) -> Option<&str>;
    /// The attribute's values (one for a single-valued attribute, possibly
    /// none for a set), or `None` when it is absent for this request.
    fn value(&self, attr: &Attr) -> Option<Vec<Value>>;
}

/// A condition's outcome and what it looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub value: bool,
    /// Set when the condition is false because this attribute was absent.
    pub absent: Option<String>,
    /// Each attribute read, with its values as text (`{}` for an empty set).
    pub used: Vec<(String, String)>,
}

/// Evaluate `expr` (already type checked) against `facts`.
pub fn evaluate(expr: &Expr, facts: &dyn Facts) -> Evaluation {
    let mut used = Vec::new();
    match eval(expr, facts, &mut used) {
        Ok(value) => Evaluation {
            value,
            absent: None,
            used,
        },
        Err(Absent(name)) => Evaluation {
            value: false,
            absent: Some(name),
            used,
        },
    }
}

struct Absent(String);

fn eval(e: &Expr, facts: &dyn Facts, used: &mut Vec<(String, String)>) -> Result<bool, Absent> {
    Ok(match e {
        Expr::And(xs) => {
            for x in xs {
                if !eval(x, facts, used)? {
                    return Ok(false);
                }
            }
            true
        }
        Expr::Or(xs) => {
            for x in xs {
                if eval(x, facts, used)? {
                    return Ok(true);
                }
            }
            false
        }
        Expr::Not(x) => !eval(x, facts, used)?,
        Expr::ActionMatches(p, _) => wildcard::matches_ignore_case(p, facts.action()),
        Expr::SubOperationMatches(p, _) => facts
            .sub_operation()
            .is_some_and(|s| s.eq_ignore_ascii_case(p)),
        Expr::Exists(a) => {
            let v = facts.value(a);
            used.push((
                a.to_string(),
                v.as_deref().map_or_else(|| "absent".to_owned(), render),
            ));
            v.is_some()
        }
        Expr::Compare { left, op, right } => {
            let ty = func_ty(op.func.kind);
            let l = operand(left, ty, facts, used)?;
            let r = operand(right, ty, facts, used)?;
            compare(op, &l, &r)
        }
    })
}

fn render(values: &[Value]) -> String {
    match values {
        [one] => one.to_string(),
        many => format!(
            "{{{}}}",
            many.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A value converted to the function's type; `None` where it does not convert.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
    Time(Nanos),
}

fn from_literal(l: &Literal, ty: Ty) -> Option<Scalar> {
    match (l, ty) {
        (Literal::Str(s, _), Ty::String) => Some(Scalar::Str(s.clone())),
        (Literal::Int(i, _), Ty::Integer) => Some(Scalar::Int(*i)),
        (Literal::Bool(b, _), Ty::Boolean) => Some(Scalar::Bool(*b)),
        (Literal::Str(s, _), Ty::DateTime) => datetime::parse(s).map(Scalar::Time),
        (Literal::Str(s, _) | Literal::Guid(s, _), Ty::Guid) => guid(s),
        _ => None,
    }
}

fn guid(s: &str) -> Option<Scalar> {
    crate::audience::is_guid(s).then(|| Scalar::Str(s.to_ascii_lowercase()))
}

fn from_value(v: &Value, ty: Ty) -> Option<Scalar> {
    match (v, ty) {
        (Value::Str(s), Ty::String) => Some(Scalar::Str(s.clone())),
        (Value::Str(s), Ty::Guid) => guid(s),
        (Value::Str(s), Ty::DateTime) => datetime::parse(s).map(Scalar::Time),
        (Value::Int(i), Ty::Integer) => Some(Scalar::Int(*i)),
        (Value::Bool(b), Ty::Boolean) => Some(Scalar::Bool(*b)),
        (Value::Time(t), Ty::DateTime) => Some(Scalar::Time(*t)),
        _ => None,
    }
}

/// An operand as a set of scalars; `Some(None)`-like failures (a value that
/// does not convert) make the set `None`, which compares false.
fn operand(
    o: &Operand,
    ty: Ty,
    facts: &dyn Facts,
    used: &mut Vec<(String, String)>,
) -> Result<Option<Vec<Scalar>>, Absent> {
    Ok(match o {
        Operand::Literal(l) => from_literal(l, ty).map(|s| vec![s]),
        Operand::List(items, _) => items.iter().map(|l| from_literal(l, ty)).collect(),
        Operand::Attr(a) => {
            let Some(values) = facts.value(a) else {
                used.push((a.to_string(), "absent".to_owned()));
                return Err(Absent(a.to_string()));
            };
            used.push((a.to_string(), render(&values)));
            values.iter().map(|v| from_value(v, ty)).collect()
        }
    })
}

fn compare(op: &Operator, l: &Option<Vec<Scalar>>, r: &Option<Vec<Scalar>>) -> bool {
    let (Some(l), Some(r)) = (l, r) else {
        return false;
    };
    let f = |a: &Scalar, b: &Scalar| apply(&op.func, a, b);
    match op.quantifier {
        None => match (l.as_slice(), r.as_slice()) {
            ([a], [b]) => f(a, b),
            _ => false,
        },
        // An empty set on either side yields false for every quantifier:
        // a process with no supplementary groups satisfies no group
        // condition by accident (not even a vacuous "for all").
        Some(_) if l.is_empty() || r.is_empty() => false,
        Some(q) => {
            let (all_l, all_r) = q.all_left_all_right();
            let inner = |a: &Scalar| {
                if all_r {
                    r.iter().all(|b| f(a, b))
                } else {
                    r.iter().any(|b| f(a, b))
                }
            };
            if all_l {
                l.iter().all(inner)
            } else {
                l.iter().any(inner)
            }
        }
    }
}

fn apply(func: &Func, a: &Scalar, b: &Scalar) -> bool {
    use FuncKind::*;
    let Some(result) = (match (a, b) {
        (Scalar::Str(a), Scalar::Str(b)) => {
            let fold = |s: &str| {
                if func.ignore_case {
                    s.to_lowercase()
                } else {
                    s.to_owned()
                }
            };
            match func.kind {
                StringEquals | GuidEquals => Some(fold(a) == fold(b)),
                StringStartsWith => Some(fold(a).starts_with(&fold(b))),
                StringLike if func.ignore_case => Some(super::like::matches_ignore_case(b, a)),
                StringLike => Some(super::like::matches(b, a)),
                _ => None,
            }
        }
        (Scalar::Int(a), Scalar::Int(b)) => ordered(func.kind, a.cmp(b)),
        (Scalar::Time(a), Scalar::Time(b)) => ordered(func.kind, a.cmp(b)),
        (Scalar::Bool(a), Scalar::Bool(b)) if func.kind == BoolEquals => Some(a == b),
        _ => None,
    }) else {
        return false;
    };
    result != func.negated
}

fn ordered(kind: FuncKind, o: std::cmp::Ordering) -> Option<bool> {
    use std::cmp::Ordering::*;
    use FuncKind::*;
    Some(match kind {
        NumericEquals | DateTimeEquals => o == Equal,
        NumericLessThan | DateTimeLessThan => o == Less,
        NumericLessThanEquals | DateTimeLessThanEquals => o != Greater,
        NumericGreaterThan | DateTimeGreaterThan => o == Greater,
        NumericGreaterThanEquals | DateTimeGreaterThanEquals => o != Less,
        _ => return None,
    })
}
