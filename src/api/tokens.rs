//! The protected service's routes: introspect and use a token by the token alone, with a
//! service key (`sk_…`) for the actions the token is for. Agent keys, admin tokens and web
//! sessions are refused here, as service keys are on every other route.

use crate::wire::permissions::{Introspection, UseOutcome};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};

use super::auth::ServiceAuth;
use super::envelope::{self, Failure, Success};

use super::Endpoint;
use super::json_body::JsonObject;
use super::permissions::token_from;
use crate::error::Result;
use crate::service::Service;
use crate::wire::permissions::{ServiceUseBody, UseBody, VerifyBody};

pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::POST, "/tokens/introspect", introspect),
        Endpoint::new(Method::POST, "/tokens/use", use_token),
    ]
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(introspect, use_token))]
pub(super) struct Doc;

/// What a token allows (action, resource, agent, approver, scope, uses left), if it is live and
/// for an action this service serves. Never consumes.
#[utoipa::path(
    post,
    path = "/tokens/introspect",
    operation_id = "introspect_token",
    tag = "service",
    security(("serviceKey" = [])),
    request_body = VerifyBody,
    responses(
        (status = 200, description = "Whether the token is active, and what it allows", body = Success<Introspection>),
        (status = 400, description = "Bad body", body = Failure),
        (status = 401, description = "Missing, unknown or revoked service key", body = Failure),
        (status = 413, description = "Body larger than 64 KiB", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn introspect(
    svc: web::Data<Service>,
    ServiceAuth(service): ServiceAuth,
    body: JsonObject<VerifyBody>,
) -> Result<HttpResponse> {
    let token = token_from(body.0.token)?;
    let outcome = svc.introspect(&service, token.expose()).await?;
    Ok(envelope::ok(StatusCode::OK, outcome))
}

/// Uses a token once with what the service really does: `action` (required) and `resource`
/// must be the token's; `actionDetails` are checked against its scope.
#[utoipa::path(
    post,
    path = "/tokens/use",
    operation_id = "service_use_token",
    tag = "service",
    security(("serviceKey" = [])),
    request_body = ServiceUseBody,
    responses(
        (status = 200, description = "Used, or refused with a reason and code", body = Success<UseOutcome>),
        (status = 400, description = "Bad body", body = Failure),
        (status = 401, description = "Missing, unknown or revoked service key", body = Failure),
        (status = 413, description = "Body larger than 64 KiB", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn use_token(
    svc: web::Data<Service>,
    ServiceAuth(service): ServiceAuth,
    body: JsonObject<ServiceUseBody>,
) -> Result<HttpResponse> {
    let b = body.0;
    let presented = UseBody {
        token: b.token,
        action: Some(b.action),
        resource: b.resource,
        action_details: b.action_details,
    }
    .into_use()?;
    let outcome = svc.use_by_service(&service, presented).await?;
    Ok(envelope::ok(StatusCode::OK, outcome))
}
