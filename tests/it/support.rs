//! A running server per test, with helpers to make agents and call the API.

use std::time::Duration;

use agent_otp::app::{self, AppHandle};
use agent_otp::clock::{Clock, Timestamp};
use agent_otp::config::Config;
use agent_otp::testing::domain::Actor;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A policy with one rule per decision, keyed on the action.
pub const TEST_POLICY: &str = r#"
policies:
  - name: deny-shell
    description: shell commands are never allowed
    conditions:
      action: { startsWith: "shell." }
    action: deny
    priority: 100
  - name: auto-file-read
    conditions:
      action: { equals: "file.read" }
    action: auto_approve
  - name: capped-email
    conditions:
      action: { equals: "email.send" }
    action: auto_approve
    scopeTemplate:
      max_recipients: 2
      allowed_domains: ["example.com", "example.org"]
      blocked_recipients: ["ceo@example.com"]
      cc_required: false
  - name: everything-else
    conditions: {}
    action: require_approval
    priority: -10
"#;

pub struct TestServer {
    pub handle: Option<AppHandle>,
    /// The settings it runs with (for [`TestServer::restart`]).
    pub config: Config,
    pub dir: TempDir,
    pub http: reqwest::Client,
    pub clock: Clock,
    pub admin: String,
}

impl TestServer {
    /// A server running [`TEST_POLICY`].
    pub async fn start() -> TestServer {
        TestServer::with_policy(Some(TEST_POLICY)).await
    }

    /// A server with this policy file (or none: the built-in rule).
    pub async fn with_policy(policy: Option<&str>) -> TestServer {
        TestServer::with_config(policy, |_| {}).await
    }

    /// A server with this policy and settings changed by `tweak` before it starts.
    pub async fn with_config(policy: Option<&str>, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().join("data"));
        config.policies = dir.path().join("policies.yaml");
        if let Some(p) = policy {
            std::fs::write(&config.policies, p).unwrap();
        }
        config.sweep_interval = Duration::from_millis(50);
        config.clock = Clock::manual(Timestamp(1_780_000_000_000));
        tweak(&mut config);
        let clock = config.clock.clone();
        let handle = app::start(config.clone()).await.unwrap();
        let (_, admin) = handle
            .service
            .create_admin_token(Actor::Operator, "alice", None)
            .await
            .unwrap();
        let admin = admin.expose().to_owned();
        TestServer {
            handle: Some(handle),
            config,
            dir,
            http: reqwest::Client::new(),
            clock,
            admin,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.as_ref().unwrap().url())
    }

    pub fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("data").join("agent-otp.db")
    }

    /// Creates an agent through the admin API and returns its key.
    pub async fn agent(&self, name: &str) -> String {
        let (status, body) = self
            .call(
                &self.admin,
                "POST",
                "/api/v1/admin/agents",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"]["key"].as_str().unwrap().to_owned()
    }

    /// Posts `body` as it is written (so a number keeps every digit it was sent with), with
    /// `Authorization: Bearer <auth>`; returns status and JSON.
    pub async fn post_raw(&self, auth: &str, path: &str, body: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(auth)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    /// Sends a request with `Authorization: Bearer <auth>` and a JSON body; returns status and JSON.
    pub async fn call(
        &self,
        auth: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, self.url(path));
        if !auth.is_empty() {
            req = req.bearer_auth(auth);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        (status, json)
    }

    pub async fn post(&self, auth: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(auth, "POST", path, Some(body)).await
    }

    pub async fn get(&self, auth: &str, path: &str) -> (StatusCode, Value) {
        self.call(auth, "GET", path, None).await
    }

    /// Creates a protected service for `actions` (comma-separated patterns); returns its key.
    pub async fn service(&self, name: &str, actions: &str) -> String {
        let svc = &self.handle.as_ref().unwrap().service;
        let (_, key) = svc
            .create_protected_service(Actor::Operator, name, actions)
            .await
            .unwrap();
        key.expose().to_owned()
    }

    /// Asks for a permission; returns status and `data`.
    pub async fn request(&self, key: &str, body: Value) -> (StatusCode, Value) {
        let (status, body) = self.post(key, "/api/v1/permissions/request", body).await;
        assert_eq!(body["success"], json!(true), "{body}");
        (status, body["data"].clone())
    }

    /// Starts the agent's long-poll `GET /permissions/:id?wait=30` in the background and returns
    /// once the server is waiting on it (subscribed to changes), so what happens next wakes it.
    /// The task yields the JSON answer and how long the call took.
    pub async fn long_poll(
        &self,
        key: &str,
        id: &str,
    ) -> tokio::task::JoinHandle<(Value, Duration)> {
        let request = self
            .http
            .get(self.url(&format!("/api/v1/permissions/{id}?wait=30")))
            .bearer_auth(key);
        let before = self.listeners();
        let poll = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let v: Value = request.send().await.unwrap().json().await.unwrap();
            (v, started.elapsed())
        });
        self.until_listening(before + 1).await;
        poll
    }

    /// How many listeners wait for request changes now (long polls, open pages, Telegram).
    pub fn listeners(&self) -> usize {
        self.handle.as_ref().unwrap().listeners()
    }

    /// Waits until at least `n` listeners wait for request changes.
    pub async fn until_listening(&self, n: usize) {
        eventually(10, &format!("{n} listeners for changes"), || async {
            (self.listeners() >= n).then_some(())
        })
        .await;
    }

    /// Asks for a permission that the policy grants at once: its id and token.
    pub async fn granted(&self, key: &str, body: Value) -> (String, String) {
        let (status, data) = self.request(key, body).await;
        assert_eq!(status, StatusCode::CREATED, "{data}");
        let field = |name: &str| data[name].as_str().unwrap().to_owned();
        (field("id"), field("token"))
    }

    /// Asks, with `body` as it is written, for a permission that the policy grants at once:
    /// its id and token.
    pub async fn granted_raw(&self, key: &str, body: &str) -> (String, String) {
        let (status, v) = self
            .post_raw(key, "/api/v1/permissions/request", body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let field = |name: &str| v["data"][name].as_str().unwrap().to_owned();
        (field("id"), field("token"))
    }

    /// A `file.read` request with `uses` uses, which [`TEST_POLICY`] approves at once: its id and
    /// token.
    pub async fn grant(&self, key: &str, uses: i64) -> (String, String) {
        self.granted(key, json!({"action": "file.read", "uses": uses}))
            .await
    }

    /// Approves a pending request as the admin; returns the answer.
    pub async fn approve(&self, id: &str) -> Value {
        let path = format!("/api/v1/admin/permissions/{id}/approve");
        let (status, v) = self.post(&self.admin, &path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// Verifies a token (never consumes it); returns status and the whole answer.
    pub async fn verify(&self, key: &str, id: &str, token: &str) -> (StatusCode, Value) {
        let path = format!("/api/v1/permissions/{id}/verify");
        self.post(key, &path, json!({ "token": token })).await
    }

    /// Uses a token; returns `data`.
    pub async fn use_token(
        &self,
        key: &str,
        id: &str,
        token: &str,
        details: Option<Value>,
    ) -> Value {
        let mut body = json!({ "token": token });
        if let Some(d) = details {
            body["actionDetails"] = d;
        }
        let (status, body) = self
            .post(key, &format!("/api/v1/permissions/{id}/use"), body)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].clone()
    }

    /// How many permission requests exist (through the admin API).
    pub async fn permission_count(&self) -> i64 {
        let (status, body) = self
            .get(&self.admin, "/api/v1/admin/permissions?limit=1")
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["meta"]["total"].as_i64().unwrap()
    }

    /// Stops the server and starts it again on the same data directory and settings.
    pub async fn restart(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        self.handle = Some(app::start(self.config.clone()).await.unwrap());
    }

    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops the server but keeps its data directory (to inspect what it left there).
    pub async fn shut_down(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

/// A test that ends without [`TestServer::stop`] (a failed assertion, an early return) stops
/// its server here, so it does not keep serving, or hold the data directory's lock, beside the
/// next test. Drop cannot await, so on the multi-threaded runtime the graceful shutdown runs in
/// place; on a current-thread runtime it is handed to the runtime, which drops it (and with it
/// the HTTP server) when the test returns.
impl Drop for TestServer {
    fn drop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match runtime.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| runtime.block_on(handle.shutdown()));
            }
            _ => drop(runtime.spawn(handle.shutdown())),
        }
    }
}

