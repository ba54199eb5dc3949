//! Logging in and out. `GET /login/{secret}` redeems a one-time login link and starts a session;
//! `GET /login` explains how to get a link (and remembers where to go afterwards); `POST /logout`
//! ends this browser's session; `/sessions` lists live sessions and revokes any of them.
//!
//! After a login the browser moves on with a same-page `<meta http-equiv="refresh">` rather than
//! a redirect: a link opened from another site (a web mail, a chat in a browser tab) is a
//! cross-site navigation, and a SameSite=Strict cookie would not ride along on its redirects.

use actix_web::http::StatusCode;
use actix_web::http::header::USER_AGENT;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::auth::{self, Human, NEXT_COOKIE};
use super::form::Form;
use super::view::{self, Me};
use super::{WebError, html, secure, see_other};
use crate::domain::Actor;
use crate::error::Error;
use crate::login_links;
use crate::rate_limit;
use crate::secret::{Secret, sha256_hex};
use crate::service::Service;
use crate::sessions;
use crate::store::{login_links as link_sql, sessions as session_sql};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::get().to(login_page)))
        .service(web::resource("/login/{secret}").route(web::get().to(redeem)))
        .service(web::resource("/logout").route(web::post().to(logout)))
        .service(web::resource("/sessions").route(web::get().to(list_sessions)))
        .service(web::resource("/sessions/{id}/revoke").route(web::post().to(revoke_session)));
}

/// Issues a first login link when no one has ever logged in and prints it alone on a line of
/// stdout (never in the log, which may be shipped elsewhere): the way into a new installation.
/// Later starts print nothing; `agent-otp login` makes more links.
pub async fn announce_first_login(svc: &Service) -> Result<(), Error> {
    let ever = svc.store.read(session_sql::anyone_ever_logged_in).await?;
    if ever {
        return Ok(());
    }
    let url = login_links::issue_url(svc, "admin", None, Actor::System).await?;
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
    problem: Option<&'static str>,
    next: Option<String>,
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

async fn login_page(
    svc: web::Data<Service>,
    req: HttpRequest,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, WebError> {
    let next = query
        .into_inner()
        .next
        .filter(|n| crate::login_links::is_local_path(n));
    if current_session(&svc, &req).await?.is_some() {
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

async fn redeem(
    svc: web::Data<Service>,
    req: HttpRequest,
    secret: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let presented = secret.into_inner();
    let now = svc.clock.now();
    // Each redemption takes from the address's bucket up front and gives it back unless it
    // failed, so only failed links count and a guessing flood never reaches the database.
    let client = rate_limit::client_key(&req, svc.limiter.limits.trust_forwarded_for);
    let tries = &svc.limiter.login;
    if let Err(denied) = tries.check(client, now) {
        rate_limit::record(&req, denied.quota);
        return Err(Error::from(denied).into());
    }
    let result = redeem_link(&svc, &req, presented, now).await;
    if !matches!(&result, Ok(resp) if resp.status() == StatusCode::FORBIDDEN) {
        tries.refund(client);
    }
    if let Some(q) = tries.quota(client, now) {
        rate_limit::record(&req, q);
    }
    result
}

async fn redeem_link(
    svc: &Service,
    req: &HttpRequest,
    presented: String,
    now: crate::clock::Timestamp,
) -> Result<HttpResponse, WebError> {
    let remembered = req
        .cookie(NEXT_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|n| crate::login_links::is_local_path(n));
    if current_session(svc, req).await?.is_some() {
        // Already logged in: a used or expired link just leads on, without a failed login.
        let hash = sha256_hex(presented.as_bytes());
        let peeked = svc
            .store
            .read(move |c| link_sql::peek(c, &hash, now))
            .await?;
        match peeked {
            Some((_, true)) => {}
            Some((next, false)) => {
                let next = next.filter(|n| crate::login_links::is_local_path(n));
                return Ok(see_other(next.or(remembered).as_deref().unwrap_or("/")));
            }
            None => return Ok(see_other(remembered.as_deref().unwrap_or("/"))),
        }
    }
    let user_agent = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let started = svc
        .store
        .write(move |tx| {
            let Some(link) = login_links::redeem(tx, &presented, now)? else {
                return Ok(None);
            };
            let (_, secret) = sessions::create(tx, &link.human, user_agent.as_deref(), now)?;
            Ok::<_, Error>(Some((link, secret)))
        })
        .await?;
    let secure = secure(svc);
    let Some((link, secret)) = started else {
        let page = LoginPage {
            me: None,
            problem: Some(
                "This login link does not work: it was already used, it expired, or it is incomplete.",
            ),
            next: remembered,
        };
        return Ok(html(StatusCode::FORBIDDEN, &page));
    };
    let next = link
        .next
        .filter(|n| crate::login_links::is_local_path(n))
        .or(remembered)
        .unwrap_or_else(|| "/".to_owned());
    let mut resp = html(StatusCode::OK, &LoggedInPage { me: None, next });
    let _ = resp.add_cookie(&auth::session_cookie(&secret, secure));
    let _ = resp.add_cookie(&auth::removal_cookie(NEXT_COOKIE, secure));
    Ok(resp)
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
    let now = svc.clock.now();
    let rows = svc.store.read(move |c| session_sql::live(c, now)).await?;
    Ok(SessionsPage {
        me: Some(Me::from(&human)),
        csrf: human.csrf.clone(),
        sessions: rows
            .into_iter()
            .map(|s| SessionLine {
                this_browser: s.id == human.session_id,
                device: s.user_agent.unwrap_or_else(|| "unknown browser".to_owned()),
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
    let now = svc.clock.now();
    let (by, id) = (Actor::Human(human.name.clone()), id.to_owned());
    svc.store
        .write(move |tx| sessions::end(tx, &id, &by, now))
        .await
}

/// The live session of this browser, if any.
async fn current_session(
    svc: &Service,
    req: &HttpRequest,
) -> Result<Option<session_sql::SessionRow>, Error> {
    match req.cookie(sessions::COOKIE) {
        Some(c) => auth::lookup(svc, &Secret::new(c.value())).await,
        None => Ok(None),
    }
}
