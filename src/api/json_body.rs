//! The JSON body of an API call: one JSON object ([`Object`]) parsed into `T`, from the body
//! that the body guard (`api::bodies`) has already read whole, taken as it is.
//!
//! It accepts what actix's `web::Json` accepted, with the same answers: a content type whose
//! subtype is `json` or ends in `+json`, else 400 naming `Content-Type`; a body that does not
//! parse, 400 naming `body` with serde's message; a number that would be rounded, 400 naming
//! `body` (`crate::number`). actix's extractor copied every body into a new 8 KiB buffer and
//! parsed the content type with `mime` on every call; here the usual `application/json` is
//! recognised by comparing it, and a body that came in one piece is parsed where it lies.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::body::{BodyStream, MessageBody};
use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;

use super::bodies::Gathered;
use super::parse_object;
use crate::error::Error;
use crate::wire::MAX_BODY_BYTES;

/// A request body that must be one JSON object, parsed into `T`.
pub(super) struct JsonObject<T>(pub T);

impl<T: DeserializeOwned> FromRequest for JsonObject<T> {
    type Error = Error;
    type Future = Reading<T>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Reading<T> {
        Reading {
            json: is_json(req),
            body: BodyStream::new(payload.take()),
            whole: Gathered::default(),
            parsed: PhantomData,
        }
    }
}

/// Whether the request says its body is JSON, by actix's rule: a parsable media type whose
/// subtype is `json` or has the suffix `+json` (`application/json; charset=utf-8`,
/// `application/problem+json`, `text/json`).
fn is_json(req: &HttpRequest) -> bool {
    let plain = req
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"));
    plain
        || matches!(req.mime_type(), Ok(Some(m))
            if m.subtype() == actix_web::mime::JSON || m.suffix() == Some(actix_web::mime::JSON))
}

/// Reads the body to its end, then parses it.
pub(super) struct Reading<T> {
    json: bool,
    body: BodyStream<Payload>,
    whole: Gathered,
    parsed: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Future for Reading<T> {
    type Output = Result<JsonObject<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !this.json {
            return Poll::Ready(Err(Error::invalid(
                "Content-Type",
                "must be application/json",
            )));
        }
        while let Some(piece) = ready!(Pin::new(&mut this.body).poll_next(cx)) {
            let piece = piece.map_err(|e| {
                Error::invalid("body", format!("the request body could not be read: {e}"))
            })?;
            if this.whole.push(piece, None).is_err() {
                return Poll::Ready(Err(Error::PayloadTooLarge(format!(
                    "the body must be at most {MAX_BODY_BYTES} bytes"
                ))));
            }
        }
        let body = std::mem::take(&mut this.whole).finish();
        Poll::Ready(parse_object(&body).map(JsonObject))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Token {
        token: String,
    }

    /// A POST with this content type and body, as a handler's extractor gets it.
    fn post(content_type: Option<&str>, body: &'static [u8]) -> (HttpRequest, Payload) {
        let mut req = TestRequest::post();
        if let Some(ct) = content_type {
            req = req.insert_header((CONTENT_TYPE, ct));
        }
        req.set_payload(body).to_http_parts()
    }

    async fn read(content_type: Option<&str>, body: &'static [u8]) -> Result<Token, Error> {
        let (req, mut payload) = post(content_type, body);
        JsonObject::<Token>::from_request(&req, &mut payload)
            .await
            .map(|b| b.0)
    }

    /// Whether actix's own `web::Json` reads the body with this content type.
    async fn actix_reads(content_type: Option<&str>, body: &'static [u8]) -> bool {
        let (req, mut payload) = post(content_type, body);
        actix_web::web::Json::<Token>::from_request(&req, &mut payload)
            .await
            .is_ok()
    }

    fn field(e: &Error) -> String {
        match e {
            Error::Validation { details, .. } => details.keys().cloned().collect(),
            other => format!("{other:?}"),
        }
    }

    #[actix_web::test]
    async fn json_content_types_are_read_as_actix_read_them() {
        let body = br#"{"token":"otp_x"}"#;
        let cases = [
            (Some("application/json"), true),
            (Some("Application/JSON"), true),
            (Some("application/json; charset=utf-8"), true),
            (Some("application/json;"), true),
            (Some("application/problem+json"), true),
            (Some("text/json"), true),
            (None, false),
            (Some("text/plain"), false),
            (Some("application/jsonx"), false),
            // mime reads the subtype before a `+`, so this one is JSON to actix too.
            (Some("application/json+x"), true),
            (Some("application/ json"), false),
            (Some("json"), false),
            (Some(""), false),
        ];
        for (ct, readable) in cases {
            assert_eq!(actix_reads(ct, body).await, readable, "actix, {ct:?}");
            match read(ct, body).await {
                Ok(t) => {
                    assert!(readable, "{ct:?} was read");
                    assert_eq!(t.token, "otp_x");
                }
                Err(e) => {
                    assert!(!readable, "{ct:?} was refused: {e}");
                    assert_eq!(field(&e), "Content-Type", "{ct:?}");
                }
            }
        }
    }

    #[actix_web::test]
    async fn a_body_that_is_not_one_object_of_the_type_is_refused() {
        for body in [
            &b""[..],
            b"[\"otp_x\"]",
            b"{\"token\":1}",
            b"{\"token\":\"otp_x\"",
            b"{\"token\":\"otp_x\",\"extra\":1} x",
        ] {
            let e = read(Some("application/json"), body).await.unwrap_err();
            assert_eq!(field(&e), "body", "{}", String::from_utf8_lossy(body));
        }
    }
}
