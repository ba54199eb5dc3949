//! Scope narrowing (request ∧ rule template ∧ human edits) and enforcement at use.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn the_rule_template_narrows_the_request() {
    let s = TestServer::start().await;
    let key = s.agent("mailer").await;
    let (status, data) = s
        .request(
            &key,
            json!({"action": "email.send", "scope": {
                "max_recipients": 5,
                "allowed_domains": ["example.com", "evil.com"],
                "blocked_recipients": ["x@example.com"],
                "cc_required": true,
                "subject_pattern": "^Invoice"
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        data["scope"]["max_recipients"], 2,
        "numbers take the minimum"
    );
    assert_eq!(
        data["scope"]["allowed_domains"],
        json!(["example.com"]),
        "lists intersect"
    );
    let blocked = data["scope"]["blocked_recipients"].as_array().unwrap();
    assert!(
        blocked.contains(&json!("x@example.com")) && blocked.contains(&json!("ceo@example.com"))
    );
    assert_eq!(data["scope"]["cc_required"], false, "booleans AND");
    assert_eq!(
        data["scope"]["subject_pattern"], "^Invoice",
        "request keys stay"
    );

    let (_, data) = s.request(&key, json!({"action": "email.send"})).await;
    assert_eq!(
        data["scope"]["allowed_domains"],
        json!(["example.com", "example.org"]),
        "template adds keys"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn max_uses_in_the_scope_caps_uses() {
    let s = TestServer::start().await;
    let key = s.agent("capped").await;
    let (_, data) = s
        .request(
            &key,
            json!({"action": "file.read", "uses": 5, "scope": {"max_uses": 2}}),
        )
        .await;
    assert_eq!(data["usesRemaining"], 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_convention_is_enforced_at_use() {
    let s = TestServer::start().await;
    let key = s.agent("enforced").await;
    let (_, data) = s
        .request(
            &key,
            json!({"action": "file.read", "uses": 20, "scope": {
                "subject_pattern": "^Invoice",
                "allowed_recipients": ["a@x.com", "b@x.com"],
                "blocked_domains": ["evil.com"],
                "max_amount": 100,
                "note_for_service": "passed through"
            }}),
        )
        .await;
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    let base =
        json!({"subject": "Invoice 7", "recipients": ["a@x.com"], "domain": "x.com", "amount": 50});
    let with = |patch: serde_json::Value| {
        let mut d = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                d.as_object_mut().unwrap().remove(k);
            } else {
                d[k] = v.clone();
            }
        }
        d
    };

    let accepted = [
        base.clone(),
        with(json!({"recipients": null, "recipient": "b@x.com"})),
        with(json!({"amount": 100})),
        with(json!({"domain": null})),
    ];
    let refused = [
        (with(json!({"subject": "Hello"})), "subject_pattern"),
        (with(json!({"subject": null})), "subject_pattern"),
        (
            with(json!({"recipients": ["a@x.com", "c@x.com"]})),
            "allowed_recipients",
        ),
        (with(json!({"recipients": null})), "allowed_recipients"),
        (with(json!({"domain": "evil.com"})), "blocked_domains"),
        (
            with(json!({"domain": null, "domains": ["x.com", "evil.com"]})),
            "blocked_domains",
        ),
        (with(json!({"amount": 100.5})), "max_amount"),
        (with(json!({"amount": null})), "max_amount"),
    ];
    let mut remaining = 20;
    for details in accepted {
        let v = s.use_token(&key, id, token, Some(details.clone())).await;
        remaining -= 1;
        assert_eq!(
            v,
            json!({"success": true, "usesRemaining": remaining, "checked": true}),
            "{details}"
        );
    }
    for (details, key_named) in refused {
        let v = s.use_token(&key, id, token, Some(details.clone())).await;
        assert_eq!(v["success"], false, "{details}");
        assert_eq!(v["code"], "SCOPE_VIOLATION");
        assert_eq!(
            v["usesRemaining"], remaining,
            "a refused use consumes nothing"
        );
        assert!(
            v["reason"].as_str().unwrap().contains(key_named),
            "{details}: {v}"
        );
    }
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(v["data"]["scope"]["note_for_service"], "passed through");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_human_may_narrow_but_never_widen() {
    let s = TestServer::start().await;
    let key = s.agent("banker").await;
    let (_, data) = s
        .request(
            &key,
            json!({"action": "bank.transfer", "uses": 3, "ttl": 600,
            "scope": {"max_amount": 100, "allowed_accounts": ["A", "B"]}}),
        )
        .await;
    let id = data["id"].as_str().unwrap();
    let approve = format!("/api/v1/admin/permissions/{id}/approve");
    for widen in [
        json!({"scope": {"max_amount": 200}}),
        json!({"scope": {"allowed_accounts": ["A", "C"]}}),
        json!({"uses": 4}),
        json!({"ttl": 601}),
    ] {
        let (status, v) = s.post(&s.admin, &approve, widen.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{widen}: {v}");
    }
    let (status, v) = s
        .post(
            &s.admin,
            &approve,
            json!({"ttl": 60, "uses": 1, "note": "just A",
            "scope": {"max_amount": 40, "allowed_accounts": ["A"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    let token = v["data"]["token"].as_str().unwrap();
    assert_eq!(
        v["data"]["scope"],
        json!({"max_amount": 40, "allowed_accounts": ["A"]})
    );
    assert_eq!(v["data"]["usesRemaining"], 1);
    assert_eq!(v["data"]["ttl"], 60);
    let refused = s
        .use_token(&key, id, token, Some(json!({"amount": 41, "account": "A"})))
        .await;
    assert_eq!(refused["code"], "SCOPE_VIOLATION");
    let ok = s
        .use_token(&key, id, token, Some(json!({"amount": 40, "account": "A"})))
        .await;
    assert_eq!(ok["success"], true);
    s.stop().await;
}
