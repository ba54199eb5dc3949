//! `agent-otp mcp`: the agent tools served to an MCP host (Claude Desktop, IDEs, agent
//! frameworks) over stdin/stdout with the official Rust SDK (`rmcp`). The host starts the
//! process with the agent's key in its environment; the tools call the server through
//! [`Client`], so the MCP process holds no state of its own.
//!
//! Hosts give up on a tool call after a while (often a few minutes, sometimes less), so no call
//! waits longer than `max_wait` (25 s by default): a request still pending then answers with its
//! id and "call get_permission", and each `get_permission` waits again, at most as long.

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::agent_client::{Client, ClientError, PermissionRequest};

/// Default bound on one tool call's wait for a human, in seconds.
pub(crate) const DEFAULT_MAX_WAIT_SECS: u64 = 25;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct RequestPermissionArgs {
    /// What you want to do, e.g. "email.send" or "payment.transfer".
    pub action: String,
    /// What it acts on, e.g. the recipient, a file path or an account.
    #[serde(default)]
    pub resource: Option<String>,
    /// Constraints you ask for, e.g. {"max_amount": 40, "allowed_recipients": ["a@b.com"]}.
    #[serde(default)]
    pub scope: Option<Map<String, Value>>,
    /// Why you need it, shown to the human, e.g. {"reason": "monthly invoice"}.
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    /// Lifetime of the request and its token in seconds (30–3600, default 300).
    #[serde(default)]
    pub ttl: Option<u64>,
    /// How many times the token may be used (1–100, default 1).
    #[serde(default)]
    pub uses: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct GetPermissionArgs {
    /// The id returned by request_permission.
    pub id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct UsePermissionArgs {
    /// The id returned by request_permission.
    pub id: String,
    /// The token (otp_…) from an approved answer.
    pub token: String,
    /// What you are about to do, checked against the granted scope, e.g.
    /// {"recipients": ["a@b.com"], "amount": 40}.
    #[serde(default)]
    pub action_details: Option<Map<String, Value>>,
}

/// The MCP tool set.
#[derive(Debug, Clone)]
pub(crate) struct OtpTools {
    client: Client,
    max_wait: Duration,
    // Read by the code `#[tool_handler]` generates.
    #[allow(dead_code)]
    tool_router: ToolRouter<OtpTools>,
}

#[tool_router]
impl OtpTools {
    /// Tools backed by `client`; no call waits longer than `max_wait`.
    pub(crate) fn new(client: Client, max_wait: Duration) -> OtpTools {
        OtpTools {
            client,
            max_wait,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Ask a human (or the policy) for permission before a sensitive action. Answers \
        status approved (with a single-use token: call use_permission right before acting), denied \
        (do not act), or pending (a human has not decided yet: call get_permission with the id)."
    )]
    async fn request_permission(
        &self,
        Parameters(args): Parameters<RequestPermissionArgs>,
    ) -> CallToolResult {
        let body = PermissionRequest {
            action: args.action,
            resource: args.resource,
            scope: args.scope,
            context: args.context,
            ttl: args.ttl,
            uses: args.uses,
        };
        let answer = match self.client.request(&body).await {
            Ok(a) if a["status"] == "pending" => {
                let id = a["id"].as_str().unwrap_or_default().to_owned();
                match self.client.wait_for_decision(&id, self.max_wait).await {
                    // Keep the approval link for the agent to show its human.
                    Ok(mut view) if view["status"] == "pending" => {
                        view["approvalUrl"] = a["approvalUrl"].clone();
                        Ok(view)
                    }
                    other => other,
                }
            }
            other => other,
        };
        self.reply(answer)
    }

    #[tool(
        description = "Read a permission request by id, waiting a while if a human has not decided \
        yet. The first answer after a human approval carries the token, once."
    )]
    async fn get_permission(
        &self,
        Parameters(args): Parameters<GetPermissionArgs>,
    ) -> CallToolResult {
        let answer = self.client.wait_for_decision(&args.id, self.max_wait).await;
        self.reply(answer)
    }

    #[tool(
        description = "Use an approved permission's token, once, right before performing the action. \
        success true means go ahead; false means do not act (the reason says why)."
    )]
    async fn use_permission(
        &self,
        Parameters(args): Parameters<UsePermissionArgs>,
    ) -> CallToolResult {
        match self
            .client
            .use_token(&args.id, &args.token, args.action_details)
            .await
        {
            Ok(v) if v["success"] == true => CallToolResult::structured(v),
            Ok(v) => CallToolResult::structured_error(v),
            Err(e) => error_result(&e),
        }
    }
}

impl OtpTools {
    /// A request's state, with a plain-language `next` step for the model.
    fn reply(&self, answer: Result<Value, ClientError>) -> CallToolResult {
        let mut view = match answer {
            Ok(v) => v,
            Err(e) => return error_result(&e),
        };
        let secs = self.max_wait.as_secs();
        let next = match view["status"].as_str() {
            Some("approved") if view.get("token").is_some() => {
                "Approved. Call use_permission with this id and token right before you act; \
                 stay within the granted scope."
                    .to_owned()
            }
            Some("approved") => "Approved, but its token was already handed out in an earlier \
                answer; use that token."
                .to_owned(),
            Some("pending") => format!(
                "Still pending: a human has not decided yet. Call get_permission with this id \
                 to keep waiting (each call waits up to {secs} s). Do not act until approved."
            ),
            Some("denied") => "Denied. Do not perform this action.".to_owned(),
            Some("expired") => {
                "Expired before it was approved or used. Do not act; ask again if still needed."
                    .to_owned()
            }
            Some(other) => format!("The request is {other}; there is nothing left to use."),
            None => "Unexpected answer.".to_owned(),
        };
        view["next"] = Value::String(next);
        CallToolResult::structured(view)
    }
}

fn error_result(e: &ClientError) -> CallToolResult {
    CallToolResult::structured_error(json!({ "error": e.to_json() }))
}

#[tool_handler]
impl ServerHandler for OtpTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agent-otp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Before any sensitive action (sending messages, spending money, deleting data, \
                 running commands) call request_permission; act only after use_permission \
                 answers success true.",
            )
    }
}

/// Serves the tools on stdin/stdout until the host closes stdin.
pub(crate) async fn serve_stdio(client: Client, max_wait: Duration) -> Result<(), String> {
    let running = OtpTools::new(client, max_wait)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("mcp start-up failed: {e}"))?;
    running
        .waiting()
        .await
        .map_err(|e| format!("mcp server stopped: {e}"))?;
    Ok(())
}
