//! SQL for admin tokens (hashes only).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;
use crate::clock::Timestamp;

/// Stores a new admin token's hash under a human-readable name.
pub fn insert(
    tx: &Transaction<'_>,
    id: &str,
    name: &str,
    token_hash: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO admin_tokens(id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, name, token_hash, at.0])?;
    Ok(())
}

/// The `(name, stored hash)` of the live admin token whose hash is `token_hash`.
pub fn live_by_hash(
    conn: &Connection,
    token_hash: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT name, token_hash FROM admin_tokens WHERE token_hash = ?1 AND revoked_at IS NULL")?.query_row(
            [token_hash],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}
