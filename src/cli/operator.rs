//! Operator commands: they open the data directory directly (SQLite allows this beside a running
//! server) and run the same operations as the admin API ([`Service::offline`]), each change with
//! its audit event.

use std::process::ExitCode;

use super::{AdminCommand, AdminTokenCommand, AgentCommand, Command, ServiceCommand};
use crate::clock::{Clock, Timestamp};
use crate::config::DataArgs;
use crate::domain::Actor;
use crate::error::Error;
use crate::service::Service;

/// Runs one operator command to completion.
pub(super) async fn run(command: Command) -> Result<ExitCode, String> {
    let now = Clock::System.now();
    match command {
        Command::Serve(_) | Command::Client(_) | Command::Health(_) => {
            Err("not an operator command".into())
        }
        Command::Login(args) => super::login::run(args).await,
        Command::Init { data } => {
            let existed = data.db_path().is_file();
            crate::config::open_store(&data.data_dir).map_err(|e| e.to_string())?;
            let verb = if existed { "already exists" } else { "created" };
            eprintln!("database {verb}: {}", data.db_path().display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::Create { name, data }) => {
            let svc = open(&data)?;
            let (agent, key) = svc
                .create_agent(Actor::Operator, &name)
                .await
                .map_err(describe)?;
            eprintln!(
                "created agent {:?} (id {}); its API key, shown only this once:",
                agent.name, agent.id
            );
            println!("{}", key.expose());
            changed(&svc);
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::List { data }) => {
            let agents = open(&data)?.agents().await.map_err(describe)?;
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
            let svc = open(&data)?;
            let (agent, ended) = svc
                .revoke_agent(Actor::Operator, &name)
                .await
                .map_err(describe)?;
            // A server running on this database may answer `verify` from a read taken just
            // before this commit; it trusts such a read for one lease at most.
            tokio::time::sleep(crate::service::VERIFY_LEASE).await;
            eprintln!(
                "revoked agent {:?} (id {}); {} pending or approved requests revoked with it",
                agent.name,
                agent.id,
                ended.len()
            );
            changed(&svc);
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(AdminCommand::Token(cmd)) => admin_token(cmd, now).await,
        Command::Service(ServiceCommand::Create {
            name,
            actions,
            data,
        }) => {
            let svc = open(&data)?;
            let (service, key) = svc
                .create_protected_service(Actor::Operator, &name, &actions)
                .await
                .map_err(describe)?;
            eprintln!(
                "created service {:?} (id {}) for {}; its key, shown only this once:",
                service.name,
                service.id,
                service.actions.join(", ")
            );
            println!("{}", key.expose());
            changed(&svc);
            Ok(ExitCode::SUCCESS)
        }
        Command::Service(ServiceCommand::List { data }) => {
            let services = open(&data)?.protected_services().await.map_err(describe)?;
            println!(
                "{:<24} {:<36} {:<24} {:<10} ACTIONS",
                "NAME", "ID", "CREATED", "STATUS"
            );
            for s in services {
                let status = if s.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<24} {:<36} {:<24} {status:<10} {}",
                    s.name,
                    s.id,
                    s.created_at.to_string(),
                    s.actions.join(",")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Service(ServiceCommand::Revoke { name, data }) => {
            let svc = open(&data)?;
            let service = svc
                .revoke_protected_service(Actor::Operator, &name)
                .await
                .map_err(describe)?;
            eprintln!("revoked service {:?} (id {})", service.name, service.id);
            changed(&svc);
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(cmd) => super::policy::run(cmd),
        Command::Audit(cmd) => super::audit::run(cmd).await,
        Command::Telegram(cmd) => super::telegram::run(cmd).await,
        Command::Backup { file, data } => {
            let svc = open(&data)?;
            let anchor = svc.backup(Actor::Operator, &file).await.map_err(describe)?;
            eprintln!(
                "backup written to {} and its audit checkpoint to {} (restore both, with the \
                 audit key, see docs/operations.md)",
                file.display(),
                anchor.display()
            );
            changed(&svc);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn admin_token(cmd: AdminTokenCommand, now: Timestamp) -> Result<ExitCode, String> {
    match cmd {
        AdminTokenCommand::Create {
            name,
            expires,
            data,
        } => {
            let expires_at = expires
                .map(|d| i64::try_from(d.as_secs()).map(|s| now.plus_secs(s)))
                .transpose()
                .map_err(|_| "--expires is too long".to_owned())?;
            let svc = open(&data)?;
            let (row, token) = svc
                .create_admin_token(Actor::Operator, &name, expires_at)
                .await
                .map_err(describe)?;
            let until = match row.expires_at {
                Some(t) => format!("valid until {t}"),
                None => "does not expire".to_owned(),
            };
            eprintln!(
                "admin token for {name:?} (id {}, {until}), shown only this once:",
                row.id
            );
            println!("{}", token.expose());
            changed(&svc);
            Ok(ExitCode::SUCCESS)
        }
        AdminTokenCommand::List { data } => {
            let tokens = open(&data)?.admin_tokens().await.map_err(describe)?;
            println!(
                "{:<36} {:<20} {:<24} {:<24} {:<24} STATUS",
                "ID", "NAME", "CREATED", "EXPIRES", "LAST USED"
            );
            let time =
                |t: Option<Timestamp>, none: &str| t.map_or(none.to_owned(), |t| t.to_string());
            for t in tokens {
                let status = match (t.revoked_at, t.is_live(now)) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, false) => "expired".to_owned(),
                    (None, true) => "active".to_owned(),
                };
                println!(
                    "{:<36} {:<20} {:<24} {:<24} {:<24} {status}",
                    t.id,
                    t.name,
                    t.created_at.to_string(),
                    time(t.expires_at, "never"),
                    time(t.last_used_at, "never"),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminTokenCommand::Revoke { id_or_name, data } => {
            let svc = open(&data)?;
            let token = svc
                .revoke_admin_token(Actor::Operator, &id_or_name)
                .await
                .map_err(describe)?;
            eprintln!("revoked admin token {:?} (id {})", token.name, token.id);
            changed(&svc);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The operator's service on the database in `data`, which must exist.
pub(super) fn open(data: &DataArgs) -> Result<Service, String> {
    let store = data.open_store().map_err(|e| e.to_string())?;
    Service::offline(store, Clock::System).map_err(describe)
}

/// Says which database a command changed (on stderr), so a change made to the wrong one shows.
pub(super) fn changed(svc: &Service) {
    eprintln!("database: {}", svc.database().display());
}

/// The message for an operation's error: a database error reads as the store put it (as these
/// commands always printed it), anything else as its sentence.
pub(super) fn describe(e: Error) -> String {
    match e {
        Error::Internal(detail) => detail,
        other => other.to_string(),
    }
}
