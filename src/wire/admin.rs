//! The admin API's bodies and answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Timestamp;
use crate::domain::{Agent, AgentId};
use crate::wire::schema;

/// An agent as the admin API shows it (its key's hash is never shown).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentView {
    pub id: AgentId,
    pub name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl From<&Agent> for AgentView {
    fn from(a: &Agent) -> AgentView {
        AgentView {
            id: a.id.clone(),
            name: a.name.clone(),
            created_at: a.created_at,
            revoked_at: a.revoked_at,
        }
    }
}

/// Why the request is denied.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DenyBody {
    /// Shown to the agent.
    #[schema(schema_with = schema::note)]
    pub reason: Option<String>,
}

/// The agent to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAgent {
    #[schema(schema_with = schema::agent_name)]
    pub name: String,
}

/// A new agent and its key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedAgent {
    #[serde(flatten)]
    pub agent: AgentView,
    /// `ak_…`; only its hash is stored.
    pub key: String,
}
