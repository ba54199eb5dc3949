//! The wire contract: every JSON body the API reads and every answer it sends, with their OpenAPI
//! schemas. It sits below the service and the channels, and it is built from domain values (a
//! stored row never reaches an answer by being serialized whole). The bounds its schemas state
//! are the constants the input rules use.

pub(crate) mod admin;
pub(crate) mod envelope;
pub(crate) mod health;
pub(crate) mod permissions;
pub(crate) mod schema;

/// Largest request body, in bytes (the same bound for every route).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// Lists: pages are numbered from 1 to this.
pub(crate) const PAGE_MAX: i64 = 1_000_000;
/// Lists: at most this many items per page, this many when not asked.
pub(crate) const LIMIT_MAX: i64 = 100;
pub(crate) const LIMIT_DEFAULT: i64 = 20;
/// Longest `?wait=` an agent may ask for, in seconds.
pub(crate) const MAX_WAIT_SECS: u64 = 60;
