//! SQLite storage: one file, WAL, `synchronous=FULL`, foreign keys on, writes in `BEGIN IMMEDIATE`.
//!
//! All SQL lives in this module's submodules. Async callers go through [`Store::read`] and
//! [`Store::write`], which move the blocking work onto tokio's blocking pool and re-raise panics;
//! the command-line tools use the `_blocking` twins. A write closure gets a transaction that is
//! committed only when it returns `Ok`, so a state change and its audit event land together.

pub(crate) mod admin_tokens;
pub(crate) mod agents;
pub(crate) mod audit;
mod known_agents;
pub(crate) mod login_links;
pub(crate) mod permissions;
pub(crate) mod recent;
pub(crate) mod services;
pub(crate) mod sessions;
pub(crate) mod telegram;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use std::sync::atomic::{AtomicI64, Ordering};

use crate::audit::AuditKey;
use crate::audit::checkpoint::Checkpoint;
use crate::domain::{Agent, AgentId};
use permissions::OwnedRow;
use recent::RecentReads;

/// Migrations, applied in order; the database's `PRAGMA user_version` is how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_login_links.sql"),
    include_str!("migrations/003_sessions.sql"),
    include_str!("migrations/004_telegram.sql"),
    include_str!("migrations/005_pending_by_agent.sql"),
    include_str!("migrations/006_bound_tokens.sql"),
    include_str!("migrations/007_keyed_audit.sql"),
    include_str!("migrations/008_credential_life.sql"),
    include_str!("migrations/009_write_costs.sql"),
    include_str!("migrations/010_tokens_name_their_request.sql"),
    include_str!("migrations/011_newest_first.sql"),
];

/// Storage failures. Shown to operators, never to API clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "the database {path} is at schema version {found}, newer than this binary knows ({known}); \
         run a newer agent-otp or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("{0}")]
    Key(String),
}

/// A pool of SQLite connections to one database file.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<SqliteConnectionManager>,
    writer: writer::Writer,
    /// The operator's store ([`Store::open_existing`]): a checkpoint follows each change, as the
    /// command line has no periodic one.
    operator: bool,
    path: PathBuf,
    /// Requests read recently for `verify`, forgotten as writes change them.
    recent: Arc<RecentReads<OwnedRow>>,
    /// Keys the audit chain and signs checkpoints (see [`crate::audit::key`]).
    audit_key: Arc<AuditKey>,
    /// The `seq` of the last checkpoint this process wrote.
    checkpointed: Arc<AtomicI64>,
    /// Agents that authenticated recently (see [`known_agents`]).
    known_agents: Arc<known_agents::KnownAgents>,
}

