//! Crash safety, black box: the real binary (the release build when `AGENT_OTP_BIN` names it, as
//! `.ci/run` does; else this build's) serves concurrent load, is killed with SIGKILL mid-stream,
//! and is started again on the same data directory, several times over. Every answer the server
//! gave is written in a ledger; an answer is what the server acknowledged (it answers a write only
//! once it is durably committed). A call that got no answer is "unknown": it may or may not have
//! happened. After each kill, with the server down:
//!
//! - SQLite's `integrity_check` is ok and `agent-otp audit verify` exits 0;
//! - every acknowledged request is stored with a status its acknowledged history allows;
//! - for every token, uses acknowledged ≤ uses stored ≤ uses acknowledged + unknown, and the
//!   stored uses match the `token.used` events in the audit trail;
//! - no request exists that was never asked for.
//!
//! After each restart: tokens are used up to exactly what is left, and one more use is refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Kill-and-restart rounds.
const ROUNDS: u64 = 6;
/// Concurrent load workers.
const WORKERS: u64 = 12;
/// Acknowledged requests in a round before the kill may come.
const WARM_UP_ACKS: u64 = 40;
/// Tokens used up after each restart.
const EXHAUST_PER_ROUND: usize = 25;
/// Who approves from the admin API; decisions read `human:<this>`.
const ADMIN: &str = "crash-admin";

const POLICY: &str = r#"
policies:
  - name: auto
    conditions:
      action: { equals: "crash.auto" }
    action: auto_approve
  - name: human
    conditions:
      action: { equals: "crash.human" }
    action: require_approval
"#;

/// The binary under test.
fn binary() -> PathBuf {
    std::env::var_os("AGENT_OTP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_agent-otp")))
}

