//! The pages for humans, phone first: login, pending list, approval page, history, agents, audit,
//! policy status and sessions. Server-rendered askama templates (one struct + one template per
//! page, sharing `base.html`), auto-escaped; one small stylesheet embedded in the binary; no script.
//!
//! Every decision goes through [`Service`](crate::service::Service), exactly as the admin API's
//! do. Every page is behind a web session ([`auth::Human`]) except the login pages; every form
//! that changes something carries the session's CSRF token; every response carries the security
//! headers of [`add_security_headers`].

pub(crate) mod auth;
mod form;
mod live;
mod login;
mod manage;
mod requests;
mod view;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;

use crate::error::Error;
use crate::service::Service;

pub(crate) use login::announce_first_login;

/// The one stylesheet, embedded so the binary needs no files at run time.
const STYLE_CSS: &str = include_str!("../../static/style.css");
/// The one script: live updates and the countdown, embedded likewise.
const LIVE_JS: &str = include_str!("../../static/live.js");

/// Content-Security-Policy of every response: scripts, styles and event streams only from this
/// site (no inline script), forms only to this site, never framed.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Registers the pages, the stylesheet and the HTML 404 for every path outside `/api/v1`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/static/style.css").route(web::get().to(style)))
        .service(web::resource("/static/live.js").route(web::get().to(script)))
        .configure(live::configure)
        .configure(login::configure)
        .configure(requests::configure)
        .configure(manage::configure)
        .default_service(web::to(not_found));
}

/// `Strict-Transport-Security` when the public URL is https: browsers then refuse plain http for a
/// year, so a network in between cannot strip TLS from a later visit.
pub const HSTS: &str = "max-age=31536000";

/// Headers of every response (pages and API alike); with `https` (the public URL is https) also
/// [`HSTS`]. A handler may set its own `Cache-Control` (the stylesheet and script are cached).
pub(crate) fn add_security_headers(headers: &mut HeaderMap, https: bool) {
    const ALWAYS: [(HeaderName, &str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let hsts = https.then_some((header::STRICT_TRANSPORT_SECURITY, HSTS));
    for (name, value) in ALWAYS.into_iter().chain(hsts) {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLE_CSS)
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(LIVE_JS)
}

async fn not_found() -> Result<HttpResponse, WebError> {
    Err(Error::NotFound("There is no page at this address.".into()).into())
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebError {
    /// No live session: go to the login page, then come back to `next`.
    #[error("login required")]
    Login { next: String },
    /// A form without this session's CSRF token.
    #[error("the form's security token is missing or wrong")]
    Csrf,
    #[error(transparent)]
    Service(#[from] Error),
}

/// The page shown for any error.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    me: Option<view::Me>,
    title: &'static str,
    message: String,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::Login { .. } => StatusCode::SEE_OTHER,
            WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::Service(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = match self {
            WebError::Login { next } => {
                let target = format!(
                    "/login?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                return HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, target))
                    .finish();
            }
            WebError::Csrf => (
                "Form expired",
                "This form is missing its security token or it belongs to another session. \
                 Go back, reload the page and try again."
                    .to_owned(),
            ),
            WebError::Service(Error::Internal(detail)) => {
                tracing::error!(error = %detail, "internal error on a page");
                (
                    "Something went wrong",
                    "The server could not do this. The details are in its log.".to_owned(),
                )
            }
            WebError::Service(e @ Error::NotFound(_)) => ("Not found", e.to_string()),
            WebError::Service(Error::RateLimited { retry_after_secs }) => {
                let mut resp = html(
                    self.status_code(),
                    &ErrorPage {
                        me: None,
                        title: "Too many attempts",
                        message: format!(
                            "Too many failed attempts from your network. Try again in {retry_after_secs} seconds."
                        ),
                    },
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                return resp;
            }
            WebError::Service(e) => ("Cannot do that", e.to_string()),
        };
        html(
            self.status_code(),
            &ErrorPage {
                me: None,
                title,
                message,
            },
        )
    }
}

/// Renders `page` with `status`; a template that fails to render is an internal error.
fn html<T: Template>(status: StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

/// A `303 See Other` to a local path (after a form, the browser loads the result with GET).
fn see_other(path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            HeaderValue::from_str(path).unwrap_or(HeaderValue::from_static("/")),
        ))
        .finish()
}

/// `?page=` of a list, from 1.
#[derive(Debug, serde::Deserialize)]
struct PageQuery {
    page: Option<i64>,
}

impl PageQuery {
    /// The page number, clamped to 1–1,000,000.
    fn number(&self) -> i64 {
        self.page.unwrap_or(1).clamp(1, 1_000_000)
    }
}

/// Previous/next links of a paginated list.
struct Pager {
    page: i64,
    pages: i64,
    /// The query string of the current filters, without `page`, ending in `&` if not empty.
    base: String,
}

impl Pager {
    fn new(page: i64, per_page: i64, total: i64, base: String) -> Pager {
        Pager {
            page,
            pages: ((total + per_page - 1) / per_page).max(1),
            base,
        }
    }
    fn prev(&self) -> Option<String> {
        (self.page > 1).then(|| format!("?{}page={}", self.base, self.page - 1))
    }
    fn next(&self) -> Option<String> {
        (self.page < self.pages).then(|| format!("?{}page={}", self.base, self.page + 1))
    }
}

/// The service out of app data, for code that is not an extractor.
fn secure(svc: &Service) -> bool {
    svc.public_url().starts_with("https://")
}
