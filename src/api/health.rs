//! `GET /health` (also under `/api/v1`): liveness for anyone; for a human (admin token or web
//! session) also the policy in force and whether the last reload was refused
//! (`policy.lastReloadError`, `null` when the file on disk is in force). The policy's path and a
//! reload error's text say how the server is set up, so they are not told to strangers.

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};

use super::Endpoint;
use super::auth::HumanAuth;
use super::envelope::{self, Success};
use crate::service::Service;
use crate::wire::health::Health;

pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::new(Method::GET, "/health", health)]
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(health))]
pub(super) struct Doc;

/// Liveness (no authentication); with an admin token or a web session, also the policy in force.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "Up", body = Success<Health>))
)]
async fn health(svc: web::Data<Service>, human: Option<HumanAuth>) -> HttpResponse {
    envelope::ok(
        StatusCode::OK,
        Health {
            status: "ok",
            policy: human.map(|_| svc.policy().status()),
        },
    )
}