/// Runs an operator command on the data directory; returns success and stdout.
fn operator(data: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("AGENT_OTP_DATA_DIR")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// `agent-otp serve` as a child process on a loopback port it picks itself.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    /// Starts the server and learns its address from the `agent-otp listening` log line.
    fn start(dir: &Path, n: u64) -> Server {
        let log = dir.join(format!("server-{n}.log"));
        let child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--policies")
            .arg(dir.join("policies.yaml"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // One agent key drives the whole load: the per-key limiter would only add 429s.
            .env("AGENT_OTP_RATE_LIMIT_AGENT", "off")
            // Requests left pending by each kill pile up over the rounds; no cap for this test.
            .env("AGENT_OTP_MAX_PENDING_PER_AGENT", "1000000")
            .env_remove("AGENT_OTP_PUBLIC_URL")
            .env_remove("AGENT_OTP_TELEGRAM_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            base: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(addr) = listening_addr(&text) {
                server.base = format!("http://{addr}");
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server exited ({status}) before listening:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the exit status of the graceful stop.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `addr=` of the `agent-otp listening` line (colour codes, if any, removed).
fn listening_addr(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("agent-otp listening"))?;
    let plain = strip_ansi(line);
    let addr = plain
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))?;
    Some(addr.to_owned())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the server acknowledged about one permission request.
#[derive(Debug, Default, Clone)]
struct Acked {
    /// Asked of a human (else auto-approved by policy).
    human: bool,
    /// A human approval was acknowledged / sent without an answer.
    approved: bool,
    approve_unknown: bool,
    /// The token, once an answer carried it.
    token: Option<String>,
    /// A read that may have minted the token got no answer.
    mint_unknown: bool,
    /// Uses the token was granted.
    granted: i64,
    /// Uses acknowledged as successful; uses sent without an answer.
    uses_ok: i64,
    uses_unknown: i64,
}

/// Everything acknowledged, across all rounds.
#[derive(Default)]
struct Ledger {
    requests: HashMap<String, Acked>,
    /// Ids with a token, to pick from for uses.
    with_token: Vec<String>,
    /// Ids pending a human, to approve.
    pending: Vec<String>,
}

/// Counts for the report.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    acked: AtomicU64,
    unknown: AtomicU64,
    requests_asked: AtomicU64,
    requests_acked: AtomicU64,
    uses_acked: AtomicU64,
    refusals_acked: AtomicU64,
}

struct Load {
    http: reqwest::Client,
    base: String,
    key: String,
    admin: String,
    ledger: Arc<Mutex<Ledger>>,
    counts: Counts,
    stop: AtomicBool,
    /// A bug seen live (not a crash effect): reported after the round.
    violations: Mutex<Vec<String>>,
}

impl Load {
    /// Sends one call; `None` when no full answer came back (the outcome is unknown).
    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        self.counts.sent.fetch_add(1, Ordering::Relaxed);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let answer = async {
            let resp = req.send().await.ok()?;
            let status = resp.status().as_u16();
            let json: Value = resp.json().await.ok()?;
            Some((status, json))
        }
        .await;
        match &answer {
            Some((status, body)) => {
                self.counts.acked.fetch_add(1, Ordering::Relaxed);
                if *status >= 500 {
                    self.violation(format!("{status} from {path}: {body}"));
                }
            }
            None => {
                self.counts.unknown.fetch_add(1, Ordering::Relaxed);
            }
        }
        answer
    }

    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }

    /// One worker: a mix of auto-approved requests, human approvals and token uses.
    async fn worker(self: Arc<Self>, seed: u64) {
        let mut rng = XorShift(seed | 1);
        while !self.stop.load(Ordering::Relaxed) {
            match rng.below(100) {
                0..35 => self.auto_request(&mut rng).await,
                35..45 => self.human_request(&mut rng).await,
                45..55 => self.approve_one(&mut rng).await,
                _ => self.use_one(&mut rng).await,
            }
        }
    }

    /// Asks for `uses` uses of `action`; `None` when the outcome is unknown.
    async fn ask(&self, action: &str, uses: i64) -> Option<(u16, Value)> {
        let body = json!({"action": action, "uses": uses, "ttl": 3600});
        self.counts.requests_asked.fetch_add(1, Ordering::Relaxed);
        self.call("POST", "/api/v1/permissions/request", &self.key, Some(body))
            .await
    }

    async fn auto_request(&self, rng: &mut XorShift) {
        let uses = 1 + rng.below(5) as i64;
        let Some((status, v)) = self.ask("crash.auto", uses).await else {
            return;
        };
        let d = &v["data"];
        if status != 201 || d["status"] != "approved" || d["usesRemaining"] != uses {
            return self.violation(format!("auto request answered {status}: {v}"));
        }
        self.counts.requests_acked.fetch_add(1, Ordering::Relaxed);
        let id = d["id"].as_str().unwrap().to_owned();
        let mut l = self.ledger.lock().unwrap();
        l.requests.insert(
            id.clone(),
            Acked {
                token: Some(d["token"].as_str().unwrap().to_owned()),
                granted: uses,
                ..Acked::default()
            },
        );
        l.with_token.push(id);
    }

    async fn human_request(&self, rng: &mut XorShift) {
        let uses = 1 + rng.below(3) as i64;
        let Some((status, v)) = self.ask("crash.human", uses).await else {
            return;
        };
        if status != 202 || v["data"]["status"] != "pending" {
            return self.violation(format!("human request answered {status}: {v}"));
        }
        self.counts.requests_acked.fetch_add(1, Ordering::Relaxed);
        let id = v["data"]["id"].as_str().unwrap().to_owned();
        let mut l = self.ledger.lock().unwrap();
        l.requests.insert(
            id.clone(),
            Acked {
                human: true,
                granted: uses,
                ..Acked::default()
            },
        );
        l.pending.push(id);
    }

    /// Approves a pending request as a human, then fetches its token as the agent.
    async fn approve_one(&self, rng: &mut XorShift) {
        let id = {
            let mut l = self.ledger.lock().unwrap();
            if l.pending.is_empty() {
                return;
            }
            let i = rng.below(l.pending.len() as u64) as usize;
            l.pending.swap_remove(i)
        };
        let path = format!("/api/v1/admin/permissions/{id}/approve");
        match self.call("POST", &path, &self.admin, Some(json!({}))).await {
            Some((200, _)) => self.update(&id, |a| a.approved = true),
            Some((status, v)) => return self.violation(format!("approve answered {status}: {v}")),
            None => return self.update(&id, |a| a.approve_unknown = true),
        }
        let path = format!("/api/v1/permissions/{id}");
        match self.call("GET", &path, &self.key, None).await {
            Some((200, v)) => match v["data"]["token"].as_str() {
                Some(token) => {
                    self.update(&id, |a| a.token = Some(token.to_owned()));
                    self.ledger.lock().unwrap().with_token.push(id);
                }
                None => self.violation(format!("first read after approval has no token: {v}")),
            },
            Some((status, v)) => self.violation(format!("read answered {status}: {v}")),
            None => self.update(&id, |a| a.mint_unknown = true),
        }
    }

    async fn use_one(&self, rng: &mut XorShift) {
        let picked = {
            let l = self.ledger.lock().unwrap();
            if l.with_token.is_empty() {
                None
            } else {
                let id = &l.with_token[rng.below(l.with_token.len() as u64) as usize];
                Some((id.clone(), l.requests[id].token.clone().unwrap()))
            }
        };
        let Some((id, token)) = picked else {
            return tokio::task::yield_now().await;
        };
        let path = format!("/api/v1/permissions/{id}/use");
        match self
            .call("POST", &path, &self.key, Some(json!({"token": token})))
            .await
        {
            Some((200, v)) if v["data"]["success"] == true => {
                self.counts.uses_acked.fetch_add(1, Ordering::Relaxed);
                let over = self.update(&id, |a| {
                    a.uses_ok += 1;
                    (a.uses_ok > a.granted)
                        .then(|| format!("{id}: use {} of {} succeeded", a.uses_ok, a.granted))
                });
                if let Some(o) = over {
                    self.violation(o);
                }
            }
            // Refused as used up: another worker's use may have been in flight; the bounds
            // are checked offline.
            Some((200, v)) if v["data"]["code"] == "TOKEN_USED" => {
                self.counts.refusals_acked.fetch_add(1, Ordering::Relaxed);
            }
            Some((status, v)) => self.violation(format!("use answered {status}: {v}")),
            None => self.update(&id, |a| a.uses_unknown += 1),
        }
    }

    fn update<T>(&self, id: &str, f: impl FnOnce(&mut Acked) -> T) -> T {
        f(self.ledger.lock().unwrap().requests.get_mut(id).unwrap())
    }
}

