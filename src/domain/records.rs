//! What the service keeps about agents, protected services, humans and requests: plain records
//! every layer shares. The store reads and writes them; channels show them; the wire never
//! serializes them (its views are built from them, so a stored hash cannot reach an answer).

use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::domain::{AgentId, RequestId, ServiceId, Status};
use crate::error::{Error, Result};

/// Longest agent or admin token name.
pub(crate) const NAME_MAX_CHARS: usize = 64;

/// Checks a name for an agent or admin token: 1–64 of `A–Z a–z 0–9 . _ -`.
pub(crate) fn check_name(name: &str) -> Result<()> {
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

/// An agent as stored (the key itself is never stored).
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub key_hash: String,
}

/// A protected service as stored (the key itself is never stored).
#[derive(Debug, Clone)]
pub struct ProtectedService {
    pub id: ServiceId,
    pub name: String,
    /// The action patterns it serves, e.g. `gmail.*`.
    pub actions: Vec<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub key_hash: String,
}

/// An admin token as stored (the token itself is never stored).
#[derive(Debug, Clone)]
pub struct AdminToken {
    /// Public handle, shown by `admin token list` and used to revoke.
    pub id: String,
    /// Who uses it; decisions are recorded as `human:<name>`.
    pub name: String,
    pub token_hash: String,
    pub created_at: Timestamp,
    /// After this instant the token no longer authenticates; `None`: it does not expire.
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl AdminToken {
    /// Whether it authenticates at `now`: not revoked, not expired.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A session as stored (the cookie secret itself is never stored).
#[derive(Debug, Clone)]
pub struct Session {
    /// Public handle, safe to show and to put in a form.
    pub id: String,
    pub secret_hash: String,
    pub human: String,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    /// The one permission request this session may see and decide; `None`: a full session.
    pub request_id: Option<String>,
}

/// A linked approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    pub user_id: i64,
    pub chat_id: i64,
    /// A display name taken from Telegram at link time.
    pub name: String,
    pub linked_at: Timestamp,
}

/// A permission request as stored.
#[derive(Debug, Clone)]
pub struct Permission {
    pub id: RequestId,
    pub agent_id: AgentId,
    /// Filled from the agents table on reads; ignored on insert.
    pub agent_name: String,
    pub action: String,
    pub resource: Option<String>,
    pub requested_scope: Map<String, Value>,
    /// The scope in force: requested ∧ rule template ∧ human edits.
    pub scope: Map<String, Value>,
    pub context: Map<String, Value>,
    pub status: Status,
    pub reason: Option<String>,
    pub rule: Option<String>,
    pub policy_version: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub ttl_secs: i64,
    pub uses_total: i64,
    pub uses_remaining: i64,
    pub token_hash: Option<String>,
    pub token_issued_at: Option<Timestamp>,
    /// Pending: when the request lapses. Approved: when the token stops working.
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    /// A use must carry `actionDetails` (the deciding rule's `requireActionDetails`).
    pub require_details: bool,
    /// The exact details the request said it will perform, if it gave them.
    pub action_details: Option<Map<String, Value>>,
    /// SHA-256 (hex) of `action_details`' canonical JSON: every use must present the same.
    pub details_digest: Option<String>,
}

/// Filters for listing requests; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct PermissionFilter {
    pub status: Option<Status>,
    pub agent_id: Option<AgentId>,
}

/// Filters for listing and exporting events; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub request_id: Option<String>,
    pub agent_id: Option<String>,
    pub event: Option<String>,
    /// Only events at or after this instant.
    pub since: Option<Timestamp>,
    /// Only events before this instant.
    pub until: Option<Timestamp>,
}

/// One approval message that still shows its buttons.
#[derive(Debug, Clone)]
pub struct OpenMessage {
    pub id: i64,
    pub chat_id: i64,
    pub message_id: Option<i32>,
}
