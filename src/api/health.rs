//! `GET /health` (also under `/api/v1`): liveness plus the policy in force and whether the last
//! reload was refused (`policy.lastReloadError`, `null` when the file on disk is in force).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{envelope, resource};
use crate::service::Service;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(health)));
}

async fn health(svc: web::Data<Service>) -> HttpResponse {
    envelope::ok(
        StatusCode::OK,
        json!({
            "status": "ok",
            "policy": svc.policy.status(),
        }),
    )
}
