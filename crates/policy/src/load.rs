//! Policy file (TOML) → validated [`Policy`], reporting every schema and
//! semantic error in one pass. A TOML syntax error stops before that.

mod condition;
mod fields;
mod jit;
mod settings;

use std::collections::HashMap;
use std::ops::Range;

use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};

use crate::action::{Action, ActionSet};
use crate::audience::{is_guid, normalise_audience};
use crate::diag::Diagnostics;
use crate::identity::{Identity, IdentityKind};
use crate::model::{Assignment, DenyAssignment, Scope, Spans};
use crate::policy::Policy;
use crate::principal::Principal;
use crate::role::{self, Role};
use crate::suggest;
use fields::{Fields, Sink, Str};

const ROOT_KEYS: &[&str] = &[
    "version",
    "identities",
    "roles",
    "assignments",
    "deny_assignments",
    "modes",
    "trusted_services",
    "trusted_services_approve",
    "jit",
    "jit_port",
    "aws_allow_imdsv1",
];
const IDENTITY_KEYS: &[&str] = &[
    "kind",
    "client_id",
    "object_id",
    "resource_id",
    "role",
    "email",
    "default",
    "description",
    "tags",
];
/// The identity keys every kind may have; the others belong to some kinds only.
const KIND_FREE_KEYS: &[&str] = &["kind", "description", "tags"];
const ROLE_KEYS: &[&str] = &["name", "description", "actions", "not_actions"];
/// An assignment's keys; [`jit::ELIGIBLE_KEYS`] come after them.
const ASSIGNMENT_KEYS: &[&str] = &[
    "name",
    "principal",
    "role",
    "identities",
    "audiences",
    "description",
    "condition",
    "condition_version",
    "allow_warnings",
    "eligible",
];
const DENY_KEYS: &[&str] = &[
    "name",
    "principals",
    "excluded_principals",
    "actions",
    "not_actions",
    "identities",
    "audiences",
    "description",
];

/// Parse and validate a policy file. `source_name` only labels diagnostics.
pub fn parse(source_name: &str, text: &str) -> Result<Policy, Diagnostics> {
    let mut sink = Sink {
        source: source_name,
        text,
        diags: Diagnostics::default(),
    };
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            sink.error(span, format!("invalid toml: {}", e.message().trim()), None);
        }
        sink.diags.sort();
        return Err(sink.diags);
    }
    let root_span = 0..0;
    let root = Fields::new(
        &mut sink,
        root.get_ref(),
        root_span,
        "the policy file",
        ROOT_KEYS,
    );
    check_version(&mut sink, &root);
    let identities = load_identities(&mut sink, &root);
    let (roles, role_names) = load_roles(&mut sink, &root);
    let assignments = load_assignments(&mut sink, &root, &identities, &roles, &role_names);
    let deny = load_deny(&mut sink, &root, &identities, &assignments);
    let mut settings = settings::load(&mut sink, &root);
    (settings.break_glass, settings.jit_ports) = jit::load(&mut sink, &root);
    if sink.diags.error_count() > 0 {
        sink.diags.sort();
        return Err(sink.diags);
    }
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    Ok(Policy::new(
        hash,
        identities,
        roles,
        assignments,
        deny,
        settings,
    ))
}

/// `version = 1`, required.
fn check_version(sink: &mut Sink<'_>, root: &Fields<'_, '_>) {
    let Some(v) = root.get("version") else {
        sink.error(
            0..0,
            "missing `version`".into(),
            Some("start the file with `version = 1`".into()),
        );
        return;
    };
    let ok = matches!(v.get_ref(), DeValue::Integer(i) if i.radix() == 10 && i.as_str().trim_start_matches('+') == "1");
    if !ok {
        sink.error(
            v.span(),
            format!(
                "unsupported policy version `{}`",
                sink.text.get(v.span()).unwrap_or_default()
            ),
            Some("this gatehouse reads `version = 1`".into()),
        );
    }
}

/// A policy name (identity, role, assignment): printable, no control chars.
fn check_name(sink: &mut Sink<'_>, what: &str, (name, span): &Str) -> bool {
    let ok =
        !name.is_empty() && name != "*" && name.len() <= 128 && !name.chars().any(char::is_control);
    if !ok {
        sink.error(
            span.clone(),
            format!("invalid {what} name `{}`", name.escape_debug()),
            None,
        );
    }
    ok
}

