//! In-process fan-out of "this request changed" events, so a waiting agent, a web page or the
//! Telegram sender learns of a decision within milliseconds of its commit.
//!
//! Listeners subscribe *before* reading the database and re-read after any wake-up, so a change
//! that commits between the read and the wait is never missed. Events carry no secrets.

use tokio::sync::broadcast;

use crate::domain::{RequestId, Status};

/// A request reached a new status (published after the change committed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub id: RequestId,
    pub status: Status,
}

/// The fan-out point. Cloning shares the same channel.
#[derive(Clone)]
pub(crate) struct Hub {
    tx: broadcast::Sender<Change>,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub::new()
    }
}

impl Hub {
    /// A hub that buffers up to 4096 changes per slow listener before it must re-read.
    pub(crate) fn new() -> Hub {
        Hub {
            tx: broadcast::channel(4096).0,
        }
    }

    /// Tells every listener; having none is fine.
    pub(crate) fn publish(&self, id: &RequestId, status: Status) {
        let _ = self.tx.send(Change {
            id: id.clone(),
            status,
        });
    }

    /// How many listeners are subscribed right now (tests wait on it before deciding, so a
    /// waiting agent is woken rather than reading the decision when it starts).
    pub(crate) fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A listener for changes published from now on.
    pub(crate) fn subscribe(&self) -> Listener {
        Listener {
            rx: self.tx.subscribe(),
        }
    }
}

/// One subscriber's view of the hub.
pub struct Listener {
    rx: broadcast::Receiver<Change>,
}

impl Listener {
    /// Returns when `id` changes, or when changes may have been missed (the caller re-reads).
    pub async fn changed(&mut self, id: &RequestId) {
        loop {
            match self.rx.recv().await {
                Ok(change) if &change.id == id => return,
                Ok(_) => continue,
                Err(
                    broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed,
                ) => {
                    return;
                }
            }
        }
    }

    /// The next change of any request; `None` when changes may have been missed (the caller
    /// re-reads everything it follows).
    pub async fn next(&mut self) -> Option<Change> {
        match self.rx.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            // Every sender is gone, so nothing will ever change again.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn listener_wakes_only_for_its_request() {
        let hub = Hub::new();
        let mut l = hub.subscribe();
        let a = RequestId("a".into());
        let b = RequestId("b".into());
        hub.publish(&b, Status::Approved);
        let waited = tokio::time::timeout(Duration::from_millis(50), l.changed(&a)).await;
        assert!(
            waited.is_err(),
            "a change of b must not wake a listener for a"
        );
        hub.publish(&a, Status::Denied);
        tokio::time::timeout(Duration::from_secs(1), l.changed(&a))
            .await
            .unwrap();
    }
}