impl Store {
    /// Opens (creating if needed, readable by its owner only) the database at `path` and brings
    /// its schema up to date. The audit key comes from the environment or the key file beside
    /// the database (created on first use); see [`crate::audit::key`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_keyed(path, false)
    }

    /// [`Store::open`]; `operator` for the command line's store (see [`Store::open_existing`]).
    fn open_keyed(path: &Path, operator: bool) -> Result<Store, StoreError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        Store::open_resolving(path, operator, |conn| {
            // A key is made only for a chain that has none yet: once events are keyed, a missing
            // key is an error, never silently a new key that could not verify them.
            let keyed = audit::keyed_from(conn)?.is_some();
            AuditKey::resolve(dir, |k| std::env::var(k).ok(), !keyed).map_err(|e| {
                StoreError::Key(if keyed {
                    format!(
                        "{e}; this database's audit chain is keyed, so its key is needed \
                         (restore {} from your backup, or set AGENT_OTP_AUDIT_KEY_FILE)",
                        crate::audit::key::default_path(dir).display()
                    )
                } else {
                    e.to_string()
                })
            })
        })
    }

    /// [`Store::open`] with the audit key given.
    pub fn open_with_key(path: &Path, key: AuditKey) -> Result<Store, StoreError> {
        Store::open_resolving(path, false, |_| Ok(key))
    }

    /// Creates the file if needed (mode 0600), migrates it, then asks `key` for the audit key,
    /// given the migrated database, on the same first connection.
    fn open_resolving(
        path: &Path,
        operator: bool,
        key: impl FnOnce(&Connection) -> Result<AuditKey, StoreError>,
    ) -> Result<Store, StoreError> {
        if !path.exists() {
            // SQLite gives the -wal and -shm files the database file's permissions.
            match create_private(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(StoreError::Corrupt(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        let mut conn = Connection::open(path)?;
        // WAL is a property of the file: set once here, before the pool opens more connections.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        configure_pragmas(&conn)?;
        migrate(&mut conn, path)?;
        let key = Arc::new(key(&conn)?);
        drop(conn);

        let init_key = Arc::clone(&key);
        let manager =
            SqliteConnectionManager::file(path).with_init(move |c| configure(c, &init_key));
        let pool = r2d2::Pool::builder()
            .max_size(8)
            // A local file connection does not go stale; checking it costs a query per checkout.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        let recent = Arc::new(RecentReads::default());
        Ok(Store {
            pool,
            writer: writer::Writer::start(path, Arc::clone(&recent), &key)?,
            operator,
            path: path.to_owned(),
            recent,
            audit_key: key,
            checkpointed: Arc::new(AtomicI64::new(0)),
            known_agents: Arc::default(),
        })
    }

    /// The agent that authenticated recently with this key hash, if it is remembered: a claim
    /// each operation confirms (see [`known_agents`]).
    pub fn remembered_agent(&self, key_hash: &str) -> Option<Arc<Agent>> {
        self.known_agents.get(key_hash)
    }

    /// The agent with this key hash, read from the agents table (revoked ones too) and, if live,
    /// remembered.
    pub(crate) async fn read_agent_by_key_hash(
        &self,
        key_hash: String,
    ) -> Result<Option<Arc<Agent>>, StoreError> {
        let found = self
            .lookup(move |c| agents::by_key_hash(c, &key_hash))
            .await?
            .map(Arc::new);
        if let Some(agent) = &found {
            self.known_agents.remember(agent);
        }
        Ok(found)
    }

    /// Stops remembering a key whose claim failed.
    pub fn forget_agent_key(&self, key_hash: &str) {
        self.known_agents.forget_key(key_hash);
    }

    /// Stops remembering an agent that was revoked.
    pub fn forget_agent(&self, id: &AgentId) {
        self.known_agents.forget_agent(id);
    }

    /// The audit key (for `audit verify`).
    pub fn audit_key(&self) -> &AuditKey {
        &self.audit_key
    }

    /// Where this database's checkpoints are kept.
    pub fn checkpoint_path(&self) -> PathBuf {
        crate::audit::checkpoint::path(self.path.parent().unwrap_or(Path::new(".")))
    }

    /// Writes a signed checkpoint of the chain's head if it moved since this process last wrote
    /// one, to the checkpoint file and the log; returns it. The head is read as committed.
    pub fn checkpoint(
        &self,
        now: crate::clock::Timestamp,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let (head, keyed_from) =
            self.read_blocking(|c| Ok::<_, StoreError>((audit::head(c)?, audit::keyed_from(c)?)))?;
        let Some((seq, hash, _)) = head else {
            return Ok(None);
        };
        if self.checkpointed.fetch_max(seq, Ordering::SeqCst) >= seq {
            return Ok(None);
        }
        let checkpoint = Checkpoint::new(&self.audit_key, seq, &hash, now, keyed_from);
        crate::audit::checkpoint::append(&self.checkpoint_path(), &checkpoint)
            .map_err(|e| StoreError::Corrupt(format!("cannot write the audit checkpoint: {e}")))?;
        tracing::info!(seq, head = %hash, mac = %checkpoint.mac, "audit checkpoint");
        Ok(Some(checkpoint))
    }

    /// Opens the database at `path` for the operator's commands, like [`Store::open`] but only if
    /// the file already exists: it is never created here (the operator commands must not make a
    /// second database).
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_URI
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        drop(Connection::open_with_flags(path, flags)?);
        Store::open_keyed(path, true)
    }

    /// Whether this is the operator's store, which checkpoints after each change.
    pub(crate) fn is_operators(&self) -> bool {
        self.operator
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs read-only work on a pooled connection, off the async threads.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        off_async(move || store.read_blocking(f)).await
    }

    /// Runs a point lookup (one row by primary or unique key) right here on the calling thread
    /// when a pooled connection is free at once, else like [`Store::read`].
    ///
    /// For the hot path only: such a read is a few B-tree pages, almost always cached, and in WAL
    /// mode never waits for a writer, so it costs microseconds — less than the hop to the blocking
    /// pool and back that [`Store::read`] pays. It never waits for a connection on an async
    /// thread. Anything that scans goes through [`Store::read`].
    pub async fn lookup<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match self.pool.try_get() {
            Some(conn) => f(&conn),
            None => self.read(f).await,
        }
    }

    /// One request by id with its owner's credentials, possibly as read a moment ago (see
    /// `recent`: never after this process changed it, never older than [`recent::LEASE`]).
    /// For `verify`, which a protected service may call for every action it takes.
    pub async fn request_with_owner(&self, id: &str) -> Result<Option<Arc<OwnedRow>>, StoreError> {
        let start = match self.recent.get(id) {
            Ok(read) => return Ok(Some(read)),
            Err(start) => start,
        };
        let key = id.to_owned();
        let Some(read) = self
            .lookup(move |c| permissions::get_with_owner(c, &key))
            .await?
        else {
            return Ok(None);
        };
        let read = Arc::new(read);
        let weight = read.json_bytes;
        self.recent
            .put(id, read.rowid, weight, Arc::clone(&read), start);
        Ok(Some(read))
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer thread, grouped with other
    /// writes waiting at the same moment (see `writer`); its changes are kept only if it returns
    /// `Ok`, and the answer comes once they are durably committed. `f` may run more than once
    /// (when another job in its batch fails after writing), so it must do nothing but its
    /// database work: only the result of the run that was committed is returned. It must change
    /// the database only with `INSERT`, `UPDATE` and `DELETE` (no DDL or `PRAGMA`): those are
    /// the changes SQLite counts, which is how a failed run is known to need undoing.
    ///
    /// On the operator's store ([`Store::open_existing`]) a checkpoint follows each change.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: Fn(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let out = self.writer.write(f).await;
        if self.operator && out.is_ok() {
            self.checkpoint_after_change();
        }
        out
    }

    /// The command line has no periodic checkpoint: it leaves one after each change. The change
    /// itself is committed either way; a server's next checkpoint covers it too.
    fn checkpoint_after_change(&self) {
        if let Err(e) = self.checkpoint(crate::clock::Clock::System.now()) {
            tracing::warn!(error = %e, "cannot write the audit checkpoint");
        }
    }

    /// [`Store::read`] for synchronous callers (the command line).
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E>,
        E: From<StoreError>,
    {
        let conn = self.pool.get().map_err(StoreError::from)?;
        f(&conn)
    }

    /// A write for the unit tests' synchronous set-up, in its own `BEGIN IMMEDIATE` transaction
    /// on a pooled connection.
    #[cfg(test)]
    pub(crate) fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E>,
        E: From<StoreError>,
    {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&tx)?;
        let committed = tx.commit();
        // This connection has no update hook: whatever it wrote, no remembered read may stand.
        self.recent.committed(recent::Changes::everything());
        committed.map_err(StoreError::from)?;
        drop(conn);
        Ok(out)
    }

    /// Writes a consistent copy of the live database to `dest` (atomically replacing it), and
    /// beside it `<dest>.checkpoints`, a signed checkpoint of the copy's own audit head: restored
    /// as `audit.checkpoints` (with the audit key), it anchors the restored chain.
    pub fn backup_to(&self, dest: &Path) -> Result<PathBuf, StoreError> {
        let tmp = dest.with_extension("partial");
        let _ = std::fs::remove_file(&tmp);
        let conn = self.pool.get()?;
        conn.execute("VACUUM INTO ?1", [tmp.to_string_lossy()])?;
        std::fs::rename(&tmp, dest)
            .map_err(|e| StoreError::Corrupt(format!("cannot move backup into place: {e}")))?;
        let copy = Connection::open_with_flags(dest, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let (head, keyed_from) = (audit::head(&copy)?, audit::keyed_from(&copy)?);
        let anchor = PathBuf::from(format!("{}.checkpoints", dest.display()));
        let _ = std::fs::remove_file(&anchor);
        if let Some((seq, hash, _)) = head {
            let now = crate::clock::Clock::System.now();
            let checkpoint = Checkpoint::new(&self.audit_key, seq, &hash, now, keyed_from);
            crate::audit::checkpoint::append(&anchor, &checkpoint).map_err(|e| {
                StoreError::Corrupt(format!("cannot write {}: {e}", anchor.display()))
            })?;
        }
        Ok(anchor)
    }
}

/// Reads a value remembered in the `meta` table.
pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Remembers a value in the `meta` table.
pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// Reads a JSON text column into a value, reporting bad JSON as a conversion error.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text: String = r.get(idx)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Creates a new file readable and writable by its owner only (mode 0600 on Unix); fails if it
/// exists.
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Opens a file for appending, creating it with mode 0600 if it does not exist.
pub(crate) fn open_private_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The SQL function that keys the audit chain, `audit_mac(body)`: the key lives in the
/// connection, never in a table.
const AUDIT_MAC_FN: &str = "agent_otp_audit_mac";

/// Every connection's settings: the keyed audit hash (see [`AUDIT_MAC_FN`]) and the pragmas.
fn configure(conn: &Connection, key: &Arc<AuditKey>) -> Result<(), rusqlite::Error> {
    use rusqlite::functions::FunctionFlags;
    let key = Arc::clone(key);
    conn.create_scalar_function(
        AUDIT_MAC_FN,
        1,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_DIRECTONLY,
        move |ctx| {
            let body = ctx
                .get_raw(0)
                .as_str()
                .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
            Ok(crate::audit::link_hash(Some(&key), body))
        },
    )?;
    configure_pragmas(conn)
}

fn configure_pragmas(conn: &Connection) -> Result<(), rusqlite::Error> {
    // Every statement in this module is prepared once per connection and reused.
    conn.set_prepared_statement_cache_capacity(128);
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;",
    )
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::debug!(version, "database migrated");
    }
    // One line for an upgrade of an existing database; a new one is not news.
    if found > 0 && found < known {
        tracing::info!(from = found, to = known, "database schema upgraded");
    }
    Ok(())
}

