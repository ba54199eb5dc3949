//! Login links over plain HTTP: opening one only asks ("Log in as … on this device?"), so a
//! link preview spends nothing; only the page's own post logs in, so another site cannot; a link
//! made for one request opens a session for that request only; HSTS over https; session age.

use std::time::Duration;

use agent_otp::testing::domain::Actor;
use agent_otp::testing::service::login_links;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::json;

use crate::support::TestServer;
use crate::web::{Page, client, cookie_pair, fetch, pending};

/// The confirmation page's form: where it posts, its value, and the login cookie it set.
struct Confirm {
    action: String,
    confirm: String,
    cookie: String,
}

fn attr_after<'a>(body: &'a str, marker: &str) -> &'a str {
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {body}"))
        + marker.len();
    &body[at..at + body[at..].find('"').unwrap()]
}

fn confirm_form(page: &Page) -> Confirm {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    Confirm {
        action: attr_after(&page.body, "<form method=\"post\" action=\"").to_owned(),
        confirm: attr_after(&page.body, "name=\"confirm\" value=\"").to_owned(),
        cookie: cookie_pair(&page.set_cookie("agent_otp_login").expect("a login cookie")),
    }
}

async fn post_confirm(
    http: &reqwest::Client,
    base: &str,
    form: &Confirm,
    cookies: &[&str],
    confirm: Option<&str>,
) -> Page {
    let body = match confirm {
        Some(c) => format!("confirm={c}"),
        None => String::new(),
    };
    let mut req = http
        .post(format!("{base}{}", form.action))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if !cookies.is_empty() {
        req = req.header(header::COOKIE, cookies.join("; "));
    }
    fetch(req).await
}

/// Opens a login link as a browser would: the confirmation page, then its button. `extra` is
/// a cookie the browser already holds (e.g. where to go next). Returns the page after the post.
pub async fn open_link(http: &reqwest::Client, link: &str, extra: Option<&str>) -> Page {
    let mut get = http.get(link);
    if let Some(c) = extra {
        get = get.header(header::COOKIE, c);
    }
    let page = fetch(get).await;
    if page.status != StatusCode::OK {
        return page;
    }
    let form = confirm_form(&page);
    let base = &link[..link.find("/login/").unwrap()];
    let mut cookies = vec![form.cookie.as_str()];
    cookies.extend(extra);
    post_confirm(http, base, &form, &cookies, Some(&form.confirm)).await
}

