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

use agent_otp::testing::domain::Actor;
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

/// A screen to test at: its size, phone or desktop, light or dark.
#[derive(Clone, Copy, Debug)]
struct Screen {
    width: u32,
    height: u32,
    phone: bool,
    dark: bool,
}

const PHONE: Screen = Screen {
    width: 390,
    height: 844,
    phone: true,
    dark: false,
};
const DESKTOP: Screen = Screen {
    width: 1280,
    height: 800,
    phone: false,
    dark: false,
};

/// Starts chromedriver and a phone-sized headless Chromium; `None` (with a notice) when they
/// are not installed, except under CI where that is a failure.
async fn browser() -> Option<Browser> {
    browser_at(PHONE).await
}

/// Starts chromedriver and headless Chromium showing exactly `screen`.
async fn browser_at(screen: Screen) -> Option<Browser> {
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
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--no-first-run".into(),
        "--disable-quic".into(),
        "--disable-extensions".into(),
        "--disable-default-apps".into(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    if screen.dark {
        // prefers-color-scheme: dark (blink's enum: 0 is dark).
        args.push("--force-dark-mode".into());
        args.push("--blink-settings=preferredColorScheme=0".into());
    }
    let mut emulation = json!({
        "deviceMetrics": {
            "width": screen.width, "height": screen.height,
            "pixelRatio": if screen.phone { 3 } else { 1 },
            "touch": screen.phone, "mobile": screen.phone,
        },
    });
    if screen.phone {
        emulation["userAgent"] = json!(IPHONE_UA);
    }
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": args,
            "mobileEmulation": emulation,
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
    let link = svc
        .issue_login_url(Actor::Operator, "alice", None)
        .await
        .unwrap();
    c.goto(&link).await.unwrap();
    // Opening the link only asks; the button logs in.
    wait_for_text(c, "h1", "Log in as alice on this device?").await;
    tap(c, "main form button").await;
    wait_for_text(c, "h1", "Waiting for you").await;
}

/// Payments need a human, who is asked a second time before an approval counts.
const CONFIRM_PAYMENTS: &str = "policies:\n  - name: money\n    conditions:\n      action: { startsWith: \"payment.\" }\n    action: require_approval\n    confirm: true\n";

/// Taps the element `css` selects.
async fn tap(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Opens the `<details>` with this id (a tap on its summary), if it is closed.
async fn open(c: &Client, id: &str) {
    c.execute(
        "const d = document.getElementById(arguments[0]); if (!d.open) d.querySelector('summary').click();",
        vec![json!(id)],
    )
    .await
    .unwrap();
}

async fn wait_for_text(c: &Client, css: &str, text: &str) {
    wait_for_text_within(c, css, text, Duration::from_secs(10)).await;
}

async fn wait_for_text_within(c: &Client, css: &str, text: &str, limit: Duration) {
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
            started.elapsed() < limit,
            "no {css:?} with {text:?} within {limit:?} in {}",
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
    wait_for_text(c, "#summary", "billing-bot wants to send up to 100 EUR").await;
    open(c, "details").await;
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
    let poll = s.long_poll(&key, &id).await;

    tap(c, "details.changes summary").await;
    let amount = c
        .find(Locator::Css(r#"input[name="num:max_amount"]"#))
        .await
        .unwrap();
    amount.clear().await.unwrap();
    amount.send_keys("40").await.unwrap();
    for drop in ["0", "2"] {
        tap(
            c,
            &format!(r#"input[name="list:allowed_recipients"][value="{drop}"]"#),
        )
        .await;
    }
    let uses = c.find(Locator::Css("#uses")).await.unwrap();
    uses.clear().await.unwrap();
    uses.send_keys("1").await.unwrap();
    assert_phone_friendly(c, "approve with changes").await;
    screenshot(c, "approval-changes.png").await;
    tap(c, "#approve-changes").await;
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
    open(c, "notes").await;
    c.find(Locator::Css("#reason"))
        .await
        .unwrap()
        .send_keys("not on a Friday")
        .await
        .unwrap();
    tap(c, "#deny").await;
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
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
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
    open(c, "notes").await;
    tap(c, "details.changes summary").await;
    for (field, typed) in [
        ("#note", "do not pay"),
        ("#reason", "maybe later"),
        ("#ttl_min", "5"),
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
    tap(c, "#approve").await;
    wait_for_text(c, "#outcome", "approved").await;
    wait_for_text(c, "#outcome", "do not pay").await;
    assert_eq!(status_of(&s, &id).await, "approved");
    c.clone().close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
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
    open(c, "details").await;
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

/// Measures elements by id against the viewport: bounding box, and the contrast of the text on
/// its background (the nearest ancestor with a background), both from computed styles.
const MEASURE: &str = r#"
const rgb = s => s.match(/[\d.]+/g).map(Number);
const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                   return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
const bg = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                  if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
const contrast = e => { const a = lum(rgb(getComputedStyle(e).color)), b = lum(bg(e));
                        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); };
const out = { w: innerWidth, h: innerHeight, dark: matchMedia('(prefers-color-scheme: dark)').matches };
for (const id of arguments[0]) {
  const e = document.getElementById(id);
  if (!e) { out[id] = null; continue; }
  const r = e.getBoundingClientRect();
  out[id] = { top: r.top, bottom: r.bottom, left: r.left, right: r.right,
              contrast: Math.round(contrast(e) * 100) / 100 };
}
return out;"#;

/// JavaScript giving every control's accessible name (aria-label, its labels, or its own text)
/// as `names`.
macro_rules! names_js {
    () => {
        r#"
const controls = [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button:not([aria-hidden=true])')];
const names = controls.map(e => (e.getAttribute('aria-label')
  || (e.labels && e.labels.length ? [...e.labels].map(l => l.textContent).join(' ') : '')
  || e.textContent || e.title || '').replace(/\s+/g, ' ').trim());
"#
    };
}

/// Every control's name.
const NAMES_AND_CONTROLS: &str = names_js!();

/// Every control's name, and the focusable elements after the summary sentence in tab order,
/// up to Approve.
const NAMES_AND_TABS: &str = concat!(
    names_js!(),
    r#"
const focusable = [...document.querySelectorAll('a[href], button, input, select, textarea, summary')]
  .filter(e => !e.disabled && e.type !== 'hidden' && e.checkVisibility() && e.tabIndex >= 0);
const summary = document.getElementById('summary');
const after = focusable.filter(e => summary.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING);
return [names, after.findIndex(e => e.id === 'approve') + 1, after.slice(0, 4).map(e => e.outerHTML.slice(0, 60))];"#
);

/// A short, a bank-like, a very long request, and one with a warning; their ids.
async fn four_requests(s: &TestServer) -> Vec<(&'static str, String)> {
    let key = s.agent("treasury-assistant").await;
    let short = pending(s, &key, json!({"action": "deploy.staging"})).await;
    let bank = pending(
        s,
        &key,
        json!({
            "action": "payment.transfer",
            "resource": "account/main",
            "scope": {
                "max_amount": 250,
                "allowed_currency": ["EUR"],
                "allowed_recipients": ["DE89370400440532013000", "FR1420041010050500013M02606"],
                "reference": "INV-2026-114",
            },
            "context": {"reason": "Supplier invoice 2026-114 is due on Friday"},
            "ttl": 1800,
        }),
    )
    .await;
    let recipients: Vec<String> = (0..40).map(|i| format!("person{i}@example.com")).collect();
    let long = pending(
        s,
        &key,
        json!({
            "action": "newsletter.send",
            "scope": {
                "allowed_recipients": recipients,
                "max_attachment_size": 10_485_760,
                "subject_pattern": "^(Invoice|Reminder) [0-9]{4}-[0-9]+$",
                "template": "quarterly-".repeat(30),
            },
            "context": {"reason": "A very long reason. ".repeat(40), "ticket": "OPS-1"},
        }),
    )
    .await;
    // Exact details its own scope refuses, behind 3,000 characters of agent text in the
    // sentence: the warning must still be on the first screen.
    let broken = pending(
        s,
        &key,
        json!({
            "action": "payment.transfer",
            "scope": {"max_amount": 100, "memo": "pay the supplier ".repeat(176)},
            "actionDetails": {"amount": 500, "creditor": {"iban": "DE89370400440532013000"}},
        }),
    )
    .await;
    vec![
        ("short", short),
        ("bank", bank),
        ("long", long),
        ("broken", broken),
    ]
}

/// On each of the four requests: Approve and Deny inside the first viewport, any warnings too, their text at
/// least 4.5:1 on its background, every control uniquely named, Approve within three Tab stops
/// of the summary. Screenshots `decide-<tag>-<request>.png`.
async fn decision_on_the_first_screen(screen: Screen, tag: &str) {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser_at(screen).await else {
        return;
    };
    let c = &b.client;
    let s = TestServer::start().await;
    let requests = four_requests(&s).await;
    log_in(c, &s).await;
    for (name, id) in &requests {
        c.goto(&s.url(&format!("/requests/{id}"))).await.unwrap();
        wait_for_text(c, "#summary", "treasury-assistant wants to").await;
        let m = c
            .execute(MEASURE, vec![json!(["approve", "deny", "warnings"])])
            .await
            .unwrap();
        eprintln!("measured {tag} {name}: {m}");
        // Our warnings, when there are any, sit on the first screen above the decision bar.
        assert_eq!(
            m["warnings"].is_null(),
            *name != "broken",
            "{tag} {name}: {m}"
        );
        if !m["warnings"].is_null() {
            let (w, bar) = (&m["warnings"], m["approve"]["top"].as_f64().unwrap());
            assert!(
                w["top"].as_f64().unwrap() >= 0.0 && w["bottom"].as_f64().unwrap() <= bar,
                "{tag} {name}: the warnings are not on the first screen: {m}"
            );
            // So is where the exactly bound transfer goes, in the sentence.
            let iban = c
                .execute(
                    "const l = [...document.querySelectorAll('#summary .line')]
                       .find(e => e.textContent.includes('creditor.iban = DE89370400440532013000'));
                     return l ? l.getBoundingClientRect().bottom : null;",
                    vec![],
                )
                .await
                .unwrap();
            assert!(
                iban.as_f64().is_some_and(|b| b <= bar),
                "{tag} {name}: the exact IBAN is not on the first screen: {iban}"
            );
        }
        assert_eq!(m["w"], json!(screen.width), "{tag}: viewport");
        assert_eq!(m["h"], json!(screen.height), "{tag}: viewport");
        assert_eq!(m["dark"], json!(screen.dark), "{tag}: color scheme");
        for button in ["approve", "deny"] {
            let r = &m[button];
            let (h, w) = (f64::from(screen.height), f64::from(screen.width));
            assert!(
                r["top"].as_f64().unwrap() >= 0.0
                    && r["bottom"].as_f64().unwrap() <= h
                    && r["left"].as_f64().unwrap() >= 0.0
                    && r["right"].as_f64().unwrap() <= w,
                "{tag} {name}: #{button} is not in the first viewport: {r}"
            );
            assert!(
                r["contrast"].as_f64().unwrap() >= 4.5,
                "{tag} {name}: #{button} contrast {r}"
            );
        }
        let v = c.execute(NAMES_AND_TABS, vec![]).await.unwrap();
        let names: Vec<&str> = v[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            assert!(
                !n.is_empty(),
                "{tag} {name}: a control without a name: {names:?}"
            );
            assert!(seen.insert(*n), "{tag} {name}: two controls named {n:?}");
        }
        let tabs = v[1].as_i64().unwrap();
        assert!(
            (1..=3).contains(&tabs),
            "{tag} {name}: Approve is {tabs} Tab stops after the summary: {}",
            v[2]
        );
        if screen.phone {
            assert_phone_friendly(c, &format!("{tag} {name}")).await;
        }
        screenshot(c, &format!("decide-{tag}-{name}.png")).await;
    }
    // The other pages: every control named, once; the current page marked; a skip link.
    for (path, current) in [
        ("/", "Pending"),
        ("/history", "History"),
        ("/agents", "Agents"),
        ("/audit", "Audit"),
        ("/policy", "Policy"),
        ("/sessions", "Sessions"),
    ] {
        c.goto(&s.url(path)).await.unwrap();
        wait_for_text(c, "nav", current).await;
        let v = c
            .execute(
                &format!(
                    "{NAMES_AND_CONTROLS}
                     const cur = [...document.querySelectorAll('nav a[aria-current=page]')].map(a => a.textContent);
                     const skip = document.querySelector('a.skip');
                     return [names, cur, skip && skip.getAttribute('href'), !!document.getElementById('main')];"
                ),
                vec![],
            )
            .await
            .unwrap();
        let names: Vec<&str> = v[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            assert!(
                !n.is_empty(),
                "{tag} {path}: a control without a name: {names:?}"
            );
            assert!(seen.insert(*n), "{tag} {path}: two controls named {n:?}");
        }
        assert_eq!(v[1], json!([current]), "{tag} {path}: aria-current");
        assert_eq!(v[2], json!("#main"), "{tag} {path}: skip link");
        assert_eq!(v[3], json!(true));
        if path == "/" {
            screenshot(c, &format!("pending-{tag}.png")).await;
        }
    }
    c.clone().close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
async fn web_browser_decision_on_the_first_screen_of_a_phone() {
    decision_on_the_first_screen(PHONE, "phone").await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
async fn web_browser_decision_on_the_first_screen_of_a_phone_in_dark_mode() {
    decision_on_the_first_screen(
        Screen {
            dark: true,
            ..PHONE
        },
        "phone-dark",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
async fn web_browser_decision_on_the_first_screen_of_a_desktop() {
    decision_on_the_first_screen(DESKTOP, "desktop").await;
}

/// Whether the page is still the one loaded when the marker was set.
async fn not_reloaded(c: &Client) -> bool {
    c.execute("return window.stillHere === true;", vec![])
        .await
        .unwrap()
        == json!(true)
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
async fn web_browser_pages_stay_current_without_a_reload() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let s = TestServer::start().await;
    let key = s.agent("billing-bot").await;
    let paid = pending(
        &s,
        &key,
        json!({"action": "payment.send", "scope": {"max_amount": 100, "currency": "EUR"}, "ttl": 600}),
    )
    .await;
    log_in(c, &s).await;

    // Decided through the admin API: the open page says so within 2 s, without a reload.
    c.goto(&s.url(&format!("/requests/{paid}"))).await.unwrap();
    wait_for_text(c, "#status", "left").await;
    // The countdown runs in the page.
    let first = c
        .find(Locator::Css("#time-left"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let later = c
        .find(Locator::Css("#time-left"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(first, later, "the countdown does not move");
    c.execute("window.stillHere = true;", vec![]).await.unwrap();
    let started = Instant::now();
    let (status, body) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{paid}/approve"),
            json!({"scope": {"max_amount": 40}, "note": "checked the invoice"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    wait_for_text_within(c, "#outcome", "Approved by", Duration::from_secs(2)).await;
    eprintln!(
        "measured: page flipped {:?} after the admin API decision",
        started.elapsed()
    );
    wait_for_text(c, "#outcome", "max_amount 100 → 40").await;
    wait_for_text(c, "#outcome", "checked the invoice").await;
    assert!(not_reloaded(c).await, "the page reloaded");
    assert!(
        c.find_all(Locator::Css("#approve, #deny"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        c.find(Locator::Css("#revoke")).await.is_ok(),
        "revoke is offered"
    );
    screenshot(c, "live-approved.png").await;

    // Expiry flips the page to expired.
    let lapsing = pending(&s, &key, json!({"action": "db.migrate", "ttl": 30})).await;
    c.goto(&s.url(&format!("/requests/{lapsing}")))
        .await
        .unwrap();
    wait_for_text(c, "#status", "left").await;
    c.execute("window.stillHere = true;", vec![]).await.unwrap();
    s.clock.advance(Duration::from_secs(301));
    s.handle.as_ref().unwrap().service.sweep().await.unwrap();
    wait_for_text_within(c, "#status", "expired", Duration::from_secs(2)).await;
    wait_for_text(c, "#outcome", "nobody decided").await;
    assert!(not_reloaded(c).await, "the page reloaded");
    assert!(
        c.find_all(Locator::Css("#approve, #deny"))
            .await
            .unwrap()
            .is_empty()
    );
    screenshot(c, "live-expired.png").await;

    // The pending list shows a new request, and drops it when decided, without a reload.
    c.goto(&s.url("/")).await.unwrap();
    wait_for_text(c, "h1", "Waiting for you").await;
    c.execute("window.stillHere = true;", vec![]).await.unwrap();
    let fresh = pending(&s, &key, json!({"action": "report.publish"})).await;
    wait_for_text_within(c, "main", "report.publish", Duration::from_secs(2)).await;
    s.post(
        &s.admin,
        &format!("/api/v1/admin/permissions/{fresh}/deny"),
        json!({}),
    )
    .await;
    wait_for_text_within(c, "main", "Nothing is waiting", Duration::from_secs(2)).await;
    assert!(not_reloaded(c).await, "the list reloaded");
    c.clone().close().await.unwrap();
    s.stop().await;
}

/// A double tap on "Approve…" does not answer the second confirmation: where Approve… stood,
/// the question shows Cancel (found by an attacker pass: Yes stood there, and the second tap of
/// a double tap approved a payment unread).
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
async fn web_browser_a_double_tap_does_not_answer_the_confirmation() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let s = TestServer::with_policy(Some(CONFIRM_PAYMENTS)).await;
    let key = s.agent("treasury-assistant").await;
    log_in(c, &s).await;
    let id = pending(
        &s,
        &key,
        json!({"action": "payment.transfer", "scope": {"max_amount": 250, "currency": "EUR"}}),
    )
    .await;
    c.goto(&s.url(&format!("/requests/{id}"))).await.unwrap();
    wait_for_text(c, "#approve", "Approve").await;
    let before = c.execute(MEASURE, vec![json!(["approve"])]).await.unwrap();
    tap(c, "#approve").await;
    wait_for_text(c, "#confirm", "Approve").await;
    let a = &before["approve"];
    let centre = |lo: &str, hi: &str| (a[lo].as_f64().unwrap() + a[hi].as_f64().unwrap()) / 2.0;
    let (x, y) = (centre("left", "right"), centre("top", "bottom"));
    // The second tap, where the finger still is.
    let hit = c
        .execute(
            "const e = document.elementFromPoint(arguments[0], arguments[1]); \
             const b = e && e.closest('a, button'); if (b) b.click(); return b ? b.id : null;",
            vec![json!(x), json!(y)],
        )
        .await
        .unwrap();
    assert_ne!(hit, json!("confirm-yes"), "{before}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status_of(&s, &id).await,
        "pending",
        "the second tap hit {hit}"
    );
    c.clone().close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
async fn web_browser_a_confirm_rule_asks_again_on_the_first_screen() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let s = TestServer::with_policy(Some(CONFIRM_PAYMENTS)).await;
    let key = s.agent("treasury-assistant").await;
    let id = pending(
        &s,
        &key,
        json!({"action": "payment.transfer",
               "scope": {"max_amount": 250, "currency": "EUR",
                         "allowed_recipients": ["DE89370400440532013000"]}}),
    )
    .await;
    log_in(c, &s).await;
    c.goto(&s.url(&format!("/requests/{id}"))).await.unwrap();
    wait_for_text(c, "#approve", "Approve").await;
    tap(c, "#approve").await;
    wait_for_text(
        c,
        "#confirm",
        "Approve treasury-assistant: transfer up to 250 EUR to DE89 3704 0044 0532 0130 00, once?",
    )
    .await;
    let m = c
        .execute(MEASURE, vec![json!(["confirm-yes", "confirm-no"])])
        .await
        .unwrap();
    eprintln!("measured confirm: {m}");
    let yes = &m["confirm-yes"];
    assert!(
        yes["top"].as_f64().unwrap() >= 0.0 && yes["bottom"].as_f64().unwrap() <= 844.0,
        "{m}"
    );
    assert!(yes["contrast"].as_f64().unwrap() >= 4.5, "{m}");
    assert_eq!(status_of(&s, &id).await, "pending");
    assert_phone_friendly(c, "confirmation").await;
    screenshot(c, "confirm.png").await;
    tap(c, "#confirm-yes").await;
    wait_for_text(c, "#outcome", "Approved by alice").await;
    assert_eq!(status_of(&s, &id).await, "approved");
    // An attacker pass: with 20 recipients and more amount bounds the question and its buttons
    // came below the sentence, off the first screen. The question now comes first.
    let people: Vec<String> = (0..20).map(|i| format!("payee{i}@example.com")).collect();
    let long = pending(
        &s,
        &key,
        json!({"action": "payment.transfer", "uses": 3,
               "scope": {"max_amount": 250, "min_amount": -50, "currency": "EUR",
                         "allowed_recipients": people, "fee": {"max_amount": 5},
                         "max_fx_amount": 9, "max_tax_amount": 7}}),
    )
    .await;
    c.goto(&s.url(&format!("/requests/{long}"))).await.unwrap();
    wait_for_text(c, "#approve", "Approve").await;
    tap(c, "#approve").await;
    wait_for_text(c, "#confirm", "payee19@example.com").await;
    let m = c
        .execute(MEASURE, vec![json!(["confirm-yes", "confirm-no"])])
        .await
        .unwrap();
    eprintln!("measured long confirm: {m}");
    for button in ["confirm-yes", "confirm-no"] {
        let b = &m[button];
        assert!(
            b["top"].as_f64().unwrap() >= 0.0 && b["bottom"].as_f64().unwrap() <= 844.0,
            "{button}: {m}"
        );
    }
    assert_eq!(status_of(&s, &long).await, "pending");
    c.clone().close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_browser,
    ignore = "chromium or chromedriver missing: apt-get install chromium chromium-driver"
)]
async fn web_browser_the_second_confirmation_flips_when_decided_elsewhere() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let s = TestServer::with_policy(Some(CONFIRM_PAYMENTS)).await;
    let key = s.agent("treasury-assistant").await;
    let id = pending(
        &s,
        &key,
        json!({"action": "payment.transfer", "scope": {"max_amount": 250, "currency": "EUR"}}),
    )
    .await;
    log_in(c, &s).await;
    c.goto(&s.url(&format!("/requests/{id}"))).await.unwrap();
    wait_for_text(c, "#approve", "Approve").await;
    tap(c, "#approve").await;
    wait_for_text(c, "#confirm", "Approve treasury-assistant").await;
    c.execute("window.stillHere = true;", vec![]).await.unwrap();
    // Denied elsewhere while the second confirmation is on screen: it must not stay offered.
    let (status, body) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{id}/deny"),
            json!({"reason": "not this month"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    wait_for_text_within(c, "#outcome", "Denied by", Duration::from_secs(2)).await;
    assert!(not_reloaded(c).await, "the page reloaded");
    assert!(
        c.find_all(Locator::Css("#confirm-yes, #approve"))
            .await
            .unwrap()
            .is_empty(),
        "Yes, approve is still offered for a denied request"
    );
    c.clone().close().await.unwrap();
    s.stop().await;
}