/// Polls `check` every 20 ms until it gives `Some`, failing after `secs` seconds. A check with
/// nothing to await is still written `|| async { … }`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `agent-otp` binary under test, with no `AGENT_OTP_*` variable inherited from whoever
/// runs the tests (a test sets the ones it means).
pub fn agent_otp_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agent-otp"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AGENT_OTP_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// How one run of the binary ended.
pub struct Ran {
    /// Exit code 0.
    pub ok: bool,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Runs `cmd` to its end (it must exit, not die of a signal, and print UTF-8).
    pub fn of(cmd: &mut std::process::Command) -> Ran {
        Ran::from(cmd.output().unwrap())
    }

    /// Stdout, then stderr.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl From<std::process::Output> for Ran {
    fn from(out: std::process::Output) -> Ran {
        let code = out.status.code().expect("exited, not killed by a signal");
        Ran {
            ok: code == 0,
            code,
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

/// Runs `agent-otp ARGS`.
pub fn run_cli(args: &[&str]) -> Ran {
    Ran::of(agent_otp_command().args(args))
}

/// Runs `agent-otp ARGS --data-dir DATA` (an operator command on that data directory).
pub fn run_cli_on(data: &std::path::Path, args: &[&str]) -> Ran {
    Ran::of(agent_otp_command().args(args).arg("--data-dir").arg(data))
}

/// The real `agent-otp serve` binary as a child process, with its stderr (the log) in a file.
pub struct ChildServer {
    pub child: std::process::Child,
    pub base: String,
    pub log: std::path::PathBuf,
}

impl ChildServer {
    /// Starts `agent-otp serve` on a free loopback port and waits until `/health` answers.
    pub async fn start(
        data_dir: &std::path::Path,
        policies: &std::path::Path,
        rust_log: &str,
    ) -> ChildServer {
        ChildServer::start_with_env(data_dir, policies, rust_log, &[]).await
    }

    /// [`ChildServer::start`] with these environment variables set as well.
    pub async fn start_with_env(
        data_dir: &std::path::Path,
        policies: &std::path::Path,
        rust_log: &str,
        env: &[(&str, &str)],
    ) -> ChildServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = data_dir.with_extension("log");
        let child = agent_otp_command()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--policies")
            .arg(policies)
            .env("RUST_LOG", rust_log)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let server = ChildServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = reqwest::Client::new();
        let url = format!("{}/health", server.base);
        eventually(30, "the child server to answer", || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.ok().map(|_| ()) }
        })
        .await;
        server
    }

    /// Sends a signal by name (`HUP`, `TERM`) with the `kill` tool.
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Stops the server with SIGTERM and returns its log.
    pub fn stop(mut self) -> String {
        self.signal("TERM");
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON value nested `depth` objects deep: `{"k": {"k": … 1}}`.
pub fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!({ "k": inner }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_test_server_stops_serving() {
    let s = TestServer::start().await;
    let addr = s.handle.as_ref().unwrap().addr;
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    drop(s);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening on {addr} after the drop"
    );
}
