//! `GET /health` (also under `/api/v1`): liveness plus the policy in force and whether the last
//! reload was refused (`policy.lastReloadError`, `null` when the file on disk is in force).

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::Endpoint;
use super::envelope::{self, Success};
use crate::live_policy::PolicyStatus;
use crate::service::Service;

pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::new(Method::GET, "/health", health)]
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(health))]
pub(super) struct Doc;

/// The service is up; this policy is in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
    policy: PolicyStatus,
}

/// Liveness and the policy in force (no authentication).
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "Up", body = Success<Health>))
)]
async fn health(svc: web::Data<Service>) -> HttpResponse {
    envelope::ok(
        StatusCode::OK,
        Health {
            status: "ok",
            policy: svc.policy.status(),
        },
    )
}
