//! gatehouse's attribute vocabulary: what `@Principal[...]`, `@Request[...]`,
//! `@Resource[...]` and `@Environment[...]` mean on a VM, as a schema for
//! load-time type checking and as facts for evaluation.

use crate::caller::{Caller, Process, Request};
use crate::condition::{datetime, Attr, AttrName, AttrType, Facts, Schema, Source, Ty, Value};
use crate::identity::Identity;

/// One attribute, documented (`docs/policy.md` lists the same table).
#[derive(Debug, Clone, Copy)]
pub struct AttributeDoc {
    pub source: Source,
    /// As the schema knows it; tag values are `tags:*<$key_case_sensitive$>`.
    pub name: &'static str,
    pub ty: Ty,
    pub multi: bool,
    pub example: &'static str,
}

const fn a(
    source: Source,
    name: &'static str,
    ty: Ty,
    multi: bool,
    example: &'static str,
) -> AttributeDoc {
    AttributeDoc {
        source,
        name,
        ty,
        multi,
        example,
    }
}

/// Every attribute a gatehouse condition may use.
pub const ATTRIBUTES: &[AttributeDoc] = &[
    a(
        Source::Principal,
        "uid",
        Ty::Integer,
        false,
        "@Principal[uid] NumericLessThan 1000",
    ),
    a(
        Source::Principal,
        "user",
        Ty::String,
        false,
        "@Principal[user] StringEquals 'www-data'",
    ),
    a(
        Source::Principal,
        "groups",
        Ty::String,
        true,
        "@Principal[groups] ForAnyOfAnyValues:StringEquals {'deploy', 'ops'}",
    ),
    a(
        Source::Principal,
        "gids",
        Ty::Integer,
        true,
        "@Principal[gids] ForAnyOfAnyValues:NumericEquals {27, 1001}",
    ),
    a(
        Source::Principal,
        "pid",
        Ty::Integer,
        false,
        "@Principal[pid] NumericGreaterThan 1",
    ),
    a(
        Source::Principal,
        "exe",
        Ty::String,
        false,
        "@Principal[exe] StringStartsWith '/opt/app/'",
    ),
    a(
        Source::Principal,
        "exeSha256",
        Ty::String,
        false,
        "@Principal[exeSha256] StringEqualsIgnoreCase 'e3b0c442...'",
    ),
    a(
        Source::Principal,
        "exeOwnerUid",
        Ty::Integer,
        false,
        "@Principal[exeOwnerUid] NumericEquals 0",
    ),
    a(
        Source::Principal,
        "unit",
        Ty::String,
        false,
        "@Principal[unit] StringLike 'backup-*.service'",
    ),
    a(
        Source::Principal,
        "cgroup",
        Ty::String,
        false,
        "@Principal[cgroup] StringStartsWith '/system.slice/'",
    ),
    a(
        Source::Principal,
        "containerId",
        Ty::String,
        false,
        "@Principal[containerId] StringStartsWith '3f2a'",
    ),
    a(
        Source::Request,
        "action",
        Ty::String,
        false,
        "@Request[action] StringEquals 'Gatehouse/token/read'",
    ),
    a(
        Source::Request,
        "audience",
        Ty::String,
        false,
        "@Request[audience] StringLike 'https://*.vault.azure.net'",
    ),
    a(
        Source::Request,
        "apiVersion",
        Ty::String,
        false,
        "@Request[apiVersion] StringEquals '2018-02-01'",
    ),
    a(
        Source::Request,
        "selector",
        Ty::String,
        false,
        "@Request[selector] StringEquals 'client_id'",
    ),
    a(
        Source::Request,
        "path",
        Ty::String,
        false,
        "@Request[path] StringEquals '/metadata/instance/compute'",
    ),
    a(
        Source::Resource,
        "name",
        Ty::String,
        false,
        "@Resource[name] StringEquals 'storage-writer'",
    ),
    a(
        Source::Resource,
        "kind",
        Ty::String,
        false,
        "@Resource[kind] StringEquals 'user'",
    ),
    a(
        Source::Resource,
        "clientId",
        Ty::Guid,
        false,
        "@Resource[clientId] GuidEquals 2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809",
    ),
    a(
        Source::Resource,
        "objectId",
        Ty::Guid,
        false,
        "@Resource[objectId] GuidNotEquals 0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607",
    ),
    a(
        Source::Resource,
        "resourceId",
        Ty::String,
        false,
        "@Resource[resourceId] StringLike '*/userAssignedIdentities/web-*'",
    ),
    a(
        Source::Resource,
        "tags:*<$key_case_sensitive$>",
        Ty::String,
        false,
        "@Resource[tags:env<$key_case_sensitive$>] StringEquals 'prod'",
    ),
    a(
        Source::Resource,
        "tags&$keys$&",
        Ty::String,
        true,
        "@Resource[tags&$keys$&] ForAnyOfAnyValues:StringEquals {'env'}",
    ),
    a(
        Source::Environment,
        "UtcNow",
        Ty::DateTime,
        false,
        "@Environment[UtcNow] DateTimeLessThan '2026-01-01T00:00:00.0Z'",
    ),
];

