//! The pages a human decides on: the pending list (newest first, reloading itself), the approval
//! page of one request with Approve / Deny / approve with narrower terms, and the history.
//! Approve and Deny are separate forms, Deny's reason is its own field, and Enter in a field
//! submits no form: only a tap on a button decides (see `request.html`).
//! Decisions go through `service.approve` / `service.deny`, so the first decision wins, is audited
//! in the same transaction and wakes the waiting agent, exactly as from the admin API.

use crate::wire::permissions::PermissionView;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::auth::Human;
use super::form::{self, Form};
use super::view::{self, Card, Edit, Me, Scope};
use super::{PageQuery, Pager, WebError, html, see_other};
use crate::domain::{Actor, Status, request};
use crate::error::Error;
use crate::service::Service;
use crate::shown::{self, Entry, Summary};

/// How often the pending list reloads itself, in seconds.
pub(super) const REFRESH_SECS: u32 = 10;
/// Most pending requests shown at once.
const PENDING_MAX: i64 = 100;
/// Requests per history page.
const HISTORY_PER_PAGE: i64 = 25;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(pending)))
        .service(web::resource("/requests").route(web::get().to(pending)))
        .service(web::resource("/requests/{id}").route(web::get().to(show)))
        .service(web::resource("/requests/{id}/approve").route(web::post().to(approve)))
        .service(web::resource("/requests/{id}/deny").route(web::post().to(deny)))
        .service(web::resource("/requests/{id}/revoke").route(web::post().to(revoke)))
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
    let filter = crate::domain::PermissionFilter {
        status: Some(Status::Pending),
        agent_id: None,
    };
    let (items, total) = svc.list(filter, 0, PENDING_MAX).await?;
    let now = svc.now();
    // Listed as pending but already past their time: the sweeper is about to expire them.
    let mut cards: Vec<Card> = items
        .iter()
        .filter(|v| v.status == Status::Pending)
        .map(|v| Card::new(v, now))
        .collect();
    if cards.len() > 1
        && let Some(first) = cards.iter_mut().min_by_key(|c| c.expires_in)
    {
        first.soonest = true;
    }
    Ok(PendingPage {
        me: Some(Me::from(&human)),
        refresh: REFRESH_SECS,
        cards,
        total,
    })
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    me: Option<Me>,
    csrf: String,
    card: Card,
    summary: Summary,
    /// Set when a decision just failed, or a tap came too late: why.
    problem: Option<String>,
    decidable: bool,
    status: &'static str,
    /// Seconds until a pending request expires (the page counts down from this).
    expires_in: i64,
    expires_at: String,
    /// The person who decided, as they are called (not `human:…`).
    decided_by: Option<String>,
    decided_at: Option<String>,
    /// The human's note or the deny reason.
    outcome_reason: Option<String>,
    /// After a decision: what happened, at the top of the page.
    banner: Option<Banner>,
    /// The next request waiting, offered after a decision.
    next: Option<Card>,
    /// The rule asks for a second confirmation before an approval counts.
    needs_confirm: bool,
    /// The second-confirmation question, when the first Approve tap brought it.
    confirm: Option<String>,
    /// The approve form's fields, carried through the confirmation.
    carry: Vec<(String, String)>,
    rule: String,
    policy_version: String,
    created: String,
    ttl_text: String,
    ttl_minutes: String,
    ttl_min_minutes: String,
    uses: i64,
    token_issued: bool,
    scope: Scope,
    /// The scope as the agent asked for it, when the policy narrowed it.
    requested_scope: Option<Vec<Entry>>,
    context: Vec<Entry>,
    /// The exact `actionDetails` the token is bound to, if the request carried them.
    exact_details: Option<Vec<Entry>>,
    edits: Vec<Edit>,
    /// "Approve with changes" is open: an approval with changes was just refused.
    changes_open: bool,
    /// The token life and uses in the changes form (what the human sent, after a refusal).
    ttl_value: String,
    uses_value: String,
    ttl_problem: bool,
    uses_problem: bool,
}

