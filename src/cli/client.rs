//! Agent-side commands for shell agents and scripts: `request`, `status`, `verify`, `use`,
//! `revoke`, and `mcp` (the stdio MCP server). Each prints one line of JSON on stdout (the
//! answer's `data`, or `{"success":false,"error":…}`) and says how it went in its exit code, so
//! `agent-otp request … --wait && do-the-thing` is safe: anything but "approved" is non-zero.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{Map, Value};

use super::json_object;
use crate::agent_client::{Client, ClientError, PermissionRequest};
use crate::secret::Secret;

/// Exit codes of the agent-side commands.
pub(super) mod exit {
    /// Approved (or the call succeeded).
    pub(crate) const OK: u8 = 0;
    /// Any other error: bad input, server error, unexpected answer.
    pub(crate) const ERROR: u8 = 1;
    /// Denied by policy or by a human.
    pub(crate) const DENIED: u8 = 3;
    /// Expired, revoked or used up: there is nothing left to use.
    pub(crate) const EXPIRED: u8 = 4;
    /// Still pending: no `--wait`, or the wait ran out first.
    pub(crate) const PENDING: u8 = 5;
    /// The agent key is missing, unknown or revoked (401).
    pub(crate) const UNAUTHORIZED: u8 = 6;
    /// `verify` found the token invalid, or `use` was refused.
    pub(crate) const REFUSED: u8 = 7;
    /// The server could not be reached.
    pub(crate) const NETWORK: u8 = 8;
}

/// How `--wait` without a number waits: until decided or expired (the longest TTL is 1 h).
const WAIT_UNTIL_DECIDED: &str = "3600";

/// Where the server is and which agent is calling.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of the agent-otp server.
    #[arg(long, env = "AGENT_OTP_URL", default_value = "http://127.0.0.1:8787")]
    pub url: String,
    /// Agent key (`ak_…`). Prefer the environment or --key-file: flags show up in `ps`.
    #[arg(long, env = "AGENT_OTP_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// File holding the agent key (used when no key is given directly).
    #[arg(long, env = "AGENT_OTP_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

