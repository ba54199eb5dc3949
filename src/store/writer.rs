//! Group commit. One thread owns the writing connection; async callers hand it their write as a
//! job. The thread takes every job waiting (up to [`MAX_BATCH`]), runs them in one
//! `BEGIN IMMEDIATE` transaction, commits once, and only then answers each caller. Durability is
//! unchanged (`synchronous=FULL`: nobody hears "done" before the commit is on disk), but
//! concurrent writers share one fsync instead of queueing for one each.
//!
//! A job that fails (returns `Err` or panics) keeps none of its writes; the others still commit.
//! Almost every failing job fails before it writes, so jobs run without a savepoint each (a
//! savepoint copies every page its job touches to a sub-journal: about a tenth of an auto-approval's
//! CPU). When a job does fail after changing rows (`total_changes` moved), the whole batch is
//! rolled back, that job is answered with its failure, and the rest run again, this time each in
//! its own savepoint. So a job may run twice (jobs are `Fn`); only the run that was committed
//! answers. If the commit itself fails, every job in the batch gets the error and nothing is
//! written. After a commit, the answers to the callers waiting on one thread are sent from one
//! task on that thread's runtime, which wakes it once instead of once per answer.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::permissions::OwnedRow;
use super::recent::{Changes, RecentReads};
use super::{StoreError, configure};
use crate::audit::AuditKey;

/// Most jobs committed together.
pub(super) const MAX_BATCH: usize = 128;

type Panic = Box<dyn std::any::Any + Send>;
type Outcome<T, E> = Result<Result<T, E>, Panic>;

/// One caller's write, waiting for the writer thread.
trait Job: Send {
    /// Runs inside the batch's transaction and keeps the outcome (a later run replaces it);
    /// returns whether the job succeeded (`Ok`, no panic).
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Forgets the kept outcome: the run that produced it was rolled back.
    fn reset(&mut self);
    /// Answers the caller with the kept outcome, now that the batch's fate (`Ok` = committed)
    /// is known: a failure (`Err` or panic) is answered as such whatever the batch's fate. A job
    /// without an outcome gets the batch's error.
    fn answer(self: Box<Self>, committed: Result<(), &StoreError>);
    /// The thread that is waiting for the answer, and its runtime.
    fn caller(&self) -> Option<&Caller>;
}

/// Where a job's caller waits: its thread and that thread's runtime.
struct Caller {
    thread: std::thread::ThreadId,
    runtime: tokio::runtime::Handle,
}

struct WriteJob<T, E, F> {
    f: F,
    reply: tokio::sync::oneshot::Sender<Outcome<T, E>>,
    outcome: Option<Outcome<T, E>>,
    caller: Option<Caller>,
}

impl<T, E, F> Job for WriteJob<T, E, F>
where
    F: Fn(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let outcome = catch_unwind(AssertUnwindSafe(|| (self.f)(tx)));
        let succeeded = matches!(outcome, Ok(Ok(_)));
        self.outcome = Some(outcome);
        succeeded
    }

    fn reset(&mut self) {
        self.outcome = None;
    }

    fn answer(self: Box<Self>, committed: Result<(), &StoreError>) {
        let WriteJob {
            f, reply, outcome, ..
        } = *self;
        // Before answering: the caller may take back what it shared with `f`.
        drop(f);
        let answer = match (outcome, committed) {
            (Some(Err(panic)), _) => Err(panic),
            (Some(Ok(Err(e))), _) => Ok(Err(e)),
            (Some(Ok(Ok(value))), Ok(())) => Ok(Ok(value)),
            // Not kept: the batch was not committed (or, never, the job did not run).
            (_, committed) => {
                let why = committed
                    .err()
                    .map_or_else(|| "the write did not run".into(), ToString::to_string);
                Ok(Err(E::from(StoreError::Commit(why))))
            }
        };
        let _ = reply.send(answer);
    }

    fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }
}

