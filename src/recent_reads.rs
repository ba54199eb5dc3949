//! Requests that `verify` read recently, with their owner's credentials, so a service that checks
//! the same token again and again does not pay a SQLite read for each check.
//!
//! A remembered read answers only while both hold:
//! - **no write has committed through this process's store since it was read** — any write, to
//!   any row ([`Store::write_generation`](crate::store::Store::write_generation) has not moved).
//!   Requests and agents change only inside a write transaction, so a use, a revocation or a
//!   decision made by this server is seen by the very next `verify`;
//! - **it was read less than [`LEASE`] ago.** That bounds what another process writing the same
//!   database (the command line beside a running server) can change unseen. A command whose
//!   change a running server must honour at once waits [`LEASE`] after its commit before it
//!   reports done (`agent revoke` does), so by the time it returns no server answers from a read
//!   taken before its commit.
//!
//! Under a steady stream of writes nothing stays remembered for long, and `verify` reads SQLite as
//! before; the saving is for the read-mostly moments when a protected service checks tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Longest a read is trusted without reading again.
pub const LEASE: Duration = Duration::from_millis(200);

/// Most reads remembered; a full table first drops what can no longer answer, then starts over.
const CAPACITY: usize = 4096;

struct Entry<V> {
    read: Arc<V>,
    generation: u64,
    read_at: Instant,
}

impl<V> Entry<V> {
    fn answers(&self, generation: u64, now: Instant) -> bool {
        self.generation == generation && now.duration_since(self.read_at) < LEASE
    }
}

/// Recent reads by request id.
pub struct RecentReads<V> {
    by_id: Mutex<HashMap<String, Entry<V>>>,
}

impl<V> Default for RecentReads<V> {
    fn default() -> Self {
        RecentReads {
            by_id: Mutex::default(),
        }
    }
}

impl<V> RecentReads<V> {
    /// The read of `id` if it may still answer, given the store's current write generation.
    pub fn get(&self, id: &str, generation: u64) -> Option<Arc<V>> {
        let map = self.map();
        let entry = map.get(id)?;
        entry
            .answers(generation, Instant::now())
            .then(|| Arc::clone(&entry.read))
    }

    /// Remembers a read that started at `read_at`, when the write generation was `generation`
    /// (both taken before the read, so a write committed during it makes the entry stale).
    pub fn put(&self, id: &str, read: Arc<V>, generation: u64, read_at: Instant) {
        let mut map = self.map();
        if map.len() >= CAPACITY && !map.contains_key(id) {
            let now = Instant::now();
            map.retain(|_, e| e.answers(generation, now));
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        let entry = Entry {
            read,
            generation,
            read_at,
        };
        map.insert(id.to_owned(), entry);
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Entry<V>>> {
        // The map is always whole between statements; a panic elsewhere cannot break it.
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_answers_until_a_write_commits_or_its_lease_ends() {
        let recent = RecentReads::default();
        recent.put("r1", Arc::new("row"), 7, Instant::now());
        assert_eq!(recent.get("r1", 7).as_deref(), Some(&"row"));
        assert!(recent.get("r1", 8).is_none(), "a write committed since");
        assert!(recent.get("r2", 7).is_none());

        recent.put("r1", Arc::new("row"), 7, Instant::now() - LEASE);
        assert!(recent.get("r1", 7).is_none(), "read a lease ago");
    }

    #[test]
    fn a_full_table_keeps_only_reads_that_can_answer() {
        let recent = RecentReads::default();
        let stale = Instant::now() - LEASE;
        for i in 0..CAPACITY {
            let when = if i == 0 { Instant::now() } else { stale };
            recent.put(&format!("r{i}"), Arc::new(i), 1, when);
        }
        recent.put("new", Arc::new(0), 1, Instant::now());
        assert_eq!(recent.map().len(), 2);
        assert!(recent.get("r0", 1).is_some() && recent.get("new", 1).is_some());
    }
}
