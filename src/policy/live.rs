//! The policy in force. Requests take an `Arc` snapshot, so each is decided entirely by one
//! policy version even while a new file is being loaded.
//!
//! Reloading is two steps so that it cannot weaken anything by accident: [`LivePolicy::attempt`]
//! reads and parses the file into a brand-new policy without touching the one in force, and
//! [`LivePolicy::install`] swaps it in (or [`LivePolicy::reject`] records why not). The caller
//! (`policy::watch`) writes the audit event in between, so a reload that cannot be recorded does
//! not happen. A rejected, unreadable or deleted file keeps the last good policy in force and
//! is reported through [`LivePolicy::status`] (shown by `/health` and the web policy page).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::clock::Timestamp;
use crate::policy::{self, Policy, PolicyError, Problem};
use crate::secret::sha256_hex;

/// Where the policy in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The operator's YAML file.
    File(PathBuf),
    /// No file existed: the built-in "everything requires approval" rule.
    Builtin,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Builtin => f.write_str("builtin"),
        }
    }
}

/// A parsed policy and when it was loaded.
#[derive(Debug)]
pub struct Loaded {
    pub policy: Policy,
    pub source: Source,
    pub loaded_at: Timestamp,
}

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {} bytes", policy::MAX_POLICY_BYTES)]
    TooLarge { path: PathBuf },
    #[error("{path}: {error}")]
    Invalid { path: PathBuf, error: PolicyError },
}

impl LoadError {
    /// The located problems of an invalid file (empty for read errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            LoadError::Invalid { error, .. } => error.problems(),
            _ => &[],
        }
    }
}

/// Reads a policy file, refusing one larger than [`policy::MAX_POLICY_BYTES`].
pub(crate) fn read_file(path: &Path) -> Result<String, LoadError> {
    let read_err = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > u64::try_from(policy::MAX_POLICY_BYTES).unwrap_or(u64::MAX) {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
        });
    }
    std::fs::read_to_string(path).map_err(read_err)
}

/// Reads and parses a policy file.
pub(crate) fn load_file(path: &Path) -> Result<Policy, LoadError> {
    let text = read_file(path)?;
    policy::parse(&text).map_err(|error| LoadError::Invalid {
        path: path.to_owned(),
        error,
    })
}

/// Why the last reload was refused. Cleared by the next successful one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReloadFailure {
    /// When the reload was attempted.
    pub at: Timestamp,
    /// SHA-256 of the rejected file; `None` when it could not be read (missing, too large…).
    pub version: Option<String>,
    /// The whole error, one problem per line, each with its line and column.
    pub message: String,
    /// The located problems (empty when the file could not be read).
    pub problems: Vec<Problem>,
}

/// What `/health` and the web policy page show.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// SHA-256 of the policy in force.
    pub version: String,
    /// The file it came from, or `builtin`.
    pub source: String,
    /// The file that is watched.
    pub path: String,
    /// How many rules the policy in force has.
    pub rules: usize,
    /// When the policy in force was loaded.
    pub loaded_at: Timestamp,
    /// Why the last reload was refused, if it was; `None` when the file on disk is in force.
    pub last_reload_error: Option<ReloadFailure>,
}

/// The result of reading the policy file again, before anything is changed.
#[derive(Debug)]
pub enum Attempt {
    /// The file holds the policy already in force and nothing was wrong: nothing to do.
    Unchanged,
    /// The file is valid: install it (it may be the version in force again after a rejection).
    Valid(Policy),
    /// The file cannot be used; the last good policy stays in force.
    Invalid(ReloadFailure),
    /// The same rejection as last time (already reported).
    StillInvalid,
}

/// The shared, swappable policy.
#[derive(Debug)]
pub struct LivePolicy {
    path: PathBuf,
    current: RwLock<Arc<Loaded>>,
    last_error: RwLock<Option<ReloadFailure>>,
    /// Held for a whole reload (attempt, audit, install), so two triggers cannot interleave.
    pub(crate) gate: tokio::sync::Mutex<()>,
}

