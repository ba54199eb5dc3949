//! The admin routes, for humans scripting decisions: list and read requests, approve (narrowing
//! only), deny, revoke, manage agents, read the audit trail. Agent keys get 403 here.

use crate::wire::permissions::PermissionView;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::HumanAuth;
use super::envelope::{self, Failure, Page, Success};
use super::id_routes::PathId;
use super::json_body::JsonObject;
use super::{Endpoint, PageQuery, optional_json};
use crate::audit::StoredEvent;
use crate::clock::Timestamp;
use crate::domain::{Actor, Status};
use crate::error::{Error, Result};
use crate::service::Service;
use crate::wire::admin::{AgentView, CreatedAgent, DenyBody, NewAgent};
use crate::wire::permissions::ApprovalEdits;

pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::GET, "/admin/permissions", list_permissions),
        Endpoint::new(Method::GET, "/admin/permissions/{id}", get_permission),
        Endpoint::new(Method::POST, "/admin/permissions/{id}/approve", approve),
        Endpoint::new(Method::POST, "/admin/permissions/{id}/deny", deny),
        Endpoint::new(Method::POST, "/admin/permissions/{id}/revoke", revoke),
        Endpoint::new(Method::GET, "/admin/agents", list_agents),
        Endpoint::new(Method::POST, "/admin/agents", create_agent),
        Endpoint::new(Method::DELETE, "/admin/agents/{id}", revoke_agent),
        Endpoint::new(Method::GET, "/admin/audit", list_audit),
    ]
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_permissions,
    get_permission,
    approve,
    deny,
    revoke,
    list_agents,
    create_agent,
    revoke_agent,
    list_audit
))]
pub(super) struct Doc;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PermissionFilter {
    /// Only requests with this status.
    #[param(inline)]
    status: Option<Status>,
    /// Only this agent's requests (id or name).
    agent: Option<String>,
}

