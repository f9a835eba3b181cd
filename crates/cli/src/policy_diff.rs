//! `gatehouse policy diff OLD NEW`: what changes in meaning (the analysis
//! is `gatehouse_policy::diff`; this prints it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gatehouse_policy::{Access, Change, HowActivated, Policy, When};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// The policy as it is.
    old: PathBuf,
    /// The policy as it would be.
    new: PathBuf,
    /// One JSON object per line, one per change.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Line {
    change: &'static str,
    principal: Option<String>,
    action: Option<&'static str>,
    identity: Option<String>,
    audience: Option<String>,
    old: Option<String>,
    new: Option<String>,
}

fn when(w: &When) -> String {
    match w {
        When::Always => "always".to_owned(),
        When::If(conditions) => conditions
            .iter()
            .map(|c| format!("when `{c}`"))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn how(h: &HowActivated) -> String {
    let mut s = format!(
        "for up to {}",
        gatehouse_policy::format_duration(std::time::Duration::from_secs(h.max_duration_secs))
    );
    if h.require_justification {
        s.push_str(", with a justification");
    }
    if h.require_ticket {
        s.push_str(", with a ticket");
    }
    if !h.approvers.is_empty() {
        s.push_str(&format!(
            ", approved by {}",
            h.approvers.iter().cloned().collect::<Vec<_>>().join(" or ")
        ));
    }
    match h.auto_approve.as_str() {
        "never" => {}
        "always" => s.push_str(", approved automatically"),
        c => s.push_str(&format!(", approved automatically when `{c}`")),
    }
    if h.when != When::Always {
        s.push_str(&format!(", {}", when(&h.when)));
    }
    s
}

fn line(c: &Change) -> Line {
    let of = |change, a: &Access, old: Option<String>, new: Option<String>| Line {
        change,
        principal: Some(a.principal.clone()),
        action: Some(a.action.as_str()),
        identity: (a.identity != "-").then(|| a.identity.clone()),
        audience: (a.audience != "-").then(|| a.audience.clone()),
        old,
        new,
    };
    let excluded = |e: &std::collections::BTreeSet<String>| {
        (!e.is_empty()).then(|| {
            format!(
                "except {}",
                e.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    };
    match c {
        Change::Gained { access, when: w } => of("gained", access, None, Some(when(w))),
        Change::Lost { access, when: w } => of("lost", access, Some(when(w)), None),
        Change::ConditionChanged { access, old, new } => of(
            "condition_changed",
            access,
            Some(when(old)),
            Some(when(new)),
        ),
        Change::EligibleGained { access, how: h } => {
            of("eligible_gained", access, None, Some(how(h)))
        }
        Change::EligibleLost { access, how: h } => of("eligible_lost", access, Some(how(h)), None),
        Change::EligibleChanged { access, old, new } => {
            of("eligible_changed", access, Some(how(old)), Some(how(new)))
        }
        Change::DenyGained {
            access,
            excluded: e,
        } => of("deny_gained", access, None, excluded(e)),
        Change::DenyLost {
            access,
            excluded: e,
        } => of("deny_lost", access, excluded(e), None),
        Change::Mode { family, old, new } => Line {
            change: "mode",
            principal: None,
            action: None,
            identity: Some((*family).to_owned()),
            audience: None,
            old: Some((*old).to_owned()),
            new: Some((*new).to_owned()),
        },
        Change::Trusted { setting, old, new } => Line {
            change: "trusted_services",
            principal: None,
            action: None,
            identity: Some((*setting).to_owned()),
            audience: None,
            old: Some(old.to_string()),
            new: Some(new.to_string()),
        },
    }
}

fn human(l: &Line) -> String {
    let what = match (&l.action, &l.identity, &l.audience) {
        (Some(a), Some(i), Some(aud)) => format!("{a} as {i} for {aud}"),
        (Some(a), _, _) => (*a).to_owned(),
        _ => String::new(),
    };
    let p = l.principal.clone().unwrap_or_default();
    let old = l.old.clone().unwrap_or_default();
    let new = l.new.clone().unwrap_or_default();
    match l.change {
        "gained" => format!("+ {p} may {what} ({new})"),
        "lost" => format!("- {p} may no longer {what} (was {old})"),
        "condition_changed" => format!("~ {p} may {what}: {old} → {new}"),
        "eligible_gained" => format!("+ {p} may ask for {what} just in time ({new})"),
        "eligible_lost" => format!("- {p} may no longer ask for {what} just in time (was {old})"),
        "eligible_changed" => format!("~ {p} asks for {what} just in time: {old} → {new}"),
        "deny_gained" => format!(
            "+ {p} is denied {what}{}",
            l.new
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
        "deny_lost" => format!(
            "- {p} is no longer denied {what}{}",
            l.old
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
        other => format!(
            "~ {other} {}: {old} → {new}",
            l.identity.clone().unwrap_or_default()
        ),
    }
}

fn load(path: &Path) -> Result<Policy, ExitCode> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::fail(&format!("cannot read `{name}`: {e}"), None))?;
    gatehouse_policy::parse(&name, &text).map_err(|d| {
        crate::fail(
            &format!("`{name}` does not load ({} errors)", d.error_count()),
            Some(&format!("`gatehouse check --policy {name}` lists them")),
        )
    })
}

/// Exit 0: the same in meaning; 1: changes (printed); 2: a policy does not load.
pub fn main(args: Args) -> ExitCode {
    let (old, new) = match (load(&args.old), load(&args.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let changes = gatehouse_policy::diff(&old, &new);
    for c in &changes {
        let l = line(c);
        if args.json {
            match serde_json::to_string(&l) {
                Ok(t) => println!("{t}"),
                Err(e) => return crate::fail(&format!("cannot print the change: {e}"), None),
            }
        } else {
            println!("{}", human(&l));
        }
    }
    if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
