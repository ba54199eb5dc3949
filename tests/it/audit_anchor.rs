//! An audit trail an intruder holding the database file cannot quietly rewrite: a chain rebuilt
//! after an edit (without the key), a chain rebuilt from scratch, a cut-off tail and an edited
//! state row are each found; a database from before keyed chains migrates and verifies; pruned
//! requests leave a trail that still verifies.

use std::path::Path;
use std::time::Duration;

use agent_otp::clock::Timestamp;
use agent_otp::testing::audit::StoredEvent;
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::support::{TestServer, run_cli_on};

/// `agent-otp audit verify --data-dir DIR`: exit code and output.
fn verify(data: &Path) -> (i32, String) {
    let ran = run_cli_on(data, &["audit", "verify"]);
    (ran.code, ran.text())
}

/// A copy of a stopped server's data directory (database, key, checkpoints).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["agent-otp.db", "audit.key", "audit.checkpoints"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

fn events(conn: &Connection) -> Vec<StoredEvent> {
    let mut stmt = conn
        .prepare("SELECT seq, at, actor, event, request_id, agent_id, details, prev_hash, hash, keyed FROM audit_events ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(StoredEvent {
            seq: r.get(0)?,
            at: Timestamp(r.get(1)?),
            actor: r.get(2)?,
            event: r.get(3)?,
            request_id: r.get(4)?,
            agent_id: r.get(5)?,
            details: serde_json::from_str(&r.get::<_, String>(6)?).unwrap(),
            prev_hash: r.get(7)?,
            hash: r.get(8)?,
            keyed: r.get(9)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// What an intruder without the key can do: rewrite events from `from` on as a plain SHA-256
/// chain (the form events had before chains were keyed), each linked to the one before.
fn rechain_unkeyed(db: &Path, from: i64, edit: impl Fn(&mut StoredEvent)) {
    let conn = Connection::open(db).unwrap();
    let mut all = events(&conn);
    let mut prev = match from {
        1 => agent_otp::testing::audit::GENESIS_HASH.to_owned(),
        n => all[usize::try_from(n - 2).unwrap()].hash.clone(),
    };
    for e in all.iter_mut().filter(|e| e.seq >= from) {
        edit(e);
        e.prev_hash = prev.clone();
        e.keyed = false;
        e.hash = e.recompute_hash(None);
        prev = e.hash.clone();
        conn.execute(
            "UPDATE audit_events SET details = ?2, prev_hash = ?3, hash = ?4, keyed = 0 WHERE seq = ?1",
            params![e.seq, agent_otp::testing::audit::canonical_json(&e.details), e.prev_hash, e.hash],
        )
        .unwrap();
    }
}

/// A server with some history: auto-approvals used, a human approval, a denial.
async fn history() -> TestServer {
    let s = TestServer::start().await;
    let key = s.agent("worker").await;
    for _ in 0..3 {
        let (_, d) = s.request(&key, json!({"action": "file.read"})).await;
        let (id, token) = (d["id"].as_str().unwrap(), d["token"].as_str().unwrap());
        s.use_token(&key, id, token, None).await;
    }
    s.request(&key, json!({"action": "shell.exec"})).await;
    let (_, d) = s.request(&key, json!({"action": "bank.transfer"})).await;
    let id = d["id"].as_str().unwrap();
    s.post(
        &s.admin,
        &format!("/api/v1/admin/permissions/{id}/approve"),
        json!({}),
    )
    .await;
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn rewrites_cut_tails_and_edited_state_rows_are_found() {
    let mut s = history().await;
    s.shut_down().await;
    let data = s.dir.path().join("data");
    let (code, out) = verify(&data);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every request matches its events"), "{out}");
    let db = |dir: &Path| dir.join("agent-otp.db");
    let conn = Connection::open(db(&data)).unwrap();
    let count = events(&conn).len() as i64;
    let mid = count / 2;
    drop(conn);

    // Edit one event and rebuild the chain after it without the key.
    let edited = s.dir.path().join("edited");
    copy_dir(&data, &edited);
    rechain_unkeyed(&db(&edited), mid, |e| e.details["forged"] = json!(true));
    let (code, out) = verify(&edited);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with(&format!("audit chain broken at seq {mid} (changed)")),
        "{out}"
    );
    assert!(out.contains("unkeyed"), "{out}");

    // Rebuild the whole chain from scratch: it holds as a chain, the checkpoint does not.
    let rebuilt = s.dir.path().join("rebuilt");
    copy_dir(&data, &rebuilt);
    rechain_unkeyed(&db(&rebuilt), 1, |_| {});
    let (code, out) = verify(&rebuilt);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("(changed): it is not the event checkpointed"),
        "{out}"
    );

    // Cut off the newest events: the checkpoint written at shutdown saw them.
    let cut = s.dir.path().join("cut");
    copy_dir(&data, &cut);
    let conn = Connection::open(db(&cut)).unwrap();
    conn.execute("DELETE FROM audit_events WHERE seq > ?1", [count - 3])
        .unwrap();
    drop(conn);
    let (code, out) = verify(&cut);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.starts_with(&format!(
            "audit chain broken after seq {} (missing)",
            count - 3
        )),
        "{out}"
    );

    // Without the checkpoint file, a cut cannot be ruled out: said, not passed.
    std::fs::remove_file(cut.join("audit.checkpoints")).unwrap();
    let (code, out) = verify(&cut);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("unanchored"), "{out}");

    // A forged checkpoint line is refused.
    let forged = s.dir.path().join("forged");
    copy_dir(&data, &forged);
    let line = format!(
        "{{\"seq\":1,\"head\":\"{}\",\"at\":1,\"keyedFrom\":1,\"mac\":\"{}\"}}\n",
        "0".repeat(64),
        "1".repeat(64)
    );
    let mut text = std::fs::read_to_string(forged.join("audit.checkpoints")).unwrap();
    text.push_str(&line);
    std::fs::write(forged.join("audit.checkpoints"), text).unwrap();
    let (code, out) = verify(&forged);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not the audit key's"), "{out}");

    // A state row edited behind the service's back: a used token made usable again.
    let revived = s.dir.path().join("revived");
    copy_dir(&data, &revived);
    let conn = Connection::open(db(&revived)).unwrap();
    let id: String = conn
        .query_row(
            "SELECT id FROM permissions WHERE action = 'file.read' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE permissions SET status = 'approved', uses_remaining = 5 WHERE id = ?1",
        [&id],
    )
    .unwrap();
    drop(conn);
    let (code, out) = verify(&revived);
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains(&format!("request {id} disagrees with its audit events")),
        "{out}"
    );

    // A row deleted without a prune event, and a widened scope, are found too.
    let widened = s.dir.path().join("widened");
    copy_dir(&data, &widened);
    let conn = Connection::open(db(&widened)).unwrap();
    conn.execute(
        "UPDATE permissions SET scope = '{\"max_amount\":1000000}' WHERE action = 'bank.transfer'",
        [],
    )
    .unwrap();
    conn.execute("DELETE FROM permissions WHERE action = 'shell.exec'", [])
        .unwrap();
    drop(conn);
    let (code, out) = verify(&widened);
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("the scope differs"), "{out}");
    assert!(out.contains("the row is gone"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_before_keyed_chains_migrates_and_verifies() {
    let mut s = history().await;
    s.shut_down().await;
    let data = s.dir.path().join("data");
    let db = data.join("agent-otp.db");
    // Make it what an earlier version left: schema 6, a plain SHA-256 chain, no key, no
    // checkpoints.
    rechain_unkeyed(&db, 1, |_| {});
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP INDEX permissions_by_unnamed_token;
         ALTER TABLE permissions DROP COLUMN unnamed_token;
         CREATE UNIQUE INDEX permissions_by_token ON permissions(token_hash)
             WHERE token_hash IS NOT NULL;
         ALTER TABLE audit_events DROP COLUMN keyed;
         ALTER TABLE admin_tokens DROP COLUMN expires_at;
         ALTER TABLE admin_tokens DROP COLUMN last_used_at;
         ALTER TABLE login_links DROP COLUMN request_id;
         ALTER TABLE sessions DROP COLUMN request_id;
         PRAGMA user_version = 6;",
    )
    .unwrap();
    let old_count: i64 = conn
        .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    std::fs::remove_file(data.join("audit.key")).unwrap();
    std::fs::remove_file(data.join("audit.checkpoints")).unwrap();

    // An operator command opens it: migrated, a key made, its event keyed, a checkpoint left.
    let ran = run_cli_on(&data, &["agent", "create", "after-upgrade"]);
    assert!(ran.ok, "{}", ran.stderr);
    assert!(data.join("audit.key").exists());
    let conn = Connection::open(&db).unwrap();
    let keyed: Vec<(i64, bool)> = conn
        .prepare("SELECT seq, keyed FROM audit_events WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([old_count], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keyed, [(old_count, false), (old_count + 1, true)]);
    drop(conn);
    let (code, out) = verify(&data);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("audit chain ok: {} events", old_count + 1)),
        "{out}"
    );

    // The old part stays as verifiable as it was: an edit there is still found.
    let conn = Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE audit_events SET actor = 'human:mallory' WHERE seq = 2",
        [],
    )
    .unwrap();
    drop(conn);
    let (code, out) = verify(&data);
    assert_eq!(code, 3, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pruned_requests_leave_a_trail_that_still_verifies() {
    let mut s = history().await;
    let service = std::sync::Arc::clone(&s.handle.as_ref().unwrap().service);
    // Nothing is old enough yet.
    assert_eq!(service.prune(Duration::from_secs(86_400)).await.unwrap(), 0);
    s.clock.advance(Duration::from_secs(2 * 86_400));
    // The finished requests (used, denied) go; the approved one stays (it expired by now, but
    // is still `approved` until the sweeper writes that down).
    let before = s.permission_count().await;
    let pruned = service.prune(Duration::from_secs(86_400)).await.unwrap();
    assert!(pruned >= 4, "{pruned}");
    assert_eq!(
        s.permission_count().await,
        before - i64::try_from(pruned).unwrap()
    );
    let (_, trail) = s
        .get(
            &s.admin,
            "/api/v1/admin/audit?event=permission.pruned&limit=100",
        )
        .await;
    assert_eq!(trail["data"].as_array().unwrap().len(), pruned);
    assert!(trail["data"][0]["requestId"].is_string());
    drop(service);
    s.shut_down().await;
    let (code, out) = verify(&s.dir.path().join("data"));
    assert_eq!(code, 0, "{out}");
    let first: Value = trail["data"][0].clone();
    assert_eq!(first["details"]["retentionDays"], 1);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_database_key_and_checkpoints_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = history().await;
    let data = s.dir.path().join("data");
    for file in [
        "agent-otp.db",
        "agent-otp.db-wal",
        "agent-otp.db-shm",
        "audit.key",
        "audit.checkpoints",
    ] {
        let mode = std::fs::metadata(data.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
    }
    s.shut_down().await;
}

/// `audit verify` used to replay only status, uses, scope and token hash, so a row edited to
/// point its live token at another action (usable at another service) or resource, to drop its
/// exact binding or its need for details, or to live a day longer, passed as intact. Each is
/// now found (exit 6, the request named), and an untouched database still verifies.
#[tokio::test(flavor = "multi_thread")]
async fn a_row_edited_to_widen_what_its_token_is_for_is_found() {
    let mut s = history().await;
    let key = s.agent("binder").await;
    let (status, d) = s
        .request(
            &key,
            json!({"action": "file.read", "resource": "/srv/a.csv", "uses": 2,
                   "actionDetails": {"path": "/srv/a.csv"}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{d}");
    let bound = d["id"].as_str().unwrap().to_owned();
    s.shut_down().await;
    let data = s.dir.path().join("data");
    let (code, out) = verify(&data);
    assert_eq!(code, 0, "{out}");

    let edits = [
        (
            "action",
            "UPDATE permissions SET action = 'bank.transfer' WHERE id = ?1",
        ),
        (
            "resource",
            "UPDATE permissions SET resource = '/etc/shadow' WHERE id = ?1",
        ),
        (
            "exact details",
            "UPDATE permissions SET details_digest = NULL WHERE id = ?1",
        ),
        (
            "needs actionDetails",
            "UPDATE permissions SET require_details = 0 WHERE id = ?1",
        ),
        (
            "expires",
            "UPDATE permissions SET expires_at = expires_at + 86400000 WHERE id = ?1",
        ),
    ];
    for (i, (what, sql)) in edits.iter().enumerate() {
        let dir = s.dir.path().join(format!("edit{i}"));
        copy_dir(&data, &dir);
        let conn = Connection::open(dir.join("agent-otp.db")).unwrap();
        assert_eq!(conn.execute(sql, [&bound]).unwrap(), 1);
        drop(conn);
        let (code, out) = verify(&dir);
        assert_eq!(code, 6, "{what}: {out}");
        assert!(
            out.contains(&format!("request {bound} disagrees with its audit events")),
            "{what}: {out}"
        );
        assert!(out.contains(what), "{what}: {out}");
    }

    // A human approval whose end was moved before its token was minted.
    let dir = s.dir.path().join("later");
    copy_dir(&data, &dir);
    let conn = Connection::open(dir.join("agent-otp.db")).unwrap();
    let approved: String = conn
        .query_row(
            "SELECT id FROM permissions WHERE action = 'bank.transfer'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE permissions SET expires_at = expires_at + 86400000 WHERE id = ?1",
        [&approved],
    )
    .unwrap();
    drop(conn);
    let (code, out) = verify(&dir);
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains(&format!("request {approved} disagrees")),
        "{out}"
    );
}
