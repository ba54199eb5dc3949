//! Slow and greedy clients. Every request body is read here, before any handler, within the body
//! timeout (from the end of the headers; actix's own `client_request_timeout` bounds the headers)
//! and up to [`MAX_BODY_BYTES`]: a client that trickles its body is answered 408 and its
//! connection closed, so one agent key cannot hold connections open by sending slowly.
//!
//! The bodies of new permission requests (`POST /api/v1/permissions/request`) also count against
//! the agent key's storage budget ([`ByteRate`]): a request that was stored (answered 2xx) keeps
//! its body's bytes charged, any other answer gives them back. Once the budget is spent, the agent
//! gets 429 with `Retry-After` and a message that says it is the storage cap. The body is an upper
//! bound of what is kept of it (scope, context, actionDetails, action, resource) and cannot be
//! made to look smaller than it is.

use std::time::Duration;

use actix_web::body::{BodyStream, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};

use super::envelope::error_response;
use crate::rate_limit::ByteRate;
use crate::secret::Secret;
use crate::service::Service;
use crate::wire::MAX_BODY_BYTES;

/// The route whose bodies are stored, and so count against the storage cap.
const STORED_ROUTE: &str = "/api/v1/permissions/request";

/// Middleware: reads each request body within the body timeout and size limit, and charges the
/// bodies of new permission requests to the agent key's storage budget (see the module doc).
pub(crate) async fn guard_bodies(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(svc) = req.app_data::<web::Data<Service>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if !has_body(&req) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let limits = &svc.limiter().limits;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Ok(answer(req, too_large()));
    }
    let stream = BodyStream::new(req.take_payload());
    let read = tokio::time::timeout(
        limits.body_timeout,
        actix_web::body::to_bytes_limited(stream, MAX_BODY_BYTES),
    )
    .await;
    let body = match read {
        Err(_elapsed) => {
            // Not the path: a login link's secret is in it.
            tracing::info!(method = %req.method(), "request body too slow, connection closed");
            return Ok(answer(req, timed_out(limits.body_timeout)));
        }
        Ok(Err(_over)) => return Ok(answer(req, too_large())),
        Ok(Ok(Err(e))) => {
            let message = format!("the request body could not be read: {e}");
            let mut details = serde_json::Map::new();
            details.insert("body".into(), message.clone().into());
            let resp = error_response(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &message,
                Some(&details),
            );
            return Ok(answer(req, resp));
        }
        Ok(Ok(Ok(body))) => body,
    };
    // Without a cap nothing is charged, so the key is not hashed (authentication hashes it again).
    let charged = (limits.stored_bytes_per_agent.is_some()
        && req.method() == Method::POST
        && req.path() == STORED_ROUTE)
        .then(|| agent_key_hash(&req))
        .flatten();
    if let Some(key) = &charged
        && let Err(retry_after) = svc.limiter().stored.take(key, body.len(), svc.now())
    {
        let rate = limits.stored_bytes_per_agent;
        return Ok(answer(req, storage_cap(rate, retry_after)));
    }
    let size = body.len();
    req.set_payload(Payload::from(body));
    let res = next.call(req).await?;
    if let Some(key) = &charged
        && !res.status().is_success()
    {
        svc.limiter().stored.give_back(key, size);
    }
    Ok(res.map_into_left_body())
}

/// Whether the request says it has a body (a length above 0, or chunked).
fn has_body(req: &ServiceRequest) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// The SHA-256 of the agent key presented, as the storage budget's key.
fn agent_key_hash(req: &ServiceRequest) -> Option<String> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let key = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    };
    key.starts_with(crate::secret::AGENT_KEY_PREFIX)
        .then(|| Secret::new(key).hash())
}

fn answer<B>(req: ServiceRequest, resp: HttpResponse) -> ServiceResponse<EitherBody<B>> {
    let (req, _) = req.into_parts();
    ServiceResponse::new(req, resp).map_into_right_body()
}

fn too_large() -> HttpResponse {
    let message = format!("the body must be at most {MAX_BODY_BYTES} bytes");
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        &message,
        None,
    )
}

fn timed_out(limit: Duration) -> HttpResponse {
    let message = format!(
        "the request body did not arrive within {} seconds",
        limit.as_secs_f64()
    );
    let mut resp = error_response(
        StatusCode::REQUEST_TIMEOUT,
        "REQUEST_TIMEOUT",
        &message,
        None,
    );
    resp.head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    resp
}

fn storage_cap(rate: Option<ByteRate>, retry_after: u64) -> HttpResponse {
    let cap = rate.map_or_else(|| "its cap".to_owned(), |r| r.to_string());
    let message = format!(
        "storage cap reached: this agent's requests may store at most {cap}; \
         try again in {retry_after} seconds"
    );
    let mut resp = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        &message,
        None,
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}
