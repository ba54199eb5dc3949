//! Requests read recently with their owner's credentials, so a service that checks the same
//! token again and again (`verify`) does not pay a SQLite read for each check.
//!
//! A remembered read answers only while both hold:
//! - **this process has not changed the request or any agent since.** The writing connection's
//!   update hook notes every row written to `permissions` (by rowid) and any write to `agents`;
//!   after each commit, and before the writers hear back, those reads are forgotten (all of them
//!   for an agent change). A read that was under way while a commit changed something is not
//!   remembered at all, since it may have seen the state before. Writes outside the writer
//!   thread (the unit tests' `Store::write_blocking`) forget everything.
//! - **it was read less than [`LEASE`] ago.** That bounds what another process writing the same
//!   database (the command line beside a running server) can change unseen. A command whose
//!   change a running server must honour at once waits [`LEASE`] after its commit before it
//!   reports done (`agent revoke` does), so once it returns no server answers from a read taken
//!   before its commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Longest a read is trusted without reading again.
pub const LEASE: Duration = Duration::from_millis(200);

/// Most reads remembered, and most bytes of their JSON (a request's scopes and context may be
/// 48 KiB together); past either, the table first drops what has lapsed, then starts over.
const CAPACITY: usize = 4096;
const WEIGHT_BUDGET: usize = 1 << 20;

/// Rows written by one transaction, as far as remembered reads are concerned.
#[derive(Default, Debug)]
pub(crate) struct Changes {
    requests: Vec<i64>,
    everything: bool,
}

impl Changes {
    /// Every remembered read is suspect (a write the update hook did not see).
    #[cfg(test)]
    pub(crate) fn everything() -> Changes {
        Changes {
            requests: Vec::new(),
            everything: true,
        }
    }

    /// Notes one row written, as SQLite's update hook reports it.
    pub(crate) fn note(&mut self, table: &str, rowid: i64) {
        match table {
            "permissions" => self.requests.push(rowid),
            // An agent's key or revocation is part of every read of its requests.
            "agents" => self.everything = true,
            _ => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.requests.is_empty() && !self.everything
    }
}

/// Where a missed read started: the commit count and the time, both taken before the read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadStart {
    commits: u64,
    at: Instant,
}

struct Entry<V> {
    read: Arc<V>,
    rowid: i64,
    weight: usize,
    at: Instant,
}

struct Inner<V> {
    by_id: HashMap<String, Entry<V>>,
    id_of: HashMap<i64, String>,
    /// Sum of the entries' weights.
    weight: usize,
    /// Commits that changed something remembered reads are made of.
    commits: u64,
}

impl<V> Inner<V> {
    /// Forgets the read of `id`, with its rowid mapping if that is still its own.
    fn remove(&mut self, id: &str) {
        if let Some(old) = self.by_id.remove(id) {
            self.weight -= old.weight;
            if self
                .id_of
                .get(&old.rowid)
                .is_some_and(|mapped| mapped == id)
            {
                self.id_of.remove(&old.rowid);
            }
        }
    }

    fn clear(&mut self) {
        self.by_id.clear();
        self.id_of.clear();
        self.weight = 0;
    }

    /// Keeps only the entries `keep` accepts.
    fn retain(&mut self, mut keep: impl FnMut(&Entry<V>) -> bool) {
        let gone: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, e)| !keep(e))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.remove(&id);
        }
    }
}

/// Recent reads by request id.
pub(crate) struct RecentReads<V> {
    inner: Mutex<Inner<V>>,
}

impl<V> Default for RecentReads<V> {
    fn default() -> Self {
        RecentReads {
            inner: Mutex::new(Inner {
                by_id: HashMap::new(),
                id_of: HashMap::new(),
                weight: 0,
                commits: 0,
            }),
        }
    }
}

impl<V> RecentReads<V> {
    /// The read of `id` if it may still answer; else where a fresh read starts.
    pub(crate) fn get(&self, id: &str) -> Result<Arc<V>, ReadStart> {
        let inner = self.lock();
        let now = Instant::now();
        match inner.by_id.get(id) {
            Some(e) if now.duration_since(e.at) < LEASE => Ok(Arc::clone(&e.read)),
            _ => Err(ReadStart {
                commits: inner.commits,
                at: now,
            }),
        }
    }

    /// Remembers a read of `id` (row `rowid`, costing `weight` bytes) begun at `start`, unless
    /// a commit changed something since then.
    pub(crate) fn put(&self, id: &str, rowid: i64, weight: usize, read: Arc<V>, start: ReadStart) {
        let mut inner = self.lock();
        if inner.commits != start.commits || weight > WEIGHT_BUDGET {
            return;
        }
        inner.remove(id);
        if inner.by_id.len() >= CAPACITY || inner.weight + weight > WEIGHT_BUDGET {
            let now = Instant::now();
            inner.retain(|e| now.duration_since(e.at) < LEASE);
            if inner.by_id.len() >= CAPACITY || inner.weight + weight > WEIGHT_BUDGET {
                inner.clear();
            }
        }
        // Rowids stay put (nothing VACUUMs the live database); should one ever name another
        // request, that request's read goes, since its row's writes could no longer find it.
        if let Some(other) = inner.id_of.insert(rowid, id.to_owned()) {
            inner.remove(&other);
        }
        inner.weight += weight;
        let entry = Entry {
            read,
            rowid,
            weight,
            at: start.at,
        };
        inner.by_id.insert(id.to_owned(), entry);
    }

