// Test code fails by panicking: unwrap, expect and panic are how a test says what broke.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// One test binary, not a library: `pub` here only shares helpers between its modules.
#![allow(unreachable_pub)]
//! Integration tests: a real server on 127.0.0.1:0 over a temp-file SQLite database, driven with
//! a real HTTP client. One test binary, one module per area.

mod fake_telegram;
mod support;

mod audit_anchor;
mod audit_trail;
mod bad_input;
mod bounds;
mod cli;
mod client;
mod concurrency;
mod crash;
mod deploy;
mod flows;
mod layers;
mod limits;
mod login;
mod mcp;
mod metrics;
mod numbers;
mod openapi;
mod policy_cli;
mod policy_reload;
mod readme;
mod scope_bypass;
mod scopes;
mod sdk_compat;
mod security;
mod services;
mod telegram;
mod uses;
mod web;
mod web_browser;
