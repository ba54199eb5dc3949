//! Hostile or broken input gets a clear 4xx in the envelope and writes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, nested};

#[tokio::test(flavor = "multi_thread")]
async fn invalid_request_bodies_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    let key = s.agent("fuzzy").await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "body"),
        (json!({"action": ""}), "action"),
        (json!({"action": 42}), "body"),
        (json!({"action": "a".repeat(256)}), "action"),
        (
            json!({"action": "a", "resource": "r".repeat(1025)}),
            "resource",
        ),
        (json!({"action": "a", "ttl": 29}), "ttl"),
        (json!({"action": "a", "ttl": 3601}), "ttl"),
        (json!({"action": "a", "ttl": "300"}), "body"),
        (json!({"action": "a", "uses": 0}), "uses"),
        (json!({"action": "a", "uses": 101}), "uses"),
        (json!({"action": "a", "scope": [1, 2]}), "body"),
        (
            json!({"action": "a", "scope": {"subject_pattern": "("}}),
            "scope.subject_pattern",
        ),
        (
            json!({"action": "a", "scope": {"allowed_recipients": "x"}}),
            "scope.allowed_recipients",
        ),
        (json!({"action": "a", "context": nested(12)}), "context"),
        (json!({"action": "a", "unknownField": true}), "body"),
        (json!({"action": "a", "waitForApproval": true}), "body"),
        (
            json!({"action": "a", "context": {"reason": "x".repeat(20_000)}}),
            "context",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = s
            .post(&key, "/api/v1/permissions/request", body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["code"], "VALIDATION_ERROR", "{v}");
        assert!(
            v["error"]["details"].get(field).is_some(),
            "{body} should name {field}: {v}"
        );
    }
    assert_eq!(s.permission_count().await, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_oversize_and_wrongly_typed_payloads() {
    let s = TestServer::start().await;
    let key = s.agent("raw").await;
    let url = s.url("/api/v1/permissions/request");
    let send = |body: Vec<u8>, content_type: &'static str| {
        let req = s
            .http
            .post(&url)
            .bearer_auth(&key)
            .header("Content-Type", content_type)
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let v: Value = resp.json().await.unwrap();
            (status, v)
        }
    };
    let cases: Vec<(Vec<u8>, &str, StatusCode)> = vec![
        (
            b"{\"action\": ".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            b"not json at all".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            b"{\"action\":\"\xff\xfe\"}".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            b"{\"action\":\"a\"}".to_vec(),
            "text/plain",
            StatusCode::BAD_REQUEST,
        ),
        (
            "[".repeat(200).into_bytes(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            format!(
                "{{\"action\":\"a\",\"context\":{{\"x\":\"{}\"}}}}",
                "y".repeat(70_000)
            )
            .into_bytes(),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (body, ct, expected) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let (status, v) = send(body, ct).await;
        assert_eq!(status, expected, "{shown} as {ct}: {v}");
        assert_eq!(v["success"], false);
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Unknown routes and wrong methods answer in the envelope too.
    let (status, v) = s.get(&key, "/api/v1/nope").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (status, _) = s.get(&key, "/api/v1/permissions/request").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(s.permission_count().await, 0);
    s.stop().await;
}

/// The status and body of one request sent as raw bytes, so that the path reaches the server
/// exactly as written (an HTTP client would resolve `..` and re-encode).
async fn raw(s: &TestServer, method: &str, path: &str, auth: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(s.handle.as_ref().unwrap().addr)
        .await
        .unwrap();
    let body = r#"{"token":"otp_x"}"#;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The paths with an id are matched by hand (`api::id_routes`): anything around them that is
/// not a route is 404 in the envelope, a route with another method 405, and an id is one whole
/// segment however it is spelled.
#[tokio::test(flavor = "multi_thread")]
async fn paths_around_the_id_routes_are_refused_in_the_envelope() {
    let s = TestServer::start().await;
    let key = s.agent("prober").await;
    let (_, granted) = s
        .request(&key, json!({"action": "file.read", "resource": "x"}))
        .await;
    let id = granted["id"].as_str().unwrap().to_owned();
    let (status, _) = raw(&s, "GET", &format!("/api/v1/permissions/{id}"), &key).await;
    assert_eq!(status, 200, "the route itself works");
    let not_found = [
        "/api/v1/permissions/".to_owned(),
        "/api/v1/permissions//verify".to_owned(),
        format!("/api/v1/permissions/{id}/verify/"),
        format!("/api/v1/permissions/{id}/"),
        format!("/api/v1/permissions/{id}/nope"),
        format!("/api/v1/permissions/{id}/verify/more"),
        format!("/api/v1/permissions/{id}/../{id}"),
        format!("/api/v1/permissions/{id}/x/../verify"),
        format!("/api/v1/permissions/x/../{id}/verify"),
        format!("/api/v1/permissionsX/{id}/verify"),
        format!("/api/v1/admin/agents/{id}/x"),
        format!("/api/v1/admin/permissions/{id}/approve/"),
    ];
    for path in &not_found {
        for method in ["GET", "POST"] {
            let (status, v) = raw(&s, method, path, &key).await;
            assert_eq!(
                (status, v["error"]["code"].as_str()),
                (404, Some("NOT_FOUND")),
                "{method} {path}: {v}"
            );
        }
    }
    // The other method on an id route: 405 with the route's methods.
    let (status, v) = raw(&s, "GET", &format!("/api/v1/permissions/{id}/verify"), &key).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );
    // An id that is not one: 404 from the route (not a crash, not another request).
    for bad in ["x", "..", "%2e%2e", "%00", "request%2Fverify"] {
        let (status, v) = raw(
            &s,
            "POST",
            &format!("/api/v1/permissions/{bad}/verify"),
            &key,
        )
        .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (404, Some("NOT_FOUND")),
            "{bad}: {v}"
        );
    }
    // A slash spelled %2F is part of the id, not a separator: no such request.
    let (status, v) = raw(
        &s,
        "GET",
        &format!("/api/v1/permissions/{id}%2Fverify"),
        &key,
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{v}"
    );
    // An agent key still reaches no admin route through them.
    let (status, _) = raw(
        &s,
        "POST",
        &format!("/api/v1/admin/permissions/{id}/revoke"),
        &key,
    )
    .await;
    assert_eq!(status, 403);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_use_and_decision_bodies_change_nothing() {
    let s = TestServer::start().await;
    let key = s.agent("careful").await;
    let (_, data) = s
        .request(&key, json!({"action": "file.read", "uses": 2}))
        .await;
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    for body in [
        json!({}),
        json!({"token": ""}),
        json!({"token": token, "extra": 1}),
        json!({"token": token, "actionDetails": 5}),
    ] {
        let (status, v) = s
            .post(&key, &format!("/api/v1/permissions/{id}/use"), body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(v["data"]["usesRemaining"], 2, "no bad body consumed a use");

    let (_, pending) = s.request(&key, json!({"action": "bank.transfer"})).await;
    let pid = pending["id"].as_str().unwrap();
    for body in [
        json!({"ttl": 10}),
        json!({"uses": 0}),
        json!({"bogus": 1}),
        json!({"note": "x".repeat(1001)}),
    ] {
        let (status, v) = s
            .post(
                &s.admin,
                &format!("/api/v1/admin/permissions/{pid}/approve"),
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{pid}")).await;
    assert_eq!(v["data"]["status"], "pending");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_policy_file_stops_start_up_with_line_and_column() {
    let cases = [
        (
            "policies:\n  - name: a\n    conditions: {}\n    action: auto_approve\n    scope_template: {}\n",
            "scope_template",
        ),
        (
            "policies:\n  - name: a\n    conditions:\n      action: { equalz: x }\n    action: deny\n",
            "equalz",
        ),
        (
            "policies:\n  - name: a\n    conditions:\n      action: { matches: \"(\" }\n    action: deny\n",
            "regex",
        ),
        (
            "policies:\n  - name: a\n    name: b\n    conditions: {}\n    action: deny\n",
            "duplicate",
        ),
    ];
    for (yaml, what) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut config = agent_otp::config::Config::new(dir.path().join("data"));
        config.policies = dir.path().join("policies.yaml");
        std::fs::write(&config.policies, yaml).unwrap();
        let err = agent_otp::app::start(config)
            .await
            .err()
            .expect("start must fail")
            .to_string();
        assert!(err.contains("line"), "{what}: {err}");
        assert!(err.to_lowercase().contains(what), "{what}: {err}");
    }
}

/// serde_json keeps the last of two equal keys; other parsers keep the first. A key written twice
/// in `scope`, `context`, `actionDetails` or a human's scope edits is therefore a 400 naming it,
/// on every route, and changes nothing: `{"amount": 1000, "amount": 5}` used to be checked as 5.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_written_twice_in_a_body_object_is_refused_everywhere() {
    let s = TestServer::start().await;
    let key = s.agent("twice").await;
    let service = s.service("reader", "file.*").await;
    let (id, token) = s.grant(&key, 3).await;
    let raw = |auth: &str, path: &str, body: String| {
        let req = s
            .http
            .post(s.url(path))
            .bearer_auth(auth)
            .header("Content-Type", "application/json")
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let v: Value = resp.json().await.unwrap();
            (status, v)
        }
    };
    let before = s.permission_count().await;
    for body in [
        r#"{"action":"file.read","scope":{"max_amount":5,"max_amount":1000}}"#.to_owned(),
        r#"{"action":"file.read","scope":{"p":{"max_amount":5,"max_amount":1000}}}"#.to_owned(),
        r#"{"action":"file.read","context":{"reason":"a","reason":"b"}}"#.to_owned(),
        r#"{"action":"file.read","actionDetails":{"amount":1000,"amount":5}}"#.to_owned(),
    ] {
        let (status, v) = raw(&key, "/api/v1/permissions/request", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("duplicate key"), "{message}");
    }
    assert_eq!(s.permission_count().await, before, "nothing stored");

    let details = r#"{"amount":1000,"amount":5}"#;
    let body = format!(r#"{{"token":"{token}","actionDetails":{details}}}"#);
    let (status, v) = raw(&key, &format!("/api/v1/permissions/{id}/use"), body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let body = format!(r#"{{"token":"{token}","action":"file.read","actionDetails":{details}}}"#);
    let (status, v) = raw(&service, "/api/v1/tokens/use", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = s.verify(&key, &id, &token).await;
    assert_eq!(v["data"]["usesRemaining"], 3, "nothing consumed: {v}");

    let (status, pending) = s
        .request(
            &key,
            json!({"action": "needs.human", "scope": {"max_amount": 10}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let pid = pending["id"].as_str().unwrap();
    let admin = s.admin.clone();
    let (status, v) = raw(
        &admin,
        &format!("/api/v1/admin/permissions/{pid}/approve"),
        r#"{"scope":{"max_amount":1,"max_amount":10}}"#.to_owned(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = s
        .get(&admin, &format!("/api/v1/admin/permissions/{pid}"))
        .await;
    assert_eq!(v["data"]["status"], "pending", "{v}");
    s.stop().await;
}
