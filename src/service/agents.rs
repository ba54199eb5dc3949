//! Agents and their keys, and admin tokens: created, listed and revoked the same way by the admin
//! API, the web pages and the command line. Each change is written with its audit event, and a
//! secret is handed back once (only its hash is stored).

use crate::domain::{AdminToken, Agent};
use rusqlite::Transaction;

use super::Service;
use serde_json::json;

use crate::audit::NewEvent;
use crate::clock::Timestamp;
use crate::domain::records::check_name;
use crate::domain::{Actor, AgentId, RequestId, Status};
use crate::error::{Error, Result};
use crate::secret::{self, ADMIN_TOKEN_PREFIX, AGENT_KEY_PREFIX, Secret};
use crate::store::admin_tokens;
use crate::store::agents as sql;
use crate::store::{audit, permissions};

/// Creates an agent and returns it with its key (shown once, stored only as a hash).
pub(crate) fn create(
    tx: &Transaction<'_>,
    name: &str,
    by: &Actor,
    now: Timestamp,
) -> Result<(Agent, Secret)> {
    check_name(name)?;
    let key = secret::generate(AGENT_KEY_PREFIX)?;
    let agent = Agent {
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
pub(crate) fn revoke(
    tx: &Transaction<'_>,
    id_or_name: &str,
    by: &Actor,
    now: Timestamp,
) -> Result<(Agent, Vec<RequestId>)> {
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

/// Creates an admin token for the human called `name`, valid until `expires_at` (if given);
/// returns its row and the token, shown once.
pub(crate) fn create_admin_token_until(
    tx: &Transaction<'_>,
    name: &str,
    expires_at: Option<Timestamp>,
    by: &Actor,
    now: Timestamp,
) -> Result<(AdminToken, Secret)> {
    check_name(name)?;
    if expires_at.is_some_and(|e| e <= now) {
        return Err(Error::invalid("expires", "must be in the future"));
    }
    let token = secret::generate(ADMIN_TOKEN_PREFIX)?;
    let row = AdminToken {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        token_hash: token.hash(),
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    admin_tokens::insert(tx, &row)?;
    let d = json!({ "id": row.id, "name": name, "expiresAt": expires_at });
    audit::append(tx, now, &NewEvent::new(by, "admin_token.created", d))?;
    Ok((row, token))
}

/// Revokes an admin token by id, or by name when exactly one live token has that name; it stops
/// working at once, also on a running server (admin tokens are looked up on every call).
pub(crate) fn revoke_admin_token(
    tx: &Transaction<'_>,
    id_or_name: &str,
    by: &Actor,
    now: Timestamp,
) -> Result<AdminToken> {
    let found = admin_tokens::by_id_or_name(tx, id_or_name)?;
    let live: Vec<&AdminToken> = found.iter().filter(|t| t.revoked_at.is_none()).collect();
    let mut token = match (found.as_slice(), live.as_slice()) {
        ([], _) => {
            return Err(Error::NotFound(format!(
                "no admin token with id or name {id_or_name:?}"
            )));
        }
        (_, []) => {
            return Err(Error::Conflict(format!(
                "admin token {id_or_name:?} is already revoked"
            )));
        }
        (_, [one]) => (*one).clone(),
        (_, many) => {
            let ids: Vec<&str> = many.iter().map(|t| t.id.as_str()).collect();
            return Err(Error::Conflict(format!(
                "{} live admin tokens are named {id_or_name:?}; revoke one by id: {}",
                many.len(),
                ids.join(", ")
            )));
        }
    };
    if !admin_tokens::revoke(tx, &token.id, now)? {
        return Err(Error::Conflict(format!(
            "admin token {id_or_name:?} is already revoked"
        )));
    }
    let d = json!({ "id": token.id, "name": token.name });
    audit::append(tx, now, &NewEvent::new(by, "admin_token.revoked", d))?;
    token.revoked_at = Some(now);
    Ok(token)
}

impl Service {
    /// Every agent, oldest first.
    pub async fn agents(&self) -> Result<Vec<Agent>> {
        self.store.read(|c| sql::list(c).map_err(Error::from)).await
    }

    /// The agent with this id or name; 404 if there is none (so a typo in a filter does not
    /// read as "no activity").
    pub async fn agent(&self, id_or_name: &str) -> Result<Agent> {
        let a = id_or_name.to_owned();
        self.store
            .read(move |c| sql::by_id_or_name(c, &a))
            .await?
            .ok_or_else(|| Error::NotFound(format!("no agent with id or name {id_or_name:?}")))
    }

    /// Creates an agent; returns it with its key, shown this once.
    pub async fn create_agent(&self, by: Actor, name: &str) -> Result<(Agent, Secret)> {
        let (now, name) = (self.now(), name.to_owned());
        self.store
            .write(move |tx| create(tx, &name, &by, now))
            .await
    }

    /// Revokes an agent (by id or name) and ends its live requests; see [`revoke`]. Returns the
    /// agent and the requests that ended with it.
    pub async fn revoke_agent(
        &self,
        by: Actor,
        id_or_name: &str,
    ) -> Result<(Agent, Vec<RequestId>)> {
        let now = self.now();
        let id_or_name = id_or_name.to_owned();
        let (agent, ended) = self
            .store
            .write(move |tx| revoke(tx, &id_or_name, &by, now))
            .await?;
        self.store.forget_agent(&agent.id);
        for id in &ended {
            self.hub.publish(id, Status::Revoked);
        }
        Ok((agent, ended))
    }

    /// How many pending or approved requests of this agent would end with it.
    pub async fn live_requests_of(&self, agent: &AgentId) -> Result<usize> {
        let agent = agent.clone();
        let live = self
            .store
            .read(move |c| permissions::live_for_agent(c, &agent).map_err(Error::from))
            .await?;
        Ok(live.len())
    }

    /// Every admin token, oldest first (hashes only).
    pub async fn admin_tokens(&self) -> Result<Vec<AdminToken>> {
        self.store
            .read(|c| admin_tokens::list(c).map_err(Error::from))
            .await
    }

    /// Creates an admin token for `name`, valid until `expires_at` if given; returns it once.
    pub async fn create_admin_token(
        &self,
        by: Actor,
        name: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(AdminToken, Secret)> {
        let (now, name) = (self.now(), name.to_owned());
        self.store
            .write(move |tx| create_admin_token_until(tx, &name, expires_at, &by, now))
            .await
    }

    /// Revokes an admin token by id or (unambiguous) name; see [`revoke_admin_token`].
    pub async fn revoke_admin_token(&self, by: Actor, id_or_name: &str) -> Result<AdminToken> {
        let (now, id_or_name) = (self.now(), id_or_name.to_owned());
        self.store
            .write(move |tx| revoke_admin_token(tx, &id_or_name, &by, now))
            .await
    }
}