/// Runs blocking work off the async threads; a panic in it goes on in the caller.
pub(crate) async fn off_async<T, E, F>(f: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime cancels blocking tasks only while it shuts down, when no one awaits this.
        #[allow(clippy::panic)]
        Err(e) => panic!("blocking store task was cancelled: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let mode: String = store
            .read_blocking(|c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        Store::open(&path).unwrap();

        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }
    #[test]
    fn the_status_check_needs_no_temporary_table_and_still_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .read_blocking(|c| {
                let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
                assert_eq!(ok, "ok");
                let sql: String = c.query_row(
                    "SELECT sql FROM sqlite_schema WHERE name = 'permissions'",
                    [],
                    |r| r.get(0),
                )?;
                assert!(sql.contains("status = 'revoked'"), "{sql}");
                assert!(!sql.contains("status IN"), "{sql}");
                let mut plan = c.prepare(
                    "EXPLAIN INSERT INTO permissions(id, agent_id, action, requested_scope, scope,
                        context, status, policy_version, ttl_secs, uses_total, uses_remaining,
                        expires_at, created_at) VALUES ('p', 'a', 'x', '{}', '{}', '{}', ?1, 'v',
                        1, 1, 1, 1, 1)",
                )?;
                let ops = plan
                    .query_map([""], |r| r.get::<_, String>(1))?
                    .collect::<Result<Vec<_>, _>>()?;
                assert!(!ops.iter().any(|op| op == "OpenEphemeral"), "{ops:?}");
                let indexes: i64 = c.query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name = 'audit_by_request'",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(indexes, 0);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let insert = |status: &'static str| {
            store.write_blocking(move |tx| {
                tx.execute(
                    "INSERT INTO agents(id, name, key_hash, created_at) VALUES ('a', 'a', 'h', 0)
                     ON CONFLICT DO NOTHING",
                    [],
                )?;
                tx.execute(
                    "INSERT INTO permissions(id, agent_id, action, requested_scope, scope, context,
                        status, policy_version, ttl_secs, uses_total, uses_remaining, expires_at,
                        created_at) VALUES (?1, 'a', 'x', '{}', '{}', '{}', ?1, 'v', 1, 1, 1, 1, 1)",
                    [status],
                )
                .map_err(StoreError::from)
            })
        };
        for status in [
            "pending", "approved", "denied", "expired", "used", "revoked",
        ] {
            insert(status).unwrap();
        }
        let refused = insert("bogus").unwrap_err();
        assert!(
            refused.to_string().contains("CHECK constraint failed"),
            "{refused}"
        );
    }

    /// A migration that edits the schema's text must leave its connection with the new parse:
    /// migrating a new database in one go gives the same schema, byte for byte, as migrating it
    /// one version at a time on a fresh connection each (migration 009's in-place edit once left
    /// 010's `ADD COLUMN` splicing at stale offsets, which dropped `require_details`'s default).
    #[test]
    fn migrating_at_once_gives_the_schema_of_migrating_step_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let schema = |conn: &Connection| -> Vec<(String, Option<String>)> {
            conn.prepare("SELECT name, sql FROM sqlite_schema ORDER BY name")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let at_once = dir.path().join("once.db");
        drop(Store::open(&at_once).unwrap());
        let stepwise = dir.path().join("steps.db");
        for (version, sql) in (1..).zip(MIGRATIONS) {
            let conn = Connection::open(&stepwise).unwrap();
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", version).unwrap();
        }
        let once = schema(&Connection::open(&at_once).unwrap());
        assert_eq!(once, schema(&Connection::open(&stepwise).unwrap()));
        let permissions = once.iter().find(|(name, _)| name == "permissions").unwrap();
        let sql = permissions.1.as_deref().unwrap();
        assert!(
            sql.contains("require_details INTEGER NOT NULL DEFAULT 0"),
            "{sql}"
        );
    }

    /// Migration 010: tokens issued before it keep an index of their hashes; new rows go into no
    /// index keyed by a hash, and each lookup uses an index.
    #[test]
    fn tokens_from_before_they_named_their_request_are_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).unwrap();
        for (version, sql) in (1..).zip(&MIGRATIONS[..9]) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", version).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO agents(id, name, key_hash, created_at) VALUES ('a', 'a', 'h', 0);
             INSERT INTO permissions(id, agent_id, action, requested_scope, scope, context,
                status, policy_version, ttl_secs, uses_total, uses_remaining, expires_at,
                created_at, token_hash, token_issued_at)
             VALUES ('issued', 'a', 'x', '{}', '{}', '{}', 'approved', 'v', 1, 1, 1, 1, 1,
                'old-hash', 1),
                ('waiting', 'a', 'x', '{}', '{}', '{}', 'pending', 'v', 1, 1, 1, 1, 1, NULL, NULL);",
        )
        .unwrap();
        drop(conn);

        let store = Store::open(&path).unwrap();
        store
            .read_blocking(|c| {
                let found = permissions::get_by_unnamed_token(c, "old-hash")?;
                assert_eq!(found.map(|p| p.id.0), Some("issued".to_owned()));
                // A token minted later names its request; the pending row is not marked.
                c.execute(
                    "UPDATE permissions SET token_hash = 'new-hash' WHERE id = 'waiting'",
                    [],
                )?;
                assert!(permissions::get_by_unnamed_token(c, "new-hash")?.is_none());
                let plan = |sql: &str| -> rusqlite::Result<String> {
                    c.query_row(&format!("EXPLAIN QUERY PLAN {sql}"), [], |r| r.get(3))
                };
                let unnamed = plan(
                    "SELECT id FROM permissions WHERE token_hash = 'h' AND unnamed_token = 1",
                )?;
                assert!(
                    unnamed.contains("permissions_by_unnamed_token"),
                    "{unnamed}"
                );
                let named = plan("SELECT id FROM permissions WHERE id = 'x'")?;
                assert!(named.contains("sqlite_autoindex_permissions_1"), "{named}");
                let hash_keyed: Vec<String> = c
                    .prepare(
                        "SELECT name FROM sqlite_schema WHERE type = 'index'
                            AND tbl_name = 'permissions' AND sql LIKE '%token_hash%'
                            AND sql NOT LIKE '%WHERE unnamed_token = 1%'",
                    )?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                assert_eq!(hash_keyed, Vec::<String>::new());
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
}