/// Lists requests, newest first.
#[utoipa::path(
    get,
    path = "/admin/permissions",
    tag = "admin",
    security(("adminToken" = []), ("webSession" = [])),
    params(PermissionFilter, PageQuery),
    responses(
        (status = 200, description = "One page of requests", body = Page<PermissionView>),
        (status = 400, description = "Bad filter or paging", body = Failure),
        (status = 401, description = "No admin token or web session", body = Failure),
        (status = 403, description = "An agent key", body = Failure),
        (status = 404, description = "No such agent", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn list_permissions(
    svc: web::Data<Service>,
    _human: HumanAuth,
    query: web::Query<PermissionFilter>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let (page, limit, offset) = paging.resolve()?;
    let status = query.status;
    let agent_id = match &query.agent {
        Some(a) => Some(agent_named(&svc, a).await?.id),
        None => None,
    };
    let filter = crate::domain::PermissionFilter { status, agent_id };
    let (items, total) = svc.list(filter, offset, limit).await?;
    Ok(envelope::page(items, page, limit, total))
}

/// The agent filter of the lists: an agent that does not exist is a 404, not an empty list,
/// so a typo does not read as "no activity".
async fn agent_named(svc: &Service, id_or_name: &str) -> Result<crate::domain::Agent> {
    svc.agent(id_or_name).await
}

/// Reads any request (never shows a token).
#[utoipa::path(
    get,
    path = "/admin/permissions/{id}",
    tag = "admin",
    security(("adminToken" = []), ("webSession" = [])),
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = Success<PermissionView>),
        (status = 401, description = "No admin token or web session", body = Failure),
        (status = 403, description = "An agent key", body = Failure),
        (status = 404, description = "No such request", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn get_permission(
    svc: web::Data<Service>,
    _human: HumanAuth,
    PathId(id): PathId,
) -> Result<HttpResponse> {
    Ok(envelope::ok(StatusCode::OK, svc.get_for_human(&id).await?))
}

/// Approves a pending request, optionally narrowing it. An empty body approves as asked.
#[utoipa::path(
    post,
    path = "/admin/permissions/{id}/approve",
    tag = "admin",
    security(("adminToken" = []), ("webSession" = [])),
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Option<ApprovalEdits>, description = "Optional narrowing"),
    responses(
        (status = 200, description = "Approved; the agent collects the token on its next read", body = Success<PermissionView>),
        (status = 400, description = "Bad body, or an edit that would widen the request", body = Failure),
        (status = 401, description = "No admin token or web session", body = Failure),
        (status = 403, description = "An agent key, or a web session without its CSRF token", body = Failure),
        (status = 404, description = "No such request", body = Failure),
        (status = 409, description = "Already decided or expired", body = Failure),
        (status = 413, description = "Body larger than 64 KiB", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn approve(
    svc: web::Data<Service>,
    human: HumanAuth,
    PathId(id): PathId,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let edits: ApprovalEdits = optional_json(&body)?;
    Ok(envelope::ok(
        StatusCode::OK,
        svc.approve(&human.name, &id, edits.into()).await?,
    ))
}

/// Denies a pending request. An empty body gives the default reason.
#[utoipa::path(
    post,
    path = "/admin/permissions/{id}/deny",
    tag = "admin",
    security(("adminToken" = []), ("webSession" = [])),
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Option<DenyBody>, description = "Optional reason"),
    responses(
        (status = 200, description = "Denied", body = Success<PermissionView>),
        (status = 400, description = "Bad body", body = Failure),
        (status = 401, description = "No admin token or web session", body = Failure),
        (status = 403, description = "An agent key, or a web session without its CSRF token", body = Failure),
        (status = 404, description = "No such request", body = Failure),
        (status = 409, description = "Already decided or expired", body = Failure),
        (status = 413, description = "Body larger than 64 KiB", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn deny(
    svc: web::Data<Service>,
    human: HumanAuth,
    PathId(id): PathId,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let reason = optional_json::<DenyBody>(&body)?.reason;
    Ok(envelope::ok(
        StatusCode::OK,
        svc.deny(&human.name, &id, reason).await?,
    ))
}

/// Revokes a pending or approved request; its token stops working at once.
#[utoipa::path(
    post,
    path = "/admin/permissions/{id}/revoke",
    tag = "admin",
    security(("adminToken" = []), ("webSession" = [])),
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Revoked", body = Success<PermissionView>),
        (status = 401, description = "No admin token or web session", body = Failure),
        (status = 403, description = "An agent key, or a web session without its CSRF token", body = Failure),
        (status = 404, description = "No such request", body = Failure),
        (status = 409, description = "Already denied, expired, used or revoked", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn revoke(
    svc: web::Data<Service>,
    human: HumanAuth,
    PathId(id): PathId,
) -> Result<HttpResponse> {
    let view = svc.revoke(Actor::Human(human.name), None, &id).await?;
    Ok(envelope::ok(StatusCode::OK, view))
}

/// Lists every agent, oldest first.
#[utoipa::path(
    get,
    path = "/admin/agents",
    tag = "admin",
    security(("adminToken" = []), ("webSession" = [])),
    responses(
        (status = 200, description = "Every agent", body = Success<Vec<AgentView>>),
        (status = 401, description = "No admin token or web session", body = Failure),
        (status = 403, description = "An agent key", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn list_agents(svc: web::Data<Service>, _human: HumanAuth) -> Result<HttpResponse> {
    let list: Vec<AgentView> = svc.agents().await?.iter().map(AgentView::from).collect();
    Ok(envelope::ok(StatusCode::OK, list))
}

/// Creates an agent; the answer holds its key, which is never shown again.
#[utoipa::path(
    post,
    path = "/admin/agents",
    tag = "admin",
    security(("adminToken" = []), ("webSession" = [])),
    request_body = NewAgent,
    responses(
        (status = 201, description = "Created", body = Success<CreatedAgent>),
        (status = 400, description = "Bad body or name", body = Failure),
        (status = 401, description = "No admin token or web session", body = Failure),
        (status = 403, description = "An agent key, or a web session without its CSRF token", body = Failure),
        (status = 409, description = "The name is taken", body = Failure),
        (status = 413, description = "Body larger than 64 KiB", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn create_agent(
    svc: web::Data<Service>,
    human: HumanAuth,
    body: JsonObject<NewAgent>,
) -> Result<HttpResponse> {
    let name = body.0.name;
    let (agent, key) = svc.create_agent(Actor::Human(human.name), &name).await?;
    let created = CreatedAgent {
        agent: AgentView::from(&agent),
        key: key.expose().to_owned(),
    };
    Ok(envelope::ok(StatusCode::CREATED, created))
}

/// Revokes an agent by id or name; its key stops working at once.
#[utoipa::path(
    delete,
    path = "/admin/agents/{id}",
    tag = "admin",
    security(("adminToken" = []), ("webSession" = [])),
    params(("id" = String, Path, description = "Agent id or name")),
    responses(
        (status = 200, description = "Revoked", body = Success<AgentView>),
        (status = 401, description = "No admin token or web session", body = Failure),
        (status = 403, description = "An agent key, or a web session without its CSRF token", body = Failure),
        (status = 404, description = "No such agent", body = Failure),
        (status = 409, description = "Already revoked", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
async fn revoke_agent(
    svc: web::Data<Service>,
    human: HumanAuth,
    PathId(id): PathId,
) -> Result<HttpResponse> {
    let (agent, _) = svc.revoke_agent(Actor::Human(human.name), &id).await?;
    Ok(envelope::ok(StatusCode::OK, AgentView::from(&agent)))
}

/// `GET /admin/audit` filters: `agent` (name or id), `request`, `event` (type, e.g.
/// `token.used`), `since` (inclusive) and `until` (exclusive) as RFC 3339; newest first, paged.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditFilter {
    /// Only events about this request id.
    request: Option<String>,
    /// Only events about this agent (id or name).
    agent: Option<String>,
    /// Only events of this type, e.g. `token.used`.
    event: Option<String>,
    /// From this instant (inclusive), RFC 3339.
    #[param(format = DateTime)]
    since: Option<String>,
    /// Before this instant (exclusive), RFC 3339.
    #[param(format = DateTime)]
    until: Option<String>,
}

/// Reads the audit trail, newest first.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    security(("adminToken" = []), ("webSession" = [])),
    params(AuditFilter, PageQuery),
    responses(
        (status = 200, description = "One page of events", body = Page<StoredEvent>),
        (status = 400, description = "Bad filter or paging", body = Failure),
        (status = 401, description = "No admin token or web session", body = Failure),
        (status = 403, description = "An agent key", body = Failure),
        (status = 404, description = "No such agent", body = Failure),
        (status = 500, description = "Internal error", body = Failure),
    )
)]
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
    let agent_id = match &query.agent {
        Some(a) => Some(agent_named(&svc, a).await?.id.0),
        None => None,
    };
    let filter = crate::domain::AuditFilter {
        request_id: query.request,
        agent_id,
        event: query.event,
        since,
        until,
    };
    let (events, total) = svc.audit_page(filter, offset, limit).await?;
    Ok(envelope::page(events, page, limit, total))
}
