//! The one way in: every channel (the agent and admin API, the web pages, Telegram, the command
//! line) reaches records through these operations, so an operation means the same wherever it is
//! offered and is written once. One file per concern:
//!
//! | file | owns |
//! |---|---|
//! | `permissions` | requests: decide, read, verify, use, revoke, expire, prune |
//! | `tokens` | a protected service's introspect and use, by the token alone |
//! | `agents` | agents and their keys, admin tokens |
//! | `protected` | protected services and their keys |
//! | `sessions`, `login_links` | web sessions of humans and the one-time links that start them |
//! | `approvers` | Telegram approvers, link codes, the approval messages sent |
//! | `audit` | reading, exporting and checking the audit trail; backups |
//! | `auth` | who presents a key or token (the limits around it are `api::limits`') |
//!
//! Each state change commits together with its audit event; [`Service`]'s store is private to
//! this module, so the compiler keeps channels on these operations.

use std::sync::Arc;

use crate::audit::NewEvent;
use crate::changes::{Hub, Listener};
use crate::clock::{Clock, Timestamp};
use crate::domain::{Actor, Agent, Permission};
use crate::error::{Error, Result};
use crate::policy::live::LivePolicy;
use crate::rate_limit::RateLimiter;
use crate::secret;
use crate::store::{Store, agents as agent_sql};
use crate::wire::permissions::UseOutcome;

pub(crate) mod agents;
pub(crate) mod approvers;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod login_links;
mod permissions;
pub(crate) mod protected;
pub(crate) mod sessions;
mod tokens;

pub(crate) use crate::domain::token::UseRequest;
pub(crate) use permissions::RequestOutcome;

/// How long a running server may answer `verify` from a read taken before a change made by
/// another process (the command line); see `store::recent`.
pub(crate) const VERIFY_LEASE: std::time::Duration = crate::store::recent::LEASE;

/// Everything the operations need, shared by all handlers.
pub struct Service {
    store: Store,
    policy: Arc<LivePolicy>,
    hub: Hub,
    clock: Clock,
    /// Base of the links handed out, without a trailing slash.
    public_url: String,
    /// Rate limits and the pending-requests cap.
    limiter: RateLimiter,
}

impl Service {
    /// The service `agent-otp serve` runs.
    pub fn new(
        store: Store,
        policy: Arc<LivePolicy>,
        clock: Clock,
        public_url: String,
        limiter: RateLimiter,
    ) -> Service {
        Service {
            store,
            policy,
            hub: Hub::new(),
            clock,
            public_url,
            limiter,
        }
    }

    /// The operator's service: the command line runs the same operations on the database, with
    /// no server. It loads no policy file (the built-in rule stands in; nothing offline decides
    /// a request), uses the default limits, and its links use the public URL the server last
    /// wrote down. `store` must be the operator's ([`Store::open_existing`]: one transaction and
    /// one checkpoint per change).
    pub fn offline(store: Store, clock: Clock) -> Result<Service> {
        if !store.is_operators() {
            return Err(Error::Internal(
                "the operator's service needs a store from Store::open_existing".into(),
            ));
        }
        let public_url = store
            .read_blocking(|c| crate::store::get_meta(c, "public_url"))?
            .unwrap_or_default();
        let policy = Arc::new(LivePolicy::builtin(clock.now()));
        let limiter = RateLimiter::new(crate::rate_limit::Limits::default());
        Ok(Service::new(store, policy, clock, public_url, limiter))
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<LivePolicy> {
        &self.policy
    }

    /// Base of the links handed out, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Rate limits, for the HTTP glue that applies them (`api::limits`, `api::bodies`).
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Listens for requests that change (subscribe before reading, re-read after a wake-up).
    pub fn subscribe(&self) -> Listener {
        self.hub.subscribe()
    }

    /// How many listen for changes now (for tests: see `AppHandle::listeners`).
    pub fn listeners(&self) -> usize {
        self.hub.listeners()
    }

    /// The database file (for messages: which database a command changed).
    pub fn database(&self) -> &std::path::Path {
        self.store.path()
    }
}

/// The answer for an agent key that is no longer valid.
pub(crate) fn unauthorized() -> Error {
    Error::Unauthorized("a valid agent key is required".into())
}

/// Confirms, inside a write, that `agent` is live and still has the key it authenticated with.
fn confirm_live(conn: &rusqlite::Connection, agent: &Agent) -> Result<()> {
    match agent_sql::live_key_hash(conn, &agent.id)? {
        Some(stored) if secret::hashes_equal(&stored, &agent.key_hash) => Ok(()),
        _ => Err(unauthorized()),
    }
}

/// Counts a token use for the metrics.
fn record_use(outcome: &UseOutcome) {
    match outcome {
        UseOutcome::Used { checked, .. } => crate::metrics::record_use(None, *checked),
        UseOutcome::Refused { code, .. } => crate::metrics::record_use(Some(code), false),
    }
}

fn event(
    actor: Actor,
    kind: &'static str,
    details: impl Into<crate::audit::Canonical>,
    row: &Permission,
) -> NewEvent {
    NewEvent::new(actor, kind, details)
        .request(&row.id)
        .agent(&row.agent_id)
}
