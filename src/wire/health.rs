//! What `GET /health` answers.

use serde::Serialize;
use utoipa::ToSchema;

use crate::policy::live::PolicyStatus;

/// The service is up; this policy is in force.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: &'static str,
    /// The policy in force; only for an admin token or a web session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyStatus>,
}
