//! Rate limits and input limits: 429 with `Retry-After` and `X-RateLimit-*`, recovery as the
//! (manual) clock moves, floods that do not touch honest agents, the pending cap, and a clear 400
//! naming the field, with nothing written, for every input limit.

use std::time::Duration;

use agent_otp::config::Rate;
use agent_otp::testing::domain::Actor;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{TestServer, nested};

fn rate(text: &str) -> Option<Rate> {
    Rate::parse(text).unwrap()
}

/// A raw answer: status, headers and JSON (or `{"raw": text}`).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `X-RateLimit-Limit/Remaining/Reset` as numbers.
    fn quota(&self) -> (u64, u64, u64) {
        let n = |h| {
            self.header(h)
                .unwrap_or_else(|| panic!("{h} missing: {:?}", self.headers))
                .parse()
                .unwrap()
        };
        (
            n("x-ratelimit-limit"),
            n("x-ratelimit-remaining"),
            n("x-ratelimit-reset"),
        )
    }
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    Answer {
        status,
        headers,
        body,
    }
}

async fn ask(s: &TestServer, key: &str, action: &str) -> Answer {
    send(
        s.http
            .post(s.url("/api/v1/permissions/request"))
            .bearer_auth(key)
            .json(&json!({ "action": action })),
    )
    .await
}

