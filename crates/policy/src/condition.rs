//! The condition language of Azure role assignments (conditionVersion 2.0):
//! text → tokens ([`token`]) → AST with spans ([`ast`], [`parser`]), type
//! checked against an attribute schema ([`check`]) and evaluated against the
//! facts of one request ([`eval`]).
//!
//! The module knows nothing about gatehouse's own vocabulary: that lives in
//! `crate::vocabulary`, so tests can check the Azure documentation's storage
//! examples against a schema of their own.

pub mod ast;
pub mod check;
pub mod datetime;
pub mod eval;
pub mod like;
pub mod parser;
pub mod token;

pub use ast::{
    Attr, AttrName, Expr, Func, FuncKind, Literal, Operand, Operator, Quantifier, Source, Span,
};
pub use check::{check, AttrType, Schema, Ty, TypeError};
pub use eval::{evaluate, Evaluation, Facts, Value};
pub use parser::{parse, ParseError, MAX_DEPTH, MAX_LEN};

#[cfg(test)]
mod tests;
