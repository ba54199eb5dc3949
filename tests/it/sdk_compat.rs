//! Replays, on the wire, what the original v0.1 TypeScript SDK (`AgentOTPClient`) does, so an
//! agent written against it works by changing only `baseUrl`. The SDK treats any non-2xx status
//! or any `success` other than `true` as an error, so every call here checks both.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, eventually};

/// One SDK call: `Authorization: Bearer`, JSON body, the SDK's notion of success.
async fn sdk_call(
    s: &TestServer,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, v) = s.call(key, method, &format!("/api/v1{path}"), body).await;
    assert!(status.is_success(), "the SDK would throw on {status}: {v}");
    assert_eq!(v["success"], json!(true), "the SDK would throw: {v}");
    v["data"].clone()
}

/// `requestPermission({action, resource, scope, context, ttl})` as the SDK posts it.
async fn request_permission(s: &TestServer, key: &str, action: &str) -> Value {
    let body = json!({
        "action": action,
        "resource": "client@x.com",
        "scope": {"max_emails": 1},
        "context": {"reason": "monthly invoice"},
        "ttl": 300
    });
    sdk_call(s, key, "POST", "/permissions/request", Some(body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_v01_sdk_flows_work_unchanged() {
    let s = TestServer::start().await;
    let key = s.agent("legacy-sdk").await;

    // Auto-approved: returns at once with a token; executeWithPermission then uses it.
    let granted = request_permission(&s, &key, "file.read").await;
    assert_eq!(granted["status"], "approved");
    let (id, token) = (
        granted["id"].as_str().unwrap(),
        granted["token"].as_str().unwrap(),
    );
    let verified = sdk_call(
        &s,
        &key,
        "POST",
        &format!("/permissions/{id}/verify"),
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(verified["valid"], true);
    let used = sdk_call(
        &s,
        &key,
        "POST",
        &format!("/permissions/{id}/use"),
        Some(json!({"token": token, "actionDetails": {"emails": 1}})),
    )
    .await;
    assert_eq!(used["success"], true);

    // Denied: a 200 whose data.status is "denied" (the SDK throws PermissionDeniedError).
    let denied = request_permission(&s, &key, "shell.rm").await;
    assert_eq!(denied["status"], "denied");

    // Pending with waitForApproval: both URLs present (so onPendingApproval fires), then plain
    // polling of GET /permissions/:id until "approved", where the token must be.
    let pending = request_permission(&s, &key, "gmail.send").await;
    assert_eq!(pending["status"], "pending");
    for url in ["approvalUrl", "webhookUrl", "expiresAt"] {
        assert!(
            pending[url].as_str().is_some_and(|u| !u.is_empty()),
            "{url} missing: {pending}"
        );
    }
    let id = pending["id"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/admin/permissions/{id}/approve");
    let (status, _) = s.post(&s.admin, &approve, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("/permissions/{id}");
    let approved = eventually(5, "the request to be decided", || async {
        let status = sdk_call(&s, &key, "GET", &path, None).await;
        (status["status"] != "pending").then_some(status)
    })
    .await;
    assert_eq!(approved["status"], "approved", "{approved}");
    let token = approved["token"]
        .as_str()
        .expect("the SDK expects the token in this response");
    let used = sdk_call(
        &s,
        &key,
        "POST",
        &format!("/permissions/{id}/use"),
        Some(json!({"token": token, "actionDetails": {"emails": 1}})),
    )
    .await;
    assert_eq!(
        used,
        json!({"success": true, "usesRemaining": 0, "checked": true})
    );

    // getPermissionStatus after use; the SDK maps 404 to NotFoundError for unknown ids.
    let status = sdk_call(&s, &key, "GET", &format!("/permissions/{id}"), None).await;
    assert_eq!(status["status"], "used");
    let (status, _) = s
        .get(
            &key,
            "/api/v1/permissions/00000000-0000-4000-8000-000000000000",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.stop().await;
}
