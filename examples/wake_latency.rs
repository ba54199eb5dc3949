//! Measures, for `bench/run.sh`, the time from a human's approval to the waiting agent's
//! long-poll returning with its token: for each round an agent asks for a permission that needs
//! approval, starts `GET /permissions/:id?wait=30`, and once that call is waiting an admin
//! approves; the clock runs from just before the approval is sent until the long-poll answers.
//!
//! Usage: `wake_latency BASE_URL AGENT_KEY ADMIN_TOKEN [ROUNDS]`; prints `p50_ms p99_ms max_ms`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, key, admin) = (&args[1], &args[2], &args[3]);
    let rounds: usize = args.get(4).map_or(200, |r| r.parse().unwrap());
    let http = reqwest::Client::new();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let v: Value = http
            .post(format!("{base}/api/v1/permissions/request"))
            .bearer_auth(key)
            .json(&json!({"action": "bench.needs-approval"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["data"]["status"], "pending", "{v}");
        let id = v["data"]["id"].as_str().unwrap().to_owned();
        let poll = {
            let (http, url, key) = (
                http.clone(),
                format!("{base}/api/v1/permissions/{id}?wait=30"),
                key.clone(),
            );
            tokio::spawn(async move {
                let v: Value = http
                    .get(url)
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                (Instant::now(), v)
            })
        };
        // Let the long-poll reach the server and start waiting.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let started = Instant::now();
        let approve = http
            .post(format!("{base}/api/v1/admin/permissions/{id}/approve"))
            .bearer_auth(admin)
            .json(&json!({}))
            .send();
        let (resp, polled) = tokio::join!(approve, poll);
        assert!(resp.unwrap().status().is_success());
        let (returned, v) = polled.unwrap();
        assert!(v["data"]["token"].is_string(), "{v}");
        samples.push(returned.duration_since(started));
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:.2} {:.2} {:.2}",
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(pick(1.0))
    );
}
