//! Using a token with and without `actionDetails`: a use without them consumes and is recorded
//! as unchecked (the original README's flow); a rule can demand them; details given are checked.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestServer;

/// Human approval for mail, and a rule that demands details for payments.
const POLICY: &str = r#"
- name: mail needs a human
  conditions:
    action: { equals: "gmail.send" }
  action: require_approval
- name: payments show what they pay
  conditions:
    action: { equals: "bank.transfer" }
  action: auto_approve
  requireActionDetails: true
"#;

/// The token.used / token.use_refused events of one request, oldest first.
async fn use_events(s: &TestServer, id: &str) -> Vec<Value> {
    let (status, v) = s
        .get(&s.admin, &format!("/api/v1/admin/audit?request={id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let mut events: Vec<Value> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"].as_str().unwrap().starts_with("token.use"))
        .cloned()
        .collect();
    events.reverse();
    events
}

/// The original Agent OTP README: request `gmail.send` with `{max_emails, subject_pattern}`, a
/// human approves, the agent sends and then calls `useToken(id, token)` with no details.
#[tokio::test(flavor = "multi_thread")]
async fn the_original_readme_flow_consumes_the_token_unchecked() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let key = s.agent("invoicer").await;
    let (status, data) = s
        .request(
            &key,
            json!({"action": "gmail.send", "resource": "email:client@example.com",
                   "scope": {"max_emails": 1, "subject_pattern": "^Invoice.*"},
                   "context": {"reason": "Sending monthly invoice to client"}, "ttl": 300}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{data}");
    let id = data["id"].as_str().unwrap().to_owned();
    s.approve(&id).await;
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    let token = v["data"]["token"].as_str().unwrap().to_owned();

    let used = s.use_token(&key, &id, &token, None).await;
    assert_eq!(
        used,
        json!({"success": true, "usesRemaining": 0, "checked": false})
    );
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "used", "the token is marked used");
    let again = s.use_token(&key, &id, &token, None).await;
    assert_eq!(again["success"], false, "{again}");
    assert_eq!(again["code"], "TOKEN_USED");

    let events = use_events(&s, &id).await;
    assert_eq!(events[0]["event"], "token.used");
    assert_eq!(events[0]["details"]["checked"], false);
    assert_eq!(
        events[0]["details"]["note"],
        "details not given, scope not checked here"
    );
    assert_eq!(events[1]["event"], "token.use_refused");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_can_demand_details_and_details_given_are_checked() {
    let s = TestServer::with_policy(Some(POLICY)).await;
    let key = s.agent("payer").await;
    let (id, token) = &s
        .granted(
            &key,
            json!({"action": "bank.transfer", "scope": {"max_amount": 50}, "uses": 2}),
        )
        .await;
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["requireActionDetails"], true, "{v}");

    let refused = s.use_token(&key, id, token, None).await;
    assert_eq!(refused["success"], false, "{refused}");
    assert_eq!(refused["code"], "DETAILS_REQUIRED");
    assert_eq!(
        refused["usesRemaining"], 2,
        "a refused use consumes nothing"
    );

    let over = s
        .use_token(&key, id, token, Some(json!({"amount": 51})))
        .await;
    assert_eq!(over["code"], "SCOPE_VIOLATION", "{over}");
    assert_eq!(over["usesRemaining"], 2);

    let ok = s
        .use_token(&key, id, token, Some(json!({"amount": 50})))
        .await;
    assert_eq!(
        ok,
        json!({"success": true, "usesRemaining": 1, "checked": true})
    );

    let kinds: Vec<(String, Value)> = use_events(&s, id)
        .await
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["details"]["code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("token.use_refused".to_owned(), json!("DETAILS_REQUIRED")),
            ("token.use_refused".to_owned(), json!("SCOPE_VIOLATION")),
            ("token.used".to_owned(), Value::Null),
        ]
    );
    s.stop().await;
}
