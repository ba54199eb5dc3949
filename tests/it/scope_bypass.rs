//! The scope promise through the real server: ambiguous keys, actions and resources are a 400;
//! resources are normalised before the policy sees them; nested and type-confused constraints
//! are enforced at `POST /permissions/{id}/use`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestServer;

const PREFIX_POLICY: &str = r#"
policies:
  - name: reports
    conditions:
      action: { equals: "file.read" }
      resource: { startsWith: "/srv/reports/" }
    action: auto_approve
  - name: rest
    conditions: {}
    action: deny
    priority: -1
"#;

#[tokio::test(flavor = "multi_thread")]
async fn hidden_or_ambiguous_keys_actions_and_resources_are_a_400_naming_the_field() {
    let s = TestServer::start().await;
    let key = s.agent("tricky").await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"action": "file.read", "scope": {"max_amount\u{200B}": 10}}),
            "scope.max_amount[U+200B]",
        ),
        (
            json!({"action": "file.read", "scope": {"m\u{0430}x_amount": 10}}),
            "scope.m[U+0430]x_amount",
        ),
        (
            json!({"action": "file.read", "scope": {"payment": {"max_amount\u{202E}": 1}}}),
            "scope.payment.max_amount[U+202E]",
        ),
        (
            json!({"action": "file.read", "scope": {"items": [{"max_amount": 1}]}}),
            "scope.items.0.max_amount",
        ),
        (json!({"action": "email.send\nresource: /tmp/ok"}), "action"),
        (json!({"action": "deploy\u{202E}exe"}), "action"),
        (json!({"action": "e\u{200B}mail.send"}), "action"),
        (json!({"action": "gmail.delete."}), "action"),
        (json!({"action": "gmail..delete"}), "action"),
        (json!({"action": ".gmail.delete"}), "action"),
        (json!({"action": "gmail.delete:"}), "action"),
        (
            json!({"action": "http.get", "resource": "https://api.example.com\\@evil.com/"}),
            "resource",
        ),
        (
            json!({"action": "file.read", "resource": "/srv/evil\u{202E}txt.exe"}),
            "resource",
        ),
        (
            json!({"action": "file.read", "resource": "/srv/a\u{200B}"}),
            "resource",
        ),
        (
            json!({"action": "file.read", "resource": "/srv/reports/../../../.."}),
            "resource",
        ),
        (
            json!({"action": "file.read", "resource": "reports/../secret"}),
            "resource",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = s
            .post(&key, "/api/v1/permissions/request", body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["code"], "VALIDATION_ERROR", "{v}");
        assert!(
            v["error"]["details"].get(field).is_some(),
            "{body} should name {field}: {v}"
        );
    }
    assert_eq!(
        s.permission_count().await,
        0,
        "a refused request stores nothing"
    );

    // Free text keeps its characters; the channels show them as markers.
    let (status, data) = s
        .request(
            &key,
            json!({"action": "file.read", "context": {"reason": "pay\u{202E} now\nplease"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{data}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_sees_and_stores_the_normalised_resource() {
    let s = TestServer::with_policy(Some(PREFIX_POLICY)).await;
    let key = s.agent("reader").await;

    let (status, data) = s
        .request(
            &key,
            json!({"action": "file.read", "resource": "/srv/reports/../../etc/passwd"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a traversal out of the prefix is denied: {data}"
    );
    assert_eq!(data["status"], "denied");
    let id = data["id"].as_str().unwrap();
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["resource"], "/etc/passwd", "{v}");

    let (status, data) = s
        .request(
            &key,
            json!({"action": "file.read", "resource": "/srv//reports/./q1/../q2.csv"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{data}");
    let id = data["id"].as_str().unwrap();
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["resource"], "/srv/reports/q2.csv", "{v}");
    s.stop().await;
}

/// Grants `scope` for 20 uses and checks each details object: `None` accepted, or the scope
/// key the refusal must name. A refused use consumes nothing.
async fn uses(s: &TestServer, scope: Value, rows: &[(Value, Option<&str>)]) {
    let key = s.agent(&format!("a{}", rand_suffix())).await;
    let (status, data) = s
        .request(
            &key,
            json!({"action": "file.read", "uses": 20, "scope": scope}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{data}");
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    let mut remaining = 20;
    for (details, want) in rows {
        let v = s.use_token(&key, id, token, Some(details.clone())).await;
        match want {
            None => {
                remaining -= 1;
                assert_eq!(
                    v,
                    json!({"success": true, "usesRemaining": remaining, "checked": true}),
                    "{details}"
                );
            }
            Some(named) => {
                assert_eq!(v["success"], false, "{details}: {v}");
                assert_eq!(v["code"], "SCOPE_VIOLATION", "{v}");
                assert_eq!(v["usesRemaining"], remaining, "{details}");
                let reason = v["reason"].as_str().unwrap();
                assert!(reason.starts_with(named), "{details}: {reason}");
            }
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_caps_type_confusion_spellings_and_paths_are_enforced_at_use() {
    let s = TestServer::start().await;
    uses(
        &s,
        json!({"payment": {"max_amount": 10, "allowed_currencies": ["EUR"]}}),
        &[
            (json!({"payment": {"amount": 10, "currency": "EUR"}}), None),
            (
                json!({"payment": {"amount": 11, "currency": "EUR"}}),
                Some("payment.max_amount"),
            ),
            (
                json!({"payment": {"amount": [1000], "currency": "EUR"}}),
                Some("payment.max_amount"),
            ),
            (
                json!({"payment": {"amount": 5, "currency": "EUR", "currencies": ["USD"]}}),
                Some("payment.allowed_currencies"),
            ),
            (
                json!({"amount": 5, "currency": "EUR"}),
                Some("payment.max_amount"),
            ),
            (json!({"payment": "10 EUR"}), Some("payment:")),
        ],
    )
    .await;
    uses(
        &s,
        json!({"max_amount": 100, "allowed_recipients": ["a@x.com"], "blocked_paths": ["/etc"]}),
        &[
            (json!({"amount": 100, "recipient": "a@x.com"}), None),
            (
                json!({"amount": [1000000], "recipient": "a@x.com"}),
                Some("max_amount"),
            ),
            (
                json!({"amount": -5, "recipient": "a@x.com"}),
                Some("max_amount"),
            ),
            (
                json!({"amount": 1, "recipients": []}),
                Some("allowed_recipients"),
            ),
            (
                json!({"amount": 1, "recipient": "a@x.com", "recipients": ["evil@y.com"]}),
                Some("allowed_recipients"),
            ),
            (
                json!({"amount": 1, "recipient": "a@x.com", "path": "/srv/../etc//shadow"}),
                Some("blocked_paths"),
            ),
            (
                json!({"amount": 1, "recipient": "a@x.com", "path": "/etcetera/x"}),
                None,
            ),
        ],
    )
    .await;
    s.stop().await;
}

/// A blocked number sent as text in a notation that a protected service's reader takes for it
/// (digits of another script for Python and Java, `_` for Python, a base prefix for
/// JavaScript's `Number()`) is refused at use like the number itself, and a blocked domain
/// refuses the addresses under it; a refused use consumes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_number_or_domain_is_refused_in_every_spelling_a_reader_takes() {
    let s = TestServer::start().await;
    uses(
        &s,
        json!({"blocked_accounts": [13]}),
        &[
            (json!({"account": "14"}), None),
            (json!({"account": "١٣"}), Some("blocked_accounts")),
            (json!({"account": "१३"}), Some("blocked_accounts")),
            (json!({"account": "１３"}), Some("blocked_accounts")),
            (json!({"account": "1_3"}), Some("blocked_accounts")),
            (json!({"account": "0x0d"}), Some("blocked_accounts")),
            (json!({"account": "0b1101"}), Some("blocked_accounts")),
            (json!({"account": "015"}), Some("blocked_accounts")),
            (json!({"account": "0x0e"}), None),
        ],
    )
    .await;
    // A blocked domain blocks the names under it and the addresses at them.
    uses(
        &s,
        json!({"blocked_recipients": ["evil.com"]}),
        &[
            (json!({"recipient": "ceo@good.com"}), None),
            (
                json!({"recipient": "ceo@evil.com"}),
                Some("blocked_recipients"),
            ),
            (
                json!({"recipient": "ceo@mail.evil.com"}),
                Some("blocked_recipients"),
            ),
            (
                json!({"recipients": ["a@good.com", "b@x.evil.com"]}),
                Some("blocked_recipients"),
            ),
            (json!({"recipient": "ceo@notevil.com"}), None),
        ],
    )
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_human_cannot_add_an_ambiguous_key_or_lower_a_minimum() {
    let s = TestServer::start().await;
    let key = s.agent("banker").await;
    let (_, data) = s
        .request(
            &key,
            json!({"action": "bank.transfer", "scope": {"max_amount": 100, "min_fee": 1}}),
        )
        .await;
    let id = data["id"].as_str().unwrap();
    let approve = format!("/api/v1/admin/permissions/{id}/approve");
    for edits in [
        json!({"scope": {"max_amount\u{200B}": 1}}),
        json!({"scope": {"min_fee": 0}}),
        json!({"scope": {"min_amount": -1}}),
        json!({"scope": {"list": [{"max_x": 1}]}}),
    ] {
        let (status, v) = s.post(&s.admin, &approve, edits.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{edits}: {v}");
    }
    let (status, v) = s
        .post(
            &s.admin,
            &approve,
            json!({"scope": {"min_fee": 2, "min_amount": 0}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    s.stop().await;
}

/// A resource or path that reads as `..` or `/` to some other reader — percent-encoded dots
/// (`%2e%2e`, `%252e`), Tomcat's `..;`, full-width or "best fit" look-alikes (U+FF0E, U+2215,
/// U+2025), a part of only dots — used to pass `startsWith: "/srv/reports/"` and be
/// auto-approved, and to pass an `allowed_paths` prefix at use. Now each is a 400 (request) or a
/// refused use, and nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn encoded_and_look_alike_traversal_neither_passes_a_prefix_nor_an_allowed_path() {
    let s = TestServer::with_policy(Some(PREFIX_POLICY)).await;
    let key = s.agent("sneaky").await;
    for resource in [
        "/srv/reports/%2e%2e/%2e%2e/etc/passwd",
        "/srv/reports/%252e%252e/etc/passwd",
        "/srv/reports/..;/..;/etc/passwd",
        "/srv/reports/\u{FF0E}\u{FF0E}\u{FF0F}\u{FF0E}\u{FF0E}\u{FF0F}etc/passwd",
        "/srv/reports/x\u{2215}..\u{2215}..\u{2215}etc",
        "/srv/reports/\u{2025}/\u{2025}/etc/passwd",
        "/srv/reports/.../x",
    ] {
        let (status, v) = s
            .post(
                &key,
                "/api/v1/permissions/request",
                json!({"action": "file.read", "resource": resource}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{resource}: {v}");
        assert!(v["error"]["details"].get("resource").is_some(), "{v}");
    }
    assert_eq!(s.permission_count().await, 0, "nothing stored");

    // The same tricks in a path field do not pass an allowed_ prefix at use.
    let (status, data) = s
        .request(
            &key,
            json!({"action": "file.read", "resource": "/srv/reports/q1.csv", "uses": 5,
                   "scope": {"allowed_paths": ["/srv/reports"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{data}");
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    for path in [
        "/srv/reports/%2e%2e/secret",
        "/srv/reports/..;/secret",
        "/srv/reports/\u{FF0E}\u{FF0E}/secret",
    ] {
        let v = s
            .use_token(&key, id, token, Some(json!({"path": path})))
            .await;
        assert_eq!(v["code"], "SCOPE_VIOLATION", "{path}: {v}");
        assert_eq!(v["usesRemaining"], 5, "{v}");
    }
    let v = s
        .use_token(
            &key,
            id,
            token,
            Some(json!({"path": "/srv/reports/q1.csv"})),
        )
        .await;
    assert_eq!(v["success"], true, "{v}");
    s.stop().await;
}

const SMALL_PAYMENTS: &str = r#"
policies:
  - name: small-payments
    conditions:
      action: { equals: "pay.small" }
      scope.max_amount: { lessThanOrEqual: 10 }
    action: auto_approve
  - name: refunds
    conditions:
      action: { equals: "pay.refund" }
      scope.min_amount: { greaterThanOrEqual: -50 }
    action: auto_approve
"#;

/// An attacker pass: a rule that auto-approves `scope.max_amount <= 10` granted the
/// `min_amount: -1000000` an agent added, and a use of -999,999 passed. The grant now says
/// `min_amount: 0` (the answer, the stored request and its audit event), and such a use is
/// refused; a rule that names `scope.min_amount` keeps the floor it allows.
#[tokio::test(flavor = "multi_thread")]
async fn an_auto_approval_grants_no_negative_floor_its_rule_did_not_name() {
    let s = TestServer::with_policy(Some(SMALL_PAYMENTS)).await;
    let key = s.agent("payer").await;
    let (status, data) = s
        .request(
            &key,
            json!({"action": "pay.small", "scope": {"max_amount": 5, "min_amount": -1_000_000}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{data}");
    assert_eq!(data["status"], "approved", "{data}");
    assert_eq!(
        data["scope"],
        json!({"max_amount": 5, "min_amount": 0}),
        "{data}"
    );
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    let v = s
        .use_token(&key, id, token, Some(json!({"amount": -999_999})))
        .await;
    assert_eq!(v["code"], "SCOPE_VIOLATION", "{v}");
    assert_eq!(v["usesRemaining"], 1, "{v}");
    let (_, trail) = s
        .get(
            &s.admin,
            &format!("/api/v1/admin/audit?request={id}&event=permission.requested"),
        )
        .await;
    let requested = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "permission.requested")
        .unwrap_or_else(|| panic!("{trail}"));
    assert_eq!(
        requested["details"]["grantedScope"]["min_amount"], 0,
        "{requested}"
    );
    assert_eq!(
        requested["details"]["requestedScope"]["min_amount"], -1_000_000,
        "{requested}"
    );
    // The rule names the floor: it stands.
    let (status, data) = s
        .request(
            &key,
            json!({"action": "pay.refund", "scope": {"max_amount": 5, "min_amount": -40}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{data}");
    assert_eq!(data["scope"]["min_amount"], -40, "{data}");
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    let v = s
        .use_token(&key, id, token, Some(json!({"amount": -40})))
        .await;
    assert_eq!(v["success"], true, "{v}");
    s.stop().await;
}

/// A number that reading it as an f64 would round is a 400 naming `body`, in a request and in
/// a use, and changes nothing; a float of 2^53 or more is kept as the whole number it holds; a
/// whole-number cap and a float amount compare by exact value.
#[tokio::test(flavor = "multi_thread")]
async fn numbers_are_read_exactly_or_refused() {
    let s = TestServer::start().await;
    let key = s.agent("precise").await;
    for (scope, read_as) in [
        (r#"{"max_amount": 100.000000000000001}"#, "100.0"),
        (r#"{"max_amount": 100, "min_amount": -1e-400}"#, "-0.0"),
        (
            r#"{"max_amount": 18446744073709551617}"#,
            "1.8446744073709552e+19",
        ),
        (
            r#"{"max_amount": 1, "note": "x\"", "n": [0.10000000000000001]}"#,
            "0.1",
        ),
    ] {
        let body = format!(r#"{{"action": "file.read", "scope": {scope}}}"#);
        let (status, v) = s.post_raw(&key, "/api/v1/permissions/request", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        let said = v["error"]["details"]["body"].as_str().unwrap_or_default();
        assert!(
            said.contains(&format!("would be read as {read_as};")),
            "{body}: {v}"
        );
    }
    assert_eq!(s.permission_count().await, 0);

    // Its shortest spelling says 4611686018427840000, the float holds …512, and whole numbers
    // lie between: kept as written, the cap shown would have been 512 under the one enforced.
    // It is kept as the whole number it holds, which is shown, stored and enforced alike.
    let body = r#"{"action": "file.read", "uses": 3, "scope": {"max_amount": 4.61168601842784e18, "n": [-7.096887381336131e+16]}}"#;
    let (id, token) = s.granted_raw(&key, body).await;
    let (_, stored) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    let scope = &stored["data"]["scope"];
    assert_eq!(
        scope["max_amount"].as_u64(),
        Some(4_611_686_018_427_840_512),
        "{stored}"
    );
    assert_eq!(
        scope["n"][0].as_i64(),
        Some(-70_968_873_813_361_312),
        "{stored}"
    );
    let path = format!("/api/v1/permissions/{id}/use");
    for (amount, ok) in [
        ("4611686018427840513", false),
        ("4.61168601842784e18", true),
    ] {
        let body = format!(r#"{{"token": "{token}", "actionDetails": {{"amount": {amount}}}}}"#);
        let (status, v) = s.post_raw(&key, &path, &body).await;
        assert_eq!(v["data"]["success"], ok, "{amount}: {status} {v}");
    }

    // 9007199254740995 read as an f64 is 9007199254740996: rounding first let that through.
    uses(
        &s,
        json!({"max_amount": 9007199254740995u64}),
        &[
            (json!({"amount": 9.007199254740996e15}), Some("max_amount")),
            (json!({"amount": 9007199254740995u64}), None),
            (json!({"amount": 9.007199254740994e15}), None),
        ],
    )
    .await;

    let (id, token) = s
        .granted(
            &key,
            json!({"action": "file.read", "uses": 2, "scope": {"max_amount": 100}}),
        )
        .await;
    let path = format!("/api/v1/permissions/{id}/use");
    let body =
        format!(r#"{{"token": "{token}", "actionDetails": {{"amount": 100.000000000000001}}}}"#);
    let (status, v) = s.post_raw(&key, &path, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["details"]["body"].is_string(), "{v}");
    let v = s
        .use_token(&key, &id, &token, Some(json!({"amount": 100})))
        .await;
    assert_eq!(v["usesRemaining"], 1, "the refused use spent nothing: {v}");
    s.stop().await;
}
