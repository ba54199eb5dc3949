//! Logging in and out. `GET /login/{secret}` shows what a one-time login link would do ("Log in
//! as <name> on this device?") and spends nothing, so a chat app fetching a preview of the link
//! cannot use it up; the page's button posts back to the same address, and only that `POST`
//! redeems the link and starts a session. The post must carry a value derived from a random
//! nonce that the page set in a SameSite=Strict cookie for `/login` only: a page on another site
//! can neither read it nor send the cookie, so it cannot log a visitor in with a link of its
//! choosing. `GET /login` explains how to get a link (and remembers where to go afterwards);
//! `POST /logout` ends this browser's session; `/sessions` lists live sessions and revokes any.
//!
//! After a login the browser moves on with a same-page `<meta http-equiv="refresh">` rather than
//! a redirect, as it always has: the cookie then rides along whatever site the link came from.

use actix_web::http::StatusCode;
use actix_web::http::header::USER_AGENT;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::auth::{self, Human, LOGIN_COOKIE, NEXT_COOKIE};
use super::form::Form;
use super::view::{self, Me};
use super::{WebError, html, secure, see_other};
use crate::api::limits;
use crate::domain::{Actor, Status};
use crate::error::Error;
use crate::secret::{self, Secret};
use crate::service::Service;
use crate::service::login_links::{self, Redeemed};
use crate::service::sessions;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::get().to(login_page)))
        .service(
            web::resource("/login/{secret}")
                .route(web::get().to(confirm_page))
                .route(web::post().to(redeem)),
        )
        .service(web::resource("/logout").route(web::post().to(logout)))
        .service(web::resource("/sessions").route(web::get().to(list_sessions)))
        .service(web::resource("/sessions/{id}/revoke").route(web::post().to(revoke_session)));
}

/// Issues a first login link when no one has ever logged in and prints it alone on a line of
/// stdout (never in the log, which may be shipped elsewhere): the way into a new installation.
/// Later starts print nothing; `agent-otp login` makes more links.
pub(crate) async fn announce_first_login(svc: &Service) -> Result<(), Error> {
    let ever = svc.anyone_ever_logged_in().await?;
    if ever {
        return Ok(());
    }
    let url = svc.issue_login_url(Actor::System, "admin", None).await?;
    tracing::warn!(
        "first start: a one-time login link for admin was printed on stdout; open it within \
         10 minutes (later: agent-otp login)"
    );
    // Framed so it stands out in a terminal or `docker logs`; the link is alone on its line.
    let rule = "=".repeat(72);
    println!(
        "{rule}\nFirst start: log in as admin with this one-time link within 10 minutes\n\
         (open it on your phone; `agent-otp login` prints more links later):\n\n{url}\n\n{rule}"
    );
    Ok(())
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    me: Option<Me>,
    /// Why the last link did not work, if that is why this page is shown.
    problem: Option<String>,
    next: Option<String>,
}

/// "Log in as <name> on this device?", with the button that redeems the link.
#[derive(Template)]
#[template(path = "login_confirm.html")]
struct ConfirmPage {
    me: Option<Me>,
    human: String,
    /// The one request the session will be limited to, if the link was made for one.
    request: Option<String>,
    /// Where the form posts: this link's own address.
    action: String,
    /// The value the form sends back, bound to this browser's login cookie.
    confirm: String,
}

