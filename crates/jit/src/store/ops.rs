//! The transitions. Each runs inside [`write`]'s one `BEGIN IMMEDIATE`
//! transaction, reads the row it changes, and changes it only from the state
//! it read (compare-and-set), writing the event rows alongside.

use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{json, Value};

use super::rows::{self, RECORD_COLUMNS};
use super::time::{add_secs, format_ms, to_ms};
use super::{
    FlatRequest, NewRequest, Protocol, Record, Requester, State, StoreError, PENDING_LIFETIME_SECS,
};

/// A body's verdict. The outer `Err` rolls back; `Ok(Err(_))` commits what
/// the body wrote and then reports the error (an approval that found the
/// request lapsed records the lapse and still refuses).
pub(super) type Verdict<T> = Result<Result<T, StoreError>, StoreError>;

pub(super) fn write<T>(
    conn: &mut Connection,
    body: impl FnOnce(&Transaction<'_>) -> Verdict<T>,
) -> Result<T, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let outcome = body(&tx)?;
    tx.commit()?;
    outcome
}

pub(super) enum Decision<'a> {
    Approve(Option<&'a str>),
    Deny(&'a str),
}

/// Tries before giving up on finding an unused id. 48 random bits collide
/// about never; the loop is for correctness, not for load.
const ID_TRIES: usize = 16;

pub(super) fn insert(
    tx: &Transaction<'_>,
    new: &NewRequest,
    now: SystemTime,
    auto_approve: bool,
) -> Result<Record, StoreError> {
    let now = to_ms(now)?;
    let lapses = add_secs(now, PENDING_LIFETIME_SECS)?;
    // Checked even when pending, so an approval later cannot fail on it.
    let expires = add_secs(now, new.common.duration_secs)?;
    add_secs(0, new.common.requested_secs)?;
    // The row is the flat form; it is checked again when read back.
    let row = FlatRequest::from(new.clone());
    let id = fresh_id(tx)?;
    tx.execute(
        "INSERT INTO requests (id, kind, requester_uid, requester_name, role, assignment,
            identity, audience, port, protocol, source, duration_secs, requested_secs, reason,
            ticket, via, state, created_ms, lapses_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
            'pending', ?17, ?18)",
        params![
            id,
            row.kind,
            row.requester.uid,
            row.requester.name,
            row.role,
            row.assignment,
            row.identity,
            row.audience,
            row.port,
            row.protocol.map(Protocol::as_str),
            row.source.map(|s| s.to_string()),
            row.duration_secs,
            row.requested_secs,
            row.reason,
            row.ticket,
            row.via,
            now,
            lapses,
        ],
    )?;
    let mut detail = serde_json::to_value(new).map_err(encode)?;
    if let Value::Object(map) = &mut detail {
        map.insert("lapses".into(), format_ms(lapses).into());
    }
    event(tx, &id, "requested", Some(&row.requester), now, &detail)?;
    if auto_approve {
        cas(
            tx,
            &id,
            State::Pending,
            "state = 'active', decided_at_ms = ?3, starts_ms = ?3, expires_ms = ?4",
            params![id, State::Pending, now, expires],
        )?;
        event(tx, &id, "auto_approved", None, now, &json!({}))?;
        event(tx, &id, "activated", None, now, &activated(now, expires))?;
    }
    load(tx, &id)
}

fn fresh_id(tx: &Transaction<'_>) -> Result<String, StoreError> {
    for _ in 0..ID_TRIES {
        let id = format!("jit-{}", hex::encode(rand::random::<[u8; 6]>()));
        let taken = tx
            .query_row("SELECT 1 FROM requests WHERE id = ?1", [&id], |_| Ok(()))
            .optional()?
            .is_some();
        if !taken {
            return Ok(id);
        }
    }
    Err(StoreError::Corrupt(format!(
        "{ID_TRIES} random JIT request ids in a row were taken; the random source looks broken"
    )))
}

