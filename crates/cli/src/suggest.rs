//! `gatehouse policy suggest --from-audit FILES`: the policy that grants
//! exactly what the audit log shows was asked for, at the narrowest
//! principal the evidence supports, with the evidence beside each grant.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_policy::{Action, Policy, Reason};

use crate::evidence::{self, Decided};

#[derive(clap::Args)]
pub struct Args {
    /// Audit logs to learn from (each with its rotated predecessors):
    /// recorded in audit mode, or the denials of enforce mode.
    #[arg(long = "from-audit", value_name = "FILES", required = true, num_args = 1..)]
    from_audit: Vec<PathBuf>,
    /// The policy in force when they were recorded: its identities are
    /// copied, and what it already allows is not suggested again with
    /// `--patch`.
    #[arg(long, default_value = "/etc/gatehouse/policy.toml")]
    policy: PathBuf,
    /// Print a patch (unified diff) that adds to `--policy` only what it
    /// does not allow yet, instead of a whole new policy.
    #[arg(long)]
    patch: bool,
    /// Read only the files named, not their rotated predecessors.
    #[arg(long)]
    single: bool,
    /// Widen on purpose: one assignment per principal and identity, for
    /// any audience (`audiences = ["*"]`). Off: only the audiences seen.
    #[arg(long)]
    any_audience: bool,
}

/// Who the evidence says asked, as narrowly as it shows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Unit(String),
    ExeHash(String),
    Uid(u32),
}

impl Who {
    fn of(d: &Decided<'_>) -> Who {
        let c = d.caller;
        // Process principals need every holder to match; the record has
        // the facts of the first only.
        let one_holder = c.holders.len() <= 1 && c.pid.is_some();
        match (&c.unit, &c.exe_sha256) {
            (Some(unit), _) if one_holder && !unit.is_empty() => Who::Unit(unit.clone()),
            (_, Some(hash)) if one_holder && hash.len() == 64 => {
                Who::ExeHash(hash.to_ascii_lowercase())
            }
            _ => Who::Uid(c.uid),
        }
    }

    fn principal(&self) -> String {
        match self {
            Who::Unit(u) => format!("unit:{u}"),
            Who::ExeHash(h) => format!("exe:sha256:{h}"),
            Who::Uid(u) => format!("uid:{u}"),
        }
    }

    fn slug(&self) -> String {
        let raw = match self {
            Who::Unit(u) => u.trim_end_matches(".service").to_owned(),
            Who::ExeHash(h) => format!("exe-{}", h.get(..12).unwrap_or(h)),
            Who::Uid(u) => format!("uid-{u}"),
        };
        raw.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    }
}

/// What is granted: a token (identity) or other actions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    Token(String),
    Other,
}

#[derive(Debug, Default)]
struct Evidence {
    count: u64,
    first: String,
    last: String,
    uids: BTreeSet<u32>,
    audiences: BTreeSet<String>,
    actions: BTreeSet<&'static str>,
    exe: BTreeSet<String>,
}

impl Evidence {
    fn add(&mut self, d: &Decided<'_>, audience: Option<String>) {
        self.count += 1;
        let t = &d.entry.time;
        if self.first.is_empty() || *t < self.first {
            self.first.clone_from(t);
        }
        if *t > self.last {
            self.last.clone_from(t);
        }
        self.uids.insert(d.caller.uid);
        self.audiences.extend(audience);
        self.actions.insert(d.action.as_str());
        self.exe.extend(d.caller.exe.clone());
    }
}

/// Would an eligible assignment of `policy` allow this, once activated?
fn jit_could(
    policy: &Policy,
    caller: &gatehouse_policy::Caller,
    request: &gatehouse_policy::Request<'_>,
) -> bool {
    let (Some(uid), Some(identity), Some(at)) = (caller.uid, request.identity, request.now) else {
        return false;
    };
    let second = std::time::Duration::from_secs(1);
    let grants: Vec<gatehouse_policy::Grant> = policy
        .assignments()
        .filter(|a| a.eligible.is_some())
        .map(|a| gatehouse_policy::Grant {
            id: "suggest".to_owned(),
            assignment: a.name.clone(),
            uid,
            identity: identity.to_owned(),
            audience: None,
            starts: at.checked_sub(second).unwrap_or(at),
            expires: at + second,
        })
        .collect();
    let d = policy.decide_with(caller, request, &grants);
    d.is_allowed() && !d.would_deny() && d.decided_by().iter().any(|n| n.contains(" (jit "))
}

