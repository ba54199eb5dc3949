//! The audit trail for humans and the operator: pages of events, export, the head, the full
//! check (`audit verify`), signed checkpoints, and backups. Reads go straight to the database,
//! beside a running server.

use std::path::{Path, PathBuf};

use super::Service;
use crate::audit::checkpoint::{self, Checkpoint};
use crate::audit::replay::Replay;
use crate::audit::{BreakKind, ChainVerifier, NewEvent, StoredEvent};
use crate::clock::Timestamp;
use crate::domain::{Actor, AuditFilter};
use crate::error::{Error, Result};
use crate::store::audit as audit_sql;
use crate::store::{Store, StoreError, off_async};

/// Exit code of `audit verify` for each kind of break (0 is intact, 1 could not check, 6 a
/// state row that disagrees with its events).
pub(crate) fn exit_code(kind: BreakKind) -> u8 {
    match kind {
        BreakKind::Changed => 3,
        BreakKind::Missing => 4,
        BreakKind::Reordered => 5,
        BreakKind::Unverifiable => 1,
    }
}

/// Exit code of `audit verify` when a request's row disagrees with its events.
pub(crate) const STATE_MISMATCH: u8 = 6;

/// What `audit verify` found: its exit code (0 intact; see [`exit_code`] and
/// [`STATE_MISMATCH`]) and the lines it prints.
#[derive(Debug)]
pub struct AuditCheck {
    pub exit: u8,
    pub lines: Vec<String>,
}

impl Service {
    /// One page of events, newest first, and the total matching.
    pub async fn audit_page(
        &self,
        filter: AuditFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<StoredEvent>, i64)> {
        self.store
            .read(move |c| audit_sql::page(c, &filter, offset, limit).map_err(Error::from))
            .await
    }

    /// The newest event: (seq, hash, time), `None` for an empty trail.
    pub async fn audit_head(&self) -> Result<Option<(i64, String, Timestamp)>> {
        self.store
            .read(|c| audit_sql::head(c).map_err(Error::from))
            .await
    }

    /// Hands every matching event to `f`, oldest first, until it returns `false`. Blocking: for
    /// the command line's export, which streams the whole trail.
    pub fn export_audit(
        &self,
        filter: &AuditFilter,
        f: impl FnMut(StoredEvent) -> bool,
    ) -> Result<()> {
        self.store
            .read_blocking(|c| audit_sql::for_each_matching(c, filter, f).map_err(Error::from))
    }

    /// Checks the whole trail: the chain, the newest checkpoint (and `expect_head`, a head noted
    /// earlier), and every request row against what its events say. Blocking: it reads the
    /// whole trail, for the command line.
    pub fn verify_audit(
        &self,
        expect_head: Option<&str>,
    ) -> std::result::Result<AuditCheck, String> {
        verify(&self.store, expect_head)
    }

    /// Audits, as of `at`, something that changes no record (a policy reload, say).
    pub async fn record_event(&self, event: NewEvent, at: Timestamp) -> Result<()> {
        self.store
            .write(move |tx| {
                audit_sql::append(tx, at, &event)
                    .map(drop)
                    .map_err(Error::from)
            })
            .await
    }

    /// Writes a signed checkpoint of the chain's head if it moved since this process last wrote
    /// one (to the checkpoint file and the log).
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>> {
        let (store, now) = (self.store.clone(), self.now());
        off_async(move || store.checkpoint(now).map_err(Error::from)).await
    }

    /// A fresh checkpoint, then the newest one on file (what Telegram sends its approvers).
    pub async fn newest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let (store, now) = (self.store.clone(), self.now());
        off_async(move || {
            store.checkpoint(now)?;
            checkpoint::newest(&store.checkpoint_path(), store.audit_key())
                .map_err(|e| Error::from(StoreError::Corrupt(e.to_string())))
        })
        .await
    }

    /// Writes a consistent copy of the database to `file` and its checkpoint beside it, and
    /// audits the backup; returns where the checkpoint went.
    pub async fn backup(&self, by: Actor, file: &Path) -> Result<PathBuf> {
        let (store, dest) = (self.store.clone(), file.to_owned());
        let anchor = off_async(move || store.backup_to(&dest).map_err(Error::from)).await?;
        let now = self.now();
        let ev = NewEvent::new(
            by,
            "backup.made",
            serde_json::json!({ "file": file.display().to_string() }),
        );
        self.store
            .write(move |tx| {
                audit_sql::append(tx, now, &ev)
                    .map(drop)
                    .map_err(Error::from)
            })
            .await?;
        Ok(anchor)
    }
}

