//! Rows to values and the read-only queries.

use std::net::IpAddr;
use std::time::SystemTime;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, ToSql};

use super::time::{from_ms, to_ms};
use super::{
    Event, FlatRequest, Kind, ListFilter, NewRequest, Protocol, Record, Requester, State,
    StoreError,
};

/// The request columns, in the order [`record`] reads them by name.
pub(super) const RECORD_COLUMNS: &str = "id, kind, requester_uid, requester_name, role, assignment,
    identity, audience, port, protocol, source, duration_secs, requested_secs, reason, ticket,
    via, state, created_ms, lapses_ms, decided_by_uid, decided_by_name, decided_at_ms,
    decision_reason, starts_ms, expires_ms, revoked_by_uid, revoked_by_name, revoked_at_ms";

pub(super) fn record(row: &Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        id: row.get("id")?,
        request: request(row)?,
        state: row.get("state")?,
        created: time(row, "created_ms")?,
        lapses: time(row, "lapses_ms")?,
        decided_by: requester(row, "decided_by_uid", "decided_by_name")?,
        decided_at: time_opt(row, "decided_at_ms")?,
        decision_reason: row.get("decision_reason")?,
        starts: time_opt(row, "starts_ms")?,
        expires: time_opt(row, "expires_ms")?,
        revoked_by: requester(row, "revoked_by_uid", "revoked_by_name")?,
        revoked_at: time_opt(row, "revoked_at_ms")?,
    })
}

/// The request columns, checked: a row whose kind lacks what it needs (or
/// whose protocol or source does not parse) is corrupt, not a request.
fn request(row: &Row<'_>) -> rusqlite::Result<NewRequest> {
    let protocol: Option<String> = row.get("protocol")?;
    let source: Option<String> = row.get("source")?;
    let flat = FlatRequest {
        kind: row.get("kind")?,
        requester: Requester {
            uid: row.get("requester_uid")?,
            name: row.get("requester_name")?,
        },
        role: row.get("role")?,
        assignment: row.get("assignment")?,
        identity: row.get("identity")?,
        audience: row.get("audience")?,
        port: row.get("port")?,
        protocol: protocol
            .map(|p| match p.as_str() {
                "tcp" => Ok(Protocol::Tcp),
                "udp" => Ok(Protocol::Udp),
                other => Err(conversion(format!("unknown protocol `{other}`"))),
            })
            .transpose()?,
        source: source
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| conversion(format!("source `{s}` is not an IP address")))
            })
            .transpose()?,
        duration_secs: row.get("duration_secs")?,
        requested_secs: row.get("requested_secs")?,
        reason: row.get("reason")?,
        ticket: row.get("ticket")?,
        via: row.get("via")?,
    };
    NewRequest::try_from(flat).map_err(|e| conversion(e.to_string()))
}

fn conversion(why: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, why.into())
}

fn event(row: &Row<'_>) -> rusqlite::Result<Event> {
    let detail: String = row.get("detail")?;
    Ok(Event {
        seq: row.get("seq")?,
        request_id: row.get("request_id")?,
        kind: row.get("kind")?,
        actor: requester(row, "actor_uid", "actor_name")?,
        at: time(row, "at_ms")?,
        detail: serde_json::from_str(&detail).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
    })
}

fn requester(row: &Row<'_>, uid: &str, name: &str) -> rusqlite::Result<Option<Requester>> {
    let name: Option<String> = row.get(name)?;
    let uid: Option<u32> = row.get(uid)?;
    Ok(name.map(|name| Requester { uid, name }))
}

fn time(row: &Row<'_>, col: &str) -> rusqlite::Result<SystemTime> {
    let ms: i64 = row.get(col)?;
    from_ms(ms).ok_or_else(|| out_of_range(ms))
}

fn time_opt(row: &Row<'_>, col: &str) -> rusqlite::Result<Option<SystemTime>> {
    let ms: Option<i64> = row.get(col)?;
    ms.map(|ms| from_ms(ms).ok_or_else(|| out_of_range(ms)))
        .transpose()
}

fn out_of_range(ms: i64) -> rusqlite::Error {
    rusqlite::Error::IntegralValueOutOfRange(0, ms)
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<Record>, StoreError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM requests WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], record).optional()?)
}

/// The filter in SQL. States are judged at `now`, like [`Record::state_at`].
pub(super) fn list(
    conn: &Connection,
    filter: &ListFilter,
    now: SystemTime,
) -> Result<Vec<Record>, StoreError> {
    let now = to_ms(now)?;
    let mut clauses: Vec<&str> = Vec::new();
    let state_clause = match filter.state {
        None => None,
        Some(State::Pending) => Some("(state = 'pending' AND lapses_ms > :now)"),
        Some(State::Lapsed) => {
            Some("(state = 'lapsed' OR (state = 'pending' AND lapses_ms <= :now))")
        }
        Some(State::Active) => Some("(state = 'active' AND expires_ms > :now)"),
        Some(State::Expired) => {
            Some("(state = 'expired' OR (state = 'active' AND expires_ms <= :now))")
        }
        Some(State::Denied) => Some("state = 'denied'"),
        Some(State::Revoked) => Some("state = 'revoked'"),
    };
    clauses.extend(state_clause);
    if filter.active_only {
        clauses.push("(state = 'active' AND expires_ms > :now)");
    }
    if filter.requester_uid.is_some() {
        clauses.push("requester_uid = :uid");
    }
    if filter.requester_name.is_some() {
        clauses.push("requester_name = :name");
    }
    let mut sql = format!("SELECT {RECORD_COLUMNS} FROM requests");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY created_ms DESC, rowid DESC LIMIT :limit");
    // SQLite reads a negative LIMIT as "no limit".
    let limit = match filter.limit {
        0 => -1,
        n => i64::try_from(n).unwrap_or(i64::MAX),
    };
    let mut stmt = conn.prepare(&sql)?;
    let mut params: Vec<(&str, &dyn ToSql)> = vec![(":limit", &limit)];
    // Named parameters must all appear in the SQL; bind only those that do.
    if sql.contains(":now") {
        params.push((":now", &now));
    }
    if let Some(uid) = &filter.requester_uid {
        params.push((":uid", uid));
    }
    if let Some(name) = &filter.requester_name {
        params.push((":name", name));
    }
    let rows = stmt.query_map(params.as_slice(), record)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn active(
    conn: &Connection,
    kind: Kind,
    now: SystemTime,
) -> Result<Vec<Record>, StoreError> {
    let now = to_ms(now)?;
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM requests
         WHERE state = 'active' AND kind = ?1 AND starts_ms <= ?2 AND ?2 < expires_ms
         ORDER BY created_ms, rowid"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map((kind, now), record)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn unaudited(conn: &Connection, limit: usize) -> Result<Vec<Event>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare(
        "SELECT seq, request_id, kind, actor_uid, actor_name, at_ms, detail FROM events
         WHERE seq > (SELECT audited_seq FROM outbox WHERE id = 1)
         ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], event)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl ToSql for State {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for State {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(match value.as_str()? {
            "pending" => State::Pending,
            "active" => State::Active,
            "denied" => State::Denied,
            "revoked" => State::Revoked,
            "expired" => State::Expired,
            "lapsed" => State::Lapsed,
            other => {
                return Err(FromSqlError::Other(
                    format!("unknown state `{other}`").into(),
                ))
            }
        })
    }
}

impl ToSql for Kind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Kind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(match value.as_str()? {
            "role" => Kind::Role,
            "port" => Kind::Port,
            other => {
                return Err(FromSqlError::Other(
                    format!("unknown kind `{other}`").into(),
                ))
            }
        })
    }
}