/// A string as TOML writes it (JSON's escapes are TOML's).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A TOML key: bare when it can be.
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        s.to_owned()
    } else {
        q(s)
    }
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| q(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// What the suggestion is made of.
struct Suggestion {
    /// Custom roles (name → actions), for actions other than tokens.
    roles: BTreeMap<String, BTreeSet<&'static str>>,
    text: String,
    assignments: usize,
    /// Requests the assignments stand on.
    evidence: u64,
    skipped_denied: u64,
    skipped_jit: u64,
}

fn role_name(actions: &BTreeSet<&'static str>) -> String {
    let short: Vec<&str> = actions
        .iter()
        .map(|a| a.strip_prefix("Gatehouse/").unwrap_or(a))
        .collect();
    format!("Observed {}", short.join(" + "))
}

fn suggest(
    decided: &[Decided<'_>],
    policy: &Policy,
    grants: &[gatehouse_policy::Grant],
    patch: bool,
    any_audience: bool,
) -> Suggestion {
    let mut groups: BTreeMap<(Who, What), Evidence> = BTreeMap::new();
    let mut skipped_denied = 0;
    let mut skipped_jit = 0;
    let mut machine = evidence::Groups::default();
    for d in decided {
        let audience = evidence::audience(d.record);
        let caller = evidence::caller(&mut machine, d.caller, d.trusted.is_some());
        let request = evidence::request(d, audience.as_deref());
        let now = policy.decide_with(&caller, &request, grants);
        let allowed = now.is_allowed() && !now.would_deny();
        match now.reason() {
            // A deny assignment wins over any grant: suggesting one would
            // change nothing, and leaving the deny out would widen.
            Reason::ExplicitDeny => {
                skipped_denied += 1;
                continue;
            }
            // Allowed without an assignment: it stays so.
            Reason::TrustedService(_) => continue,
            _ => {}
        }
        let by_jit_only =
            !now.decided_by().is_empty() && now.decided_by().iter().all(|n| n.contains(" (jit "));
        if allowed && (patch || by_jit_only) {
            // Already allowed (with --patch), or allowed through a
            // just-in-time grant: standing access would widen it.
            if !patch {
                skipped_jit += 1;
            }
            continue;
        }
        if d.action.is_token() && (request.identity.is_none() || audience.is_none()) {
            continue;
        }
        if !allowed && jit_could(policy, &caller, &request) {
            // The policy already offers it just in time: asked for before
            // an activation, it is no reason for standing access.
            skipped_jit += 1;
            continue;
        }
        let what = match (d.action, &d.record.request.identity) {
            (Action::TokenRead, Some(id)) => What::Token(id.clone()),
            _ => What::Other,
        };
        groups
            .entry((Who::of(d), what))
            .or_default()
            .add(d, audience);
    }
    let taken: BTreeSet<String> = policy
        .assignments()
        .map(|a| a.name.clone())
        .chain(policy.deny_assignments().map(|a| a.name.clone()))
        .collect();
    let mut names = taken.clone();
    let mut roles = BTreeMap::new();
    let mut text = String::new();
    for ((who, what), ev) in &groups {
        let (base, role, scope) = match what {
            What::Token(identity) => {
                let audiences = if any_audience {
                    list(["*"])
                } else {
                    list(&ev.audiences)
                };
                (
                    format!("{}-{identity}", who.slug()),
                    "Token Reader".to_owned(),
                    format!(
                        "identities = {}\naudiences = {audiences}\n",
                        list([identity])
                    ),
                )
            }
            What::Other => {
                let name = role_name(&ev.actions);
                roles.insert(name.clone(), ev.actions.clone());
                (format!("{}-metadata", who.slug()), name, String::new())
            }
        };
        let mut name = base.clone();
        for n in 2.. {
            if !names.contains(&name) {
                break;
            }
            name = format!("{base}-{n}");
        }
        names.insert(name.clone());
        let uids: Vec<String> = ev.uids.iter().map(u32::to_string).collect();
        text.push_str(&format!(
            "\n# evidence: {} request{} by uid {}{}, first {}, last {}\n",
            ev.count,
            if ev.count == 1 { "" } else { "s" },
            uids.join(", "),
            if ev.exe.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    ev.exe.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            },
            ev.first,
            ev.last
        ));
        text.push_str(&format!(
            "[[assignments]]\nname = {}\nprincipal = {}\nrole = {}\n{scope}",
            q(&name),
            q(&who.principal()),
            q(&role)
        ));
        // The uid ran a process the gate saw, so it exists where the
        // evidence was recorded: an account missing here (the evidence
        // came from another machine, or a container's uid) is said, and
        // accepted, rather than failing `check --strict`.
        if let Who::Uid(u) = who {
            use gatehouse_policy::Machine as _;
            if !crate::check::ThisMachine.uid_exists(*u) {
                text.push_str(&format!(
                    "# uid {u} has no account on this machine; it was seen in the audit\nallow_warnings = [\"orphan\"]\n"
                ));
            }
        }
        // A unit or an executable, and only the uids seen running it.
        if !matches!(who, Who::Uid(_)) {
            let pins: Vec<String> = ev
                .uids
                .iter()
                .map(|u| format!("@Principal[uid] NumericEquals {u}"))
                .collect();
            text.push_str(&format!("condition = {}\n", q(&pins.join(" OR "))));
        }
    }
    let taken_roles: BTreeSet<String> = policy.roles().map(|r| r.name.to_lowercase()).collect();
    roles.retain(|name, _| !taken_roles.contains(&name.to_lowercase()));
    Suggestion {
        roles,
        text,
        assignments: groups.len(),
        evidence: groups.values().map(|e| e.count).sum(),
        skipped_denied,
        skipped_jit,
    }
}

fn roles_text(roles: &BTreeMap<String, BTreeSet<&'static str>>) -> String {
    roles
        .iter()
        .map(|(name, actions)| {
            format!(
                "\n[[roles]]\nname = {}\nactions = {}\n",
                q(name),
                list(actions)
            )
        })
        .collect()
}

fn identities_text(policy: &Policy) -> String {
    let mut out = String::new();
    for i in policy.identities() {
        out.push_str(&format!("\n[identities.{}]\n", key(&i.name)));
        out.push_str(&format!("kind = {}\n", q(i.kind.as_str())));
        for (key, value) in [
            ("client_id", &i.client_id),
            ("object_id", &i.object_id),
            ("resource_id", &i.resource_id),
            ("role", &i.role),
            ("email", &i.email),
        ] {
            if let Some(v) = value {
                out.push_str(&format!("{key} = {}\n", q(v)));
            }
        }
        if i.default_account {
            out.push_str("default = true\n");
        }
        if !i.tags.is_empty() {
            out.push_str(&format!("[identities.{}.tags]\n", key(&i.name)));
            for (k, v) in &i.tags {
                out.push_str(&format!("{} = {}\n", key(k), q(v)));
            }
        }
    }
    out
}

fn scope_text(scope: &gatehouse_policy::Scope) -> String {
    match scope {
        gatehouse_policy::Scope::Any => list(["*"]),
        gatehouse_policy::Scope::Only(v) => list(v),
    }
}

/// What of `policy` a suggestion keeps: deny assignments (they bound
/// everything) and eligible assignments (access just in time stays so),
/// with the custom roles they name.
fn kept_text(policy: &Policy) -> String {
    let mut out = String::new();
    let eligible: Vec<&gatehouse_policy::Assignment> = policy
        .assignments()
        .filter(|a| a.eligible.is_some())
        .collect();
    let used: BTreeSet<String> = eligible.iter().map(|a| a.role.to_lowercase()).collect();
    for role in policy
        .roles()
        .filter(|r| !r.builtin && used.contains(&r.name.to_lowercase()))
    {
        out.push_str(&format!(
            "\n[[roles]]\nname = {}\nactions = {}\n",
            q(&role.name),
            list(&role.actions)
        ));
        if !role.not_actions.is_empty() {
            out.push_str(&format!("not_actions = {}\n", list(&role.not_actions)));
        }
    }
    for d in policy.deny_assignments() {
        out.push_str(&format!(
            "\n# kept from the current policy\n[[deny_assignments]]\nname = {}\nprincipals = {}\nactions = {}\n",
            q(&d.name),
            list(d.principals.iter().map(ToString::to_string)),
            list(&d.actions)
        ));
        if !d.excluded_principals.is_empty() {
            out.push_str(&format!(
                "excluded_principals = {}\n",
                list(d.excluded_principals.iter().map(ToString::to_string))
            ));
        }
        if !d.not_actions.is_empty() {
            out.push_str(&format!("not_actions = {}\n", list(&d.not_actions)));
        }
        out.push_str(&format!(
            "identities = {}\naudiences = {}\n",
            scope_text(&d.identities),
            scope_text(&d.audiences)
        ));
    }
    for a in eligible {
        let Some(e) = &a.eligible else { continue };
        out.push_str(&format!(
            "\n# kept from the current policy (just in time)\n[[assignments]]\nname = {}\nprincipal = {}\nrole = {}\nidentities = {}\naudiences = {}\n",
            q(&a.name),
            q(&a.principal.to_string()),
            q(&a.role),
            scope_text(&a.identities),
            scope_text(&a.audiences)
        ));
        if let Some(c) = &a.condition {
            out.push_str(&format!("condition = {}\n", q(&c.text)));
        }
        out.push_str(&format!(
            "eligible = true\nmax_duration = {}\nrequire_justification = {}\nrequire_ticket = {}\n",
            q(&gatehouse_policy::format_duration(e.max_duration)),
            e.require_justification,
            e.require_ticket
        ));
        if !e.approvers.is_empty() {
            out.push_str(&format!(
                "approvers = {}\n",
                list(e.approvers.iter().map(ToString::to_string))
            ));
        }
        match &e.auto_approve {
            gatehouse_policy::AutoApprove::Never => {}
            gatehouse_policy::AutoApprove::Always => out.push_str("auto_approve = true\n"),
            gatehouse_policy::AutoApprove::When(c) => {
                out.push_str(&format!("auto_approve_condition = {}\n", q(&c.text)));
            }
        }
        if !a.allow_warnings.is_empty() {
            out.push_str(&format!("allow_warnings = {}\n", list(&a.allow_warnings)));
        }
    }
    out
}

/// A unified diff that appends `added` to `old` (the last lines as context).
fn append_patch(name: &str, old: &str, added: &str) -> String {
    let old_lines: Vec<&str> = old.lines().collect();
    let context = old_lines.len().min(3);
    let start = old_lines.len() - context;
    let mut body = String::new();
    for l in old_lines.get(start..).unwrap_or_default() {
        body.push_str(&format!(" {l}\n"));
    }
    if !old.is_empty() && !old.ends_with('\n') {
        body.push_str("\\ No newline at end of file\n");
    }
    let new_lines: Vec<&str> = added.lines().collect();
    for l in &new_lines {
        body.push_str(&format!("+{l}\n"));
    }
    format!(
        "--- a/{name}\n+++ b/{name}\n@@ -{},{context} +{},{} @@\n{body}",
        start + 1,
        start + 1,
        context + new_lines.len()
    )
}

pub fn main(args: Args) -> ExitCode {
    let name = args.policy.display().to_string();
    let text = match std::fs::read_to_string(&args.policy) {
        Ok(t) => t,
        Err(e) => return crate::fail(&format!("cannot read `{name}`: {e}"), None),
    };
    let policy = match gatehouse_policy::parse(&name, &text) {
        Ok(p) => p,
        Err(d) => {
            return crate::fail(
                &format!("`{name}` does not load ({} errors)", d.error_count()),
                Some(&format!("`gatehouse check --policy {name}` lists them")),
            )
        }
    };
    let entries = match evidence::read(&args.from_audit, args.single) {
        Ok(e) => e,
        Err(e) => return crate::fail(&e, None),
    };
    let decided = evidence::decided(&entries);
    let grants = evidence::grants(&entries);
    let s = suggest(&decided, &policy, &grants, args.patch, args.any_audience);
    if s.skipped_denied > 0 {
        eprintln!(
            "gatehouse: {} request(s) a deny assignment blocks were left out",
            s.skipped_denied
        );
    }
    if s.skipped_jit > 0 {
        eprintln!(
            "gatehouse: {} request(s) an eligible assignment covers were left out (they stay just in time)",
            s.skipped_jit
        );
    }
    if args.patch {
        if s.assignments == 0 {
            eprintln!("gatehouse: `{name}` already allows everything the audit log shows");
            return ExitCode::SUCCESS;
        }
        let added = format!(
            "\n# Suggested by `gatehouse policy suggest --patch` from {} request(s) it did not allow.\n{}{}",
            s.evidence,
            roles_text(&s.roles),
            s.text
        );
        print!("{}", append_patch(&name, &text, &added));
        return ExitCode::SUCCESS;
    }
    let trusted = policy.trusted_services();
    print!(
        "# Suggested by `gatehouse policy suggest` from {} request(s):\n\
# each assignment grants what the audit log shows was asked for, to the\n\
# narrowest principal it shows (a unit or an executable hash, pinned to\n\
# the uids seen; else the uid). Review it, replay it (`gatehouse check\n\
# --replay`), then put it in force. Modes are left at enforce; deny\n\
# assignments and eligible (just-in-time) assignments are kept as they were.\n\
version = 1\n\n\
trusted_services = {}\n\
trusted_services_approve = {}\n{}{}{}{}",
        s.evidence,
        trusted.enabled,
        trusted.approve,
        identities_text(&policy),
        roles_text(&s.roles),
        kept_text(&policy),
        s.text
    );
    ExitCode::SUCCESS
}
