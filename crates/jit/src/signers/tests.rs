use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ssh_key::PublicKey;

use super::{glob, time, AllowedSigners};

const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIjOWuog2BQEU9b16X1uQVwO/FGTNTjOR5oM7xQRPPK4";
const B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGU9Y3kjm76nqdgvsuyJx6hM9+MKy+LNM2EDHfD0Maz2";
const NS: &str = "gatehouse-jit@v1";

fn key(text: &str) -> PublicKey {
    PublicKey::from_openssh(text).unwrap()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// 2025-01-01T00:00:00Z
const JAN_2025: u64 = 1_735_689_600;

#[test]
fn glob_matches_like_openssh() {
    for (pattern, text, expected) in [
        ("alice", "alice", true),
        ("alice", "alicex", false),
        ("alice", "Alice", false),
        ("*", "", true),
        ("*", "anything", true),
        ("*@example.com", "bob@example.com", true),
        ("*@example.com", "bob@example.org", false),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        ("gatehouse-*@v1", NS, true),
        ("**", "x", true),
        ("", "", true),
        ("", "x", false),
        ("é?", "éü", true),
    ] {
        assert_eq!(glob(pattern, text), expected, "glob({pattern:?}, {text:?})");
    }
}

#[test]
fn times_are_utc_and_checked() {
    for (value, expected) in [
        ("19700101Z", Some(0)),
        ("20250101Z", Some(JAN_2025)),
        ("\"20250101Z\"", Some(JAN_2025)),
        ("202501010001Z", Some(JAN_2025 + 60)),
        ("20250101000001z", Some(JAN_2025 + 1)),
        ("20240229Z", Some(1_709_164_800)),
        ("20000229Z", Some(951_782_400)),
        ("21000229Z", None),
        ("20230229Z", None),
        ("20250101", None),
        ("2025010Z", None),
        ("202501011Z", None),
        ("20251301Z", None),
        ("20250132Z", None),
        ("20250101240000Z", None),
        ("19691231Z", None),
        ("+0250101Z", None),
        ("\"20250101Z", None),
        ("", None),
    ] {
        assert_eq!(
            time::parse(1, "valid-after", value).ok(),
            expected,
            "{value:?}"
        );
    }
}

#[test]
fn missing_z_says_why() {
    let e = time::parse(3, "valid-before", "20250101").unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("`Z`"), "{e}");
    assert!(e.help.contains("20250131Z"), "{e}");
}

#[test]
fn good_files_parse() {
    for (text, entries) in [
        ("", 0),
        ("# only a comment\n\n   \n\t# indented comment\n", 0),
        (&format!("alice {A}"), 1),
        (&format!("alice {A} alice@laptop with a comment"), 1),
        (&format!("  alice,bob@example.com\t{A}\r\n"), 1),
        (&format!("alice namespaces=\"{NS}\" {A}"), 1),
        (&format!("alice NAMESPACES=\"file,gatehouse-*\" {A}"), 1),
        (
            &format!(
                "alice namespaces=\"{NS}\",valid-after=20250101Z,valid-before=\"20260101Z\" {A}"
            ),
            1,
        ),
        (&format!("alice {A}\nbob {B}\n"), 2),
    ] {
        let parsed = AllowedSigners::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        assert_eq!(parsed.len(), entries, "{text:?}");
        assert_eq!(parsed.is_empty(), entries == 0);
    }
}