/// A small deterministic generator, so a failing round can be replayed from its seed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One row as the database has it.
struct Row {
    status: String,
    decided_by: Option<String>,
    uses_total: i64,
    uses_remaining: i64,
    has_token: bool,
    requested_events: i64,
    approved_events: i64,
    used_events: i64,
}

/// With the server down: the file is sound, the chain verifies, and the ledger holds. Returns
/// how many of the agent's requests are stored.
fn check_offline(dir: &Path, ledger: &Ledger, agent_requests_asked: u64) -> u64 {
    let data = dir.join("data");
    let db = rusqlite::Connection::open(data.join("agent-otp.db")).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "integrity_check after SIGKILL");
    let fk_problems: i64 = db
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_problems, 0, "foreign_key_check after SIGKILL");

    let (ok, out) = operator(&data, &["audit", "verify"]);
    assert!(
        ok && out.starts_with("audit chain ok"),
        "audit verify after SIGKILL: {out}"
    );

    let stored: i64 = db
        .query_row(
            "SELECT count(*) FROM permissions p JOIN agents a ON a.id = p.agent_id WHERE a.name = 'crash-bot'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let stored = u64::try_from(stored).unwrap();
    assert!(
        stored >= ledger.requests.len() as u64 && stored <= agent_requests_asked,
        "{stored} requests stored; {} acknowledged, {agent_requests_asked} asked",
        ledger.requests.len()
    );

    let mut stmt = db
        .prepare(
            "SELECT status, decided_by, uses_total, uses_remaining, token_hash IS NOT NULL,
                (SELECT count(*) FROM audit_events e WHERE e.request_id = p.id AND e.event = 'permission.requested'),
                (SELECT count(*) FROM audit_events e WHERE e.request_id = p.id AND e.event = 'permission.approved'),
                (SELECT count(*) FROM audit_events e WHERE e.request_id = p.id AND e.event = 'token.used')
             FROM permissions p WHERE id = ?1",
        )
        .unwrap();
    for (id, a) in &ledger.requests {
        let row = stmt
            .query_row([id], |r| {
                Ok(Row {
                    status: r.get(0)?,
                    decided_by: r.get(1)?,
                    uses_total: r.get(2)?,
                    uses_remaining: r.get(3)?,
                    has_token: r.get(4)?,
                    requested_events: r.get(5)?,
                    approved_events: r.get(6)?,
                    used_events: r.get(7)?,
                })
            })
            .unwrap_or_else(|e| panic!("acknowledged request {id} is missing: {e}"));
        check_row(id, a, &row);
    }
    stored
}

