//! The pages that look after the service: agents (create shows the key once; revoke), the audit
//! trail (newest first, paginated) and the policy in force.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use super::auth::Human;
use super::form::Form;
use super::view::{self, Me};
use super::{PageQuery, Pager, WebError, html, see_other};
use crate::agents;
use crate::domain::Actor;
use crate::error::Error;
use crate::live_policy::Source;
use crate::service::Service;
use crate::store::{agents as agent_sql, audit};

/// Events per audit page.
const AUDIT_PER_PAGE: i64 = 30;
/// Longest event details shown inline, in characters.
const DETAILS_MAX_CHARS: usize = 300;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/agents")
            .route(web::get().to(list_agents))
            .route(web::post().to(create_agent)),
    )
    .service(web::resource("/agents/{id}/revoke").route(web::post().to(revoke_agent)))
    .service(web::resource("/audit").route(web::get().to(audit_page)))
    .service(web::resource("/policy").route(web::get().to(policy_page)));
}

struct AgentLine {
    id: String,
    name: String,
    created: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    me: Option<Me>,
    csrf: String,
    agents: Vec<AgentLine>,
    /// Why creating an agent failed, if it just did.
    problem: Option<String>,
    /// The agent just created and its key, shown only on this one response.
    created: Option<(String, String)>,
    /// Humans linked to approve from Telegram (`agent-otp telegram link|unlink` manages them).
    approvers: Vec<ApproverLine>,
}

struct ApproverLine {
    name: String,
    user_id: i64,
    linked: String,
}

async fn agents_page(
    svc: &Service,
    human: &Human,
    problem: Option<String>,
    created: Option<(String, String)>,
) -> Result<AgentsPage, Error> {
    let (rows, approvers) = svc
        .store
        .read(|c| {
            let agents = agent_sql::list(c)?;
            let approvers = crate::store::telegram::list_approvers(c)?;
            Ok::<_, Error>((agents, approvers))
        })
        .await?;
    Ok(AgentsPage {
        approvers: approvers
            .into_iter()
            .map(|a| ApproverLine {
                name: a.name,
                user_id: a.user_id,
                linked: view::short_time(a.linked_at),
            })
            .collect(),
        me: Some(Me::from(human)),
        csrf: human.csrf.clone(),
        agents: rows
            .into_iter()
            .map(|a| AgentLine {
                id: a.id.to_string(),
                name: a.name,
                created: view::short_time(a.created_at),
                revoked: a.revoked_at.map(view::short_time),
            })
            .collect(),
        problem,
        created,
    })
}

async fn list_agents(svc: web::Data<Service>, human: Human) -> Result<HttpResponse, WebError> {
    let page = agents_page(&svc, &human, None, None).await?;
    Ok(html(StatusCode::OK, &page))
}

async fn create_agent(
    svc: web::Data<Service>,
    human: Human,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = Form::parse(&body);
    human.check_csrf(&form)?;
    let name = form.text("name").unwrap_or_default();
    let now = svc.clock.now();
    let by = Actor::Human(human.name.clone());
    let created = svc
        .store
        .write(move |tx| agents::create(tx, &name, &by, now))
        .await;
    match created {
        Ok((agent, key)) => {
            let created = Some((agent.name, key.expose().to_owned()));
            let page = agents_page(&svc, &human, None, created).await?;
            Ok(html(StatusCode::CREATED, &page))
        }
        Err(e @ (Error::Validation { .. } | Error::Conflict(_))) => {
            let status = if matches!(e, Error::Conflict(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            let page = agents_page(&svc, &human, Some(e.to_string()), None).await?;
            Ok(html(status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

async fn revoke_agent(
    svc: web::Data<Service>,
    human: Human,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    human.check_csrf(&Form::parse(&body))?;
    let revoked = svc
        .revoke_agent(Actor::Human(human.name.clone()), &id)
        .await;
    match revoked {
        Ok(_) => Ok(see_other("/agents")),
        Err(e @ Error::Conflict(_)) => {
            let page = agents_page(&svc, &human, Some(e.to_string()), None).await?;
            Ok(html(StatusCode::CONFLICT, &page))
        }
        Err(e) => Err(e.into()),
    }
}

struct EventLine {
    seq: i64,
    at: String,
    actor: String,
    event: String,
    request_id: Option<String>,
    details: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    me: Option<Me>,
    events: Vec<EventLine>,
    total: i64,
    pager: Pager,
}

async fn audit_page(
    svc: web::Data<Service>,
    human: Human,
    paging: web::Query<PageQuery>,
) -> Result<AuditPage, WebError> {
    let page = paging.number();
    let offset = (page - 1) * AUDIT_PER_PAGE;
    let (events, total) = svc
        .store
        .read(move |c| audit::page(c, &audit::Filter::default(), offset, AUDIT_PER_PAGE))
        .await?;
    Ok(AuditPage {
        me: Some(Me::from(&human)),
        events: events
            .into_iter()
            .map(|e| {
                let mut details = e.details.to_string();
                if details.chars().count() > DETAILS_MAX_CHARS {
                    details = details.chars().take(DETAILS_MAX_CHARS).collect::<String>() + "…";
                }
                EventLine {
                    seq: e.seq,
                    at: view::short_time(e.at),
                    actor: e.actor,
                    event: e.event,
                    request_id: e.request_id,
                    details,
                }
            })
            .collect(),
        total,
        pager: Pager::new(page, AUDIT_PER_PAGE, total, String::new()),
    })
}

struct RuleLine {
    name: String,
    effect: &'static str,
    priority: i64,
    description: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "policy.html")]
struct PolicyPage {
    me: Option<Me>,
    version: String,
    source: String,
    loaded_at: String,
    /// The last reload error, while an older policy stays in force.
    last_error: Option<String>,
    rules: Vec<RuleLine>,
}

async fn policy_page(svc: web::Data<Service>, human: Human) -> PolicyPage {
    let loaded = svc.policy.current();
    PolicyPage {
        me: Some(Me::from(&human)),
        version: loaded.policy.version().to_owned(),
        source: match &loaded.source {
            Source::File(p) => p.display().to_string(),
            Source::Builtin => {
                "built-in default (no policy file): every request needs approval".to_owned()
            }
        },
        loaded_at: view::short_time(loaded.loaded_at),
        last_error: svc.policy.last_error().map(|f| f.message),
        rules: loaded
            .policy
            .rules()
            .iter()
            .map(|r| RuleLine {
                name: r.name.clone(),
                effect: r.effect.as_str(),
                priority: r.priority,
                description: r.description.clone(),
            })
            .collect(),
    }
}
