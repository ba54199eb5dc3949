//! Who is looking at a page: the session cookie, checked against the store. A page without a live
//! session sends the browser to `/login?next=<this page>`; a form without the session's CSRF
//! token is refused with 403. Agent keys are never looked at here, so they open no page.

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
use crate::sessions;
use crate::store::sessions::{self as sql, SessionRow};

/// Name of the short-lived cookie remembering where to go after logging in.
pub const NEXT_COOKIE: &str = "agent_otp_next";

/// A logged-in human on a page.
pub struct Human {
    /// Recorded as `human:<name>` on decisions.
    pub name: String,
    /// The public id of this browser's session.
    pub session_id: String,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl Human {
    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check_csrf(&self, form: &Form) -> Result<(), WebError> {
        match form.get("csrf") {
            Some(t) if crate::secret::hashes_equal(&self.csrf, t) => Ok(()),
            _ => Err(WebError::Csrf),
        }
    }
}

/// The live session for a presented cookie secret, noting (at most once a minute) that it was used.
pub async fn lookup(svc: &Service, secret: &Secret) -> Result<Option<SessionRow>, Error> {
    let now = svc.clock.now();
    let presented = secret.expose().to_owned();
    let found = svc
        .store
        .read(move |c| sessions::authenticate(c, &presented, now))
        .await?;
    if let Some(s) = found.as_ref().filter(|s| sessions::needs_touch(s, now)) {
        let id = s.id.clone();
        svc.store.write(move |tx| sql::touch(tx, &id, now)).await?;
    }
    Ok(found)
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
        Box::pin(async move {
            let svc = svc.ok_or_else(|| Error::Internal("service missing from app data".into()))?;
            let login = || WebError::Login { next: here.clone() };
            let Some(cookie) = cookie else {
                return Err(login());
            };
            match lookup(&svc, &cookie).await? {
                Some(s) => Ok(Human {
                    name: s.human,
                    session_id: s.id,
                    csrf: sessions::csrf_token(cookie.expose()),
                }),
                None => Err(login()),
            }
        })
    }
}

/// The session cookie: HttpOnly, SameSite=Strict, Secure when served over https.
pub fn session_cookie(secret: &Secret, secure: bool) -> Cookie<'static> {
    Cookie::build(sessions::COOKIE, secret.expose().to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::seconds(sessions::TTL_SECS))
        .finish()
}

/// A cookie that makes the browser forget `name`.
pub fn removal_cookie(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = Cookie::build(name, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish();
    c.make_removal();
    c
}

/// Remembers for 15 minutes where to go after the next login (Lax, so it survives the trip
/// through a link opened from another app).
pub fn next_cookie(next: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(NEXT_COOKIE, next.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(CookieDuration::minutes(15))
        .finish()
}
