//! The agent-side CLI (`request`, `status`, `verify`, `use`, `revoke`), run as the real binary
//! against a live server: its JSON on stdout and its exit codes are the contract scripts rely on.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::{TestServer, agent_otp_command, eventually};

/// What one CLI run printed and how it exited.
pub struct Run {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

/// Runs `agent-otp ARGS` as agent `key` against server `url`.
pub async fn cli(url: &str, key: &str, args: &[&str]) -> Run {
    let out = Command::from(agent_otp_command())
        .args(args)
        .env("AGENT_OTP_URL", url)
        .env("AGENT_OTP_KEY", key)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stdout.lines().count() <= 1,
        "one JSON line on stdout: {stdout}"
    );
    let json = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout:?}; stderr: {stderr}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

fn base(s: &TestServer) -> String {
    s.url("")
}

/// Waits until the admin API shows exactly one pending request; returns its id.
pub async fn pending_id(s: &TestServer) -> String {
    eventually(5, "a pending request", || async {
        let (_, v) = s
            .get(&s.admin, "/api/v1/admin/permissions?status=pending")
            .await;
        v["data"][0]["id"].as_str().map(str::to_owned)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_approve_then_verify_then_use_once() {
    let s = TestServer::start().await;
    let key = s.agent("shell-bot").await;
    let url = base(&s);

    let r = cli(
        &url,
        &key,
        &["request", "--action", "file.read", "--resource", "/tmp/x"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["status"], "approved");
    let id = r.json["id"].as_str().unwrap();
    let token = r.json["token"].as_str().unwrap();

    let r = cli(&url, &key, &["verify", id, "--token", token]).await;
    assert_eq!(
        (r.code, &r.json["valid"]),
        (0, &json!(true)),
        "{}",
        r.stderr
    );
    let r = cli(&url, &key, &["use", id, "--token", token]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json,
        json!({"success": true, "usesRemaining": 0, "checked": false})
    );

    let r = cli(&url, &key, &["use", id, "--token", token]).await;
    assert_eq!(r.code, 7, "a used token is refused");
    assert_eq!(r.json["code"], "TOKEN_USED");
    let r = cli(&url, &key, &["verify", id, "--token", "otp_wrong"]).await;
    assert_eq!((r.code, &r.json["valid"]), (7, &json!(false)));
    let r = cli(&url, &key, &["status", id]).await;
    assert_eq!((r.code, &r.json["status"]), (4, &json!("used")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn waits_for_a_human_approval_and_gets_the_token() {
    let s = TestServer::start().await;
    let key = s.agent("mailer").await;
    let url = base(&s);
    let waiting = {
        let (url, key) = (url.clone(), key.clone());
        tokio::spawn(async move {
            cli(
                &url,
                &key,
                &[
                    "request",
                    "--action",
                    "gmail.send",
                    "--scope",
                    r#"{"max_recipients_count":1}"#,
                    "--context",
                    r#"{"reason":"invoice"}"#,
                    "--wait",
                    "30",
                ],
            )
            .await
        })
    };
    let id = pending_id(&s).await;
    s.approve(&id).await;
    let r = waiting.await.unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["status"], "approved");
    assert_eq!(r.json["id"], id.as_str());
    assert!(r.stderr.contains("/requests/"), "says where to approve");
    let token = r.json["token"].as_str().unwrap();
    let r = cli(
        &url,
        &key,
        &[
            "use",
            &id,
            "--token",
            token,
            "--details",
            r#"{"recipients":["a@example.com"]}"#,
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_pending_expired_and_revoked_have_their_own_exit_codes() {
    let s = TestServer::start().await;
    let key = s.agent("edge-cases").await;
    let url = base(&s);

    // A number the server would refuse is refused before anything is sent.
    let out = Command::from(agent_otp_command())
        .args(["request", "--action", "file.read"])
        .args(["--scope", r#"{"max_amount": 1e-400}"#])
        .env("AGENT_OTP_URL", &url)
        .env("AGENT_OTP_KEY", &key)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("would be read as 0.0"), "{stderr}");
    assert_eq!(s.permission_count().await, 0);

    let r = cli(&url, &key, &["request", "--action", "shell.exec"]).await;
    assert_eq!(r.code, 3, "denied");
    assert!(r.json["reason"].as_str().unwrap().contains("deny-shell"));

    // Pending without --wait, and a wait that runs out, both exit 5.
    let r = cli(&url, &key, &["request", "--action", "db.drop"]).await;
    assert_eq!((r.code, &r.json["status"]), (5, &json!("pending")));
    let first = r.json["id"].as_str().unwrap().to_owned();
    let r = cli(&url, &key, &["status", &first, "--wait", "1"]).await;
    assert_eq!((r.code, &r.json["status"]), (5, &json!("pending")));

    // Expiry while waiting: the server's clock passes the TTL, the long-poll wakes.
    let before = s.listeners();
    let waiting = {
        let (url, key) = (url.clone(), key.clone());
        tokio::spawn(async move {
            cli(
                &url,
                &key,
                &["request", "--action", "db.drop", "--ttl", "30", "--wait"],
            )
            .await
        })
    };
    // It asked, then subscribed to wait.
    s.until_listening(before + 1).await;
    s.clock.advance(Duration::from_secs(31));
    let r = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the waiting CLI wakes on expiry")
        .unwrap();
    assert_eq!((r.code, &r.json["status"]), (4, &json!("expired")));

    // Revoke an approved one: its token stops working.
    let r = cli(&url, &key, &["request", "--action", "file.read"]).await;
    let (id, token) = (
        r.json["id"].as_str().unwrap().to_owned(),
        r.json["token"].as_str().unwrap().to_owned(),
    );
    let r = cli(&url, &key, &["revoke", &id]).await;
    assert_eq!((r.code, &r.json["status"]), (0, &json!("revoked")));
    let r = cli(&url, &key, &["use", &id, "--token", &token]).await;
    assert_eq!((r.code, &r.json["code"]), (7, &json!("TOKEN_REVOKED")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_key_bad_input_and_no_server_are_errors_with_json() {
    let s = TestServer::start().await;
    let url = base(&s);
    let r = cli(
        &url,
        "ak_not-a-real-key",
        &["request", "--action", "file.read"],
    )
    .await;
    assert_eq!(r.code, 6);
    assert_eq!(r.json["success"], false);
    assert_eq!(r.json["error"]["code"], "UNAUTHORIZED");

    let key = s.agent("validator").await;
    let r = cli(&url, &key, &["request", "--action", "x", "--ttl", "5"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(r.json["error"]["code"], "VALIDATION_ERROR");
    assert!(r.json["error"]["details"]["ttl"].is_string(), "{}", r.json);

    // An id cannot walk to another route: it is one encoded path segment.
    let r = cli(&url, &key, &["status", "../admin/permissions"]).await;
    assert_eq!(r.json["error"]["code"], "NOT_FOUND");

    // The key can come from a file.
    let key_file = s.dir.path().join("key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let out = Command::from(agent_otp_command())
        .args(["request", "--action", "file.read"])
        .env("AGENT_OTP_URL", &url)
        .env("AGENT_OTP_KEY_FILE", &key_file)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.stop().await;

    // Nothing listens there any more.
    let r = cli(&url, &key, &["request", "--action", "file.read"]).await;
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert_eq!(r.json["error"]["code"], "NETWORK_ERROR");
}