/// What the top of a decided request says.
struct Banner {
    /// "Approved by alice at 2026-05-28 07:00:00 UTC".
    title: String,
    /// What the granted scope has less of than the agent asked: "max_amount 100 → 40".
    narrowed: Vec<String>,
    /// An approved token not used up yet can still be revoked.
    revocable: bool,
}

impl RequestPage {
    fn new(
        human: &Human,
        v: &PermissionView,
        now: crate::clock::Timestamp,
        decided_by: Option<String>,
        needs_confirm: bool,
    ) -> RequestPage {
        let decidable = v.status == Status::Pending;
        let at = v.decided_at.map(view::short_time);
        let banner = (!decidable).then(|| Banner {
            title: view::outcome_title(v.status, decided_by.as_deref(), at.as_deref(), v),
            narrowed: shown::narrowed(&v.requested_scope, &v.scope),
            revocable: v.status == Status::Approved,
        });
        RequestPage {
            me: Some(Me::from(human)),
            csrf: human.csrf.clone(),
            card: Card::new(v, now),
            summary: shown::summary(v),
            problem: None,
            decidable,
            status: v.status.as_str(),
            expires_in: now.secs_until(v.expires_at),
            expires_at: view::short_time(v.expires_at),
            decided_by,
            decided_at: at,
            outcome_reason: v.reason.as_deref().map(marked),
            banner,
            next: None,
            needs_confirm: decidable && needs_confirm,
            confirm: None,
            carry: Vec::new(),
            rule: v.rule.as_deref().map_or_else(
                || "(no rule matched: approval required by default)".into(),
                marked,
            ),
            policy_version: view::short_version(&v.policy_version),
            created: view::short_time(v.created_at),
            ttl_text: view::duration(v.ttl),
            ttl_minutes: view::minutes_field(v.ttl),
            ttl_min_minutes: view::minutes_field(request::TTL_MIN.min(v.ttl)),
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
            changes_open: false,
            ttl_value: view::minutes_field(v.ttl),
            uses_value: v.uses_remaining.to_string(),
            ttl_problem: false,
            uses_problem: false,
        }
    }

    /// After a refused approval: the changes form open, with the human's edits, and the fields
    /// the refusal names marked.
    fn keep_changes(&mut self, form: &Form, problem: &str) {
        self.changes_open = true;
        if let Some(v) = form.text("ttl_min") {
            self.ttl_value = v;
        }
        if let Some(v) = form.text("uses") {
            self.uses_value = v;
        }
        self.ttl_problem = problem.starts_with("ttl") || problem.starts_with("Token valid for");
        self.uses_problem = problem.starts_with("uses");
        for e in &mut self.edits {
            e.keep(form);
            if problem.contains(&e.raw_key) {
                e.problem = Some(problem.to_owned());
            }
        }
    }
}

fn marked(s: &str) -> String {
    crate::text::with_markers(s).into_owned()
}

/// Whether the request's rule (in the policy in force) asks for a second confirmation.
fn needs_confirm(svc: &Service, v: &PermissionView) -> bool {
    let Some(rule) = v.rule.as_deref() else {
        return false;
    };
    svc.policy().current().policy.asks_confirmation(rule)
}

/// The request page as it is now.
async fn page(svc: &Service, human: &Human, v: &PermissionView) -> RequestPage {
    let by = match v.decided_by.as_deref() {
        Some(by) => Some(shown::person(svc, by).await),
        None => None,
    };
    let mut page = RequestPage::new(human, v, svc.now(), by, needs_confirm(svc, v));
    if !page.decidable {
        page.next = next_pending(svc, v).await;
    }
    page
}

/// The oldest other request still waiting, to offer after a decision.
async fn next_pending(svc: &Service, v: &PermissionView) -> Option<Card> {
    let filter = crate::domain::PermissionFilter {
        status: Some(Status::Pending),
        agent_id: None,
    };
    let (items, _) = svc.list(filter, 0, PENDING_MAX).await.ok()?;
    let now = svc.now();
    items
        .iter()
        .filter(|p| p.id != v.id && p.status == Status::Pending)
        .min_by_key(|p| p.expires_at)
        .map(|p| Card::new(p, now))
}

