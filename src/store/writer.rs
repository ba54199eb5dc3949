//! Group commit. One thread owns the writing connection; async callers hand it their write as a
//! job. The thread takes every job waiting (up to [`MAX_BATCH`]), runs each inside its own
//! savepoint of one `BEGIN IMMEDIATE` transaction, commits once, and only then answers each
//! caller. Durability is unchanged (`synchronous=FULL`: nobody hears "done" before the commit is
//! on disk), but concurrent writers share one fsync instead of queueing for one each.
//!
//! A job that fails (or panics) is rolled back to its savepoint alone; the others still commit.
//! If the commit itself fails, every job in the batch gets the error and nothing is written.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::permissions::OwnedRow;
use super::recent::{Changes, RecentReads};
use super::{StoreError, configure};

/// Most jobs committed together.
pub const MAX_BATCH: usize = 128;

/// How a job answers its caller once the batch's fate (`Ok` = committed) is known.
type Finish = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
type Panic = Box<dyn std::any::Any + Send>;
type Reply<T, E> = tokio::sync::oneshot::Sender<Result<Result<T, E>, Panic>>;

/// One caller's write, waiting for the writer thread.
trait Job: Send {
    /// Runs inside the batch's transaction; returns how to answer after the commit.
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Finish;
    /// Answers without running: the batch's transaction could not begin.
    fn fail(self: Box<Self>, e: &StoreError);
}

struct WriteJob<T, E, F> {
    f: F,
    reply: Reply<T, E>,
}

impl<T, E, F> Job for WriteJob<T, E, F>
where
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Finish {
        let WriteJob { f, reply } = *self;
        let outcome = run_in_savepoint(tx, f);
        Box::new(move |committed| {
            let answer = match (outcome, committed) {
                (Ok(Ok(value)), Ok(())) => Ok(Ok(value)),
                (Ok(Ok(_)), Err(e)) => Ok(Err(E::from(StoreError::Commit(e.to_string())))),
                (Ok(Err(e)), _) => Ok(Err(e)),
                (Err(panic), _) => Err(panic),
            };
            let _ = reply.send(answer);
        })
    }

    fn fail(self: Box<Self>, e: &StoreError) {
        let _ = self
            .reply
            .send(Ok(Err(E::from(StoreError::Commit(e.to_string())))));
    }
}

/// The handle async writers use; cloning shares the one writer thread.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Opens the writing connection and starts its thread (it ends when every handle is gone).
    /// After each commit, before the writers hear back, the thread tells `recent` which rows
    /// the transaction wrote (SQLite's update hook collects them).
    pub fn start(path: &Path, recent: Arc<RecentReads<OwnedRow>>) -> Result<Writer, StoreError> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        let changes = Arc::new(Mutex::new(Changes::default()));
        let noted = Arc::clone(&changes);
        conn.update_hook(Some(move |_, _: &str, table: &str, rowid| {
            lock(&noted).note(table, rowid);
        }))?;
        let settle = move || recent.committed(std::mem::take(&mut *lock(&changes)));
        let (jobs, rx) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("agent-otp-writer".into())
            .spawn(move || run(conn, rx, &settle))
            .map_err(|e| StoreError::Commit(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `f` in the next group commit and returns its result once that commit is durable.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let stopped = || E::from(StoreError::Commit("the writer thread has stopped".into()));
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.jobs.send(Box::new(WriteJob { f, reply })).is_err() {
            return Err(stopped());
        }
        match answer.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => resume_unwind(panic),
            Err(_) => Err(stopped()),
        }
    }
}

/// Runs one job inside a savepoint, undoing only its own changes if it fails or panics.
fn run_in_savepoint<T, E, F>(tx: &Transaction<'_>, f: F) -> Result<Result<T, E>, Panic>
where
    F: FnOnce(&Transaction<'_>) -> Result<T, E>,
    E: From<StoreError>,
{
    // Prepared once per connection: these run around every job.
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([]));
    if let Err(e) = run("SAVEPOINT job") {
        return Ok(Err(E::from(StoreError::from(e))));
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| f(tx)));
    let ended = match outcome {
        Ok(Ok(_)) => run("RELEASE job"),
        _ => run("ROLLBACK TO job").and_then(|_| run("RELEASE job")),
    };
    if let Err(e) = ended {
        return Ok(Err(E::from(StoreError::from(e))));
    }
    outcome
}

fn lock(changes: &Mutex<Changes>) -> std::sync::MutexGuard<'_, Changes> {
    changes.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `settle` runs after each batch's transaction ends (committed or not), before any answer.
fn run(mut conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>, settle: &dyn Fn()) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch, settle);
    }
}

fn commit_batch(conn: &mut Connection, batch: Vec<Box<dyn Job>>, settle: &dyn Fn()) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = StoreError::from(e);
            tracing::error!(error = %e, jobs = batch.len(), "cannot begin a write transaction");
            batch.into_iter().for_each(|job| job.fail(&e));
            return;
        }
    };
    let mut finishers: Vec<Finish> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    for job in jobs.by_ref() {
        finishers.push(job.run(&tx));
        // Some errors (disk full, I/O) make SQLite roll back the whole transaction: then nothing
        // may run outside it, and every job so far has lost its writes.
        if tx.is_autocommit() {
            let e = StoreError::Commit("the batch's transaction was rolled back".into());
            tracing::error!(error = %e, jobs = finishers.len(), "group commit aborted");
            settle();
            jobs.for_each(|job| job.fail(&e));
            finishers.into_iter().for_each(|finish| finish(Err(&e)));
            return;
        }
    }
    let committed = tx.commit().map_err(StoreError::from);
    // Whatever the outcome: a failed commit is not proof that nothing changed.
    settle();
    if let Err(e) = &committed {
        tracing::error!(error = %e, jobs = finishers.len(), "group commit failed");
    }
    for finish in finishers {
        finish(committed.as_ref().map(|_| ()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_writes_commit_and_a_failing_job_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write(move |tx| {
                        tx.execute(
                            "INSERT INTO meta(key, value) VALUES (?1, 'v')",
                            [format!("k{i}")],
                        )
                        .map_err(StoreError::from)?;
                        if i % 10 == 0 {
                            return Err(StoreError::Corrupt("job refused".into()));
                        }
                        Ok(i)
                    })
                    .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 180);
        let rows: i64 = store
            .read_blocking(|c| {
                c.query_row("SELECT count(*) FROM meta", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(
            rows, 180,
            "the refused jobs' inserts were rolled back, the rest committed"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_panicking_job_panics_its_caller_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let s = store.clone();
        let panicked = tokio::spawn(async move {
            s.write(|_tx| -> Result<(), StoreError> { panic!("boom") })
                .await
        })
        .await;
        assert!(panicked.unwrap_err().is_panic());
        let after = store
            .write(|tx| {
                tx.execute("INSERT INTO meta VALUES ('a', 'b')", [])
                    .map_err(StoreError::from)
            })
            .await;
        assert_eq!(after.unwrap(), 1, "the writer survives a panicking job");
    }
}