/// How many audit events exist.
async fn audit_count(s: &TestServer) -> i64 {
    let (status, body) = s.get(&s.admin, "/api/v1/admin/audit?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["meta"]["total"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_over_its_rate_gets_429_and_recovers_as_time_passes() {
    let s = TestServer::with_config(Some(crate::support::TEST_POLICY), |c| {
        c.limits.agent = rate("3/min");
    })
    .await;
    let key = s.agent("busy").await;
    let other = s.agent("calm").await;
    for left in [2, 1, 0] {
        let a = ask(&s, &key, "file.read").await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let (limit, remaining, reset) = a.quota();
        assert_eq!((limit, remaining), (3, left));
        assert_eq!(reset, 20 * (3 - left), "seconds until the bucket is full");
    }
    let before = s.permission_count().await;
    let refused = ask(&s, &key, "file.read").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.body["error"]["code"], "RATE_LIMITED",
        "{}",
        refused.body
    );
    assert_eq!(refused.header("retry-after"), Some("20"));
    assert_eq!(refused.quota(), (3, 0, 60));
    assert_eq!(
        s.permission_count().await,
        before,
        "a refused request writes nothing"
    );

    // The limit is per key: another agent is not slowed.
    let a = ask(&s, &other, "file.read").await;
    assert_eq!(a.status, StatusCode::CREATED);

    // Every agent route counts (here a read), and time refills the bucket.
    let id = "00000000-0000-0000-0000-000000000000";
    let path = format!("/api/v1/permissions/{id}");
    let still = send(s.http.get(s.url(&path)).bearer_auth(&key)).await;
    assert_eq!(still.status, StatusCode::TOO_MANY_REQUESTS);
    s.clock.advance(Duration::from_secs(20));
    let a = ask(&s, &key, "file.read").await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.quota().1, 0);
    s.clock.advance(Duration::from_secs(60));
    let a = ask(&s, &key, "file.read").await;
    assert_eq!(a.quota(), (3, 2, 20), "a full bucket after a whole period");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_key_flood_is_refused_while_an_honest_agent_keeps_working() {
    let s = TestServer::with_config(Some(crate::support::TEST_POLICY), |c| {
        c.limits.auth_failures = rate("5/min");
    })
    .await;
    let honest = s.agent("honest").await;
    assert_eq!(
        ask(&s, &honest, "file.read").await.status,
        StatusCode::CREATED
    );
    let late = s.agent("late").await;

    let mut statuses = Vec::new();
    for i in 0..40 {
        let a = ask(&s, &format!("ak_guess{i:040}"), "file.read").await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(a.header("retry-after").is_some());
            assert_eq!(a.body["error"]["code"], "RATE_LIMITED");
        }
        statuses.push(a.status.as_u16());
        // The honest agent, from the same address, is never slowed.
        let ok = ask(&s, &honest, "file.read").await;
        assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    }
    assert_eq!(statuses[..5], [401; 5]);
    assert!(statuses[5..].iter().all(|&c| c == 429), "{statuses:?}");
    // An admin token guess from that address is refused too.
    let (status, _) = s.get("adm_nope", "/api/v1/admin/agents").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // A key this server has not seen yet waits like any unknown key, until the address cools
    // down (one failure's worth: 12 s).
    assert_eq!(
        ask(&s, &late, "file.read").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.clock.advance(Duration::from_secs(12));
    assert_eq!(
        ask(&s, &late, "file.read").await.status,
        StatusCode::CREATED
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_proxy_each_forwarded_address_has_its_own_budget() {
    let s = TestServer::with_config(Some(crate::support::TEST_POLICY), |c| {
        c.limits.auth_failures = rate("2/min");
        c.limits.trust_forwarded_for = true;
    })
    .await;
    let key = s.agent("fresh").await;
    let from = |ip: &str, key: &str| {
        s.http
            .post(s.url("/api/v1/permissions/request"))
            .bearer_auth(key)
            .header("X-Forwarded-For", format!("6.6.6.6, {ip}"))
            .json(&json!({ "action": "file.read" }))
    };
    for _ in 0..3 {
        send(from("203.0.113.7", "ak_bad")).await;
    }
    let blocked = send(from("203.0.113.7", "ak_bad")).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    let elsewhere = send(from("198.51.100.1", &key)).await;
    assert_eq!(elsewhere.status, StatusCode::CREATED, "{}", elsewhere.body);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_link_guessing_from_one_address_is_limited() {
    let s = TestServer::with_config(Some(crate::support::TEST_POLICY), |c| {
        c.limits.login = rate("3/min");
    })
    .await;
    let http = crate::web::client();
    let svc = &s.handle.as_ref().unwrap().service;
    let good = svc
        .issue_login_url(Actor::Operator, "alice", None)
        .await
        .unwrap();
    // A good link costs nothing.
    let ok = send(http.get(&good)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.quota().1, 3);

    for _ in 0..3 {
        let a = send(http.get(s.url("/login/ll_guess"))).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
    }
    let refused = send(http.get(s.url("/login/ll_guess"))).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("20"));
    assert_eq!(refused.quota(), (3, 0, 60));
    assert!(
        refused.body["raw"]
            .as_str()
            .unwrap()
            .contains("Too many failed attempts")
    );
    // While the address is blocked even a good link waits (it is not used up by that).
    let good = svc
        .issue_login_url(Actor::Operator, "alice", None)
        .await
        .unwrap();
    assert_eq!(
        send(http.get(&good)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.clock.advance(Duration::from_secs(20));
    assert_eq!(send(http.get(&good)).await.status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_requests_per_agent_are_capped_until_decided() {
    let s = TestServer::with_config(Some(crate::support::TEST_POLICY), |c| {
        c.limits.max_pending_per_agent = 2;
    })
    .await;
    let key = s.agent("eager").await;
    let other = s.agent("patient").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let a = ask(&s, &key, "email.draft").await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
        ids.push(a.body["data"]["id"].as_str().unwrap().to_owned());
    }
    let (count, events) = (s.permission_count().await, audit_count(&s).await);
    let refused = ask(&s, &key, "email.draft").await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["error"]["code"], "RATE_LIMITED");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("2 requests waiting for a human"),
        "{message}"
    );
    // At the latest a slot frees when the first pending request lapses (300 s default TTL).
    assert_eq!(refused.header("retry-after"), Some("301"));
    assert_eq!(s.permission_count().await, count, "nothing written");
    assert_eq!(audit_count(&s).await, events, "nothing audited");

    // Decisions by policy are not capped; other agents are not affected.
    assert_eq!(ask(&s, &key, "file.read").await.status, StatusCode::CREATED);
    assert_eq!(ask(&s, &key, "shell.exec").await.status, StatusCode::OK);
    assert_eq!(
        ask(&s, &other, "email.draft").await.status,
        StatusCode::ACCEPTED
    );

    // A decision frees a slot.
    let (status, body) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{}/deny", ids[0]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        ask(&s, &key, "email.draft").await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        ask(&s, &key, "email.draft").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // So does expiry, even before the sweeper has run.
    s.clock.advance(Duration::from_secs(301));
    assert_eq!(
        ask(&s, &key, "email.draft").await.status,
        StatusCode::ACCEPTED
    );
    s.stop().await;
}

fn items(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!(format!("r{i}@example.com"))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_input_limit_answers_400_naming_the_field_and_writes_nothing() {
    let s = TestServer::start().await;
    let key = s.agent("limits").await;
    let wide: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
    let request_cases: Vec<(Value, &str)> = vec![
        (json!({"action": "a".repeat(256)}), "action"),
        (
            json!({"action": "a", "resource": "r".repeat(1025)}),
            "resource",
        ),
        (json!({"action": "a", "scope": wide}), "scope"),
        (json!({"action": "a", "context": nested(9)}), "context"),
        (
            json!({"action": "a", "context": {"blob": "x".repeat(17_000)}}),
            "context",
        ),
        (
            json!({"action": "a", "scope": {"allowed_recipients": items(257)}}),
            "scope.allowed_recipients",
        ),
        (
            json!({"action": "a", "context": {"batch": [{"to": items(257)}]}}),
            "context.batch.0.to",
        ),
        (
            json!({"action": "a", "scope": {"path_pattern": "a".repeat(1025)}}),
            "scope.path_pattern",
        ),
        (
            json!({"action": "a", "scope": {"path_pattern": "\\w{1000}\\w{1000}\\w{1000}"}}),
            "scope.path_pattern",
        ),
        (json!({"action": "a", "ttl": 3601}), "ttl"),
        (json!({"action": "a", "uses": 101}), "uses"),
    ];
    let (count, events) = (s.permission_count().await, audit_count(&s).await);
    for (body, field) in request_cases {
        let (status, v) = s
            .post(&key, "/api/v1/permissions/request", body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["code"], "VALIDATION_ERROR", "{v}");
        assert!(
            v["error"]["details"].get(field).is_some(),
            "should name {field}: {v}"
        );
    }
    assert_eq!(s.permission_count().await, count);
    assert_eq!(audit_count(&s).await, events);

    // Token use: actionDetails and the token itself.
    let (_, granted) = s
        .request(&key, json!({"action": "email.send", "scope": {}}))
        .await;
    let (id, token) = (
        granted["id"].as_str().unwrap(),
        granted["token"].as_str().unwrap(),
    );
    let events = audit_count(&s).await;
    let use_path = format!("/api/v1/permissions/{id}/use");
    for (body, field) in [
        (
            json!({"token": token, "actionDetails": {"recipients": items(257)}}),
            "actionDetails.recipients",
        ),
        (
            json!({"token": token, "actionDetails": nested(9)}),
            "actionDetails",
        ),
        (json!({"token": "t".repeat(257)}), "token"),
    ] {
        let (status, v) = s.post(&key, &use_path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["details"].get(field).is_some(), "{field}: {v}");
    }
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(v["data"]["usesRemaining"], 1, "no use was spent: {v}");
    assert_eq!(audit_count(&s).await, events);

    // Query and admin inputs.
    let (status, v) = s
        .get(&key, &format!("/api/v1/permissions/{id}?wait=61"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"]["details"].get("wait").is_some(), "{v}");
    let (status, v) = s.get(&s.admin, "/api/v1/admin/permissions?limit=101").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"]["details"].get("limit").is_some(), "{v}");
    let (status, v) = s
        .post(
            &s.admin,
            "/api/v1/admin/agents",
            json!({"name": "n".repeat(65)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"]["details"].get("name").is_some(), "{v}");

    let (_, pending) = s.request(&key, json!({"action": "email.draft"})).await;
    let pid = pending["id"].as_str().unwrap();
    let events = audit_count(&s).await;
    let approve = format!("/api/v1/admin/permissions/{pid}/approve");
    for (body, field) in [
        (json!({"note": "n".repeat(1001)}), "note"),
        (
            json!({"scope": {"allowed_recipients": items(257)}}),
            "scope.allowed_recipients",
        ),
    ] {
        let (status, v) = s.post(&s.admin, &approve, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["details"].get(field).is_some(), "{field}: {v}");
    }
    let (status, v) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{pid}/deny"),
            json!({"reason": "r".repeat(1001)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["details"].get("reason").is_some(), "{v}");
    assert_eq!(audit_count(&s).await, events, "nothing decided");

    // The body itself: over 64 KiB is 413.
    let big = json!({"action": "a", "context": {"x": "y".repeat(70_000)}});
    let (status, v) = s.post(&key, "/api/v1/permissions/request", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "PAYLOAD_TOO_LARGE");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_telegram_link_codes_are_limited_per_user() {
    use crate::fake_telegram::{FakeTelegram, TOKEN};
    use crate::support::eventually;
    let fake = FakeTelegram::start().await;
    let tg = agent_otp::config::TelegramConfig {
        api_url: fake.url.clone(),
        poll_timeout: Duration::from_secs(1),
        retry_base: Duration::from_millis(50),
        ..agent_otp::config::TelegramConfig::new(agent_otp::testing::secret::Secret::new(TOKEN))
    };
    let s = TestServer::with_config(Some(crate::support::TEST_POLICY), move |c| {
        c.telegram = Some(tg);
        c.limits.telegram_link = rate("2/h");
    })
    .await;
    let (mallory, ann) = (901, 902);
    let said = |chat: i64, needle: &'static str, n: usize| {
        let fake = &fake;
        async move {
            eventually(10, needle, || async {
                let seen = fake
                    .sent_to(chat)
                    .iter()
                    .filter(|m| m.text.contains(needle))
                    .count();
                (seen == n).then_some(())
            })
            .await;
        }
    };
    for (i, code) in ["AAAA", "BBBB"].iter().enumerate() {
        fake.user_says(mallory, &format!("/start {code}"));
        said(mallory, "unknown, used or expired", i + 1).await;
    }
    fake.user_says(mallory, "/start CCCC");
    said(mallory, "Too many wrong codes. Try again in 30 min", 1).await;
    let (_, body) = s
        .get(&s.admin, "/api/v1/admin/audit?event=telegram.link_failed")
        .await;
    assert_eq!(
        body["meta"]["total"], 2,
        "the refused try is not even looked up"
    );

    // Another user is not affected; time lets the first one try again.
    fake.user_says(ann, "/start DDDD");
    said(ann, "unknown, used or expired", 1).await;
    s.clock.advance(Duration::from_secs(1800));
    fake.user_says(mallory, "/start EEEE");
    said(mallory, "unknown, used or expired", 3).await;
    s.stop().await;
}
