//! Answers in the response envelope ([`crate::wire::envelope`]), and the mapping of
//! [`Error`](crate::error::Error) to HTTP status codes.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;
pub(crate) use crate::wire::envelope::{ErrorBody, Failure, Page, PageMeta, Success};

/// A success envelope with `status`.
pub(crate) fn ok<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    json(
        status,
        &Success {
            success: true,
            data,
        },
    )
}

/// A success envelope for one page of a list.
pub(crate) fn page<T: Serialize>(items: Vec<T>, page: i64, limit: i64, total: i64) -> HttpResponse {
    let total_pages = (total + limit - 1) / limit;
    json(
        StatusCode::OK,
        &Page {
            success: true,
            data: items,
            meta: PageMeta {
                page,
                limit,
                total,
                total_pages,
            },
        },
    )
}

/// An error envelope.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<&Map<String, Value>>,
) -> HttpResponse {
    json(
        status,
        &Failure {
            success: false,
            error: ErrorBody {
                code,
                message,
                details,
            },
        },
    )
}

/// `value` as the JSON body of an answer with `status`, as `HttpResponseBuilder::json` would
/// write it, but into one buffer of [`BODY_CAPACITY`]: most answers fit, where growing from
/// serde_json's 128 bytes takes three allocations and two copies.
fn json<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    let mut body = Vec::with_capacity(BODY_CAPACITY);
    let written = serde_json::to_writer(&mut body, value);
    answer(status, written.map(|()| body))
}

/// [`json`]'s part that does not depend on the type written (compiled once, not once per type).
fn answer(status: StatusCode, body: serde_json::Result<Vec<u8>>) -> HttpResponse {
    match body {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(JSON)))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot write an answer as JSON");
            HttpResponse::InternalServerError()
                .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(JSON)))
                .body(UNWRITABLE)
        }
    }
}

/// The buffer a JSON answer is written into first.
const BODY_CAPACITY: usize = 1024;
/// The answers' `Content-Type`, as `HttpResponseBuilder::json` sets it.
const JSON: &str = "application/json";
/// The answer when an answer cannot be written (a map with keys that are not strings, say).
const UNWRITABLE: &str =
    r#"{"success":false,"error":{"code":"INTERNAL_ERROR","message":"internal error"}}"#;

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::Validation { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RateLimited { .. } | Error::TooManyPending { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (message, details) = match self {
            Error::Validation { message, details } => (message.clone(), Some(details)),
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ("internal error".to_owned(), None)
            }
            other => (other.to_string(), None),
        };
        let mut resp = error_response(self.status_code(), self.code(), &message, details);
        match self {
            Error::RateLimited { retry_after_secs }
            | Error::TooManyPending {
                retry_after_secs, ..
            } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Error::Unauthorized(_) => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(resp: HttpResponse) -> Vec<u8> {
        resp.into_body()
            .try_into_bytes()
            .unwrap_or_else(|_| panic!("a body in one piece"))
            .to_vec()
    }

    #[test]
    fn answers_are_written_as_serde_json_writes_them_whatever_their_size() {
        for n in [0, 10, BODY_CAPACITY, 5 * BODY_CAPACITY] {
            let data = "é\"".repeat(n);
            let resp = ok(StatusCode::CREATED, &data);
            assert_eq!(resp.status(), StatusCode::CREATED);
            assert_eq!(resp.headers().get(header::CONTENT_TYPE).unwrap(), JSON);
            let expected = serde_json::to_vec(&Success {
                success: true,
                data: &data,
            })
            .unwrap();
            assert_eq!(body_of(resp), expected);
        }
    }

    #[test]
    fn an_answer_that_cannot_be_written_is_a_500_in_the_envelope() {
        let keys_not_strings = std::collections::BTreeMap::from([((1, 2), 3)]);
        let resp = ok(StatusCode::OK, keys_not_strings);
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers().get(header::CONTENT_TYPE).unwrap(), JSON);
        let body: Value = serde_json::from_slice(&body_of(resp)).unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
    }
}
