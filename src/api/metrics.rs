//! `GET /metrics`: the operator metrics ([`crate::metrics`]) for an admin token or a web session.

use actix_web::{HttpResponse, web};

use super::auth::HumanAuth;
use crate::domain::{PermissionFilter, Status};
use crate::error::Error;
use crate::service::Service;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(scrape)));
}

async fn scrape(svc: web::Data<Service>, _human: HumanAuth) -> Result<HttpResponse, Error> {
    let pending = PermissionFilter {
        status: Some(Status::Pending),
        agent_id: None,
    };
    let (_, pending) = svc.list(pending, 0, 1).await?;
    let out = crate::metrics::exposition(pending, svc.policy().status().rules);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(out))
}
