//! Each decision path end to end, the way an agent written for the v0.1 SDK drives it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn auto_approve_then_verify_does_not_consume_then_use_once() {
    let s = TestServer::start().await;
    let key = s.agent("reader").await;
    let (status, data) = s
        .request(
            &key,
            json!({"action": "file.read", "resource": "/tmp/a.txt"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(data["status"], "approved");
    assert_eq!(data["usesRemaining"], 1);
    let token = data["token"].as_str().unwrap();
    assert!(token.starts_with("otp_") && token.len() >= 36, "{token}");
    let id = data["id"].as_str().unwrap();

    for _ in 0..2 {
        let (st, v) = s.verify(&key, id, token).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["data"]["valid"], true, "{v}");
        assert_eq!(v["data"]["usesRemaining"], 1, "verify must not consume");
    }

    let used = s.use_token(&key, id, token, None).await;
    assert_eq!(
        used,
        json!({"success": true, "usesRemaining": 0, "checked": false}),
        "a use without actionDetails consumes, unchecked"
    );
    let again = s.use_token(&key, id, token, None).await;
    assert_eq!(again["success"], false);
    assert_eq!(again["code"], "TOKEN_USED");

    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "used");
    assert_eq!(v["data"]["decidedBy"], "policy");
    assert_eq!(v["data"]["rule"], "auto-file-read");
    assert!(
        v["data"].get("token").is_none(),
        "a stored token is never shown again"
    );
    s.stop().await;
}

