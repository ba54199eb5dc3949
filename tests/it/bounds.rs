//! Slow and greedy clients and proxies: a body or headers sent too slowly are cut at their
//! timeout (measured with a raw TCP client), an agent that stores too much gets a 429 that says
//! it is the storage cap, and behind a proxy the address the proxy appended counts, however many
//! `X-Forwarded-For` lines the client adds.

use std::time::{Duration, Instant};

use agent_otp::config::{ByteRate, IpNet, Rate};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TEST_POLICY, TestServer};

/// Reads what the server sends until it closes the connection (or 10 s pass); returns the text
/// and when the connection closed, measured from `since`.
async fn read_until_closed(conn: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the connection is still open after 10 s: {}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), since.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_sent_too_slowly_is_cut_at_its_timeout() {
    let s = TestServer::with_config(Some(TEST_POLICY), |c| {
        c.limits.body_timeout = Duration::from_millis(800);
    })
    .await;
    let key = s.agent("slowpoke").await;
    let mut conn = TcpStream::connect(s.handle.as_ref().unwrap().addr)
        .await
        .unwrap();
    let body = br#"{"action": "file.read", "context": {"reason": "one byte at a time"}}"#;
    let head = format!(
        "POST /api/v1/permissions/request HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // A byte every 100 ms would take 7 s; the server must not wait for that.
    let (mut rx, mut tx) = conn.into_split();
    let trickle = tokio::spawn(async move {
        for b in body {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if tx.write_all(&[*b]).await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut first_byte_after = None;
    let closed_after = loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
            Ok(Ok(n)) => {
                first_byte_after.get_or_insert(started.elapsed());
                got.extend_from_slice(&buf[..n]);
            }
            Err(_) => panic!("still open after 10 s"),
        }
    };
    trickle.abort();
    let answer = String::from_utf8_lossy(&got).into_owned();
    let answered_after = first_byte_after.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"REQUEST_TIMEOUT\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    // Answered at 0.8 s, and the connection closed soon after.
    assert!(
        answered_after >= Duration::from_millis(800)
            && answered_after < Duration::from_millis(1500),
        "answered after {answered_after:?}"
    );
    assert!(
        closed_after < answered_after + Duration::from_millis(1500),
        "closed after {closed_after:?}"
    );
    assert_eq!(s.permission_count().await, 0, "nothing was stored");

    // A body that arrives in time, even in pieces, is fine.
    let mut conn = TcpStream::connect(s.handle.as_ref().unwrap().addr)
        .await
        .unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    for part in body.chunks(body.len() / 3 + 1) {
        conn.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).await.unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.starts_with("HTTP/1.1 201"), "{first}");
    s.stop().await;
}

/// A client that sends its headers and then none, or part, of the body it announced is cut at
/// the body timeout too: the timer is armed only once the body is late, and must be.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stops_coming_is_cut_at_its_timeout() {
    let s = TestServer::with_config(Some(TEST_POLICY), |c| {
        c.limits.body_timeout = Duration::from_millis(800);
    })
    .await;
    let key = s.agent("staller").await;
    let body = br#"{"action": "file.read", "context": {"reason": "never finished"}}"#;
    for sent in [0, body.len() / 2, body.len() - 1] {
        let mut conn = TcpStream::connect(s.handle.as_ref().unwrap().addr)
            .await
            .unwrap();
        let head = format!(
            "POST /api/v1/permissions/request HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(&body[..sent]);
        conn.write_all(&request).await.unwrap();
        let started = Instant::now();
        let (answer, closed_after) = read_until_closed(&mut conn, started).await;
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{sent} bytes sent: {answer}"
        );
        assert!(
            closed_after >= Duration::from_millis(800)
                && closed_after < Duration::from_millis(2500),
            "{sent} bytes sent: closed after {closed_after:?}"
        );
    }
    // A chunked body that stalls, or passes the size limit and then stalls: answered, and the
    // connection closed (actix would otherwise read the rest of a chunked body, however long).
    let chunked = format!(
        "POST /api/v1/permissions/request HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let big = 70_000;
    for (sent, status, within) in [
        (b"5\r\n{\"act".to_vec(), "408", Duration::from_millis(2500)),
        (
            [format!("{big:x}\r\n").into_bytes(), vec![b' '; big]].concat(),
            "413",
            Duration::from_millis(700),
        ),
    ] {
        let mut conn = TcpStream::connect(s.handle.as_ref().unwrap().addr)
            .await
            .unwrap();
        conn.write_all(chunked.as_bytes()).await.unwrap();
        conn.write_all(&sent).await.unwrap();
        let (answer, closed_after) = read_until_closed(&mut conn, Instant::now()).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(
            closed_after < within,
            "{status}: closed after {closed_after:?}"
        );
    }
    assert_eq!(s.permission_count().await, 0, "nothing was stored");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_sent_too_slowly_are_cut_at_their_timeout() {
    let s = TestServer::with_config(Some(TEST_POLICY), |c| {
        c.limits.header_timeout = Duration::from_millis(700);
    })
    .await;
    let mut conn = TcpStream::connect(s.handle.as_ref().unwrap().addr)
        .await
        .unwrap();
    let started = Instant::now();
    let head =
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for b in head {
        if conn.write_all(&[*b]).await.is_err() || started.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (answer, closed_after) = read_until_closed(&mut conn, started).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(
        closed_after >= Duration::from_millis(700) && closed_after < Duration::from_millis(2500),
        "closed after {closed_after:?}"
    );
    s.stop().await;
}

/// A request the test policy denies (so it is stored and answered at once) of about 32 KiB.
fn big_request(n: usize) -> Value {
    let filler = "x".repeat(15_000);
    json!({
        "action": "shell.exec",
        "scope": { "blob": filler, "n": n },
        "context": { "reason": filler },
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_greedy_agent_hits_its_storage_cap_and_others_do_not() {
    let s = TestServer::with_config(Some(TEST_POLICY), |c| {
        c.limits.agent = None;
        c.limits.stored_bytes_per_agent = ByteRate::parse("256KiB/h").unwrap();
    })
    .await;
    let greedy = s.agent("greedy").await;
    let modest = s.agent("modest").await;
    let post = |key: &str, body: Value| {
        s.http
            .post(s.url("/api/v1/permissions/request"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    // Refused bodies are not stored, so they cost nothing.
    for _ in 0..20 {
        let mut bad = big_request(0);
        bad["ttl"] = json!(5);
        assert_eq!(post(&greedy, bad).await.unwrap().status(), 400);
    }
    let mut stored = 0;
    let refused = loop {
        let answer = post(&greedy, big_request(stored)).await.unwrap();
        if answer.status() != StatusCode::OK {
            break answer;
        }
        stored += 1;
        assert!(stored < 20, "no cap");
    };
    // 256 KiB of ~30 KiB bodies: 8 fit.
    assert_eq!(stored, 8);
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("storage cap") && message.contains("256 KiB per hour"),
        "{message}"
    );
    assert_eq!(s.permission_count().await, 8);
    // The budget is exact: the ~20 KiB left still take a small request; another agent is
    // untouched.
    let small = post(&greedy, json!({"action": "file.read"})).await.unwrap();
    assert_eq!(small.status(), StatusCode::CREATED);
    let other = post(&modest, big_request(0)).await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    // The budget refills with time (the small request above took a little more).
    s.clock.advance(Duration::from_secs(retry + 1));
    assert_eq!(
        post(&greedy, big_request(99)).await.unwrap().status(),
        StatusCode::OK
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_proxy_its_entry_counts_not_the_clients_extra_lines() {
    let s = TestServer::with_config(Some(TEST_POLICY), |c| {
        c.limits.auth_failures = Rate::parse("2/min").unwrap();
        c.limits.trust_forwarded_for = true;
    })
    .await;
    let key = s.agent("fresh").await;
    // The client forges a first line naming a new address each time; the proxy appends the
    // real one on a line of its own.
    let from = |forged: String, real: &str, key: &str| {
        s.http
            .post(s.url("/api/v1/permissions/request"))
            .bearer_auth(key)
            .header("X-Forwarded-For", forged)
            .header("X-Forwarded-For", real.to_owned())
            .json(&json!({ "action": "file.read" }))
            .send()
    };
    for i in 0..3 {
        from(format!("10.9.9.{i}"), "203.0.113.7", "ak_bad")
            .await
            .unwrap();
    }
    let blocked = from("10.9.9.99".into(), "203.0.113.7", "ak_bad")
        .await
        .unwrap();
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    // A different real address is a different client, even with the same forged line.
    let elsewhere = from("10.9.9.1".into(), "198.51.100.1", &key).await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::CREATED);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxies_are_walked_past_and_others_cannot_forward() {
    let s = TestServer::with_config(Some(TEST_POLICY), |c| {
        c.limits.auth_failures = Rate::parse("2/min").unwrap();
        // The test connects from 127.0.0.1: that is the first proxy; 10.0.0.0/8 holds more.
        c.limits.trusted_proxies = IpNet::parse_list("127.0.0.1, 10.0.0.0/8").unwrap();
    })
    .await;
    let key = s.agent("fresh").await;
    let via = |line: &str, key: &str| {
        s.http
            .post(s.url("/api/v1/permissions/request"))
            .bearer_auth(key)
            .header("X-Forwarded-For", line.to_owned())
            .json(&json!({ "action": "file.read" }))
            .send()
    };
    // Client 203.0.113.7 behind two proxies (10.0.0.2 appended it, 10.0.0.3 appended 10.0.0.2).
    for forged in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        let line = format!("{forged}, 203.0.113.7, 10.0.0.2, 10.0.0.3");
        via(&line, "ak_bad").await.unwrap();
    }
    let line = "4.4.4.4, 203.0.113.7, 10.0.0.2, 10.0.0.3";
    assert_eq!(via(line, "ak_bad").await.unwrap().status(), 429);
    let line = "203.0.113.8, 10.0.0.2, 10.0.0.3";
    assert_eq!(via(line, &key).await.unwrap().status(), 201);
    s.stop().await;

    // The same header from a connection that is not a trusted proxy names nobody.
    let s = TestServer::with_config(Some(TEST_POLICY), |c| {
        c.limits.auth_failures = Rate::parse("2/min").unwrap();
        c.limits.trusted_proxies = IpNet::parse_list("10.0.0.0/8").unwrap();
    })
    .await;
    let via = |line: String, key: &str| {
        s.http
            .post(s.url("/api/v1/permissions/request"))
            .bearer_auth(key)
            .header("X-Forwarded-For", line)
            .json(&json!({ "action": "file.read" }))
            .send()
    };
    for i in 0..3 {
        via(format!("203.0.113.{i}"), "ak_bad").await.unwrap();
    }
    // Every "client" was 127.0.0.1 all along: a new forged address does not get a new budget.
    let blocked = via("203.0.113.50".into(), "ak_bad").await.unwrap();
    assert_eq!(blocked.status(), 429);
    s.stop().await;
}
