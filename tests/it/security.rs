//! Isolation between agents, agent keys kept off admin routes, and no plaintext secret at rest.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_cannot_touch_another_agents_request() {
    let s = TestServer::start().await;
    let alice = s.agent("alice-bot").await;
    let mallory = s.agent("mallory-bot").await;
    let (_, data) = s
        .request(&alice, json!({"action": "file.read", "uses": 2}))
        .await;
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );

    let attempts = [
        s.get(&mallory, &format!("/api/v1/permissions/{id}")).await,
        s.verify(&mallory, id, token).await,
        s.post(
            &mallory,
            &format!("/api/v1/permissions/{id}/use"),
            json!({"token": token}),
        )
        .await,
        s.post(
            &mallory,
            &format!("/api/v1/permissions/{id}/revoke"),
            json!({}),
        )
        .await,
    ];
    for (status, body) in attempts {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
    // Alice's token is untouched.
    let used = s.use_token(&alice, id, token, None).await;
    assert_eq!(used["usesRemaining"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_keys_get_nothing_on_admin_routes() {
    let s = TestServer::start().await;
    let key = s.agent("sneaky").await;
    let (_, data) = s.request(&key, json!({"action": "bank.transfer"})).await;
    let id = data["id"].as_str().unwrap();
    let routes = [
        ("GET", "/api/v1/admin/permissions".to_owned()),
        ("GET", format!("/api/v1/admin/permissions/{id}")),
        ("POST", format!("/api/v1/admin/permissions/{id}/approve")),
        ("POST", format!("/api/v1/admin/permissions/{id}/deny")),
        ("GET", "/api/v1/admin/agents".to_owned()),
        ("POST", "/api/v1/admin/agents".to_owned()),
        ("GET", "/api/v1/admin/audit".to_owned()),
    ];
    for (method, path) in &routes {
        let body = (*method == "POST").then(|| json!({"name": "x"}));
        let (status, v) = s.call(&key, method, path, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {v}");
        let (status, _) = s.call("", method, path, body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without credentials"
        );
    }
    // The request is still pending: nothing the agent sent decided it.
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "pending");
    // And an admin token is not an agent key.
    let (status, _) = s
        .post(
            &s.admin,
            "/api/v1/permissions/request",
            json!({"action": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_revoked_keys_get_401() {
    let s = TestServer::start().await;
    let key = s.agent("short-lived").await;
    let (status, _) = s.request(&key, json!({"action": "file.read"})).await;
    assert_eq!(status, StatusCode::CREATED);

    // A bare key (no "Bearer") is accepted too.
    let resp = s
        .http
        .post(s.url("/api/v1/permissions/request"))
        .header("Authorization", &key)
        .json(&json!({"action": "file.read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let (status, _) = s
        .call(&s.admin, "DELETE", "/api/v1/admin/agents/short-lived", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .post(
            &key,
            "/api/v1/permissions/request",
            json!({"action": "file.read"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let (status, _) = s
        .post(
            "ak_notarealkey",
            "/api/v1/permissions/request",
            json!({"action": "a"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_holds_no_plaintext_token_or_key() {
    let s = TestServer::start().await;
    let key = s.agent("secretive").await;
    let mut secrets = vec![key.clone(), s.admin.clone()];
    for _ in 0..3 {
        let (_, data) = s.request(&key, json!({"action": "file.read"})).await;
        secrets.push(data["token"].as_str().unwrap().to_owned());
    }
    let (_, data) = s.request(&key, json!({"action": "bank.transfer"})).await;
    let id = data["id"].as_str().unwrap();
    s.post(
        &s.admin,
        &format!("/api/v1/admin/permissions/{id}/approve"),
        json!({}),
    )
    .await;
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    secrets.push(v["data"]["token"].as_str().unwrap().to_owned());

    let db = s.db_path();
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(b) = std::fs::read(format!("{}{suffix}", db.display())) {
            bytes.extend(b);
        }
    }
    assert!(bytes.len() > 10_000, "read the database files");
    for secret in &secrets {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "a secret is stored in plaintext");
        // The random part alone must not appear either.
        let tail = &secret[secret.len() - 20..];
        assert!(!bytes.windows(tail.len()).any(|w| w == tail.as_bytes()));
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_an_agent_ends_its_live_requests() {
    let s = TestServer::start().await;
    let key = s.agent("doomed").await;
    let other = s.agent("bystander").await;
    let (_, pending) = s.request(&key, json!({"action": "bank.transfer"})).await;
    let (_, granted) = s.request(&key, json!({"action": "file.read"})).await;
    let (_, theirs) = s.request(&other, json!({"action": "bank.transfer"})).await;
    let (status, _) = s
        .call(&s.admin, "DELETE", "/api/v1/admin/agents/doomed", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // The pending one is decided by whoever revoked the agent; the granted one keeps its decider.
    for (data, decided_by) in [(&pending, "human:alice"), (&granted, "policy")] {
        let id = data["id"].as_str().unwrap();
        let (_, v) = s
            .get(&s.admin, &format!("/api/v1/admin/permissions/{id}"))
            .await;
        assert_eq!(v["data"]["status"], "revoked", "{v}");
        assert_eq!(v["data"]["decidedBy"], decided_by, "{v}");
    }
    let id = pending["id"].as_str().unwrap();
    let (status, _) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a dead agent's request cannot be approved"
    );
    let (_, v) = s
        .get(
            &other,
            &format!("/api/v1/permissions/{}", theirs["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(v["data"]["status"], "pending", "other agents are untouched");
    s.stop().await;
}

/// `/health` answers anyone with its status only; the policy (its path, a reload error's text)
/// is for a human with an admin token or web session.
#[tokio::test(flavor = "multi_thread")]
async fn health_tells_strangers_the_status_only() {
    let s = TestServer::start().await;
    let key = s.agent("prober").await;
    for path in ["/health", "/api/v1/health"] {
        for who in ["", key.as_str(), "adm_wrong"] {
            let (status, body) = s.get(who, path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                body["data"],
                json!({"status": "ok"}),
                "{who:?} {path}: {body}"
            );
        }
        let (status, body) = s.get(&s.admin, path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["status"], "ok");
        assert!(body["data"]["policy"]["path"].is_string(), "{body}");
    }
    s.stop().await;
}
