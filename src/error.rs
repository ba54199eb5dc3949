//! The one error type of the service. Each variant has a stable machine code; the API maps it to
//! HTTP in `api::error`, and the message shown to a client is kept apart from detail for the log.

use serde_json::{Map, Value};

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is wrong; `details` names each bad field.
    #[error("{message}")]
    Validation {
        message: String,
        details: Map<String, Value>,
    },
    /// Missing, unknown or revoked credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing, or not the caller's to see.
    #[error("{0}")]
    NotFound(String),
    /// The thing is no longer in a state that allows this (another writer won).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many requests; try again after this many seconds.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// The agent already has as many requests waiting for a human as it may; one frees up when
    /// a request is decided or expires (the first in `retry_after_secs` at the latest).
    #[error(
        "this agent already has {limit} requests waiting for a human (the most allowed); \
         wait until one is decided or expires"
    )]
    TooManyPending { limit: u32, retry_after_secs: u64 },
    /// Anything else. The string is for the log only, never for the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A validation error naming one field.
    pub fn invalid(field: &str, problem: impl Into<String>) -> Error {
        let problem = problem.into();
        let mut details = Map::new();
        details.insert(field.to_owned(), Value::String(problem.clone()));
        Error::Validation {
            message: format!("{field}: {problem}"),
            details,
        }
    }

    /// A validation error naming several fields; `problems` must not be empty.
    pub fn invalid_fields(problems: Vec<(String, String)>) -> Error {
        let message = problems
            .iter()
            .map(|(f, p)| format!("{f}: {p}"))
            .collect::<Vec<_>>()
            .join("; ");
        let details = problems
            .into_iter()
            .map(|(f, p)| (f, Value::String(p)))
            .collect();
        Error::Validation { message, details }
    }

    /// The stable machine code of this error, as sent in the API envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { .. } => "VALIDATION_ERROR",
            Error::Unauthorized(_) => "UNAUTHORIZED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Conflict(_) => "CONFLICT",
            Error::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Error::RateLimited { .. } | Error::TooManyPending { .. } => "RATE_LIMITED",
            Error::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Error {
        Error::Internal(e.to_string())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Internal(format!("sqlite: {e}"))
    }
}

impl From<crate::secret::RngError> for Error {
    fn from(e: crate::secret::RngError) -> Error {
        Error::Internal(e.to_string())
    }
}

/// Every code the API can send: one per variant, plus `METHOD_NOT_ALLOWED` from the router.
pub(crate) const CODES: &[&str] = &[
    "VALIDATION_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "RATE_LIMITED",
    "INTERNAL_ERROR",
];

/// Shorthand used across the crate.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed() {
        let all = [
            Error::invalid("f", "p"),
            Error::Unauthorized(String::new()),
            Error::Forbidden(String::new()),
            Error::NotFound(String::new()),
            Error::Conflict(String::new()),
            Error::PayloadTooLarge(String::new()),
            Error::RateLimited {
                retry_after_secs: 1,
            },
            Error::Internal(String::new()),
        ];
        for e in all {
            assert!(CODES.contains(&e.code()), "{} is missing", e.code());
        }
    }
}
