//! Hot reload: keeps the policy in force in step with the policy file.
//!
//! The watcher task watches the file's parent directory (editors and Kubernetes config maps
//! replace a file by renaming another over it, which a watch on the file itself would miss),
//! waits until the directory has been quiet for the debounce interval, then calls [`reload`].
//! SIGHUP calls the same function at once. A reload parses the file into a brand-new policy, writes
//! `policy.reloaded` to the audit trail and only then swaps it in; a rejected, unreadable or
//! deleted file writes `policy.reload_rejected`, keeps the last good policy, logs the error with
//! its line and column, and shows it in `/health` until a valid file is in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::audit::NewEvent;
use crate::domain::Actor;
use crate::error::Error;
use crate::policy::live::{Attempt, ReloadFailure};
use crate::service::Service;

/// What made a reload happen; recorded in its audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The file or its directory changed.
    FileChange,
    /// The process received SIGHUP.
    Signal,
    /// Called directly (tests, future admin action).
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::FileChange => "file_change",
            Trigger::Signal => "sighup",
            Trigger::Manual => "manual",
        }
    }
}

/// What one reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The file holds the policy in force; nothing happened.
    Unchanged,
    /// A new policy is in force.
    Applied { version: String, previous: String },
    /// The file was refused; the last good policy stays in force.
    Rejected(ReloadFailure),
    /// The file is still the one refused last time (not reported again).
    StillRejected,
    /// The file is valid but its audit event could not be written, so it was not put in force.
    NotRecorded,
}

/// Reads the policy file again and puts it in force if it is valid. Never weakens anything on
/// error: whatever goes wrong, the last good policy stays.
pub async fn reload(svc: &Service, trigger: Trigger) -> Reload {
    let live = Arc::clone(svc.policy());
    let _gate = live.gate.lock().await;
    let now = svc.now();
    let reader = Arc::clone(&live);
    let attempt = match tokio::task::spawn_blocking(move || reader.attempt(now)).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "policy reload failed; keeping the last good policy");
            return Reload::Unchanged;
        }
    };
    let previous = live.current().policy.version().to_owned();
    let file = live.path().display().to_string();
    match attempt {
        Attempt::Unchanged => {
            tracing::debug!(version = %previous, "policy file unchanged");
            Reload::Unchanged
        }
        Attempt::StillInvalid => {
            tracing::warn!(path = %file, kept = %previous, "policy file is still invalid; the last good policy stays in force");
            Reload::StillRejected
        }
        Attempt::Valid(policy) => {
            let version = policy.version().to_owned();
            let shadowed: Vec<_> = policy
                .shadowed_rules()
                .into_iter()
                .map(|(rule, by)| json!({ "rule": rule, "by": by }))
                .collect();
            let details = json!({
                "file": file,
                "version": version,
                "previousVersion": previous,
                "rules": policy.rules().len(),
                "shadowedRules": shadowed,
                "trigger": trigger.as_str(),
            });
            if let Err(e) = record(svc, "policy.reloaded", details, now).await {
                tracing::error!(error = %e, path = %file, "cannot record the policy reload in the audit trail; the last good policy stays in force");
                live.reject(ReloadFailure {
                    at: now,
                    version: Some(version),
                    message: "the new policy could not be recorded in the audit trail, so it was not put in force".to_owned(),
                    problems: Vec::new(),
                });
                crate::metrics::record_policy_reload("not_recorded");
                return Reload::NotRecorded;
            }
            for (rule, by) in policy.shadowed_rules() {
                tracing::warn!(rule = %rule, by = %by, "policy rule can never match");
            }
            tracing::info!(version = %version, previous = %previous, rules = policy.rules().len(), trigger = trigger.as_str(), "policy reloaded");
            live.install(policy, now);
            crate::metrics::record_policy_reload("applied");
            Reload::Applied { version, previous }
        }
        Attempt::Invalid(failure) => {
            tracing::error!(path = %file, kept = %previous, error = %failure.message, "policy reload rejected; the last good policy stays in force");
            crate::metrics::record_policy_reload("rejected");
            let details = json!({
                "file": file,
                "version": failure.version,
                "keptVersion": previous,
                "error": failure.message,
                "problems": failure.problems,
                "trigger": trigger.as_str(),
            });
            if let Err(e) = record(svc, "policy.reload_rejected", details, now).await {
                tracing::error!(error = %e, "cannot record the rejected policy reload in the audit trail");
            }
            live.reject(failure.clone());
            Reload::Rejected(failure)
        }
    }
}

