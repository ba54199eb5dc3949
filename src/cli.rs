//! The command line: `serve`, and the operator commands that work on the same data directory
//! while the server runs. A secret a command prints is alone on its own stdout line; everything
//! else goes to stderr, so scripts can take the secret with `$(…)`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app;
use crate::audit;
use crate::clock::Clock;
use crate::config::{self, Config, DataArgs, ServeArgs};
use crate::domain::Actor;
use crate::error::Error;
use crate::live_policy;
use crate::store::{self, Store, StoreError};

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
        other => tokio::task::spawn_blocking(move || run_operator(other))
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

fn run_operator(command: Command) -> Result<ExitCode, String> {
    let now = Clock::System.now();
    match command {
        Command::Serve(_) => Err("serve is not an operator command".into()),
        Command::Agent(AgentCommand::Create { name, data }) => {
            let store = open(&data)?;
            let (agent, key) = store
                .write_blocking(|tx| crate::agents::create(tx, &name, &Actor::Operator, now))
                .map_err(describe)?;
            eprintln!(
                "created agent {:?} (id {}); its API key, shown only this once:",
                agent.name, agent.id
            );
            println!("{}", key.expose());
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::List { data }) => {
            let agents = open(&data)?
                .read_blocking(store::agents::list)
                .map_err(|e| e.to_string())?;
            println!("{:<24} {:<36} {:<24} STATUS", "NAME", "ID", "CREATED");
            for a in agents {
                let status = match a.revoked_at {
                    Some(t) => format!("revoked {t}"),
                    None => "active".to_owned(),
                };
                println!(
                    "{:<24} {:<36} {:<24} {status}",
                    a.name,
                    a.id,
                    a.created_at.to_string()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::Revoke { name, data }) => {
            let agent = open(&data)?
                .write_blocking(|tx| crate::agents::revoke(tx, &name, &Actor::Operator, now))
                .map_err(describe)?;
            eprintln!("revoked agent {:?} (id {})", agent.name, agent.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(AdminCommand::Token(AdminTokenCommand::Create { name, data })) => {
            let token = open(&data)?
                .write_blocking(|tx| {
                    crate::agents::create_admin_token(tx, &name, &Actor::Operator, now)
                })
                .map_err(describe)?;
            eprintln!("admin token for {name:?}, shown only this once:");
            println!("{}", token.expose());
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Check { file }) => match live_policy::load_file(&file) {
            Ok(policy) => {
                println!(
                    "{}: ok, {} rules, version {}",
                    file.display(),
                    policy.rules().len(),
                    policy.version()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(e.to_string()),
        },
        Command::Audit(AuditCommand::Verify { data }) => verify_audit(&open(&data)?),
        Command::Backup { file, data } => {
            let store = open(&data)?;
            store.backup_to(&file).map_err(|e| e.to_string())?;
            let ev = audit::NewEvent::new(
                Actor::Operator,
                "backup.made",
                serde_json::json!({ "file": file.display().to_string() }),
            );
            store
                .write_blocking(|tx| store::audit::append(tx, now, &ev))
                .map_err(|e: StoreError| e.to_string())?;
            eprintln!("backup written to {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn verify_audit(store: &Store) -> Result<ExitCode, String> {
    let mut verifier = audit::ChainVerifier::default();
    let mut broken = None;
    store
        .read_blocking(|c| {
            store::audit::for_each(c, |e| match verifier.push(&e) {
                Ok(()) => true,
                Err(b) => {
                    broken = Some(b);
                    false
                }
            })
        })
        .map_err(|e| e.to_string())?;
    match broken {
        None => {
            let (count, head) = verifier.finish();
            println!("audit chain ok: {count} events, head {head}");
            Ok(ExitCode::SUCCESS)
        }
        Some(b) => {
            println!("audit chain broken at seq {}: {}", b.seq, b.why);
            Ok(ExitCode::FAILURE)
        }
    }
}

fn open(data: &DataArgs) -> Result<Store, String> {
    data.open_store().map_err(|e| e.to_string())
}

fn describe(e: Error) -> String {
    e.to_string()
}
