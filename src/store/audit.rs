//! SQL for the audit trail. Appending reads the head of the chain inside the caller's
//! `BEGIN IMMEDIATE` transaction, so two writers can never fork it.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{StoreError, json_column};
use crate::audit::{GENESIS_HASH, NewEvent, StoredEvent, chain_body};
use crate::clock::Timestamp;
use crate::domain::AuditFilter;

/// Appends `ev` at time `at` to the chain; returns its `seq`.
pub(crate) fn append(
    tx: &Transaction<'_>,
    at: Timestamp,
    ev: &NewEvent,
) -> Result<i64, StoreError> {
    let head: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev_hash) = match head {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    // Stored as hashed: canonical JSON (the same object, keys sorted).
    let details = ev.details.as_str();
    let body = chain_body(&prev_hash, seq, at, ev, details);
    // Keyed by the connection's audit key (see `configure`), in the same statement as the insert.
    tx.prepare_cached("INSERT INTO audit_events(seq, at, actor, event, request_id, agent_id, details, prev_hash, hash, keyed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, agent_otp_audit_mac(?9), 1)")?.execute(
        params![
            seq,
            at.0,
            ev.actor,
            ev.event,
            ev.request_id,
            ev.agent_id,
            details,
            prev_hash,
            body
        ],
    )?;
    Ok(seq)
}

const WHERE: &str = "WHERE (?1 IS NULL OR request_id = ?1)
                       AND (?2 IS NULL OR agent_id = ?2)
                       AND (?3 IS NULL OR event = ?3)
                       AND (?4 IS NULL OR at >= ?4)
                       AND (?5 IS NULL OR at < ?5)";

impl AuditFilter {
    fn args(&self) -> [Option<rusqlite::types::Value>; 5] {
        use rusqlite::types::Value as V;
        [
            self.request_id.clone().map(V::Text),
            self.agent_id.clone().map(V::Text),
            self.event.clone().map(V::Text),
            self.since.map(|t| V::Integer(t.0)),
            self.until.map(|t| V::Integer(t.0)),
        ]
    }
}

/// Newest events first, one page, plus the total matching.
pub fn page(
    conn: &Connection,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<StoredEvent>, i64), StoreError> {
    let [a, b, c, d, e] = filter.args();
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM audit_events {WHERE}"))?
        .query_row(params![a, b, c, d, e], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_events {WHERE} ORDER BY seq DESC LIMIT ?6 OFFSET ?7"
    ))?;
    let rows = stmt
        .query_map(params![a, b, c, d, e, limit, offset], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

/// Calls `f` with every event in `seq` order (for verify and export), without loading them all;
/// stops early when `f` returns false.
pub fn for_each(conn: &Connection, f: impl FnMut(StoredEvent) -> bool) -> Result<(), StoreError> {
    for_each_matching(conn, &AuditFilter::default(), f)
}

/// [`for_each`] over the events that match `filter`.
pub(crate) fn for_each_matching(
    conn: &Connection,
    filter: &AuditFilter,
    mut f: impl FnMut(StoredEvent) -> bool,
) -> Result<(), StoreError> {
    let [a, b, c, d, e] = filter.args();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_events {WHERE} ORDER BY seq"
    ))?;
    let mut rows = stmt.query(params![a, b, c, d, e])?;
    while let Some(row) = rows.next()? {
        if !f(from_row(row)?) {
            break;
        }
    }
    Ok(())
}

/// The `seq` of the event whose hash is `hash`, if any (to tell reordered rows from edited ones).
pub(crate) fn seq_of_hash(conn: &Connection, hash: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT seq FROM audit_events WHERE hash = ?1 LIMIT 1")?
        .query_row([hash], |r| r.get(0))
        .optional()?)
}

/// The last event's `seq` and hash, unverified; `None` for an empty trail.
pub(crate) fn head(conn: &Connection) -> Result<Option<(i64, String, Timestamp)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT seq, hash, at FROM audit_events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, Timestamp(r.get(2)?))))
        .optional()?)
}

/// The `seq` of the first keyed event, if any.
pub(crate) fn keyed_from(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT min(seq) FROM audit_events WHERE keyed = 1")?
        .query_row([], |r| r.get(0))?)
}

const COLUMNS: &str =
    "seq, at, actor, event, request_id, agent_id, details, prev_hash, hash, keyed";

fn from_row(r: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.get(0)?,
        at: Timestamp(r.get(1)?),
        actor: r.get(2)?,
        event: r.get(3)?,
        request_id: r.get(4)?,
        agent_id: r.get(5)?,
        details: json_column(r, 6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
        keyed: r.get(9)?,
    })
}