#[derive(Template)]
#[template(path = "logged_in.html")]
struct LoggedInPage {
    me: Option<Me>,
    next: String,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

const LINK_PROBLEM: &str =
    "This login link does not work: it was already used, it expired, or it is incomplete.";
const CONFIRM_PROBLEM: &str = "This login was not confirmed from its own page on this browser \
    (it may have come from another site, or the page is older than 10 minutes). Open the login \
    link again and press the button there.";

async fn login_page(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, WebError> {
    let next = query
        .into_inner()
        .next
        .filter(|n| login_links::is_local_path(n));
    if full_session(&svc, &req).await? {
        return Ok(see_other(next.as_deref().unwrap_or("/")));
    }
    let mut resp = html(
        StatusCode::OK,
        &LoginPage {
            me: None,
            problem: None,
            next: next.clone(),
        },
    );
    if let Some(n) = &next {
        // The link a human gets next may not know this page; the cookie brings them back here.
        let _ = resp.add_cookie(&auth::next_cookie(n, secure(&svc)));
    }
    Ok(resp)
}

/// Runs `attempt` under the login limiter of the client's address: each attempt takes from the
/// address's bucket up front and gets it back unless it was refused (403), so only failures count
/// and a guessing flood never reaches the database.
async fn limited(
    svc: &Service,
    req: &HttpRequest,
    attempt: impl AsyncFnOnce() -> Result<HttpResponse, WebError>,
) -> Result<HttpResponse, WebError> {
    let now = svc.now();
    let client = limits::client_key(req, &svc.limiter().limits);
    let tries = &svc.limiter().login;
    if let Err(denied) = tries.check(client, now) {
        limits::record(req, denied.quota);
        return Err(Error::from(denied).into());
    }
    let result = attempt().await;
    if !matches!(&result, Ok(resp) if resp.status() == StatusCode::FORBIDDEN) {
        tries.refund(client);
    }
    if let Some(q) = tries.quota(client, now) {
        limits::record(req, q);
    }
    result
}

/// `GET /login/{secret}`: the confirmation page; spends nothing.
async fn confirm_page(
    svc: web::Data<Service>,
    req: HttpRequest,
    secret: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let presented = secret.into_inner();
    limited(&svc, &req, async || {
        let remembered = remembered_next(&req);
        let link = svc.peek_login_link(&presented).await?;
        if full_session(&svc, &req).await? {
            // Already logged in here: lead on, and leave the link for whoever it was meant for.
            let next = link.and_then(|l| l.next).or(remembered);
            return Ok(see_other(next.as_deref().unwrap_or("/")));
        }
        let Some(link) = link else {
            return Ok(match spent_link_outcome(&svc, &presented).await? {
                Some(outcome) => refused_with(outcome, remembered),
                None => link_refused(remembered),
            });
        };
        let nonce = secret::generate("")
            .map_err(|e| Error::Internal(format!("no randomness for a login page: {e}")))?;
        let page = ConfirmPage {
            me: None,
            human: link.human,
            request: link.request,
            action: format!("/login/{presented}"),
            confirm: login_links::confirm_token(nonce.expose(), &presented),
        };
        let mut resp = html(StatusCode::OK, &page);
        let _ = resp.add_cookie(&auth::login_cookie(nonce.expose(), secure(&svc)));
        Ok(resp)
    })
    .await
}

/// `POST /login/{secret}`: the confirmation page's button; redeems the link once.
async fn redeem(
    svc: web::Data<Service>,
    req: HttpRequest,
    secret: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let presented = secret.into_inner();
    let form = Form::parse(&body);
    limited(&svc, &req, async || {
        let remembered = remembered_next(&req);
        let nonce = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_owned());
        let cross_site = req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site");
        let confirmed = !cross_site
            && nonce.is_some_and(|n| {
                form.get("confirm").is_some_and(|sent| {
                    secret::hashes_equal(&login_links::confirm_token(&n, &presented), sent)
                })
            });
        if !confirmed {
            let page = LoginPage {
                me: None,
                problem: Some(CONFIRM_PROBLEM.to_owned()),
                next: remembered,
            };
            return Ok(html(StatusCode::FORBIDDEN, &page));
        }
        let user_agent = req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let max_age = max_age_secs(&svc);
        let started = svc
            .log_in(&presented, user_agent.as_deref(), max_age)
            .await?;
        let Some((link, _, secret)) = started else {
            return Ok(link_refused(remembered));
        };
        Ok(logged_in(&svc, link, remembered, &secret, max_age))
    })
    .await
}

/// The page after a login: the session cookie, and on to the link's page.
fn logged_in(
    svc: &Service,
    link: Redeemed,
    remembered: Option<String>,
    secret: &Secret,
    max_age_secs: i64,
) -> HttpResponse {
    let secure = secure(svc);
    let next = link.next.filter(|n| login_links::is_local_path(n));
    // A session for one request goes to that request, whatever page was remembered.
    let next = if link.request.is_some() {
        next
    } else {
        next.or(remembered)
    };
    let next = next.unwrap_or_else(|| "/".to_owned());
    let mut resp = html(StatusCode::OK, &LoggedInPage { me: None, next });
    let _ = resp.add_cookie(&auth::session_cookie(secret, secure, max_age_secs));
    let _ = resp.add_cookie(&auth::removal_cookie(NEXT_COOKIE, secure));
    let _ = resp.add_cookie(&auth::removal_cookie_at(LOGIN_COOKIE, "/login", secure));
    resp
}

fn link_refused(remembered: Option<String>) -> HttpResponse {
    refused_with(LINK_PROBLEM.to_owned(), remembered)
}

fn refused_with(problem: String, remembered: Option<String>) -> HttpResponse {
    let page = LoginPage {
        me: None,
        problem: Some(problem),
        next: remembered,
    };
    html(StatusCode::FORBIDDEN, &page)
}

/// For a link from an approval message that no longer works because its request was decided or
/// expired: what became of the request, in words ("… was approved by alice at …"). It says no
/// more than the message the link came in, which is edited to the same outcome.
async fn spent_link_outcome(svc: &Service, presented: &str) -> Result<Option<String>, WebError> {
    let request = svc.spent_link_request(presented).await?;
    let Some(id) = request else {
        return Ok(None);
    };
    let Ok(v) = svc.get_for_human(&id).await else {
        return Ok(None);
    };
    if v.status == Status::Pending {
        return Ok(None);
    }
    let by = match &v.decided_by {
        Some(by) => Some(crate::shown::person(svc, by).await),
        None => None,
    };
    Ok(Some(format!(
        "This link no longer works: the request “{}” from {} was {}. Links in approval \
         messages stop working once their request is decided or expires.",
        crate::text::with_markers(&v.action),
        crate::text::with_markers(&v.agent_name),
        view::what_happened(&v, by.as_deref())
    )))
}

/// Where the last `/login?next=` asked to go, if it was a local path.
fn remembered_next(req: &HttpRequest) -> Option<String> {
    req.cookie(NEXT_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|n| login_links::is_local_path(n))
}

fn max_age_secs(svc: &Service) -> i64 {
    i64::try_from(svc.limiter().limits.session_max_age.as_secs())
        .unwrap_or(sessions::TTL_SECS)
        .max(1)
}

async fn logout(
    svc: web::Data<Service>,
    human: Human,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    human.check_csrf(&Form::parse(&body))?;
    end_session(&svc, &human, &human.session_id).await?;
    let mut resp = see_other("/login");
    let _ = resp.add_cookie(&auth::removal_cookie(sessions::COOKIE, secure(&svc)));
    Ok(resp)
}

/// One live session on the sessions page.
struct SessionLine {
    id: String,
    human: String,
    device: String,
    started: String,
    last_seen: String,
    expires: String,
    this_browser: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "sessions.html")]
