use super::DateTime;

#[test]
fn converts_known_instants() {
    let cases: &[(u64, &str, &str)] = &[
        (0, "01/01/70 00:00:00 -0000", "19700101-000000"),
        (951_782_400, "02/29/00 00:00:00 -0000", "20000229-000000"),
        (1_700_000_000, "11/14/23 22:13:20 -0000", "20231114-221320"),
        (1_735_689_599, "12/31/24 23:59:59 -0000", "20241231-235959"),
    ];
    for (secs, attested, compact) in cases {
        let dt = DateTime::from_unix(*secs);
        assert_eq!(dt.attested(), *attested, "secs {secs}");
        assert_eq!(dt.compact(), *compact, "secs {secs}");
    }
}
