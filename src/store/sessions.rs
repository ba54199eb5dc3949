//! SQL for web sessions (hashes only) and the "has anyone ever logged in" check.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::StoreError;
use crate::clock::Timestamp;
use crate::domain::Session;

const COLUMNS: &str =
    "id, secret_hash, human, user_agent, created_at, last_seen_at, expires_at, request_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        secret_hash: r.get(1)?,
        human: r.get(2)?,
        user_agent: r.get(3)?,
        created_at: Timestamp(r.get(4)?),
        last_seen_at: Timestamp(r.get(5)?),
        expires_at: Timestamp(r.get(6)?),
        request_id: r.get(7)?,
    })
}

/// Stores a new session.
pub(crate) fn insert(tx: &Transaction<'_>, s: &Session) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO sessions(id, secret_hash, human, user_agent, created_at, last_seen_at,
                              expires_at, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        s.id,
        s.secret_hash,
        s.human,
        s.user_agent,
        s.created_at.0,
        s.last_seen_at.0,
        s.expires_at.0,
        s.request_id
    ])?;
    Ok(())
}

/// The live (unrevoked, unexpired) session whose secret hashes to `secret_hash`.
pub(crate) fn live_by_hash(
    conn: &Connection,
    secret_hash: &str,
    now: Timestamp,
) -> Result<Option<Session>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions
         WHERE secret_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![secret_hash, now.0], from_row)
        .optional()?)
}

/// Every live session, most recently used first.
pub(crate) fn live(conn: &Connection, now: Timestamp) -> Result<Vec<Session>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE revoked_at IS NULL AND expires_at > ?1
         ORDER BY last_seen_at DESC, id"
    ))?;
    let rows = stmt
        .query_map([now.0], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Records that a session was used at `at`.
pub(crate) fn touch(conn: &Connection, id: &str, at: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2",
    )?
    .execute(params![id, at.0])?;
    Ok(())
}

/// Revokes a live session; returns its human, or `None` when there was no live session `id`.
pub(crate) fn revoke(
    tx: &Transaction<'_>,
    id: &str,
    at: Timestamp,
) -> Result<Option<String>, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE sessions SET revoked_at = ?2
             WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?2 RETURNING human",
        )?
        .query_row(params![id, at.0], |r| r.get(0))
        .optional()?)
}

/// Ends every live session of `human` (e.g. an unlinked approver); returns how many.
pub(crate) fn revoke_all_of(
    tx: &Transaction<'_>,
    human: &str,
    at: Timestamp,
) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE sessions SET revoked_at = ?2 WHERE human = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![human, at.0])?)
}

/// Whether any login link or session was ever issued (the first start prints a link if not).
pub(crate) fn anyone_ever_logged_in(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM login_links) OR EXISTS(SELECT 1 FROM sessions)",
        )?
        .query_row([], |r| r.get(0))?)
}
