//! Agent and admin-token bookkeeping shared by the command line and the admin API: each change
//! is written with its audit event in the caller's transaction, and secrets are handed back once.

use rusqlite::Transaction;
use serde_json::json;

use crate::audit::NewEvent;
use crate::clock::Timestamp;
use crate::domain::{Actor, AgentId, RequestId, Status};
use crate::error::{Error, Result};
use crate::secret::{self, ADMIN_TOKEN_PREFIX, AGENT_KEY_PREFIX, Secret};
use crate::store::agents::{self as sql, AgentRow};
use crate::store::{admin_tokens, audit, permissions};

/// Longest agent or admin token name.
pub const NAME_MAX_CHARS: usize = 64;

/// Checks a name for an agent or admin token: 1–64 of `A–Z a–z 0–9 . _ -`.
pub fn check_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > NAME_MAX_CHARS || !ok_chars {
        return Err(Error::invalid(
            "name",
            format!("must be 1–{NAME_MAX_CHARS} characters of A–Z, a–z, 0–9, '.', '_' or '-'"),
        ));
    }
    Ok(())
}

/// Creates an agent and returns it with its key (shown once, stored only as a hash).
pub fn create(
    tx: &Transaction<'_>,
    name: &str,
    by: &Actor,
    now: Timestamp,
) -> Result<(AgentRow, Secret)> {
    check_name(name)?;
    let key = secret::generate(AGENT_KEY_PREFIX)?;
    let agent = AgentRow {
        id: AgentId::new_random(),
        name: name.to_owned(),
        created_at: now,
        revoked_at: None,
        key_hash: key.hash(),
    };
    if !sql::insert(tx, &agent)? {
        return Err(Error::Conflict(format!(
            "an agent named {name:?} already exists"
        )));
    }
    let ev = NewEvent::new(by, "agent.created", json!({ "name": name })).agent(&agent.id);
    audit::append(tx, now, &ev)?;
    Ok((agent, key))
}

/// Revokes an agent by id or name; its key stops working at once, and its pending and approved
/// requests end as `revoked` (an approver must not be asked about, nor a token outlive, a dead
/// agent). Returns the agent and the requests it ended. Already revoked → conflict.
pub fn revoke(
    tx: &Transaction<'_>,
    id_or_name: &str,
    by: &Actor,
    now: Timestamp,
) -> Result<(AgentRow, Vec<RequestId>)> {
    let Some(mut agent) = sql::by_id_or_name(tx, id_or_name)? else {
        return Err(Error::NotFound(format!(
            "no agent with id or name {id_or_name:?}"
        )));
    };
    if !sql::revoke(tx, &agent.id, now)? {
        return Err(Error::Conflict(format!(
            "agent {:?} is already revoked",
            agent.name
        )));
    }
    let ev = NewEvent::new(by, "agent.revoked", json!({ "name": agent.name })).agent(&agent.id);
    audit::append(tx, now, &ev)?;
    let mut ended = Vec::new();
    for (id, status) in permissions::live_for_agent(tx, &agent.id)? {
        if permissions::end(tx, &id, status, Status::Revoked, &by.to_string(), now)? {
            let d = json!({ "was": status, "why": "the agent was revoked" });
            let ev = NewEvent::new(by, "permission.revoked", d)
                .request(&id)
                .agent(&agent.id);
            audit::append(tx, now, &ev)?;
            ended.push(id);
        }
    }
    agent.revoked_at = Some(now);
    Ok((agent, ended))
}

/// Creates an admin token for the human called `name`; returns it once.
pub fn create_admin_token(
    tx: &Transaction<'_>,
    name: &str,
    by: &Actor,
    now: Timestamp,
) -> Result<Secret> {
    check_name(name)?;
    let token = secret::generate(ADMIN_TOKEN_PREFIX)?;
    admin_tokens::insert(
        tx,
        &uuid::Uuid::new_v4().to_string(),
        name,
        &token.hash(),
        now,
    )?;
    audit::append(
        tx,
        now,
        &NewEvent::new(by, "admin_token.created", json!({ "name": name })),
    )?;
    Ok(token)
}
