//! The "durable limit" baseline for `bench/run.sh`: the least any durable, audited service must
//! do per request. The same actix-web stack as `bare_json`, but each request is answered only
//! after one SQLite insert of a row the size of a permission request and one the size of its
//! audit event have committed, group-committed by one writer thread (as agent-otp's writer does),
//! with the same durability settings: WAL, `synchronous=FULL`, `BEGIN IMMEDIATE`. No policy, no
//! token, no hash chain, no auth, no index: what is left is the cost of durability itself.
//!
//! The rows carry what agent-otp's rows for the same request carry, column for column (ids, the
//! policy version and token hashes, the scopes and the event's JSON), so they are as large:
//! `bench/run.sh` prints both sizes, read from each database after its run.
//!
//! Usage: `durable_json 127.0.0.1:18081 /tmp/dir/durable.db`

use std::sync::mpsc;

use actix_web::{App, HttpResponse, HttpServer, web};
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// One request's rows, and where to send the answer once they are durable.
struct Job {
    body: Value,
    done: oneshot::Sender<i64>,
}

/// Most jobs committed together (agent-otp's writer batches whatever is waiting, too).
const MAX_BATCH: usize = 256;

/// A UUID's length as text, and a SHA-256's as hex.
const ID: usize = 36;
const HASH: usize = 64;

fn writer(path: String, jobs: mpsc::Receiver<Job>) -> rusqlite::Result<()> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS requests (id TEXT NOT NULL, agent_id TEXT NOT NULL,
             action TEXT NOT NULL, requested_scope TEXT NOT NULL, scope TEXT NOT NULL,
             context TEXT NOT NULL, status TEXT NOT NULL, rule TEXT, policy_version TEXT NOT NULL,
             decided_by TEXT, decided_at INTEGER, ttl_secs INTEGER NOT NULL,
             uses_total INTEGER NOT NULL, uses_remaining INTEGER NOT NULL, token_hash TEXT,
             token_issued_at INTEGER, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL,
             require_details INTEGER NOT NULL) STRICT;
         CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL,
             actor TEXT NOT NULL, event TEXT NOT NULL, request_id TEXT, agent_id TEXT,
             details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
             keyed INTEGER NOT NULL) STRICT;",
    )?;
    let (id, hash) = ("0".repeat(ID), "0".repeat(HASH));
    let actor = format!("agent:{id}");
    let at: i64 = 1_796_134_226_177;
    let scope = json!({"max_amount": 100}).to_string();
    // The keys and values of agent-otp's `permission.requested` event but the action, made once:
    // the baseline stores them, it does not build them.
    let details_rest = json!({
        "context": {}, "decision": "auto_approve", "expiresAt": "2026-12-01T14:15:26.177Z",
        "grantedScope": {"max_amount": 100}, "policyVersion": hash, "requestedScope": {},
        "resource": null, "rule": "bench-auto", "tokenHash": hash, "ttl": 300, "uses": 1,
    })
    .to_string();
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(batch.len());
        for job in &batch {
            let action = job.body["action"].as_str().unwrap_or("");
            tx.prepare_cached(
                "INSERT INTO requests VALUES (?1, ?2, ?3, '{}', ?4, '{}', 'approved', 'bench-auto',
                    ?5, 'policy', ?6, 300, 1, 1, ?5, ?6, ?6, ?6, 0)",
            )?
            .execute(params![id, id, action, scope, hash, at])?;
            let row = tx.last_insert_rowid();
            let details = format!("{{\"action\":{},{}", json!(action), &details_rest[1..]);
            tx.prepare_cached(
                "INSERT INTO events(at, actor, event, request_id, agent_id, details, prev_hash,
                    hash, keyed) VALUES (?1, ?2, 'permission.requested', ?3, ?3, ?4, ?5, ?5, 1)",
            )?
            .execute(params![at, actor, id, details, hash])?;
            ids.push(row);
        }
        tx.commit()?;
        for (job, id) in batch.into_iter().zip(ids) {
            let _ = job.done.send(id);
        }
    }
    Ok(())
}

async fn handle(jobs: web::Data<mpsc::Sender<Job>>, body: web::Json<Value>) -> HttpResponse {
    let (done, wait) = oneshot::channel();
    let job = Job {
        body: body.into_inner(),
        done,
    };
    if jobs.send(job).is_err() {
        return HttpResponse::InternalServerError().finish();
    }
    match wait.await {
        Ok(id) => HttpResponse::Created().json(json!({ "success": true, "data": { "id": id } })),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let path = args.next().unwrap_or_else(|| "durable.db".to_owned());
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::spawn(move || {
        if let Err(e) = writer(path, rx) {
            eprintln!("durable_json writer failed: {e}");
            std::process::exit(1);
        }
    });
    let jobs = web::Data::new(tx);
    HttpServer::new(move || {
        App::new()
            .app_data(jobs.clone())
            .route("/", web::post().to(handle))
    })
    .bind(addr)?
    .run()
    .await
}
