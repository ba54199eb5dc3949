//! The command line: `serve`, and the operator commands that work on the same data directory
//! while the server runs. A secret a command prints is alone on its own stdout line; everything
//! else goes to stderr, so scripts can take the secret with `$(…)`.

mod login;
mod operator;
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
    /// Manage agents and their API keys.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage admin tokens for the admin API.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check policy files.
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
    /// Write a consistent copy of the live database to FILE.
    Backup {
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
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
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file; exit 0 when it can be loaded.
    Check {
        #[arg(default_value = "policies.yaml", env = "AGENT_OTP_POLICIES")]
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain; exit 0 if intact, 1 naming the first broken event.
    Verify {
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
        Command::Login(args) => tokio::task::spawn_blocking(move || login::run(args))
            .await
            .unwrap_or_else(|e| Err(format!("command failed: {e}"))),
        other => tokio::task::spawn_blocking(move || operator::run(other))
            .await
            .unwrap_or_else(|e| Err(format!("command failed: {e}"))),
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
    // Listen before starting, so a SIGTERM that arrives during start-up still stops cleanly.
    let stop = stop_signal();
    let handle = app::start(config).await.map_err(|e| e.to_string())?;
    stop.await;
    tracing::info!("stop signal received, shutting down");
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or Ctrl-C; the handlers are installed when this is called.
fn stop_signal() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            return Box::pin(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            });
        }
    }
    Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
