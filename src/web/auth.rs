//! Who is looking at a page: the session cookie, checked against the store. A page without a live
//! session sends the browser to `/login?next=<this page>`; a form without the session's CSRF
//! token is refused with 403. Agent keys are never looked at here, so they open no page.
//!
//! A session opened by a link made for one request (the link in a Telegram approval message)
//! reaches only that request's page, its Approve and Deny forms, and logout; any other page
//! answers 403, and the admin API refuses it too (`api::auth`).

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::WebError;
use super::form::Form;
use crate::error::Error;
use crate::secret::Secret;
use crate::service::Service;
use crate::service::sessions;

/// Name of the short-lived cookie remembering where to go after logging in.
pub(crate) const NEXT_COOKIE: &str = "agent_otp_next";
/// Name of the cookie binding a login confirmation page to the browser that opened it.
pub(crate) const LOGIN_COOKIE: &str = "agent_otp_login";

/// A logged-in human on a page.
pub(crate) struct Human {
    /// Recorded as `human:<name>` on decisions.
    pub name: String,
    /// The public id of this browser's session.
    pub session_id: String,
    /// The token every form of this session carries.
    pub csrf: String,
}

/// Whether a session limited to `request` may open `path`.
fn allowed_for_request(request: &str, path: &str) -> bool {
    if path == "/logout" {
        return true;
    }
    let Some(rest) = path
        .strip_prefix("/requests/")
        .and_then(|p| p.strip_prefix(request))
    else {
        return false;
    };
    matches!(rest, "" | "/approve" | "/deny")
}

impl Human {
    /// Refuses a form that does not carry this session's CSRF token.
    pub(crate) fn check_csrf(&self, form: &Form) -> Result<(), WebError> {
        match form.get("csrf") {
            Some(t) if crate::secret::hashes_equal(&self.csrf, t) => Ok(()),
            _ => Err(WebError::Csrf),
        }
    }
}

type Pending<T> = Pin<Box<dyn Future<Output = Result<T, WebError>>>>;

impl FromRequest for Human {
    type Error = WebError;
    type Future = Pending<Human>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let svc = req.app_data::<web::Data<Service>>().cloned();
        let cookie = req.cookie(sessions::COOKIE).map(|c| Secret::new(c.value()));
        let here = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let path = req.path().to_owned();
        Box::pin(async move {
            let svc = svc.ok_or_else(|| Error::Internal("service missing from app data".into()))?;
            let login = || WebError::Login { next: here.clone() };
            let Some(cookie) = cookie else {
                return Err(login());
            };
            let Some(s) = svc.session(&cookie).await? else {
                return Err(login());
            };
            if let Some(r) = &s.request_id
                && !allowed_for_request(r, &path)
            {
                return Err(WebError::Service(Error::Forbidden(format!(
                    "This login was made for request {r} only, so it opens no other page. For \
                     the whole app, log in with a link from agent-otp login or the bot's /login."
                ))));
            }
            Ok(Human {
                name: s.human,
                session_id: s.id,
                csrf: sessions::csrf_token(cookie.expose()),
            })
        })
    }
}

/// The session cookie: HttpOnly, SameSite=Strict, Secure when served over https, kept by the
/// browser as long as the session lasts.
pub(crate) fn session_cookie(secret: &Secret, secure: bool, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(sessions::COOKIE, secret.expose().to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

/// The random value that ties a login confirmation page to this browser: only the `POST` of a
/// page this browser was shown carries it (SameSite=Strict, so never a post from another site).
pub(crate) fn login_cookie(nonce: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(LOGIN_COOKIE, nonce.to_owned())
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::minutes(10))
        .finish()
}

/// A cookie that makes the browser forget `name` (set on `path`).
pub(crate) fn removal_cookie_at(
    name: &'static str,
    path: &'static str,
    secure: bool,
) -> Cookie<'static> {
    let mut c = Cookie::build(name, "")
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish();
    c.make_removal();
    c
}

/// A cookie that makes the browser forget `name` (set on `/`).
pub(crate) fn removal_cookie(name: &'static str, secure: bool) -> Cookie<'static> {
    removal_cookie_at(name, "/", secure)
}

/// Remembers for 15 minutes where to go after the next login (Lax, so it survives the trip
/// through a link opened from another app).
pub(crate) fn next_cookie(next: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(NEXT_COOKIE, next.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(CookieDuration::minutes(15))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::allowed_for_request;

    #[test]
    fn a_request_session_reaches_its_request_only() {
        let r = "0b0e7a3c-1d6c-4b8e-9a51-2f3d4e5f6a7b";
        for ok in [
            "/requests/R",
            "/requests/R/approve",
            "/requests/R/deny",
            "/logout",
        ] {
            assert!(allowed_for_request(r, &ok.replace('R', r)), "{ok}");
        }
        for no in [
            "/",
            "/requests",
            "/requests/",
            "/requests/other",
            "/requests/RX",
            "/requests/R/other",
            "/requests/R/approve/x",
            "/agents",
            "/sessions",
            "/audit",
            "/policy",
            "/history",
        ] {
            assert!(!allowed_for_request(r, &no.replace('R', r)), "{no}");
        }
    }
}
