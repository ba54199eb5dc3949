//! SQL for permission requests. Every state change is one conditional UPDATE on the expected
//! current status, so when two writers race the second changes nothing and learns it lost.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde_json::{Map, Value};

use super::{StoreError, json_column};
use crate::clock::Timestamp;
use crate::domain::{AgentId, RequestId, Status};
use crate::domain::{Permission, PermissionFilter};

macro_rules! columns {
    () => {
        "p.id, p.agent_id, a.name, p.action, p.resource, p.requested_scope, p.scope,
        p.context, p.status, p.reason, p.rule, p.policy_version, p.decided_by, p.decided_at,
        p.ttl_secs, p.uses_total, p.uses_remaining, p.token_hash, p.token_issued_at, p.expires_at,
        p.created_at, p.require_details, p.action_details, p.details_digest"
    };
}
const COLUMNS: &str = columns!();
/// How many columns `columns!()` selects (what a query adds after them starts here).
const COLUMN_COUNT: usize = 24;

fn from_row(r: &Row<'_>) -> rusqlite::Result<Permission> {
    let status: String = r.get(8)?;
    Ok(Permission {
        id: RequestId(r.get(0)?),
        agent_id: AgentId(r.get(1)?),
        agent_name: r.get(2)?,
        action: r.get(3)?,
        resource: r.get(4)?,
        requested_scope: json_column(r, 5)?,
        scope: json_column(r, 6)?,
        context: json_column(r, 7)?,
        status: status.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, e.into())
        })?,
        reason: r.get(9)?,
        rule: r.get(10)?,
        policy_version: r.get(11)?,
        decided_by: r.get(12)?,
        decided_at: r.get::<_, Option<i64>>(13)?.map(Timestamp),
        ttl_secs: r.get(14)?,
        uses_total: r.get(15)?,
        uses_remaining: r.get(16)?,
        token_hash: r.get(17)?,
        token_issued_at: r.get::<_, Option<i64>>(18)?.map(Timestamp),
        expires_at: Timestamp(r.get(19)?),
        created_at: Timestamp(r.get(20)?),
        require_details: r.get(21)?,
        action_details: match r.get::<_, Option<String>>(22)? {
            Some(_) => Some(json_column(r, 22)?),
            None => None,
        },
        details_digest: r.get(23)?,
    })
}

/// How many of `agent`'s requests are pending and not yet lapsed at `now`, and when the first of
/// them lapses.
pub(crate) fn pending_of_agent(
    conn: &Connection,
    agent: &AgentId,
    now: Timestamp,
) -> Result<(i64, Option<Timestamp>), StoreError> {
    Ok(conn.query_row(
        "SELECT count(*), min(expires_at) FROM permissions
         WHERE agent_id = ?1 AND status = 'pending' AND expires_at > ?2",
        params![agent.as_str(), now.0],
        |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.map(Timestamp))),
    )?)
}

/// Stores a new request.
pub(crate) fn insert(tx: &Transaction<'_>, p: &Permission) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO permissions(id, agent_id, action, resource, requested_scope, scope, context,
            status, reason, rule, policy_version, decided_by, decided_at, ttl_secs, uses_total,
            uses_remaining, token_hash, token_issued_at, expires_at, created_at, require_details,
            action_details, details_digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23)",
    )?
    .execute(params![
        p.id.as_str(),
        p.agent_id.as_str(),
        p.action,
        p.resource,
        serde_json::to_string(&p.requested_scope)?,
        serde_json::to_string(&p.scope)?,
        serde_json::to_string(&p.context)?,
        p.status.as_str(),
        p.reason,
        p.rule,
        p.policy_version,
        p.decided_by,
        p.decided_at.map(|t| t.0),
        p.ttl_secs,
        p.uses_total,
        p.uses_remaining,
        p.token_hash,
        p.token_issued_at.map(|t| t.0),
        p.expires_at.0,
        p.created_at.0,
        p.require_details,
        p.action_details
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
        p.details_digest,
    ])?;
    Ok(())
}

/// One request by id.
pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<Permission>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM permissions p JOIN agents a ON a.id = p.agent_id WHERE p.id = ?1"
    );
    Ok(conn
        .prepare_cached(SQL)?
        .query_row([id], from_row)
        .optional()?)
}

/// The owning agent's credentials as they are now, read together with its request.
#[derive(Clone)]
pub struct Owner {
    pub key_hash: String,
    pub revoked: bool,
}

