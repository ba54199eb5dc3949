//! Slow and greedy clients. Every request body is read here, before any handler, within the body
//! timeout (from the end of the headers, give or take one scheduling round; actix's own
//! `client_request_timeout` bounds the headers) and up to [`MAX_BODY_BYTES`]: a client that
//! trickles its body is answered 408 and its connection closed, so one agent key cannot hold
//! connections open by sending slowly.
//!
//! The bodies of new permission requests (`POST /api/v1/permissions/request`) also count against
//! the agent key's storage budget ([`ByteRate`]): a request that was stored (answered 2xx) keeps
//! its body's bytes charged, any other answer gives them back. Once the budget is spent, the agent
//! gets 429 with `Retry-After` and a message that says it is the storage cap. The body is an upper
//! bound of what is kept of it (scope, context, actionDetails, action, resource) and cannot be
//! made to look smaller than it is.

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::task::{Poll, ready};
use std::time::Duration;

use actix_web::body::{BodySize, BodyStream, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
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
    let mut stream = BodyStream::new(req.take_payload());
    let read = in_time(read_whole(&mut stream, declared), limits.body_timeout).await;
    let body = match read {
        None => {
            // Not the path: a login link's secret is in it.
            tracing::info!(method = %req.method(), "request body too slow, connection closed");
            let resp = unread(timed_out(limits.body_timeout), stream);
            return Ok(answer(req, resp));
        }
        Some(Err(_over)) => return Ok(answer(req, unread(too_large(), stream))),
        Some(Ok(Err(e))) => {
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
        Some(Ok(Ok(body))) => body,
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

/// What `read` gives, or `None` once `timeout` has passed while it waited.
///
/// The timer is armed only when the read still waits on its second poll. actix polls a handler
/// once before it hands over the body that came with the headers and again right after, so a body
/// that came whole is read without registering a timer with the runtime's timer wheel and
/// cancelling it again. The first wait wakes the task itself, so that the second poll
/// comes even if the client never sends another byte; the timeout then counts from there, one
/// scheduling round after the headers.
async fn in_time<F: Future>(read: F, timeout: Duration) -> Option<F::Output> {
    let mut read = pin!(read);
    // Boxed: a timer is large, and rarely needed.
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut waited = false;
    poll_fn(|cx| {
        if let Poll::Ready(out) = read.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if !waited {
            waited = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(None)
    })
    .await
}

/// The body was longer than [`MAX_BODY_BYTES`].
#[derive(Debug, PartialEq)]
pub(super) struct TooLarge;

/// Reads `body` to its end, refusing it once it passes [`MAX_BODY_BYTES`]. A body that arrives
/// in one piece (a small one usually does) is kept as that piece, without a copy; one in several
/// pieces is gathered into one buffer of its declared length.
async fn read_whole<B: MessageBody + Unpin>(
    body: &mut B,
    declared: Option<u64>,
) -> Result<Result<Bytes, B::Error>, TooLarge> {
    let mut whole = Gathered::default();
    poll_fn(|cx| {
        loop {
            match ready!(Pin::new(&mut *body).poll_next(cx)) {
                None => return Poll::Ready(Ok(Ok(()))),
                Some(Err(e)) => return Poll::Ready(Ok(Err(e))),
                Some(Ok(piece)) => {
                    if let Err(e) = whole.push(piece, declared) {
                        return Poll::Ready(Err(e));
                    }
                }
            }
        }
    })
    .await
    .map(|read| read.map(|()| whole.finish()))
}

/// The pieces of a body read so far: the first as it came, later ones appended to a copy.
#[derive(Default)]
pub(super) struct Gathered {
    first: Bytes,
    joined: BytesMut,
}

impl Gathered {
    fn len(&self) -> usize {
        self.first.len() + self.joined.len()
    }

    pub(super) fn push(&mut self, piece: Bytes, declared: Option<u64>) -> Result<(), TooLarge> {
        if self.len() + piece.len() > MAX_BODY_BYTES {
            return Err(TooLarge);
        }
        if self.len() == 0 {
            self.first = piece;
            return Ok(());
        }
        if self.joined.is_empty() {
            // `declared` is at most MAX_BODY_BYTES here: a longer one was refused before reading.
            let size = declared.map_or(0, |n| usize::try_from(n).unwrap_or(MAX_BODY_BYTES));
            self.joined
                .reserve(size.clamp(self.len() + piece.len(), MAX_BODY_BYTES));
            self.joined
                .extend_from_slice(&std::mem::take(&mut self.first));
        }
        self.joined.extend_from_slice(&piece);
        Ok(())
    }

    pub(super) fn finish(self) -> Bytes {
        if self.joined.is_empty() {
            self.first
        } else {
            self.joined.freeze()
        }
    }
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

/// `resp`, holding the stream of the request body it answers before its end until it is sent.
/// actix then closes the connection after the answer. Had the stream been dropped, actix would
/// read a chunked body to its end to keep the connection, waiting for a stalled client forever.
fn unread(resp: HttpResponse, body: BodyStream<Payload>) -> HttpResponse {
    resp.map_body(|_, answer| Unread {
        answer,
        _body: body,
    })
    .map_into_boxed_body()
}

/// An answer, and the request body left unread (see [`unread`]).
struct Unread {
    answer: BoxBody,
    _body: BodyStream<Payload>,
}

impl MessageBody for Unread {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.answer.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().answer).poll_next(cx)
    }
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

    fn gather(pieces: &[&[u8]], declared: Option<u64>) -> Result<Bytes, TooLarge> {
        let mut whole = Gathered::default();
        for p in pieces {
            whole.push(Bytes::copy_from_slice(p), declared)?;
        }
        Ok(whole.finish())
    }

    #[test]
    fn a_body_is_its_pieces_in_order_and_one_piece_is_kept_as_it_came() {
        assert_eq!(gather(&[], None).unwrap(), Bytes::new());
        assert_eq!(gather(&[b"", b"ab", b"", b"c"], Some(3)).unwrap(), "abc");
        // A declared length smaller or larger than the body changes nothing read.
        for declared in [None, Some(1), Some(4), Some(MAX_BODY_BYTES as u64)] {
            assert_eq!(
                gather(&[b"{\"a\"", b":", b"1}"], declared).unwrap(),
                "{\"a\":1}"
            );
        }
        let one = Bytes::from_static(b"{\"token\":\"otp_x\"}");
        let mut whole = Gathered::default();
        whole.push(one.clone(), Some(17)).unwrap();
        assert_eq!(whole.finish().as_ptr(), one.as_ptr(), "not copied");
    }

    #[test]
    fn a_body_past_the_limit_is_refused_in_one_piece_or_many() {
        let full = vec![b'x'; MAX_BODY_BYTES];
        assert_eq!(gather(&[&full], None).unwrap().len(), MAX_BODY_BYTES);
        assert_eq!(gather(&[&full, b"y"], None), Err(TooLarge));
        let (a, b) = full.split_at(100);
        assert_eq!(gather(&[a, b], None).unwrap().len(), MAX_BODY_BYTES);
        assert_eq!(gather(&[a, b, b""], None).unwrap().len(), MAX_BODY_BYTES);
        assert_eq!(gather(&[a, b, b"y"], None), Err(TooLarge));
        assert_eq!(
            gather(&[&full[..MAX_BODY_BYTES - 1], b"yz"], None),
            Err(TooLarge)
        );
    }

    /// A read that never finishes, and never wakes its task, still ends at the timeout: the
    /// first wait wakes the task itself, so the timer gets armed.
    #[tokio::test]
    async fn a_read_that_waits_forever_ends_at_the_timeout() {
        let started = std::time::Instant::now();
        let never = std::future::pending::<()>();
        let read = in_time(never, Duration::from_millis(100));
        let out = tokio::time::timeout(Duration::from_secs(5), read).await;
        assert_eq!(out, Ok(None), "timed out, not hung");
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    /// A read done at once, or after its task is woken, gives its result; one done just after
    /// the timer was armed still does.
    #[tokio::test]
    async fn a_read_in_time_gives_its_result() {
        assert_eq!(in_time(async { 7 }, Duration::from_secs(5)).await, Some(7));
        for waits in [1, 2, 3] {
            let mut left = waits;
            let read = poll_fn(|cx| {
                if left == 0 {
                    return Poll::Ready(waits);
                }
                left -= 1;
                cx.waker().wake_by_ref();
                Poll::Pending
            });
            assert_eq!(in_time(read, Duration::from_secs(5)).await, Some(waits));
        }
        let slow = tokio::time::sleep(Duration::from_millis(50));
        assert_eq!(in_time(slow, Duration::from_secs(5)).await, Some(()));
        let too_slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(in_time(too_slow, Duration::from_millis(50)).await, None);
    }
}
