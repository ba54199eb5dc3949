//! SQL for the audit trail. Appending reads the head of the chain inside the caller's
//! `BEGIN IMMEDIATE` transaction, so two writers can never fork it.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{StoreError, json_column};
use crate::audit::{GENESIS_HASH, NewEvent, StoredEvent, chain_hash};
use crate::clock::Timestamp;

/// Appends `ev` at time `at` to the chain; returns its `seq`.
pub fn append(tx: &Transaction<'_>, at: Timestamp, ev: &NewEvent) -> Result<i64, StoreError> {
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev_hash) = match head {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = chain_hash(&prev_hash, seq, at, ev);
    tx.execute(
        "INSERT INTO audit_events(seq, at, actor, event, request_id, agent_id, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            seq,
            at.0,
            ev.actor,
            ev.event,
            ev.request_id,
            ev.agent_id,
            serde_json::to_string(&ev.details)?,
            prev_hash,
            hash
        ],
    )?;
    Ok(seq)
}

/// Filters for listing events; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub request_id: Option<String>,
    pub agent_id: Option<String>,
    pub event: Option<String>,
}

/// Newest events first, one page, plus the total matching.
pub fn page(
    conn: &Connection,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<StoredEvent>, i64), StoreError> {
    const WHERE: &str = "WHERE (?1 IS NULL OR request_id = ?1)
                           AND (?2 IS NULL OR agent_id = ?2)
                           AND (?3 IS NULL OR event = ?3)";
    let args = params![filter.request_id, filter.agent_id, filter.event];
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM audit_events {WHERE}"),
        args,
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_events {WHERE} ORDER BY seq DESC LIMIT ?4 OFFSET ?5"
    ))?;
    let rows = stmt
        .query_map(
            params![
                filter.request_id,
                filter.agent_id,
                filter.event,
                limit,
                offset
            ],
            from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

/// Calls `f` with every event in `seq` order (for verify and export), without loading them all.
pub fn for_each(
    conn: &Connection,
    mut f: impl FnMut(StoredEvent) -> bool,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if !f(from_row(row)?) {
            break;
        }
    }
    Ok(())
}

const COLUMNS: &str = "seq, at, actor, event, request_id, agent_id, details, prev_hash, hash";

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
    })
}
