//! Property: printing a condition AST and parsing it back gives the same AST.

use gatehouse_policy::condition::{
    parse, Attr, AttrName, Expr, Func, Literal, Operand, Operator, Quantifier, Source, Span,
};
use proptest::prelude::*;

fn literal() -> impl Strategy<Value = Literal> {
    let sp = Span::default();
    prop_oneof![
        "[a-zA-Z0-9 /*?._-]{0,8}".prop_map(move |s| Literal::Str(s, sp)),
        any::<i64>().prop_map(move |i| Literal::Int(i, sp)),
        any::<bool>().prop_map(move |b| Literal::Bool(b, sp)),
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
            .prop_map(move |g| Literal::Guid(g, sp)),
    ]
}

fn attr() -> impl Strategy<Value = Attr> {
    (
        proptest::sample::select(&Source::ALL[..]),
        prop_oneof![
            "[a-zA-Z][a-zA-Z0-9/.:]{0,10}",
            "tags:[A-Za-z]{1,5}<\\$key_case_sensitive\\$>",
            Just("tags&$keys$&".to_owned())
        ],
    )
        .prop_map(|(source, name)| Attr {
            source,
            name: AttrName::from_text(&name),
            span: Span::default(),
        })
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        attr().prop_map(Operand::Attr),
        literal().prop_map(Operand::Literal),
        proptest::collection::vec(literal(), 0..3).prop_map(|v| Operand::List(v, Span::default())),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    let funcs: Vec<Func> = Func::all().into_iter().map(|(_, f)| f).collect();
    prop_oneof![
        "[a-zA-Z/*]{1,12}".prop_map(|s| Expr::ActionMatches(s, Span::default())),
        "[a-zA-Z.]{1,12}".prop_map(|s| Expr::SubOperationMatches(s, Span::default())),
        attr().prop_map(Expr::Exists),
        (
            operand(),
            proptest::option::of(proptest::sample::select(&Quantifier::ALL[..])),
            proptest::sample::select(funcs),
            operand()
        )
            .prop_map(|(left, quantifier, func, right)| Expr::Compare {
                left,
                op: Operator {
                    quantifier,
                    func,
                    span: Span::default()
                },
                right
            }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn print_then_parse_is_identity(e in expr()) {
        let text = e.to_string();
        let back = parse(&text);
        prop_assert_eq!(back.as_ref().ok(), Some(&e), "{}", text);
    }
}
