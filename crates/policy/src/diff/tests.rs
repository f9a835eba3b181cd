use super::*;

const IDS: &str = r#"
version = 1
[identities.system]
kind = "system"
object_id = "0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607"
[identities.storage-writer]
kind = "user"
client_id = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809"
"#;

/// The same identities, the user-assigned one under another name.
const IDS_RENAMED: &str = r#"
version = 1
[identities.blob]
kind = "user"
client_id = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809"
[identities.system]
kind = "system"
object_id = "0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607"
"#;

fn load(ids: &str, body: &str) -> Policy {
    let text = format!("{ids}\n{body}");
    crate::parse("p.toml", &text).unwrap_or_else(|d| panic!("{d:?}\n{text}"))
}

fn token(principal: &str, identity: &str, audience: &str) -> Access {
    Access {
        principal: principal.to_owned(),
        action: Action::TokenRead,
        identity: identity.to_owned(),
        audience: audience.to_owned(),
    }
}

fn assignment(
    name: &str,
    principal: &str,
    identities: &str,
    audiences: &str,
    extra: &str,
) -> String {
    format!(
        "[[assignments]]\nname = \"{name}\"\nprincipal = \"{principal}\"\nrole = \"Token Reader\"\nidentities = {identities}\naudiences = {audiences}\n{extra}\n"
    )
}

const STORAGE: &str = r#"["storage-writer"]"#;
const AUD: &str = r#"["https://storage.azure.com"]"#;

