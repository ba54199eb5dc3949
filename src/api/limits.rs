//! The rate limits' HTTP side: which client a request comes from, the limits applied around an
//! authentication, and the `X-RateLimit-*` headers. The limiters themselves are in
//! [`crate::rate_limit`] and know nothing of HTTP.

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest};

use crate::clock::Timestamp;
use crate::error::Error;
use crate::rate_limit::{AuthAttempt, ClientKey, Denied, Limits, Quota, RateLimiter, client_ip};

/// The client's address as a limiter key: IPv4 as is, IPv6 by its /64 (one customer's network),
/// IPv4-mapped IPv6 as IPv4. Behind a proxy (`trust_forwarded_for`, `trusted_proxies`) the
/// address comes from `X-Forwarded-For` as `rate_limit::forwarded` explains: the entry the proxy itself
/// appended, never one the client wrote.
pub(crate) fn client_key(req: &HttpRequest, limits: &Limits) -> ClientKey {
    let lines = req
        .headers()
        .get_all("x-forwarded-for")
        .map(actix_web::http::header::HeaderValue::as_bytes);
    let ip = client_ip(
        req.peer_addr().map(|a| a.ip()),
        lines,
        limits.trust_forwarded_for,
        &limits.trusted_proxies,
    );
    match ip {
        Some(ip) => ClientKey::from(ip),
        None => ClientKey::Unknown,
    }
}

/// [`RateLimiter::before_lookup`] for `req`, its quota or refusal recorded for the headers.
pub(crate) fn before_lookup(
    limiter: &RateLimiter,
    req: &HttpRequest,
    key_hash: &str,
    agent: bool,
    now: Timestamp,
) -> Result<AuthAttempt, Error> {
    let client = client_key(req, &limiter.limits);
    let attempt = limiter
        .before_lookup(client, key_hash, agent, now)
        .map_err(|denied| refused(req, denied))?;
    // Recorded now, so the answer has it even if the lookup fails.
    if let Some(q) = attempt.quota {
        record(req, q);
    }
    Ok(attempt)
}

/// [`RateLimiter::after_lookup`] for `req`, its quota or refusal recorded for the headers.
pub(crate) fn after_lookup(
    limiter: &RateLimiter,
    req: &HttpRequest,
    attempt: AuthAttempt,
    key_hash: &str,
    agent: bool,
    ok: bool,
    now: Timestamp,
) -> Result<(), Error> {
    match limiter.after_lookup(attempt, key_hash, agent, ok, now) {
        Ok(quota) => {
            if let Some(q) = quota {
                record(req, q);
            }
            Ok(())
        }
        Err(denied) => Err(refused(req, denied)),
    }
}

fn refused(req: &HttpRequest, denied: Denied) -> Error {
    record(req, denied.quota);
    denied.into()
}

// Checked once, at compile time (`from_static` checks its text on every call).
const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Adds `X-RateLimit-Limit/Remaining/Reset` to a response whose request recorded a [`Quota`]
/// in its extensions (the agent extractor and the login page do).
pub(crate) fn add_quota_headers<B>(res: &mut ServiceResponse<B>) {
    let quota = res.request().extensions().get::<Quota>().copied();
    if let Some(q) = quota {
        let headers = res.headers_mut();
        for (name, value) in [
            (LIMIT, u64::from(q.limit)),
            (REMAINING, u64::from(q.remaining)),
            (RESET, q.reset_secs),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

/// Records a quota for [`add_quota_headers`].
pub(crate) fn record(req: &HttpRequest, quota: Quota) {
    req.extensions_mut().insert(quota);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_key_trusts_forwarded_for_only_when_told() {
        let req = actix_web::test::TestRequest::default()
            .peer_addr("127.0.0.1:5000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "6.6.6.6, 203.0.113.7"))
            .to_http_request();
        let proxy = ClientKey::V4([127, 0, 0, 1]);
        let mut limits = Limits::default();
        assert_eq!(client_key(&req, &limits), proxy);
        limits.trust_forwarded_for = true;
        assert_eq!(client_key(&req, &limits), ClientKey::V4([203, 0, 113, 7]));
        // A second line, as a proxy that keeps the client's own line adds it: its entry counts.
        let two = actix_web::test::TestRequest::default()
            .peer_addr("127.0.0.1:5000".parse().unwrap())
            .append_header(("X-Forwarded-For", "6.6.6.6"))
            .append_header(("X-Forwarded-For", "198.51.100.4"))
            .to_http_request();
        assert_eq!(client_key(&two, &limits), ClientKey::V4([198, 51, 100, 4]));
    }
}