impl LivePolicy {
    /// Loads `path` for start-up. A missing file means the built-in rule; an invalid one is an error.
    pub fn load_at_start(path: &Path, now: Timestamp) -> Result<LivePolicy, LoadError> {
        let (policy, source) = if path.exists() {
            (load_file(path)?, Source::File(path.to_owned()))
        } else {
            tracing::warn!(
                path = %path.display(),
                "no policy file: every request requires human approval; \
                 start from policies.example.yaml (cp policies.example.yaml policies.yaml)"
            );
            (Policy::builtin_default(), Source::Builtin)
        };
        tracing::debug!(version = %policy.version(), rules = policy.rules().len(), "policy loaded");
        for (shadowed, by) in policy.shadowed_rules() {
            tracing::warn!(rule = %shadowed, by = %by, "policy rule can never match");
        }
        Ok(LivePolicy {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(Loaded {
                policy,
                source,
                loaded_at: now,
            })),
            last_error: RwLock::new(None),
            gate: tokio::sync::Mutex::new(()),
        })
    }

    /// The built-in rule alone, watching no file (the command line's offline service).
    pub fn builtin(now: Timestamp) -> LivePolicy {
        LivePolicy {
            path: PathBuf::new(),
            current: RwLock::new(Arc::new(Loaded {
                policy: Policy::builtin_default(),
                source: Source::Builtin,
                loaded_at: now,
            })),
            last_error: RwLock::new(None),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    /// The watched policy file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Why the last reload was refused, if the file on disk is not the policy in force.
    pub fn last_error(&self) -> Option<ReloadFailure> {
        match self.last_error.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Everything a status page shows, in one consistent read.
    pub fn status(&self) -> PolicyStatus {
        let loaded = self.current();
        PolicyStatus {
            version: loaded.policy.version().to_owned(),
            source: loaded.source.to_string(),
            path: self.path.display().to_string(),
            rules: loaded.policy.rules().len(),
            loaded_at: loaded.loaded_at,
            last_reload_error: self.last_error(),
        }
    }

    /// Reads and parses the file again without changing anything.
    pub fn attempt(&self, now: Timestamp) -> Attempt {
        let current = self.current();
        let failure = |version: Option<String>, err: &LoadError| ReloadFailure {
            at: now,
            version,
            message: err.to_string(),
            problems: err.problems().to_vec(),
        };
        let text = match read_file(&self.path) {
            Ok(text) => text,
            Err(LoadError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                if current.source == Source::Builtin {
                    // Never had a file: the built-in rule is what the operator chose.
                    return Attempt::Unchanged;
                }
                return self.invalid(ReloadFailure {
                    at: now,
                    version: None,
                    message: format!(
                        "{} is missing; the last good policy (version {}) stays in force \
                         until a valid file is put back",
                        self.path.display(),
                        current.policy.version()
                    ),
                    problems: Vec::new(),
                });
            }
            Err(e) => return self.invalid(failure(None, &e)),
        };
        let version = sha256_hex(text.as_bytes());
        if version == current.policy.version()
            && current.source != Source::Builtin
            && self.last_error().is_none()
        {
            return Attempt::Unchanged;
        }
        match policy::parse(&text) {
            Ok(policy) => Attempt::Valid(policy),
            Err(error) => {
                let err = LoadError::Invalid {
                    path: self.path.clone(),
                    error,
                };
                self.invalid(failure(Some(version), &err))
            }
        }
    }

    fn invalid(&self, failure: ReloadFailure) -> Attempt {
        match self.last_error() {
            Some(last) if last.version == failure.version && last.message == failure.message => {
                Attempt::StillInvalid
            }
            _ => Attempt::Invalid(failure),
        }
    }

    /// Puts `policy` in force (read from the watched file) and clears any reload error.
    pub fn install(&self, policy: Policy, now: Timestamp) {
        let next = Arc::new(Loaded {
            policy,
            source: Source::File(self.path.clone()),
            loaded_at: now,
        });
        match self.current.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        self.set_error(None);
    }

    /// Records why a reload was refused; the policy in force does not change.
    pub fn reject(&self, failure: ReloadFailure) {
        self.set_error(Some(failure));
    }

    fn set_error(&self, value: Option<ReloadFailure>) {
        match self.last_error.write() {
            Ok(mut guard) => *guard = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const GOOD: &str = "policies:\n  - name: a\n    conditions: {}\n    action: deny\n";
    const OTHER: &str = "policies:\n  - name: b\n    conditions: {}\n    action: auto_approve\n";

    #[test]
    fn attempt_never_changes_the_policy_and_reports_each_rejection_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let live = LivePolicy::load_at_start(&path, Timestamp(1)).unwrap();
        let v1 = live.current().policy.version().to_owned();
        assert!(matches!(live.attempt(Timestamp(2)), Attempt::Unchanged));

        std::fs::write(&path, "policies:\n  - name: a\n    conditons: {}\n").unwrap();
        let Attempt::Invalid(failure) = live.attempt(Timestamp(3)) else {
            panic!("expected a rejection")
        };
        assert_eq!(failure.problems[0].line, Some(3));
        assert!(failure.message.contains("line 3, column 5"), "{failure:?}");
        assert_eq!(live.current().policy.version(), v1);
        live.reject(failure);
        assert!(matches!(live.attempt(Timestamp(4)), Attempt::StillInvalid));
        assert!(live.status().last_reload_error.is_some());

        // Back to the version in force: valid again, and installing clears the error.
        std::fs::write(&path, GOOD).unwrap();
        let Attempt::Valid(p) = live.attempt(Timestamp(5)) else {
            panic!("expected valid")
        };
        live.install(p, Timestamp(5));
        assert!(live.last_error().is_none());

        std::fs::write(&path, OTHER).unwrap();
        let Attempt::Valid(p) = live.attempt(Timestamp(6)) else {
            panic!("expected valid")
        };
        live.install(p, Timestamp(6));
        assert_ne!(live.current().policy.version(), v1);
        assert_eq!(live.status().loaded_at, Timestamp(6));

        std::fs::remove_file(&path).unwrap();
        let Attempt::Invalid(failure) = live.attempt(Timestamp(7)) else {
            panic!("a deleted file is reported")
        };
        assert!(failure.message.contains("missing"), "{failure:?}");
        assert_eq!(failure.version, None);
    }

    #[test]
    fn without_a_file_the_builtin_rule_stays_quietly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.yaml");
        let live = LivePolicy::load_at_start(&path, Timestamp(1)).unwrap();
        assert_eq!(live.current().source, Source::Builtin);
        assert!(matches!(live.attempt(Timestamp(2)), Attempt::Unchanged));
        std::fs::write(&path, GOOD).unwrap();
        assert!(matches!(live.attempt(Timestamp(3)), Attempt::Valid(_)));
    }
}