/// The handle async writers use; cloning shares the one writer thread.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Opens the writing connection and starts its thread (it ends when every handle is gone).
    /// After each commit, before the writers hear back, the thread tells `recent` which rows
    /// the transaction wrote (SQLite's update hook collects them).
    pub(super) fn start(
        path: &Path,
        recent: Arc<RecentReads<OwnedRow>>,
        audit_key: &Arc<AuditKey>,
    ) -> Result<Writer, StoreError> {
        let conn = Connection::open(path)?;
        configure(&conn, audit_key)?;
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
    pub(super) async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: Fn(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let stopped = || E::from(StoreError::Commit("the writer thread has stopped".into()));
        let (reply, answer) = tokio::sync::oneshot::channel();
        let caller = tokio::runtime::Handle::try_current()
            .ok()
            .map(|runtime| Caller {
                thread: std::thread::current().id(),
                runtime,
            });
        let job = WriteJob {
            f,
            reply,
            outcome: None,
            caller,
        };
        if self.jobs.send(Box::new(job)).is_err() {
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
fn run_in_savepoint(tx: &Transaction<'_>, job: &mut dyn Job) -> Result<(), rusqlite::Error> {
    // Prepared once per connection.
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([]));
    run("SAVEPOINT job")?;
    if !job.run(tx) {
        run("ROLLBACK TO job")?;
    }
    run("RELEASE job").map(drop)
}

/// Commits with a statement prepared once per connection (`Transaction::commit` parses "COMMIT"
/// again for every batch); dropping `tx` afterwards does nothing once it is committed.
fn commit(tx: &Transaction<'_>) -> Result<(), rusqlite::Error> {
    tx.prepare_cached("COMMIT")?.execute([]).map(drop)
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

/// How one pass over a batch's jobs ended.
enum Pass {
    /// Every job ran; the transaction holds the changes of those that succeeded.
    Ran,
    /// The job at this index failed after changing rows, outside a savepoint.
    Spoiled(usize),
    /// The transaction cannot go on: SQLite rolled it back (disk full, I/O error), or a
    /// savepoint could not be opened, undone or released.
    Aborted(StoreError),
}

fn run_jobs(tx: &Transaction<'_>, batch: &mut [Box<dyn Job>], savepoints: bool) -> Pass {
    for (i, job) in batch.iter_mut().enumerate() {
        let spoiled = if savepoints {
            if let Err(e) = run_in_savepoint(tx, job.as_mut()) {
                return Pass::Aborted(e.into());
            }
            false
        } else {
            // Outside a savepoint, only a failure that changed nothing can stay in the batch.
            let before = tx.total_changes();
            !job.run(tx) && tx.total_changes() != before
        };
        if tx.is_autocommit() {
            return Pass::Aborted(StoreError::Commit(
                "the batch's transaction was rolled back".into(),
            ));
        }
        if spoiled {
            return Pass::Spoiled(i);
        }
    }
    Pass::Ran
}

fn commit_batch(conn: &mut Connection, mut batch: Vec<Box<dyn Job>>, settle: &dyn Fn()) {
    let mut savepoints = false;
    loop {
        // A transaction left open by a rollback that failed would make every later BEGIN fail.
        if !conn.is_autocommit()
            && let Err(e) = conn.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "cannot end a failed write transaction");
        }
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let e = StoreError::from(e);
                tracing::error!(error = %e, jobs = batch.len(), "cannot begin a write transaction");
                batch.into_iter().for_each(|job| job.answer(Err(&e)));
                return;
            }
        };
        match run_jobs(&tx, &mut batch, savepoints) {
            Pass::Ran => {
                let committed =
                    crate::metrics::commit(batch.len(), || commit(&tx)).map_err(StoreError::from);
                // Rolls back if the commit failed and left the transaction open.
                drop(tx);
                // Whatever the outcome: a failed commit is not proof that nothing changed.
                settle();
                if let Err(e) = &committed {
                    tracing::error!(error = %e, jobs = batch.len(), "group commit failed");
                }
                match committed {
                    Ok(()) => answer_committed(batch),
                    Err(e) => batch.into_iter().for_each(|job| job.answer(Err(&e))),
                }
                return;
            }
            Pass::Spoiled(i) => {
                // The failed job's writes go with everyone else's; it answers its own failure.
                let rolled_back = tx.rollback().map_err(StoreError::from);
                settle();
                if let Err(e) = &rolled_back {
                    tracing::error!(error = %e, jobs = batch.len(), "cannot roll back a batch");
                }
                let e = StoreError::Commit("rolled back".into());
                batch.remove(i).answer(Err(&e));
                if batch.is_empty() {
                    return;
                }
                batch.iter_mut().for_each(|job| job.reset());
                savepoints = true;
            }
            Pass::Aborted(e) => {
                drop(tx);
                // Every job so far has lost its writes; none may run outside the transaction.
                tracing::error!(error = %e, jobs = batch.len(), "group commit aborted");
                settle();
                batch.into_iter().for_each(|job| job.answer(Err(&e)));
                return;
            }
        }
    }
}

