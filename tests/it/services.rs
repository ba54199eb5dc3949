//! Tokens bound to what was approved: `verify` says what a token is for, a use naming another
//! action or resource is refused, an exactly bound token needs the same details byte for byte,
//! and a protected service checks and uses tokens itself with its own key.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestServer;

const POLICY: &str = r#"
policies:
  - name: mail
    conditions:
      action: { startsWith: "gmail." }
    action: auto_approve
    scopeTemplate: { blocked_recipients: ["ceo@example.com"] }
  - name: payments are exact
    conditions:
      action: { equals: "bank.transfer" }
    action: auto_approve
    bind: exact
  - name: calendar
    conditions:
      action: { startsWith: "calendar." }
    action: auto_approve
"#;

/// A protected service's call: status and `data` (or the error envelope when not 200).
async fn as_service(s: &TestServer, key: &str, route: &str, body: Value) -> (StatusCode, Value) {
    let (status, v) = s.post(key, &format!("/api/v1/tokens/{route}"), body).await;
    let data = if status == StatusCode::OK {
        v["data"].clone()
    } else {
        v
    };
    (status, data)
}

/// A protected service's use of `token` to send one email, saying only the action.
async fn send_as(s: &TestServer, key: &str, token: &str) -> Value {
    let body = json!({"token": token, "action": "gmail.send"});
    as_service(s, key, "use", body).await.1
}

