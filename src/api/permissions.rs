//! The agent routes: request, read (with long-poll), verify, use, revoke. An agent sees only its
//! own requests; anyone else's answer exactly like a missing one (404).

use crate::wire::permissions::{PermissionView, UseOutcome, VerifyOutcome};
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::Endpoint;
use super::auth::AgentAuth;
use super::envelope::{self, Failure, Success};
use super::id_routes::PathId;
use super::json_body::JsonObject;
use crate::domain::request::{check_action_details, check_use_target};
use crate::domain::{Actor, Status};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::service::{RequestOutcome, Service, UseRequest};
use crate::wire::MAX_WAIT_SECS;
use crate::wire::permissions::{
    MAX_TOKEN_CHARS, RequestApproved, RequestDenied, RequestInput, RequestPending, UseBody,
    VerifyBody,
};

/// The agent routes. `request` is a fixed path, so it is tried before the routes with an id
/// (`api::register`) and never taken for one.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::POST, "/permissions/request", request),
        Endpoint::new(Method::POST, "/permissions/{id}/verify", verify),
        Endpoint::new(Method::POST, "/permissions/{id}/use", use_token),
        Endpoint::new(Method::GET, "/permissions/{id}", get),
        Endpoint::new(Method::POST, "/permissions/{id}/revoke", revoke),
    ]
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(request, get, verify, use_token, revoke))]
pub(super) struct Doc;

