//! Can a condition ever be true? A search over a small model of the facts.
//!
//! Each attribute the condition reads gets a few candidate values built from
//! the literals it is compared with (each literal, its neighbours, one value
//! equal to none of them, one that extends it); a multi-valued attribute gets
//! the empty set, each candidate alone and all of them. Every combination is
//! evaluated with the real evaluator, for every action of the role. What the
//! assignment itself fixes narrows the model: the uid or user of a `uid:` or
//! `user:` principal, a group it must be in, the identities it is scoped to.
//!
//! The model only ever over-approximates what a caller can present, so
//! "never true" is reported only when no caller could satisfy the condition
//! (for the comparisons gatehouse has: equality, order, prefix and `*`/`?`
//! patterns over the literals written). A model too large to search says
//! nothing ([`Verdict::Unknown`]).

use std::collections::BTreeMap;

use crate::condition::{
    datetime, evaluate, Attr, AttrName, Expr, Facts, Literal, Operand, Schema, Source, Ty, Value,
};
use crate::principal::Principal;
use crate::vocabulary::GatehouseSchema;

/// A token request's identity is one the assignment is scoped to.
const IDENTITY_NAME: &str = "@Resource[name]";

/// Combinations evaluated at most (per condition).
const MAX_MODELS: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No facts make it true.
    Never,
    /// Some facts make it true.
    Sometimes,
    /// Too many combinations to tell.
    Unknown,
}

/// What the assignment fixes about every request its condition sees.
pub(crate) struct Context<'a> {
    /// The role's actions (`Gatehouse/token/read`, …).
    pub actions: Vec<&'static str>,
    pub principal: &'a Principal,
    /// Identity names the assignment is scoped to, `None` for any.
    pub identities: Option<&'a [String]>,
}

/// One attribute of the model: its key (as written, `@Source[name]`) and
/// the values it may take (each a set, one element for a single value).
struct Dimension {
    key: String,
    choices: Vec<Vec<Value>>,
}

pub(crate) fn can_be_true(expr: &Expr, ctx: &Context<'_>) -> Verdict {
    let Some(dims) = dimensions(expr, ctx) else {
        return Verdict::Unknown;
    };
    let models = dims.iter().try_fold(ctx.actions.len().max(1), |n, d| {
        n.checked_mul(d.choices.len().max(1))
    });
    if models.is_none_or(|n| n > MAX_MODELS) {
        return Verdict::Unknown;
    }
    let mut pick = vec![0usize; dims.len()];
    loop {
        for action in &ctx.actions {
            let facts = Model {
                action,
                values: dims
                    .iter()
                    .zip(&pick)
                    .filter_map(|(d, i)| d.choices.get(*i).map(|c| (d.key.as_str(), c)))
                    .collect(),
            };
            if evaluate(expr, &facts).value {
                return Verdict::Sometimes;
            }
        }
        // Next combination (odometer).
        let mut carried = true;
        for (slot, d) in pick.iter_mut().zip(&dims) {
            *slot += 1;
            if *slot < d.choices.len() {
                carried = false;
                break;
            }
            *slot = 0;
        }
        if carried {
            return Verdict::Never;
        }
    }
}

struct Model<'m> {
    action: &'m str,
    values: BTreeMap<&'m str, &'m Vec<Value>>,
}

impl Facts for Model<'_> {
    fn action(&self) -> &str {
        self.action
    }
    fn sub_operation(&self) -> Option<&str> {
        None
    }
    fn value(&self, attr: &Attr) -> Option<Vec<Value>> {
        if attr.source == Source::Request && attr.name == AttrName::Plain("action".into()) {
            return Some(vec![Value::Str(self.action.to_owned())]);
        }
        self.values
            .get(attr.to_string().as_str())
            .map(|v| (*v).clone())
    }
}

/// The model's attributes, or `None` when one is unknown to the schema.
fn dimensions(expr: &Expr, ctx: &Context<'_>) -> Option<Vec<Dimension>> {
    // Attribute key -> (its type, whether it is a set, the literals seen).
    let mut seen: BTreeMap<String, (Ty, bool, Vec<Literal>)> = BTreeMap::new();
    let mut linked: Vec<(String, String)> = Vec::new();
    let mut unknown = false;
    let mut note =
        |a: &Attr, lits: &[Literal], seen: &mut BTreeMap<String, (Ty, bool, Vec<Literal>)>| {
            match GatehouseSchema.attribute(a.source, &a.name) {
                Some(t) => seen
                    .entry(a.to_string())
                    .or_insert_with(|| (t.ty, t.multi, Vec::new()))
                    .2
                    .extend(lits.iter().cloned()),
                None => unknown = true,
            }
        };
    expr.walk(&mut |e| match e {
        Expr::Exists(a) => note(a, &[], &mut seen),
        Expr::Compare { left, right, .. } => {
            let lits = |o: &Operand| match o {
                Operand::Literal(l) => vec![l.clone()],
                Operand::List(items, _) => items.clone(),
                Operand::Attr(_) => Vec::new(),
            };
            match (left, right) {
                (Operand::Attr(a), Operand::Attr(b)) => {
                    note(a, &[], &mut seen);
                    note(b, &[], &mut seen);
                    linked.push((a.to_string(), b.to_string()));
                }
                (Operand::Attr(a), other) | (other, Operand::Attr(a)) => {
                    note(a, &lits(other), &mut seen);
                }
                _ => {}
            }
        }
        _ => {}
    });
    if unknown {
        return None;
    }
    let mut values: BTreeMap<String, Vec<Value>> = seen
        .iter()
        .map(|(key, (ty, _, lits))| (key.clone(), candidates(*ty, lits)))
        .collect();
    // Attributes compared with each other may be equal: share candidates.
    for (a, b) in &linked {
        let mut both = values.get(a).cloned().unwrap_or_default();
        both.extend(values.get(b).cloned().unwrap_or_default());
        dedup(&mut both);
        values.insert(a.clone(), both.clone());
        values.insert(b.clone(), both);
    }
    let mut dims = Vec::new();
    for (key, (ty, multi, lits)) in &seen {
        let mut vals = values.get(key).cloned().unwrap_or_default();
        if let Some(fixed) = fixed_value(key, ctx) {
            vals = vec![fixed];
        }
        if let (IDENTITY_NAME, Some(names)) = (key.as_str(), ctx.identities) {
            vals = names.iter().map(|n| Value::Str(n.clone())).collect();
        }
        let choices = if *multi {
            sets(&vals, &raw_values(*ty, lits), member(key, ctx))
        } else {
            vals.into_iter().map(|v| vec![v]).collect()
        };
        dims.push(Dimension {
            key: key.clone(),
            choices,
        });
    }
    Some(dims)
}