async fn link_for(s: &TestServer, human: &str) -> String {
    let svc = &s.handle.as_ref().unwrap().service;
    svc.issue_login_url(Actor::Operator, human, None)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn opening_a_login_link_spends_nothing_until_its_button_is_pressed() {
    let s = TestServer::start().await;
    let http = client();
    let link = link_for(&s, "alice").await;

    // A chat app's preview fetches the link (no cookies), and the human opens it twice.
    for _ in 0..3 {
        let page = fetch(http.get(&link)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains("Log in as alice on this device?"),
            "{}",
            page.body
        );
        assert!(page.set_cookie("agent_otp_session").is_none());
        let login = page.set_cookie("agent_otp_login").unwrap();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/login"] {
            assert!(login.contains(attr), "{login}");
        }
    }
    // Still unspent: the page's button logs in, once.
    let done = open_link(&http, &link, None).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.set_cookie("agent_otp_session").is_some());
    assert!(
        done.set_cookie("agent_otp_login")
            .unwrap()
            .contains("Max-Age=0")
    );
    let spent = fetch(http.get(&link)).await;
    assert_eq!(spent.status, StatusCode::FORBIDDEN);
    assert!(spent.body.contains("does not work"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_site_cannot_log_a_visitor_in_with_its_own_link() {
    let s = TestServer::start().await;
    let http = client();
    let base = s.url("");
    // The attacker holds a live link and opens its page themselves to learn the form.
    let planted = link_for(&s, "mallory").await;
    let attackers = confirm_form(&fetch(http.get(&planted)).await);

    // The victim's browser, made to post by another site: no login cookie of this page
    // (SameSite=Strict), perhaps the attacker's value, perhaps none.
    for (cookies, confirm) in [
        (vec![], None),
        (vec![], Some(attackers.confirm.as_str())),
        (vec![attackers.cookie.as_str()], None),
        (
            vec![attackers.cookie.as_str()],
            Some("0".repeat(64).as_str()),
        ),
    ] {
        let page = post_confirm(&http, &base, &attackers, &cookies, confirm).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
        assert!(page.set_cookie("agent_otp_session").is_none());
        assert!(page.body.contains("was not confirmed"), "{}", page.body);
    }
    // The victim's own login page value does not fit the attacker's link either.
    let victims = confirm_form(&fetch(http.get(&link_for(&s, "alice").await)).await);
    let page = post_confirm(
        &http,
        &base,
        &attackers,
        &[victims.cookie.as_str()],
        Some(&victims.confirm),
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // A browser that says the post is cross-site is refused even with the right values.
    let cross = http
        .post(format!("{base}{}", attackers.action))
        .header(header::COOKIE, &attackers.cookie)
        .header("Sec-Fetch-Site", "cross-site")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("confirm={}", attackers.confirm));
    assert_eq!(fetch(cross).await.status, StatusCode::FORBIDDEN);
    // None of that spent the link: its own page still logs in.
    let done = open_link(&http, &planted, None).await;
    assert!(
        done.set_cookie("agent_otp_session").is_some(),
        "{}",
        done.body
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_for_one_request_opens_a_session_for_that_request_only() {
    let s = TestServer::start().await;
    let key = s.agent("mailer").await;
    let mine = pending(&s, &key, json!({"action": "deploy.prod"})).await;
    let other = pending(&s, &key, json!({"action": "deploy.staging"})).await;
    let svc = &s.handle.as_ref().unwrap().service;
    let expires = s.clock.now().plus_secs(600);
    let link = svc
        .issue_request_link("tg-777", &mine, expires)
        .await
        .unwrap();
    let link = login_links::url(&s.url(""), &link);
    let http = client();
    let ask = fetch(http.get(&link)).await;
    assert!(
        ask.body.contains(&mine) && ask.body.contains("nothing else"),
        "{}",
        ask.body
    );
    let done = open_link(&http, &link, None).await;
    assert!(
        done.body.contains(&format!("url=/requests/{mine}\"")),
        "{}",
        done.body
    );
    let cookie = cookie_pair(&done.set_cookie("agent_otp_session").unwrap());
    let get = |path: String| {
        let req = http.get(s.url(&path)).header(header::COOKIE, &cookie);
        fetch(req)
    };
    let page = get(format!("/requests/{mine}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = attr_after(&page.body, "name=\"csrf\" value=\"").to_owned();
    for path in [
        format!("/requests/{other}"),
        "/".into(),
        "/requests".into(),
        "/history".into(),
        "/agents".into(),
        "/audit".into(),
        "/policy".into(),
        "/sessions".into(),
    ] {
        let page = get(path.clone()).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.body);
        assert!(page.body.contains("for request"), "{path}");
    }
    let post = |path: String, body: String| {
        let req = http
            .post(s.url(&path))
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        fetch(req)
    };
    let refused = post(format!("/requests/{other}/approve"), format!("csrf={csrf}")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let made = post("/agents".into(), format!("csrf={csrf}&name=sneaky")).await;
    assert_eq!(made.status, StatusCode::FORBIDDEN);
    // The admin API refuses the session outright.
    for path in ["/api/v1/admin/permissions", "/api/v1/admin/agents"] {
        let answer = http
            .get(s.url(path))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Its own request it can decide.
    let decided = post(format!("/requests/{mine}/deny"), format!("csrf={csrf}")).await;
    assert_eq!(decided.status, StatusCode::SEE_OTHER, "{}", decided.body);
    let s = &s;
    let status = |id: String| {
        let path = format!("/api/v1/admin/permissions/{id}");
        async move { s.get(&s.admin, &path).await.1["data"]["status"].clone() }
    };
    assert_eq!(status(mine.clone()).await, "denied");
    assert_eq!(status(other.clone()).await, "pending");
    let agents = s.get(&s.admin, "/api/v1/admin/agents").await.1;
    assert_eq!(agents["data"].as_array().unwrap().len(), 1, "{agents}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_last_their_maximum_age_and_https_gets_hsts() {
    let s = TestServer::with_config(Some(crate::support::TEST_POLICY), |c| {
        c.limits.session_max_age = Duration::from_secs(3600);
        c.public_url = Some("https://otp.example.com".into());
    })
    .await;
    let http = client();
    let link = link_for(&s, "alice")
        .await
        .replace("https://otp.example.com", &s.url(""));
    let done = open_link(&http, &link, None).await;
    let set = done.set_cookie("agent_otp_session").unwrap();
    assert!(
        set.contains("Max-Age=3600") && set.contains("Secure"),
        "{set}"
    );
    assert_eq!(
        done.headers
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap()),
        Some(agent_otp::testing::web::HSTS)
    );
    let cookie = cookie_pair(&set);
    let home = || fetch(http.get(s.url("/")).header(header::COOKIE, &cookie));
    assert_eq!(home().await.status, StatusCode::OK);
    s.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        home().await.status,
        StatusCode::SEE_OTHER,
        "ended at its max age"
    );
    s.stop().await;

    // Plain http: no HSTS (it would be ignored, and would break a later switch to http).
    let s = TestServer::start().await;
    let page = fetch(client().get(s.url("/login"))).await;
    assert!(page.headers.get("strict-transport-security").is_none());
    s.stop().await;
}
