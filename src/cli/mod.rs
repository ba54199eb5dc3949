//! The command line: `serve`, and the operator commands that work on the same data directory
//! while the server runs. A secret a command prints is alone on its own stdout line; everything
//! else goes to stderr, so scripts can take the secret with `$(…)`.

mod client;
mod operator;

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
    /// Write a consistent copy of the live database to FILE.
    Backup {
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    #[command(flatten)]
    Client(Box<client::ClientCommand>),
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

/// Runs a parsed command line; the exit code says how it went.
pub async fn run(cli: Cli) -> ExitCode {
    config::warn_unknown_env();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Client(command) => client::run(*command).await,
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
    let handle = app::start(config).await.map_err(|e| e.to_string())?;
    wait_for_stop_signal().await;
    tracing::info!("stop signal received, shutting down");
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