#[test]
fn what_changes_nothing_prints_nothing() {
    let base = load(
        IDS,
        &[
            assignment("a", "uid:1", STORAGE, AUD, "condition = \"@Principal[uid] NumericEquals 1 AND @Request[apiVersion] StringEquals '2018-02-01'\""),
            assignment("b", "unit:x.service", r#"["system"]"#, r#"["https://management.azure.com"]"#, ""),
        ]
        .concat(),
    );
    let same: &[(&str, String)] = &[
        ("itself", [
            assignment("a", "uid:1", STORAGE, AUD, "condition = \"@Principal[uid] NumericEquals 1 AND @Request[apiVersion] StringEquals '2018-02-01'\""),
            assignment("b", "unit:x.service", r#"["system"]"#, r#"["https://management.azure.com"]"#, ""),
        ].concat()),
        ("reordered, renamed, respelt", [
            assignment("renamed-b", "unit:x.service", r#"["system"]"#, r#"["https://Management.azure.com/.default"]"#, ""),
            assignment("renamed-a", "uid:1", STORAGE, r#"["https://storage.azure.com/"]"#, "condition = '''\n  (@Principal[uid] NumericEquals 1)\n  && @Request[apiVersion] StringEquals '2018-02-01'\n'''"),
        ].concat()),
        ("split in two", [
            assignment("a", "uid:1", STORAGE, AUD, "condition = \"@Principal[uid] NumericEquals 1 AND @Request[apiVersion] StringEquals '2018-02-01'\""),
            assignment("b1", "unit:x.service", r#"["system"]"#, r#"["https://management.azure.com"]"#, ""),
            assignment("b2", "unit:x.service", r#"["system"]"#, r#"["https://management.azure.com"]"#, ""),
        ].concat()),
    ];
    for (what, body) in same {
        let other = load(IDS, body);
        assert_eq!(diff(&base, &other), vec![], "{what}");
        assert_eq!(diff(&other, &base), vec![], "{what}, backwards");
    }
    // An identity renamed (same client id) and `*` for the full list.
    let old = load(
        IDS,
        &assignment("a", "uid:1", r#"["storage-writer", "system"]"#, AUD, ""),
    );
    let new = load(IDS_RENAMED, &assignment("z", "uid:1", r#"["*"]"#, AUD, ""));
    assert_eq!(diff(&old, &new), vec![]);
}

#[test]
fn gains_losses_and_conditions() {
    let base = load(IDS, &assignment("a", "uid:1", STORAGE, AUD, ""));
    let cond = "@Principal[uid] NumericEquals 1";
    let when = || When::If(BTreeSet::from([cond.to_owned()]));
    let rows: Vec<(&str, String, Vec<Change>)> = vec![
        (
            "another principal",
            [assignment("a", "uid:1", STORAGE, AUD, ""), assignment("b", "uid:2", STORAGE, AUD, "")].concat(),
            vec![Change::Gained { access: token("uid:2", "storage-writer", "https://storage.azure.com"), when: When::Always }],
        ),
        (
            "moved to another audience",
            assignment("a", "uid:1", STORAGE, r#"["https://vault.azure.net"]"#, ""),
            vec![
                Change::Gained { access: token("uid:1", "storage-writer", "https://vault.azure.net"), when: When::Always },
                Change::Lost { access: token("uid:1", "storage-writer", "https://storage.azure.com"), when: When::Always },
            ],
        ),
        (
            // Widened to any audience: the old one is not lost.
            "widened",
            assignment("a", "uid:1", STORAGE, r#"["*"]"#, ""),
            vec![Change::Gained { access: token("uid:1", "storage-writer", "*"), when: When::Always }],
        ),
        (
            "a condition added",
            assignment("a", "uid:1", STORAGE, AUD, &format!("condition = \"{cond}\"")),
            vec![Change::ConditionChanged {
                access: token("uid:1", "storage-writer", "https://storage.azure.com"),
                old: When::Always,
                new: when(),
            }],
        ),
        (
            // An unconditioned grant beside the conditioned one bypasses it.
            "a condition bypassed",
            [assignment("a", "uid:1", STORAGE, AUD, &format!("condition = \"{cond}\"")), assignment("b", "uid:1", STORAGE, AUD, "")].concat(),
            vec![],
        ),
        (
            "made just in time",
            assignment("a", "uid:1", STORAGE, AUD, "eligible = true\nmax_duration = \"1h\"\nauto_approve = true"),
            vec![
                Change::EligibleGained {
                    access: token("uid:1", "storage-writer", "https://storage.azure.com"),
                    how: HowActivated {
                        max_duration_secs: 3600,
                        require_justification: true,
                        require_ticket: false,
                        approvers: BTreeSet::new(),
                        auto_approve: "always".to_owned(),
                        when: When::Always,
                    },
                },
                Change::Lost { access: token("uid:1", "storage-writer", "https://storage.azure.com"), when: When::Always },
            ],
        ),
        (
            "denied to it",
            format!("{}[[deny_assignments]]\nname = \"d\"\nprincipals = [\"uid:1\"]\nactions = [\"Gatehouse/token/read\"]\nidentities = [\"storage-writer\"]\naudiences = [\"*\"]\n", assignment("a", "uid:1", STORAGE, AUD, "")),
            vec![Change::DenyGained { access: token("uid:1", "storage-writer", "*"), excluded: BTreeSet::new() }],
        ),
        (
            "audit mode",
            format!("[modes]\ntoken = \"audit\"\n{}", assignment("a", "uid:1", STORAGE, AUD, "")),
            vec![Change::Mode { family: "token", old: "enforce", new: "audit" }],
        ),
        (
            "trusted services off",
            format!("trusted_services = false\n{}", assignment("a", "uid:1", STORAGE, AUD, "")),
            vec![Change::Trusted { setting: "trusted_services", old: true, new: false }],
        ),
    ];
    for (what, body, want) in rows {
        let mut want = want;
        want.sort();
        // Settings go before the identities' tables.
        let (settings, rest) = match body.find("[[") {
            Some(i) if !body.starts_with("[[") => body.split_at(i),
            _ => ("", body.as_str()),
        };
        let text = if settings.is_empty() {
            format!("{IDS}\n{rest}")
        } else {
            format!(
                "version = 1\n{settings}{}\n{rest}",
                IDS.trim_start().trim_start_matches("version = 1")
            )
        };
        let other =
            crate::parse("p.toml", &text).unwrap_or_else(|d| panic!("{what}: {d:?}\n{text}"));
        assert_eq!(diff(&base, &other), want, "{what}");
    }
}

#[test]
fn activation_changes_are_eligibility_changes() {
    let jit = |max: &str| {
        load(
            IDS,
            &assignment(
                "j",
                "group:ops",
                STORAGE,
                AUD,
                &format!("eligible = true\nmax_duration = \"{max}\"\napprovers = [\"group:adm\"]"),
            ),
        )
    };
    let changes = diff(&jit("1h"), &jit("2h"));
    assert!(
        matches!(changes.as_slice(), [Change::EligibleChanged { old, new, .. }] if old.max_duration_secs == 3600 && new.max_duration_secs == 7200),
        "{changes:?}"
    );
    assert_eq!(diff(&jit("1h"), &jit("60m")), vec![]);
}
