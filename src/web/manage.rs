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
use crate::domain::Actor;
use crate::error::Error;
use crate::policy::live::Source;
use crate::service::Service;

/// Events per audit page.
const AUDIT_PER_PAGE: i64 = 30;
/// Longest event details shown inline, in characters.
const DETAILS_MAX_CHARS: usize = 300;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
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
    /// The agent a Revoke tap asks about, before anything happens.
    confirm: Option<RevokeQuestion>,
}

/// "Revoke new-bot? …": what revoking an agent ends, asked before it does.
struct RevokeQuestion {
    id: String,
    name: String,
    /// Its pending or approved requests, which end with it.
    live: usize,
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
    let rows = svc.agents().await?;
    // Linked ones (configured ids are the Telegram settings', not shown here).
    let approvers = svc.approvers(&[]).await?;
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
        confirm: None,
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
    let created = svc
        .create_agent(Actor::Human(human.name.clone()), &name)
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
    let form = Form::parse(&body);
    human.check_csrf(&form)?;
    if form.get("confirmed") != Some("1") {
        return ask_to_revoke(&svc, &human, &id).await;
    }
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

/// The agents page asking whether to revoke `id`, and saying what that ends.
async fn ask_to_revoke(svc: &Service, human: &Human, id: &str) -> Result<HttpResponse, WebError> {
    let mut page = agents_page(svc, human, None, None).await?;
    let Some(agent) = page
        .agents
        .iter()
        .find(|a| a.id == id && a.revoked.is_none())
    else {
        return Err(Error::NotFound("There is no live agent with this id.".into()).into());
    };
    let agent_id = crate::domain::AgentId(agent.id.clone());
    let live = svc.live_requests_of(&agent_id).await?;
    page.confirm = Some(RevokeQuestion {
        id: agent.id.clone(),
        name: agent.name.clone(),
        live,
    });
    Ok(html(StatusCode::OK, &page))
}

struct EventLine {
    seq: i64,
    at: String,
    /// Who did it, in words.
    actor: String,
    /// What happened, in words.
    what: String,
    /// The event name as recorded.
    event: String,
    request_id: Option<String>,
    details: String,
}

/// An option of the event filter.
struct EventChoice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    me: Option<Me>,
    events: Vec<EventLine>,
    total: i64,
    pager: Pager,
    choices: Vec<EventChoice>,
    /// The request id filtered on, if any.
    request: String,
}

#[derive(Debug, serde::Deserialize)]
struct AuditQuery {
    event: Option<String>,
    request: Option<String>,
}

async fn audit_page(
    svc: web::Data<Service>,
    human: Human,
    paging: web::Query<PageQuery>,
    query: web::Query<AuditQuery>,
) -> Result<AuditPage, WebError> {
    let page = paging.number();
    let offset = (page - 1) * AUDIT_PER_PAGE;
    let event = query.event.clone().filter(|e| !e.is_empty());
    let request = query
        .request
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if let Some(e) = &event
        && !view::EVENTS.iter().any(|(known, _)| known == e)
    {
        return Err(Error::invalid("event", "no such event").into());
    }
    let filter = crate::domain::AuditFilter {
        event: event.clone(),
        request_id: request.clone(),
        ..crate::domain::AuditFilter::default()
    };
    let mut base = String::new();
    for (k, v) in [("event", &event), ("request", &request)] {
        if let Some(v) = v {
            base.push_str(&format!(
                "{k}={}&",
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            ));
        }
    }
    let (events, total) = svc.audit_page(filter, offset, AUDIT_PER_PAGE).await?;
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
                    actor: view::actor_words(&e.actor),
                    what: view::event_words(&e.event),
                    event: e.event,
                    request_id: e.request_id,
                    details,
                }
            })
            .collect(),
        total,
        pager: Pager::new(page, AUDIT_PER_PAGE, total, base),
        choices: view::EVENTS
            .iter()
            .map(|(value, label)| EventChoice {
                value,
                label,
                selected: event.as_deref() == Some(*value),
            })
            .collect(),
        request: request.unwrap_or_default(),
    })
}

struct RuleLine {
    name: String,
    /// What the rule does, in words.
    effect: &'static str,
    priority: i64,
    description: Option<String>,
    /// "agent is billing-bot", "action starts with \"bank.\"": all must hold.
    conditions: Vec<String>,
    /// The scope every grant of this rule is narrowed to, one entry per key.
    template: Vec<crate::shown::Entry>,
    confirm: bool,
    require_details: bool,
}

/// A policy operator in words.
fn operator_words(op: &str) -> &'static str {
    match op {
        "equals" => "is",
        "notEquals" => "is not",
        "lessThan" => "is less than",
        "lessThanOrEqual" => "is at most",
        "greaterThan" => "is more than",
        "greaterThanOrEqual" => "is at least",
        "startsWith" => "starts with",
        "endsWith" => "ends with",
        "contains" => "contains",
        "matches" => "matches the pattern",
        "in" => "is one of",
        "notIn" => "is none of",
        "exists" => "exists:",
        _ => "?",
    }
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
    let loaded = svc.policy().current();
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
        last_error: svc.policy().last_error().map(|f| f.message),
        rules: loaded
            .policy
            .rules()
            .iter()
            .map(|r| RuleLine {
                name: r.name.clone(),
                effect: match r.effect {
                    crate::policy::Effect::AutoApprove => "approves at once",
                    crate::policy::Effect::RequireApproval => "asks a human",
                    crate::policy::Effect::Deny => "denies",
                },
                priority: r.priority,
                description: r.description.clone(),
                conditions: r
                    .agent
                    .iter()
                    .map(|a| format!("the agent is {a}"))
                    .chain(r.conditions().map(|(path, op, v)| {
                        format!("{path} {} {}", operator_words(op), crate::shown::text(&v))
                    }))
                    .collect(),
                template: r
                    .scope_template
                    .as_ref()
                    .map(crate::shown::scope)
                    .unwrap_or_default(),
                confirm: r.confirm,
                require_details: r.require_action_details || r.bind.is_some(),
            })
            .collect(),
    }
}
