//! The policy in force. Requests take an `Arc` snapshot, so each is decided entirely by one
//! policy version even while a new file is being loaded.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::clock::Timestamp;
use crate::policy::{self, Policy, PolicyError};

/// Where the policy in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The operator's YAML file.
    File(PathBuf),
    /// No file existed: the built-in "everything requires approval" rule.
    Builtin,
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

/// Reads and parses a policy file.
pub fn load_file(path: &Path) -> Result<Policy, LoadError> {
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
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    policy::parse(&text).map_err(|error| LoadError::Invalid {
        path: path.to_owned(),
        error,
    })
}

/// The shared, swappable policy.
#[derive(Debug)]
pub struct LivePolicy {
    current: RwLock<Arc<Loaded>>,
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
        tracing::info!(version = %policy.version(), rules = policy.rules().len(), "policy loaded");
        Ok(LivePolicy {
            current: RwLock::new(Arc::new(Loaded {
                policy,
                source,
                loaded_at: now,
            })),
        })
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}
