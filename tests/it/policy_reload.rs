//! Hot reload while serving: a valid edit decides the next request, an invalid one (each kind of
//! mistake) keeps the last good policy and is reported in `/health` and the audit trail, and
//! delete-and-recreate, rename-over and SIGHUP all reload.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ChildServer, TEST_POLICY, TestServer, eventually, run_cli_on};

/// `file.read` is denied instead of auto-approved.
const STRICT_POLICY: &str = r#"
policies:
  - name: no-reads
    conditions:
      action: { equals: "file.read" }
    action: deny
"#;

fn sha256(text: &str) -> String {
    agent_otp::testing::secret::sha256_hex(text.as_bytes())
}

async fn health(s: &TestServer) -> Value {
    // The policy is told to an admin only.
    let (status, body) = s.get(&s.admin, "/health").await;
    assert_eq!(status, StatusCode::OK);
    body["data"]["policy"].clone()
}

/// Waits until `/health` reports the policy `version` in force.
async fn wait_for_version(s: &TestServer, version: &str) -> Value {
    eventually(10, "the new policy version", || async {
        let h = health(s).await;
        (h["version"] == version).then_some(h)
    })
    .await
}

/// Waits until `/health` reports a reload error about the file with this content hash.
async fn wait_for_rejection(s: &TestServer, version: Option<&str>) -> Value {
    eventually(10, "the reload error", || async {
        let h = health(s).await;
        let err = &h["lastReloadError"];
        (!err.is_null() && err["version"] == json!(version)).then(|| err.clone())
    })
    .await
}