struct SessionsPage {
    me: Option<Me>,
    csrf: String,
    sessions: Vec<SessionLine>,
}

async fn list_sessions(svc: web::Data<Service>, human: Human) -> Result<SessionsPage, WebError> {
    let rows = svc.live_sessions().await?;
    Ok(SessionsPage {
        me: Some(Me::from(&human)),
        csrf: human.csrf.clone(),
        sessions: rows
            .into_iter()
            .map(|s| SessionLine {
                this_browser: s.id == human.session_id,
                device: match &s.request_id {
                    Some(r) => format!(
                        "{} (request {r} only)",
                        s.user_agent.as_deref().unwrap_or("unknown browser")
                    ),
                    None => s.user_agent.unwrap_or_else(|| "unknown browser".to_owned()),
                },
                started: view::short_time(s.created_at),
                last_seen: view::short_time(s.last_seen_at),
                expires: view::short_time(s.expires_at),
                human: s.human,
                id: s.id,
            })
            .collect(),
    })
}

async fn revoke_session(
    svc: web::Data<Service>,
    human: Human,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    human.check_csrf(&Form::parse(&body))?;
    end_session(&svc, &human, &id).await?;
    if *id == human.session_id {
        let mut resp = see_other("/login");
        let _ = resp.add_cookie(&auth::removal_cookie(sessions::COOKIE, secure(&svc)));
        return Ok(resp);
    }
    Ok(see_other("/sessions"))
}

async fn end_session(svc: &Service, human: &Human, id: &str) -> Result<(), Error> {
    svc.end_session(Actor::Human(human.name.clone()), id).await
}

/// Whether this browser has a live session for the whole app (not one limited to a request).
async fn full_session(svc: &Service, req: &HttpRequest) -> Result<bool, Error> {
    let found = match req.cookie(sessions::COOKIE) {
        Some(c) => svc.session(&Secret::new(c.value())).await?,
        None => None,
    };
    Ok(found.is_some_and(|s| s.request_id.is_none()))
}
