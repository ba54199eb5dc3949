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
    HttpResponse::build(status).json(Success {
        success: true,
        data,
    })
}

/// A success envelope for one page of a list.
pub(crate) fn page<T: Serialize>(items: Vec<T>, page: i64, limit: i64, total: i64) -> HttpResponse {
    let total_pages = (total + limit - 1) / limit;
    HttpResponse::Ok().json(Page {
        success: true,
        data: items,
        meta: PageMeta {
            page,
            limit,
            total,
            total_pages,
        },
    })
}

/// An error envelope.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<&Map<String, Value>>,
) -> HttpResponse {
    HttpResponse::build(status).json(Failure {
        success: false,
        error: ErrorBody {
            code,
            message,
            details,
        },
    })
}

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
