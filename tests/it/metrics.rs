//! `/metrics`: who may scrape it, and what it counts. The counters are process-wide, so the
//! workload runs against the real binary as a child process (nothing else adds to its counts)
//! and the scrape is parsed as Prometheus text: every sample belongs to a declared family,
//! histograms are cumulative, and the counts are exactly the workload's.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_telegram::{Failure, FakeTelegram, TOKEN};
use crate::support::{ChildServer, TestServer, eventually, run_cli_on};

const POLICY: &str = r#"
- name: deny-shell
  conditions: { action: { startsWith: "shell." } }
  action: deny
- name: auto-read
  conditions: { action: { equals: "file.read" } }
  action: auto_approve
- name: ask
  conditions: {}
  action: require_approval
  priority: -10
"#;

/// One parsed scrape: (metric name, labels) → value, and the declared family types.
struct Scrape {
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
                None => (series, BTreeMap::new()),
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
                .unwrap_or(name);
            assert!(types.contains_key(family), "{name} has no # TYPE: {line}");
            let key = (name.to_owned(), labels);
            assert!(samples.insert(key, value).is_none(), "duplicate {line}");
        }
        Scrape { samples, types }
    }

    /// The value of `name{labels}`, 0 when absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    /// Checks a histogram series: buckets never decrease and `+Inf` equals `_count`.
    fn check_histogram(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        assert_eq!(self.types[name], "histogram");
        let mut last = 0.0;
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let bucket = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|((n, l), _)| *n == bucket && want.iter().all(|(k, v)| l.get(k) == Some(v)))
            .map(|((_, l), v)| {
                let le = &l["le"];
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, *v)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.len() > 2, "{name} {labels:?}");
        for (_, v) in &buckets {
            assert!(*v >= last, "{name} buckets are cumulative: {buckets:?}");
            last = *v;
        }
        let count = self.get(&format!("{name}_count"), labels);
        assert_eq!(last, count, "{name} +Inf bucket is the count");
        count
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().unwrap() {
                (_, '\\') => match chars.next().unwrap().1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// Runs an operator command on `data`; returns its stdout's last line.
fn operator(data: &std::path::Path, args: &[&str]) -> String {
    let ran = run_cli_on(data, args);
    assert!(ran.ok, "{args:?}: {}", ran.stderr);
    ran.stdout.lines().last().unwrap_or("").trim().to_owned()
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    auth: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{base}{path}");
    let req = match body {
        Some(b) => http.post(url).json(&b),
        None => http.get(url),
    };
    let resp = req.bearer_auth(auth).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn scrape(http: &reqwest::Client, base: &str, auth: &str) -> Scrape {
    let resp = http
        .get(format!("{base}/metrics"))
        .bearer_auth(auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    Scrape::parse(&resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_a_workload_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let policies = dir.path().join("policies.yaml");
    std::fs::write(&policies, POLICY).unwrap();
    operator(&data, &["init"]);
    let key = operator(&data, &["agent", "create", "worker"]);
    let admin = operator(&data, &["admin", "token", "create", "--name", "ops"]);

    let fake = FakeTelegram::start().await;
    // The first approval message meets a 429: one retried call, then delivered.
    fake.fail_next("sendMessage", 1, Failure::RetryAfter(1));
    let env = [
        ("AGENT_OTP_TELEGRAM_TOKEN", TOKEN),
        ("AGENT_OTP_TELEGRAM_API_URL", fake.url.as_str()),
        ("AGENT_OTP_TELEGRAM_APPROVERS", "777"),
    ];
    let server = ChildServer::start_with_env(&data, &policies, "warn", &env).await;
    let (http, base) = (reqwest::Client::new(), server.base.clone());

    // Who may scrape: nobody without credentials, no agent, an admin token.
    let resp = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = http
        .get(format!("{base}/metrics"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // The workload: 3 auto-approved, 2 denied, 3 for a human (1 approved, 1 denied, 1 left).
    let request = |body: Value| {
        call(
            &http,
            &base,
            &key,
            "/api/v1/permissions/request",
            Some(body),
        )
    };
    let mut grants = Vec::new();
    for _ in 0..3 {
        let (status, body) = request(json!({"action": "file.read"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        grants.push((
            body["data"]["id"].as_str().unwrap().to_owned(),
            body["data"]["token"].as_str().unwrap().to_owned(),
        ));
    }
    for _ in 0..2 {
        let (status, _) = request(json!({"action": "shell.exec"})).await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut asked = Vec::new();
    for _ in 0..3 {
        let (status, body) = request(json!({"action": "email.send"})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        asked.push(body["data"]["id"].as_str().unwrap().to_owned());
    }
    let admin_path = |id: &str, verdict: &str| format!("/api/v1/admin/permissions/{id}/{verdict}");
    let (status, _) = call(
        &http,
        &base,
        &admin,
        &admin_path(&asked[0], "approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &http,
        &base,
        &admin,
        &admin_path(&asked[1], "deny"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Uses: one without details, one with, then two refusals.
    let use_path = |id: &str| format!("/api/v1/permissions/{id}/use");
    let uses = [
        (&grants[0], json!({"token": grants[0].1}), json!(true)),
        (
            &grants[1],
            json!({"token": grants[1].1, "actionDetails": {}}),
            json!(true),
        ),
        (&grants[0], json!({"token": grants[0].1}), json!(false)),
        (&grants[2], json!({"token": "otp_wrong"}), json!(false)),
    ];
    let mut codes = Vec::new();
    for ((id, _), body, ok) in uses {
        let (status, answer) = call(&http, &base, &key, &use_path(id), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["data"]["success"], ok, "{answer}");
        if let Some(code) = answer["data"]["code"].as_str() {
            codes.push(code.to_owned());
        }
    }
    assert_eq!(codes.len(), 2);

    // A rejected reload, then an applied one.
    std::fs::write(
        &policies,
        "- name: broken\n  conditions: {}\n  action: maybe\n",
    )
    .unwrap();
    // The policy's state is shown to an admin only.
    let health = |http: reqwest::Client, base: String| {
        let admin = admin.clone();
        async move {
            let v: Value = http
                .get(format!("{base}/health"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    eventually(10, "the rejected reload", || {
        let (h, b) = (http.clone(), base.clone());
        async move { (!health(h, b).await["data"]["policy"]["lastReloadError"].is_null()).then_some(()) }
    })
    .await;
    std::fs::write(&policies, format!("{POLICY}\n# edited\n")).unwrap();
    eventually(10, "the applied reload", || {
        let (h, b) = (http.clone(), base.clone());
        async move {
            let policy = &health(h, b).await["data"]["policy"];
            (policy["lastReloadError"].is_null() && policy["version"].is_string()).then_some(())
        }
    })
    .await;

    // The 429 is counted once the outbox has met it.
    let m = eventually(15, "the telegram retry to be counted", || {
        let (http, base, admin) = (http.clone(), base.clone(), admin.clone());
        async move {
            let m = scrape(&http, &base, &admin).await;
            let retried = [("what", "send approval"), ("outcome", "retried")];
            (m.get("agent_otp_telegram_failures_total", &retried) >= 1.0).then_some(m)
        }
    })
    .await;

    let requests = "agent_otp_requests_total";
    assert_eq!(m.types[requests], "counter");
    assert_eq!(
        m.get(
            requests,
            &[("decision", "auto_approve"), ("rule", "auto-read")]
        ),
        3.0
    );
    assert_eq!(
        m.get(requests, &[("decision", "deny"), ("rule", "deny-shell")]),
        2.0
    );
    assert_eq!(
        m.get(
            requests,
            &[("decision", "require_approval"), ("rule", "ask")]
        ),
        3.0
    );
    assert_eq!(m.types["agent_otp_pending_requests"], "gauge");
    assert_eq!(m.get("agent_otp_pending_requests", &[]), 1.0);

    let decided = "agent_otp_human_decision_seconds";
    assert_eq!(m.check_histogram(decided, &[("outcome", "approved")]), 1.0);
    assert_eq!(m.check_histogram(decided, &[("outcome", "denied")]), 1.0);

    assert_eq!(
        m.get("agent_otp_token_uses_total", &[("checked", "false")]),
        1.0
    );
    assert_eq!(
        m.get("agent_otp_token_uses_total", &[("checked", "true")]),
        1.0
    );
    for code in &codes {
        let want = codes.iter().filter(|c| *c == code).count() as f64;
        assert_eq!(
            m.get("agent_otp_token_refusals_total", &[("code", code)]),
            want,
            "{code}"
        );
    }
    let refusals: f64 = m
        .samples
        .iter()
        .filter(|((n, _), _)| n == "agent_otp_token_refusals_total")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refusals, 2.0);

    let reloads = "agent_otp_policy_reloads_total";
    assert_eq!(m.get(reloads, &[("result", "rejected")]), 1.0);
    assert_eq!(m.get(reloads, &[("result", "applied")]), 1.0);
    assert_eq!(m.get("agent_otp_expired_total", &[]), 0.0);

    // Every write went through a group commit: 8 requests, 2 decisions, 2 uses, 1 reload event,
    // 1 rejection event, at least (plus the Telegram messages' bookkeeping).
    let batches = m.check_histogram("agent_otp_writer_batch_jobs", &[]);
    let commits = m.check_histogram("agent_otp_writer_commit_seconds", &[]);
    assert_eq!(batches, commits, "one commit per batch");
    let jobs = m.get("agent_otp_writer_batch_jobs_sum", &[]);
    assert!(
        jobs >= 14.0 && jobs >= batches,
        "{jobs} jobs in {batches} batches"
    );
    assert!(m.get("agent_otp_writer_commit_seconds_sum", &[]) > 0.0);

    drop(server);
    fake.stop().await;
}

/// Expiries are counted when the sweeper writes them down (in-process, with the clock moved on;
/// the registry is shared with other tests here, so this checks the difference).
#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_expiries_from_the_sweeper() {
    let s = TestServer::start().await;
    let key = s.agent("lapsing").await;
    let expired = |m: &Scrape| m.get("agent_otp_expired_total", &[]);
    let before = expired(&scrape(&s.http, &s.url(""), &s.admin).await);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, data) = s
            .request(&key, json!({"action": "email.draft", "ttl": 30}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        ids.push(data["id"].as_str().unwrap().to_owned());
    }
    s.clock.advance(Duration::from_secs(31));
    eventually(10, "the sweeper to expire both", || async {
        let m = scrape(&s.http, &s.url(""), &s.admin).await;
        (expired(&m) >= before + 2.0).then_some(())
    })
    .await;
    s.stop().await;
}
