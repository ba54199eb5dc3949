//! The approval pages in real headless Chromium at a phone viewport (390×844, touch), driven
//! over WebDriver: log in through a login link, open a request from the pending list, approve it
//! with a narrowed scope and watch the agent's long-poll receive exactly that scope; deny; see an
//! expired request without buttons; press Enter in every field and see nothing approved; see
//! hidden characters as visible markers. Screenshots go to `test-artifacts/`.
//!
//! Chromium and chromedriver must be installed (`.ci/run` installs them). Without them these
//! tests are reported as ignored on a developer machine (build.rs sets `cfg(no_browser)`), and
//! fail when `CI=true`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_otp::domain::Actor;
use agent_otp::login_links;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::support::TestServer;
use crate::web::pending;

/// One browser at a time: the machines have two cores.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const IPHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// A running chromedriver (killed on drop) and the browser session it drives.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Starts chromedriver and a phone-sized headless Chromium; `None` (with a notice) when they
/// are not installed, except under CI where that is a failure.
async fn browser() -> Option<Browser> {
    let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = on_path(&["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        let fix =
            "install them: apt-get install -y --no-install-recommends chromium chromium-driver";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("browser tests need chromium and chromedriver; {fix}");
        }
        eprintln!("NOTE: skipping a browser test, chromium or chromedriver is missing; {fix}");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--disable-extensions", "--disable-default-apps",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "mobileEmulation": {
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3, "touch": true, "mobile": true},
                "userAgent": IPHONE_UA,
            },
        }
    });
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(caps.as_object().unwrap().clone());
    Some(Browser {
        client: builder
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session"),
        driver: child,
        _profile: profile,
    })
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifacts().join(name), png).unwrap();
}

/// Asserts the page fits 390 px without sideways scrolling and every visible control is a
/// 44 px tap target.
async fn assert_phone_friendly(c: &Client, what: &str) {
    let v = c
        .execute(
            "const small = [...document.querySelectorAll('button, a.button, a.card, summary, input:not([type=hidden]):not([type=checkbox]), select, nav a, label.check')]
               .filter(e => e.offsetParent !== null)
               .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect().height])
               .filter(([, h]) => h < 44);
             return [window.innerWidth, document.documentElement.scrollWidth, small];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(v[0], json!(390), "{what}: viewport");
    assert!(
        v[1].as_i64().unwrap() <= 390,
        "{what}: page is wider than the phone: {v}"
    );
    assert_eq!(v[2], json!([]), "{what}: tap targets under 44 px");
}

