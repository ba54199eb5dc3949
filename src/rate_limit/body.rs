//! Slow and greedy clients. Every request body is read here, before any handler, within the body
//! timeout (from the end of the headers; actix's own `client_request_timeout` bounds the headers)
//! and up to [`MAX_BODY_BYTES`]: a client that trickles its body is answered 408 and its
//! connection closed, so one agent key cannot hold connections open by sending slowly.
//!
//! The bodies of new permission requests (`POST /api/v1/permissions/request`) also count against
//! the agent key's storage budget ([`ByteRate`], e.g. 8 MiB per hour): a request that was stored
//! (answered 2xx) keeps its body's bytes charged, any other answer gives them back. Once the budget
//! is spent, the agent gets 429 with `Retry-After` and a message that says it is the storage cap.
//! The body is an upper bound of what is kept of it (scope, context, actionDetails, action,
//! resource) and cannot be made to look smaller than it is. Budgets live in memory (a restart
//! fills them); at most 4096 keys are tracked, spent-out ones first swept, and a new key that
//! still does not fit goes uncounted rather than refused (as the rate limiters do).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::body::{BodyStream, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};

use crate::api::envelope::error_response;
use crate::clock::Timestamp;
use crate::secret::Secret;
use crate::service::Service;
use crate::wire::MAX_BODY_BYTES;

/// The route whose bodies are stored, and so count against the storage cap.
const STORED_ROUTE: &str = "/api/v1/permissions/request";
/// Agent keys tracked before spent-out budgets are swept.
const CAPACITY: usize = 4096;

/// `bytes` per `period`: a budget of `bytes`, refilled evenly over `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRate {
    pub bytes: u64,
    pub period: Duration,
}

impl ByteRate {
    /// Parses `8MiB/h`, `512KiB/min`, `1GiB/day`, `100000B/s`; `off` means no cap.
    pub fn parse(text: &str) -> Result<Option<ByteRate>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text == "0" {
            return Ok(None);
        }
        let err = || format!("{text:?} is not a size per time like 8MiB/h, 512KiB/min or off");
        let (size, unit) = text.split_once('/').ok_or_else(err)?;
        let size = size.trim();
        let digits = size
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(size.len());
        let n: u64 = size[..digits].parse().map_err(|_| err())?;
        let scale: u64 = match size[digits..].trim() {
            "" | "B" => 1,
            "KiB" | "K" | "k" => 1 << 10,
            "MiB" | "M" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            _ => return Err(err()),
        };
        let period = match unit.trim() {
            "s" => 1,
            "min" | "m" => 60,
            "h" => 3600,
            "d" | "day" => 86_400,
            _ => return Err(err()),
        };
        let bytes = n.checked_mul(scale).filter(|b| *b > 0).ok_or_else(err)?;
        Ok(Some(ByteRate {
            bytes,
            period: Duration::from_secs(period),
        }))
    }
}

impl std::fmt::Display for ByteRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.bytes;
        let size = match b {
            _ if b.is_multiple_of(1 << 30) => format!("{} GiB", b >> 30),
            _ if b.is_multiple_of(1 << 20) => format!("{} MiB", b >> 20),
            _ if b.is_multiple_of(1 << 10) => format!("{} KiB", b >> 10),
            _ => format!("{b} bytes"),
        };
        let period = match self.period.as_secs() {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            86_400 => "day",
            _ => "period",
        };
        write!(f, "{size} per {period}")
    }
}

/// Stored bytes per agent key: a GCRA over bytes. Each entry is when the budget is whole again,
/// in µs × `bytes` (so a byte costs exactly `period` µs and nothing is rounded away).
pub struct ByteBudget {
    rate: Option<ByteRate>,
    full_at: Mutex<HashMap<String, i128>>,
}

impl ByteBudget {
    pub fn new(rate: Option<ByteRate>) -> ByteBudget {
        ByteBudget {
            rate,
            full_at: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `bytes` from `key`'s budget, or says in how many seconds to come back.
    pub fn take(&self, key: &str, bytes: usize, now: Timestamp) -> Result<(), u64> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let cap = i128::from(rate.bytes);
        let period = i128::try_from(rate.period.as_micros()).unwrap_or(i128::MAX / 4);
        let now = i128::from(now.0) * 1000 * cap;
        let cost = i128::try_from(bytes).unwrap_or(i128::MAX / 4) * period;
        let mut map = self
            .full_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CAPACITY && !map.contains_key(key) {
            map.retain(|_, full| *full > now);
        }
        let full = map.get(key).copied().unwrap_or(now).max(now);
        let after = full + cost;
        if after - now > period * cap {
            // Whole seconds until enough has refilled for this body, at least 1.
            let wait_us = (after - now - period * cap + cap - 1) / cap;
            return Err(u64::try_from(wait_us / 1_000_000 + 1).unwrap_or(u64::MAX));
        }
        if map.len() < CAPACITY || map.contains_key(key) {
            map.insert(key.to_owned(), after);
        }
        Ok(())
    }

    /// Gives back `bytes` taken by [`ByteBudget::take`] (the request was not stored).
    pub fn give_back(&self, key: &str, bytes: usize) {
        let Some(rate) = self.rate else { return };
        let period = i128::try_from(rate.period.as_micros()).unwrap_or(i128::MAX / 4);
        let cost = i128::try_from(bytes).unwrap_or(i128::MAX / 4) * period;
        let mut map = self
            .full_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(full) = map.get_mut(key) {
            *full -= cost;
        }
    }
}

/// Middleware: reads each request body within the body timeout and size limit, and charges the
/// bodies of new permission requests to the agent key's storage budget (see the module doc).
pub async fn guard_bodies(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_rates_parse_and_print() {
        let r = ByteRate::parse("8MiB/h").unwrap().unwrap();
        assert_eq!(r.bytes, 8 << 20);
        assert_eq!(r.period, Duration::from_secs(3600));
        assert_eq!(r.to_string(), "8 MiB per hour");
        assert_eq!(
            ByteRate::parse("512KiB/min").unwrap().unwrap().to_string(),
            "512 KiB per minute"
        );
        assert_eq!(
            ByteRate::parse("1000/d").unwrap().unwrap().to_string(),
            "1000 bytes per day"
        );
        assert_eq!(ByteRate::parse("off").unwrap(), None);
        for bad in ["8MB/h", "lots", "8MiB/week", "/h", "0MiB/h"] {
            assert!(ByteRate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_budget_is_spent_refills_and_gives_back() {
        let rate = ByteRate::parse("1000B/s").unwrap();
        let b = ByteBudget::new(rate);
        let t0 = Timestamp(1_000_000);
        assert!(b.take("k", 600, t0).is_ok());
        assert!(b.take("k", 400, t0).is_ok());
        assert_eq!(b.take("k", 1, t0), Err(1), "spent: come back in a second");
        assert!(b.take("other", 1000, t0).is_ok(), "per key");
        b.give_back("k", 400);
        assert!(b.take("k", 400, t0).is_ok(), "given back");
        assert!(
            b.take("k", 500, Timestamp(t0.0 + 500)).is_ok(),
            "half refilled"
        );
        assert!(
            b.take("k", 2000, Timestamp(t0.0 + 10_000)).is_err(),
            "over the cap"
        );
        assert!(ByteBudget::new(None).take("k", usize::MAX, t0).is_ok());
    }
}