/// Candidate values of a set attribute: the empty set, each candidate,
/// each pair, the literals exactly, all of them; with `must` (a group the
/// principal implies) in every one.
fn sets(vals: &[Value], raw: &[Value], must: Option<Value>) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    out.extend(vals.iter().map(|v| vec![v.clone()]));
    for (i, a) in vals.iter().enumerate() {
        for b in vals.iter().skip(i + 1) {
            out.push(vec![a.clone(), b.clone()]);
        }
    }
    out.push(raw.to_vec());
    out.push(vals.to_vec());
    if let Some(m) = must {
        for set in &mut out {
            set.push(m.clone());
            dedup(set);
        }
    }
    let mut unique: Vec<Vec<Value>> = Vec::with_capacity(out.len());
    for set in out {
        if !unique.contains(&set) {
            unique.push(set);
        }
    }
    unique
}

/// The literals themselves, as values of `ty`.
fn raw_values(ty: Ty, lits: &[Literal]) -> Vec<Value> {
    let mut out: Vec<Value> = lits
        .iter()
        .filter_map(|l| match (l, ty) {
            (Literal::Str(s, _) | Literal::Guid(s, _), Ty::String | Ty::Guid) => {
                Some(Value::Str(s.clone()))
            }
            (Literal::Int(n, _), Ty::Integer) => Some(Value::Int(*n)),
            (Literal::Bool(b, _), Ty::Boolean) => Some(Value::Bool(*b)),
            (Literal::Str(s, _), Ty::DateTime) => datetime::parse(s).map(Value::Time),
            _ => None,
        })
        .collect();
    dedup(&mut out);
    out
}

/// The one value a single-valued attribute has for every caller the
/// principal matches, or the identities the scope allows (`None`: free).
fn fixed_value(key: &str, ctx: &Context<'_>) -> Option<Value> {
    match (key, ctx.principal) {
        ("@Principal[uid]", Principal::Uid(u)) => Some(Value::Int(i64::from(*u))),
        ("@Principal[user]", Principal::User(n)) => Some(Value::Str(n.clone())),
        _ => None,
    }
}

/// A value every caller the principal matches has in this set attribute.
fn member(key: &str, ctx: &Context<'_>) -> Option<Value> {
    match (key, ctx.principal) {
        ("@Principal[groups]", Principal::Group(g)) => Some(Value::Str(g.clone())),
        ("@Principal[gids]", Principal::Gid(g)) => Some(Value::Int(i64::from(*g))),
        _ => None,
    }
}

/// Candidate values of a type, from the literals it is compared with.
fn candidates(ty: Ty, lits: &[Literal]) -> Vec<Value> {
    let mut out = Vec::new();
    match ty {
        Ty::String | Ty::Guid => {
            for l in lits {
                let (Literal::Str(s, _) | Literal::Guid(s, _)) = l else {
                    continue;
                };
                out.push(Value::Str(s.clone()));
                out.push(Value::Str(s.to_ascii_lowercase()));
                out.push(Value::Str(format!("{s}\u{7f}x")));
                out.push(Value::Str(s.replace(['*', '?'], "")));
            }
            let fresh = if ty == Ty::Guid {
                "fffffffe-ffff-4fff-8fff-fffffffffffe"
            } else {
                "\u{1}gatehouse-check"
            };
            out.push(Value::Str(fresh.to_owned()));
        }
        Ty::Integer => {
            for l in lits {
                if let Literal::Int(n, _) = l {
                    out.extend([n.saturating_sub(1), *n, n.saturating_add(1)].map(Value::Int));
                }
            }
            out.push(Value::Int(0));
        }
        Ty::Boolean => out.extend([Value::Bool(true), Value::Bool(false)]),
        Ty::DateTime => {
            for l in lits {
                if let Literal::Str(s, _) = l {
                    if let Some(t) = datetime::parse(s) {
                        out.extend([t.saturating_sub(1), t, t.saturating_add(1)].map(Value::Time));
                    }
                }
            }
            out.push(Value::Time(0));
        }
    }
    dedup(&mut out);
    out
}

fn dedup(values: &mut Vec<Value>) {
    let mut kept: Vec<Value> = Vec::with_capacity(values.len());
    for v in values.drain(..) {
        if !kept.contains(&v) {
            kept.push(v);
        }
    }
    *values = kept;
}