async fn audit_events(s: &TestServer, kind: &str) -> Vec<Value> {
    let (status, body) = s
        .get(
            &s.admin,
            &format!("/api/v1/admin/audit?event={kind}&limit=100"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn decision(s: &TestServer, key: &str) -> String {
    let (_, data) = s.request(key, json!({"action": "file.read"})).await;
    data["status"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_edit_decides_the_next_request() {
    let s = TestServer::start().await;
    let key = s.agent("reader").await;
    let before = health(&s).await;
    assert_eq!(before["version"], sha256(TEST_POLICY));
    assert!(before["loadedAt"].is_string());
    assert!(before["lastReloadError"].is_null());
    assert_eq!(decision(&s, &key).await, "approved");

    s.clock.advance(std::time::Duration::from_secs(5));
    std::fs::write(s.dir.path().join("policies.yaml"), STRICT_POLICY).unwrap();
    let after = wait_for_version(&s, &sha256(STRICT_POLICY)).await;
    assert_ne!(after["loadedAt"], before["loadedAt"]);
    assert_eq!(after["rules"], 1);
    assert_eq!(decision(&s, &key).await, "denied");

    let reloads = audit_events(&s, "policy.reloaded").await;
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    let d = &reloads[0]["details"];
    assert_eq!(d["version"], sha256(STRICT_POLICY));
    assert_eq!(d["previousVersion"], sha256(TEST_POLICY));
    assert_eq!(d["trigger"], "file_change");
    assert_eq!(reloads[0]["actor"], "system");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_kind_of_invalid_edit_keeps_the_last_good_policy() {
    let s = TestServer::start().await;
    let key = s.agent("reader").await;
    let path = s.dir.path().join("policies.yaml");
    let good = sha256(TEST_POLICY);
    // (what is wrong, file, line, text the error must contain)
    let cases: &[(&str, &str, u64, &str)] = &[
        (
            "YAML syntax",
            "policies:\n  - name: a\n    conditions: {}\n    action: [deny\n",
            4,
            "",
        ),
        (
            "unknown key",
            "policies:\n  - name: a\n    conditions: {}\n    action: deny\n    scope_template: {}\n",
            5,
            "unknown field `scope_template`",
        ),
        (
            "unknown operator",
            "policies:\n  - name: a\n    conditions:\n      action: { startWith: x }\n    action: deny\n",
            4,
            "unknown operator `startWith`",
        ),
        (
            "wrong type",
            "policies:\n  - name: a\n    conditions: {}\n    action: deny\n    priority: high\n",
            5,
            "whole number",
        ),
        (
            "bad regex",
            "policies:\n  - name: a\n    conditions:\n      action: { matches: \"(unclosed\" }\n    action: deny\n",
            4,
            "regex",
        ),
        (
            "duplicate key",
            "policies:\n  - name: a\n    conditions: {}\n    action: deny\n    action: auto_approve\n",
            5,
            "duplicate",
        ),
    ];
    for (n, (what, yaml, line, text)) in cases.iter().enumerate() {
        std::fs::write(&path, yaml).unwrap();
        let err = wait_for_rejection(&s, Some(&sha256(yaml))).await;
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(text), "{what}: {message}");
        assert!(
            message.contains(&format!("line {line}, column")),
            "{what}: {message}"
        );
        assert_eq!(err["problems"][0]["line"], *line, "{what}: {err}");
        assert!(err["problems"][0]["column"].is_u64(), "{what}: {err}");
        // The old policy still decides.
        assert_eq!(health(&s).await["version"], good, "{what}");
        assert_eq!(decision(&s, &key).await, "approved", "{what}");
        let rejected = audit_events(&s, "policy.reload_rejected").await;
        assert_eq!(rejected.len(), n + 1, "{what}: one event per rejected file");
        let d = &rejected[0]["details"];
        assert_eq!(d["version"], sha256(yaml), "{what}");
        assert_eq!(d["keptVersion"], good.as_str(), "{what}");
        assert_eq!(d["error"], message, "{what}");
    }
    // Fixing the file clears the error.
    std::fs::write(&path, STRICT_POLICY).unwrap();
    let h = wait_for_version(&s, &sha256(STRICT_POLICY)).await;
    assert!(h["lastReloadError"].is_null(), "{h}");
    assert_eq!(decision(&s, &key).await, "denied");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_keeps_the_policy_and_says_so_then_recreate_reloads() {
    let s = TestServer::start().await;
    let key = s.agent("reader").await;
    let path = s.dir.path().join("policies.yaml");
    std::fs::remove_file(&path).unwrap();
    let err = wait_for_rejection(&s, None).await;
    assert!(
        err["message"].as_str().unwrap().contains("is missing"),
        "{err}"
    );
    // Not the built-in rule: the last good policy still auto-approves reads.
    let h = health(&s).await;
    assert_eq!(h["version"], sha256(TEST_POLICY));
    assert_ne!(h["source"], "builtin");
    assert_eq!(decision(&s, &key).await, "approved");
    let rejected = audit_events(&s, "policy.reload_rejected").await;
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0]["details"]["version"].is_null());

    std::fs::write(&path, STRICT_POLICY).unwrap();
    let h = wait_for_version(&s, &sha256(STRICT_POLICY)).await;
    assert!(h["lastReloadError"].is_null());
    assert_eq!(decision(&s, &key).await, "denied");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn renaming_a_new_file_over_the_policy_reloads() {
    let s = TestServer::start().await;
    let key = s.agent("reader").await;
    let tmp = s.dir.path().join(".policies.yaml.swp");
    std::fs::write(&tmp, STRICT_POLICY).unwrap();
    std::fs::rename(&tmp, s.dir.path().join("policies.yaml")).unwrap();
    wait_for_version(&s, &sha256(STRICT_POLICY)).await;
    assert_eq!(decision(&s, &key).await, "denied");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_created_after_start_replaces_the_builtin_rule() {
    let s = TestServer::with_policy(None).await;
    let key = s.agent("reader").await;
    assert_eq!(decision(&s, &key).await, "pending");
    std::fs::write(s.dir.path().join("policies.yaml"), STRICT_POLICY).unwrap();
    let h = wait_for_version(&s, &sha256(STRICT_POLICY)).await;
    assert_ne!(h["source"], "builtin");
    assert_eq!(decision(&s, &key).await, "denied");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_during_reloads_see_one_whole_policy() {
    // Flip between two policies while requests run: every decision names a version and a rule
    // that belong together.
    let s = TestServer::start().await;
    let key = s.agent("reader").await;
    let path = s.dir.path().join("policies.yaml");
    let (a, b) = (sha256(TEST_POLICY), sha256(STRICT_POLICY));
    let flipper = {
        let path = path.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                let text = if i % 2 == 0 {
                    STRICT_POLICY
                } else {
                    TEST_POLICY
                };
                std::fs::write(&path, text).unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(120)).await;
            }
        })
    };
    let mut seen = std::collections::HashSet::new();
    while !flipper.is_finished() {
        let (_, data) = s.request(&key, json!({"action": "file.read"})).await;
        let id = data["id"].as_str().unwrap();
        let (_, view) = s
            .get(&s.admin, &format!("/api/v1/admin/permissions/{id}"))
            .await;
        let v = &view["data"];
        let pair = (
            v["policyVersion"].as_str().unwrap().to_owned(),
            v["rule"].as_str().unwrap().to_owned(),
        );
        assert!(
            (pair.0 == a && pair.1 == "auto-file-read") || (pair.0 == b && pair.1 == "no-reads"),
            "{pair:?}"
        );
        seen.insert(pair.0);
        // Paced: unpaced, a fast build sends more than the agent's default rate limit allows.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    flipper.await.unwrap();
    assert!(!seen.is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_real_binary() {
    // The policy path is a symlink into another directory, so editing the target makes no event
    // in the watched directory: only SIGHUP can bring the change in.
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    std::fs::create_dir_all(&real_dir).unwrap();
    let real = real_dir.join("policies.yaml");
    std::fs::write(&real, TEST_POLICY).unwrap();
    let link = dir.path().join("policies.yaml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let data = dir.path().join("data");
    let server = ChildServer::start(&data, &link, "info").await;
    // `/health` tells the policy to an admin only.
    let ran = run_cli_on(&data, &["admin", "token", "create"]);
    assert!(ran.ok, "{}", ran.stderr);
    let admin = ran.stdout.trim().to_owned();
    let http = reqwest::Client::new();
    let version = || {
        let http = http.clone();
        let url = format!("{}/health", server.base);
        let admin = admin.clone();
        async move {
            let answer = http.get(&url).bearer_auth(admin).send().await.unwrap();
            let body: Value = answer.json().await.unwrap();
            body["data"]["policy"]["version"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(version().await, sha256(TEST_POLICY));

    std::fs::write(&real, STRICT_POLICY).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        version().await,
        sha256(TEST_POLICY),
        "no file event reaches the watcher here"
    );
    server.signal("HUP");
    let want = sha256(STRICT_POLICY);
    eventually(10, "the reload after SIGHUP", || async {
        (version().await == want).then_some(())
    })
    .await;
    let log = server.stop();
    assert!(log.contains("SIGHUP received"), "{log}");
    assert!(log.contains("policy reloaded"), "{log}");

    // The audit trail says what triggered it.
    let store = agent_otp::testing::store::Store::open(&data.join("agent-otp.db")).unwrap();
    let (events, _) = store
        .read_blocking(|c| {
            let filter = agent_otp::testing::domain::AuditFilter {
                event: Some("policy.reloaded".into()),
                ..Default::default()
            };
            agent_otp::testing::store::audit::page(c, &filter, 0, 10)
        })
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].details["trigger"], "sighup");
}
