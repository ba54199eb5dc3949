//! SQL for one-time login links (hashes only).

use rusqlite::{OptionalExtension, Transaction, params};

use super::StoreError;
use crate::clock::Timestamp;

/// A link as stored, for [`redeem`] and [`peek`].
#[derive(Debug, Clone)]
pub(crate) struct LinkRow {
    pub secret_hash: String,
    pub human: String,
    pub next_path: Option<String>,
    /// The one request the session it opens is limited to.
    pub request_id: Option<String>,
    /// Unused and unexpired at the time asked.
    pub usable: bool,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LinkRow> {
    Ok(LinkRow {
        secret_hash: r.get(0)?,
        human: r.get(1)?,
        next_path: r.get(2)?,
        request_id: r.get(3)?,
        usable: r.get(4)?,
    })
}

/// Stores a new link.
pub(crate) fn insert(
    tx: &Transaction<'_>,
    secret_hash: &str,
    human: &str,
    next_path: Option<&str>,
    request_id: Option<&str>,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO login_links(secret_hash, human, next_path, request_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        secret_hash,
        human,
        next_path,
        request_id,
        now.0,
        expires_at.0
    ])?;
    Ok(())
}

/// Marks an unused, unexpired link used and returns it; `None` when there is no such live link.
pub(crate) fn redeem(
    tx: &Transaction<'_>,
    secret_hash: &str,
    now: Timestamp,
) -> Result<Option<LinkRow>, StoreError> {
    let found = tx
        .prepare_cached(
            "UPDATE login_links SET used_at = ?2
             WHERE secret_hash = ?1 AND used_at IS NULL AND expires_at > ?2
             RETURNING secret_hash, human, next_path, request_id, 1",
        )?
        .query_row(params![secret_hash, now.0], from_row)
        .optional()?;
    Ok(found)
}

/// Looks at a link without using it, or `None` for an unknown link.
pub(crate) fn peek(
    conn: &rusqlite::Connection,
    secret_hash: &str,
    now: Timestamp,
) -> Result<Option<LinkRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT secret_hash, human, next_path, request_id,
                    used_at IS NULL AND expires_at > ?2
             FROM login_links WHERE secret_hash = ?1",
        )?
        .query_row(params![secret_hash, now.0], from_row)
        .optional()?)
}