fn load_identities(sink: &mut Sink<'_>, root: &Fields<'_, '_>) -> Vec<Identity> {
    let mut out: Vec<Identity> = Vec::new();
    let Some((table, _)) = root.opt_table(sink, "identities") else {
        return out;
    };
    let mut system_seen = false;
    let mut ids_seen: HashMap<String, String> = HashMap::new();
    for (key, value) in table.iter() {
        let name: Str = (key.get_ref().to_string(), key.span());
        let Some((t, span)) = fields::as_table(sink, &name.0, value) else {
            continue;
        };
        let f = Fields::new(sink, t, span, "identity", IDENTITY_KEYS);
        let named = check_name(sink, "identity", &name);
        let kind = match f.str(sink, "kind") {
            Some((k, _)) if k == "system" => Some(IdentityKind::System),
            Some((k, _)) if k == "user" => Some(IdentityKind::User),
            Some((k, _)) if k == "aws_role" => Some(IdentityKind::AwsRole),
            Some((k, _)) if k == "gcp_service_account" => Some(IdentityKind::GcpServiceAccount),
            Some((k, s)) => {
                sink.error(
                    s,
                    format!("unknown identity kind `{k}`"),
                    Some(
                        "expected `system` or `user` (Azure), `aws_role` (AWS) or \
                         `gcp_service_account` (GCP)"
                            .into(),
                    ),
                );
                None
            }
            None => None,
        };
        let mut guid = |key: &str| {
            let (v, s) = f.opt_str(sink, key)?;
            if !is_guid(&v) {
                sink.error(
                    s,
                    format!("`{key}` `{}` is not a guid", v.escape_debug()),
                    None,
                );
                return None;
            }
            let v = v.to_ascii_lowercase();
            if let Some(other) = ids_seen.insert(v.clone(), name.0.clone()) {
                sink.error(
                    s,
                    format!("`{key}` `{v}` is also used by identity `{other}`"),
                    None,
                );
            }
            Some(v)
        };
        let client_id = guid("client_id");
        let object_id = guid("object_id");
        let resource_id = valid_str(
            sink,
            &f,
            "resource_id",
            |v| v.starts_with('/') && !v.chars().any(|c| c.is_whitespace() || c.is_control()),
            "`resource_id`",
            "an Azure resource id starts with `/subscriptions/`",
        );
        let role = valid_str(
            sink,
            &f,
            "role",
            aws_role_name,
            "AWS role name",
            "1-64 characters of letters, digits and `+=,.@_-`",
        );
        let email = valid_str(
            sink,
            &f,
            "email",
            gcp_email,
            "service account email",
            "e.g. `app@project.iam.gserviceaccount.com`",
        )
        .map(|v| v.to_ascii_lowercase());
        let default_account = f.opt_bool(sink, "default").is_some_and(|(b, _)| b);
        let Some(kind) = kind else { continue };
        let cloud_fields = |sink: &mut Sink<'_>, allowed: &[&str], what: &str| {
            let cloud_keys = IDENTITY_KEYS.iter().filter(|k| !KIND_FREE_KEYS.contains(k));
            for &key in cloud_keys {
                if f.has(key) && !allowed.contains(&key) {
                    sink.error(
                        f.span(),
                        format!("identity `{}` is {what} and cannot have `{key}`", name.0),
                        None,
                    );
                }
            }
        };
        match kind {
            IdentityKind::System | IdentityKind::User => cloud_fields(
                sink,
                &["client_id", "object_id", "resource_id"],
                "an Azure managed identity",
            ),
            IdentityKind::AwsRole => {
                cloud_fields(sink, &["role"], "an AWS role");
                if role.is_none() && !f.has("role") {
                    sink.error(
                        f.span(),
                        format!("AWS role identity `{}` needs `role`", name.0),
                        Some("the instance profile's role name".into()),
                    );
                }
            }
            IdentityKind::GcpServiceAccount => {
                cloud_fields(sink, &["email", "default"], "a GCP service account");
                if email.is_none() && !f.has("email") {
                    sink.error(
                        f.span(),
                        format!("GCP service account `{}` needs `email`", name.0),
                        None,
                    );
                }
                if default_account {
                    if let Some(other) = out
                        .iter()
                        .find(|i| i.kind == IdentityKind::GcpServiceAccount && i.default_account)
                    {
                        sink.error(
                            f.span(),
                            format!(
                                "identity `{}` is a second `default` service account (`{}` is one)",
                                name.0, other.name
                            ),
                            Some("an instance has one default service account".into()),
                        );
                    }
                }
            }
        }
        if kind == IdentityKind::System {
            if system_seen {
                sink.error(
                    f.span(),
                    format!("identity `{}` is a second system-assigned identity", name.0),
                    Some("a VM has at most one".into()),
                );
            }
            system_seen = true;
        } else if kind == IdentityKind::User && !f.has("client_id") && !f.has("object_id") {
            sink.error(
                f.span(),
                format!(
                    "user-assigned identity `{}` needs `client_id` or `object_id`",
                    name.0
                ),
                None,
            );
        }
        let tags = settings::tags(sink, &f);
        if named {
            out.push(Identity {
                name: name.0,
                kind,
                client_id,
                object_id,
                resource_id,
                role,
                email,
                default_account,
                tags,
            });
        }
    }
    out
}