/// The stored row agrees with everything acknowledged about it.
fn check_row(id: &str, a: &Acked, row: &Row) {
    let what = format!("{id} ({a:?}): status {}", row.status);
    assert_eq!(
        row.requested_events, 1,
        "{what}: its permission.requested event"
    );
    let decided = matches!(row.status.as_str(), "approved" | "used");
    if !a.human {
        assert!(
            decided && row.has_token,
            "{what}: auto-approved with a token"
        );
        assert_eq!(row.decided_by.as_deref(), Some("policy"), "{what}");
    } else if a.approved {
        assert!(decided, "{what}: its approval was acknowledged");
        assert_eq!(
            row.decided_by.as_deref(),
            Some(&*format!("human:{ADMIN}")),
            "{what}"
        );
        assert_eq!(
            row.approved_events, 1,
            "{what}: one permission.approved event"
        );
    } else if a.approve_unknown {
        assert!(decided || row.status == "pending", "{what}");
    } else {
        assert_eq!(row.status, "pending", "{what}: nobody approved it");
        assert_eq!(row.approved_events, 0, "{what}");
    }
    if a.token.is_some() {
        assert!(row.has_token, "{what}: its token was handed out");
    } else if !a.mint_unknown && a.human {
        assert!(!row.has_token, "{what}: no read minted a token");
    }
    assert_eq!(row.uses_total, a.granted, "{what}: uses granted");
    let used = row.uses_total - row.uses_remaining;
    assert!(
        (a.uses_ok..=a.uses_ok + a.uses_unknown).contains(&used),
        "{what}: {used} uses stored, {} acknowledged, {} unknown",
        a.uses_ok,
        a.uses_unknown
    );
    assert_eq!(
        used, row.used_events,
        "{what}: one token.used event per use"
    );
    assert_eq!(
        row.status == "used",
        row.uses_remaining == 0 && decided,
        "{what}: {} uses left",
        row.uses_remaining
    );
}

