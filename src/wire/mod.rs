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
