use super::{escape, page, render, Roff};

fn roff(md: &str) -> String {
    let mut out = Roff::default();
    render(md, &mut out);
    out.buf
}

#[test]
fn each_markdown_element_becomes_its_roff() {
    // (markdown, a fragment the roff must contain)
    let cases: &[(&str, &str)] = &[
        ("## Modes\n", ".SH \"MODES\"\n"),
        ("### Attributes\n", ".SS \"Attributes\"\n"),
        ("## `gatehouse check`\n", ".SH \"GATEHOUSE CHECK\"\n"),
        ("a `uid:1001` b\n", "a \\fBuid:1001\\fR b"),
        ("*it* and **bold**\n", "\\fIit\\fR and \\fBbold\\fR"),
        ("x\n.y starts a line\n", "x\n\\&.y starts a line"),
        ("a-b\n", "a\\-b"),
        ("```toml\nversion = 1   # x\n  indented\n```\n", ".nf\nversion = 1   # x\n  indented\n.fi"),
        ("```\n.dot\n\n```\n", ".nf\n\\&.dot\n"),
        ("- one\n- two\n", ".IP \\(bu 4\none\n.IP \\(bu 4\ntwo"),
        ("1. first\n2. second\n", ".IP 1. 4\nfirst\n.IP 2. 4\nsecond"),
        (
            "| a | b |\n|---|---|\n| `x` | y z |\n",
            ".TS\nallbox tab(\t);\nlB lB\nlx lx.\nT{\na\nT}\tT{\nb\nT}\nT{\n\\fBx\\fR\nT}\tT{\ny z\nT}\n.TE",
        ),
        // long code words in a table cell may break after / . : ] -
        (
            "| a |\n|---|\n| `@Resource[x]/a-b.c` |\n",
            "\\fB@Resource[x]\\:/\\:a\\-\\:b.\\:c\\fR",
        ),
        // ... but not elsewhere
        ("`a/b`\n", "\\fBa/b\\fR"),
    ];
    for (md, want) in cases {
        let got = roff(md);
        assert!(
            got.contains(want),
            "{md:?}\n--- got:\n{got}\n--- want:\n{want}"
        );
    }
}

#[test]
fn escapes_what_roff_would_read_as_a_request_or_an_escape() {
    let cases = [
        ("a\\b", "a\\eb"),
        ("--strict", "\\-\\-strict"),
        ("\"q\"", "\\(dqq\\(dq"),
        ("it's", "it\\(aqs"),
        ("→", "\\(->"),
    ];
    for (input, want) in cases {
        assert_eq!(escape(input), want, "{input:?}");
    }
}

#[test]
fn the_page_carries_every_section_of_docs_policy_md() {
    let page = page("9.9.9");
    assert!(page.starts_with("'\\\" t\n.TH GATEHOUSE\\-POLICY 5 "));
    assert!(page.contains("\"gatehouse 9.9.9\""));
    let headings: Vec<&str> = super::POLICY_MD
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    assert!(headings.len() >= 8, "{headings:?}");
    for h in headings {
        let want = format!(".SH \"{}\"", escape(&h.replace('`', "").to_uppercase()));
        assert!(page.contains(&want), "no `{want}`");
    }
    // Nothing of the markdown's own syntax is left over.
    assert!(!page.contains("```"));
    assert!(!page.contains("|---"));
}