    /// A transaction that made `changes` has committed (or failed, which may have changed as
    /// much): forgets what it touched. Called before its writers hear back.
    pub(crate) fn committed(&self, changes: Changes) {
        if changes.is_empty() {
            return;
        }
        let mut inner = self.lock();
        inner.commits += 1;
        if changes.everything {
            inner.clear();
            return;
        }
        for rowid in changes.requests {
            if let Some(id) = inner.id_of.get(&rowid).cloned() {
                inner.remove(&id);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // The maps are whole between statements; a panic elsewhere cannot break them.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(table: &str, rowid: i64) -> Changes {
        let mut c = Changes::default();
        c.note(table, rowid);
        c
    }

    fn remember<V: std::fmt::Debug>(recent: &RecentReads<V>, id: &str, rowid: i64, read: V) {
        // Where a read starts does not depend on the id; "-" is never remembered here.
        let start = recent.get("-").unwrap_err();
        recent.put(id, rowid, 10, Arc::new(read), start);
    }

    #[test]
    fn a_read_answers_until_its_row_or_an_agent_is_written() {
        let recent = RecentReads::default();
        remember(&recent, "r1", 1, "row");
        remember(&recent, "r2", 2, "row");
        assert_eq!(recent.get("r1").ok().as_deref(), Some(&"row"));

        recent.committed(changes("audit_events", 1));
        recent.committed(changes("permissions", 3));
        assert!(
            recent.get("r1").is_ok() && recent.get("r2").is_ok(),
            "others' rows"
        );
        recent.committed(changes("permissions", 1));
        assert!(recent.get("r1").is_err(), "its row was written");
        assert!(recent.get("r2").is_ok());
        recent.committed(changes("agents", 7));
        assert!(recent.get("r2").is_err(), "an agent was written");
        remember(&recent, "r2", 2, "row");
        recent.committed(Changes::everything());
        assert!(recent.get("r2").is_err());
    }

    #[test]
    fn a_read_during_a_commit_is_not_remembered() {
        let recent = RecentReads::default();
        let start = recent.get("r1").unwrap_err();
        recent.committed(changes("permissions", 9));
        recent.put("r1", 1, 10, Arc::new("maybe stale"), start);
        assert!(recent.get("r1").is_err());
        // A commit that touched nothing remembered does not count.
        let start = recent.get("r1").unwrap_err();
        recent.committed(changes("sessions", 9));
        recent.put("r1", 1, 10, Arc::new("row"), start);
        assert!(recent.get("r1").is_ok());
    }

    #[test]
    fn a_read_lapses_after_its_lease() {
        let recent = RecentReads::default();
        let mut start = recent.get("r1").unwrap_err();
        start.at -= LEASE;
        recent.put("r1", 1, 10, Arc::new("row"), start);
        assert!(recent.get("r1").is_err());
    }

    #[test]
    fn a_full_table_keeps_only_reads_that_can_answer() {
        let recent = RecentReads::default();
        for i in 0..CAPACITY {
            let mut start = recent.get("x").unwrap_err();
            if i > 0 {
                start.at -= LEASE;
            }
            recent.put(&format!("r{i}"), i as i64, 10, Arc::new(i), start);
        }
        remember(&recent, "new", -1, 0);
        let inner = recent.lock();
        assert_eq!(
            (inner.by_id.len(), inner.id_of.len(), inner.weight),
            (2, 2, 20)
        );
        drop(inner);
        assert!(recent.get("r0").is_ok() && recent.get("new").is_ok());
    }

    #[test]
    fn remembered_json_stays_within_its_budget() {
        let recent = RecentReads::default();
        let big = WEIGHT_BUDGET / 4;
        for i in 0..10 {
            let start = recent.get("x").unwrap_err();
            recent.put(&format!("r{i}"), i, big, Arc::new(i), start);
            assert!(recent.lock().weight <= WEIGHT_BUDGET);
        }
        assert!(recent.get("r9").is_ok(), "the newest read is kept");
        let start = recent.get("huge").unwrap_err();
        recent.put("huge", 99, WEIGHT_BUDGET + 1, Arc::new(0), start);
        assert!(recent.get("huge").is_err(), "never remembered");

        recent.committed(Changes::everything());
        let inner = recent.lock();
        assert_eq!(
            (inner.by_id.len(), inner.id_of.len(), inner.weight),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_rowid_names_one_remembered_read() {
        let recent = RecentReads::default();
        remember(&recent, "r1", 1, "row");
        remember(&recent, "r1", 2, "row");
        remember(&recent, "r3", 1, "row");
        remember(&recent, "r4", 2, "row");
        assert!(recent.get("r1").is_err(), "its rowid now names r4");
        recent.committed(changes("permissions", 1));
        recent.committed(changes("permissions", 2));
        assert!(recent.get("r3").is_err() && recent.get("r4").is_err());
        let inner = recent.lock();
        assert_eq!(
            (inner.by_id.len(), inner.id_of.len(), inner.weight),
            (0, 0, 0)
        );
    }
}
