//! The web pages over plain HTTP (no browser): sessions from login links, redirects to login,
//! agent keys kept out, CSRF, narrowing only, escaping of agent text, and the security headers.

use std::time::Duration;

use agent_otp::testing::domain::Actor;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};

use crate::support::{TestServer, run_cli_on};

/// A browser-like client: no automatic redirects, cookies handled by hand.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A page fetched: status, headers, body.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Set-Cookie` header for `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

pub async fn fetch(req: reqwest::RequestBuilder) -> Page {
    let resp = req.send().await.unwrap();
    Page {
        status: resp.status(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

/// A logged-in browser: its session cookie and CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    base: String,
    http: reqwest::Client,
}

impl Session {
    pub async fn get(&self, path: &str) -> Page {
        fetch(
            self.http
                .get(format!("{}{path}", self.base))
                .header(header::COOKIE, &self.cookie),
        )
        .await
    }

    /// Posts a form; `csrf` is added unless `pairs` already has one.
    pub async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Page {
        let mut form = form_urlencoded::Serializer::new(String::new());
        if !pairs.iter().any(|(k, _)| *k == "csrf") {
            form.append_pair("csrf", &self.csrf);
        }
        for (k, v) in pairs {
            form.append_pair(k, v);
        }
        self.post_raw(path, form.finish()).await
    }

    pub async fn post_raw(&self, path: &str, body: String) -> Page {
        fetch(
            self.http
                .post(format!("{}{path}", self.base))
                .header(header::COOKIE, &self.cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }
}

/// The value of the session cookie in a `Set-Cookie` header, as a `Cookie` header.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The first CSRF token in a page.
fn csrf_in(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("page has a CSRF field")
        + 19;
    body[at..at + 64].to_owned()
}

/// Logs `human` in through a fresh login link, as a browser would.
pub async fn login(s: &TestServer, human: &str) -> Session {
    let svc = &s.handle.as_ref().unwrap().service;
    let link = svc
        .issue_login_url(Actor::Operator, human, None)
        .await
        .unwrap();
    let http = client();
    let page = crate::login::open_link(&http, &link, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let cookie = cookie_pair(&page.set_cookie("agent_otp_session").unwrap());
    let mut session = Session {
        cookie,
        csrf: String::new(),
        base: s.url(""),
        http,
    };
    let home = session.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    session.csrf = csrf_in(&home.body);
    session
}

/// A pending request (the test policy requires approval for unknown actions); returns its id.
pub async fn pending(s: &TestServer, key: &str, body: Value) -> String {
    let (status, data) = s.request(key, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{data}");
    data["id"].as_str().unwrap().to_owned()
}

async fn status_of(s: &TestServer, id: &str) -> String {
    let (_, v) = s
        .get(&s.admin, &format!("/api/v1/admin/permissions/{id}"))
        .await;
    v["data"]["status"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn web_pages_need_a_session_and_agent_keys_open_none() {
    let s = TestServer::start().await;
    let key = s.agent("pager").await;
    let id = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    let http = client();
    let paths = [
        "/".to_owned(),
        format!("/requests/{id}"),
        "/history".to_owned(),
        "/agents".to_owned(),
        "/audit".to_owned(),
        "/policy".to_owned(),
        "/sessions".to_owned(),
    ];
    for path in &paths {
        for auth in ["", key.as_str(), s.admin.as_str()] {
            let mut req = http.get(s.url(path));
            if !auth.is_empty() {
                req = req.bearer_auth(auth);
            }
            let page = fetch(req).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{path} with {auth:.4}");
            let want: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
            assert_eq!(page.location(), format!("/login?next={want}"));
            assert!(!page.body.contains("deploy.prod"));
        }
    }
    // The login page it leads to says how to get in and remembers where to come back to.
    let login_page = fetch(http.get(s.url(&format!("/login?next=/requests/{id}")))).await;
    assert_eq!(login_page.status, StatusCode::OK);
    assert!(
        login_page.body.contains("agent-otp login"),
        "{}",
        login_page.body
    );
    assert!(login_page.set_cookie("agent_otp_next").is_some());

    // A session opens the admin API too, but an agent key never does, cookie or not.
    let web = login(&s, "alice").await;
    let (status, _) = s.get(&key, "/api/v1/admin/permissions").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let as_agent = fetch(
        http.get(s.url("/api/v1/admin/permissions"))
            .bearer_auth(&key)
            .header(header::COOKIE, &web.cookie),
    )
    .await;
    assert_eq!(as_agent.status, StatusCode::FORBIDDEN, "{}", as_agent.body);
    let listed = fetch(
        http.get(s.url("/api/v1/admin/permissions?status=pending"))
            .header(header::COOKIE, &web.cookie),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    // With a cookie, a state-changing API call needs the CSRF header.
    let approve = s.url(&format!("/api/v1/admin/permissions/{id}/deny"));
    let no_csrf = fetch(http.post(&approve).header(header::COOKIE, &web.cookie)).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{}", no_csrf.body);
    assert_eq!(status_of(&s, &id).await, "pending");
    let with_csrf = fetch(
        http.post(&approve)
            .header(header::COOKIE, &web.cookie)
            .header("X-CSRF-Token", &web.csrf),
    )
    .await;
    assert_eq!(with_csrf.status, StatusCode::OK, "{}", with_csrf.body);
    assert_eq!(status_of(&s, &id).await, "denied");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_security_headers_and_html_404() {
    let s = TestServer::start().await;
    let web = login(&s, "alice").await;
    let http = client();
    for page in [
        web.get("/").await,
        web.get("/no/such/page").await,
        fetch(http.get(s.url("/login"))).await,
        fetch(http.get(s.url("/api/v1/nope"))).await,
    ] {
        let h = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let csp = h("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(h("x-frame-options"), "DENY");
        assert_eq!(h("referrer-policy"), "no-referrer");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("cache-control"), "no-store");
        assert_eq!(page.headers.get_all("x-frame-options").iter().count(), 1);
    }
    let missing = web.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let api_missing = fetch(http.get(s.url("/api/v1/nope"))).await;
    assert!(
        api_missing.body.contains("\"NOT_FOUND\""),
        "{}",
        api_missing.body
    );
    let css = fetch(http.get(s.url("/static/style.css"))).await;
    assert_eq!(css.status, StatusCode::OK);
    // The stylesheet keeps its own caching, and gets the other headers like every answer.
    assert_eq!(css.headers[header::CACHE_CONTROL], "public, max-age=3600");
    assert_eq!(css.headers.get_all(header::CACHE_CONTROL).iter().count(), 1);
    assert_eq!(css.headers["x-content-type-options"], "nosniff");
    assert!(css.body.contains("min-height: 44px"));
    // No inline script anywhere: the policy forbids it; the one script is a file of this site.
    assert!(only_the_live_script(&web.get("/").await.body));
    let js = fetch(http.get(s.url("/static/live.js"))).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("EventSource"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_login_link_works_once_and_not_after_ten_minutes() {
    let s = TestServer::start().await;
    let svc = &s.handle.as_ref().unwrap().service;
    let http = client();
    let link = svc
        .issue_login_url(Actor::Operator, "alice", None)
        .await
        .unwrap();
    let first = crate::login::open_link(&http, &link, None).await;
    assert_eq!(first.status, StatusCode::OK);
    let set = first.set_cookie("agent_otp_session").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    assert!(
        first
            .body
            .contains("http-equiv=\"refresh\" content=\"0; url=/\""),
        "{}",
        first.body
    );

    // Used: a stranger gets nothing; the logged-in browser is just sent on.
    let again = fetch(http.get(&link)).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(again.set_cookie("agent_otp_session").is_none());
    let cookie = cookie_pair(&set);
    let relogin = fetch(http.get(&link).header(header::COOKIE, &cookie)).await;
    assert_eq!(relogin.status, StatusCode::SEE_OTHER);
    assert_eq!(relogin.location(), "/");

    // A fresh link is dead after 10 minutes.
    let late = svc
        .issue_login_url(Actor::Operator, "alice", None)
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(601));
    let expired = fetch(http.get(&late)).await;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    assert!(expired.body.contains("does not work"));
    let wrong = fetch(http.get(s.url("/login/ll_nope"))).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    // Opening a request page first, then a link without its own page, leads back to the request.
    let key = s.agent("mailer").await;
    let id = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    let bounce = fetch(http.get(s.url(&format!("/login?next=/requests/{id}")))).await;
    let next = cookie_pair(&bounce.set_cookie("agent_otp_next").unwrap());
    let link = svc
        .issue_login_url(Actor::Operator, "bob", None)
        .await
        .unwrap();
    let back = crate::login::open_link(&http, &link, Some(&next)).await;
    assert!(
        back.body.contains(&format!("url=/requests/{id}\"")),
        "{}",
        back.body
    );
    // Tabs or a second slash never make it an off-site redirect.
    let sneaky = fetch(http.get(s.url("/login?next=/%09/evil.example"))).await;
    assert!(sneaky.set_cookie("agent_otp_next").is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_sessions_end_on_logout_and_on_revocation() {
    let s = TestServer::start().await;
    let phone = login(&s, "alice").await;
    let laptop = login(&s, "alice").await;
    let list = phone.get("/sessions").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.matches("action=\"/sessions/").count(), 2);
    assert!(list.body.contains("(this browser)"));
    let laptop_id = {
        let mine = laptop.get("/sessions").await.body;
        let at = mine.find("(this browser)").unwrap();
        let form = mine[at..].find("action=\"/sessions/").unwrap() + at + 18;
        mine[form..form + 36].to_owned()
    };
    let revoked = phone
        .post(&format!("/sessions/{laptop_id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(laptop.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/").await.status, StatusCode::OK);

    let out = phone.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.set_cookie("agent_otp_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(phone.get("/").await.status, StatusCode::SEE_OTHER);

    // Sessions expire after 7 days.
    let later = login(&s, "alice").await;
    s.clock.advance(Duration::from_secs(7 * 24 * 3600));
    assert_eq!(later.get("/").await.status, StatusCode::SEE_OTHER);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    let key = s.agent("mailer").await;
    let id = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    let alice = login(&s, "alice").await;
    let bob = login(&s, "bob").await;
    for path in [
        format!("/requests/{id}/approve"),
        format!("/requests/{id}/deny"),
    ] {
        let none = alice.post_raw(&path, "note=hi".to_owned()).await;
        assert_eq!(none.status, StatusCode::FORBIDDEN, "{path}");
        let wrong = alice.post(&path, &[("csrf", &"0".repeat(64))]).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{path}");
        let others = alice.post(&path, &[("csrf", &bob.csrf)]).await;
        assert_eq!(others.status, StatusCode::FORBIDDEN, "{path}");
        assert!(others.body.contains("Form expired"));
    }
    assert_eq!(status_of(&s, &id).await, "pending");
    let agent = alice
        .post("/agents", &[("csrf", ""), ("name", "sneaky")])
        .await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN);
    assert!(!alice.get("/agents").await.body.contains("sneaky"));
    let out = alice.post("/logout", &[("csrf", "x")]).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert_eq!(alice.get("/").await.status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_approval_narrows_and_refuses_widening() {
    let s = TestServer::start().await;
    let key = s.agent("payer").await;
    let scope = json!({
        "max_amount": 100,
        "allowed_recipients": ["a@example.com", "b@example.com", "c@example.com"],
        "notify": true,
        "currency": "EUR",
    });
    let id = pending(
        &s,
        &key,
        json!({"action": "payment.send", "scope": scope, "ttl": 600, "uses": 3}),
    )
    .await;
    let web = login(&s, "alice").await;
    let page = web.get(&format!("/requests/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for field in ["num:max_amount", "list:allowed_recipients", "flag:notify"] {
        assert!(page.body.contains(field), "{field}");
    }
    assert!(page.body.contains("currency") && page.body.contains("EUR"));

    let approve = format!("/requests/{id}/approve");
    for (widening, why) in [
        (vec![("num:max_amount", "1000")], "would widen"),
        (
            vec![("num:max_amount", "99.999999999999999999")],
            "would be read as 100.0",
        ),
        (vec![("ttl", "7200")], "ttl"),
        (vec![("uses", "4")], "uses"),
        (
            vec![
                ("has:allowed_recipients", "1"),
                ("list:allowed_recipients", "7"),
            ],
            "not in the list",
        ),
    ] {
        let refused = web.post(&approve, &widening).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{widening:?}");
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
        assert!(
            refused.body.contains("id=\"approve\""),
            "the form is still offered"
        );
        assert_eq!(status_of(&s, &id).await, "pending");
    }
    // A refused widening keeps the changes form open with the edits, and marks the field.
    let refused = web
        .post(
            &approve,
            &[
                ("num:max_amount", "1000"),
                ("has:allowed_recipients", "1"),
                ("list:allowed_recipients", "1"),
                ("ttl_min", "1"),
            ],
        )
        .await;
    let b = &refused.body;
    assert!(
        b.contains(r#"<details class="changes" id="changes" open>"#),
        "{b}"
    );
    assert!(b.contains("Your changes are kept below."), "{b}");
    assert!(
        b.contains(r#"max="100" value="1000" enterkeyhint="done" aria-invalid="true""#),
        "{b}"
    );
    assert!(
        b.contains(r#"value="0">"#) && b.contains(r#"value="1" checked>"#),
        "{b}"
    );
    assert!(
        b.contains(r#"name="ttl_min" inputmode="decimal" step="any" min="0.5" max="10" value="1""#),
        "{b}"
    );

    let ok = web
        .post(
            &approve,
            &[
                ("ttl", "120"),
                ("uses", "1"),
                ("num:max_amount", "40"),
                ("has:allowed_recipients", "1"),
                ("list:allowed_recipients", "1"),
                ("has:notify", "1"),
                ("note", "only bob, only 40"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location(), format!("/requests/{id}"));
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    let data = &v["data"];
    assert_eq!(data["status"], "approved");
    assert_eq!(data["decidedBy"], "human:alice");
    assert!(data["token"].as_str().unwrap().starts_with("otp_"));
    assert_eq!(data["usesRemaining"], 1);
    assert_eq!(data["ttl"], 120);
    assert_eq!(
        data["scope"],
        json!({"max_amount": 40, "allowed_recipients": ["b@example.com"], "notify": false, "currency": "EUR"})
    );
    // The page now shows the outcome and offers no buttons; a second decision changes nothing.
    let after = web.get(&format!("/requests/{id}")).await;
    assert!(after.body.contains("id=\"outcome\"") && !after.body.contains("id=\"approve\""));
    assert!(after.body.contains("only bob, only 40"));
    let late = web.post(&format!("/requests/{id}/deny"), &[]).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(late.body.contains("already approved"), "{}", late.body);
    assert_eq!(status_of(&s, &id).await, "approved");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_deny_wakes_the_agent_and_expired_requests_offer_no_buttons() {
    let s = TestServer::start().await;
    let key = s.agent("deployer").await;
    let id = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    let web = login(&s, "alice").await;
    let poll = s.long_poll(&key, &id).await;
    let denied = web
        .post(
            &format!("/requests/{id}/deny"),
            &[("reason", "not on a Friday")],
        )
        .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    let (v, _) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v["data"]["status"], "denied");
    assert_eq!(v["data"]["reason"], "not on a Friday");
    assert!(v["data"].get("token").is_none());

    let lapsed = pending(&s, &key, json!({"action": "deploy.prod", "ttl": 30})).await;
    s.clock.advance(Duration::from_secs(301));
    let page = web.get(&format!("/requests/{lapsed}")).await;
    assert!(page.body.contains("status-expired"), "{}", page.body);
    assert!(!page.body.contains("id=\"approve\"") && !page.body.contains("id=\"deny\""));
    let tried = web.post(&format!("/requests/{lapsed}/approve"), &[]).await;
    assert_eq!(tried.status, StatusCode::CONFLICT);
    assert!(!web.get("/").await.body.contains(&lapsed));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_agent_supplied_text_is_escaped() {
    let s = TestServer::start().await;
    let key = s.agent("mallory").await;
    let evil = "<script>alert(1)</script>";
    let id = pending(
        &s,
        &key,
        json!({
            "action": "x.evil",
            "resource": format!("\"><img src=x onerror=alert(2)>{evil}"),
            "scope": { "recipients": [evil], "max_amount": 3, "subject": "<b>hi</b>" },
            "context": { "reason": evil, "other": evil },
        }),
    )
    .await;
    let web = login(&s, "alice").await;
    for path in [
        "/".to_owned(),
        format!("/requests/{id}"),
        "/history".to_owned(),
        "/audit".to_owned(),
    ] {
        let page = web.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(only_the_live_script(&page.body), "{path}: {}", page.body);
        assert!(!page.body.contains("<img"), "{path}");
        assert!(!page.body.contains("<b>"), "{path}");
        // Shown, as text (askama writes `<` as `&#60;`).
        assert!(
            page.body.contains("&#60;script&#62;alert(1)"),
            "{path}: {}",
            page.body
        );
    }
    s.stop().await;
}

/// An attacker pass: a resource and recipient `ceo@pаypal.com` with a Cyrillic `а` showed as
/// `ceo@paypal.com` would, for a token bound to another domain. Every place the page shows
/// them marks the look-alike; the raw letter appears nowhere.
#[tokio::test(flavor = "multi_thread")]
async fn web_marks_look_alikes_of_latin_letters_in_an_address() {
    let s = TestServer::start().await;
    let key = s.agent("mailer").await;
    let id = pending(
        &s,
        &key,
        json!({"action": "mail.send_external", "resource": "email:ceo@p\u{0430}ypal.com",
               "scope": {"allowed_recipients": ["ceo@p\u{0430}ypal.com"]}}),
    )
    .await;
    let web = login(&s, "alice").await;
    for page in [
        web.get(&format!("/requests/{id}")).await.body,
        web.get("/").await.body,
    ] {
        assert!(page.contains("ceo@p[U+0430]ypal.com"), "{page}");
        assert!(!page.contains('\u{0430}'), "{page}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_request_page_shows_enforced_apart_from_passed_on_with_markers() {
    let s = TestServer::start().await;
    let key = s.agent("payer").await;
    let people: Vec<String> = (0..60).map(|i| format!("p{i}@example.com")).collect();
    let id = pending(
        &s,
        &key,
        json!({
            "action": "payment.send",
            "resource": "invoice-7",
            "scope": {"max_amount": 100, "allowed_recipients": people, "currency": "EUR",
                      "limits": {"max_per_day": 3}},
            "context": {"reason": "pay\nnow \u{202E}gnp.exe", "ref": "a\u{200B}b",
                        "payee": format!("DE89{}(verified payee)", "\u{2003}".repeat(60))},
            "actionDetails": {"recipient": "p1@example.com", "amount": 40},
        }),
    )
    .await;
    let web = login(&s, "alice").await;
    let page = web.get(&format!("/requests/{id}")).await;
    let body = &page.body;
    assert_eq!(page.status, StatusCode::OK);
    let section = |id: &str| {
        let start = body
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}: {body}"));
        let end = start + body[start..].find("</dl>").unwrap();
        body[start..end].to_owned()
    };
    let enforced = section("enforced");
    let passed = section("passed-on");
    assert!(
        enforced.contains("<bdi>max_amount</bdi> <small>at most</small>"),
        "{enforced}"
    );
    assert!(enforced.contains("<bdi>allowed_recipients</bdi> <small>only these</small> <small class=\"n\">60 items</small>"), "{enforced}");
    for p in &people {
        assert!(
            enforced.contains(&format!("<li><bdi>{p}</bdi></li>")),
            "{p}"
        );
    }
    assert!(!enforced.contains("currency"), "{enforced}");
    assert!(
        passed.contains("<bdi>currency</bdi>") && passed.contains("<bdi>EUR</bdi>"),
        "{passed}"
    );
    // A convention key inside an object is enforced against the same object of the details,
    // so it is shown as enforced, with its path.
    assert!(
        enforced.contains("<bdi>limits.max_per_day</bdi> <small>at most</small>"),
        "{enforced}"
    );
    assert!(!passed.contains("max_per_day"), "{passed}");
    assert!(body.contains("Passed on to the service (not checked here)"));
    let exact = section("exact-details");
    assert!(
        exact.contains("<bdi>recipient</bdi></dt>\n<dd><bdi>p1@example.com</bdi></dd>")
            && exact.contains("<bdi>amount</bdi></dt>\n<dd><bdi>40</bdi></dd>"),
        "{exact}"
    );
    // Hidden characters as markers, in isolated text.
    assert!(
        body.contains("<bdi>pay[U+000A]now [U+202E]gnp.exe</bdi>"),
        "{body}"
    );
    assert!(
        section("context").contains("<bdi>a[U+200B]b</bdi>"),
        "{body}"
    );
    // Wide spaces do not collapse on a page: a long run of them is counted, so it cannot push
    // agent text onto a line of its own.
    assert!(
        section("context").contains("<bdi>DE89 [60 spaces] (verified payee)</bdi>"),
        "{body}"
    );
    assert!(!body.contains('\u{202E}') && !body.contains('\u{200B}') && !body.contains('\u{2003}'));
    // Two forms; the deny form has its own reason field; Enter cannot submit either.
    // The note belongs to the approve form and the reason to the deny form (`form=`), though
    // both sit in one "Add a note or a reason" disclosure.
    assert!(body.contains(r#"<input id="note" name="note" form="approve-form""#));
    assert!(body.contains(r#"<input id="reason" name="reason" form="deny-form""#));
    assert!(body.contains(&format!(
        "<form method=\"post\" action=\"/requests/{id}/deny\" id=\"deny-form\">"
    )));
    assert!(
        body.contains(r#"<button type="submit" form="approve-form" class="approve" id="approve">"#)
    );
    assert!(body.contains(r#"<button type="submit" form="deny-form" class="deny" id="deny">"#));
    for form in ["approve-form", "deny-form", "narrow"] {
        let f = &body[body.find(&format!("id=\"{form}\"")).unwrap()..];
        let first_button = &f[f.find("<button").unwrap()..];
        assert!(
            first_button.starts_with("<button type=\"submit\" disabled"),
            "{form}: {f}"
        );
    }
    // The pending list marks them too.
    let list = web.get("/").await.body;
    assert!(
        list.contains("<bdi>pay[U+000A]now [U+202E]gnp.exe</bdi>"),
        "{list}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_agents_page_shows_a_new_key_once_and_revokes() {
    let s = TestServer::start().await;
    let web = login(&s, "alice").await;
    let created = web.post("/agents", &[("name", "new-bot")]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let at = created.body.find("ak_").unwrap();
    let key: String = created.body[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric_or_underscore)
        .collect();
    let (status, _) = s.request(&key, json!({"action": "file.read"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let listed = web.get("/agents").await;
    assert!(listed.body.contains("new-bot") && !listed.body.contains("ak_"));
    let dup = web.post("/agents", &[("name", "new-bot")]).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    let (_, agents) = s.get(&s.admin, "/api/v1/admin/agents").await;
    let agent_id = agents["data"][0]["id"].as_str().unwrap().to_owned();
    // The first tap asks, and says what revoking ends; nothing is revoked yet.
    let asked = web.post(&format!("/agents/{agent_id}/revoke"), &[]).await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(
        asked.body.contains("<strong>Revoke new-bot?</strong>"),
        "{}",
        asked.body
    );
    assert!(
        asked
            .body
            .contains("its 1 live request (pending or approved, with their tokens) ends too"),
        "{}",
        asked.body
    );
    let (status, _) = s
        .post(
            &key,
            "/api/v1/permissions/request",
            json!({"action": "file.read"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the key still works after the question"
    );
    let revoked = web
        .post(&format!("/agents/{agent_id}/revoke"), &[("confirmed", "1")])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let (status, _) = s
        .post(
            &key,
            "/api/v1/permissions/request",
            json!({"action": "file.read"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for page in [
        "/audit",
        "/policy",
        "/history?status=approved",
        "/audit?page=2",
    ] {
        assert_eq!(web.get(page).await.status, StatusCode::OK, "{page}");
    }
    assert!(web.get("/policy").await.body.contains("capped-email"));
    assert!(web.get("/audit").await.body.contains("agent.revoked"));

    // A rejected reload is shown on the policy page, and the old policy stays in force.
    std::fs::write(
        s.dir.path().join("policies.yaml"),
        "policies:\n  - name: typo\n    conditions: {}\n    action: auto_approve\n    scope_template: {}\n",
    )
    .unwrap();
    let mut shown = String::new();
    for _ in 0..100 {
        shown = web.get("/policy").await.body;
        if shown.contains("The last reload failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(shown.contains("The last reload failed"), "{shown}");
    assert!(
        shown.contains("scope_template") && shown.contains("capped-email"),
        "{shown}"
    );
    s.stop().await;
}

trait KeyChar {
    fn is_ascii_alphanumeric_or_underscore(&self) -> bool;
}
impl KeyChar for char {
    fn is_ascii_alphanumeric_or_underscore(&self) -> bool {
        self.is_ascii_alphanumeric() || *self == '_'
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn web_cli_login_prints_a_link_and_first_start_issues_one() {
    let s = TestServer::start().await;
    let data = s.dir.path().join("data");
    // The first start on an empty database issued exactly one link, for admin.
    let links = count(
        &s.db_path(),
        "SELECT count(*) FROM login_links WHERE human = 'admin'",
    );
    assert_eq!(links, 1);

    let login = run_cli_on(&data, &["login", "--name", "carol"]);
    assert!(login.ok, "{}", login.stderr);
    let stdout = login.stdout;
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let link = stdout.trim();
    assert!(
        link.starts_with(&format!("{}/login/ll_", s.url(""))),
        "{link}"
    );
    let page = crate::login::open_link(&client(), link, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.set_cookie("agent_otp_session").is_some());

    let other = run_cli_on(
        &data,
        &[
            "login",
            "--public-url",
            "https://otp.example.com/",
            "--next",
            "/history",
        ],
    );
    let stdout = other.stdout;
    assert!(
        stdout.starts_with("https://otp.example.com/login/ll_"),
        "{stdout}"
    );
    let bad = run_cli_on(&data, &["login", "--next", "https://evil.example"]);
    assert!(!bad.ok);

    // Someone has logged in now: a restart prints no new link.
    s.stop().await;
    let fresh = tempfile::tempdir().unwrap();
    let mut config = agent_otp::config::Config::new(data.clone());
    config.policies = fresh.path().join("none.yaml");
    let again = agent_otp::app::start(config).await.unwrap();
    again.shutdown().await;
    let db = data.join("agent-otp.db");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM login_links WHERE human = 'admin'"
        ),
        1
    );
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    let store = agent_otp::testing::store::Store::open(db).unwrap();
    store
        .read_blocking(|c| {
            c.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map_err(agent_otp::testing::store::StoreError::from)
        })
        .unwrap()
}

/// Whether the only script in `body` is the site's `live.js` (no inline script, no other file).
pub fn only_the_live_script(body: &str) -> bool {
    body.replace(r#"<script src="/static/live.js" defer></script>"#, "")
        .find("<script")
        .is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn web_live_events_name_each_changed_request_and_need_a_session() {
    let s = TestServer::start().await;
    let key = s.agent("billing-bot").await;
    let web = login(&s, "alice").await;
    let http = client();
    let anonymous = fetch(http.get(s.url("/live"))).await;
    assert_eq!(
        anonymous.status,
        StatusCode::SEE_OTHER,
        "no session, no events"
    );
    let mut live = http
        .get(s.url("/live"))
        .header(header::COOKIE, &web.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert!(
        live.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut read = String::new();
    read_until(&mut live, &mut read, "retry: 1000").await;
    let id = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    read_until(
        &mut live,
        &mut read,
        &format!(r#"data: {{"id":"{id}","status":"pending"}}"#),
    )
    .await;
    s.post(
        &s.admin,
        &format!("/api/v1/admin/permissions/{id}/approve"),
        json!({}),
    )
    .await;
    read_until(
        &mut live,
        &mut read,
        &format!(r#"data: {{"id":"{id}","status":"approved"}}"#),
    )
    .await;
    assert!(!read.contains("otp_"), "no token in the events: {read}");
    drop(live);
    s.stop().await;
}

/// Reads an event stream into `read` until it contains `want` (at most 2 s).
async fn read_until(live: &mut reqwest::Response, read: &mut String, want: &str) {
    let got = tokio::time::timeout(Duration::from_secs(2), async {
        while !read.contains(want) {
            let chunk = live.chunk().await.unwrap().expect("the stream goes on");
            read.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(got.is_ok(), "no {want:?} within 2 s in {read:?}");
}

/// A policy whose money rule asks for a second confirmation.
const CONFIRM_POLICY: &str = r#"
policies:
  - name: money
    conditions:
      action: { startsWith: "payment." }
    action: require_approval
    confirm: true
    scopeTemplate:
      allowed_currency: ["EUR"]
  - name: everything-else
    conditions: {}
    action: require_approval
    priority: -10
"#;

#[tokio::test(flavor = "multi_thread")]
async fn web_confirm_rule_asks_a_second_time_and_carries_the_form() {
    let s = TestServer::with_policy(Some(CONFIRM_POLICY)).await;
    let key = s.agent("treasury-assistant").await;
    let id = pending(
        &s,
        &key,
        json!({"action": "payment.transfer",
               "scope": {"max_amount": 250, "allowed_recipients": ["DE89370400440532013000"]}}),
    )
    .await;
    let web = login(&s, "bob").await;
    let page = web.get(&format!("/requests/{id}")).await.body;
    assert!(page.contains("id=\"approve\">Approve…</button>"), "{page}");
    // The first tap asks; nothing is decided yet.
    let asked = web
        .post(
            &format!("/requests/{id}/approve"),
            &[
                ("note", "invoice 114"),
                ("has:allowed_recipients", "1"),
                ("list:allowed_recipients", "0"),
            ],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked.body.contains(
            "Approve <bdi>treasury-assistant: transfer up to 250 EUR to DE89 3704 0044 0532 0130 00, once?</bdi>"
        ),
        "{}",
        asked.body
    );
    assert!(asked.body.contains("id=\"confirm-yes\""));
    assert!(
        asked
            .body
            .contains(r#"<input type="hidden" name="note" value="invoice 114">"#)
    );
    assert!(
        !asked.body.contains("id=\"approve\""),
        "no second Approve while asking"
    );
    assert_eq!(status_of(&s, &id).await, "pending");
    // With an edit, the question names what the token will allow, not what was asked.
    let edited = web
        .post(
            &format!("/requests/{id}/approve"),
            &[("num:max_amount", "100")],
        )
        .await;
    assert!(
        edited.body.contains(
            "Approve <bdi>treasury-assistant: transfer up to 100 EUR to DE89 3704 0044 0532 0130 00, once?</bdi>"
        ),
        "{}",
        edited.body
    );
    // An edit that would widen is refused before any question.
    let wider = web
        .post(
            &format!("/requests/{id}/approve"),
            &[("num:max_amount", "300")],
        )
        .await;
    assert_eq!(wider.status, StatusCode::BAD_REQUEST, "{}", wider.body);
    assert!(!wider.body.contains("id=\"confirm-yes\""), "{}", wider.body);
    assert_eq!(status_of(&s, &id).await, "pending");
    // Yes: approved, with the note carried through.
    let yes = web
        .post(
            &format!("/requests/{id}/approve"),
            &[("confirmed", "1"), ("note", "invoice 114")],
        )
        .await;
    assert_eq!(yes.status, StatusCode::SEE_OTHER, "{}", yes.body);
    let (_, v) = s
        .get(&s.admin, &format!("/api/v1/admin/permissions/{id}"))
        .await;
    assert_eq!(v["data"]["status"], "approved");
    assert_eq!(v["data"]["reason"], "invoice 114");
    assert_eq!(v["data"]["decidedBy"], "human:bob");
    // A rule without `confirm` approves in one tap.
    let other = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    let once = web.post(&format!("/requests/{other}/approve"), &[]).await;
    assert_eq!(once.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&s, &other).await, "approved");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_a_stale_tap_says_what_happened_and_decides_nothing() {
    let s = TestServer::start().await;
    let key = s.agent("deployer").await;
    let id = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    let web = login(&s, "bob").await;
    // Decided elsewhere (the admin API, as alice) while bob's page was open.
    s.post(
        &s.admin,
        &format!("/api/v1/admin/permissions/{id}/approve"),
        json!({"note": "done from the API"}),
    )
    .await;
    for tap in ["approve", "deny"] {
        let late = web
            .post(&format!("/requests/{id}/{tap}"), &[("reason", "no")])
            .await;
        assert_eq!(late.status, StatusCode::CONFLICT, "{tap}");
        assert!(
            late.body.contains(
                "Your tap changed nothing: this request was already approved by alice at"
            ),
            "{tap}: {}",
            late.body
        );
        // The outcome banner, with the name as written and the note.
        assert!(
            late.body.contains("<strong>Approved by alice at"),
            "{}",
            late.body
        );
        assert!(!late.body.contains("human:alice"));
        assert!(late.body.contains("done from the API"));
    }
    let (_, v) = s
        .get(&s.admin, &format!("/api/v1/admin/permissions/{id}"))
        .await;
    assert_eq!(v["data"]["status"], "approved");
    assert_eq!(v["data"]["decidedBy"], "human:alice");
    // An approved token not used yet can be revoked from the page.
    let page = web.get(&format!("/requests/{id}")).await.body;
    assert!(page.contains("id=\"revoke\""), "{page}");
    let revoked = web.post(&format!("/requests/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&s, &id).await, "revoked");
    let page = web.get(&format!("/requests/{id}")).await.body;
    assert!(
        page.contains("<strong>Revoked (decided by alice at"),
        "{page}"
    );
    assert!(!page.contains("id=\"revoke\""));
    let again = web.post(&format!("/requests/{id}/revoke"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .body
            .contains("Your tap changed nothing: this request was already revoked.")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_after_a_decision_the_banner_leads_to_the_next_request() {
    let s = TestServer::start().await;
    let key = s.agent("billing-bot").await;
    let first = pending(
        &s,
        &key,
        json!({"action": "payment.send", "scope": {"max_amount": 100, "currency": "EUR"}}),
    )
    .await;
    let second = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    let web = login(&s, "alice").await;
    let list = web.get("/").await.body;
    assert!(
        list.contains("<span class=\"money\"><bdi>up to 100 EUR</bdi></span>"),
        "{list}"
    );
    assert!(
        list.contains("card soonest"),
        "the soonest to expire is marked"
    );
    let done = web
        .post(
            &format!("/requests/{first}/approve"),
            &[("num:max_amount", "40"), ("note", "half now")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let page = web.get(done.location()).await.body;
    let banner = &page[page.find("id=\"outcome\"").unwrap()..];
    let banner = &banner[..banner.find("</section>").unwrap()];
    assert!(banner.contains("<strong>Approved by alice at"), "{banner}");
    assert!(
        banner.contains("narrowed: <bdi>max_amount 100 → 40</bdi>"),
        "{banner}"
    );
    assert!(banner.contains("Note: <bdi>half now</bdi>"), "{banner}");
    assert!(
        banner.contains(&format!("href=\"/requests/{second}\"")),
        "{banner}"
    );
    assert!(
        page.contains("<bdi class=\"who\">billing-bot</bdi> may <strong>"),
        "as granted: {page}"
    );
    // The banner comes before the request itself.
    assert!(page.find("id=\"outcome\"").unwrap() < page.find("id=\"summary\"").unwrap());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_history_audit_and_policy_read_in_words() {
    let s = TestServer::start().await;
    let key = s.agent("billing-bot").await;
    let denied = pending(&s, &key, json!({"action": "deploy.prod", "ttl": 30})).await;
    let lapsed = pending(&s, &key, json!({"action": "db.migrate", "ttl": 30})).await;
    let web = login(&s, "alice").await;
    web.post(
        &format!("/requests/{denied}/deny"),
        &[("reason", "not on a Friday")],
    )
    .await;
    s.clock.advance(Duration::from_secs(301));
    s.handle.as_ref().unwrap().service.sweep().await.unwrap();

    let history = web.get("/history").await.body;
    let card = |id: &str| {
        let at = history.find(&format!("/requests/{id}\"")).unwrap();
        history[at..at + history[at..].find("</li>").unwrap()].to_owned()
    };
    let d = card(&denied);
    assert!(d.contains("denied 2026-"), "{d}");
    assert!(
        d.contains("by <bdi>alice</bdi>"),
        "who decided, as written: {d}"
    );
    assert!(d.contains("“<bdi>not on a Friday</bdi>”"), "{d}");
    let l = card(&lapsed);
    assert!(
        l.contains("expired 2026-"),
        "expiry time for an expired request: {l}"
    );
    assert!(!l.contains("by <bdi>"), "{l}");

    let audit = web.get("/audit").await.body;
    assert!(
        audit.contains("<span class=\"event\">Denied</span>"),
        "{audit}"
    );
    assert!(audit.contains("<span class=\"event\">Expired without a decision</span>"));
    assert!(audit.contains("by <bdi>alice</bdi>"));
    assert!(audit.contains(&format!(
        "<a href=\"/requests/{denied}\">Open the request</a>"
    )));
    let only = web
        .get(&format!("/audit?request={denied}&event=permission.denied"))
        .await;
    assert_eq!(only.status, StatusCode::OK);
    assert_eq!(
        only.body.matches("<span class=\"event\">").count(),
        1,
        "{}",
        only.body
    );
    assert_eq!(
        web.get("/audit?event=no.such").await.status,
        StatusCode::BAD_REQUEST
    );

    let policy = web.get("/policy").await.body;
    assert!(
        policy.contains("<code><bdi>action starts with shell.</bdi></code>"),
        "{policy}"
    );
    assert!(policy.contains("<strong>denies</strong>"));
    assert!(policy.contains("Every grant is narrowed to:"));
    assert!(
        policy.contains("<bdi>max_recipients</bdi> <small>at most</small>"),
        "{policy}"
    );
    s.stop().await;
}

/// A cap sent with an exponent is shown with every digit in place, in the sentence, the full
/// scope and the narrowing field, and an unchanged field approves the same cap.
#[tokio::test(flavor = "multi_thread")]
async fn web_shows_every_digit_of_a_cap_sent_with_an_exponent() {
    let s = TestServer::start().await;
    let key = s.agent("treasury-assistant").await;
    let id = pending(
        &s,
        &key,
        json!({"action": "deploy.prod",
               "scope": {"max_amount": 1e3, "allowed_currency": ["EUR"], "max_ratio": 1.5e-7}}),
    )
    .await;
    let web = login(&s, "bob").await;
    let page = web.get(&format!("/requests/{id}")).await.body;
    assert!(page.contains("1000 EUR"), "{page}");
    assert!(page.contains("0.00000015"), "{page}");
    assert!(page.contains(r#"value="1000""#), "{page}");
    for exponent in ["1e3", "1000.0", "1.5e-7"] {
        assert!(!page.contains(exponent), "{exponent} on the page: {page}");
    }
    let approved = web
        .post(
            &format!("/requests/{id}/approve"),
            &[
                ("has:max_amount", "1"),
                ("num:max_amount", "1000"),
                ("has:max_ratio", "1"),
                ("num:max_ratio", "0.00000015"),
                ("has:allowed_currency", "1"),
                ("list:allowed_currency", "0"),
            ],
        )
        .await;
    assert!(
        approved.status.is_redirection() || approved.status.is_success(),
        "{}",
        approved.body
    );
    let (_, v) = s
        .get(&s.admin, &format!("/api/v1/admin/permissions/{id}"))
        .await;
    assert_eq!(v["data"]["status"], "approved", "{v}");
    // The same cap, kept as the whole number the approver's field holds.
    assert_eq!(v["data"]["scope"]["max_amount"], json!(1000), "{v}");
    assert_eq!(v["data"]["scope"]["max_ratio"], json!(1.5e-7), "{v}");
    s.stop().await;
}