/// `verify` may answer from a recent read (`store::recent`); a write this server commits to the
/// request makes the next `verify` read it again, so each answer below shows the write just
/// before it, although they all come well within one lease of each other. (Revoking the agent
/// also revokes its live requests and makes the server forget its key, so that last answer does
/// not depend on remembered reads alone; `store::recent`'s unit tests cover agent writes.)
#[tokio::test(flavor = "multi_thread")]
async fn verify_answers_after_each_write_as_the_database_does() {
    let s = TestServer::start().await;
    let key = s.agent("checker").await;
    let (id, token) = s.grant(&key, 3).await;
    let (id, token) = (id.as_str(), token.as_str());
    let remaining = |v: &Value| v["data"]["usesRemaining"].clone();

    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(remaining(&v), 3, "{v}");
    s.use_token(&key, id, token, None).await;
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(remaining(&v), 2, "the use is seen: {v}");

    // A write to another request leaves this one's answer as it was.
    let (_, other) = s.request(&key, json!({"action": "file.read"})).await;
    assert_eq!(other["status"], "approved");
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(remaining(&v), 2, "{v}");

    let (st, _) = s
        .post(&key, &format!("/api/v1/permissions/{id}/revoke"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(v["data"]["valid"], false, "the revocation is seen: {v}");

    let (id3, token3) = s.grant(&key, 1).await;
    let (st, _) = s.verify(&key, &id3, &token3).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s
        .call(&s.admin, "DELETE", "/api/v1/admin/agents/checker", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s.verify(&key, &id3, &token3).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "the agent's revocation is seen: {v}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_by_policy_names_the_rule() {
    let s = TestServer::start().await;
    let key = s.agent("shelly").await;
    let (status, data) = s.request(&key, json!({"action": "shell.exec"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(data["status"], "denied");
    let reason = data["reason"].as_str().unwrap();
    assert!(
        reason.contains("deny-shell") && reason.contains("never allowed"),
        "{reason}"
    );
    assert!(data.get("token").is_none());
    let (_, v) = s
        .get(
            &key,
            &format!("/api/v1/permissions/{}", data["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(v["data"]["status"], "denied");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn human_approval_wakes_the_long_poll_with_a_one_time_token() {
    let s = TestServer::start().await;
    let key = s.agent("mailer").await;
    let (status, data) = s
        .request(
            &key,
            json!({"action": "gmail.send", "resource": "client@x.com",
            "scope": {"max_emails": 1, "subject_pattern": "^Invoice"},
            "context": {"reason": "monthly invoice"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(data["status"], "pending");
    let id = data["id"].as_str().unwrap().to_owned();
    assert!(
        data["approvalUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/requests/{id}"))
    );
    assert!(
        data["webhookUrl"]
            .as_str()
            .unwrap()
            .contains(&format!("/api/v1/permissions/{id}"))
    );

    // A pending read without waiting shows pending and no token.
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "pending");
    assert_eq!(v["data"]["context"]["reason"], "monthly invoice");

    let poll = s.long_poll(&key, &id).await;
    let (st, approved) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{approved}");
    assert_eq!(approved["data"]["decidedBy"], "human:alice");
    assert!(
        approved["data"].get("token").is_none(),
        "the human never sees the token"
    );

    let (v, waited) = poll.await.unwrap();
    assert!(
        waited < Duration::from_secs(10),
        "long-poll did not wake on approval: {waited:?}"
    );
    assert_eq!(v["data"]["status"], "approved", "{v}");
    let token = v["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(v["data"]["tokenIssued"], true);

    let (_, again) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert!(
        again["data"].get("token").is_none(),
        "the token is delivered once"
    );
    assert_eq!(again["data"]["tokenIssued"], true);

    let used = s
        .use_token(
            &key,
            &id,
            &token,
            Some(json!({"subject": "Invoice 2026-11", "emails": 1})),
        )
        .await;
    assert_eq!(used["success"], true, "{used}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_returns_after_wait_when_nothing_happens() {
    let s = TestServer::start().await;
    let key = s.agent("patient").await;
    let (_, data) = s.request(&key, json!({"action": "db.drop"})).await;
    let id = data["id"].as_str().unwrap();
    let started = Instant::now();
    let (st, v) = s
        .get(&key, &format!("/api/v1/permissions/{id}?wait=1"))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["status"], "pending");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "returned before the wait ended"
    );
    let (st, v) = s
        .get(&key, &format!("/api/v1/permissions/{id}?wait=61"))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_requests_expire_on_read_and_by_the_sweeper() {
    let s = TestServer::start().await;
    let key = s.agent("slow").await;
    let (_, a) = s
        .request(&key, json!({"action": "db.drop", "ttl": 60}))
        .await;
    let a = a["id"].as_str().unwrap().to_owned();

    // A waiting agent is woken by the sweeper when time runs out.
    let poll = s.long_poll(&key, &a).await;
    s.clock.advance(Duration::from_secs(61));
    let (v, _) = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v["data"]["status"], "expired", "{v}");
    assert_eq!(v["data"]["decidedBy"], "timeout");

    let (st, body) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{a}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "CONFLICT");

    // Expired on read even before any sweep: approve right at the boundary is refused.
    let (_, b) = s
        .request(&key, json!({"action": "db.drop", "ttl": 30}))
        .await;
    let b = b["id"].as_str().unwrap().to_owned();
    s.clock.advance(Duration::from_secs(30));
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{b}")).await;
    assert_eq!(v["data"]["status"], "expired");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_tokens_stop_working_at_expires_at() {
    let s = TestServer::start().await;
    let key = s.agent("late").await;
    let (_, data) = s
        .request(&key, json!({"action": "file.read", "ttl": 30, "uses": 3}))
        .await;
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    assert_eq!(s.use_token(&key, id, token, None).await["success"], true);
    s.clock.advance(Duration::from_secs(31));
    let refused = s.use_token(&key, id, token, None).await;
    assert_eq!(refused["code"], "TOKEN_EXPIRED", "{refused}");
    assert_eq!(refused["usesRemaining"], 2);
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(
        v["data"],
        json!({"valid": false, "reason": "the token has expired"})
    );
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "expired");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_stops_the_token_at_once() {
    let s = TestServer::start().await;
    let key = s.agent("revoker").await;
    let (_, data) = s
        .request(&key, json!({"action": "file.read", "uses": 5}))
        .await;
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    let (st, v) = s
        .post(&key, &format!("/api/v1/permissions/{id}/revoke"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["status"], "revoked");
    let refused = s.use_token(&key, id, token, None).await;
    assert_eq!(refused["code"], "TOKEN_REVOKED");
    let (st, _) = s
        .post(&key, &format!("/api/v1/permissions/{id}/revoke"), json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // A human can revoke too, through the admin API.
    let (_, data) = s.request(&key, json!({"action": "file.read"})).await;
    let id = data["id"].as_str().unwrap();
    let (st, v) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["status"], "revoked");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn human_deny_reaches_the_agent_with_the_reason() {
    let s = TestServer::start().await;
    let key = s.agent("denied").await;
    let (_, data) = s
        .request(
            &key,
            json!({"action": "bank.transfer", "scope": {"amount": 40}}),
        )
        .await;
    let id = data["id"].as_str().unwrap();
    let (st, v) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{id}/deny"),
            json!({"reason": "not this month"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = s
        .get(&key, &format!("/api/v1/permissions/{id}?wait=5"))
        .await;
    assert_eq!(v["data"]["status"], "denied");
    assert_eq!(v["data"]["reason"], "not this month");
    assert!(v["data"].get("token").is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_policy_file_everything_requires_approval() {
    let s = TestServer::with_policy(None).await;
    let key = s.agent("anyone").await;
    let (status, data) = s.request(&key, json!({"action": "file.read"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(data["status"], "pending");
    let (_, health) = s.get(&s.admin, "/health").await;
    assert_eq!(health["data"]["policy"]["source"], "builtin");
    assert_eq!(health["data"]["status"], "ok");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_trail_records_every_step_and_verifies() {
    let s = TestServer::start().await;
    let key = s.agent("audited").await;
    let (_, data) = s.request(&key, json!({"action": "file.read"})).await;
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    s.use_token(&key, id, token, None).await;
    s.use_token(&key, id, "otp_wrong", None).await;
    let (st, v) = s
        .get(&s.admin, &format!("/api/v1/admin/audit?request={id}"))
        .await;
    assert_eq!(st, StatusCode::OK);
    let mut kinds: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    kinds.reverse();
    // An auto-approval is one event: the request, the policy's decision and the token's issue.
    assert_eq!(
        kinds,
        ["permission.requested", "token.used", "token.use_refused"]
    );
    let refused = &v["data"][0];
    assert_eq!(refused["details"]["code"], "INVALID_TOKEN");
    let requested = &v["data"][2]["details"];
    assert_eq!(requested["decision"], "auto_approve");
    assert_eq!(
        requested["tokenHash"],
        agent_otp::testing::secret::sha256_hex(token.as_bytes())
    );
    assert_eq!(requested["expiresAt"], data["expiresAt"]);

    let store = agent_otp::testing::store::Store::open(&s.db_path()).unwrap();
    let mut verifier =
        agent_otp::testing::audit::ChainVerifier::new(Some(store.audit_key().clone()));
    store
        .read_blocking(|c| {
            agent_otp::testing::store::audit::for_each(c, |e| verifier.push(&e).is_ok())
        })
        .unwrap();
    let (count, _) = verifier.finish();
    assert_eq!(
        count, 6,
        "first login link, admin token, agent, request (with the issue), use, refusal"
    );
    s.stop().await;
}
