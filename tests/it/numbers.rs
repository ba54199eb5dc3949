//! Numbers through the real server: each is read exactly or the body is refused (`src/number.rs`,
//! docs/scopes.md "Numbers"), in exact bindings, counts, admin decisions, and only for a caller
//! with a key.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestServer;

/// Asks for a permission with a raw body; status and `data` (or the whole error answer).
async fn ask(s: &TestServer, key: &str, body: &str) -> (StatusCode, Value) {
    let (status, v) = s.post_raw(key, "/api/v1/permissions/request", body).await;
    let data = if v["success"] == true {
        v["data"].clone()
    } else {
        v
    };
    (status, data)
}

/// Uses a token with raw `actionDetails`; the answer's `data`, or the status and error.
async fn use_raw(s: &TestServer, key: &str, id: &str, token: &str, details: &str) -> Value {
    let body = format!(r#"{{"token": "{token}", "actionDetails": {details}}}"#);
    let path = format!("/api/v1/permissions/{id}/use");
    let (status, v) = s.post_raw(key, &path, &body).await;
    if status == StatusCode::OK {
        v["data"].clone()
    } else {
        json!({"status": status.as_u16(), "error": v["error"]})
    }
}

/// Exact binding: spellings of one float are one binding (1.5, 1.50, 15e-1), and so are a
/// float of 2^53 or more and the whole number it holds; an inexact spelling is a 400 and
/// another value a mismatch.
#[tokio::test(flavor = "multi_thread")]
async fn exact_details_bind_every_spelling_of_one_value() {
    let s = TestServer::start().await;
    let key = s.agent("bound").await;
    let bound = |details: &str| {
        format!(r#"{{"action": "file.read", "uses": 10, "actionDetails": {details}}}"#)
    };
    let (id, token) = s.granted_raw(&key, &bound(r#"{"amount": 1.5}"#)).await;
    for same in ["1.50", "15e-1", "0.15E+1", "1.500000000000000000000000"] {
        let v = use_raw(&s, &key, &id, &token, &format!(r#"{{"amount": {same}}}"#)).await;
        assert_eq!(v["success"], true, "{same}: {v}");
    }
    let v = use_raw(&s, &key, &id, &token, r#"{"amount": 1.5000000000000001}"#).await;
    assert_eq!(v["status"], 400, "{v}");
    let v = use_raw(&s, &key, &id, &token, r#"{"amount": 1.5000000000000002}"#).await;
    assert_eq!(v["code"], "DETAILS_MISMATCH", "{v}");

    let (id, token) = s
        .granted_raw(&key, &bound(r#"{"amount": 4.61168601842784e18}"#))
        .await;
    for same in [
        "4.61168601842784e18",
        "4611686018427840512",
        "4611686018427840512.0",
    ] {
        let v = use_raw(&s, &key, &id, &token, &format!(r#"{{"amount": {same}}}"#)).await;
        assert_eq!(v["success"], true, "{same}: {v}");
    }
    let v = use_raw(&s, &key, &id, &token, r#"{"amount": 4611686018427840000}"#).await;
    assert_eq!(
        v["code"], "DETAILS_MISMATCH",
        "the value as written is not bound: {v}"
    );
    s.stop().await;
}

/// Counts, uses, `max_uses`: a whole number in any exact spelling is taken; one that only
/// rounds to a whole number is a 400 and nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn counts_and_uses_are_not_rounded_into_range() {
    let s = TestServer::start().await;
    let key = s.agent("counts").await;
    for body in [
        r#"{"action": "file.read", "uses": 2.0000000000000001}"#,
        r#"{"action": "file.read", "uses": 1, "scope": {"max_uses": 1.0000000000000001}}"#,
        r#"{"action": "file.read", "scope": {"max_recipients_count": 2.0000000000000001}}"#,
        r#"{"action": "file.read", "scope": {"max_amount": 10, "min_amount": -2.4703282292062327e-324}}"#,
        r#"{"action": "file.read", "scope": {"allowed_amounts": [1, 100.000000000000001]}}"#,
        r#"{"action": "file.read", "scope": {"blocked_amounts": [100.000000000000001]}}"#,
        r#"{"action": "file.read", "context": {"n": 1e-400}}"#,
    ] {
        let (status, v) = ask(&s, &key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["error"]["details"]["body"].is_string(), "{body}: {v}");
    }
    assert_eq!(s.permission_count().await, 0);
    let (status, data) = ask(
        &s,
        &key,
        r#"{"action": "file.read", "uses": 2e0, "scope": {"max_uses": 1E+0, "max_recipients_count": 2.0, "max_amount": -0.0}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{data}");
    assert_eq!(
        data["usesRemaining"], 1,
        "max_uses 1E+0 caps the uses: {data}"
    );
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    let v = use_raw(
        &s,
        &key,
        id,
        token,
        r#"{"amount": -0, "recipients": ["a", "b"]}"#,
    )
    .await;
    assert_eq!(
        v["success"], true,
        "-0 is within max_amount -0.0 and needs no min_: {v}"
    );
    s.stop().await;
}

/// Admin approve and deny bodies go through the same rule: an edit that rounds is a 400 and
/// the request stays pending; another spelling of an exact value is taken.
#[tokio::test(flavor = "multi_thread")]
async fn admin_approve_and_deny_bodies_refuse_inexact_numbers() {
    let s = TestServer::start().await;
    let key = s.agent("needs-a-human").await;
    let (status, data) = ask(
        &s,
        &key,
        r#"{"action": "payment.send", "uses": 3, "scope": {"max_amount": 50}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{data}");
    let id = data["id"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/admin/permissions/{id}/approve");
    for body in [
        r#"{"scope": {"max_amount": 50.000000000000001}}"#,
        r#"{"uses": 1.0000000000000001}"#,
        r#"{"ttl": 60.00000000000000001}"#,
        r#"{"note": "\\", "scope": {"max_amount": 1e-400}}"#,
    ] {
        let (status, v) = s.post_raw(&s.admin, &approve, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    let deny = format!("/api/v1/admin/permissions/{id}/deny");
    let (status, v) = s
        .post_raw(&s.admin, &deny, r#"{"reason": "no", "n": 1e-400}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = s
        .get(&s.admin, &format!("/api/v1/admin/permissions/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["data"]["status"], "pending", "{v}");
    let (status, v) = s
        .post_raw(&s.admin, &approve, r#"{"scope": {"max_amount": 4.5e1}}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["scope"]["max_amount"], json!(45.0), "{v}");
    s.stop().await;
}

/// The key is checked before the body is read: a caller without a valid key gets a 401, not
/// the 400 that says which of its numbers would be rounded.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_is_read_only_for_a_caller_with_a_key() {
    let s = TestServer::start().await;
    let body = r#"{"action": "file.read", "context": {"n": 1e-400}}"#;
    for auth in ["ak_wrong", ""] {
        let (status, v) = s.post_raw(auth, "/api/v1/permissions/request", body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}: {v}");
    }
    let key = s.agent("keyed").await;
    let (status, v) = s.post_raw(&key, "/api/v1/permissions/request", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    s.stop().await;
}
