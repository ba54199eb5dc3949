//! The tamper-evident audit trail: the chain verifies after a mixed workload; editing any field,
//! deleting or swapping rows through SQLite directly is found at the right seq with the right exit
//! code; an independent Python script recomputes the chain from the export; a failed audit write
//! leaves no state change behind; no secret reaches an event, the database or the log.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde_json::{Value, json};

use crate::support::{ChildServer, Ran, TEST_POLICY, TestServer, run_cli};

/// Runs `sql` (one or more statements) on the database at `db`, as an intruder with the file
/// would: a plain connection, without the audit key or the server's SQL functions.
fn tamper(db: &Path, sql: &str) {
    open(db)
        .execute_batch(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn open(db: &Path) -> Connection {
    let conn = Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// The single value `sql` selects.
fn value<T: rusqlite::types::FromSql>(db: &Path, sql: &str) -> T {
    open(db)
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row `sql` selects, a line each, its columns as text joined by `|`.
fn rows(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(sql).unwrap();
    let columns = stmt.column_count();
    let lines = stmt
        .query_map([], |r| {
            let cells = (0..columns)
                .map(|i| {
                    Ok(match r.get::<_, SqlValue>(i)? {
                        SqlValue::Null => String::new(),
                        SqlValue::Integer(n) => n.to_string(),
                        SqlValue::Real(x) => x.to_string(),
                        SqlValue::Text(t) => t,
                        SqlValue::Blob(b) => {
                            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                            format!("X'{hex}'")
                        }
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(cells.join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    lines.join("\n")
}

/// The whole database as text: the schema and every row of every table.
fn dump(db: &Path) -> String {
    let conn = open(db);
    let schema = rows(&conn, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL");
    let tables = rows(&conn, "SELECT name FROM sqlite_master WHERE type = 'table'");
    let mut out = schema;
    for table in tables.lines() {
        out.push('\n');
        out.push_str(&rows(&conn, &format!("SELECT * FROM \"{table}\"")));
    }
    out
}

/// Runs a representative mix of everything that is audited.
async fn mixed_workload(s: &TestServer) {
    let key = s.agent("worker").await;
    let other = s.agent("helper").await;
    // Auto-approved, used, refused (scope violation with numbers and non-ASCII text).
    let (_, d) = s
        .request(
            &key,
            json!({"action": "email.send", "scope": {"max_recipients": 1.5e0, "note": "Grüße ✓"},
                   "context": {"why": "line\nbreak \"quoted\" \u{1F600}", "n": 0.1}}),
        )
        .await;
    let (id, token) = (d["id"].as_str().unwrap(), d["token"].as_str().unwrap());
    s.use_token(
        &key,
        id,
        token,
        Some(json!({"recipients": ["a@example.com", "b@example.com"]})),
    )
    .await;
    s.use_token(
        &key,
        id,
        token,
        Some(json!({"recipients": ["a@example.com"]})),
    )
    .await;
    // Human approval with narrowing, token fetched, used.
    let (_, d) = s
        .request(&key, json!({"action": "deploy", "ttl": 600, "uses": 3}))
        .await;
    let pending = d["id"].as_str().unwrap().to_owned();
    let (st, b) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{pending}/approve"),
            json!({"uses": 1, "note": "once"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{pending}")).await;
    let t = v["data"]["token"].as_str().unwrap();
    s.use_token(&key, &pending, t, None).await;
    // Denied by a human, denied by policy, revoked by the agent, expired by time.
    let (_, d) = s.request(&other, json!({"action": "deploy"})).await;
    let denied = d["id"].as_str().unwrap();
    s.post(
        &s.admin,
        &format!("/api/v1/admin/permissions/{denied}/deny"),
        json!({"reason": "no"}),
    )
    .await;
    s.request(&other, json!({"action": "shell.exec"})).await;
    let (_, d) = s.request(&other, json!({"action": "file.read"})).await;
    let id = d["id"].as_str().unwrap();
    s.post(
        &other,
        &format!("/api/v1/permissions/{id}/revoke"),
        json!({}),
    )
    .await;
    let (_, d) = s
        .request(&other, json!({"action": "deploy", "ttl": 30}))
        .await;
    let lapsing = d["id"].as_str().unwrap().to_owned();
    s.clock.advance(Duration::from_secs(31));
    crate::support::eventually(10, "the sweeper", || async {
        let (_, v) = s
            .get(
                &s.admin,
                &format!("/api/v1/admin/audit?request={lapsing}&event=permission.expired"),
            )
            .await;
        (v["meta"]["total"] == 1).then_some(())
    })
    .await;
    // A policy reload and a rejected one, then an agent revoked.
    let policy = s.dir.path().join("policies.yaml");
    std::fs::write(&policy, format!("{TEST_POLICY}\n# edited\n")).unwrap();
    s.handle.as_ref().unwrap().service.policy().current();
    agent_otp::testing::policy::watch::reload(
        &s.handle.as_ref().unwrap().service,
        agent_otp::testing::policy::watch::Trigger::Manual,
    )
    .await;
    std::fs::write(&policy, "policies: [").unwrap();
    agent_otp::testing::policy::watch::reload(
        &s.handle.as_ref().unwrap().service,
        agent_otp::testing::policy::watch::Trigger::Manual,
    )
    .await;
    let (st, _) = s
        .call(&s.admin, "DELETE", "/api/v1/admin/agents/helper", None)
        .await;
    assert_eq!(st, StatusCode::OK);
}

/// A server's database after a mixed workload, copied whole with SQLite's backup API (WAL
/// included), and the server.
async fn workload_database() -> (tempfile::TempDir, PathBuf, TestServer) {
    let s = TestServer::start().await;
    mixed_workload(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.db");
    open(&s.db_path())
        .backup(rusqlite::MAIN_DB, &base, None)
        .unwrap();
    (dir, base, s)
}

/// A data directory holding a copy of `base` changed by `sql`, with the audit key and the
/// checkpoints of the server's data directory `source` beside it (as an intruder who has only
/// the database file would leave them).
fn tampered(dir: &Path, base: &Path, source: &Path, name: &str, sql: &str) -> PathBuf {
    let data = dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("agent-otp.db");
    std::fs::copy(base, &db).unwrap();
    copy_anchor(source, &data);
    if !sql.is_empty() {
        tamper(&db, sql);
    }
    data
}

/// Copies the audit key and the checkpoint file from one data directory to another.
fn copy_anchor(from: &Path, to: &Path) {
    for file in ["audit.key", "audit.checkpoints"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

fn verify(data: &Path, extra: &[&str]) -> (i32, String) {
    let Ran {
        code,
        stdout,
        stderr,
        ..
    } = run_cli(
        &[
            &["audit", "verify", "--data-dir", data.to_str().unwrap()],
            extra,
        ]
        .concat(),
    );
    (code, format!("{stdout}{stderr}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_tampering_is_found_at_the_right_seq() {
    let (dir, base, mut s) = workload_database().await;
    let source = s.dir.path().join("data");
    s.shut_down().await;
    let count: i64 = value(&base, "SELECT count(*) FROM audit_events");
    assert!(count >= 20, "a real workload: {count} events");
    let kinds = rows(
        &open(&base),
        "SELECT DISTINCT event FROM audit_events ORDER BY event",
    );
    for kind in [
        "admin_token.created",
        "agent.created",
        "agent.revoked",
        "permission.approved",
        "permission.denied",
        "permission.expired",
        "permission.requested",
        "permission.revoked",
        "policy.reload_rejected",
        "policy.reloaded",
        "token.issued",
        "token.use_refused",
        "token.used",
    ] {
        assert!(
            kinds.lines().any(|k| k == kind),
            "{kind} missing from {kinds}"
        );
    }

    let intact = tampered(dir.path(), &base, &source, "intact", "");
    let (code, out) = verify(&intact, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("audit chain ok: {count} events, head ")),
        "{out}"
    );

    // Editing any field of a row: first, a middle and the last row.
    let edits = [
        ("at", "at = at + 1"),
        ("actor", "actor = 'human:mallory'"),
        ("event", "event = 'permission.approved'"),
        ("request_id", "request_id = 'forged'"),
        ("agent_id", "agent_id = 'forged'"),
        ("details", "details = '{\"forged\":true}'"),
        ("prev_hash", "prev_hash = lower(hex(randomblob(32)))"),
        ("hash", "hash = lower(hex(randomblob(32)))"),
    ];
    for seq in [1, count / 2, count] {
        for (field, set) in edits {
            let data = tampered(
                dir.path(),
                &base,
                &source,
                &format!("{field}-{seq}"),
                &format!("UPDATE audit_events SET {set} WHERE seq = {seq}"),
            );
            let (code, out) = verify(&data, &[]);
            assert_eq!(code, 3, "{field} of {seq}: {out}");
            assert!(
                out.starts_with(&format!("audit chain broken at seq {seq} (changed)")),
                "{field} of {seq}: {out}"
            );
        }
    }
    // Editing seq moves the row out of its place: that place is now empty.
    let mid = count / 2;
    let data = tampered(
        dir.path(),
        &base,
        &source,
        "seq",
        &format!("UPDATE audit_events SET seq = 1000000 WHERE seq = {mid}"),
    );
    let (code, out) = verify(&data, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.starts_with(&format!("audit chain broken at seq {mid} (missing)")),
        "{out}"
    );

    // Deleting a row.
    for seq in [1, mid] {
        let data = tampered(
            dir.path(),
            &base,
            &source,
            &format!("delete-{seq}"),
            &format!("DELETE FROM audit_events WHERE seq = {seq}"),
        );
        let (code, out) = verify(&data, &[]);
        assert_eq!(code, 4, "{out}");
        assert!(
            out.starts_with(&format!("audit chain broken at seq {seq} (missing)")),
            "{out}"
        );
    }
    // Deleting the newest rows leaves a valid shorter chain: the checkpoint written at shutdown
    // shows it without any head noted by hand (and a noted head shows it too).
    let head: String = value(
        &base,
        &format!("SELECT hash FROM audit_events WHERE seq = {count}"),
    );
    let head = head.as_str();
    let Ran { stdout: noted, .. } =
        run_cli(&["audit", "head", "--data-dir", intact.to_str().unwrap()]);
    assert_eq!(noted.trim(), head);
    let data = tampered(
        dir.path(),
        &base,
        &source,
        "truncated",
        &format!("DELETE FROM audit_events WHERE seq = {count}"),
    );
    let (code, out) = verify(&data, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.starts_with(&format!(
            "audit chain broken after seq {} (missing)",
            count - 1
        )),
        "{out}"
    );
    let (code, out) = verify(&data, &["--expect-head", head]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("is not in the chain"), "{out}");
    assert_eq!(verify(&intact, &["--expect-head", head]).0, 0);

    // Swapping two rows (their seq values), adjacent or not.
    for (a, b) in [(mid, mid + 1), (2, count - 1)] {
        let data = tampered(
            dir.path(),
            &base,
            &source,
            &format!("swap-{a}-{b}"),
            &format!(
                "UPDATE audit_events SET seq = -1 WHERE seq = {a};
                 UPDATE audit_events SET seq = {a} WHERE seq = {b};
                 UPDATE audit_events SET seq = {b} WHERE seq = -1;"
            ),
        );
        let (code, out) = verify(&data, &[]);
        assert_eq!(code, 5, "{out}");
        assert!(
            out.starts_with(&format!("audit chain broken at seq {a} (reordered)")),
            "{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_independent_script_recomputes_the_exported_chain() {
    let (dir, base, s) = workload_database().await;
    let data = tampered(dir.path(), &base, &s.dir.path().join("data"), "export", "");
    let d = data.to_str().unwrap();
    let key_file = data.join("audit.key");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/verify_audit_export.py"
    );
    let python = |file: &Path| {
        let out = Command::new("python3")
            .arg(script)
            .arg("--key-file")
            .arg(&key_file)
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };

    let Ran {
        code,
        stdout: export,
        ..
    } = run_cli(&["audit", "export", "--data-dir", d]);
    assert_eq!(code, 0);
    let full = dir.path().join("full.jsonl");
    std::fs::write(&full, &export).unwrap();
    let Ran { stdout: head, .. } = run_cli(&["audit", "head", "--data-dir", d]);
    let (code, out) = python(&full);
    assert_eq!(code, 0, "{out}");
    let lines = export.lines().count();
    assert_eq!(
        out.trim(),
        format!("ok: {lines} events, head {}", head.trim())
    );
    let first: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    for field in [
        "seq",
        "at",
        "time",
        "actor",
        "event",
        "requestId",
        "agentId",
        "details",
        "prevHash",
        "hash",
        "keyed",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }

    // A changed line is caught at its seq.
    let mut changed: Vec<String> = export.lines().map(str::to_owned).collect();
    let mut row: Value = serde_json::from_str(&changed[4]).unwrap();
    row["details"]["forged"] = json!(true);
    changed[4] = row.to_string();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, changed.join("\n")).unwrap();
    let (code, out) = python(&bad);
    assert_eq!(code, 1);
    assert!(
        out.starts_with(&format!("broken at seq {}:", row["seq"])),
        "{out}"
    );

    // Filtered exports: each row still recomputes.
    let middle: Value = serde_json::from_str(export.lines().last().unwrap()).unwrap();
    let middle = middle["time"].as_str().unwrap().to_owned();
    for filter in [
        vec!["--agent", "worker"],
        vec!["--event", "token.used"],
        vec!["--since", &middle],
    ] {
        let Ran {
            code,
            stdout: part,
            stderr: err,
            ..
        } = run_cli(&[&["audit", "export", "--data-dir", d], filter.as_slice()].concat());
        assert_eq!(code, 0, "{err}");
        assert!(
            part.lines().count() > 0 && part.lines().count() < lines,
            "{filter:?}"
        );
        let file = dir.path().join("part.jsonl");
        std::fs::write(&file, &part).unwrap();
        assert_eq!(python(&file).0, 0, "{filter:?}");
    }
    let Ran { stdout: part, .. } =
        run_cli(&["audit", "export", "--data-dir", d, "--agent", "worker"]);
    let worker_id = part
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| v["agentId"].clone())
        .collect::<std::collections::HashSet<_>>();
    assert_eq!(worker_id.len(), 1, "{worker_id:?}");
    let Ran {
        code, stdout: part, ..
    } = run_cli(&[
        "audit",
        "export",
        "--data-dir",
        d,
        "--since",
        "2100-01-01T00:00:00Z",
    ]);
    assert_eq!((code, part.as_str()), (0, ""));
    let Ran {
        code, stderr: err, ..
    } = run_cli(&["audit", "export", "--data-dir", d, "--since", "yesterday"]);
    assert_eq!(code, 1);
    assert!(err.contains("--since"), "{err}");
    let Ran {
        code, stderr: err, ..
    } = run_cli(&["audit", "export", "--data-dir", d, "--agent", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("no agent"), "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_filters_and_pages_the_trail() {
    let s = TestServer::start().await;
    mixed_workload(&s).await;
    let get = |q: String| {
        let s = &s;
        async move {
            let (st, v) = s.get(&s.admin, &format!("/api/v1/admin/audit{q}")).await;
            assert_eq!(st, StatusCode::OK, "{q}: {v}");
            v
        }
    };
    let all = get("?limit=100".into()).await;
    let total = all["meta"]["total"].as_i64().unwrap();
    let events = all["data"].as_array().unwrap();
    assert_eq!(events.len() as i64, total);
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() > w[1]["seq"].as_i64()),
        "newest first"
    );

    let page2 = get("?limit=5&page=2".into()).await;
    assert_eq!(page2["meta"]["totalPages"], (total + 4) / 5);
    assert_eq!(page2["data"][0]["seq"], events[5]["seq"]);

    let by_name = get("?agent=worker&limit=100".into()).await;
    let worker = by_name["data"][0]["agentId"].as_str().unwrap().to_owned();
    let by_id = get(format!("?agent={worker}&limit=100")).await;
    assert_eq!(by_name["meta"]["total"], by_id["meta"]["total"]);
    assert!(
        by_name["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["agentId"] == worker.as_str())
    );

    let used = get("?event=token.used".into()).await;
    let n_used = events.iter().filter(|e| e["event"] == "token.used").count();
    assert!(n_used >= 1);
    assert_eq!(used["meta"]["total"], n_used);
    let request = used["data"][0]["requestId"].as_str().unwrap().to_owned();
    let for_request = get(format!("?request={request}&event=token.used")).await;
    assert_eq!(for_request["meta"]["total"], 1);

    // Time range: since inclusive, until exclusive.
    let oldest = &events[events.len() - 1];
    let newest = &events[0];
    let (t0, t1) = (
        oldest["at"].as_str().unwrap(),
        newest["at"].as_str().unwrap(),
    );
    let v = get(format!("?since={t0}&limit=100")).await;
    assert_eq!(v["meta"]["total"], total);
    let v = get(format!("?until={t0}")).await;
    assert_eq!(v["meta"]["total"], 0);
    let v = get(format!("?since={t1}&limit=100")).await;
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["at"] == newest["at"])
    );

    for bad in [
        "?since=yesterday",
        "?until=2026-13-01T00:00:00Z",
        "?limit=0",
    ] {
        let (st, v) = s.get(&s.admin, &format!("/api/v1/admin/audit{bad}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    }
    // A well-formed filter naming an agent that does not exist: 404, not an empty page.
    let (st, v) = s.get(&s.admin, "/api/v1/admin/audit?agent=nobody").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "NOT_FOUND");
    let key = s.agent("nosy").await;
    let (st, _) = s.get(&key, "/api/v1/admin/audit").await;
    assert!(
        st == StatusCode::FORBIDDEN || st == StatusCode::UNAUTHORIZED,
        "{st}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_audit_write_changes_nothing() {
    let s = TestServer::start().await;
    let key = s.agent("worker").await;
    let (_, d) = s.request(&key, json!({"action": "deploy"})).await;
    let pending = d["id"].as_str().unwrap().to_owned();
    let (_, d) = s
        .request(&key, json!({"action": "file.read", "uses": 2}))
        .await;
    let (granted, token) = (
        d["id"].as_str().unwrap().to_owned(),
        d["token"].as_str().unwrap().to_owned(),
    );
    let audit_count = || value::<i64>(&s.db_path(), "SELECT count(*) FROM audit_events");
    let before_events = audit_count();
    let before_requests = s.permission_count().await;
    let version = s
        .handle
        .as_ref()
        .unwrap()
        .service
        .policy()
        .current()
        .policy
        .version()
        .to_owned();

    tamper(
        &s.db_path(),
        "CREATE TRIGGER audit_fails BEFORE INSERT ON audit_events
         BEGIN SELECT RAISE(ABORT, 'simulated audit write failure'); END;",
    );
    let expect_500 = |(st, v): (StatusCode, Value), what: &str| {
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{what}: {v}");
        assert_eq!(v["error"]["code"], "INTERNAL_ERROR", "{what}");
        assert!(
            !v.to_string().contains("simulated"),
            "no internals leak: {v}"
        );
    };
    let r = "/api/v1/permissions/request";
    expect_500(
        s.post(&key, r, json!({"action": "file.read"})).await,
        "auto-approve",
    );
    expect_500(
        s.post(&key, r, json!({"action": "deploy"})).await,
        "pending",
    );
    expect_500(
        s.post(&key, r, json!({"action": "shell.exec"})).await,
        "deny",
    );
    expect_500(
        s.post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{pending}/approve"),
            json!({}),
        )
        .await,
        "approve",
    );
    expect_500(
        s.post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{pending}/deny"),
            json!({}),
        )
        .await,
        "deny",
    );
    expect_500(
        s.post(
            &key,
            &format!("/api/v1/permissions/{granted}/use"),
            json!({"token": token}),
        )
        .await,
        "use",
    );
    expect_500(
        s.post(
            &key,
            &format!("/api/v1/permissions/{granted}/use"),
            json!({"token": "otp_wrong"}),
        )
        .await,
        "refused use",
    );
    expect_500(
        s.post(
            &key,
            &format!("/api/v1/permissions/{granted}/revoke"),
            json!({}),
        )
        .await,
        "revoke",
    );
    expect_500(
        s.post(&s.admin, "/api/v1/admin/agents", json!({"name": "ghost"}))
            .await,
        "create agent",
    );
    // A valid new policy file is not put in force when its reload cannot be recorded.
    std::fs::write(
        s.dir.path().join("policies.yaml"),
        "policies:\n  - name: open\n    conditions: {}\n    action: auto_approve\n",
    )
    .unwrap();
    let outcome = agent_otp::testing::policy::watch::reload(
        &s.handle.as_ref().unwrap().service,
        agent_otp::testing::policy::watch::Trigger::Manual,
    )
    .await;
    assert_eq!(
        outcome,
        agent_otp::testing::policy::watch::Reload::NotRecorded
    );
    let (_, h) = s.get(&s.admin, "/health").await;
    assert_eq!(h["data"]["policy"]["version"], version.as_str());
    assert!(
        h["data"]["policy"]["lastReloadError"]["message"]
            .as_str()
            .unwrap()
            .contains("audit")
    );

    // Nothing changed.
    assert_eq!(audit_count(), before_events);
    assert_eq!(s.permission_count().await, before_requests);
    let (_, v) = s
        .get(&s.admin, &format!("/api/v1/admin/permissions/{pending}"))
        .await;
    assert_eq!(v["data"]["status"], "pending");
    let (_, v) = s
        .get(&s.admin, &format!("/api/v1/admin/permissions/{granted}"))
        .await;
    assert_eq!(v["data"]["status"], "approved");
    assert_eq!(v["data"]["usesRemaining"], 2);
    let (_, v) = s.get(&s.admin, "/api/v1/admin/agents").await;
    assert!(!v.to_string().contains("ghost"));

    // Once the audit trail can be written again, everything works and the chain is whole.
    tamper(&s.db_path(), "DROP TRIGGER audit_fails");
    let data = s.use_token(&key, &granted, &token, None).await;
    assert_eq!(data["success"], true);
    let outcome = agent_otp::testing::policy::watch::reload(
        &s.handle.as_ref().unwrap().service,
        agent_otp::testing::policy::watch::Trigger::Manual,
    )
    .await;
    assert!(
        matches!(
            outcome,
            agent_otp::testing::policy::watch::Reload::Applied { .. }
        ),
        "{outcome:?}"
    );
    let dir = s.dir.path().join("data");
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, 0, "{out}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_an_event_the_database_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let policies = dir.path().join("policies.yaml");
    std::fs::write(&policies, TEST_POLICY).unwrap();
    let d = data.to_str().unwrap();
    let mut secrets = Vec::new();
    let mut cli_logs = String::new();
    let mut cli = |args: &[&str]| {
        let Ran {
            code,
            stdout: out,
            stderr: err,
            ..
        } = run_cli(&[args, &["--data-dir", d]].concat());
        assert_eq!(code, 0, "{err}");
        cli_logs.push_str(&err);
        out.trim().to_owned()
    };
    cli(&["init"]);
    let admin = cli(&["admin", "token", "create", "--name", "alice"]);
    let key = cli(&["agent", "create", "worker"]);
    secrets.extend([admin.clone(), key.clone()]);

    let server = ChildServer::start(&data, &policies, "debug").await;
    let http = reqwest::Client::new();
    let call = |auth: String, method: reqwest::Method, path: String, body: Option<Value>| {
        let http = http.clone();
        let url = format!("{}{path}", server.base);
        async move {
            let mut req = http.request(method, url).bearer_auth(auth);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let st = resp.status();
            (st, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let post = |auth: &str, path: String, body: Value| {
        call(auth.to_owned(), reqwest::Method::POST, path, Some(body))
    };
    let get = |auth: &str, path: String| call(auth.to_owned(), reqwest::Method::GET, path, None);

    let (st, v) = post(
        &key,
        "/api/v1/permissions/request".into(),
        json!({"action": "file.read"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (id1, t1) = (
        v["data"]["id"].as_str().unwrap().to_owned(),
        v["data"]["token"].as_str().unwrap().to_owned(),
    );
    post(
        &key,
        format!("/api/v1/permissions/{id1}/verify"),
        json!({"token": t1}),
    )
    .await;
    post(
        &key,
        format!("/api/v1/permissions/{id1}/use"),
        json!({"token": t1}),
    )
    .await;
    post(
        &key,
        format!("/api/v1/permissions/{id1}/use"),
        json!({"token": t1}),
    )
    .await;
    let (st, v) = post(
        &key,
        "/api/v1/permissions/request".into(),
        json!({"action": "deploy"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id2 = v["data"]["id"].as_str().unwrap().to_owned();
    let (st, _) = post(
        &admin,
        format!("/api/v1/admin/permissions/{id2}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = get(&key, format!("/api/v1/permissions/{id2}")).await;
    let t2 = v["data"]["token"].as_str().unwrap().to_owned();
    post(
        &key,
        format!("/api/v1/permissions/{id2}/use"),
        json!({"token": t2}),
    )
    .await;
    let (st, v) = post(
        &admin,
        "/api/v1/admin/agents".into(),
        json!({"name": "second"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let key2 = v["data"]["key"].as_str().unwrap().to_owned();
    post(
        &key2,
        "/api/v1/permissions/request".into(),
        json!({"action": "shell.rm"}),
    )
    .await;
    // Wrong and unknown credentials are secrets too (often a typo of a real one).
    let wrong_key = format!("ak_{}", "W".repeat(40));
    let wrong_token = format!("otp_{}", "Q".repeat(40));
    let (st, _) = post(
        &wrong_key,
        "/api/v1/permissions/request".into(),
        json!({"action": "x"}),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    post(
        &key,
        format!("/api/v1/permissions/{id1}/use"),
        json!({"token": wrong_token}),
    )
    .await;
    let (st, _) = get(
        &format!("adm_{}", "Z".repeat(40)),
        "/api/v1/admin/audit".into(),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    secrets.extend([
        t1,
        t2,
        key2,
        wrong_key,
        wrong_token,
        format!("adm_{}", "Z".repeat(40)),
    ]);
    let log = server.stop();
    assert!(log.contains("DEBUG"), "the log really is at debug level");

    let db = data.join("agent-otp.db");
    let events = rows(&open(&db), "SELECT * FROM audit_events");
    let dump = dump(&db);
    assert!(dump.contains("worker") && dump.contains(&id1), "{dump}");
    let export = run_cli(&["audit", "export", "--data-dir", d]).stdout;
    assert!(events.lines().count() >= 12, "{events}");
    for secret in &secrets {
        // The whole value and its random part alone.
        let random = &secret[secret.find('_').unwrap() + 1..];
        for needle in [secret.as_str(), random] {
            for (place, text) in [
                ("an audit event", &events),
                ("the export", &export),
                ("the database", &dump),
                ("the server log", &log),
                ("the CLI log", &cli_logs),
            ] {
                assert!(
                    !text.contains(needle),
                    "a secret ({}…) is in {place}",
                    &secret[..6]
                );
            }
        }
    }
}
