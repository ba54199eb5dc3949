//! Operator commands: they open the data directory directly (SQLite allows this beside a running
//! server) and write each change with its audit event, exactly as the admin API does.

use std::process::ExitCode;

use super::{AdminCommand, AdminTokenCommand, AgentCommand, Command, ServiceCommand};
use crate::audit;
use crate::clock::{Clock, Timestamp};
use crate::config::DataArgs;
use crate::domain::Actor;
use crate::error::Error;
use crate::store::{self, Store, StoreError};

/// Runs one operator command to completion.
pub(super) fn run(command: Command) -> Result<ExitCode, String> {
    let now = Clock::System.now();
    match command {
        Command::Serve(_) | Command::Client(_) | Command::Health(_) => {
            Err("not an operator command".into())
        }
        Command::Login(args) => super::login::run(args),
        Command::Init { data } => {
            let existed = data.db_path().is_file();
            crate::config::open_store(&data.data_dir).map_err(|e| e.to_string())?;
            let verb = if existed { "already exists" } else { "created" };
            eprintln!("database {verb}: {}", data.db_path().display());
            Ok(ExitCode::SUCCESS)
        }
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
            changed(&store);
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
            let store = open(&data)?;
            let (agent, ended) = store
                .write_blocking(|tx| crate::agents::revoke(tx, &name, &Actor::Operator, now))
                .map_err(describe)?;
            // A server running on this database may answer `verify` from a read taken just
            // before this commit; it trusts such a read for one lease at most.
            std::thread::sleep(crate::store::recent::LEASE);
            eprintln!(
                "revoked agent {:?} (id {}); {} pending or approved requests revoked with it",
                agent.name,
                agent.id,
                ended.len()
            );
            changed(&store);
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(AdminCommand::Token(cmd)) => admin_token(cmd, now),
        Command::Service(ServiceCommand::Create {
            name,
            actions,
            data,
        }) => {
            let patterns = crate::service_keys::parse_patterns(&actions).map_err(describe)?;
            let store = open(&data)?;
            let (service, key) = store
                .write_blocking(|tx| {
                    crate::service_keys::create(tx, &name, patterns, &Actor::Operator, now)
                })
                .map_err(describe)?;
            eprintln!(
                "created service {:?} (id {}) for {}; its key, shown only this once:",
                service.name,
                service.id,
                service.actions.join(", ")
            );
            println!("{}", key.expose());
            changed(&store);
            Ok(ExitCode::SUCCESS)
        }
        Command::Service(ServiceCommand::List { data }) => {
            let services = open(&data)?
                .read_blocking(store::services::list)
                .map_err(|e| e.to_string())?;
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
            let store = open(&data)?;
            let service = store
                .write_blocking(|tx| crate::service_keys::revoke(tx, &name, &Actor::Operator, now))
                .map_err(describe)?;
            eprintln!("revoked service {:?} (id {})", service.name, service.id);
            changed(&store);
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(cmd) => super::policy::run(cmd),
        Command::Audit(cmd) => super::audit::run(cmd),
        Command::Telegram(cmd) => super::telegram::run(cmd),
        Command::Backup { file, data } => {
            let store = open(&data)?;
            let anchor = store.backup_to(&file).map_err(|e| e.to_string())?;
            let ev = audit::NewEvent::new(
                Actor::Operator,
                "backup.made",
                serde_json::json!({ "file": file.display().to_string() }),
            );
            store
                .write_blocking(|tx| store::audit::append(tx, now, &ev))
                .map_err(|e: StoreError| e.to_string())?;
            eprintln!(
                "backup written to {} and its audit checkpoint to {} (restore both, with the \
                 audit key, see docs/operations.md)",
                file.display(),
                anchor.display()
            );
            changed(&store);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn admin_token(cmd: AdminTokenCommand, now: Timestamp) -> Result<ExitCode, String> {
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
            let store = open(&data)?;
            let (row, token) = store
                .write_blocking(|tx| {
                    crate::agents::create_admin_token_until(
                        tx,
                        &name,
                        expires_at,
                        &Actor::Operator,
                        now,
                    )
                })
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
            changed(&store);
            Ok(ExitCode::SUCCESS)
        }
        AdminTokenCommand::List { data } => {
            let tokens = open(&data)?
                .read_blocking(store::admin_tokens::list)
                .map_err(|e| e.to_string())?;
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
            let store = open(&data)?;
            let token = store
                .write_blocking(|tx| {
                    crate::agents::revoke_admin_token(tx, &id_or_name, &Actor::Operator, now)
                })
                .map_err(describe)?;
            eprintln!("revoked admin token {:?} (id {})", token.name, token.id);
            changed(&store);
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(super) fn open(data: &DataArgs) -> Result<Store, String> {
    data.open_store().map_err(|e| e.to_string())
}

/// Says which database a command changed (on stderr), so a change made to the wrong one shows.
pub(super) fn changed(store: &Store) {
    eprintln!("database: {}", store.path().display());
}

fn describe(e: Error) -> String {
    e.to_string()
}
