//! The response envelope: `{"success":true,"data":…[,"meta":…]}` or
//! `{"success":false,"error":{"code","message","details"}}`, and the mapping of
//! [`Error`](crate::error::Error) to HTTP status codes. The types here are also the envelope's
//! OpenAPI schemas, so the document describes exactly what is sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::schema;
use crate::error::Error;

/// A success: `data` is the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Success<T> {
    /// Always `true`.
    #[schema(schema_with = schema::always_true)]
    pub success: bool,
    pub data: T,
}

/// A success carrying one page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// Always `true`.
    #[schema(schema_with = schema::always_true)]
    pub success: bool,
    pub data: Vec<T>,
    pub meta: PageMeta,
}

/// Where a page sits in its list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    /// This page, from 1.
    pub page: i64,
    /// Items per page.
    pub limit: i64,
    /// Items in the whole list.
    pub total: i64,
    /// Pages in the whole list (0 when it is empty).
    pub total_pages: i64,
}

/// A failure: no `data`, only `error`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Failure<'a> {
    /// Always `false`.
    #[schema(schema_with = schema::always_false)]
    pub success: bool,
    pub error: ErrorBody<'a>,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    /// A stable machine code.
    #[schema(schema_with = schema::error_code)]
    pub code: &'a str,
    /// A sentence for a human.
    pub message: &'a str,
    /// For `VALIDATION_ERROR`: each bad field (or `body`, `query`) with its problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HashMap<String, String>>)]
    pub details: Option<&'a Map<String, Value>>,
}

/// A success envelope with `status`.
pub fn ok<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    HttpResponse::build(status).json(Success {
        success: true,
        data,
    })
}

/// A success envelope for one page of a list.
pub fn page<T: Serialize>(items: Vec<T>, page: i64, limit: i64, total: i64) -> HttpResponse {
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
pub fn error_response(
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
