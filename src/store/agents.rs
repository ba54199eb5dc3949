//! SQL for agents and their key hashes.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::StoreError;
use crate::clock::Timestamp;
use crate::domain::Agent;
use crate::domain::AgentId;

const COLUMNS: &str = "id, name, created_at, revoked_at, key_hash";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: AgentId(r.get(0)?),
        name: r.get(1)?,
        created_at: Timestamp(r.get(2)?),
        revoked_at: r.get::<_, Option<i64>>(3)?.map(Timestamp),
        key_hash: r.get(4)?,
    })
}

/// Inserts a new agent; `Ok(false)` when the name is taken.
pub(crate) fn insert(tx: &Transaction<'_>, agent: &Agent) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT INTO agents(id, name, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO NOTHING",
        )?
        .execute(params![
            agent.id.as_str(),
            agent.name,
            agent.key_hash,
            agent.created_at.0
        ])?;
    Ok(n == 1)
}

/// The agent whose key hashes to `key_hash`, revoked or not.
pub(crate) fn by_key_hash(conn: &Connection, key_hash: &str) -> Result<Option<Agent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM agents WHERE key_hash = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([key_hash], from_row)
        .optional()?)
}

/// The key hash of the agent with this id, if it is not revoked.
pub(crate) fn live_key_hash(conn: &Connection, id: &AgentId) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT key_hash FROM agents WHERE id = ?1 AND revoked_at IS NULL")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?)
}

/// The agent with this id or, failing that, this name.
pub(crate) fn by_id_or_name(
    conn: &Connection,
    id_or_name: &str,
) -> Result<Option<Agent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agents WHERE id = ?1
         UNION ALL SELECT {COLUMNS} FROM agents WHERE name = ?1 LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id_or_name], from_row)
        .optional()?)
}

/// Every agent, oldest first.
pub(crate) fn list(conn: &Connection) -> Result<Vec<Agent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM agents ORDER BY created_at, name"
    ))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Marks an agent revoked; `Ok(false)` when it already was.
pub(crate) fn revoke(
    tx: &Transaction<'_>,
    id: &AgentId,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached("UPDATE agents SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?
        .execute(params![id.as_str(), at.0])?;
    Ok(n == 1)
}
