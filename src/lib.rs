//! agent-otp: a self-hosted approval service for AI agents.
//!
//! An agent asks for permission to do one sensitive thing; the YAML policy decides at once or asks a
//! human; an approved agent gets a short-lived, scoped, single-use token; every step is audited.
//! `src/main.rs` is a thin command line over this library, and the integration tests drive the same
//! [`app::start`] that `agent-otp serve` runs.

/// The agent side's HTTP client for the API (CLI client commands, MCP server).
pub mod agent_client;
/// The JSON API under `/api/v1`, `/metrics`, and their HTTP glue: auth, limits, body bounds.
pub mod api;
/// `start(config) -> AppHandle`: wires the store, policy, HTTP server and background tasks.
pub mod app;
/// Append-only, hash-chained audit events.
pub mod audit;
/// In-process fan-out of "request changed" events.
pub mod changes;
/// The command line: argument types and the operator commands.
pub mod cli;
/// Injected time, so TTL logic is testable without sleeping.
pub mod clock;
/// Settings layered defaults → env → flags, with validation.
pub mod config;
/// Permission states, ids and input rules: pure functions.
pub mod domain;
/// The one error type, with a stable machine code per kind.
pub mod error;
/// The stdio MCP server exposing the agent tools.
pub mod mcp;
/// Prometheus metrics: counters recorded where things happen, one registry (served by `api`).
pub mod metrics;
/// YAML policy: parsing, validation, evaluation, explain.
pub mod policy;
/// In-memory rate limits: per agent key, per client address, per Telegram user.
pub mod rate_limit;
/// Scope narrowing and enforcement.
pub mod scope;
/// Random secrets, hashing and constant-time comparison.
pub mod secret;
/// The one way in: the operations every channel (API, web, Telegram, command line) shares.
pub mod service;
/// How a request reads to the person deciding, the same in every channel.
pub mod shown;
/// SQLite: migrations, pool, and all SQL.
pub mod store;
/// Telegram approvals: linking approvers, Approve/Deny buttons, messages that follow the decision.
pub mod telegram;
/// Hidden characters in agent text: refused in identifiers, shown as markers elsewhere.
pub mod text;
/// The askama pages for humans: login, pending list, approval page, history, agents, audit.
pub mod web;
/// The wire contract: JSON bodies and answers with their OpenAPI schemas.
pub mod wire;