pub(super) fn decide(
    tx: &Transaction<'_>,
    id: &str,
    approver: &Requester,
    decision: Decision<'_>,
    now: SystemTime,
) -> Verdict<Record> {
    let now_ms = to_ms(now)?;
    let rec = settle(tx, load(tx, id)?, now)?;
    match rec.state {
        State::Pending => {}
        State::Lapsed => return Ok(Err(StoreError::Lapsed(id.to_owned()))),
        state => {
            return Ok(Err(StoreError::Conflict {
                id: id.to_owned(),
                state,
            }))
        }
    }
    match decision {
        Decision::Approve(reason) => {
            let expires = add_secs(now_ms, rec.request.common.duration_secs)?;
            cas(
                tx,
                id,
                State::Pending,
                "state = 'active', decided_by_uid = ?3, decided_by_name = ?4,
                 decided_at_ms = ?5, decision_reason = ?6, starts_ms = ?5, expires_ms = ?7",
                params![
                    id,
                    State::Pending,
                    approver.uid,
                    approver.name,
                    now_ms,
                    reason,
                    expires
                ],
            )?;
            event(
                tx,
                id,
                "approved",
                Some(approver),
                now_ms,
                &json!({ "reason": reason }),
            )?;
            event(
                tx,
                id,
                "activated",
                Some(approver),
                now_ms,
                &activated(now_ms, expires),
            )?;
        }
        Decision::Deny(reason) => {
            cas(
                tx,
                id,
                State::Pending,
                "state = 'denied', decided_by_uid = ?3, decided_by_name = ?4,
                 decided_at_ms = ?5, decision_reason = ?6",
                params![
                    id,
                    State::Pending,
                    approver.uid,
                    approver.name,
                    now_ms,
                    reason
                ],
            )?;
            event(
                tx,
                id,
                "denied",
                Some(approver),
                now_ms,
                &json!({ "reason": reason }),
            )?;
        }
    }
    Ok(Ok(load(tx, id)?))
}

pub(super) fn revoke(
    tx: &Transaction<'_>,
    id: &str,
    by: &Requester,
    reason: Option<&str>,
    now: SystemTime,
) -> Verdict<Record> {
    let now_ms = to_ms(now)?;
    let rec = settle(tx, load(tx, id)?, now)?;
    if !matches!(rec.state, State::Pending | State::Active) {
        return Ok(Err(StoreError::Conflict {
            id: id.to_owned(),
            state: rec.state,
        }));
    }
    cas(
        tx,
        id,
        rec.state,
        "state = 'revoked', revoked_by_uid = ?3, revoked_by_name = ?4, revoked_at_ms = ?5",
        params![id, rec.state, by.uid, by.name, now_ms],
    )?;
    let detail = json!({ "reason": reason, "was": rec.state });
    event(tx, id, "revoked", Some(by), now_ms, &detail)?;
    Ok(Ok(load(tx, id)?))
}

pub(super) fn sweep(tx: &Transaction<'_>, now: SystemTime) -> Result<Vec<Record>, StoreError> {
    let now_ms = to_ms(now)?;
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM requests
         WHERE (state = 'active' AND expires_ms <= ?1) OR (state = 'pending' AND lapses_ms <= ?1)
         ORDER BY created_ms, rowid"
    );
    let due: Vec<Record> = {
        let mut stmt = tx.prepare(&sql)?;
        let rows = stmt.query_map([now_ms], rows::record)?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    due.into_iter().map(|rec| settle(tx, rec, now)).collect()
}

/// Record what time alone has done to `rec` by `now` (expiry, lapse), so
/// every transition starts from the state the engine would see.
fn settle(tx: &Transaction<'_>, rec: Record, now: SystemTime) -> Result<Record, StoreError> {
    let (kind, state, at) = match rec.state_at(now) {
        s if s == rec.state => return Ok(rec),
        State::Expired => ("expired", State::Expired, rec.expires),
        State::Lapsed => ("lapsed", State::Lapsed, Some(rec.lapses)),
        _ => return Ok(rec),
    };
    // The event is stamped with when it happened, not when it was noticed.
    let at = to_ms(at.unwrap_or(now))?;
    cas(
        tx,
        &rec.id,
        rec.state,
        "state = ?3",
        params![rec.id, rec.state, state],
    )?;
    let detail = json!({ "noticed": format_ms(to_ms(now)?) });
    event(tx, &rec.id, kind, None, at, &detail)?;
    load(tx, &rec.id)
}