/// The optional string `key` if `valid` holds for it; otherwise an error
/// at its place (`invalid WHAT `value``, with `help`) and `None`.
fn valid_str(
    sink: &mut Sink<'_>,
    f: &Fields<'_, '_>,
    key: &str,
    valid: impl FnOnce(&str) -> bool,
    what: &str,
    help: &str,
) -> Option<String> {
    let (v, s) = f.opt_str(sink, key)?;
    if valid(&v) {
        Some(v)
    } else {
        sink.error(
            s,
            format!("invalid {what} `{}`", v.escape_debug()),
            Some(help.into()),
        );
        None
    }
}

/// An IAM role name: 1-64 of `[A-Za-z0-9+=,.@_-]`.
fn aws_role_name(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// A service account email: `local@domain`, no spaces, nothing to escape.
fn gcp_email(v: &str) -> bool {
    match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && v.len() <= 254
                && v.bytes().filter(|b| *b == b'@').count() == 1
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"@.-_".contains(&b))
        }
        None => false,
    }
}

/// Action patterns of a role or deny assignment; each must match a known action.
fn action_patterns(sink: &mut Sink<'_>, list: Vec<Str>) -> Vec<String> {
    list.into_iter()
        .filter_map(|(p, span)| {
            if ActionSet::matching(&p).is_empty() {
                let help = suggest::closest(&p, Action::ALL.iter().map(|a| a.as_str()))
                    .map(|s| format!("did you mean `{s}`?"));
                sink.error(span, format!("action `{p}` matches no known action"), help);
                None
            } else {
                Some(p)
            }
        })
        .collect()
}

/// Built-ins plus valid custom roles; also every custom name written, so an
/// assignment naming a broken role is not reported twice.
fn load_roles(sink: &mut Sink<'_>, root: &Fields<'_, '_>) -> (Vec<Role>, Vec<String>) {
    let mut roles = role::builtins();
    let mut names = Vec::new();
    for (t, span) in root.opt_tables(sink, "roles") {
        let f = Fields::new(sink, t, span, "role", ROLE_KEYS);
        let name = f.str(sink, "name").filter(|n| check_name(sink, "role", n));
        let description = f.opt_str(sink, "description").map(|d| d.0);
        let before = sink.diags.error_count();
        let actions = f
            .list(sink, "actions")
            .map(|(l, _)| action_patterns(sink, l));
        let not_actions = f
            .opt_list(sink, "not_actions")
            .map(|(l, _)| action_patterns(sink, l))
            .unwrap_or_default();
        let Some((name, name_span)) = name else {
            continue;
        };
        if let Some(existing) = roles.iter().find(|r| r.name.eq_ignore_ascii_case(&name)) {
            let msg = if existing.builtin {
                format!(
                    "role `{name}` redefines the built-in role `{}`",
                    existing.name
                )
            } else {
                format!("duplicate role `{name}`")
            };
            sink.error(
                name_span,
                msg,
                Some("role names are case-insensitive".into()),
            );
            continue;
        }
        names.push(name.clone());
        let Some(actions) = actions else { continue };
        if sink.diags.error_count() == before {
            roles.push(Role::new(name, description, actions, not_actions, false));
        }
    }
    (roles, names)
}

