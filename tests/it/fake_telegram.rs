//! A fake Telegram Bot API for the tests: actix-web on 127.0.0.1:0 speaking the real wire format
//! (`POST /bot<TOKEN>/<Method>`, JSON in, `{"ok":…}` out), so the service's real teloxide client
//! talks to it. The control side injects user messages and button presses, lists the calls
//! made, and makes the next calls of a method fail (429 with `retry_after`, 5xx, 403 blocked).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub const TOKEN: &str = "123456:TEST-token";
pub const BOT_ID: i64 = 123456;
pub const BOT_USERNAME: &str = "agent_otp_test_bot";
/// The longest the fake lets a `getUpdates` wait, so shutdown never stalls.
const MAX_POLL_WAIT: Duration = Duration::from_millis(300);

/// One call the service made.
#[derive(Debug, Clone)]
pub struct Call {
    /// Lower-case method name, e.g. `sendmessage`.
    pub method: String,
    pub body: Value,
    pub at: Instant,
}

/// A message the bot sent, as it now reads.
#[derive(Debug, Clone)]
pub struct Sent {
    pub chat_id: i64,
    pub message_id: i64,
    pub text: String,
    pub reply_markup: Option<Value>,
    pub edits: u32,
}

/// How the next matching call fails.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    RetryAfter(u32),
    Server(u16),
    Blocked,
}

#[derive(Default)]
struct State {
    updates: Vec<Value>,
    next_update_id: i64,
    confirmed_below: i64,
    next_message_id: i64,
    sent: Vec<Sent>,
    calls: Vec<Call>,
    failures: VecDeque<(String, Failure)>,
}

/// The running fake.
pub struct FakeTelegram {
    pub url: String,
    state: Arc<Mutex<State>>,
    news: Arc<Notify>,
    server: actix_web::dev::ServerHandle,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    news: Arc<Notify>,
}

/// The fake Bot API's own clock: Telegram dates its messages by the wall clock, not the server's.
#[allow(clippy::disallowed_methods)]
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn user(id: i64, name: &str) -> Value {
    json!({ "id": id, "is_bot": false, "first_name": name, "username": name })
}

fn message_json(m: &Sent) -> Value {
    let mut v = json!({
        "message_id": m.message_id,
        "date": now_secs(),
        "chat": { "id": m.chat_id, "type": "private", "first_name": "User" },
        "from": { "id": BOT_ID, "is_bot": true, "first_name": "Bot", "username": BOT_USERNAME },
        "text": m.text,
    });
    if let Some(markup) = &m.reply_markup {
        v["reply_markup"] = markup.clone();
    }
    v
}

fn ok(result: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "ok": true, "result": result }))
}

fn fail(f: Failure) -> HttpResponse {
    let (code, body) = match f {
        Failure::RetryAfter(secs) => (
            429,
            json!({ "ok": false, "error_code": 429,
                    "description": format!("Too Many Requests: retry after {secs}"),
                    "parameters": { "retry_after": secs } }),
        ),
        Failure::Server(code) => (
            code,
            json!({ "ok": false, "error_code": code, "description": "Internal Server Error" }),
        ),
        Failure::Blocked => (
            403,
            json!({ "ok": false, "error_code": 403,
                    "description": "Forbidden: bot was blocked by the user" }),
        ),
    };
    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).json(body)
}

async fn bot_api(
    path: web::Path<(String, String)>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let (bot, method) = path.into_inner();
    if bot != format!("bot{TOKEN}") {
        return HttpResponse::Unauthorized()
            .json(json!({ "ok": false, "error_code": 401, "description": "Unauthorized" }));
    }
    let method = method.to_lowercase();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let failure = {
        let mut st = shared.state.lock().unwrap();
        st.calls.push(Call {
            method: method.clone(),
            body: body.clone(),
            at: Instant::now(),
        });
        let pos = st.failures.iter().position(|(m, _)| *m == method);
        pos.and_then(|i| st.failures.remove(i)).map(|(_, f)| f)
    };
    if let Some(f) = failure {
        return fail(f);
    }
    match method.as_str() {
        "getme" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Agent OTP", "username": BOT_USERNAME,
            "can_join_groups": false, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "has_main_web_app": false
        })),
        "getwebhookinfo" => {
            ok(json!({ "url": "", "has_custom_certificate": false, "pending_update_count": 0 }))
        }
        "getupdates" => get_updates(&shared, &body).await,
        "sendmessage" => {
            let mut st = shared.state.lock().unwrap();
            st.next_message_id += 1;
            let m = Sent {
                chat_id: body["chat_id"].as_i64().unwrap(),
                message_id: st.next_message_id,
                text: body["text"].as_str().unwrap_or_default().to_owned(),
                reply_markup: body.get("reply_markup").cloned(),
                edits: 0,
            };
            let v = message_json(&m);
            st.sent.push(m);
            ok(v)
        }
        "editmessagetext" => {
            let mut st = shared.state.lock().unwrap();
            let (chat, id) = (body["chat_id"].as_i64(), body["message_id"].as_i64());
            let Some(m) = st
                .sent
                .iter_mut()
                .find(|m| Some(m.chat_id) == chat && Some(m.message_id) == id)
            else {
                return HttpResponse::BadRequest().json(json!({ "ok": false, "error_code": 400,
                    "description": "Bad Request: message to edit not found" }));
            };
            m.text = body["text"].as_str().unwrap_or_default().to_owned();
            m.reply_markup = body.get("reply_markup").cloned();
            m.edits += 1;
            ok(message_json(m))
        }
        "editmessagereplymarkup" => {
            let mut st = shared.state.lock().unwrap();
            let (chat, id) = (body["chat_id"].as_i64(), body["message_id"].as_i64());
            let Some(m) = st
                .sent
                .iter_mut()
                .find(|m| Some(m.chat_id) == chat && Some(m.message_id) == id)
            else {
                return HttpResponse::BadRequest().json(json!({ "ok": false, "error_code": 400,
                    "description": "Bad Request: message to edit not found" }));
            };
            m.reply_markup = body.get("reply_markup").cloned();
            ok(message_json(m))
        }
        _ => ok(json!(true)),
    }
}