fn verify(store: &Store, expect_head: Option<&str>) -> Result<AuditCheck, String> {
    let mut lines = Vec::new();
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
            lines.push(format!("audit checkpoints broken (changed): {e}"));
            return Ok(AuditCheck {
                exit: exit_code(BreakKind::Changed),
                lines,
            });
        }
    };
    let mut at_checkpoint = None;
    store
        .read_blocking(|c| {
            audit_sql::for_each(c, |e| match verifier.push(&e) {
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
                    .read_blocking(|c| audit_sql::seq_of_hash(c, &prev))
                    .map_err(|e: StoreError| e.to_string())?
            }
            None => None,
        };
        let b = b.refine(linked);
        lines.push(format!(
            "audit chain broken at seq {} ({}): {}",
            b.seq,
            b.kind.as_str(),
            b.why
        ));
        return Ok(AuditCheck {
            exit: exit_code(b.kind),
            lines,
        });
    }
    let keyed_from = verifier.keyed_from();
    let (count, head) = verifier.finish();
    if let Some(expected) = expect_head
        && !head_seen
    {
        lines.push(format!(
            "audit chain broken after seq {count} (missing): the noted head {expected} is not in the chain (events cut off its end?)"
        ));
        return Ok(AuditCheck {
            exit: exit_code(BreakKind::Missing),
            lines,
        });
    }
    match &checkpoint {
        Some(c) if count < c.seq => {
            lines.push(format!(
                "audit chain broken after seq {count} (missing): the checkpoint of {} saw {} events (events cut off its end?)",
                Timestamp(c.at),
                c.seq
            ));
            return Ok(AuditCheck {
                exit: exit_code(BreakKind::Missing),
                lines,
            });
        }
        Some(c)
            if at_checkpoint.as_deref() != Some(c.head.as_str())
                || (c.keyed_from.is_some() && c.keyed_from != keyed_from) =>
        {
            lines.push(format!(
                "audit chain broken at seq {} (changed): it is not the event checkpointed at {} (chain rebuilt?)",
                c.seq,
                Timestamp(c.at)
            ));
            return Ok(AuditCheck {
                exit: exit_code(BreakKind::Changed),
                lines,
            });
        }
        None if keyed_from.is_some() => {
            lines.push(format!(
                "audit chain unanchored (missing): no checkpoint at {}, so events cut off its end cannot be ruled out (the file was removed?)",
                store.checkpoint_path().display()
            ));
            return Ok(AuditCheck {
                exit: exit_code(BreakKind::Missing),
                lines,
            });
        }
        _ => {}
    }
    let mut mismatches = Vec::new();
    store
        .read_blocking(|c| {
            crate::store::permissions::for_each_state(c, |row| {
                if let Some(m) = replay.check(&row) {
                    mismatches.push(m);
                }
            })
        })
        .map_err(|e| e.to_string())?;
    mismatches.extend(replay.missing_rows());
    if !mismatches.is_empty() {
        for m in mismatches.iter().take(20) {
            lines.push(format!(
                "request {} disagrees with its audit events: {}",
                m.request_id, m.why
            ));
        }
        lines.push(format!(
            "audit state broken: {} request(s) differ from what their events say (rows edited behind the service's back?)",
            mismatches.len()
        ));
        return Ok(AuditCheck {
            exit: STATE_MISMATCH,
            lines,
        });
    }
    let anchored = match &checkpoint {
        Some(c) => format!("; checkpoint at seq {} of {} holds", c.seq, Timestamp(c.at)),
        None => String::new(),
    };
    lines.push(format!(
        "audit chain ok: {count} events, head {head}{anchored}; every request matches its events"
    ));
    Ok(AuditCheck { exit: 0, lines })
}