/// A request read together with its owner's credentials.
pub struct OwnedRow {
    pub row: Arc<Permission>,
    pub owner: Owner,
    /// SQLite's rowid of the request, which the writer's update hook reports.
    pub rowid: i64,
    /// Bytes of its stored JSON (scopes and context): roughly what keeping it in memory costs.
    pub json_bytes: usize,
}

/// The request whose token, issued before tokens named their request (migration 010), hashes to
/// `token_hash`. Newer tokens are found by the id they name ([`get`]).
pub(crate) fn get_by_unnamed_token(
    conn: &Connection,
    token_hash: &str,
) -> Result<Option<Permission>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM permissions p JOIN agents a ON a.id = p.agent_id",
        " WHERE p.token_hash = ?1 AND p.unnamed_token = 1"
    );
    Ok(conn
        .prepare_cached(SQL)?
        .query_row([token_hash], from_row)
        .optional()?)
}

/// Calls `f` with every request's state (for `audit verify`'s replay), without loading them all.
pub(crate) fn for_each_state(
    conn: &Connection,
    mut f: impl FnMut(crate::audit::replay::StoredState),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, status, uses_remaining, scope, token_hash, agent_id, action, resource,
                expires_at, require_details, details_digest FROM permissions",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(crate::audit::replay::StoredState {
            id: r.get(0)?,
            status: r.get(1)?,
            uses_remaining: r.get(2)?,
            scope: json_column(r, 3)?,
            token_hash: r.get(4)?,
            agent_id: r.get(5)?,
            action: r.get(6)?,
            resource: r.get(7)?,
            expires_at: r.get(8)?,
            require_details: r.get(9)?,
            details_digest: r.get(10)?,
        });
    }
    Ok(())
}

/// One request by id with its owner's credentials, so the caller is confirmed in the same read.
pub(crate) fn get_with_owner(conn: &Connection, id: &str) -> Result<Option<OwnedRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        ", a.key_hash, a.revoked_at IS NOT NULL, p.rowid,",
        " length(p.requested_scope) + length(p.scope) + length(p.context)",
        " + coalesce(length(p.action_details), 0)",
        " FROM permissions p JOIN agents a ON a.id = p.agent_id WHERE p.id = ?1"
    );
    Ok(conn
        .prepare_cached(SQL)?
        .query_row([id], |r| {
            Ok(OwnedRow {
                row: Arc::new(from_row(r)?),
                owner: Owner {
                    key_hash: r.get(COLUMN_COUNT)?,
                    revoked: r.get(COLUMN_COUNT + 1)?,
                },
                rowid: r.get(COLUMN_COUNT + 2)?,
                json_bytes: usize::try_from(r.get::<_, i64>(COLUMN_COUNT + 3)?)
                    .unwrap_or(usize::MAX),
            })
        })
        .optional()?)
}

/// What a decision writes.
#[derive(Debug, Clone)]
pub(crate) struct DecisionUpdate<'a> {
    pub to: Status,
    pub decided_by: &'a str,
    pub at: Timestamp,
    pub reason: Option<&'a str>,
    /// For approvals: the granted scope, uses and token lifetime.
    pub scope: &'a Map<String, Value>,
    pub ttl_secs: i64,
    pub uses: i64,
    pub expires_at: Timestamp,
}

/// Decides a pending request; `Ok(false)` when it was no longer pending.
pub(crate) fn decide(
    tx: &Transaction<'_>,
    id: &RequestId,
    d: &DecisionUpdate<'_>,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE permissions SET status = ?2, decided_by = ?3, decided_at = ?4, reason = ?5,
            scope = ?6, ttl_secs = ?7, uses_total = ?8, uses_remaining = ?8, expires_at = ?9
         WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![
            id.as_str(),
            d.to.as_str(),
            d.decided_by,
            d.at.0,
            d.reason,
            serde_json::to_string(d.scope)?,
            d.ttl_secs,
            d.uses,
            d.expires_at.0
        ])?;
    Ok(n == 1)
}

/// Records the hash of the token minted for an approved, unexpired request; `Ok(false)` if one
/// already was or the grant has lapsed.
pub(crate) fn set_token(
    tx: &Transaction<'_>,
    id: &RequestId,
    token_hash: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE permissions SET token_hash = ?2, token_issued_at = ?3
         WHERE id = ?1 AND status = 'approved' AND token_hash IS NULL AND expires_at > ?3",
        )?
        .execute(params![id.as_str(), token_hash, at.0])?;
    Ok(n == 1)
}

