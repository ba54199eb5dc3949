//! The pages a human decides on: the pending list (newest first, reloading itself), the approval
//! page of one request with Approve / Deny / approve with narrower terms, and the history.
//! Approve and Deny are separate forms, Deny's reason is its own field, and Enter in a field
//! submits no form: only a tap on a button decides (see `request.html`).
//! Decisions go through `service.approve` / `service.deny`, so the first decision wins, is audited
//! in the same transaction and wakes the waiting agent, exactly as from the admin API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::auth::Human;
use super::form::{self, Form};
use super::view::{self, Card, Edit, Me, Scope};
use super::{PageQuery, Pager, WebError, html, see_other};
use crate::domain::{Status, request};
use crate::error::Error;
use crate::service::{PermissionView, Service};
use crate::shown::{self, Entry};
use crate::store::{agents as agent_sql, permissions};

/// How often the pending list reloads itself, in seconds.
pub const REFRESH_SECS: u32 = 10;
/// Most pending requests shown at once.
const PENDING_MAX: i64 = 100;
/// Requests per history page.
const HISTORY_PER_PAGE: i64 = 25;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(pending)))
        .service(web::resource("/requests").route(web::get().to(pending)))
        .service(web::resource("/requests/{id}").route(web::get().to(show)))
        .service(web::resource("/requests/{id}/approve").route(web::post().to(approve)))
        .service(web::resource("/requests/{id}/deny").route(web::post().to(deny)))
        .service(web::resource("/history").route(web::get().to(history)));
}

#[derive(Template, WebTemplate)]
#[template(path = "pending.html")]
struct PendingPage {
    me: Option<Me>,
    refresh: u32,
    cards: Vec<Card>,
    total: i64,
}

async fn pending(svc: web::Data<Service>, human: Human) -> Result<PendingPage, WebError> {
    let filter = permissions::Filter {
        status: Some(Status::Pending),
        agent_id: None,
    };
    let (items, total) = svc.list(filter, 0, PENDING_MAX).await?;
    let now = svc.clock.now();
    Ok(PendingPage {
        me: Some(Me::from(&human)),
        refresh: REFRESH_SECS,
        // Listed as pending but already past their time: the sweeper is about to expire them.
        cards: items
            .iter()
            .filter(|v| v.status == Status::Pending)
            .map(|v| Card::new(v, now))
            .collect(),
        total,
    })
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    me: Option<Me>,
    csrf: String,
    card: Card,
    /// Set when a decision just failed: why.
    problem: Option<String>,
    decidable: bool,
    status: &'static str,
    decided_by: Option<String>,
    decided_at: Option<String>,
    /// The human's note or the deny reason.
    outcome_reason: Option<String>,
    rule: String,
    policy_version: String,
    created: String,
    ttl_secs: i64,
    ttl_text: String,
    uses: i64,
    token_issued: bool,
    scope: Scope,
    /// The scope as the agent asked for it, when the policy narrowed it.
    requested_scope: Option<Vec<Entry>>,
    context: Vec<Entry>,
    /// The exact `actionDetails` the token is bound to, if the request carried them.
    exact_details: Option<Vec<Entry>>,
    edits: Vec<Edit>,
    ttl_min: i64,
}

impl RequestPage {
    fn new(human: &Human, v: &PermissionView, now: crate::clock::Timestamp) -> RequestPage {
        let decidable = v.status == Status::Pending;
        RequestPage {
            me: Some(Me::from(human)),
            csrf: human.csrf.clone(),
            card: Card::new(v, now),
            problem: None,
            decidable,
            status: v.status.as_str(),
            decided_by: v.decided_by.as_deref().map(marked),
            decided_at: v.decided_at.map(view::short_time),
            outcome_reason: v.reason.as_deref().map(marked),
            rule: v.rule.as_deref().map_or_else(
                || "(no rule matched: approval required by default)".into(),
                marked,
            ),
            policy_version: view::short_version(&v.policy_version),
            created: view::short_time(v.created_at),
            ttl_secs: v.ttl,
            ttl_text: view::duration(v.ttl),
            uses: v.uses_remaining,
            token_issued: v.token_issued,
            scope: Scope::new(&v.scope),
            requested_scope: (v.requested_scope != v.scope)
                .then(|| shown::scope(&v.requested_scope)),
            context: view::context(&v.context),
            exact_details: v.action_details.as_ref().map(|d| shown::context(d, &[])),
            edits: if decidable {
                view::edits(&v.scope)
            } else {
                Vec::new()
            },
            ttl_min: request::TTL_MIN.min(v.ttl),
        }
    }
}

fn marked(s: &str) -> String {
    crate::text::with_markers(s).into_owned()
}

