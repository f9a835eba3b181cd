//! Property tests of the request text: it reads back as the request that
//! wrote it, and no input makes the parser panic.

use std::net::IpAddr;

use gatehouse_jit::knock::{PortRequest, MAX_DURATION_SECS};
use proptest::prelude::*;

/// Free text as the protocol allows it: no control characters, no line or
/// paragraph separators, no bidi controls.
fn text(max: usize) -> impl Strategy<Value = String> {
    let forbidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    // Mostly ASCII (where `=`, spaces and digits live), some of everything else.
    let c = prop_oneof![3 => proptest::char::range(' ', '~'), 1 => any::<char>()]
        .prop_map(move |c| if forbidden(c) { '=' } else { c });
    prop::collection::vec(c, 1..=max).prop_map(|chars| chars.into_iter().collect())
}

fn source() -> impl Strategy<Value = IpAddr> {
    any::<IpAddr>().prop_filter("a single host's canonical address", |ip| {
        let mapped = matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
        !mapped
            && !ip.is_unspecified()
            && !ip.is_multicast()
            && *ip != IpAddr::from([255, 255, 255, 255])
    })
}

prop_compose! {
    fn request()(
        port in 1..=u16::MAX,
        protocol in prop_oneof!["tcp", "udp"],
        source in source(),
        duration_secs in 1..=MAX_DURATION_SECS,
        reason in text(512),
        ticket in prop::option::of(text(128)),
        nonce in "[0-9a-f]{32}",
        timestamp in any::<u64>(),
        host in prop::option::of("[A-Za-z0-9._:-]{1,253}"),
    ) -> PortRequest {
        PortRequest { port, protocol, source, duration_secs, reason, ticket, nonce, timestamp, host }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn message_reads_back_as_the_request(r in request()) {
        let message = r.message();
        prop_assert_eq!(PortRequest::parse_message(&message).unwrap(), r.clone());
        prop_assert!(r.validate().is_ok());
    }

    #[test]
    fn parse_message_never_panics_on_any_string(s in ".*") {
        let _ = PortRequest::parse_message(&s);
    }

    /// Mostly-valid messages reach deeper than random strings: splice
    /// arbitrary text into a real message. Whatever parses must print back
    /// to the same text (one spelling per request).
    #[test]
    fn spliced_messages_parse_canonically_or_not_at_all(r in request(), at in any::<prop::sample::Index>(), cut in 0usize..40, insert in ".{0,40}") {
        let message = r.message();
        let mut chars: Vec<char> = message.chars().collect();
        let i = at.index(chars.len() + 1);
        let end = (i + cut).min(chars.len());
        chars.splice(i..end, insert.chars());
        let spliced: String = chars.into_iter().collect();
        if let Ok(back) = PortRequest::parse_message(&spliced) {
            prop_assert_eq!(back.message(), spliced);
        }
    }
}