/// A scope list: `"*"` alone (or anywhere in the list) means any.
fn scope(list: Vec<Str>, mut check: impl FnMut(Str) -> Option<String>) -> Option<Scope> {
    if list.iter().any(|(v, _)| v == "*") {
        return Some(Scope::Any);
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in list {
        match check(item) {
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    ok.then_some(Scope::Only(out))
}

fn identity_scope(sink: &mut Sink<'_>, identities: &[Identity], list: Vec<Str>) -> Option<Scope> {
    scope(list, |(n, span)| {
        if identities.iter().any(|i| i.name == n) {
            Some(n)
        } else {
            let help = suggest::closest(&n, identities.iter().map(|i| i.name.as_str()))
                .map(|s| format!("did you mean `{s}`?"));
            sink.error(
                span,
                format!("unknown identity `{}`", n.escape_debug()),
                help,
            );
            None
        }
    })
}

fn audience_scope(sink: &mut Sink<'_>, list: Vec<Str>) -> Option<Scope> {
    scope(list, |(a, span)| {
        let n = normalise_audience(&a);
        if n.is_none() {
            sink.error(
                span,
                format!("invalid audience `{}`", a.escape_debug()),
                Some("no whitespace or control characters, not empty".into()),
            );
        }
        n
    })
}

fn principal(sink: &mut Sink<'_>, (p, span): Str) -> Option<Principal> {
    Principal::parse(&p)
        .map_err(|e| sink.error(span, e.message, e.help))
        .ok()
}

/// The table's `name`, checked as the name of a `what` and as unique
/// among those in `seen`.
fn unique_name(
    sink: &mut Sink<'_>,
    f: &Fields<'_, '_>,
    what: &str,
    seen: &mut HashMap<String, Range<usize>>,
) -> Option<Str> {
    let name = f.str(sink, "name").filter(|n| check_name(sink, what, n));
    if let Some(n) = &name {
        unique(sink, seen, n);
    }
    name
}

/// Names must be unique across assignments and deny assignments.
fn unique(sink: &mut Sink<'_>, seen: &mut HashMap<String, Range<usize>>, (name, span): &Str) {
    if let Some(first) = seen.get(name) {
        let line = sink
            .text
            .get(..first.start)
            .map_or(0, |s| s.matches('\n').count())
            + 1;
        sink.error(
            span.clone(),
            format!("duplicate assignment name `{name}`"),
            Some(format!("first used on line {line}")),
        );
    } else {
        seen.insert(name.clone(), span.clone());
    }
}

fn load_assignments(
    sink: &mut Sink<'_>,
    root: &Fields<'_, '_>,
    identities: &[Identity],
    roles: &[Role],
    role_names: &[String],
) -> Vec<Assignment> {
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    let keys = [ASSIGNMENT_KEYS, jit::ELIGIBLE_KEYS].concat();
    for (t, span) in root.opt_tables(sink, "assignments") {
        let f = Fields::new(sink, t, span, "assignment", &keys);
        let before = sink.diags.error_count();
        let name = unique_name(sink, &f, "assignment", &mut seen);
        let principal_span = f
            .get("principal")
            .map(|v| v.span())
            .unwrap_or_else(|| f.span());
        let principal = f.str(sink, "principal").and_then(|p| principal(sink, p));
        let role_index = f.str(sink, "role").and_then(|(r, s)| {
            let found = roles.iter().position(|x| x.name.eq_ignore_ascii_case(&r));
            if found.is_none() && !role_names.iter().any(|n| n.eq_ignore_ascii_case(&r)) {
                let help = suggest::closest(&r, roles.iter().map(|x| x.name.as_str()))
                    .map(|c| format!("did you mean `{c}`?"));
                sink.error(s, format!("unknown role `{r}`"), help);
            }
            found
        });
        let ids = f
            .opt_list(sink, "identities")
            .map(|(l, _)| identity_scope(sink, identities, l));
        let auds = f
            .opt_list(sink, "audiences")
            .map(|(l, _)| audience_scope(sink, l));
        let description = f.opt_str(sink, "description").map(|d| d.0);
        let condition = condition::load(sink, &f);
        let eligible = jit::eligibility(
            sink,
            &f,
            name.as_ref().map(|n| n.0.as_str()),
            principal.as_ref(),
            principal_span.clone(),
        );
        let allow_warnings: Vec<String> = f
            .opt_list(sink, "allow_warnings")
            .map(|(l, _)| {
                l.into_iter()
                    .filter_map(|(w, span)| {
                        if crate::lint::CODES.contains(&w.as_str()) {
                            Some(w)
                        } else {
                            let help = format!("known warnings: {}", crate::lint::CODES.join(", "));
                            sink.error(span, format!("unknown warning `{w}`"), Some(help));
                            None
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let role = role_index.and_then(|i| roles.get(i));
        if let (Some(role), Some((n, _))) = (role, &name) {
            if role.effective().contains(Action::TokenRead) {
                // AWS role credentials have no audience: an assignment
                // scoped to AWS roles alone needs none.
                let roles_only = matches!(&ids, Some(Some(Scope::Only(names)))
                    if !names.is_empty() && names.iter().all(|n| identities
                        .iter()
                        .any(|i| i.name == *n && i.kind == IdentityKind::AwsRole)));
                for (key, v) in [("identities", &ids), ("audiences", &auds)] {
                    if v.is_none() && !(key == "audiences" && roles_only) {
                        sink.error(
                            f.span(),
                            format!(
                                "assignment `{n}` grants `Gatehouse/token/read` but has no `{key}`"
                            ),
                            Some(format!("add `{key} = [\"*\"]` to allow any")),
                        );
                    }
                }
            }
        }
        if sink.diags.error_count() != before {
            continue;
        }
        let (Some((name, _)), Some(principal), Some(role_index), Some(role)) =
            (name, principal, role_index, role)
        else {
            continue;
        };
        let spans = Spans {
            table: f.span(),
            principal: principal_span,
            condition: f.get("condition").map(|v| v.span()).unwrap_or_default(),
        };
        out.push(Assignment {
            name,
            principal,
            role: role.name.clone(),
            identities: ids.flatten().unwrap_or(Scope::Any),
            audiences: auds.flatten().unwrap_or(Scope::Any),
            description,
            condition,
            role_index,
            spans,
            allow_warnings,
            eligible,
        });
    }
    out
}

fn load_deny(
    sink: &mut Sink<'_>,
    root: &Fields<'_, '_>,
    identities: &[Identity],
    assignments: &[Assignment],
) -> Vec<DenyAssignment> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    for a in assignments {
        seen.insert(a.name.clone(), 0..0);
    }
    for (t, span) in root.opt_tables(sink, "deny_assignments") {
        let f = Fields::new(sink, t, span, "deny assignment", DENY_KEYS);
        let before = sink.diags.error_count();
        let name = unique_name(sink, &f, "deny assignment", &mut seen);
        let mut principals = |key: &str, required: bool| {
            let list = if required {
                f.list(sink, key)
            } else {
                f.opt_list(sink, key)
            };
            list.map(|(l, _)| {
                l.into_iter()
                    .filter_map(|p| principal(sink, p))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        };
        let principals_in = principals("principals", true);
        let excluded = principals("excluded_principals", false);
        let actions = f
            .list(sink, "actions")
            .map(|(l, _)| action_patterns(sink, l))
            .unwrap_or_default();
        let not_actions = f
            .opt_list(sink, "not_actions")
            .map(|(l, _)| action_patterns(sink, l))
            .unwrap_or_default();
        let ids = f
            .opt_list(sink, "identities")
            .and_then(|(l, _)| identity_scope(sink, identities, l));
        let auds = f
            .opt_list(sink, "audiences")
            .and_then(|(l, _)| audience_scope(sink, l));
        let description = f.opt_str(sink, "description").map(|d| d.0);
        if sink.diags.error_count() != before {
            continue;
        }
        let Some((name, _)) = name else { continue };
        let effective = role::effective(&actions, &not_actions);
        let spans = Spans {
            table: f.span(),
            ..Spans::default()
        };
        out.push(DenyAssignment {
            name,
            principals: principals_in,
            excluded_principals: excluded,
            actions,
            not_actions,
            identities: ids.unwrap_or(Scope::Any),
            audiences: auds.unwrap_or(Scope::Any),
            description,
            effective,
            spans,
        });
    }
    out
}
