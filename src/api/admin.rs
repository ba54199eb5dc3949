//! The admin routes, for humans scripting decisions: list and read requests, approve (narrowing
//! only), deny, revoke, manage agents, read the audit trail. Agent keys get 403 here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::HumanAuth;
use super::{PageQuery, envelope, optional_json, resource};
use crate::agents;
use crate::clock::Timestamp;
use crate::domain::Actor;
use crate::domain::request::ApprovalEdits;
use crate::error::{Error, Result};
use crate::service::Service;
use crate::store::{agents as agent_sql, audit, permissions};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/admin/permissions").route(web::get().to(list_permissions)))
        .service(resource("/admin/permissions/{id}").route(web::get().to(get_permission)))
        .service(resource("/admin/permissions/{id}/approve").route(web::post().to(approve)))
        .service(resource("/admin/permissions/{id}/deny").route(web::post().to(deny)))
        .service(resource("/admin/permissions/{id}/revoke").route(web::post().to(revoke)))
        .service(
            resource("/admin/agents")
                .route(web::get().to(list_agents))
                .route(web::post().to(create_agent)),
        )
        .service(resource("/admin/agents/{id}").route(web::delete().to(revoke_agent)))
        .service(resource("/admin/audit").route(web::get().to(list_audit)));
}

#[derive(Debug, Deserialize)]
struct PermissionFilter {
    status: Option<String>,
    agent: Option<String>,
}

async fn list_permissions(
    svc: web::Data<Service>,
    _human: HumanAuth,
    query: web::Query<PermissionFilter>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let (page, limit, offset) = paging.resolve()?;
    let status = match &query.status {
        Some(s) => Some(s.parse().map_err(|e: String| Error::invalid("status", e))?),
        None => None,
    };
    let agent_id = match &query.agent {
        Some(a) => {
            let a = a.clone();
            let found = svc
                .store
                .read(move |c| agent_sql::by_id_or_name(c, &a))
                .await?;
            Some(
                found
                    .ok_or_else(|| Error::invalid("agent", "no such agent"))?
                    .id,
            )
        }
        None => None,
    };
    let filter = permissions::Filter { status, agent_id };
    let (items, total) = svc.list(filter, offset, limit).await?;
    Ok(envelope::page(items, page, limit, total))
}

async fn get_permission(
    svc: web::Data<Service>,
    _human: HumanAuth,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    Ok(envelope::ok(StatusCode::OK, svc.get_for_human(&id).await?))
}

/// An empty body is allowed: approve as asked.
async fn approve(
    svc: web::Data<Service>,
    human: HumanAuth,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let edits: ApprovalEdits = optional_json(&body)?;
    Ok(envelope::ok(
        StatusCode::OK,
        svc.approve(&human.name, &id, edits).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    reason: Option<String>,
}

async fn deny(
    svc: web::Data<Service>,
    human: HumanAuth,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let reason = optional_json::<DenyBody>(&body)?.reason;
    Ok(envelope::ok(
        StatusCode::OK,
        svc.deny(&human.name, &id, reason).await?,
    ))
}

async fn revoke(
    svc: web::Data<Service>,
    human: HumanAuth,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let view = svc.revoke(Actor::Human(human.name), None, &id).await?;
    Ok(envelope::ok(StatusCode::OK, view))
}

async fn list_agents(svc: web::Data<Service>, _human: HumanAuth) -> Result<HttpResponse> {
    let list = svc
        .store
        .read(|c| agent_sql::list(c).map_err(Error::from))
        .await?;
    Ok(envelope::ok(StatusCode::OK, list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAgent {
    name: String,
}

async fn create_agent(
    svc: web::Data<Service>,
    human: HumanAuth,
    body: web::Json<NewAgent>,
) -> Result<HttpResponse> {
    let name = body.into_inner().name;
    let now = svc.clock.now();
    let by = Actor::Human(human.name);
    let (agent, key) = svc
        .store
        .write(move |tx| agents::create(tx, &name, &by, now))
        .await?;
    let mut data = serde_json::to_value(&agent).map_err(|e| Error::Internal(e.to_string()))?;
    data["key"] = json!(key.expose());
    Ok(envelope::ok(StatusCode::CREATED, data))
}

async fn revoke_agent(
    svc: web::Data<Service>,
    human: HumanAuth,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let now = svc.clock.now();
    let by = Actor::Human(human.name);
    let agent = svc
        .store
        .write(move |tx| agents::revoke(tx, &id, &by, now))
        .await?;
    Ok(envelope::ok(StatusCode::OK, agent))
}

/// `GET /admin/audit` filters: `agent` (name or id), `request`, `event` (type, e.g.
/// `token.used`), `since` (inclusive) and `until` (exclusive) as RFC 3339; newest first, paged.
#[derive(Debug, Deserialize)]
struct AuditFilter {
    request: Option<String>,
    agent: Option<String>,
    event: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

async fn list_audit(
    svc: web::Data<Service>,
    _human: HumanAuth,
    query: web::Query<AuditFilter>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let (page, limit, offset) = paging.resolve()?;
    let query = query.into_inner();
    let time = |field: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| Timestamp::parse_rfc3339(v).map_err(|e| Error::invalid(field, e)))
            .transpose()
    };
    let (since, until) = (time("since", &query.since)?, time("until", &query.until)?);
    let agent_id = match query.agent {
        Some(a) => {
            let found = svc
                .store
                .read(move |c| agent_sql::by_id_or_name(c, &a))
                .await?;
            Some(
                found
                    .ok_or_else(|| Error::invalid("agent", "no such agent"))?
                    .id
                    .0,
            )
        }
        None => None,
    };
    let filter = audit::Filter {
        request_id: query.request,
        agent_id,
        event: query.event,
        since,
        until,
    };
    let (events, total) = svc
        .store
        .read(move |c| audit::page(c, &filter, offset, limit))
        .await?;
    Ok(envelope::page(events, page, limit, total))
}