async fn show(
    svc: web::Data<Service>,
    human: Human,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let v = svc.get_for_human(&id).await?;
    Ok(html(StatusCode::OK, &page(&svc, &human, &v).await))
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
    let mut page = page(svc, human, &v).await;
    page.problem = Some(problem);
    Ok(html(status, &page))
}

/// A tap on a page that was out of date: what happened instead, never a second decision.
async fn too_late(svc: &Service, human: &Human, id: &str) -> Result<HttpResponse, WebError> {
    let v = svc.get_for_human(id).await?;
    let mut page = page(svc, human, &v).await;
    let what = view::what_happened(&v, page.decided_by.as_deref());
    page.problem = Some(format!(
        "Your tap changed nothing: this request was already {what}."
    ));
    Ok(html(StatusCode::CONFLICT, &page))
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
    if v.status != Status::Pending {
        return too_late(&svc, &human, &id).await;
    }
    let edits = match form::approval_edits(&form, &v) {
        Ok(e) => e,
        Err(problem) => return refused_changes(&svc, &human, &v, &form, problem).await,
    };
    if needs_confirm(&svc, &v) && form.get("confirmed") != Some("1") {
        // The question names what the token will allow: the request with the human's edits.
        let terms = match edits.clone().narrow(v.ttl, v.uses_remaining, &v.scope) {
            Ok(terms) => terms,
            Err(Error::Validation { message, .. }) => {
                return refused_changes(&svc, &human, &v, &form, message).await;
            }
            Err(e) => return Err(e.into()),
        };
        let granted = PermissionView {
            scope: terms.scope,
            ttl: terms.ttl_secs,
            uses_remaining: terms.uses,
            ..v.clone()
        };
        let mut page = page(&svc, &human, &v).await;
        page.confirm = Some(format!("{}?", shown::summary(&granted).confirm_question()));
        page.carry = form.pairs().filter(|(k, _)| *k != "csrf").collect();
        return Ok(html(StatusCode::OK, &page));
    }
    match svc.approve(&human.name, v.id.as_str(), edits).await {
        Err(Error::Validation { message, .. }) => {
            refused_changes(&svc, &human, &v, &form, message).await
        }
        outcome => decided(&svc, &human, &v, outcome).await,
    }
}

/// The page again after a refused approval, with the changes form open and the edits kept.
async fn refused_changes(
    svc: &Service,
    human: &Human,
    v: &PermissionView,
    form: &Form,
    problem: String,
) -> Result<HttpResponse, WebError> {
    let mut page = page(svc, human, v).await;
    page.keep_changes(form, &problem);
    page.problem = Some(problem);
    Ok(html(StatusCode::BAD_REQUEST, &page))
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
    if v.status != Status::Pending {
        return too_late(&svc, &human, &id).await;
    }
    let outcome = svc
        .deny(&human.name, v.id.as_str(), form.text("reason"))
        .await;
    decided(&svc, &human, &v, outcome).await
}

/// Revokes an approved request whose token is not used up: it stops working at once.
async fn revoke(
    svc: web::Data<Service>,
    human: Human,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = Form::parse(&body);
    human.check_csrf(&form)?;
    let v = svc.get_for_human(&id).await?;
    match svc
        .revoke(Actor::Human(human.name.clone()), None, v.id.as_str())
        .await
    {
        Ok(_) => Ok(see_other(&format!("/requests/{}", v.id.as_str()))),
        Err(Error::Conflict(_)) => too_late(&svc, &human, v.id.as_str()).await,
        Err(e) => Err(e.into()),
    }
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
        Err(Error::Conflict(_)) => too_late(svc, human, id).await,
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
    let all_agents = svc.agents().await?;
    let filter = crate::domain::PermissionFilter {
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
    let now = svc.now();
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
        cards: {
            let mut cards = Vec::with_capacity(items.len());
            for v in &items {
                let mut card = Card::new(v, now);
                // An expired request was decided by nobody (recorded as the timeout).
                if let Some(by) = v.decided_by.as_deref()
                    && v.status != Status::Expired
                {
                    card.by = Some(shown::person(&svc, by).await);
                }
                cards.push(card);
            }
            cards
        },
        total,
        pager: Pager::new(page, HISTORY_PER_PAGE, total, base),
    })
}
