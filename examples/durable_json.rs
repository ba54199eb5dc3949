//! The "durable limit" baseline for `bench/run.sh`: the least any durable, audited service must
//! do per request. The same actix-web stack as `bare_json`, but each request is answered only
//! after one SQLite insert of a row the size of a permission request and one of an audit event
//! have committed, group-committed by one writer thread (as agent-otp's writer does), with the
//! same durability settings: WAL, `synchronous=FULL`, `BEGIN IMMEDIATE`. No policy, no token, no
//! hash chain, no auth: what is left is the cost of durability itself.
//!
//! Usage: `durable_json 127.0.0.1:18081 /tmp/dir/durable.db`

use std::sync::mpsc;

use actix_web::{App, HttpResponse, HttpServer, web};
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// One request's rows, and where to send the answer once they are durable.
struct Job {
    body: String,
    done: oneshot::Sender<i64>,
}

/// Most jobs committed together (agent-otp's writer batches whatever is waiting, too).
const MAX_BATCH: usize = 256;

fn writer(path: String, jobs: mpsc::Receiver<Job>) -> rusqlite::Result<()> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, body TEXT NOT NULL,
             scope TEXT NOT NULL, status TEXT NOT NULL, token_hash TEXT, at INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, details TEXT NOT NULL,
             prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
    )?;
    // A permission row and its audit event carry ids, hashes and JSON: about this much.
    let filler = "0".repeat(64);
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
            tx.prepare_cached(
                "INSERT INTO requests(body, scope, status, token_hash, at) VALUES (?1, '{}', 'approved', ?2, 0)",
            )?
            .execute(params![job.body, filler])?;
            let id = tx.last_insert_rowid();
            tx.prepare_cached("INSERT INTO events(details, prev_hash, hash) VALUES (?1, ?2, ?2)")?
                .execute(params![job.body, filler])?;
            ids.push(id);
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
        body: body.into_inner().to_string(),
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