/// `UPDATE requests SET {set} WHERE id = ?1 AND state = ?2`, failing unless
/// exactly that one row changed.
fn cas(
    tx: &Transaction<'_>,
    id: &str,
    from: State,
    set: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<(), StoreError> {
    let sql = format!("UPDATE requests SET {set} WHERE id = ?1 AND state = ?2");
    if tx.execute(&sql, params)? == 1 {
        return Ok(());
    }
    // Unreachable while we hold the write lock; reported, not assumed.
    let state = load(tx, id)?.state;
    debug_assert_ne!(state, from);
    Err(StoreError::Conflict {
        id: id.to_owned(),
        state,
    })
}

fn load(tx: &Transaction<'_>, id: &str) -> Result<Record, StoreError> {
    rows::get(tx, id)?.ok_or_else(|| StoreError::NotFound(id.to_owned()))
}

fn event(
    tx: &Transaction<'_>,
    id: &str,
    kind: &str,
    actor: Option<&Requester>,
    at_ms: i64,
    detail: &Value,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO events (request_id, kind, actor_uid, actor_name, at_ms, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            kind,
            actor.and_then(|a| a.uid),
            actor.map(|a| a.name.as_str()),
            at_ms,
            detail.to_string()
        ],
    )?;
    Ok(())
}

fn activated(starts: i64, expires: i64) -> Value {
    json!({ "starts": format_ms(starts), "expires": format_ms(expires) })
}

pub(super) fn mark_audited(tx: &Transaction<'_>, up_to_seq: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE outbox SET audited_seq = MAX(audited_seq,
            MIN(?1, (SELECT COALESCE(MAX(seq), 0) FROM events)))
         WHERE id = 1",
        [up_to_seq],
    )?;
    Ok(())
}

pub(super) fn remember_nonce(
    tx: &Transaction<'_>,
    signer: &str,
    nonce: &str,
    keep_until: SystemTime,
    now: SystemTime,
) -> Result<bool, StoreError> {
    let (keep_until, now) = (to_ms(keep_until)?, to_ms(now)?);
    tx.execute("DELETE FROM nonces WHERE keep_until_ms <= ?1", [now])?;
    let added = tx.execute(
        "INSERT INTO nonces (signer, nonce, keep_until_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (signer, nonce) DO NOTHING",
        params![signer, nonce, keep_until],
    )?;
    Ok(added == 1)
}

/// Forgets finished requests (denied, revoked, expired, lapsed) whose every
/// event is older than `before` and already written to the audit log (the
/// audit log keeps the record); their events go with them.
pub(super) fn prune(tx: &Transaction<'_>, before: SystemTime) -> Result<usize, StoreError> {
    let before = to_ms(before)?;
    let doomed = "SELECT r.id FROM requests r
        WHERE r.state IN ('denied', 'revoked', 'expired', 'lapsed')
          AND NOT EXISTS (SELECT 1 FROM events e WHERE e.request_id = r.id
                          AND (e.at_ms >= ?1 OR e.seq > (SELECT audited_seq FROM outbox WHERE id = 1)))";
    tx.execute(
        &format!("DELETE FROM events WHERE request_id IN ({doomed})"),
        [before],
    )?;
    let gone = tx.execute(
        &format!("DELETE FROM requests WHERE id IN ({doomed})"),
        [before],
    )?;
    Ok(gone)
}

/// Unreachable in practice (a `NewRequest` is plain strings and numbers),
/// but reported rather than unwrapped.
fn encode(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("JIT request cannot be encoded as JSON: {e}"))
}