/// The schema of [`ATTRIBUTES`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GatehouseSchema;

impl Schema for GatehouseSchema {
    fn attribute(&self, source: Source, name: &AttrName) -> Option<AttrType> {
        let key = name.schema_key();
        ATTRIBUTES
            .iter()
            .find(|d| d.source == source && d.name == key)
            .map(|d| AttrType {
                ty: d.ty,
                multi: d.multi,
            })
    }

    fn names(&self, source: Source) -> Vec<String> {
        ATTRIBUTES
            .iter()
            .filter(|d| d.source == source)
            .map(|d| d.name.to_owned())
            .collect()
    }
}

/// The facts of one decision.
pub(crate) struct Ctx<'a> {
    pub caller: &'a Caller,
    pub request: &'a Request<'a>,
    pub identity: Option<&'a Identity>,
}

fn one(v: Value) -> Option<Vec<Value>> {
    Some(vec![v])
}

fn text(s: Option<&str>) -> Option<Vec<Value>> {
    s.map(|s| vec![Value::Str(s.to_owned())])
}

/// A process attribute is present only when every holder has it and all
/// agree: with several holders (a fork after connect), "the" executable is
/// otherwise unknown, and an unknown attribute fails the condition.
fn agreed<'p, T: PartialEq>(
    processes: &'p [Process],
    f: impl Fn(&'p Process) -> Option<T>,
) -> Option<T> {
    let mut values = processes.iter().map(f);
    let first = values.next()??;
    for v in values {
        if v.as_ref() != Some(&first) {
            return None;
        }
    }
    Some(first)
}

impl Facts for Ctx<'_> {
    fn action(&self) -> &str {
        self.request.action.as_str()
    }

    /// gatehouse's actions have no sub-operations.
    fn sub_operation(&self) -> Option<&str> {
        None
    }

    fn value(&self, attr: &Attr) -> Option<Vec<Value>> {
        let c = self.caller;
        let r = self.request;
        let procs = &c.processes;
        let int = |v: u32| Value::Int(i64::from(v));
        match (attr.source, &attr.name) {
            (Source::Principal, AttrName::Plain(n)) => match n.as_str() {
                "uid" => c.uid.map(int).and_then(one),
                "user" => text(c.user.as_deref()),
                "groups" => Some(
                    c.group_names
                        .iter()
                        .map(|g| Value::Str(g.clone()))
                        .collect(),
                ),
                "gids" => Some(c.gids.iter().map(|g| int(*g)).collect()),
                "pid" => agreed(procs, |p| Some(p.pid)).map(int).and_then(one),
                "exe" => text(agreed(procs, |p| {
                    p.exe_path.as_deref().filter(|_| p.exe_path_verified)
                })),
                "exeSha256" => text(
                    agreed(procs, |p| {
                        p.exe_sha256.as_ref().map(|h| h.to_ascii_lowercase())
                    })
                    .as_deref(),
                ),
                "exeOwnerUid" => agreed(procs, |p| p.exe_owner_uid).map(int).and_then(one),
                "unit" => text(agreed(procs, |p| p.unit.as_deref())),
                "cgroup" => text(agreed(procs, |p| p.cgroup.as_deref())),
                "containerId" => text(agreed(procs, |p| p.container.as_deref())),
                _ => None,
            },
            (Source::Request, AttrName::Plain(n)) => match n.as_str() {
                "action" => text(Some(r.action.as_str())),
                "audience" => text(r.audience),
                "apiVersion" => text(r.api_version),
                "selector" => text(r.selector.map(|s| s.as_str())),
                "path" => text(r.path),
                _ => None,
            },
            (Source::Resource, name) => {
                let id = self.identity?;
                match name {
                    AttrName::Plain(n) => match n.as_str() {
                        "name" => text(Some(&id.name)),
                        "kind" => text(Some(id.kind.as_str())),
                        "role" => text(id.role.as_deref()),
                        "email" => text(id.email.as_deref()),
                        "clientId" => text(id.client_id.as_deref()),
                        "objectId" => text(id.object_id.as_deref()),
                        "resourceId" => text(id.resource_id.as_deref()),
                        _ => None,
                    },
                    AttrName::Key { base, key } if base == "tags" => {
                        text(id.tags.get(key).map(String::as_str))
                    }
                    AttrName::Keys { base } if base == "tags" => {
                        Some(id.tags.keys().map(|k| Value::Str(k.clone())).collect())
                    }
                    _ => None,
                }
            }
            (Source::Environment, AttrName::Plain(n)) if n == "UtcNow" => r
                .now
                .map(|t| Value::Time(datetime::from_system_time(t)))
                .and_then(one),
            _ => None,
        }
    }
}