#[test]
fn bad_lines_each_say_what_to_fix() {
    for (line, needle) in [
        (format!("alice cert-authority {A}"), "cert-authority"),
        (
            format!("*@example.com cert-authority,namespaces=\"{NS}\" {A}"),
            "cert-authority",
        ),
        ("alice".to_owned(), "missing key"),
        ("alice ssh-ed25519".to_owned(), "missing the base64 key"),
        ("alice ssh-ed25519 AAAA".to_owned(), "does not parse"),
        (
            "alice ssh-ed25519-cert-v01@openssh.com AAAA".to_owned(),
            "certificate",
        ),
        (format!("alice namespaces={NS} {A}"), "not quoted"),
        (format!("alice namespaces=\"\" {A}"), "empty or negated"),
        (
            format!("alice namespaces=\"!file\" {A}"),
            "empty or negated",
        ),
        (format!("alice valid-after=20250101 {A}"), "`Z`"),
        (
            format!("alice valid-after=20250101Z,valid-after=20250102Z {A}"),
            "twice",
        ),
        (
            format!("alice valid-after=20260101Z,valid-before=20250101Z {A}"),
            "never valid",
        ),
        (format!("alice valid-after {A}"), "needs a value"),
        (format!("alice no-touch-required {A}"), "unknown option"),
        (format!("alice,,bob {A}"), "empty principal"),
        (format!("!mallory {A}"), "negated principal"),
        (format!("\"alice smith\" {A}"), "quoted principals"),
        (
            format!("alice ssh-foo {}", A.split(' ').nth(1).unwrap()),
            "does not parse",
        ),
    ] {
        let errors = AllowedSigners::parse(&line).expect_err(&line);
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains(needle) && e.line == 1 && !e.help.is_empty()),
            "{line:?}: want `{needle}`, got {errors:?}"
        );
    }
}

#[test]
fn every_bad_line_is_reported_at_once() {
    let text = format!("# header\nalice {A}\nbob cert-authority {B}\n\ncarol valid-before=2025 {A}\ndave ssh-ed25519\n");
    let errors = AllowedSigners::parse(&text).unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 5, 6], "{errors:?}");
    assert!(
        errors[0].to_string().starts_with("line 3: "),
        "{}",
        errors[0]
    );
}

#[test]
fn principal_is_the_first_named_on_the_first_applicable_line() {
    let file = AllowedSigners::parse(&format!(
        "# wildcard-only: says who may sign, cannot name the requester\n\
         *@example.com,?ob {A}\n\
         alice@example.com,*,alice2 namespaces=\"file\" {A}\n\
         alice-old valid-before=20250101Z {A}\n\
         alice-new valid-after=20250101Z {A}\n\
         bob namespaces=\"gatehouse-*\" {B}\n"
    ))
    .unwrap();
    let (a, b) = (key(A), key(B));
    for (key, namespace, now, expected) in [
        (&a, NS, JAN_2025 - 1, Some("alice-old")),
        (&a, NS, JAN_2025, Some("alice-old")), // both bounds inclusive, as in OpenSSH
        (&a, NS, JAN_2025 + 1, Some("alice-new")),
        (&a, "file", JAN_2025 + 1, Some("alice@example.com")),
        (&b, NS, 0, Some("bob")),
        (&b, "file", 0, None),
    ] {
        assert_eq!(
            file.principal_for(key, namespace, at(now)).as_deref(),
            expected,
            "{namespace} at {now}"
        );
    }
    let only_wildcards = AllowedSigners::parse(&format!("* {A}\n*@x,a?c {B}")).unwrap();
    assert_eq!(only_wildcards.principal_for(&a, NS, at(0)), None);
    assert_eq!(only_wildcards.principal_for(&b, NS, at(0)), None);
}

#[test]
fn key_comment_does_not_matter() {
    let file = AllowedSigners::parse(&format!("alice {A} one-comment")).unwrap();
    let with_other_comment = key(&format!("{A} another@host"));
    assert_eq!(
        file.principal_for(&with_other_comment, NS, at(0))
            .as_deref(),
        Some("alice")
    );
}

#[test]
fn debug_shows_fingerprints_not_key_bytes() {
    let file = AllowedSigners::parse(&format!("alice {A}")).unwrap();
    let debug = format!("{file:?}");
    assert!(debug.contains("SHA256:"), "{debug}");
    assert!(!debug.contains("AAAAC3Nza"), "{debug}");
}
