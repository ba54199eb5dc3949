//! Who presents a key, token or cookie: the lookups behind the API's extractors. A presented
//! secret is hashed, the hash looked up, and the owner's stored hash compared again in constant
//! time by the caller (`api::auth`, which also applies the failed-authentication limits).
//! Sessions are in [`super::sessions`].

use std::sync::Arc;

use super::Service;
use crate::domain::{AdminToken, Agent, ProtectedService};
use crate::error::{Error, Result};
use crate::secret::hashes_equal;
use crate::store::{admin_tokens, agents, services};

/// An admin token's `last_used_at` is written at most this often, in milliseconds.
const TOUCH_ADMIN_TOKEN_EVERY_MS: i64 = 60_000;

/// An agent found by its key hash, and whether it came from memory (a claim the operation
/// confirms in its own read or write; see `store::known_agents`).
pub struct FoundAgent {
    pub agent: Arc<Agent>,
    pub remembered: bool,
}

impl Service {
    /// The agent whose key has this hash: remembered, or read from the agents table and then
    /// remembered. Revoked agents are returned too (the caller refuses them).
    pub async fn agent_by_key_hash(&self, key_hash: &str) -> Result<Option<FoundAgent>> {
        if let Some(agent) = self.store.remembered_agent(key_hash) {
            return Ok(Some(FoundAgent {
                agent,
                remembered: true,
            }));
        }
        let found = self
            .store
            .read_agent_by_key_hash(key_hash.to_owned())
            .await?;
        Ok(found.map(|agent| FoundAgent {
            agent,
            remembered: false,
        }))
    }

    /// Whether `agent` is still live with the key it authenticated with (a remembered claim,
    /// confirmed on its way out when the call failed before reaching the database).
    pub async fn agent_still_live(&self, agent: &Agent) -> Result<bool> {
        let id = agent.id.clone();
        let live = self
            .store
            .lookup(move |c| agents::live_key_hash(c, &id).map_err(Error::from))
            .await?;
        Ok(live.is_some_and(|stored| hashes_equal(&stored, &agent.key_hash)))
    }

    /// Stops trusting a remembered key whose claim failed.
    pub fn forget_agent_key(&self, key_hash: &str) {
        self.store.forget_agent_key(key_hash);
    }

    /// The live protected service whose key has this hash.
    pub async fn protected_service_by_key_hash(
        &self,
        key_hash: String,
    ) -> Result<Option<ProtectedService>> {
        self.store
            .lookup(move |c| services::live_by_key_hash(c, &key_hash).map_err(Error::from))
            .await
    }

    /// The live admin token with this hash.
    pub async fn admin_token_by_hash(&self, hash: String) -> Result<Option<AdminToken>> {
        let now = self.now();
        self.store
            .lookup(move |c| admin_tokens::live_by_hash(c, &hash, now).map_err(Error::from))
            .await
    }

    /// Notes that `token` was used, at most once a minute.
    pub async fn note_admin_token_used(&self, token: &AdminToken) -> Result<()> {
        let now = self.now();
        if token
            .last_used_at
            .is_some_and(|at| now.0 - at.0 < TOUCH_ADMIN_TOKEN_EVERY_MS)
        {
            return Ok(());
        }
        let id = token.id.clone();
        self.store
            .write(move |tx| admin_tokens::touch(tx, &id, now).map_err(Error::from))
            .await
    }
}
