//! Races: concurrent uses of one token and concurrent decisions on one request.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestServer;

/// Posts `{token}` to `/permissions/{id}/{action}` on a task of its own: the status and body.
fn spawn_token_call(
    s: &TestServer,
    key: &str,
    id: &str,
    action: &str,
    token: &str,
) -> tokio::task::JoinHandle<(StatusCode, serde_json::Value)> {
    let (http, url, key, body) = (
        s.http.clone(),
        s.url(&format!("/api/v1/permissions/{id}/{action}")),
        key.to_owned(),
        json!({ "token": token }),
    );
    tokio::spawn(async move {
        let resp = http
            .post(url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    })
}

/// Awaits every task, in order.
async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Uses without `actionDetails` consume unchecked, so a constrained scope must not open a gap:
/// 50 of them racing on a one-use token still give exactly one success.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_details_less_uses_of_a_scoped_token_succeed_once() {
    let s = TestServer::start().await;
    let key = s.agent("racer").await;
    let scope = json!({"max_size": 10, "path_pattern": "^/srv/"});
    let (_, data) = s
        .request(&key, json!({"action": "file.read", "scope": scope}))
        .await;
    let (id, token) = (
        data["id"].as_str().unwrap(),
        data["token"].as_str().unwrap(),
    );
    let tasks = (0..50)
        .map(|_| spawn_token_call(&s, &key, id, "use", token))
        .collect();
    let results = join_all(tasks).await;
    let won: Vec<_> = results
        .iter()
        .filter(|(_, v)| v["data"]["success"] == true)
        .collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert_eq!(won[0].1["data"]["checked"], false);
    assert!(
        results.iter().all(|(st, v)| *st == StatusCode::OK
            && (v["data"]["success"] == true || v["data"]["code"] == "TOKEN_USED")),
        "{results:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_uses_of_a_one_use_token_succeed_once() {
    let s = TestServer::start().await;
    let key = s.agent("racer").await;
    let (_, data) = s.request(&key, json!({"action": "file.read"})).await;
    let id = data["id"].as_str().unwrap().to_owned();
    let token = data["token"].as_str().unwrap().to_owned();
    let tasks = (0..50)
        .map(|_| spawn_token_call(&s, &key, &id, "use", &token))
        .collect();
    let results = join_all(tasks).await;
    for (status, v) in &results {
        assert_eq!(*status, StatusCode::OK, "{v}");
    }
    assert_eq!(
        results
            .iter()
            .filter(|(_, v)| v["data"]["success"].as_bool().unwrap())
            .count(),
        1,
        "exactly one use may succeed"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_first_writer_wins_the_other_gets_409() {
    let s = TestServer::start().await;
    let key = s.agent("contested").await;
    for round in 0..5 {
        let (_, data) = s.request(&key, json!({"action": "bank.transfer"})).await;
        let id = data["id"].as_str().unwrap().to_owned();
        let decide = |verb: &'static str| {
            let (http, url, admin) = (
                s.http.clone(),
                s.url(&format!("/api/v1/admin/permissions/{id}/{verb}")),
                s.admin.clone(),
            );
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(admin)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        };
        // Alternate approve/approve and approve/deny races.
        let second = if round % 2 == 0 { "approve" } else { "deny" };
        let statuses = join_all(vec![decide("approve"), decide(second)]).await;
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let conflict = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!((ok, conflict), (1, 1), "round {round}: {statuses:?}");
    }
    s.stop().await;
}

/// Verifies race the uses of a token. Once every use has returned, `verify` answers what they
/// wrote, whatever it had remembered while they ran. (The narrow case of a read that overlaps
/// the last commit is rarely hit here; `store::recent`'s unit tests pin it down.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn once_racing_uses_return_verify_sees_the_last_of_them() {
    let s = TestServer::with_config(Some(crate::support::TEST_POLICY), |c| {
        c.limits.agent = None; // 640 calls from one key in well under a second
    })
    .await;
    let key = s.agent("checked").await;
    for round in 0..10 {
        let uses = 8;
        let (id, token) = s.grant(&key, uses).await;
        let tasks = (0..uses * 8)
            .map(|i| {
                let action = if i % 8 == 0 { "use" } else { "verify" };
                spawn_token_call(&s, &key, &id, action, &token)
            })
            .collect();
        let statuses: Vec<_> = join_all(tasks)
            .await
            .into_iter()
            .map(|(st, _)| st)
            .collect();
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
        let (_, v) = s.verify(&key, &id, &token).await;
        assert_eq!(v["data"]["valid"], false, "round {round}: {v}");
    }
    s.stop().await;
}