/// Audits the reload as of `now`, the instant it was attempted (the same one `/health` shows).
async fn record(
    svc: &Service,
    kind: &'static str,
    details: serde_json::Value,
    now: crate::clock::Timestamp,
) -> Result<(), Error> {
    svc.record_event(NewEvent::new(Actor::System, kind, details), now)
        .await
}

/// Starts the watcher task: file changes (debounced) and SIGHUP both call [`reload`].
/// SIGHUP is registered before this returns, so a signal sent once the server answers is never
/// lost to the default action (which would end the process).
pub(crate) fn spawn(
    svc: Arc<Service>,
    debounce: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let hup = hangup_signal();
    tokio::spawn(run(svc, debounce, cancel, hup))
}

async fn run(svc: Arc<Service>, debounce: Duration, cancel: CancellationToken, mut hup: Hangup) {
    let (tx, mut changes) = mpsc::unbounded_channel();
    // Both kept for the life of the task: the watcher (dropping it stops the watch) and a
    // sender, so `recv` waits rather than ends if the watcher could not start.
    let _watcher = watch_dir(svc.policy().path(), tx.clone());
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            Some(()) = changes.recv() => {
                if !quiet_for(&mut changes, debounce, &cancel).await {
                    return;
                }
                reload(&svc, Trigger::FileChange).await;
            }
            () = next_hangup(&mut hup) => {
                tracing::info!("SIGHUP received, reloading the policy");
                reload(&svc, Trigger::Signal).await;
            }
        }
    }
}

/// Waits until no change has arrived for `debounce`; false if cancelled meanwhile.
async fn quiet_for(
    changes: &mut mpsc::UnboundedReceiver<()>,
    debounce: Duration,
    cancel: &CancellationToken,
) -> bool {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return false,
            more = tokio::time::timeout(debounce, changes.recv()) => match more {
                Ok(Some(())) => continue,
                Ok(None) | Err(_) => return true,
            },
        }
    }
}

/// Watches the directory holding `file`, sending `()` for each event that may concern it.
fn watch_dir(file: &Path, tx: mpsc::UnboundedSender<()>) -> Option<RecommendedWatcher> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = file.file_name().map(ToOwned::to_owned);
    let handler = move |res: notify::Result<Event>| match res {
        Ok(event) if concerns(&event, name.as_deref()) => {
            let _ = tx.send(());
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "policy file watch error"),
    };
    let watched = notify::recommended_watcher(handler)
        .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
    match watched {
        Ok(w) => {
            tracing::debug!(dir = %dir.display(), "watching for policy changes");
            Some(w)
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the policy directory; send SIGHUP to reload the policy");
            None
        }
    }
}

/// Whether an event in the directory may have changed the policy file: anything on the file
/// itself, or on a `..`-prefixed entry (the symlinks a Kubernetes config map swaps). Reads and
/// opens are ignored, or our own reload would trigger the next one.
fn concerns(event: &Event, name: Option<&std::ffi::OsStr>) -> bool {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    event.paths.iter().any(|p| {
        let file = p.file_name();
        file == name
            || file
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(".."))
    })
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

async fn next_hangup(hup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(signal) = hup {
        if signal.recv().await.is_some() {
            return;
        }
        *hup = None;
    }
    #[cfg(not(unix))]
    let _ = hup;
    std::future::pending::<()>().await;
}
