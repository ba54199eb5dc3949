//! The agent API's requests and answers, and the request views every channel's JSON shows.

use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;

use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::clock::Timestamp;
use crate::domain::request::{Asked, Edits, ValidRequest};
use crate::domain::{AgentId, Permission, RequestId, Status};
use crate::secret::Secret;
use crate::wire::schema;

/// The body of `POST /permissions/request`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RequestInput {
    /// What the agent wants to do, e.g. `email.send`.
    #[schema(schema_with = schema::action)]
    pub action: String,
    /// What it acts on, e.g. a path or an address.
    #[serde(default)]
    #[schema(schema_with = schema::resource)]
    pub resource: Option<String>,
    /// Constraints the agent accepts; the policy and the human may only narrow them.
    #[serde(default, deserialize_with = "crate::domain::json::strict_object")]
    #[schema(schema_with = schema::nullable_scope)]
    pub scope: Option<Map<String, Value>>,
    /// Why, for the human deciding (never enforced).
    #[serde(default, deserialize_with = "crate::domain::json::strict_object")]
    #[schema(schema_with = schema::nullable_json_object)]
    pub context: Option<Map<String, Value>>,
    /// Token lifetime in seconds.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(schema_with = schema::ttl)]
    pub ttl: Option<i64>,
    /// How many times the token may be used.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(schema_with = schema::uses)]
    pub uses: Option<i64>,
    /// The exact details the agent will perform, if it knows them: the human sees them in full,
    /// and the token is bound to them (every use must present the same details).
    #[serde(default, deserialize_with = "crate::domain::json::strict_object")]
    #[schema(schema_with = schema::nullable_exact_details)]
    pub action_details: Option<Map<String, Value>>,
}

/// What a human may change when approving: each only narrows what was asked.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApprovalEdits {
    /// A shorter token lifetime, in seconds.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(schema_with = schema::shorter_ttl)]
    pub ttl: Option<i64>,
    /// Fewer uses.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(schema_with = schema::fewer_uses)]
    pub uses: Option<i64>,
    /// Narrower scope values: smaller numbers, shorter lists, `false` booleans.
    #[serde(default, deserialize_with = "crate::domain::json::strict_object")]
    #[schema(schema_with = schema::nullable_scope)]
    pub scope: Option<Map<String, Value>>,
    /// A note for the audit trail.
    #[serde(default)]
    #[schema(schema_with = schema::note)]
    pub note: Option<String>,
}

/// Longest token string looked at; real ones are 66 characters (44 if issued before tokens
/// named their request).
pub(crate) const MAX_TOKEN_CHARS: usize = 256;

impl RequestInput {
    /// Checks every field against the input rules, reporting all problems together.
    pub(crate) fn validate(self) -> crate::error::Result<ValidRequest> {
        ValidRequest::check(Asked {
            action: self.action,
            resource: self.resource,
            scope: self.scope,
            context: self.context,
            ttl: self.ttl,
            uses: self.uses,
            action_details: self.action_details,
        })
    }
}

impl From<ApprovalEdits> for Edits {
    fn from(e: ApprovalEdits) -> Edits {
        Edits {
            ttl: e.ttl,
            uses: e.uses,
            scope: e.scope,
            note: e.note,
        }
    }
}

/// The policy denied the request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestDenied {
    pub id: RequestId,
    #[schema(schema_with = schema::status_denied)]
    pub status: Status,
    pub reason: String,
    pub expires_at: Timestamp,
}

/// The policy approved the request: here is the token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestApproved {
    pub id: RequestId,
    #[schema(schema_with = schema::status_approved)]
    pub status: Status,
    /// `otp_…`; only its hash is stored.
    pub token: String,
    #[schema(schema_with = schema::scope)]
    pub scope: Map<String, Value>,
    pub uses_remaining: i64,
    pub expires_at: Timestamp,
}

