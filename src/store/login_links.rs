//! SQL for one-time login links (hashes only).

use rusqlite::{OptionalExtension, Transaction, params};

use super::StoreError;
use crate::clock::Timestamp;

/// Stores a new link.
pub fn insert(
    tx: &Transaction<'_>,
    secret_hash: &str,
    human: &str,
    next_path: Option<&str>,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO login_links(secret_hash, human, next_path, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![secret_hash, human, next_path, now.0, expires_at.0])?;
    Ok(())
}

/// Marks an unused, unexpired link used and returns `(stored hash, human, next path)`;
/// `None` when there is no such live link.
pub fn redeem(
    tx: &Transaction<'_>,
    secret_hash: &str,
    now: Timestamp,
) -> Result<Option<(String, String, Option<String>)>, StoreError> {
    let found = tx
        .prepare_cached(
            "UPDATE login_links SET used_at = ?2
             WHERE secret_hash = ?1 AND used_at IS NULL AND expires_at > ?2
             RETURNING secret_hash, human, next_path",
        )?
        .query_row(params![secret_hash, now.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    Ok(found)
}

/// Looks at a link without using it: `(next path, still usable)`, or `None` for an unknown link.
pub fn peek(
    conn: &rusqlite::Connection,
    secret_hash: &str,
    now: Timestamp,
) -> Result<Option<(Option<String>, bool)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT next_path, used_at IS NULL AND expires_at > ?2 FROM login_links
             WHERE secret_hash = ?1",
        )?
        .query_row(params![secret_hash, now.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}
