//! Agents that authenticated recently, by the SHA-256 of their key, so an agent's call can skip
//! a read of the agents table.
//!
//! An entry is a claim, not a proof. Every agent operation confirms it in the read or write it
//! does anyway: reading a request joins its agent's row (key hash and revocation), and storing a
//! new request requires the live agent in the same transaction (see `service::permissions`); `verify` may
//! confirm it against a read of that join up to one `store::recent::LEASE` old, which the CLI's
//! `agent revoke` waits out. So an agent revoked by another process (the CLI beside a running
//! server) is refused at its next call after the command returns. A
//! call that fails before it reaches the database is confirmed on its way out, and a refused
//! claim is dropped here (both by `api::confirm_remembered`). Revoking through the server drops
//! it at once.

use crate::domain::Agent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::domain::AgentId;

/// Most agents remembered; a full cache starts over (agents are few and made by operators).
const CAPACITY: usize = 4096;

/// Live agents by key hash.
#[derive(Default)]
pub(super) struct KnownAgents {
    by_key_hash: Mutex<HashMap<String, Arc<Agent>>>,
}

impl KnownAgents {
    /// The agent that last authenticated with this key hash, if it is remembered.
    pub(super) fn get(&self, key_hash: &str) -> Option<Arc<Agent>> {
        self.map().get(key_hash).cloned()
    }

    /// Remembers a live agent that just authenticated from the database.
    pub(super) fn remember(&self, agent: &Arc<Agent>) {
        if agent.revoked_at.is_some() {
            return;
        }
        let mut map = self.map();
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(agent.key_hash.clone(), Arc::clone(agent));
    }

    /// Forgets a key whose claim failed confirmation.
    pub(super) fn forget_key(&self, key_hash: &str) {
        self.map().remove(key_hash);
    }

    /// Forgets an agent that was revoked.
    pub(super) fn forget_agent(&self, id: &AgentId) {
        self.map().retain(|_, a| &a.id != id);
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Agent>>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.by_key_hash
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn agent(id: &str, key_hash: &str, revoked: bool) -> Arc<Agent> {
        Arc::new(Agent {
            id: AgentId(id.to_owned()),
            name: id.to_owned(),
            created_at: Timestamp(0),
            revoked_at: revoked.then_some(Timestamp(1)),
            key_hash: key_hash.to_owned(),
        })
    }

    #[test]
    fn remembers_live_agents_only_and_forgets_by_key_or_agent() {
        let known = KnownAgents::default();
        known.remember(&agent("a", "ha", false));
        known.remember(&agent("b", "hb", true));
        known.remember(&agent("c", "hc", false));
        assert_eq!(known.get("ha").map(|a| a.id.0.clone()), Some("a".into()));
        assert!(
            known.get("hb").is_none(),
            "a revoked agent is never remembered"
        );

        known.forget_key("ha");
        assert!(known.get("ha").is_none());
        known.forget_agent(&AgentId("c".into()));
        assert!(known.get("hc").is_none());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let known = KnownAgents::default();
        for i in 0..CAPACITY {
            known.remember(&agent(&format!("a{i}"), &format!("h{i}"), false));
        }
        assert!(known.get("h0").is_some());
        known.remember(&agent("new", "hnew", false));
        assert!(known.get("h0").is_none());
        assert!(known.get("hnew").is_some());
    }
}
