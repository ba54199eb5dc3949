//! Telegram approvals against the fake Bot API in `fake_telegram.rs`, with the service's real
//! teloxide client: linking, the approval message, presses by approvers and by strangers,
//! messages that follow decisions from other channels and expiry, and Telegram misbehaving.

use std::time::Duration;

use agent_otp::config::TelegramConfig;
use agent_otp::testing::secret::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_telegram::{Failure, FakeTelegram, Sent, TOKEN};
use crate::support::{Ran, TEST_POLICY, TestServer, eventually, run_cli_on};

const ANN: i64 = 777;
const BEN: i64 = 778;

fn settings(api_url: &str, approvers: &[i64]) -> TelegramConfig {
    TelegramConfig {
        api_url: api_url.to_owned(),
        approvers: approvers.to_vec(),
        poll_timeout: Duration::from_secs(1),
        retry_base: Duration::from_millis(50),
        ..TelegramConfig::new(Secret::new(TOKEN))
    }
}

async fn server(api_url: &str, approvers: &[i64]) -> TestServer {
    let tg = settings(api_url, approvers);
    TestServer::with_config(Some(TEST_POLICY), move |c| c.telegram = Some(tg)).await
}

/// A request that needs a human; returns its id.
async fn pending(s: &TestServer, key: &str, body: Value) -> String {
    let (status, data) = s.request(key, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{data}");
    data["id"].as_str().unwrap().to_owned()
}

/// The message in `chat` whose buttons are for request `id` (waits for it).
async fn message_for(fake: &FakeTelegram, chat: i64, id: &str) -> Sent {
    let data = format!("a:{id}");
    eventually(10, "an approval message", || async {
        fake.sent_to(chat).into_iter().find(|m| {
            m.reply_markup
                .as_ref()
                .is_some_and(|k| k.to_string().contains(&data))
        })
    })
    .await
}

/// The message in `chat` with a Deny button for request `id` (waits for it).
async fn deny_message_for(fake: &FakeTelegram, chat: i64, id: &str) -> Sent {
    let data = format!("d:{id}");
    eventually(10, "a message with a Deny button", || async {
        fake.sent_to(chat).into_iter().find(|m| {
            m.reply_markup
                .as_ref()
                .is_some_and(|k| k.to_string().contains(&data))
        })
    })
    .await
}

/// The texts of the buttons under a message.
fn button_texts(m: &Sent) -> Vec<String> {
    let Some(k) = &m.reply_markup else {
        return Vec::new();
    };
    k["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|b| b["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts that every line of a message starts with text of ours (a label, a bullet, a
/// heading), never with text an agent wrote.
fn assert_lines_are_ours(text: &str) {
    if let Some(line) = agent_otp::testing::telegram::render::first_line_not_ours(text) {
        panic!("a line not of ours: {line:?} in\n{text}");
    }
}

/// Waits until message `m` has been edited, and returns it.
async fn edited(fake: &FakeTelegram, m: &Sent) -> Sent {
    eventually(10, "the message to be edited", || async {
        fake.sent_to(m.chat_id)
            .into_iter()
            .find(|x| x.message_id == m.message_id && x.edits > 0)
    })
    .await
}

/// Replies to `chat` that contain `needle` (command answers, not approval messages).
fn replies(fake: &FakeTelegram, chat: i64, needle: &str) -> usize {
    fake.sent_to(chat)
        .iter()
        .filter(|m| m.text.contains(needle))
        .count()
}

async fn audit_count(s: &TestServer, event: &str) -> i64 {
    let (st, body) = s
        .get(&s.admin, &format!("/api/v1/admin/audit?event={event}"))
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["meta"]["total"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approver_links_with_a_one_time_code_and_can_be_unlinked() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[]).await;
    let data = s.dir.path().join("data");
    eventually(10, "the bot to connect", || async {
        (!fake.calls("getMe").is_empty()).then_some(())
    })
    .await;

    let Ran {
        ok,
        stdout: code,
        stderr,
        ..
    } = run_cli_on(&data, &["telegram", "link"]);
    assert!(ok, "{stderr}");
    let code = code.trim().to_owned();
    assert_eq!(code.len(), 16, "{code}");
    assert!(
        stderr.contains(&format!("https://t.me/agent_otp_test_bot?start={code}")),
        "{stderr}"
    );

    fake.user_says(ANN, "hello");
    eventually(10, "help for a stranger", || async {
        (replies(&fake, ANN, "not linked yet") == 1).then_some(())
    })
    .await;
    fake.user_says(ANN, "/pending");
    eventually(10, "no pending list for a stranger", || async {
        (replies(&fake, ANN, "not linked yet") == 2).then_some(())
    })
    .await;

    fake.user_says(ANN, &format!("/start {code}"));
    eventually(10, "the link to be confirmed", || async {
        (replies(&fake, ANN, "Linked") == 1).then_some(())
    })
    .await;
    fake.user_says(BEN, &format!("/start {code}"));
    eventually(10, "a used code to be refused", || async {
        (replies(&fake, BEN, "unknown, used or expired") == 1).then_some(())
    })
    .await;
    assert_eq!(audit_count(&s, "telegram.approver_linked").await, 1);
    assert_eq!(audit_count(&s, "telegram.link_failed").await, 1);

    let Ran {
        ok, stdout: list, ..
    } = run_cli_on(&data, &["telegram", "list"]);
    assert!(
        ok && list.contains("777") && list.contains("user777") && !list.contains("778"),
        "{list}"
    );

    // Linked: /pending answers, /login sends a one-time web login link.
    fake.user_says(ANN, "/pending");
    eventually(10, "an empty pending list", || async {
        (replies(&fake, ANN, "Nothing is waiting") == 1).then_some(())
    })
    .await;
    fake.user_says(ANN, "/login");
    let login = eventually(10, "a login link", || async {
        fake.sent_to(ANN)
            .into_iter()
            .find(|m| m.text.contains("one-time login link"))
    })
    .await;
    assert!(
        login.text.contains(&format!("{}/login/ll_", s.url(""))),
        "{}",
        login.text
    );

    // The link opens a web session, which works on the admin API...
    let base = format!("{}/login/ll_", s.url(""));
    let start = login.text.find(&base).unwrap();
    let link: String = login.text[start..]
        .chars()
        .take_while(|c| !matches!(c, '"' | '<' | ' ' | '\n'))
        .collect();
    let opened = crate::login::open_link(&crate::web::client(), &link, None).await;
    let cookie = opened
        .set_cookie("agent_otp_session")
        .map(|v| crate::web::cookie_pair(&v))
        .expect("a session cookie");
    let with_session = || {
        s.http
            .get(s.url("/api/v1/admin/agents"))
            .header("Cookie", &cookie)
            .send()
    };
    assert_eq!(with_session().await.unwrap().status(), 200);
    // The web agents page lists the linked approver.
    let agents_page = s
        .http
        .get(s.url("/agents"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(agents_page.contains("Telegram user 777"), "{agents_page}");

    let Ran { ok, stderr, .. } = run_cli_on(&data, &["telegram", "unlink", "777"]);
    assert!(ok, "{stderr}");
    assert_eq!(audit_count(&s, "telegram.approver_unlinked").await, 1);
    // ...and ends with the unlink.
    assert_eq!(with_session().await.unwrap().status(), 401);
    let Ran { ok, stderr, .. } = run_cli_on(&data, &["telegram", "unlink", "777"]);
    assert!(
        !ok && stderr.contains("no linked Telegram approver"),
        "{stderr}"
    );
    fake.user_says(ANN, "/pending");
    eventually(10, "an unlinked user to be a stranger again", || async {
        (replies(&fake, ANN, "not linked yet") == 3).then_some(())
    })
    .await;
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_button_gives_the_waiting_agent_its_token_and_the_message_shows_who() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("mailer").await;
    let id = pending(
        &s,
        &key,
        json!({"action": "deploy.x", "resource": "a&b <i>",
               "scope": {"max_emails": 1, "to": "<script>"},
               "context": {"reason": "<b>urgent</b> & now"}}),
    )
    .await;
    let m = message_for(&fake, ANN, &id).await;

    // Text: every piece of agent text escaped, our own markup intact.
    let t = &m.text;
    assert!(t.starts_with("🔐 <b>Approval needed</b>"), "{t}");
    assert!(t.contains("Agent: <b>mailer</b>"), "{t}");
    assert!(t.contains("Action: <code>deploy.x</code>"), "{t}");
    assert!(
        t.contains("Resource: <code>a&amp;b &lt;i&gt;</code>"),
        "{t}"
    );
    assert!(
        t.contains("Reason: <code>&lt;b&gt;urgent&lt;/b&gt; &amp; now</code>"),
        "{t}"
    );
    assert!(
        t.contains("<b>agent-otp enforces:</b>\n• max_emails at most: <code>1</code>\n"),
        "{t}"
    );
    assert!(
        t.contains("<b>Passed on to the service (not checked here):</b>\n• to: <code>&lt;script&gt;</code>\n"),
        "{t}"
    );
    assert!(t.contains("Token: valid 5 min, 1 use\n"), "{t}");
    assert!(t.contains("Rule: everything-else"), "{t}");
    assert!(t.contains("Time left: 5 min (until "), "{t}");
    assert!(
        !t.contains("<i>") && !t.contains("<script>") && !t.contains("<b>urgent"),
        "{t}"
    );
    let body = &fake.calls("sendMessage")[0].body;
    assert_eq!(body["parse_mode"], "HTML");
    assert_eq!(body["link_preview_options"]["is_disabled"], true);
    let buttons = &m.reply_markup.as_ref().unwrap()["inline_keyboard"][0];
    assert_eq!(buttons[0]["text"], "✅ Approve");
    assert_eq!(buttons[0]["callback_data"], format!("a:{id}"));
    assert_eq!(buttons[1]["text"], "❌ Deny");
    assert_eq!(buttons[1]["callback_data"], format!("d:{id}"));

    // The per-request login link: for this approver, leading to the request's page.
    let prefix = format!("<a href=\"{}/login/", s.url(""));
    let start = t.find(&prefix).expect("a login link") + prefix.len();
    let secret = &t[start..start + t[start..].find('"').unwrap()];
    assert!(secret.starts_with("ll_") && secret.len() == 43, "{secret}");
    let svc = &s.handle.as_ref().unwrap().service;
    let (redeemed, _, _) = svc
        .log_in(secret, None, 600)
        .await
        .unwrap()
        .expect("a live login link");
    assert_eq!(redeemed.human, "tg-777");
    assert_eq!(
        redeemed.next.as_deref(),
        Some(format!("/requests/{id}").as_str())
    );
    // Its session is limited to this request (tests/it/login.rs shows what that means).
    assert_eq!(redeemed.request.as_deref(), Some(id.as_str()));

    // The agent waits; the approver presses Approve; the agent gets its token.
    let poll = s.long_poll(&key, &id).await;
    fake.press(ANN, &m, &format!("a:{id}"));
    let (got, _) = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got["data"]["status"], "approved", "{got}");
    assert_eq!(got["data"]["decidedBy"], "human:tg-777");
    assert!(
        got["data"]["token"].as_str().unwrap().starts_with("otp_"),
        "{got}"
    );

    let answer = eventually(10, "the press to be answered", || async {
        fake.calls("answerCallbackQuery").pop()
    })
    .await;
    assert_eq!(answer.body["text"], "Approved ✅");
    assert_ne!(answer.body["show_alert"], true);
    let after = edited(&fake, &m).await;
    assert!(
        after
            .text
            .starts_with("✅ <b>Approved</b> by Telegram user 777 at "),
        "{}",
        after.text
    );
    assert!(
        after
            .text
            .contains("Resource: <code>a&amp;b &lt;i&gt;</code>"),
        "{}",
        after.text
    );
    assert!(after.reply_markup.is_none(), "the buttons are gone");
    assert!(!after.text.contains("/login/"), "the login link is gone");

    // A second press is too late and changes nothing.
    fake.press(ANN, &m, &format!("d:{id}"));
    let late = eventually(10, "a late press to be answered", || async {
        let calls = fake.calls("answerCallbackQuery");
        (calls.len() == 2).then(|| calls[1].clone())
    })
    .await;
    assert!(
        late.body["text"].as_str().unwrap().contains("Too late"),
        "{:?}",
        late.body
    );
    let (_, v) = s
        .get(&s.admin, &format!("/api/v1/admin/permissions/{id}"))
        .await;
    assert_eq!(v["data"]["status"], "approved");
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_press_from_someone_not_an_approver_changes_nothing_and_is_audited() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("mailer").await;
    let id = pending(&s, &key, json!({"action": "gmail.send"})).await;
    let m = message_for(&fake, ANN, &id).await;

    fake.press(999, &m, &format!("a:{id}"));
    let answer = eventually(10, "the press to be answered", || async {
        fake.calls("answerCallbackQuery").pop()
    })
    .await;
    assert_eq!(answer.body["show_alert"], true);
    assert!(
        answer.body["text"]
            .as_str()
            .unwrap()
            .contains("Only linked approvers"),
        "{:?}",
        answer.body
    );
    assert_eq!(audit_count(&s, "telegram.unauthorized_press").await, 1);
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "pending");
    assert_eq!(fake.sent_to(ANN)[0].edits, 0, "the message is untouched");
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_through_the_admin_api_edits_every_approvers_message() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN, BEN]).await;
    let key = s.agent("mailer").await;
    let id = pending(&s, &key, json!({"action": "gmail.send"})).await;
    let (a, b) = (
        message_for(&fake, ANN, &id).await,
        message_for(&fake, BEN, &id).await,
    );

    let (st, v) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{id}/deny"),
            json!({"reason": "not today"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for m in [a, b] {
        let after = edited(&fake, &m).await;
        assert!(
            after.text.starts_with("❌ <b>Denied</b> by alice at "),
            "{}",
            after.text
        );
        assert!(after.reply_markup.is_none());
    }
    // One cancellation token stops the poller mid long-poll together with the HTTP server.
    let started = std::time::Instant::now();
    s.stop().await;
    let took = started.elapsed();
    eprintln!("graceful stop with telegram running: {took:?}");
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_edits_the_message() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("mailer").await;
    let id = pending(&s, &key, json!({"action": "gmail.send", "ttl": 30})).await;
    let m = message_for(&fake, ANN, &id).await;
    assert!(m.text.contains("Time left: 30 s"), "{}", m.text);

    s.clock.advance(Duration::from_secs(31));
    let after = edited(&fake, &m).await;
    assert!(
        after.text.starts_with("⌛ <b>Expired</b> at "),
        "{}",
        after.text
    );
    assert!(after.reply_markup.is_none());
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_and_server_errors_are_survived() {
    let fake = FakeTelegram::start().await;
    fake.fail_next("getUpdates", 1, Failure::Server(502));
    fake.fail_next("sendMessage", 1, Failure::RetryAfter(1));
    fake.fail_next("sendMessage", 1, Failure::Server(500));
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("mailer").await;
    let id = pending(&s, &key, json!({"action": "gmail.send"})).await;

    // teloxide itself waits 10 s after any 5xx before it reports it, hence the long bound.
    let m = eventually(40, "the message despite 429 and 500", || async {
        fake.sent_to(ANN)
            .into_iter()
            .find(|m| m.text.contains("Approval needed"))
    })
    .await;
    let sends = fake.calls("sendMessage");
    assert_eq!(sends.len(), 3, "429, 500, then delivered");
    let waited = sends[1].at - sends[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "retry_after honoured: waited {waited:?}"
    );

    // The poller survived its 502 too: a press still works.
    fake.press(ANN, &m, &format!("a:{id}"));
    let after = edited(&fake, &m).await;
    assert!(after.text.contains("Approved"), "{}", after.text);
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_that_blocked_the_bot_is_skipped() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN, BEN]).await;
    fake.fail_next("sendMessage", 1, Failure::Blocked);
    let key = s.agent("mailer").await;
    let id = pending(&s, &key, json!({"action": "gmail.send"})).await;
    let b = message_for(&fake, BEN, &id).await;
    assert!(fake.sent_to(ANN).is_empty(), "ANN blocked the bot");

    let (st, _) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    edited(&fake, &b).await;
    let to_ann = fake
        .calls("sendMessage")
        .iter()
        .filter(|c| c.body["chat_id"] == ANN)
        .count();
    assert_eq!(to_ann, 1, "a blocked chat is not retried");
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_unreachable_at_start_does_not_stop_the_api() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = server(&url, &[ANN]).await;
    let (st, _) = s.get("", "/health").await;
    assert_eq!(st, StatusCode::OK);
    let key = s.agent("mailer").await;
    let started = std::time::Instant::now();
    pending(&s, &key, json!({"action": "gmail.send"})).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the API does not wait for Telegram"
    );
    tokio::time::timeout(Duration::from_secs(10), s.stop())
        .await
        .expect("a prompt shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_restart_no_update_is_handled_twice_and_old_buttons_work() {
    let fake = FakeTelegram::start().await;
    let mut s = server(&fake.url, &[ANN]).await;
    let key = s.agent("mailer").await;
    let help = fake.user_says(ANN, "/help");
    eventually(10, "help", || async {
        (replies(&fake, ANN, "/pending –") == 1).then_some(())
    })
    .await;
    let id = pending(&s, &key, json!({"action": "gmail.send"})).await;
    let m = message_for(&fake, ANN, &id).await;
    let svc = s.handle.as_ref().unwrap().service.clone();
    eventually(10, "the update to be remembered", || {
        let svc = svc.clone();
        async move {
            let last = svc.last_update_id().await.unwrap();
            (last == Some(help)).then_some(())
        }
    })
    .await;

    let polls_before = fake.calls("getUpdates").len();
    s.restart().await;
    fake.forget_confirmations();
    let first = eventually(10, "polling after the restart", || async {
        fake.calls("getUpdates").get(polls_before).cloned()
    })
    .await;
    assert_eq!(
        first.body["offset"],
        help + 1,
        "resumes after the last handled update"
    );
    eventually(10, "a few polls", || async {
        (fake.calls("getUpdates").len() > polls_before + 2).then_some(())
    })
    .await;
    assert_eq!(
        replies(&fake, ANN, "/pending –"),
        1,
        "the help was not sent twice"
    );

    fake.press(ANN, &m, &format!("a:{id}"));
    let after = edited(&fake, &m).await;
    assert!(
        after.text.contains("Approved</b> by Telegram user 777"),
        "{}",
        after.text
    );
    let approval_messages = fake
        .sent_to(ANN)
        .iter()
        .filter(|x| x.text.contains("Action:"))
        .count();
    assert_eq!(
        approval_messages, 1,
        "no duplicate approval message after the restart"
    );
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn newlines_and_bidi_overrides_in_agent_text_are_markers_not_lines() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("mailer").await;

    // Free text keeps such characters, shown as markers on the line of its label.
    let id = pending(
        &s,
        &key,
        json!({"action": "payment.send", "resource": "invoice-7",
               "scope": {"max_amount": 10},
               "context": {"reason": "monthly\nResource: harmless.txt\n\u{2022} max_amount at most: 10",
                           "file": "evil\u{202E}txt.exe", "ref": "a\u{200B}b"}}),
    )
    .await;
    let t = message_for(&fake, ANN, &id).await.text;
    assert!(
        t.contains(
            "Reason: <code>\u{2068}monthly[U+000A]Resource: harmless.txt[U+000A]• max_amount at most: 10\u{2069}</code>\n"
        ),
        "{t}"
    );
    assert!(
        t.contains("• file: <code>evil[U+202E]txt.exe</code>"),
        "{t}"
    );
    assert!(t.contains("• ref: <code>a[U+200B]b</code>"), "{t}");
    assert!(!t.contains('\u{202E}') && !t.contains('\u{200B}'), "{t}");
    assert_eq!(t.matches("\nResource: ").count(), 1, "{t}");
    assert_lines_are_ours(&t);

    // In action and resource they are refused outright, and no message goes out.
    let sent = fake.calls("sendMessage").len();
    for (body, field) in [
        (
            json!({"action": "gmail.send\nResource: harmless.txt"}),
            "action",
        ),
        (
            json!({"action": "gmail.send", "resource": "evil\u{202E}txt.exe"}),
            "resource",
        ),
        (
            json!({"action": "gmail.send", "resource": "a.txt\nReason: routine"}),
            "resource",
        ),
    ] {
        let (status, v) = s
            .post(&key, "/api/v1/permissions/request", body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {v}");
        assert!(v["error"]["details"][field].is_string(), "{v}");
    }
    assert_eq!(fake.calls("sendMessage").len(), sent);
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_list_entry_is_shown_one_per_line() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("mailer").await;
    let people: Vec<String> = (0..30).map(|i| format!("person{i}@example.com")).collect();
    let id = pending(
        &s,
        &key,
        json!({"action": "gmail.send",
               "scope": {"allowed_recipients": people, "max_emails": 30,
                         "subject": "x".repeat(300)},
               "actionDetails": {"to": ["person1@example.com", "person2@example.com"]}}),
    )
    .await;
    let m = message_for(&fake, ANN, &id).await;
    let t = &m.text;
    assert!(
        t.contains("• allowed_recipients only these (30 items):\n"),
        "{t}"
    );
    for p in &people {
        assert!(
            t.contains(&format!("\n    ◦ <code>{p}</code>\n")),
            "{p}: {t}"
        );
    }
    assert!(
        t.contains(&format!("• subject: <code>{}</code>", "x".repeat(300))),
        "{t}"
    );
    let passed = t.find("Passed on to the service").unwrap();
    assert!(t.find("• subject:").unwrap() > passed, "{t}");
    assert!(t.find("• max_emails at most:").unwrap() < passed, "{t}");
    assert!(
        t.contains(
            "<b>Exact details (the token works for these only):</b>\n• to (2 items):\n    ◦ <code>person1@example.com</code>\n    ◦ <code>person2@example.com</code>\n"
        ),
        "{t}"
    );
    assert_eq!(button_texts(&m), ["✅ Approve", "❌ Deny"]);
    assert_lines_are_ours(t);
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_too_long_to_show_offers_only_deny_and_refuses_a_forged_approve() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("mailer").await;
    let people: Vec<String> = (0..200).map(|i| format!("person{i}@example.com")).collect();
    let id = pending(
        &s,
        &key,
        json!({"action": "gmail.send", "scope": {"allowed_recipients": people}}),
    )
    .await;
    let m = deny_message_for(&fake, ANN, &id).await;
    let t = &m.text;
    assert_eq!(button_texts(&m), ["❌ Deny"], "no Approve button");
    assert!(
        t.starts_with("🔐 <b>Approval needed — too long to show here</b>"),
        "{t}"
    );
    assert!(t.contains("cannot be approved here"), "{t}");
    assert!(t.contains("<b>Partial view</b>"), "{t}");
    assert!(t.contains("lines not shown here"), "{t}");
    assert!(
        t.contains(&format!("<a href=\"{}/login/ll_", s.url(""))),
        "{t}"
    );
    assert!(
        t.contains("person0@example.com") && !t.contains("person199@"),
        "{t}"
    );
    let shown = agent_otp::testing::telegram::render::visible_len(t);
    assert!(
        shown < 4096,
        "{shown} characters once Telegram parsed the HTML"
    );
    assert_lines_are_ours(t);

    // A forged Approve press is refused with an alert and changes nothing.
    fake.press(ANN, &m, &format!("a:{id}"));
    let answer = eventually(10, "the press to be answered", || async {
        fake.calls("answerCallbackQuery").pop()
    })
    .await;
    assert_eq!(answer.body["show_alert"], true);
    assert!(
        answer.body["text"].as_str().unwrap().contains("too long"),
        "{:?}",
        answer.body
    );
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "pending");
    assert_eq!(fake.sent_to(ANN)[0].edits, 0, "the message is untouched");

    // Deny works (without a reason), and the outcome edit (shortened, marked partial) removes
    // the button.
    fake.press(ANN, &m, &format!("d:{id}"));
    let m = eventually(10, "the deny-without-a-reason button", || async {
        fake.sent_to(ANN).into_iter().find(|x| {
            x.message_id == m.message_id
                && button_texts(x)
                    .iter()
                    .any(|b| b.contains("Deny without a reason"))
        })
    })
    .await;
    fake.press(ANN, &m, &format!("n:{id}"));
    let after = edited(&fake, &m).await;
    assert!(
        after
            .text
            .starts_with("❌ <b>Denied</b> by Telegram user 777 at "),
        "{}",
        after.text
    );
    assert!(after.text.contains("<b>Partial view</b>"), "{}", after.text);
    assert!(after.reply_markup.is_none());
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "denied");
    s.stop().await;
    fake.stop().await;
}

/// A policy whose money rule asks for a second confirmation.
const CONFIRM_POLICY: &str = r#"
policies:
  - name: money
    conditions:
      action: { startsWith: "payment." }
    action: require_approval
    confirm: true
  - name: everything-else
    conditions: {}
    action: require_approval
    priority: -10
"#;

/// The bank-like request of these tests.
fn transfer() -> Value {
    json!({
        "action": "payment.transfer",
        "scope": {
            "max_amount": 250,
            "allowed_currency": ["EUR"],
            "allowed_recipients": ["DE89370400440532013000", "FR1420041010050500013M02606"],
        },
        "context": {"reason": "Supplier invoice 114"},
        "ttl": 1800,
    })
}

/// The message `m` once its buttons include one whose text contains `label`.
async fn with_button(fake: &FakeTelegram, m: &Sent, label: &str) -> Sent {
    eventually(10, "new buttons", || async {
        fake.sent_to(m.chat_id).into_iter().find(|x| {
            x.message_id == m.message_id && button_texts(x).iter().any(|b| b.contains(label))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_message_opens_with_the_summary_sentence_of_the_web_page() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("treasury-assistant").await;
    let id = pending(&s, &key, transfer()).await;
    let m = message_for(&fake, ANN, &id).await;
    let t = &m.text;
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[2],
        "📝 <b>In short:</b> treasury-assistant wants to <b>transfer up to 250 EUR</b>, once, to",
        "{t}"
    );
    assert_eq!(
        lines[3], "    ◦ <code>DE89 3704 0044 0532 0130 00</code>",
        "{t}"
    );
    assert_eq!(
        lines[4], "    ◦ <code>FR14 2004 1010 0505 0001 3M02 606</code>",
        "{t}"
    );
    assert_eq!(
        lines[5],
        "↳ within 30 min — reason (stated by the agent): <code>Supplier invoice 114</code>",
        "{t}"
    );
    // The raw entries are still all there, one list entry per line.
    assert!(
        t.contains("    ◦ <code>DE89370400440532013000</code>"),
        "{t}"
    );
    assert_lines_are_ours(t);
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_asks_for_a_reason_that_reaches_the_agent() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("treasury-assistant").await;
    let id = pending(&s, &key, transfer()).await;
    let m = message_for(&fake, ANN, &id).await;

    // Deny asks first: a prompt to reply to, and the buttons become "without a reason" / Cancel.
    fake.press(ANN, &m, &format!("d:{id}"));
    let prompt = eventually(10, "a deny prompt", || async {
        fake.sent_to(ANN)
            .into_iter()
            .find(|x| x.text.starts_with("❌ <b>Why deny</b>"))
    })
    .await;
    assert!(
        prompt.reply_markup.as_ref().unwrap()["force_reply"] == json!(true),
        "{:?}",
        prompt.reply_markup
    );
    assert!(
        prompt
            .text
            .contains(&format!("Request id: <code>{id}</code>"))
    );
    let asking = with_button(&fake, &m, "Deny without a reason").await;
    assert!(button_texts(&asking).iter().any(|b| b.contains("Cancel")));
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "pending", "nothing decided yet");

    // Cancel brings Approve / Deny back.
    fake.press(ANN, &asking, &format!("k:{id}"));
    let back = with_button(&fake, &m, "Approve").await;
    assert_eq!(button_texts(&back), ["✅ Approve", "❌ Deny"]);

    // A reply to the prompt denies with that reason, which the agent reads.
    fake.user_replies(ANN, "not this month, <ask> finance", &prompt);
    let after = edited(&fake, &m).await;
    assert!(
        after
            .text
            .starts_with("❌ <b>Denied</b> by Telegram user 777 at "),
        "{}",
        after.text
    );
    assert!(
        after
            .text
            .contains("Reason: <code>not this month, &lt;ask&gt; finance</code>"),
        "{}",
        after.text
    );
    assert!(after.reply_markup.is_none());
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "denied");
    assert_eq!(v["data"]["reason"], "not this month, <ask> finance");
    eventually(10, "a reply saying it is done", || async {
        (replies(&fake, ANN, "Denied; the agent gets your reason") == 1).then_some(())
    })
    .await;
    // A second reply is too late and changes nothing.
    fake.user_replies(ANN, "another reason", &prompt);
    eventually(10, "a too-late reply", || async {
        (replies(&fake, ANN, "Too late") == 1).then_some(())
    })
    .await;
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["reason"], "not this month, <ask> finance");
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirm_rule_takes_a_second_tap_and_the_outcome_names_who() {
    let fake = FakeTelegram::start().await;
    let tg = settings(&fake.url, &[ANN]);
    let s = TestServer::with_config(Some(CONFIRM_POLICY), move |c| c.telegram = Some(tg)).await;
    let key = s.agent("treasury-assistant").await;
    let id = pending(&s, &key, transfer()).await;
    let m = message_for(&fake, ANN, &id).await;

    fake.press(ANN, &m, &format!("a:{id}"));
    let asking = with_button(&fake, &m, "Yes, approve").await;
    // Cancel where Approve was: a second tap of a double tap on Approve cancels.
    assert_eq!(
        button_texts(&asking),
        ["↩️ Cancel", "✅ Yes, approve up to 250 EUR"]
    );
    let answer = eventually(10, "the press answered", || async {
        fake.calls("answerCallbackQuery").into_iter().next()
    })
    .await;
    assert!(
        answer.body["text"]
            .as_str()
            .unwrap()
            .contains("second confirmation"),
        "{:?}",
        answer.body
    );
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "pending", "one tap does not approve");

    fake.press(ANN, &asking, &format!("y:{id}"));
    let after = edited(&fake, &m).await;
    assert!(
        after
            .text
            .starts_with("✅ <b>Approved</b> by Telegram user 777 at "),
        "{}",
        after.text
    );
    let (_, v) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
    assert_eq!(v["data"]["status"], "approved");
    s.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_outcome_edit_carries_the_note_and_the_narrowing() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("treasury-assistant").await;
    let id = pending(&s, &key, transfer()).await;
    let m = message_for(&fake, ANN, &id).await;
    let (status, body) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{id}/approve"),
            json!({"note": "checked <the> invoice", "scope": {"max_amount": 40,
                   "allowed_recipients": ["DE89370400440532013000"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = edited(&fake, &m).await;
    let t = &after.text;
    assert!(t.starts_with("✅ <b>Approved</b> by alice at "), "{t}");
    assert!(
        t.contains("\nNote: <code>checked &lt;the&gt; invoice</code>\n"),
        "{t}"
    );
    assert!(
        t.contains("\nNarrowed:\n• \u{2068}max_amount 250 → 40\u{2069}\n• allowed_recipients: 1 of 2 kept\n"),
        "{t}"
    );
    assert!(
        t.contains("treasury-assistant may <b>transfer up to 40 EUR</b>"),
        "the sentence as granted: {t}"
    );
    assert_lines_are_ours(t);
    s.stop().await;
    fake.stop().await;
}

/// Opens `link` until it no longer answers 200: the link is retired in the write that follows the
/// message's edit. Status, whether a session cookie came, and the page.
async fn retired<F, Fut>(open: &F, link: String) -> (StatusCode, bool, String)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = (StatusCode, bool, String)>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = open(link.clone()).await;
        if got.0 != StatusCode::OK || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The login link in an approval message stops working once its request is decided or expires;
/// opening it then says what became of the request, and logs nobody in.
#[tokio::test(flavor = "multi_thread")]
async fn a_link_from_a_decided_or_expired_request_says_what_happened() {
    let fake = FakeTelegram::start().await;
    let s = server(&fake.url, &[ANN]).await;
    let key = s.agent("mailer").await;
    let link_of = |m: &Sent| {
        let prefix = format!("<a href=\"{}/login/", s.url(""));
        let start = m.text.find(&prefix).expect("a login link") + prefix.len();
        let end = start + m.text[start..].find('"').unwrap();
        s.url(&format!("/login/{}", &m.text[start..end]))
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let open = |url: String| {
        let http = http.clone();
        async move {
            let resp = http.get(url).send().await.unwrap();
            let has_session = resp.headers().get_all("set-cookie").iter().any(|c| {
                c.to_str()
                    .unwrap_or("")
                    .starts_with(agent_otp::testing::service::sessions::COOKIE)
            });
            (resp.status(), has_session, resp.text().await.unwrap())
        }
    };

    let denied = pending(&s, &key, json!({"action": "gmail.send"})).await;
    let m = message_for(&fake, ANN, &denied).await;
    let link = link_of(&m);
    let (status, _, page) = open(link.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "before the decision the link asks to log in: {page}"
    );
    let (st, v) = s
        .post(
            &s.admin,
            &format!("/api/v1/admin/permissions/{denied}/deny"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    edited(&fake, &m).await;
    let (status, session, page) = retired(&open, link.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!session, "no session from a spent link");
    assert!(
        page.contains("the request “gmail.send” from mailer was denied by alice at "),
        "{page}"
    );

    let lapsed = pending(&s, &key, json!({"action": "gmail.send", "ttl": 30})).await;
    let m = message_for(&fake, ANN, &lapsed).await;
    s.clock.advance(Duration::from_secs(31));
    edited(&fake, &m).await;
    let link = link_of(&m);
    let (status, _, page) = retired(&open, link.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("from mailer was expired"), "{page}");
    assert!(!page.contains("expired by"), "{page}");
    s.stop().await;
    fake.stop().await;
}

/// Every approver regularly gets a signed checkpoint of the audit chain, an anchor outside the
/// server: its head is the chain's, and `audit verify --expect-head` accepts it.
#[tokio::test(flavor = "multi_thread")]
async fn approvers_regularly_get_a_signed_audit_checkpoint() {
    let fake = FakeTelegram::start().await;
    let tg = TelegramConfig {
        checkpoint_interval: Duration::from_millis(300),
        ..settings(&fake.url, &[ANN, BEN])
    };
    let mut s = TestServer::with_config(Some(TEST_POLICY), move |c| c.telegram = Some(tg)).await;
    let key = s.agent("mailer").await;
    s.request(&key, json!({"action": "file.read"})).await;
    let sent = eventually(10, "a checkpoint to both approvers", || async {
        let calls = fake.calls("sendMessage");
        let to: Vec<i64> = calls
            .iter()
            .filter(|c| {
                c.body["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Audit checkpoint")
            })
            .map(|c| c.body["chat_id"].as_i64().unwrap())
            .collect();
        (to.contains(&ANN) && to.contains(&BEN)).then_some(calls)
    })
    .await;
    let text = sent
        .iter()
        .map(|c| c.body["text"].as_str().unwrap().to_owned())
        .find(|t| t.contains("Audit checkpoint"))
        .unwrap();
    let head = text
        .split("Head: <code>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert_eq!(head.len(), 64, "{text}");
    let data = s.dir.path().join("data");
    let checkpoints = std::fs::read_to_string(data.join("audit.checkpoints")).unwrap();
    assert!(
        checkpoints.contains(head),
        "the message's head is a checkpoint's: {checkpoints}"
    );
    s.shut_down().await;
    let Ran { ok, stdout, .. } = run_cli_on(&data, &["audit", "verify", "--expect-head", head]);
    assert!(ok, "{stdout}");
    fake.stop().await;
}
