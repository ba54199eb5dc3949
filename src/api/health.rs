//! `GET /health` (also under `/api/v1`): liveness plus the policy in force.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{envelope, resource};
use crate::live_policy::Source;
use crate::service::Service;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(health)));
}

async fn health(svc: web::Data<Service>) -> HttpResponse {
    let loaded = svc.policy.current();
    let source = match &loaded.source {
        Source::File(p) => p.display().to_string(),
        Source::Builtin => "builtin".to_owned(),
    };
    envelope::ok(
        StatusCode::OK,
        json!({
            "status": "ok",
            "policy": {
                "version": loaded.policy.version(),
                "source": source,
                "rules": loaded.policy.rules().len(),
                "loadedAt": loaded.loaded_at,
            },
        }),
    )
}
