//! SQL for admin tokens (hashes only).

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::StoreError;
use crate::clock::Timestamp;
use crate::domain::AdminToken;

const COLUMNS: &str = "id, name, token_hash, created_at, expires_at, last_used_at, revoked_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<AdminToken> {
    Ok(AdminToken {
        id: r.get(0)?,
        name: r.get(1)?,
        token_hash: r.get(2)?,
        created_at: Timestamp(r.get(3)?),
        expires_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
        last_used_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
        revoked_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
    })
}

/// Stores a new admin token.
pub(crate) fn insert(tx: &Transaction<'_>, t: &AdminToken) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO admin_tokens(id, name, token_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        t.id,
        t.name,
        t.token_hash,
        t.created_at.0,
        t.expires_at.map(|e| e.0)
    ])?;
    Ok(())
}

/// The live (unrevoked, unexpired at `now`) admin token whose hash is `token_hash`.
pub(crate) fn live_by_hash(
    conn: &Connection,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<AdminToken>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM admin_tokens WHERE token_hash = ?1 AND revoked_at IS NULL
         AND (expires_at IS NULL OR expires_at > ?2)"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![token_hash, now.0], from_row)
        .optional()?)
}

/// Every admin token, newest first.
pub(crate) fn list(conn: &Connection) -> Result<Vec<AdminToken>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM admin_tokens ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The tokens whose id is `id_or_name`, or else those named `id_or_name`.
pub(crate) fn by_id_or_name(
    conn: &Connection,
    id_or_name: &str,
) -> Result<Vec<AdminToken>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM admin_tokens WHERE id = ?1
         UNION ALL
         SELECT {COLUMNS} FROM admin_tokens WHERE name = ?1
           AND NOT EXISTS (SELECT 1 FROM admin_tokens WHERE id = ?1)
         ORDER BY created_at, id"
    ))?;
    let rows = stmt
        .query_map([id_or_name], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Revokes token `id`; `false` when it was already revoked.
pub(crate) fn revoke(tx: &Transaction<'_>, id: &str, at: Timestamp) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE admin_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![id, at.0])?
        == 1)
}

/// Records that token `id` was used at `at`.
pub(crate) fn touch(tx: &Transaction<'_>, id: &str, at: Timestamp) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE admin_tokens SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
    )?
    .execute(params![id, at.0])?;
    Ok(())
}