/// What introspection says of a token it does not know (or may not show).
fn not_for_this_service() -> Value {
    json!({"active": false, "reason": "the token is not valid for this service"})
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_says_what_the_token_is_for_and_a_use_for_something_else_is_refused() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let key = s.agent("mailer-bot").await;
    let (id, token) = &s
        .granted(
            &key,
            json!({"action": "gmail.send", "resource": "email:client@example.com"}),
        )
        .await;
    let (_, v) = s.verify(&key, id, token).await;
    let v = &v["data"];
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["action"], "gmail.send");
    assert_eq!(v["resource"], "email:client@example.com");
    assert_eq!(v["agentName"], "mailer-bot");
    assert_eq!(v["approvedBy"], "policy");
    assert_eq!(v["usesRemaining"], 1);

    let path = format!("/api/v1/permissions/{id}/use");
    // A name with a hidden character is no name at all: refused like a request's (400).
    for body in [
        json!({"token": token, "action": "gmail.send\u{200B}"}),
        json!({"token": token, "resource": "email:client@example.com\u{202E}"}),
        json!({"token": token, "resource": "/srv/../../etc"}),
    ] {
        let (status, v) = s.post(&key, &path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {v}");
    }
    for (body, code) in [
        (
            json!({"token": token, "action": "gmail.delete"}),
            "ACTION_MISMATCH",
        ),
        (
            json!({"token": token, "resource": "email:boss@example.com"}),
            "RESOURCE_MISMATCH",
        ),
    ] {
        let (status, v) = s.post(&key, &path, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["data"]["code"], code, "{body} -> {v}");
        assert_eq!(v["data"]["usesRemaining"], 1, "nothing consumed");
    }
    let (_, v) = s
        .post(
            &key,
            &path,
            json!({"token": token, "action": "gmail.send", "resource": "email:client@example.com"}),
        )
        .await;
    assert_eq!(v["data"]["success"], true, "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exactly_bound_token_needs_the_same_details() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let key = s.agent("treasurer").await;
    let (status, v) = s
        .post(
            &key,
            "/api/v1/permissions/request",
            json!({"action": "bank.transfer", "scope": {"max_amount": 100}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["details"]["actionDetails"].is_string(), "{v}");
    assert_eq!(
        s.permission_count().await,
        0,
        "a refused request stores nothing"
    );

    let details = json!({"amount": 40, "currency": "EUR", "iban": "DE89370400440532013000"});
    let (id, token) = &s
        .granted(
            &key,
            json!({"action": "bank.transfer", "scope": {"max_amount": 100}, "actionDetails": details, "uses": 3}),
        )
        .await;
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(
        v["data"]["actionDetails"], details,
        "the details are shown in full"
    );
    assert_eq!(v["data"]["requireActionDetails"], true);

    let changed = json!({"amount": 40, "currency": "EUR", "iban": "DE89370400440532013001"});
    let refused = s.use_token(&key, id, token, Some(changed)).await;
    assert_eq!(refused["code"], "DETAILS_MISMATCH", "{refused}");
    let refused = s.use_token(&key, id, token, None).await;
    assert_eq!(refused["code"], "DETAILS_REQUIRED", "{refused}");
    assert_eq!(refused["usesRemaining"], 3);
    // The same details in another key order are the same canonical JSON.
    let reordered = json!({"iban": "DE89370400440532013000", "currency": "EUR", "amount": 40});
    let used = s.use_token(&key, id, token, Some(reordered)).await;
    assert_eq!(
        used,
        json!({"success": true, "usesRemaining": 2, "checked": true})
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protected_service_introspects_and_uses_tokens_for_its_actions_only() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let agent = s.agent("mailer-bot").await;
    let mailer = s.service("mailer", "gmail.*").await;
    let calendar = s.service("calendar", "calendar.*").await;
    let (id, token) = &s
        .granted(
            &agent,
            json!({"action": "gmail.send", "resource": "email:client@example.com",
                   "scope": {"allowed_recipients": ["client@example.com"], "subject_pattern": "^Invoice"}}),
        )
        .await;

    let (status, v) = as_service(&s, &mailer, "introspect", json!({"token": token})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["id"], *id);
    assert_eq!(v["action"], "gmail.send");
    assert_eq!(v["agentName"], "mailer-bot");
    assert_eq!(v["scope"]["blocked_recipients"], json!(["ceo@example.com"]));

    // Another service's view of it: the same as an unknown token.
    let (_, other) = as_service(&s, &calendar, "introspect", json!({"token": token})).await;
    let (_, unknown) = as_service(&s, &calendar, "introspect", json!({"token": "otp_nope"})).await;
    assert_eq!(other, not_for_this_service());
    assert_eq!(other, unknown);
    let v = send_as(&s, &calendar, token).await;
    assert_eq!(v["code"], "INVALID_TOKEN", "{v}");

    // A service must say what it performs: a use without the action is refused, consuming nothing.
    let (status, v) = as_service(&s, &mailer, "use", json!({"token": token})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("action"),
        "{v}"
    );

    // The mailer sends what it really does.
    let real = |to: &str, subject: &str| {
        json!({"token": token, "action": "gmail.send", "resource": "email:client@example.com",
               "actionDetails": {"recipients": [to], "subject": subject}})
    };
    let (_, v) = as_service(&s, &mailer, "use", real("eve@evil.example", "Invoice 7")).await;
    assert_eq!(v["code"], "SCOPE_VIOLATION", "{v}");
    let (_, v) = as_service(&s, &mailer, "use", real("client@example.com", "Hello")).await;
    assert_eq!(v["code"], "SCOPE_VIOLATION", "{v}");
    assert_eq!(v["usesRemaining"], 1, "refusals consume nothing");
    let (_, v) = as_service(&s, &mailer, "use", real("client@example.com", "Invoice 7")).await;
    assert_eq!(
        v,
        json!({"success": true, "usesRemaining": 0, "checked": true})
    );
    let (_, v) = as_service(&s, &mailer, "use", real("client@example.com", "Invoice 7")).await;
    assert_eq!(v["code"], "TOKEN_USED", "{v}");
    let (_, v) = as_service(&s, &mailer, "introspect", json!({"token": token})).await;
    assert_eq!(v["active"], false, "{v}");

    // The trail names who used it, and the other service's attempt.
    let (_, trail) = s
        .get(&s.admin, &format!("/api/v1/admin/audit?request={id}"))
        .await;
    let actors: Vec<(String, String)> = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        actors
            .iter()
            .any(|(e, a)| e == "token.used" && a.starts_with("service:")),
        "{actors:?}"
    );
    assert_eq!(
        actors
            .iter()
            .filter(|(e, a)| e == "token.use_refused" && a.starts_with("service:"))
            .count(),
        4,
        "{actors:?}"
    );
    s.stop().await;
}

/// A token names its request (`otp_`, 22 characters of its id, 40 secret ones), so a service's
/// lookup reads that request. Only the whole token opens it: a real id with a made-up secret, or
/// one request's secret behind another's id, answers like any unknown token and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_names_a_real_request_opens_it_only_with_its_secret() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let agent = s.agent("mailer-bot").await;
    let mailer = s.service("mailer", "gmail.*").await;
    let (id, token) = &s.granted(&agent, json!({"action": "gmail.send"})).await;
    let (other_id, other_token) = &s.granted(&agent, json!({"action": "gmail.send"})).await;
    assert_eq!(token.len(), 4 + 22 + 40, "{token}");
    assert_ne!(
        token[4..26],
        other_token[4..26],
        "each names its own request"
    );

    let flip = |c: char| if c == 'a' { 'b' } else { 'a' };
    let last = token.chars().last().unwrap();
    let wrong_secret = format!("{}{}", &token[..token.len() - 1], flip(last));
    let swapped = format!("{}{}", &other_token[..26], &token[26..]);
    let (_, unknown) = as_service(&s, &mailer, "introspect", json!({"token": "otp_nope"})).await;
    let (_, trail_before) = s.get(&s.admin, "/api/v1/admin/audit").await;
    for forged in [&wrong_secret, &swapped] {
        let (status, v) = as_service(&s, &mailer, "introspect", json!({"token": forged})).await;
        assert_eq!((status, &v), (StatusCode::OK, &unknown), "{forged}");
        let v = send_as(&s, &mailer, forged).await;
        assert_eq!(
            v,
            json!({"success": false, "usesRemaining": 0, "code": "INVALID_TOKEN",
                   "reason": "the token is not valid for this service"}),
            "{forged}"
        );
    }
    let (_, trail_after) = s.get(&s.admin, "/api/v1/admin/audit").await;
    assert_eq!(
        trail_after["data"], trail_before["data"],
        "a forged token is no event"
    );
    for (id, token) in [(id, token), (other_id, other_token)] {
        let (_, v) = as_service(&s, &mailer, "introspect", json!({"token": token})).await;
        assert_eq!(
            (&v["active"], &v["id"], &v["usesRemaining"]),
            (&json!(true), &json!(id), &json!(1)),
            "{v}"
        );
    }
    s.stop().await;
}

/// A token issued before tokens named their request (`otp_` and 40 characters; migration 010
/// marked its row) still works for a protected service after the upgrade, by its hash.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_from_before_tokens_named_their_request_still_works() {
    let mut s = TestServer::with_policy(Some(POLICY)).await;
    let agent = s.agent("mailer-bot").await;
    let mailer = s.service("mailer", "gmail.*").await;
    let (id, named) = s.granted(&agent, json!({"action": "gmail.send"})).await;
    s.shut_down().await;
    // What a database upgraded across migration 010 holds for a token it had issued.
    let legacy = format!("otp_{}", "Lg7".repeat(14).get(..40).unwrap());
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let marked = conn
        .execute(
            "UPDATE permissions SET token_hash = ?1, unnamed_token = 1 WHERE id = ?2",
            [
                agent_otp::testing::secret::sha256_hex(legacy.as_bytes()),
                id.clone(),
            ],
        )
        .unwrap();
    assert_eq!(marked, 1);
    drop(conn);
    s.restart().await;

    let (_, v) = as_service(&s, &mailer, "introspect", json!({"token": legacy})).await;
    assert_eq!((&v["active"], &v["id"]), (&json!(true), &json!(id)), "{v}");
    // The token this row no longer has names the row, but its hash is not the row's.
    let (_, v) = as_service(&s, &mailer, "introspect", json!({"token": named})).await;
    assert_eq!(v, not_for_this_service());
    let v = send_as(&s, &mailer, &legacy).await;
    assert_eq!(v["success"], true, "{v}");
    let (_, v) = as_service(&s, &mailer, "introspect", json!({"token": legacy})).await;
    assert_eq!(v["active"], false, "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_keys_agent_keys_and_admin_tokens_each_stay_on_their_own_routes() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let agent = s.agent("bot").await;
    let mailer = s.service("mailer", "gmail.*").await;
    let (id, token) = &s.granted(&agent, json!({"action": "gmail.send"})).await;

    for key in [
        &agent,
        &s.admin,
        &format!("sk_{}", "x".repeat(40)),
        &String::new(),
    ] {
        for route in ["introspect", "use"] {
            let body = json!({"token": token, "action": "gmail.send"});
            let (status, v) = as_service(&s, key, route, body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{route} with {key:?}: {v}"
            );
        }
    }
    let agent_routes = [
        (
            "POST",
            "/api/v1/permissions/request".to_owned(),
            Some(json!({"action": "gmail.send"})),
        ),
        ("GET", format!("/api/v1/permissions/{id}"), None),
        (
            "POST",
            format!("/api/v1/permissions/{id}/use"),
            Some(json!({"token": token})),
        ),
        (
            "POST",
            format!("/api/v1/permissions/{id}/verify"),
            Some(json!({"token": token})),
        ),
    ];
    for (method, path, body) in agent_routes {
        let (status, v) = s.call(&mailer, method, &path, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {v}");
    }
    for (method, path) in [
        ("GET", "/api/v1/admin/permissions".to_owned()),
        ("POST", format!("/api/v1/admin/permissions/{id}/revoke")),
        ("GET", "/api/v1/admin/agents".to_owned()),
    ] {
        let (status, v) = s.call(&mailer, method, &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {v}");
    }
    // A revoked service key stops working at once.
    let svc = &s.handle.as_ref().unwrap().service;
    svc.revoke_protected_service(agent_otp::testing::domain::Actor::Operator, "mailer")
        .await
        .unwrap();
    let (status, _) = as_service(&s, &mailer, "introspect", json!({"token": token})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_named_at_use_is_compared_in_its_normal_form() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let key = s.agent("reader").await;
    let (_, data) = s
        .request(
            &key,
            json!({"action": "gmail.read", "resource": "/srv/mail/./inbox//7", "uses": 2}),
        )
        .await;
    assert_eq!(data["status"], "approved", "{data}");
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(
        v["data"]["resource"], "/srv/mail/inbox/7",
        "stored normalised"
    );
    let path = format!("/api/v1/permissions/{id}/use");
    let (_, v) = s
        .post(
            &key,
            &path,
            json!({"token": token, "resource": "/srv/mail/inbox/../../secret/7"}),
        )
        .await;
    assert_eq!(v["data"]["code"], "RESOURCE_MISMATCH", "{v}");
    for resource in ["/srv/mail/../../../etc/passwd", "/srv/mail/inbox/7\u{202E}"] {
        let (status, v) = s
            .post(&key, &path, json!({"token": token, "resource": resource}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{resource}: {v}");
    }
    let (_, v) = s
        .post(
            &key,
            &path,
            json!({"token": token, "resource": "/srv/mail/inbox/./7"}),
        )
        .await;
    assert_eq!(
        v["data"]["success"], true,
        "the same resource, spelt otherwise: {v}"
    );
    s.stop().await;
}

/// A whole number too large to be exact (`12345678901234567890123` reads as the same double as
/// `12345678901234567890124`) used to be accepted in exact details: the human saw
/// `1.2345678901234568e+22`, and a service performing the neighbouring account presented
/// details with the same digest. A number that reading would round is now a 400 naming `body`,
/// and nothing is stored; 64-bit integers, fractions, and a large number written as its float's
/// shortest spelling (`1e22`, one number only) still bind.
#[tokio::test(flavor = "multi_thread")]
async fn exact_details_with_a_number_too_large_to_be_exact_are_refused() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let key = s.agent("treasurer").await;
    let service = s.service("bank", "bank.*").await;
    let raw = |body: String| {
        let req = s
            .http
            .post(s.url("/api/v1/permissions/request"))
            .bearer_auth(&key)
            .header("Content-Type", "application/json")
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let v: Value = resp.json().await.unwrap();
            (status, v)
        }
    };
    for (details, number) in [
        (
            r#"{"account": 12345678901234567890123, "amount": 5}"#,
            "12345678901234567890123",
        ),
        (
            r#"{"to": {"account": 10000000000000000000001}}"#,
            "10000000000000000000001",
        ),
        (
            r#"{"accounts": [1, -98765432109876543210987]}"#,
            "-98765432109876543210987",
        ),
    ] {
        let (status, v) = raw(format!(
            r#"{{"action": "bank.transfer", "actionDetails": {details}}}"#
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{details}: {v}");
        let said = v["error"]["details"]["body"].as_str().unwrap_or_default();
        assert!(said.contains(&format!("the number {number} ")), "{v}");
    }
    assert_eq!(s.permission_count().await, 0, "nothing stored");

    let (status, v) = raw(
        r#"{"action": "bank.transfer", "actionDetails": {"account": 18446744073709551615, "amount": 0.5, "neg": -9223372036854775808, "big": 1e22}}"#
            .to_owned(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let token = v["data"]["token"].as_str().unwrap();
    let (_, used) = as_service(
        &s,
        &service,
        "use",
        json!({"token": token, "action": "bank.transfer",
               "actionDetails": {"account": u64::MAX, "amount": 0.5, "neg": i64::MIN, "big": 1e22}}),
    )
    .await;
    assert_eq!(used["success"], true, "{used}");
    s.stop().await;
}

/// The person deciding reads exact details as `creditor.iban = …`. A key `creditor.iban` beside
/// a nested `creditor → iban` read the same, so an agent could show one IBAN first and bind the
/// token to another one further down. Keys of exact details are now plain names at every depth:
/// anything else is a 400 naming where it is, and nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn exact_details_with_keys_that_are_not_plain_names_are_refused() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let key = s.agent("treasurer").await;
    let ask = |details: Value| {
        s.post(
            &key,
            "/api/v1/permissions/request",
            json!({"action": "bank.transfer", "actionDetails": details}),
        )
    };
    for (details, field) in [
        (
            json!({"creditor.iban": "DE89370400440532013000", "creditor": {"iban": "GB33BUKB20201555555555"}}),
            "actionDetails",
        ),
        (
            json!({"creditor": {"iban ": "GB33"}}),
            "actionDetails.creditor",
        ),
        (
            json!({"amount = 40 (any other use is refused)": 1}),
            "actionDetails",
        ),
        (
            json!({"to": [{"ok": 1}, {"a\u{200b}b": 2}]}),
            "actionDetails.to.1",
        ),
        (json!({"": 1}), "actionDetails"),
        (json!({"k".repeat(65): 1}), "actionDetails"),
    ] {
        let (status, v) = ask(details.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{details}: {v}");
        let why = v["error"]["details"][field].as_str().unwrap_or_default();
        assert!(why.contains("plain names"), "{field}: {v}");
    }
    // Keys that differ only in case read as one.
    for (details, field) in [
        (json!({"iban": "A", "IBAN": "B"}), "actionDetails"),
        (
            json!({"c": [{"Iban": "A", "iban": "B"}]}),
            "actionDetails.c.0",
        ),
    ] {
        let (status, v) = ask(details.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{details}: {v}");
        let why = v["error"]["details"][field].as_str().unwrap_or_default();
        assert!(why.contains("differ only in case"), "{field}: {v}");
    }
    assert_eq!(s.permission_count().await, 0, "nothing stored");
    let (status, v) =
        ask(json!({"creditor": {"iban": "DE89", "bic-code": "X"}, "k".repeat(64): [{"_a1": 1}]}))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    s.stop().await;
}

/// `blocked_recipients: ["ceo@example.com"]` compared whole texts only, so a use naming the
/// CEO the way a mail library reads it (a display name, a list in one string, a `+tag`) passed.
#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_address_inside_a_display_name_or_a_list_is_still_blocked() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let key = s.agent("mailer-bot").await;
    let service = s.service("mailer", "gmail.*").await;
    let (_, token) = &s
        .granted(&key, json!({"action": "gmail.send", "uses": 10}))
        .await;
    for to in [
        "The Boss <ceo@example.com>",
        "bob@example.org, ceo@example.com",
        "CEO+urgent@Example.com",
        "ceo@example.com.",
    ] {
        let (_, v) = as_service(
            &s,
            &service,
            "use",
            json!({"token": token, "action": "gmail.send", "actionDetails": {"recipient": to}}),
        )
        .await;
        assert_eq!(v["code"], "SCOPE_VIOLATION", "{to}: {v}");
        assert_eq!(v["usesRemaining"], 10, "{v}");
    }
    let (_, v) = as_service(
        &s,
        &service,
        "use",
        json!({"token": token, "action": "gmail.send", "actionDetails": {"recipient": "Bob <bob@example.org>"}}),
    )
    .await;
    assert_eq!(v["success"], true, "{v}");
    s.stop().await;
}