/// Takes one use when exactly `remaining` are left; the last use makes the request `used`.
pub(crate) fn consume_use(
    tx: &Transaction<'_>,
    id: &RequestId,
    remaining: i64,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE permissions SET uses_remaining = uses_remaining - 1,
            status = CASE WHEN uses_remaining = 1 THEN 'used' ELSE status END
         WHERE id = ?1 AND status = 'approved' AND uses_remaining = ?2 AND uses_remaining > 0",
        )?
        .execute(params![id.as_str(), remaining])?;
    Ok(n == 1)
}

/// Moves a live request (`pending` or `approved`) to a final status; `Ok(false)` if it was not live.
pub(crate) fn end(
    tx: &Transaction<'_>,
    id: &RequestId,
    from: Status,
    to: Status,
    by: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    // A pending request that ends is also decided by whoever ended it.
    let n = tx
        .prepare_cached(
            "UPDATE permissions SET status = ?3,
            decided_by = CASE WHEN status = 'pending' THEN ?4 ELSE decided_by END,
            decided_at = CASE WHEN status = 'pending' THEN ?5 ELSE decided_at END
         WHERE id = ?1 AND status = ?2",
        )?
        .execute(params![id.as_str(), from.as_str(), to.as_str(), by, at.0])?;
    Ok(n == 1)
}

/// An agent's live (`pending` or `approved`) requests.
pub(crate) fn live_for_agent(
    conn: &Connection,
    agent: &AgentId,
) -> Result<Vec<(RequestId, Status)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, status FROM permissions
         WHERE agent_id = ?1 AND status IN ('pending', 'approved')",
    )?;
    let rows = stmt
        .query_map([agent.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, s)| Ok((RequestId(id), s.parse().map_err(StoreError::Corrupt)?)))
        .collect()
}

/// Live requests whose time is up: `(id, agent id, status)`, at most `limit`.
pub(crate) fn due_to_expire(
    conn: &Connection,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<(RequestId, AgentId, Status)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, agent_id, status FROM permissions
         WHERE status IN ('pending', 'approved') AND expires_at <= ?1
         ORDER BY expires_at LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![now.0, limit], |r| {
            let status: String = r.get(2)?;
            Ok((RequestId(r.get(0)?), AgentId(r.get(1)?), status))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, agent, s)| Ok((id, agent, s.parse().map_err(StoreError::Corrupt)?)))
        .collect()
}

/// Finished requests (denied, expired, used, revoked) whose time ended before `cutoff`:
/// `(id, agent id)`, oldest first, at most `limit`.
pub(crate) fn finished_before(
    conn: &Connection,
    cutoff: Timestamp,
    limit: i64,
) -> Result<Vec<(RequestId, AgentId)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, agent_id FROM permissions
         WHERE status IN ('denied', 'expired', 'used', 'revoked') AND expires_at < ?1
         ORDER BY expires_at LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![cutoff.0, limit], |r| {
            Ok((RequestId(r.get(0)?), AgentId(r.get(1)?)))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Deletes a finished request's row and what hangs off it (its Telegram messages); `Ok(false)`
/// when it is gone or not finished.
pub(crate) fn delete_finished(tx: &Transaction<'_>, id: &RequestId) -> Result<bool, StoreError> {
    tx.prepare_cached("DELETE FROM telegram_messages WHERE request_id = ?1")?
        .execute([id.as_str()])?;
    let n = tx
        .prepare_cached(
            "DELETE FROM permissions
             WHERE id = ?1 AND status IN ('denied', 'expired', 'used', 'revoked')",
        )?
        .execute([id.as_str()])?;
    Ok(n == 1)
}

/// The `WHERE` of [`page`] for the filters given, binding the status as `?1` and the agent as
/// `?2` in every form. One form for all (`?1 IS NULL OR p.status = ?1`) is planned before the
/// values are bound, so SQLite scanned the whole table for it: every `/metrics` scrape counted
/// the pending requests by reading every request ever made.
fn page_filter(status: bool, agent: bool) -> &'static str {
    match (status, agent) {
        (true, true) => "WHERE p.status = ?1 AND p.agent_id = ?2",
        (true, false) => "WHERE p.status = ?1 AND ?2 IS NULL",
        (false, true) => "WHERE ?1 IS NULL AND p.agent_id = ?2",
        (false, false) => "WHERE ?1 IS NULL AND ?2 IS NULL",
    }
}