async fn show(
    svc: web::Data<Service>,
    human: Human,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let v = svc.get_for_human(&id).await?;
    Ok(html(
        StatusCode::OK,
        &RequestPage::new(&human, &v, svc.clock.now()),
    ))
}

/// The approval page again, with why the decision did not happen.
async fn refused(
    svc: &Service,
    human: &Human,
    id: &str,
    status: StatusCode,
    problem: String,
) -> Result<HttpResponse, WebError> {
    let v = svc.get_for_human(id).await?;
    let mut page = RequestPage::new(human, &v, svc.clock.now());
    page.problem = Some(problem);
    Ok(html(status, &page))
}

async fn approve(
    svc: web::Data<Service>,
    human: Human,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = Form::parse(&body);
    human.check_csrf(&form)?;
    let v = svc.get_for_human(&id).await?;
    let edits = match form::approval_edits(&form, &v) {
        Ok(e) => e,
        Err(problem) => {
            return refused(&svc, &human, &id, StatusCode::BAD_REQUEST, problem).await;
        }
    };
    decided(
        &svc,
        &human,
        &v,
        svc.approve(&human.name, v.id.as_str(), edits).await,
    )
    .await
}

async fn deny(
    svc: web::Data<Service>,
    human: Human,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = Form::parse(&body);
    human.check_csrf(&form)?;
    let v = svc.get_for_human(&id).await?;
    let outcome = svc
        .deny(&human.name, v.id.as_str(), form.text("reason"))
        .await;
    decided(&svc, &human, &v, outcome).await
}

/// After a decision: show the request (now decided), or why the decision was refused.
async fn decided(
    svc: &Service,
    human: &Human,
    v: &PermissionView,
    outcome: Result<PermissionView, Error>,
) -> Result<HttpResponse, WebError> {
    let id = v.id.as_str();
    match outcome {
        Ok(_) => Ok(see_other(&format!("/requests/{id}"))),
        Err(Error::Validation { message, .. }) => {
            refused(svc, human, id, StatusCode::BAD_REQUEST, message).await
        }
        Err(Error::Conflict(message)) => {
            let problem = format!("Nothing was changed: {message}.");
            refused(svc, human, id, StatusCode::CONFLICT, problem).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    agent: Option<String>,
    status: Option<String>,
}

/// An option of a filter drop-down.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "history.html")]
struct HistoryPage {
    me: Option<Me>,
    agents: Vec<Choice>,
    statuses: Vec<Choice>,
    cards: Vec<Card>,
    total: i64,
    pager: Pager,
}

async fn history(
    svc: web::Data<Service>,
    human: Human,
    query: web::Query<HistoryQuery>,
    paging: web::Query<PageQuery>,
) -> Result<HistoryPage, WebError> {
    let agent = query.agent.clone().filter(|a| !a.is_empty());
    let status = query.status.clone().filter(|s| !s.is_empty());
    let all_agents = svc
        .store
        .read(|c| agent_sql::list(c).map_err(Error::from))
        .await?;
    let filter = permissions::Filter {
        status: match &status {
            Some(s) => Some(s.parse().map_err(|e: String| Error::invalid("status", e))?),
            None => None,
        },
        agent_id: match &agent {
            Some(a) => Some(
                all_agents
                    .iter()
                    .find(|x| x.id.as_str() == a)
                    .ok_or_else(|| Error::invalid("agent", "no such agent"))?
                    .id
                    .clone(),
            ),
            None => None,
        },
    };
    let page = paging.number();
    let (items, total) = svc
        .list(filter, (page - 1) * HISTORY_PER_PAGE, HISTORY_PER_PAGE)
        .await?;
    let now = svc.clock.now();
    let mut base = String::new();
    for (k, v) in [("agent", &agent), ("status", &status)] {
        if let Some(v) = v {
            base.push_str(&format!(
                "{k}={}&",
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            ));
        }
    }
    let statuses = [
        Status::Pending,
        Status::Approved,
        Status::Denied,
        Status::Expired,
        Status::Used,
        Status::Revoked,
    ];
    Ok(HistoryPage {
        me: Some(Me::from(&human)),
        agents: all_agents
            .iter()
            .map(|a| Choice {
                selected: agent.as_deref() == Some(a.id.as_str()),
                value: a.id.to_string(),
                label: a.name.clone(),
            })
            .collect(),
        statuses: statuses
            .iter()
            .map(|s| Choice {
                selected: status.as_deref() == Some(s.as_str()),
                value: s.as_str().to_owned(),
                label: s.as_str().to_owned(),
            })
            .collect(),
        cards: items.iter().map(|v| Card::new(v, now)).collect(),
        total,
        pager: Pager::new(page, HISTORY_PER_PAGE, total, base),
    })
}
