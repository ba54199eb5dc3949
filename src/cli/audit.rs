//! `agent-otp audit verify|export|head`: prove the trail is intact, take it elsewhere, and note
//! its head. They read the database directly, beside a running server.

use std::io::Write;
use std::process::ExitCode;

use super::AuditCommand;
use super::operator::{describe, open};
use crate::clock::Timestamp;
use crate::domain::AuditFilter;
use crate::error::Error;
use crate::service::Service;

pub(super) async fn run(command: AuditCommand) -> Result<ExitCode, String> {
    match command {
        AuditCommand::Verify { expect_head, data } => {
            let check = open(&data)?.verify_audit(expect_head.as_deref())?;
            for line in &check.lines {
                println!("{line}");
            }
            Ok(ExitCode::from(check.exit))
        }
        AuditCommand::Export {
            since,
            until,
            agent,
            request,
            event,
            data,
        } => {
            let svc = open(&data)?;
            let time = |flag: &str, v: Option<String>| {
                v.map(|t| Timestamp::parse_rfc3339(&t).map_err(|e| format!("--{flag}: {e}")))
                    .transpose()
            };
            let agent_id = match agent {
                Some(a) => Some(match svc.agent(&a).await {
                    Ok(agent) => agent.id.0,
                    Err(Error::NotFound(_)) => {
                        return Err(format!("--agent: no agent with name or id {a:?}"));
                    }
                    Err(e) => return Err(describe(e)),
                }),
                None => None,
            };
            let filter = AuditFilter {
                request_id: request,
                agent_id,
                event,
                since: time("since", since)?,
                until: time("until", until)?,
            };
            export(&svc, &filter)
        }
        AuditCommand::Head { data } => {
            let head = open(&data)?.audit_head().await.map_err(describe)?;
            match head {
                Some((seq, hash, at)) => {
                    eprintln!(
                        "head of the audit trail: event {seq} at {at} (not verified; run `audit verify`)"
                    );
                    println!("{hash}");
                    Ok(ExitCode::SUCCESS)
                }
                None => Err("the audit trail is empty".into()),
            }
        }
    }
}

fn export(svc: &Service, filter: &AuditFilter) -> Result<ExitCode, String> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error = None;
    let mut count = 0u64;
    svc.export_audit(filter, |e| match writeln!(out, "{}", e.export_json()) {
        Ok(()) => {
            count += 1;
            true
        }
        Err(err) => {
            write_error = Some(err);
            false
        }
    })
    .map_err(describe)?;
    if let Some(e) = write_error.or_else(|| out.flush().err()) {
        return Err(format!("cannot write the export: {e}"));
    }
    eprintln!("exported {count} events");
    Ok(ExitCode::SUCCESS)
}