/// Newest requests first, one page, plus the total matching. Newest is the last stored: rowids
/// only grow (a new row takes one more than the largest), so the table and the agent index give
/// that order without reading every row (migration 011). A `created_at` order needed a sort of
/// them all; the two differ only where two requests were stored in the other order than their
/// clocks read, or the clock stepped back.
pub(crate) fn page(
    conn: &Connection,
    filter: &PermissionFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Permission>, i64), StoreError> {
    let status = filter.status.map(Status::as_str);
    let agent = filter.agent_id.as_ref().map(AgentId::as_str);
    let filter = page_filter(status.is_some(), agent.is_some());
    let total: i64 = conn
        .prepare_cached(&count_sql(filter))?
        .query_row(params![status, agent], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&page_sql(filter))?;
    let rows = stmt
        .query_map(params![status, agent, limit, offset], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

/// The total of [`page`], with its filter (`?1`, `?2`).
fn count_sql(filter: &str) -> String {
    format!("SELECT count(*) FROM permissions p {filter}")
}

/// The query of one page of [`page`], with its filter (`?1`, `?2`), limit and offset.
fn page_sql(filter: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM permissions p JOIN agents a ON a.id = p.agent_id {filter}
         ORDER BY p.rowid DESC LIMIT ?3 OFFSET ?4"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Each filter of the request list reads through an index, and each counts what it names;
    /// newest is the last stored (row 6's clock read earlier than row 5's), and no page without
    /// a status sorts the rows it reads.
    #[test]
    fn filtered_pages_use_an_index_and_count_what_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .read_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO agents(id, name, key_hash, created_at)
                        VALUES ('a', 'a', 'ha', 0), ('b', 'b', 'hb', 0);
                     INSERT INTO permissions(id, agent_id, action, requested_scope, scope, context,
                        status, policy_version, ttl_secs, uses_total, uses_remaining, expires_at,
                        created_at)
                     VALUES ('1', 'a', 'x', '{}', '{}', '{}', 'pending', 'v', 1, 1, 1, 9, 1),
                        ('2', 'a', 'x', '{}', '{}', '{}', 'used', 'v', 1, 1, 0, 9, 2),
                        ('3', 'b', 'x', '{}', '{}', '{}', 'pending', 'v', 1, 1, 1, 9, 3),
                        ('4', 'b', 'x', '{}', '{}', '{}', 'used', 'v', 1, 1, 0, 9, 4),
                        ('5', 'b', 'x', '{}', '{}', '{}', 'used', 'v', 1, 1, 0, 9, 5),
                        ('6', 'a', 'x', '{}', '{}', '{}', 'used', 'v', 1, 1, 0, 9, 4);",
                )?;
                let cases = [
                    (Some(Status::Pending), Some("b"), vec!["3"]),
                    (Some(Status::Used), None, vec!["6", "5", "4", "2"]),
                    (None, Some("a"), vec!["6", "2", "1"]),
                    (None, None, vec!["6", "5", "4", "3", "2", "1"]),
                    (Some(Status::Approved), None, vec![]),
                ];
                for (status, agent, want) in cases {
                    let filter = PermissionFilter {
                        status,
                        agent_id: agent.map(|a| AgentId(a.to_owned())),
                    };
                    let (rows, total) = page(c, &filter, 0, 10)?;
                    let ids: Vec<&str> = rows.iter().map(|p| p.id.as_str()).collect();
                    assert_eq!(
                        (ids, total),
                        (want.clone(), want.len() as i64),
                        "{status:?} {agent:?}"
                    );

                    let clause = page_filter(status.is_some(), agent.is_some());
                    let sql = format!("EXPLAIN QUERY PLAN {}", count_sql(clause));
                    let plan: String =
                        c.query_row(&sql, params![status.map(Status::as_str), agent], |r| {
                            r.get(3)
                        })?;
                    if status.is_some() || agent.is_some() {
                        assert!(
                            plan.starts_with("SEARCH p USING"),
                            "{status:?} {agent:?}: {plan}"
                        );
                    }

                    let sql = format!("EXPLAIN QUERY PLAN {}", page_sql(clause));
                    let plan = c
                        .prepare(&sql)?
                        .query_map(params![status.map(Status::as_str), agent, 10, 0], |r| {
                            r.get::<_, String>(3)
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    if status.is_none() {
                        assert!(
                            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                            "{agent:?}: {plan:?}"
                        );
                    }
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
}
