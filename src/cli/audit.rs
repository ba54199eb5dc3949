//! `agent-otp audit verify|export|head`: prove the trail is intact, take it elsewhere, and note
//! its head. They read the database directly, beside a running server.

use std::io::Write;
use std::process::ExitCode;

use super::AuditCommand;
use super::operator::open;
use crate::audit::replay::Replay;
use crate::audit::{BreakKind, ChainVerifier, checkpoint};
use crate::clock::Timestamp;
use crate::store::{self, Store, StoreError};

/// Exit code of `audit verify` for each kind of break (0 is intact, 1 could not check, 6 a
/// state row that disagrees with its events).
pub fn exit_code(kind: BreakKind) -> u8 {
    match kind {
        BreakKind::Changed => 3,
        BreakKind::Missing => 4,
        BreakKind::Reordered => 5,
        BreakKind::Unverifiable => 1,
    }
}

/// Exit code of `audit verify` when a request's row disagrees with its events.
pub const STATE_MISMATCH: u8 = 6;

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
            let filter = crate::domain::AuditFilter {
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
    let key = store.audit_key().clone();
    let mut verifier = ChainVerifier::new(Some(key.clone()));
    let mut replay = Replay::default();
    let mut broken = None;
    let mut head_seen = false;
    // The newest checkpoint's event, as found in the chain: (seq, hash).
    let checkpoint = checkpoint::newest(&store.checkpoint_path(), &key);
    let checkpoint = match checkpoint {
        Ok(c) => c,
        Err(e @ checkpoint::CheckpointError::Read { .. }) => return Err(e.to_string()),
        Err(e) => {
            println!("audit checkpoints broken (changed): {e}");
            return Ok(ExitCode::from(exit_code(BreakKind::Changed)));
        }
    };
    let mut at_checkpoint = None;
    store
        .read_blocking(|c| {
            store::audit::for_each(c, |e| match verifier.push(&e) {
                Ok(()) => {
                    head_seen |= expect_head == Some(e.hash.as_str());
                    if checkpoint.as_ref().is_some_and(|k| k.seq == e.seq) {
                        at_checkpoint = Some(e.hash.clone());
                    }
                    replay.push(&e);
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
    let keyed_from = verifier.keyed_from();
    let (count, head) = verifier.finish();
    if let Some(expected) = expect_head
        && !head_seen
    {
        println!(
            "audit chain broken after seq {count} (missing): the noted head {expected} is not in the chain (events cut off its end?)"
        );
        return Ok(ExitCode::from(exit_code(BreakKind::Missing)));
    }
    match &checkpoint {
        Some(c) if count < c.seq => {
            println!(
                "audit chain broken after seq {count} (missing): the checkpoint of {} saw {} events (events cut off its end?)",
                Timestamp(c.at),
                c.seq
            );
            return Ok(ExitCode::from(exit_code(BreakKind::Missing)));
        }
        Some(c)
            if at_checkpoint.as_deref() != Some(c.head.as_str())
                || (c.keyed_from.is_some() && c.keyed_from != keyed_from) =>
        {
            println!(
                "audit chain broken at seq {} (changed): it is not the event checkpointed at {} (chain rebuilt?)",
                c.seq,
                Timestamp(c.at)
            );
            return Ok(ExitCode::from(exit_code(BreakKind::Changed)));
        }
        None if keyed_from.is_some() => {
            println!(
                "audit chain unanchored (missing): no checkpoint at {}, so events cut off its end cannot be ruled out (the file was removed?)",
                store.checkpoint_path().display()
            );
            return Ok(ExitCode::from(exit_code(BreakKind::Missing)));
        }
        _ => {}
    }
    let mut mismatches = Vec::new();
    store
        .read_blocking(|c| {
            store::permissions::for_each_state(c, |row| {
                if let Some(m) = replay.check(&row) {
                    mismatches.push(m);
                }
            })
        })
        .map_err(|e| e.to_string())?;
    mismatches.extend(replay.missing_rows());
    if !mismatches.is_empty() {
        for m in mismatches.iter().take(20) {
            println!(
                "request {} disagrees with its audit events: {}",
                m.request_id, m.why
            );
        }
        println!(
            "audit state broken: {} request(s) differ from what their events say (rows edited behind the service's back?)",
            mismatches.len()
        );
        return Ok(ExitCode::from(STATE_MISMATCH));
    }
    let anchored = match &checkpoint {
        Some(c) => format!("; checkpoint at seq {} of {} holds", c.seq, Timestamp(c.at)),
        None => String::new(),
    };
    println!(
        "audit chain ok: {count} events, head {head}{anchored}; every request matches its events"
    );
    Ok(ExitCode::SUCCESS)
}

fn export(store: &Store, filter: &crate::domain::AuditFilter) -> Result<ExitCode, String> {
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