/// A human must decide: wait on `webhookUrl` (or poll the request).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestPending {
    pub id: RequestId,
    #[schema(schema_with = schema::status_pending)]
    pub status: Status,
    /// The human's approval page (it needs a human login).
    pub approval_url: String,
    /// Where the agent can wait for the decision (`GET` this request with `?wait=60`).
    pub webhook_url: String,
    pub expires_at: Timestamp,
}

/// A token to check.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    #[schema(schema_with = schema::token)]
    pub token: String,
}

/// A token to use, with what is being done.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UseBody {
    #[schema(schema_with = schema::token)]
    pub token: String,
    /// The action being performed; when given it must be the token's.
    #[serde(default)]
    #[schema(schema_with = schema::action)]
    pub action: Option<String>,
    /// The resource acted on; when given it must be the token's.
    #[serde(default)]
    #[schema(schema_with = schema::resource)]
    pub resource: Option<String>,
    /// Checked against the granted scope (and the exact details, if the token is bound to them).
    /// Without them a use consumes the token unchecked, unless the rule requires them.
    #[serde(default, deserialize_with = "crate::domain::json::strict_object")]
    #[schema(schema_with = schema::nullable_json_object)]
    pub action_details: Option<Map<String, Value>>,
}

/// A protected service's use: what it performs is not optional, since it is the one that knows.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ServiceUseBody {
    #[schema(schema_with = schema::token)]
    pub token: String,
    /// The action being performed: it must be the token's (a read token never passes for a
    /// delete because the code path forgot to say which it does).
    #[schema(schema_with = schema::action)]
    pub action: String,
    /// The resource acted on; when given it must be the token's.
    #[serde(default)]
    #[schema(schema_with = schema::resource)]
    pub resource: Option<String>,
    /// What is really being done, checked against the granted scope (and the exact details, if
    /// the token is bound to them).
    #[serde(default, deserialize_with = "crate::domain::json::strict_object")]
    #[schema(schema_with = schema::nullable_json_object)]
    pub action_details: Option<Map<String, Value>>,
}

/// A request as shown to its agent or to a human.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionView {
    pub id: RequestId,
    pub status: Status,
    pub agent_id: AgentId,
    pub agent_name: String,
    pub action: String,
    pub resource: Option<String>,
    /// What the token allows: the request narrowed by the policy and the human.
    #[schema(schema_with = schema::scope)]
    pub scope: Map<String, Value>,
    /// The scope as the agent asked for it.
    #[schema(schema_with = schema::scope)]
    pub requested_scope: Map<String, Value>,
    #[schema(schema_with = schema::json_object)]
    pub context: Map<String, Value>,
    pub reason: Option<String>,
    pub rule: Option<String>,
    pub policy_version: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    /// Token lifetime in seconds.
    pub ttl: i64,
    pub uses_remaining: i64,
    pub token_issued: bool,
    /// The exact details the request said it will perform (the token is bound to them).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::nullable_json_object)]
    pub action_details: Option<Map<String, Value>>,
    /// A use must carry `actionDetails` (the rule's `requireActionDetails`, or exact binding).
    pub require_action_details: bool,
    /// Present exactly once: in the owning agent's first read after a human approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl PermissionView {
    pub fn new(row: Permission, now: Timestamp, token: Option<Secret>) -> PermissionView {
        PermissionView {
            status: row.status.effective(row.expires_at, now),
            token_issued: row.token_hash.is_some() || token.is_some(),
            token: token.map(|t| t.expose().to_owned()),
            id: row.id,
            agent_id: row.agent_id,
            agent_name: row.agent_name,
            action: row.action,
            resource: row.resource,
            scope: row.scope,
            requested_scope: row.requested_scope,
            context: row.context,
            reason: row.reason,
            rule: row.rule,
            policy_version: row.policy_version,
            decided_by: row.decided_by,
            decided_at: row.decided_at,
            expires_at: row.expires_at,
            created_at: row.created_at,
            ttl: row.ttl_secs,
            uses_remaining: row.uses_remaining,
            action_details: row.action_details,
            require_action_details: row.require_details,
        }
    }
}