impl ServerArgs {
    /// A client for these settings.
    pub fn client(&self) -> Result<Client, String> {
        let key = match (&self.key, &self.key_file) {
            (Some(k), _) if !k.trim().is_empty() => k.trim().to_owned(),
            (_, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the key file {}: {e}", file.display()))?
                .trim()
                .to_owned(),
            _ => {
                return Err(
                    "no agent key: set AGENT_OTP_KEY or AGENT_OTP_KEY_FILE (or pass --key-file)"
                        .into(),
                );
            }
        };
        Client::new(&self.url, Secret::new(key)).map_err(|e| e.to_string())
    }
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Ask for a permission (agent side); prints the decision as JSON. Exit 0 approved,
    /// 3 denied, 4 expired, 5 still pending, 6 bad key, 8 server unreachable, 1 other errors.
    Request(RequestArgs),
    /// Show one of this agent's requests; with --wait, wait for its decision (same exit codes).
    Status {
        /// The request id.
        id: String,
        /// Wait while pending: up to SECS, or until decided or expired when SECS is left out.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = WAIT_UNTIL_DECIDED)]
        wait: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Check a token without using it. Exit 0 valid, 7 invalid.
    Verify {
        /// The request id.
        id: String,
        /// The token (`otp_…`), or `-` to read it from stdin.
        #[arg(long)]
        token: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Use a token once. Exit 0 used, 7 refused (used up, expired, revoked, outside its scope).
    Use {
        /// The request id.
        id: String,
        /// The token (`otp_…`), or `-` to read it from stdin.
        #[arg(long)]
        token: String,
        /// What is being done, checked against the granted scope (a JSON object).
        #[arg(long, value_name = "JSON", value_parser = json_object)]
        details: Option<Map<String, Value>>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke one of this agent's requests; its token stops working at once.
    Revoke {
        /// The request id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Serve the agent tools (request_permission, get_permission, use_permission) to an MCP
    /// host over stdin/stdout.
    Mcp {
        /// Longest a tool call waits for a human before answering "still pending" (seconds);
        /// keep it under the host's tool-call timeout.
        #[arg(long, value_name = "SECS", default_value_t = crate::mcp::DEFAULT_MAX_WAIT_SECS)]
        max_wait: u64,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Flags of `agent-otp request`.
#[derive(clap::Args, Debug)]
pub struct RequestArgs {
    /// What the agent wants to do, e.g. `email.send`.
    #[arg(long)]
    pub action: String,
    /// What it acts on, e.g. a recipient or a path.
    #[arg(long)]
    pub resource: Option<String>,
    /// Constraints asked for (a JSON object), e.g. '{"max_amount":40}'.
    #[arg(long, value_name = "JSON", value_parser = json_object)]
    pub scope: Option<Map<String, Value>>,
    /// Why, for the human (a JSON object), e.g. '{"reason":"monthly invoice"}'.
    #[arg(long, value_name = "JSON", value_parser = json_object)]
    pub context: Option<Map<String, Value>>,
    /// Lifetime in seconds (30–3600, server default 300).
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<u64>,
    /// How many times the token may be used (1–100, server default 1).
    #[arg(long)]
    pub uses: Option<u64>,
    /// Wait while a human decides: up to SECS, or until decided or expired when SECS is left
    /// out. Without --wait a pending answer exits 5 at once.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = WAIT_UNTIL_DECIDED)]
    pub wait: Option<u64>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs an agent-side command.
pub(super) async fn run(command: ClientCommand) -> Result<ExitCode, String> {
    match command {
        ClientCommand::Request(args) => request(args).await,
        ClientCommand::Status { id, wait, server } => {
            let client = server.client()?;
            let view = match wait {
                Some(secs) => {
                    client
                        .wait_for_decision(&id, Duration::from_secs(secs))
                        .await
                }
                None => client.get(&id, 0).await,
            };
            Ok(finish(view, exit_for_status))
        }
        ClientCommand::Verify { id, token, server } => {
            let token = read_token(token)?;
            let answer = server.client()?.verify(&id, &token).await;
            Ok(finish(answer, |v| flag_exit(v, "valid")))
        }
        ClientCommand::Use {
            id,
            token,
            details,
            server,
        } => {
            let token = read_token(token)?;
            let answer = server.client()?.use_token(&id, &token, details).await;
            Ok(finish(answer, |v| flag_exit(v, "success")))
        }
        ClientCommand::Revoke { id, server } => {
            let answer = server.client()?.revoke(&id).await;
            Ok(finish(answer, |_| exit::OK))
        }
        ClientCommand::Mcp { max_wait, server } => {
            let client = server.client()?;
            crate::mcp::serve_stdio(client, Duration::from_secs(max_wait))
                .await
                .map(|()| ExitCode::SUCCESS)
        }
    }
}

async fn request(args: RequestArgs) -> Result<ExitCode, String> {
    let client = args.server.client()?;
    let body = PermissionRequest {
        action: args.action,
        resource: args.resource,
        scope: args.scope,
        context: args.context,
        ttl: args.ttl,
        uses: args.uses,
    };
    let mut answer = client.request(&body).await;
    if let (Ok(data), Some(secs)) = (&answer, args.wait)
        && data["status"] == "pending"
    {
        let id = data["id"].as_str().unwrap_or_default().to_owned();
        if let Some(url) = data["approvalUrl"].as_str() {
            eprintln!("waiting up to {secs} s for a human decision: {url}");
        }
        answer = client
            .wait_for_decision(&id, Duration::from_secs(secs))
            .await;
    }
    Ok(finish(answer, exit_for_status))
}

/// A token from the flag, or from stdin when the flag is `-` (keeps it out of `ps`).
fn read_token(flag: String) -> Result<String, String> {
    if flag != "-" {
        return Ok(flag);
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
    Ok(s.trim().to_owned())
}

/// Prints the answer (or the error) as one JSON line and picks the exit code.
fn finish(answer: Result<Value, ClientError>, code_for: impl Fn(&Value) -> u8) -> ExitCode {
    match answer {
        Ok(data) => {
            println!("{data}");
            ExitCode::from(code_for(&data))
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({ "success": false, "error": e.to_json() })
            );
            eprintln!("error: {e}");
            ExitCode::from(match &e {
                ClientError::Network(_) => exit::NETWORK,
                ClientError::Api(a) if a.status == 401 => exit::UNAUTHORIZED,
                _ => exit::ERROR,
            })
        }
    }
}

/// The exit code for a request's status.
fn exit_for_status(view: &Value) -> u8 {
    match view["status"].as_str() {
        Some("approved") => exit::OK,
        Some("denied") => exit::DENIED,
        Some("expired" | "revoked" | "used") => exit::EXPIRED,
        Some("pending") => exit::PENDING,
        _ => exit::ERROR,
    }
}

fn flag_exit(answer: &Value, flag: &str) -> u8 {
    if answer[flag] == true {
        exit::OK
    } else {
        exit::REFUSED
    }
}
