//! Signed checkpoints of the audit chain, kept where the database does not hold them: an
//! append-only file beside it (`audit.checkpoints`, one JSON object a line, mode 0600) and the
//! log. Each says "at `at`, the chain had `seq` events, the last with hash `head`, keyed from
//! `keyedFrom`", signed with the audit key. `audit verify` checks the chain against the newest
//! one, so a tail cut off or a chain rebuilt from scratch is found without a head noted by hand.
//!
//! Events appended after the newest checkpoint are covered by the next one: the server writes
//! one at start, every `checkpoint interval` while the chain grows, and at shutdown; the
//! command-line tools write one after each change they make.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::key::{AuditKey, Purpose};
use crate::clock::Timestamp;
use crate::secret::hashes_equal;

/// The checkpoint file's name inside the data directory.
pub(crate) const FILE: &str = "audit.checkpoints";

/// Where the checkpoints of the database in `data_dir` are kept.
pub(crate) fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// One checkpoint line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    /// How many events the chain had (the last one's `seq`).
    pub seq: i64,
    /// The last event's hash.
    pub head: String,
    /// When the checkpoint was written (Unix milliseconds).
    pub at: i64,
    /// The first keyed event's `seq` (`None`: none was keyed yet).
    pub keyed_from: Option<i64>,
    /// HMAC-SHA-256 of the fields above with the audit key.
    pub mac: String,
}

impl Checkpoint {
    /// A signed checkpoint.
    pub fn new(
        key: &AuditKey,
        seq: i64,
        head: &str,
        at: Timestamp,
        keyed_from: Option<i64>,
    ) -> Self {
        let mut c = Checkpoint {
            seq,
            head: head.to_owned(),
            at: at.0,
            keyed_from,
            mac: String::new(),
        };
        c.mac = c.expected_mac(key);
        c
    }

    fn expected_mac(&self, key: &AuditKey) -> String {
        let keyed_from = self
            .keyed_from
            .map_or_else(|| "-".to_owned(), |k| k.to_string());
        let body = format!("{}\n{}\n{}\n{keyed_from}", self.seq, self.head, self.at);
        key.mac(Purpose::Checkpoint, body.as_bytes())
    }

    /// Whether the signature is the audit key's.
    pub fn is_signed_by(&self, key: &AuditKey) -> bool {
        hashes_equal(&self.expected_mac(key), &self.mac)
    }
}

/// Appends `checkpoint` as one line (one `write`, so lines from two processes never mix), creating
/// the file with mode 0600 if needed, and syncs it.
pub(crate) fn append(file: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let mut line = serde_json::to_string(checkpoint).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = crate::store::open_private_append(file)?;
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// Why the checkpoints cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckpointError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: not a checkpoint ({why})")]
    Malformed {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("{path}, line {line}: the signature is not the audit key's (forged or edited)")]
    Forged { path: PathBuf, line: usize },
}

/// The newest checkpoint in `file` (the one with the highest `seq`), every line's signature
/// checked; `None` when the file does not exist or is empty.
pub(crate) fn newest(file: &Path, key: &AuditKey) -> Result<Option<Checkpoint>, CheckpointError> {
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CheckpointError::Read {
                path: file.to_owned(),
                source,
            });
        }
    };
    let mut best: Option<Checkpoint> = None;
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|source| CheckpointError::Read {
            path: file.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let c: Checkpoint =
            serde_json::from_str(&line).map_err(|e| CheckpointError::Malformed {
                path: file.to_owned(),
                line: n + 1,
                why: e.to_string(),
            })?;
        if !c.is_signed_by(key) {
            return Err(CheckpointError::Forged {
                path: file.to_owned(),
                line: n + 1,
            });
        }
        if best.as_ref().is_none_or(|b| c.seq >= b.seq) {
            best = Some(c);
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_forgeries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        let key = AuditKey::from_hex(&"07".repeat(32)).unwrap();
        assert_eq!(newest(&file, &key).unwrap(), None);
        let first = Checkpoint::new(&key, 3, &"a".repeat(64), Timestamp(10), None);
        let second = Checkpoint::new(&key, 9, &"b".repeat(64), Timestamp(20), Some(4));
        append(&file, &first).unwrap();
        append(&file, &second).unwrap();
        assert_eq!(newest(&file, &key).unwrap(), Some(second.clone()));

        let mut forged = second;
        forged.seq = 2;
        append(&file, &forged).unwrap();
        let err = newest(&file, &key).unwrap_err();
        assert!(
            matches!(err, CheckpointError::Forged { line: 3, .. }),
            "{err}"
        );
        let other = AuditKey::from_hex(&"08".repeat(32)).unwrap();
        assert!(matches!(
            newest(&file, &other),
            Err(CheckpointError::Forged { line: 1, .. })
        ));
    }
}