/// What a valid token allows ([`TokenFields`]), sharing the request it shows: `verify` answers
/// from a recent read, and nothing is copied to answer it.
#[derive(Debug)]
pub struct TokenView(Arc<Permission>);

impl TokenView {
    pub fn new(row: Arc<Permission>) -> TokenView {
        TokenView(row)
    }
}

impl Serialize for TokenView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TokenFields::from(&*self.0).serialize(s)
    }
}

impl utoipa::PartialSchema for TokenView {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        TokenFields::schema()
    }
}

impl ToSchema for TokenView {
    fn name() -> std::borrow::Cow<'static, str> {
        "TokenView".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        TokenFields::schemas(schemas);
    }
}

// `TokenView`'s JSON and schema, borrowed from the request; its doc is the schema's description.
/// What a valid token allows, as `verify` and a protected service's introspection show it: the
/// action and resource it is bound to, whose it is, who approved it, and what is left.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TokenFields<'a> {
    id: &'a RequestId,
    action: &'a str,
    resource: Option<&'a str>,
    agent_id: &'a AgentId,
    agent_name: &'a str,
    /// `policy` or `human:<name>`.
    approved_by: Option<&'a str>,
    #[schema(schema_with = schema::scope)]
    scope: &'a Map<String, Value>,
    uses_remaining: i64,
    expires_at: Timestamp,
    /// A use must carry `actionDetails`.
    require_action_details: bool,
    /// SHA-256 of the canonical JSON of the exact `actionDetails` every use must present.
    #[serde(skip_serializing_if = "Option::is_none")]
    details_digest: Option<&'a str>,
}

impl<'a> From<&'a Permission> for TokenFields<'a> {
    fn from(row: &'a Permission) -> TokenFields<'a> {
        TokenFields {
            id: &row.id,
            action: &row.action,
            resource: row.resource.as_deref(),
            agent_id: &row.agent_id,
            agent_name: &row.agent_name,
            approved_by: row.decided_by.as_deref(),
            scope: &row.scope,
            uses_remaining: row.uses_remaining,
            expires_at: row.expires_at,
            require_action_details: row.require_details,
            details_digest: row.details_digest.as_deref(),
        }
    }
}

/// What `verify` answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VerifyOutcome {
    Valid {
        #[schema(schema_with = schema::always_true)]
        valid: bool,
        #[serde(flatten)]
        token: TokenView,
    },
    Invalid {
        #[schema(schema_with = schema::always_false)]
        valid: bool,
        reason: String,
    },
}

/// What `use` answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UseOutcome {
    #[serde(rename_all = "camelCase")]
    Used {
        #[schema(schema_with = schema::always_true)]
        success: bool,
        uses_remaining: i64,
        /// `false` when the use carried no `actionDetails`: consumed, but the scope was not
        /// checked here (the protected service must apply it).
        checked: bool,
    },
    #[serde(rename_all = "camelCase")]
    Refused {
        #[schema(schema_with = schema::always_false)]
        success: bool,
        uses_remaining: i64,
        reason: String,
        code: &'static str,
    },
}

/// What introspection answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Introspection {
    Active {
        #[schema(schema_with = schema::always_true)]
        active: bool,
        #[serde(flatten)]
        token: TokenView,
    },
    Inactive {
        #[schema(schema_with = schema::always_false)]
        active: bool,
        reason: String,
    },
}

/// An optional whole number, also when written `300.0` (JSON Schema's `integer` allows that,
/// and so do clients whose numbers are all floats).
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        // Out-of-range values saturate and then fail the range check with a clear message.
        #[allow(clippy::cast_possible_truncation)]
        Some(f) if f.fract() == 0.0 => Ok(Some(f as i64)),
        _ => Err(serde::de::Error::custom(format!(
            "invalid number {n}, expected a whole number"
        ))),
    }
}
