//! The JSON API under `/api/v1`: agent routes, admin routes and health. Each area registers its
//! own routes; request bodies are size-limited and strictly parsed, and every error leaves in the
//! one envelope of [`envelope`].

mod admin;
mod auth;
pub mod envelope;
mod health;
mod permissions;

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::Error;

/// Largest JSON body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Registers every API route, the body and query rules, and the JSON 404 under `/api/v1`
/// (other paths belong to the web pages, which answer with an HTML 404).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(json_error),
    )
    .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
    .app_data(web::QueryConfig::default().error_handler(query_error))
    .configure(health::configure)
    .service(
        web::scope("/api/v1")
            .configure(health::configure)
            .configure(permissions::configure)
            .configure(admin::configure)
            .default_service(web::to(not_found)),
    );
}

/// A resource whose other methods answer 405 in the envelope.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found() -> Result<HttpResponse, Error> {
    Err(Error::NotFound("no such route".into()))
}

async fn method_not_allowed() -> HttpResponse {
    envelope::error_response(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this method is not allowed on this route",
        None,
    )
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            Error::PayloadTooLarge(format!("the body must be at most {limit} bytes"))
        }
        JsonPayloadError::ContentType => Error::invalid("Content-Type", "must be application/json"),
        JsonPayloadError::Deserialize(e) => Error::invalid("body", e.to_string()),
        other => Error::invalid("body", other.to_string()),
    };
    e.into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    Error::invalid("query", err.to_string()).into()
}

/// A JSON body that may be left out entirely (then `T::default()`); if present it is parsed as
/// strictly as any other body.
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| Error::invalid("body", e.to_string()))
}

/// `?page=&limit=` for lists: page from 1, limit 1–100 (default 20).
#[derive(Debug, serde::Deserialize)]
struct PageQuery {
    page: Option<i64>,
    limit: Option<i64>,
}

impl PageQuery {
    /// `(page, limit, offset)` after validation.
    fn resolve(&self) -> Result<(i64, i64, i64), Error> {
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(20);
        if !(1..=1_000_000).contains(&page) {
            return Err(Error::invalid("page", "must be between 1 and 1000000"));
        }
        if !(1..=100).contains(&limit) {
            return Err(Error::invalid("limit", "must be between 1 and 100"));
        }
        Ok((page, limit, (page - 1) * limit))
    }
}
