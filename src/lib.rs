//! agent-otp: a self-hosted approval service for AI agents.
//!
//! An agent asks for permission to do one sensitive thing; the YAML policy decides at once or asks a
//! human; an approved agent gets a short-lived, scoped, single-use token; every step is audited.
//! `src/main.rs` is a thin command line over this library, and the integration tests drive the same
//! [`app::start`] that `agent-otp serve` runs.
//!
//! The public interface is what the binary and an embedder need: [`cli`], [`app`], [`config`],
//! [`clock`], and the agent-side [`agent_client`]. The integration tests reach further through
//! the hidden [`testing`] module; everything else is private to the crate.

/// The agent side's HTTP client for the API (CLI client commands, MCP server).
pub mod agent_client;
/// The JSON API under `/api/v1`, `/metrics`, and their HTTP glue: auth, limits, body bounds.
pub(crate) mod api;
/// `start(config) -> AppHandle`: wires the store, policy, HTTP server and background tasks.
pub mod app;
/// Append-only, hash-chained audit events.
pub(crate) mod audit;
/// In-process fan-out of "request changed" events.
pub(crate) mod changes;
/// The command line: argument types and the operator commands.
pub mod cli;
/// Injected time, so TTL logic is testable without sleeping.
pub mod clock;
/// Settings layered defaults → env → flags, with validation.
pub mod config;
/// Permission states, ids and input rules: pure functions.
pub(crate) mod domain;
/// The one error type, with a stable machine code per kind.
pub(crate) mod error;
/// The stdio MCP server exposing the agent tools.
pub(crate) mod mcp;
/// Prometheus metrics: counters recorded where things happen, one registry (served by `api`).
pub(crate) mod metrics;
/// JSON numbers held exactly: no number that would be rounded is accepted, and a whole number
/// and a float compare by value.
pub(crate) mod number;
/// YAML policy: parsing, validation, evaluation, explain.
pub(crate) mod policy;
/// In-memory rate limits: per agent key, per client address, per Telegram user.
pub(crate) mod rate_limit;
/// Scope narrowing and enforcement.
pub(crate) mod scope;
/// Random secrets, hashing and constant-time comparison.
pub(crate) mod secret;
/// The one way in: the operations every channel (API, web, Telegram, command line) shares.
pub(crate) mod service;
/// How a request reads to the person deciding, the same in every channel.
pub(crate) mod shown;
/// SQLite: migrations, pool, and all SQL.
pub(crate) mod store;
/// Telegram approvals: linking approvers, Approve/Deny buttons, messages that follow the decision.
pub(crate) mod telegram;
/// Hidden characters in agent text: refused in identifiers, shown as markers elsewhere.
pub(crate) mod text;
/// The askama pages for humans: login, pending list, approval page, history, agents, audit.
pub(crate) mod web;
/// The wire contract: JSON bodies and answers with their OpenAPI schemas.
pub(crate) mod wire;

/// What the integration tests reach beyond the public interface, to set up or inspect what they
/// test. Not part of the library's interface: it may change with any release.
#[doc(hidden)]
pub mod testing {
    pub mod api {
        pub use crate::api::routes;
    }
    pub mod audit {
        pub use crate::audit::{ChainVerifier, GENESIS_HASH, StoredEvent, canonical_json};
    }
    pub mod domain {
        pub use crate::domain::Actor;
        pub use crate::domain::records::AuditFilter;
    }
    pub mod policy {
        pub use crate::policy::{Effect, EvalInput, parse};
        pub mod watch {
            pub use crate::policy::watch::{Reload, Trigger, reload};
        }
    }
    pub mod secret {
        pub use crate::secret::{Secret, sha256_hex};
    }
    pub mod service {
        pub use crate::service::Service;
        pub mod login_links {
            pub use crate::service::login_links::url;
        }
        pub mod sessions {
            pub use crate::service::sessions::COOKIE;
        }
    }
    pub mod store {
        pub use crate::store::{Store, StoreError};
        pub mod audit {
            pub use crate::store::audit::{for_each, page};
        }
        pub mod recent {
            pub use crate::store::recent::LEASE;
        }
    }
    pub mod telegram {
        pub mod render {
            pub use crate::telegram::render::{first_line_not_ours, visible_len};
        }
    }
    pub mod web {
        pub use crate::web::HSTS;
    }
}
