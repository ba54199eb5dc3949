//! `agent-otp audit verify|export|head`: prove the trail is intact, take it elsewhere, and note
//! its head. They read the database directly, beside a running server.

use std::io::Write;
use std::process::ExitCode;

use super::AuditCommand;
use super::operator::open;
use crate::audit::{BreakKind, ChainVerifier};
use crate::clock::Timestamp;
use crate::store::{self, Store, StoreError};

/// Exit code of `audit verify` for each kind of break (0 is intact, 1 could not check).
pub fn exit_code(kind: BreakKind) -> u8 {
    match kind {
        BreakKind::Changed => 3,
        BreakKind::Missing => 4,
        BreakKind::Reordered => 5,
    }
}

pub(super) fn run(command: AuditCommand) -> Result<ExitCode, String> {
    match command {
        AuditCommand::Verify { expect_head, data } => verify(&open(&data)?, expect_head.as_deref()),
        AuditCommand::Export {
            since,
            until,
            agent,
            request,
            event,
            data,
        } => {
            let store = open(&data)?;
            let time = |flag: &str, v: Option<String>| {
                v.map(|t| Timestamp::parse_rfc3339(&t).map_err(|e| format!("--{flag}: {e}")))
                    .transpose()
            };
            let agent_id = match agent {
                Some(a) => Some(
                    store
                        .read_blocking(|c| store::agents::by_id_or_name(c, &a))
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("--agent: no agent with name or id {a:?}"))?
                        .id
                        .0,
                ),
                None => None,
            };
            let filter = store::audit::Filter {
                request_id: request,
                agent_id,
                event,
                since: time("since", since)?,
                until: time("until", until)?,
            };
            export(&store, &filter)
        }
        AuditCommand::Head { data } => {
            let head = open(&data)?
                .read_blocking(store::audit::head)
                .map_err(|e| e.to_string())?;
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

fn verify(store: &Store, expect_head: Option<&str>) -> Result<ExitCode, String> {
    let mut verifier = ChainVerifier::default();
    let mut broken = None;
    let mut head_seen = false;
    store
        .read_blocking(|c| {
            store::audit::for_each(c, |e| match verifier.push(&e) {
                Ok(()) => {
                    head_seen |= expect_head == Some(e.hash.as_str());
                    true
                }
                Err(b) => {
                    broken = Some(b);
                    false
                }
            })
        })
        .map_err(|e| e.to_string())?;
    if let Some(b) = broken {
        let linked = match &b.dangling_prev {
            Some(prev) => {
                let prev = prev.clone();
                store
                    .read_blocking(|c| store::audit::seq_of_hash(c, &prev))
                    .map_err(|e: StoreError| e.to_string())?
            }
            None => None,
        };
        let b = b.refine(linked);
        println!(
            "audit chain broken at seq {} ({}): {}",
            b.seq,
            b.kind.as_str(),
            b.why
        );
        return Ok(ExitCode::from(exit_code(b.kind)));
    }
    let (count, head) = verifier.finish();
    if let Some(expected) = expect_head
        && !head_seen
    {
        println!(
            "audit chain broken after seq {count} (missing): the noted head {expected} is not in the chain (events cut off its end?)"
        );
        return Ok(ExitCode::from(exit_code(BreakKind::Missing)));
    }
    println!("audit chain ok: {count} events, head {head}");
    Ok(ExitCode::SUCCESS)
}

fn export(store: &Store, filter: &store::audit::Filter) -> Result<ExitCode, String> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error = None;
    let mut count = 0u64;
    store
        .read_blocking(|c| {
            store::audit::for_each_matching(c, filter, |e| {
                match writeln!(out, "{}", e.export_json()) {
                    Ok(()) => {
                        count += 1;
                        true
                    }
                    Err(err) => {
                        write_error = Some(err);
                        false
                    }
                }
            })
        })
        .map_err(|e| e.to_string())?;
    if let Some(e) = write_error.or_else(|| out.flush().err()) {
        return Err(format!("cannot write the export: {e}"));
    }
    eprintln!("exported {count} events");
    Ok(ExitCode::SUCCESS)
}