/// Logs the browser in through a one-time link and waits for the pending list.
async fn log_in(c: &Client, s: &TestServer) {
    let svc = &s.handle.as_ref().unwrap().service;
    let link = login_links::issue_url(svc, "alice", None, Actor::Operator)
        .await
        .unwrap();
    c.goto(&link).await.unwrap();
    // Opening the link only asks; the button logs in.
    wait_for_text(c, "h1", "Log in as alice on this device?").await;
    c.find(Locator::Css("main form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(c, "h1", "Waiting for you").await;
}

async fn wait_for_text(c: &Client, css: &str, text: &str) {
    let started = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            // Rendered text: CSS may have changed its case.
            let want = text.to_lowercase();
            if e.text()
                .await
                .is_ok_and(|t| t.to_lowercase().contains(&want))
            {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {css:?} with {text:?} in {}",
            c.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
async fn web_browser_approves_a_narrowed_scope_from_a_phone() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let s = TestServer::start().await;
    let key = s.agent("billing-bot").await;
    pending(
        &s,
        &key,
        json!({"action": "deploy.staging", "context": {"reason": "nightly build"}}),
    )
    .await;
    let id = pending(
        &s,
        &key,
        json!({
            "action": "payment.send",
            "resource": "invoice/2026-03",
            "scope": {
                "max_amount": 100,
                "allowed_recipients": ["a@example.com", "b@example.com", "c@example.com"],
                "currency": "EUR",
            },
            "context": {"reason": "Pay the March invoice for hosting"},
            "ttl": 600,
            "uses": 2,
        }),
    )
    .await;

    log_in(c, &s).await;
    assert_phone_friendly(c, "pending list").await;
    screenshot(c, "pending-list.png").await;

    // Newest first: the payment is the first card.
    let first = c.find(Locator::Css("a.card")).await.unwrap();
    assert!(first.text().await.unwrap().contains("payment.send"));
    first.click().await.unwrap();
    wait_for_text(c, "h1.action", "payment.send").await;
    let body = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for shown in [
        "billing-bot",
        "invoice/2026-03",
        "Pay the March invoice",
        "max_amount",
        "everything-else",
    ] {
        assert!(body.contains(shown), "{shown} missing from {body}");
    }
    assert_phone_friendly(c, "approval page").await;
    screenshot(c, "approval-page.png").await;

    // The agent is already waiting when the human decides.
    let poll = s.long_poll(&key, &id);

    c.find(Locator::Css("details.changes summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let amount = c
        .find(Locator::Css(r#"input[name="num:max_amount"]"#))
        .await
        .unwrap();
    amount.clear().await.unwrap();
    amount.send_keys("40").await.unwrap();
    for drop in ["0", "2"] {
        c.find(Locator::Css(&format!(
            r#"input[name="list:allowed_recipients"][value="{drop}"]"#
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    }
    let uses = c.find(Locator::Css("#uses")).await.unwrap();
    uses.clear().await.unwrap();
    uses.send_keys("1").await.unwrap();
    assert_phone_friendly(c, "approve with changes").await;
    screenshot(c, "approval-changes.png").await;
    c.find(Locator::Css("#approve-changes"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(c, "#outcome", "approved").await;
    assert!(
        c.find_all(Locator::Css("#approve, #deny"))
            .await
            .unwrap()
            .is_empty()
    );
    screenshot(c, "approved.png").await;

    let (v, _) = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    let data = &v["data"];
    assert_eq!(data["status"], "approved", "{v}");
    assert_eq!(data["decidedBy"], "human:alice");
    let narrowed =
        json!({"max_amount": 40, "allowed_recipients": ["b@example.com"], "currency": "EUR"});
    assert_eq!(data["scope"], narrowed);
    let token = data["token"].as_str().unwrap();
    let (_, checked) = s.verify(&key, &id, token).await;
    assert_eq!(checked["data"]["valid"], true);
    assert_eq!(checked["data"]["scope"], narrowed);
    assert_eq!(checked["data"]["usesRemaining"], 1);
    let refused = s
        .use_token(
            &key,
            &id,
            token,
            Some(json!({"amount": 50, "recipient": "b@example.com"})),
        )
        .await;
    assert_eq!(refused["success"], false, "{refused}");
    c.clone().close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
async fn web_browser_denies_and_shows_expired_without_buttons() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let s = TestServer::start().await;
    let key = s.agent("deployer").await;
    let to_deny = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    let to_lapse = pending(&s, &key, json!({"action": "db.migrate", "ttl": 30})).await;

    log_in(c, &s).await;
    c.goto(&s.url(&format!("/requests/{to_deny}")))
        .await
        .unwrap();
    wait_for_text(c, "h1.action", "deploy.prod").await;
    c.find(Locator::Css("#reason"))
        .await
        .unwrap()
        .send_keys("not on a Friday")
        .await
        .unwrap();
    c.find(Locator::Css("#deny"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(c, "#outcome", "denied").await;
    wait_for_text(c, "#outcome", "not on a Friday").await;
    assert!(
        c.find_all(Locator::Css("#approve, #deny"))
            .await
            .unwrap()
            .is_empty()
    );
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{to_deny}")).await;
    assert_eq!(v["data"]["status"], "denied");
    assert_eq!(
        v["data"]["reason"], "not on a Friday",
        "the deny reason reaches the agent"
    );

    s.clock.advance(Duration::from_secs(301));
    c.goto(&s.url(&format!("/requests/{to_lapse}")))
        .await
        .unwrap();
    wait_for_text(c, ".status", "EXPIRED").await;
    assert!(
        c.find_all(Locator::Css(
            "form.decide, #approve, #deny, #approve-changes"
        ))
        .await
        .unwrap()
        .is_empty()
    );
    screenshot(c, "expired.png").await;
    c.clone().close().await.unwrap();
    s.stop().await;
}

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

/// The request's status as the admin API reads it.
async fn status_of(s: &TestServer, id: &str) -> String {
    let (_, v) = s
        .get(&s.admin, &format!("/api/v1/admin/permissions/{id}"))
        .await;
    v["data"]["status"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn web_browser_enter_in_a_field_never_approves() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let s = TestServer::start().await;
    let key = s.agent("billing-bot").await;
    let id = pending(
        &s,
        &key,
        json!({
            "action": "payment.send",
            "scope": {"max_amount": 100, "allowed_recipients": ["a@example.com", "b@example.com"]},
            "ttl": 600,
            "uses": 2,
        }),
    )
    .await;
    log_in(c, &s).await;
    let page = s.url(&format!("/requests/{id}"));
    c.goto(&page).await.unwrap();
    wait_for_text(c, "h1.action", "payment.send").await;
    c.find(Locator::Css("details.changes summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for (field, typed) in [
        ("#note", "do not pay"),
        ("#reason", "maybe later"),
        ("#ttl", "60"),
        ("#uses", "1"),
        (r#"input[name="num:max_amount"]"#, "5"),
        ("#note2", "do not pay either"),
    ] {
        // A page that reloads loses this marker.
        c.execute("window.stillHere = true;", vec![]).await.unwrap();
        let input = c.find(Locator::Css(field)).await.unwrap();
        input.send_keys(typed).await.unwrap();
        input.send_keys(ENTER).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(status_of(&s, &id).await, "pending", "Enter in {field}");
        let here = c
            .execute("return window.stillHere === true;", vec![])
            .await
            .unwrap();
        assert_eq!(here, json!(true), "Enter in {field} submitted a form");
        assert_eq!(c.current_url().await.unwrap().as_str(), page, "{field}");
    }
    screenshot(c, "enter-does-not-approve.png").await;
    assert_phone_friendly(c, "approval page after Enter").await;

    // A tap on Approve still approves, with the note.
    c.find(Locator::Css("#approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(c, "#outcome", "approved").await;
    wait_for_text(c, "#outcome", "do not pay").await;
    assert_eq!(status_of(&s, &id).await, "approved");
    c.clone().close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_browser_shows_hidden_characters_as_markers() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let s = TestServer::start().await;
    let key = s.agent("mallory").await;
    // A bidi override in a resource is refused (400); in free text it is kept, and shown marked.
    let (status, v) = s
        .post(
            &key,
            "/api/v1/permissions/request",
            json!({"action": "file.write", "resource": "evil\u{202E}txt.exe"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{v}");
    let context = json!({"reason": "evil\u{202E}txt.exe", "ref": "inv\u{200B}oice"});
    let id = pending(
        &s,
        &key,
        json!({"action": "file.write", "context": context}),
    )
    .await;
    let at = "#reason-given";
    log_in(c, &s).await;
    c.goto(&s.url(&format!("/requests/{id}"))).await.unwrap();
    wait_for_text(c, "h1.action", "file.write").await;
    wait_for_text(c, at, "evil[U+202E]txt.exe").await;
    wait_for_text(c, "#context", "inv[U+200B]oice").await;
    let v = c
        .execute(
            "const t = document.querySelector('main').innerText;
             const b = document.querySelector(arguments[0] + ' bdi');
             return [t.includes('\\u202E') || t.includes('\\u200B'), getComputedStyle(b).unicodeBidi];",
            vec![json!(at)],
        )
        .await
        .unwrap();
    assert_eq!(
        v,
        json!([false, "isolate"]),
        "no raw hidden character; agent text isolated"
    );
    assert_phone_friendly(c, "markers").await;
    screenshot(c, "markers.png").await;
    let v = c
        .execute(
            "document.querySelector('#decide').scrollIntoView();
             return [...document.querySelectorAll('button[disabled]')].map(b => b.offsetParent === null);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        v,
        json!([true, true, true]),
        "the Enter guards are not shown"
    );
    screenshot(c, "decide-forms.png").await;
    c.clone().close().await.unwrap();
    s.stop().await;
}