/// After a restart: tokens work for exactly the uses left, then are refused.
async fn exhaust(load: &Load, ids: &[String]) -> usize {
    let mut uses = 0;
    for id in ids {
        let (token, bound) = {
            let l = load.ledger.lock().unwrap();
            let a = &l.requests[id];
            (
                a.token.clone().unwrap(),
                (
                    a.granted - a.uses_ok - a.uses_unknown,
                    a.granted - a.uses_ok,
                ),
            )
        };
        let path = format!("/api/v1/permissions/{id}/verify");
        let (status, v) = load
            .call("POST", &path, &load.key, Some(json!({"token": token})))
            .await
            .unwrap();
        assert_eq!(status, 200, "{v}");
        let left = v["data"]["usesRemaining"].as_i64().unwrap_or(0);
        assert!(
            (bound.0..=bound.1).contains(&left),
            "{id}: verify says {left} uses left, the ledger allows {bound:?}"
        );
        let path = format!("/api/v1/permissions/{id}/use");
        for n in 0..=left {
            let (status, v) = load
                .call("POST", &path, &load.key, Some(json!({"token": token})))
                .await
                .unwrap();
            assert_eq!(status, 200, "{v}");
            if n < left {
                assert_eq!(
                    v["data"]["success"],
                    true,
                    "{id}: use {} of the {left} left: {v}",
                    n + 1
                );
                load.update(id, |a| a.uses_ok += 1);
                uses += 1;
            } else {
                assert_eq!(
                    v["data"]["success"], false,
                    "{id}: a use beyond the grant: {v}"
                );
                assert_eq!(v["data"]["code"], "TOKEN_USED", "{v}");
            }
        }
    }
    uses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_sigkill_and_tokens_never_overrun() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("policies.yaml"), POLICY).unwrap();
    let (ok, out) = operator(&data, &["init"]);
    assert!(ok, "{out}");
    let (ok, key) = operator(&data, &["agent", "create", "crash-bot"]);
    assert!(ok, "{key}");
    let (ok, admin) = operator(&data, &["admin", "token", "create", "--name", ADMIN]);
    assert!(ok, "{admin}");
    let key = key.lines().next().unwrap().to_owned();
    let admin = admin.lines().next().unwrap().to_owned();

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut asked_total = 0;
    let started = Instant::now();
    for round in 0..=ROUNDS {
        let t0 = Instant::now();
        let mut server = Server::start(dir.path(), round);
        let restart_ms = t0.elapsed().as_millis();
        let load = Arc::new(Load {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            base: server.base.clone(),
            key: key.clone(),
            admin: admin.clone(),
            ledger: Arc::clone(&ledger),
            counts: Counts::default(),
            stop: AtomicBool::new(false),
            violations: Mutex::new(Vec::new()),
        });

        // After a restart: what was left of some tokens is exactly usable, and no more.
        let sample: Vec<String> = {
            let l = ledger.lock().unwrap();
            l.with_token
                .iter()
                .rev()
                .take(EXHAUST_PER_ROUND)
                .cloned()
                .collect()
        };
        let exhausted_uses = exhaust(&load, &sample).await;

        if round == ROUNDS {
            // The last start only checks; then a graceful stop must still work.
            let status = server.terminate();
            assert!(
                status.success(),
                "graceful stop after the crashes: {status}"
            );
            check_offline(dir.path(), &ledger.lock().unwrap(), asked_total);
            break;
        }

        let load_started = Instant::now();
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| tokio::spawn(Arc::clone(&load).worker(round * 1000 + w + 1)))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while load.counts.requests_acked.load(Ordering::Relaxed) < WARM_UP_ACKS {
            assert!(
                Instant::now() < deadline,
                "the load made no progress; log: {}",
                server.log.display()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Kill at a point that differs per round, with every worker mid-call.
        tokio::time::sleep(Duration::from_millis(50 + round * 97 % 400)).await;
        let load_ms = load_started.elapsed().as_millis();
        server.kill();
        load.stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.unwrap();
        }
        let violations = load.violations.lock().unwrap().clone();
        assert!(violations.is_empty(), "round {round}: {violations:#?}");

        asked_total += load.counts.requests_asked.load(Ordering::Relaxed);
        let stored = check_offline(dir.path(), &ledger.lock().unwrap(), asked_total);
        let total_acked = ledger.lock().unwrap().requests.len();
        let c = &load.counts;
        let line = format!(
            "round {round}: restart {restart_ms} ms, load {load_ms} ms; {} calls answered, {} unanswered; \
             {} requests acknowledged, {} uses acknowledged, {} refusals; {exhausted_uses} uses to exhaust {} tokens; \
             {total_acked} acknowledged requests checked ({stored} stored)",
            c.acked.load(Ordering::Relaxed),
            c.unknown.load(Ordering::Relaxed),
            c.requests_acked.load(Ordering::Relaxed),
            c.uses_acked.load(Ordering::Relaxed),
            c.refusals_acked.load(Ordering::Relaxed),
            sample.len(),
        );
        eprintln!("crash: {line}");
    }
    eprintln!(
        "crash: {ROUNDS} SIGKILL rounds in {:.1} s with {}",
        started.elapsed().as_secs_f64(),
        binary().display()
    );
}
