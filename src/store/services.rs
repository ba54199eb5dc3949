//! SQL for protected services and their key hashes.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{StoreError, json_column};
use crate::clock::Timestamp;
use crate::domain::ProtectedService;
use crate::domain::ServiceId;

const COLUMNS: &str = "id, name, actions, created_at, revoked_at, key_hash";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ProtectedService> {
    Ok(ProtectedService {
        id: ServiceId(r.get(0)?),
        name: r.get(1)?,
        actions: json_column(r, 2)?,
        created_at: Timestamp(r.get(3)?),
        revoked_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
        key_hash: r.get(5)?,
    })
}

/// Inserts a new service; `Ok(false)` when the name is taken.
pub(crate) fn insert(tx: &Transaction<'_>, service: &ProtectedService) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT INTO services(id, name, key_hash, actions, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO NOTHING",
        )?
        .execute(params![
            service.id.as_str(),
            service.name,
            service.key_hash,
            serde_json::to_string(&service.actions)?,
            service.created_at.0
        ])?;
    Ok(n == 1)
}

/// The live service whose key hashes to `key_hash`.
pub(crate) fn live_by_key_hash(
    conn: &Connection,
    key_hash: &str,
) -> Result<Option<ProtectedService>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM services WHERE key_hash = ?1 AND revoked_at IS NULL");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([key_hash], from_row)
        .optional()?)
}

/// The key hash of the service with this id, if it is not revoked.
pub(crate) fn live_key_hash(
    conn: &Connection,
    id: &ServiceId,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT key_hash FROM services WHERE id = ?1 AND revoked_at IS NULL")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?)
}

/// The service with this id or, failing that, this name.
pub(crate) fn by_id_or_name(
    conn: &Connection,
    id_or_name: &str,
) -> Result<Option<ProtectedService>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM services WHERE id = ?1
         UNION ALL SELECT {COLUMNS} FROM services WHERE name = ?1 LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id_or_name], from_row)
        .optional()?)
}

/// Every service, oldest first.
pub(crate) fn list(conn: &Connection) -> Result<Vec<ProtectedService>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM services ORDER BY created_at, name"
    ))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Marks a service revoked; `Ok(false)` when it already was.
pub(crate) fn revoke(
    tx: &Transaction<'_>,
    id: &ServiceId,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached("UPDATE services SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?
        .execute(params![id.as_str(), at.0])?;
    Ok(n == 1)
}