/// Asks for permission to do one thing; the policy decides at once or asks a human.
#[utoipa::path(
    post,
    path = "/permissions/request",
    operation_id = "request_permission",
    tag = "agent",
    security(("agentKey" = [])),
    request_body = RequestInput,
    responses(
        (status = 200, description = "Denied by policy", body = Success<RequestDenied>),
        (status = 201, description = "Approved by policy; the token is in the answer", body = Success<RequestApproved>),
        (status = 202, description = "Waiting for a human", body = Success<RequestPending>),
        (status = 400, description = "Bad body (every bad field in `details`)", body = Failure),
        (status = 401, description = "Missing, unknown or revoked agent key", body = Failure),
        (status = 413, description = "Body larger than 64 KiB", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn request(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    body: JsonObject<RequestInput>,
) -> Result<HttpResponse> {
    let valid = body.0.validate()?;
    Ok(match svc.request(&agent, valid).await? {
        RequestOutcome::Denied {
            id,
            reason,
            expires_at,
        } => envelope::ok(
            StatusCode::OK,
            RequestDenied {
                id,
                status: Status::Denied,
                reason,
                expires_at,
            },
        ),
        RequestOutcome::Approved {
            id,
            token,
            scope,
            uses_remaining,
            expires_at,
        } => envelope::ok(
            StatusCode::CREATED,
            RequestApproved {
                id,
                status: Status::Approved,
                token: token.expose().to_owned(),
                scope,
                uses_remaining,
                expires_at,
            },
        ),
        RequestOutcome::Pending {
            id,
            approval_url,
            webhook_url,
            expires_at,
        } => envelope::ok(
            StatusCode::ACCEPTED,
            RequestPending {
                id,
                status: Status::Pending,
                approval_url,
                webhook_url,
                expires_at,
            },
        ),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WaitQuery {
    #[param(schema_with = crate::wire::schema::wait)]
    wait: Option<u64>,
}

/// Reads one of the caller's requests. The first read after a human approval carries the token.
#[utoipa::path(
    get,
    path = "/permissions/{id}",
    operation_id = "get_own_permission",
    tag = "agent",
    security(("agentKey" = [])),
    params(("id" = String, Path, description = "Request id"), WaitQuery),
    responses(
        (status = 200, description = "The request", body = Success<PermissionView>),
        (status = 400, description = "Bad `wait`", body = Failure),
        (status = 401, description = "Missing, unknown or revoked agent key", body = Failure),
        (status = 404, description = "No such request, or another agent's", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn get(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    PathId(id): PathId,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse> {
    let wait = query.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(Error::invalid(
            "wait",
            format!("must be between 0 and {MAX_WAIT_SECS} seconds"),
        ));
    }
    let view = svc
        .get_for_agent(&agent, &id, Duration::from_secs(wait))
        .await?;
    Ok(envelope::ok(StatusCode::OK, view))
}

impl UseBody {
    /// The use, with every field within its limits.
    pub(super) fn into_use(self) -> Result<UseRequest> {
        let token = token_from(self.token)?;
        let resource = check_use_target(self.action.as_deref(), self.resource)?;
        if let Some(details) = &self.action_details {
            check_action_details(details)?;
        }
        Ok(UseRequest {
            token,
            action: self.action,
            resource,
            details: self.action_details,
        })
    }
}

pub(super) fn token_from(raw: String) -> Result<Secret> {
    if raw.is_empty() || raw.chars().count() > MAX_TOKEN_CHARS {
        return Err(Error::invalid(
            "token",
            format!("must be 1–{MAX_TOKEN_CHARS} characters"),
        ));
    }
    Ok(Secret::new(raw))
}

/// Checks a token without using it.
#[utoipa::path(
    post,
    path = "/permissions/{id}/verify",
    operation_id = "verify_token",
    tag = "agent",
    security(("agentKey" = [])),
    params(("id" = String, Path, description = "Request id")),
    request_body = VerifyBody,
    responses(
        (status = 200, description = "Whether the token is valid now", body = Success<VerifyOutcome>),
        (status = 400, description = "Bad body", body = Failure),
        (status = 401, description = "Missing, unknown or revoked agent key", body = Failure),
        (status = 404, description = "No such request, or another agent's", body = Failure),
        (status = 413, description = "Body larger than 64 KiB", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn verify(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    PathId(id): PathId,
    body: JsonObject<VerifyBody>,
) -> Result<HttpResponse> {
    let token = token_from(body.0.token)?;
    let outcome = svc.verify(&agent, &id, token.expose()).await?;
    Ok(envelope::ok(StatusCode::OK, outcome))
}

/// Uses a token once; `actionDetails` must fit its scope.
#[utoipa::path(
    post,
    path = "/permissions/{id}/use",
    operation_id = "use_token",
    tag = "agent",
    security(("agentKey" = [])),
    params(("id" = String, Path, description = "Request id")),
    request_body = UseBody,
    responses(
        (status = 200, description = "Used, or refused with a reason and code", body = Success<UseOutcome>),
        (status = 400, description = "Bad body", body = Failure),
        (status = 401, description = "Missing, unknown or revoked agent key", body = Failure),
        (status = 404, description = "No such request, or another agent's", body = Failure),
        (status = 413, description = "Body larger than 64 KiB", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn use_token(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    PathId(id): PathId,
    body: JsonObject<UseBody>,
) -> Result<HttpResponse> {
    let presented = body.0.into_use()?;
    let outcome = svc.use_token(&agent, &id, presented).await?;
    Ok(envelope::ok(StatusCode::OK, outcome))
}

/// Revokes one of the caller's pending or approved requests; its token stops working at once.
#[utoipa::path(
    post,
    path = "/permissions/{id}/revoke",
    operation_id = "revoke_own_permission",
    tag = "agent",
    security(("agentKey" = [])),
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Revoked", body = Success<PermissionView>),
        (status = 401, description = "Missing, unknown or revoked agent key", body = Failure),
        (status = 404, description = "No such request, or another agent's", body = Failure),
        (status = 409, description = "Already denied, expired, used or revoked", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn revoke(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    PathId(id): PathId,
) -> Result<HttpResponse> {
    let actor = Actor::Agent(agent.id.0.clone());
    let view = svc.revoke(actor, Some(&agent), &id).await?;
    Ok(envelope::ok(StatusCode::OK, view))
}