async fn get_updates(shared: &Shared, body: &Value) -> HttpResponse {
    let offset = body["offset"].as_i64().unwrap_or(0);
    let wait = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0)).min(MAX_POLL_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let news = shared.news.notified();
        tokio::pin!(news);
        news.as_mut().enable();
        let found: Vec<Value> = {
            let mut st = shared.state.lock().unwrap();
            if offset > 0 {
                st.confirmed_below = st.confirmed_below.max(offset);
            }
            let from = st.confirmed_below;
            st.updates
                .iter()
                .filter(|u| u["update_id"].as_i64().unwrap() >= from)
                .cloned()
                .collect()
        };
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            return ok(Value::Array(found));
        }
        let _ = tokio::time::timeout_at(deadline, news).await;
    }
}

impl FakeTelegram {
    pub async fn start() -> FakeTelegram {
        let shared = Shared {
            state: Arc::new(Mutex::new(State {
                next_update_id: 1000,
                ..State::default()
            })),
            news: Arc::new(Notify::new()),
        };
        let data = web::Data::new(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/{bot}/{method}", web::post().to(bot_api))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeTelegram {
            url: format!("http://{addr}"),
            state: shared.state,
            news: shared.news,
            server: handle,
        }
    }

    fn push_update(&self, mut update: Value) -> i64 {
        let mut st = self.state.lock().unwrap();
        st.next_update_id += 1;
        let id = st.next_update_id;
        update["update_id"] = json!(id);
        st.updates.push(update);
        drop(st);
        self.news.notify_waiters();
        id
    }

    /// User `user_id` writes `text` to the bot in their private chat.
    pub fn user_says(&self, user_id: i64, text: &str) -> i64 {
        let name = format!("user{user_id}");
        self.push_update(json!({ "message": {
            "message_id": 1, "date": now_secs(),
            "chat": { "id": user_id, "type": "private", "first_name": name },
            "from": user(user_id, &name), "text": text,
        }}))
    }

    /// User `user_id` replies with `text` to the bot's message `to`.
    pub fn user_replies(&self, user_id: i64, text: &str, to: &Sent) -> i64 {
        let name = format!("user{user_id}");
        // Telegram gives the replied-to message as plain text, its markup stripped.
        let mut original = message_json(to);
        original["text"] = json!(strip_tags(&to.text));
        // A message carries only inline keyboards; a force-reply request is not part of it.
        if original["reply_markup"].get("force_reply").is_some() {
            original.as_object_mut().unwrap().remove("reply_markup");
        }
        self.push_update(json!({ "message": {
            "message_id": 2, "date": now_secs(),
            "chat": { "id": user_id, "type": "private", "first_name": name },
            "from": user(user_id, &name), "text": text,
            "reply_to_message": original,
        }}))
    }

    /// User `user_id` presses the button with `data` under message `m`.
    pub fn press(&self, user_id: i64, m: &Sent, data: &str) -> i64 {
        let name = format!("user{user_id}");
        self.push_update(json!({ "callback_query": {
            "id": format!("cb{user_id}-{}", m.message_id),
            "from": user(user_id, &name),
            "chat_instance": "ci", "message": message_json(m), "data": data,
        }}))
    }

    /// Makes the next `n` calls of `method` (any case) fail this way.
    pub fn fail_next(&self, method: &str, n: usize, f: Failure) {
        let mut st = self.state.lock().unwrap();
        for _ in 0..n {
            st.failures.push_back((method.to_lowercase(), f));
        }
    }

    /// Simulates Telegram forgetting which updates were confirmed (it redelivers them all).
    pub fn forget_confirmations(&self) {
        self.state.lock().unwrap().confirmed_below = 0;
    }

    /// Calls of `method` (any case) so far.
    pub fn calls(&self, method: &str) -> Vec<Call> {
        let method = method.to_lowercase();
        let st = self.state.lock().unwrap();
        st.calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Messages sent to `chat`, as they now read.
    pub fn sent_to(&self, chat: i64) -> Vec<Sent> {
        let st = self.state.lock().unwrap();
        st.sent
            .iter()
            .filter(|m| m.chat_id == chat)
            .cloned()
            .collect()
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// Telegram HTML as the plain text Telegram shows: tags dropped, the five entities decoded.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c => out.push(c),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}
