//! The command line: `serve`, and the operator commands that work on the same data directory
//! while the server runs. A secret a command prints is alone on its own stdout line; everything
//! else goes to stderr, so scripts can take the secret with `$(…)`.

mod audit;
mod client;
mod health;
mod login;
mod operator;
mod policy;
mod telegram;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app;
use crate::config::{self, Config, DataArgs, ServeArgs};

/// agent-otp: scoped, ephemeral, human-approved permissions for AI agents.
#[derive(Parser, Debug)]
#[command(name = "agent-otp", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the service (API, background tasks) until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Create the data directory and its database, to add keys before the first `serve`.
    ///
    /// `serve` creates them too; no other command does.
    Init {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Manage agents and their API keys.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage admin tokens for the admin API.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage protected services: their keys introspect and use tokens for the actions they serve.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Check and try out policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Inspect the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a one-time web login link, valid for 10 minutes, on its own line.
    Login(LoginArgs),
    /// Manage who may approve from Telegram.
    #[command(subcommand)]
    Telegram(TelegramCommand),
    /// Check that a running server answers `GET /health` (exit 0) or not (exit 1); for
    /// container health checks.
    Health(health::HealthArgs),
    /// Write a consistent copy of the live database to FILE.
    Backup {
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    #[command(flatten)]
    Client(Box<client::ClientCommand>),
}

/// Flags of `agent-otp login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Who logs in; web decisions are recorded as `human:<name>`.
    #[arg(long, default_value = "admin")]
    pub name: String,
    /// Page to open after logging in, e.g. /requests/<id> (default: the pending list).
    #[arg(long)]
    pub next: Option<String>,
    /// Base of the link (default: the public URL the server last started with).
    #[arg(long, env = "AGENT_OTP_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Create an agent and print its API key (shown once).
    Create {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List agents.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke an agent (by name or id); its key stops working at once.
    Revoke {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Create a protected service and print its key (shown once).
    Create {
        name: String,
        /// The actions it serves, comma-separated; `*` stands for any run of characters
        /// (e.g. `gmail.*,calendar.read`).
        #[arg(long)]
        actions: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List protected services.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a service (by name or id); its key stops working at once.
    Revoke {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Admin tokens.
    #[command(subcommand)]
    Token(AdminTokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum AdminTokenCommand {
    /// Create an admin token and print it (shown once).
    Create {
        /// Who will use it; decisions are recorded as `human:<name>`.
        #[arg(long, default_value = "admin")]
        name: String,
        /// Make it stop working after this long, e.g. 30d, 12h or 90m (default: never).
        #[arg(long, value_parser = config::parse_duration)]
        expires: Option<std::time::Duration>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List admin tokens: id, name, created, expires, last used, status (never the token).
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke an admin token by id (or by name, when one live token has it); it stops working
    /// at once, also on a running server.
    Revoke {
        id_or_name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file: exit 0 with a summary, or 1 with every problem (file:line:column).
    /// Warns about rules that can never match.
    Check {
        #[arg(default_value = "policies.yaml", env = "AGENT_OTP_POLICIES")]
        file: PathBuf,
    },
    /// Show how a policy decides one request (and why each earlier rule did not match), or check
    /// a file of cases with `--cases`; exit 1 on any mismatch.
    Test(PolicyTestArgs),
}

/// Arguments of `agent-otp policy test`.
#[derive(clap::Args, Debug)]
pub struct PolicyTestArgs {
    /// The policy file.
    #[arg(default_value = "policies.yaml", env = "AGENT_OTP_POLICIES")]
    pub file: PathBuf,
    /// The requesting agent's name.
    #[arg(long, required_unless_present = "cases")]
    pub agent: Option<String>,
    /// The requesting agent's id (default: the name).
    #[arg(long)]
    pub agent_id: Option<String>,
    /// The requested action, e.g. file.read.
    #[arg(long, required_unless_present = "cases")]
    pub action: Option<String>,
    /// The requested resource.
    #[arg(long)]
    pub resource: Option<String>,
    /// The requested scope, a JSON object.
    #[arg(long)]
    pub scope: Option<String>,
    /// The request's context, a JSON object.
    #[arg(long)]
    pub context: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// A YAML file of cases (`tests:` list of request + expected decision) to check instead.
    #[arg(long, conflicts_with_all = ["agent", "agent_id", "action", "resource", "scope", "context"])]
    pub cases: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain. Exit 0: intact (prints count and head hash); 3: a row was changed;
    /// 4: a row is missing; 5: rows were reordered; 1: could not check.
    Verify {
        /// Also require that this hash (a head noted earlier with `audit head`) is still in the
        /// chain, which detects rows cut off its end.
        #[arg(long)]
        expect_head: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write events as JSON Lines (with their hashes) to stdout, oldest first.
    Export {
        /// Only events at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only events before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Only events about this agent (name or id).
        #[arg(long)]
        agent: Option<String>,
        /// Only events about this permission request (id).
        #[arg(long)]
        request: Option<String>,
        /// Only events of this type, e.g. token.used.
        #[arg(long)]
        event: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print the hash of the newest event (to note down elsewhere), without verifying.
    Head {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TelegramCommand {
    /// Print a one-time code; sending `/start CODE` to the bot links that Telegram user.
    Link {
        #[command(flatten)]
        data: DataArgs,
    },
    /// List linked approvers.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Unlink an approver by Telegram user id; their unused login links stop working.
    Unlink {
        user_id: i64,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Runs a parsed command line; the exit code says how it went.
pub async fn run(cli: Cli) -> ExitCode {
    config::warn_unknown_env();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Login(args) => login::run(args).await,
        Command::Client(command) => client::run(*command).await,
        Command::Health(args) => health::run(args).await,
        other => operator::run(other).await,
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let config = Config::from_args(args).map_err(|e| e.to_string())?;
    // Installed before the server starts, so a SIGTERM sent as soon as it listens is a graceful
    // stop rather than the default (immediate) termination.
    let stop = stop_signal();
    let handle = app::start(config).await.map_err(|e| e.to_string())?;
    stop.await;
    tracing::info!("stop signal received, shutting down");
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Registers SIGTERM and SIGINT handlers now; the returned future ends when either arrives.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A command-line argument that must be one JSON object, every number in it read exactly
/// (`crate::number`), as the server reads a body.
fn json_object(raw: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let parse = |raw: &[u8]| match serde_json::from_slice(raw) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err("must be a JSON object, e.g. '{\"max_size\": 10}'".to_owned()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    };
    crate::number::parse_exact(raw.as_bytes(), parse, |why| why)
}