/// Answers the jobs of a committed batch. Jobs whose callers wait on one thread are answered
/// from one task spawned on that thread's runtime: waking a runtime from this thread is a system
/// call (an eventfd write) for every answer sent from here, and once for all of them this way.
fn answer_committed(batch: Vec<Box<dyn Job>>) {
    let mut by_thread: Vec<Vec<Box<dyn Job>>> = Vec::new();
    for job in batch {
        let thread = job.caller().map(|c| c.thread);
        match by_thread
            .iter_mut()
            .find(|group| thread.is_some() && group[0].caller().map(|c| c.thread) == thread)
        {
            Some(group) => group.push(job),
            None => by_thread.push(vec![job]),
        }
    }
    for group in by_thread {
        let answer_all =
            |group: Vec<Box<dyn Job>>| group.into_iter().for_each(|j| j.answer(Ok(())));
        let runtime = (group.len() > 1)
            .then(|| group[0].caller().map(|c| c.runtime.clone()))
            .flatten();
        match runtime {
            Some(runtime) => drop(runtime.spawn(async move { answer_all(group) })),
            None => answer_all(group),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// What a test job does after counting its run.
    #[derive(Clone, Copy)]
    enum Does {
        Write,
        RefuseFirst,
        RefuseAfterWriting,
        PanicAfterWriting,
    }

    /// How a test job's caller was answered.
    #[derive(Debug, PartialEq)]
    enum Heard {
        /// Committed; the value its run returned (which run it was).
        Committed(usize),
        Refused,
        Panicked,
    }

    type Answer = tokio::sync::oneshot::Receiver<Outcome<usize, StoreError>>;

    /// A job inserting `key` into `meta` as `does` says, counting its runs in `runs`.
    fn job(key: &'static str, does: Does, runs: &Arc<AtomicUsize>) -> (Box<dyn Job>, Answer) {
        let runs = Arc::clone(runs);
        let f = move |tx: &Transaction<'_>| {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            if let Does::RefuseFirst = does {
                return Err(StoreError::Corrupt("refused before writing".into()));
            }
            tx.execute("INSERT INTO meta VALUES (?1, 'v')", [key])?;
            match does {
                Does::RefuseAfterWriting => {
                    Err(StoreError::Corrupt("refused after writing".into()))
                }
                Does::PanicAfterWriting => panic!("boom after writing"),
                Does::Write | Does::RefuseFirst => Ok(run),
            }
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        (
            Box::new(WriteJob {
                f,
                reply,
                outcome: None,
                caller: None,
            }),
            answer,
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_committed_batch_answers_every_caller_whichever_way_it_waits() {
        let here = || Caller {
            thread: std::thread::current().id(),
            runtime: tokio::runtime::Handle::current(),
        };
        let elsewhere = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        // Three on this thread (answered from one task here), one alone on another thread,
        // one outside any runtime (answered at once).
        let callers = [
            Some(here()),
            Some(here()),
            Some(Caller {
                thread: elsewhere,
                runtime: tokio::runtime::Handle::current(),
            }),
            None,
            Some(here()),
        ];
        let mut batch: Vec<Box<dyn Job>> = Vec::new();
        let mut answers = Vec::new();
        for (i, caller) in callers.into_iter().enumerate() {
            let (reply, answer) = tokio::sync::oneshot::channel();
            batch.push(Box::new(WriteJob {
                f: |_: &Transaction<'_>| Ok::<usize, StoreError>(0),
                reply,
                outcome: Some(Ok(Ok(i))),
                caller,
            }));
            answers.push(answer);
        }
        answer_committed(batch);
        for (i, answer) in answers.into_iter().enumerate() {
            // An answer never sent fails here rather than hanging the test.
            let heard = tokio::time::timeout(std::time::Duration::from_secs(5), answer).await;
            assert_eq!(heard.expect("answered").unwrap().unwrap().unwrap(), i);
        }
    }

    /// Runs one batch through `commit_batch`, job i inserting the i-th letter; returns how
    /// often each job ran and what its caller heard, and the keys that were committed.
    fn batch(does: &[Does]) -> (Vec<(usize, Heard)>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Store::open(&path).unwrap());
        let mut conn = Connection::open(&path).unwrap();
        let counters: Vec<_> = does.iter().map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let (jobs, answers): (Vec<_>, Vec<_>) = ["a", "b", "c", "d"]
            .into_iter()
            .zip(does)
            .zip(&counters)
            .map(|((key, does), runs)| job(key, *does, runs))
            .unzip();
        let settled = AtomicUsize::new(0);
        commit_batch(&mut conn, jobs, &|| {
            settled.fetch_add(1, Ordering::SeqCst);
        });
        assert!(
            settled.load(Ordering::SeqCst) >= 1,
            "the transaction's end was settled"
        );
        let heard = counters
            .iter()
            .zip(answers)
            .map(|(runs, mut answer)| {
                let heard = match answer.try_recv().expect("every job is answered") {
                    Ok(Ok(run)) => Heard::Committed(run),
                    Ok(Err(_)) => Heard::Refused,
                    Err(_) => Heard::Panicked,
                };
                (runs.load(Ordering::SeqCst), heard)
            })
            .collect();
        let mut stmt = conn.prepare("SELECT key FROM meta ORDER BY key").unwrap();
        let kept = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<Vec<String>, _>>()
            .unwrap();
        (heard, kept)
    }

    #[test]
    fn a_job_refused_before_it_writes_costs_the_others_nothing() {
        let (heard, kept) = batch(&[Does::Write, Does::RefuseFirst, Does::Write]);
        use Heard::*;
        assert_eq!(heard, [(1, Committed(1)), (1, Refused), (1, Committed(1))]);
        assert_eq!(kept, ["a", "c"]);
    }

    #[test]
    fn a_job_refused_after_writing_is_undone_and_the_others_run_again() {
        let does = [
            Does::Write,
            Does::RefuseFirst,
            Does::RefuseAfterWriting,
            Does::Write,
        ];
        let (heard, kept) = batch(&does);
        // a and b ran before c's failure and again after it, and a answers its second run; d
        // first ran in the second pass.
        use Heard::*;
        assert_eq!(
            heard,
            [
                (2, Committed(2)),
                (2, Refused),
                (1, Refused),
                (1, Committed(1))
            ]
        );
        assert_eq!(kept, ["a", "d"]);
    }

    #[test]
    fn in_the_second_pass_a_failed_job_is_undone_by_its_own_savepoint() {
        let does = [
            Does::RefuseAfterWriting,
            Does::Write,
            Does::RefuseAfterWriting,
        ];
        let (heard, kept) = batch(&does);
        use Heard::*;
        assert_eq!(heard, [(1, Refused), (1, Committed(1)), (1, Refused)]);
        assert_eq!(kept, ["b"]);
    }

    #[test]
    fn a_batch_of_one_job_refused_after_writing_keeps_nothing() {
        let (heard, kept) = batch(&[Does::RefuseAfterWriting]);
        assert_eq!(heard, [(1, Heard::Refused)]);
        assert!(kept.is_empty());
    }

    #[test]
    fn a_job_panicking_after_writing_is_undone_and_panics_its_caller() {
        let (heard, kept) = batch(&[Does::Write, Does::PanicAfterWriting, Does::Write]);
        use Heard::*;
        assert_eq!(heard, [(2, Committed(2)), (1, Panicked), (1, Committed(1))]);
        assert_eq!(kept, ["a", "c"]);
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
