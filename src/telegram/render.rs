//! What the bot writes: approval messages, their outcome after a decision, the buttons, and the
//! help. Pure functions over a [`PermissionView`]; every piece of agent text is HTML-escaped
//! (Telegram's HTML parse mode) and cut to a readable length first.

use serde_json::Value;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::clock::Timestamp;
use crate::domain::Status;
use crate::service::PermissionView;

/// Longest piece of agent text shown on one line, in characters.
const FIELD_MAX_CHARS: usize = 300;
/// Longest scope key or value shown, in characters.
const SCOPE_MAX_CHARS: usize = 100;
/// Most scope lines shown; the rest are summarised. With the caps above a message stays well
/// under Telegram's 4096-character limit whatever the agent sends.
const SCOPE_MAX_LINES: usize = 15;

/// A button's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Approve,
    Deny,
}

/// Escapes text for Telegram's HTML parse mode.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts untrusted text to `max` characters (before escaping, so no entity is split).
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Escaped, cut agent text.
fn field(s: &str) -> String {
    escape(&cut(s, FIELD_MAX_CHARS))
}

/// `2026-05-28 07:05:00 UTC`.
pub fn when(t: Timestamp) -> String {
    let s = t.rfc3339();
    match (s.get(..10), s.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => s,
    }
}

/// `4 min 59 s`, `1 h 2 min`, `12 s`.
pub fn duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) if s == 0 => format!("{m} min"),
        (0, _) => format!("{m} min {s} s"),
        _ => format!("{h} h {m} min"),
    }
}

/// The lines describing a request, shared by the approval message and its outcome.
fn details(v: &PermissionView) -> String {
    let mut out = format!(
        "Agent: <b>{}</b>\nAction: <code>{}</code>\n",
        field(&v.agent_name),
        field(&v.action)
    );
    if let Some(resource) = &v.resource {
        out.push_str(&format!("Resource: <code>{}</code>\n", field(resource)));
    }
    if let Some(Value::String(reason)) = v.context.get("reason") {
        out.push_str(&format!("Reason: <i>{}</i>\n", field(reason)));
    }
    if !v.scope.is_empty() {
        out.push_str("Scope:\n");
        for (key, value) in v.scope.iter().take(SCOPE_MAX_LINES) {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let (key, value) = (cut(key, SCOPE_MAX_CHARS), cut(&value, SCOPE_MAX_CHARS));
            out.push_str(&format!("• {}: {}\n", escape(&key), escape(&value)));
        }
        if v.scope.len() > SCOPE_MAX_LINES {
            let more = v.scope.len() - SCOPE_MAX_LINES;
            out.push_str(&format!("• … and {more} more (see the web page)\n"));
        }
    }
    if let Some(rule) = &v.rule {
        out.push_str(&format!("Rule: {}\n", field(rule)));
    }
    out
}

/// The message asking an approver to decide, with a link to the request's page if given.
pub fn approval_text(v: &PermissionView, now: Timestamp, link: Option<&str>) -> String {
    let mut out = String::from("🔐 <b>Approval needed</b>\n\n");
    out.push_str(&details(v));
    out.push_str(&format!(
        "\nTime left: {} (until {})\n",
        duration(now.secs_until(v.expires_at)),
        when(v.expires_at)
    ));
    if let Some(link) = link {
        out.push_str(&format!(
            "\n<a href=\"{}\">Open in the browser</a> (link for you only; do not forward)",
            escape(link)
        ));
    }
    out
}

/// The same message once the request left `pending`: the outcome, who and when; no link.
pub fn outcome_text(v: &PermissionView, who: &str) -> String {
    let at = when(v.decided_at.unwrap_or(v.expires_at));
    let who = field(who);
    let head = match v.status {
        Status::Approved | Status::Used => format!("✅ <b>Approved</b> by {who} at {at}"),
        Status::Denied => format!("❌ <b>Denied</b> by {who} at {at}"),
        Status::Revoked => format!("🚫 <b>Revoked</b> by {who} at {at}"),
        Status::Expired => format!("⌛ <b>Expired</b> at {at}, nobody decided"),
        Status::Pending => "🔐 <b>Approval needed</b>".to_owned(),
    };
    format!("{head}\n\n{}", details(v))
}

/// A short line for the presser after a button press.
pub fn answer_for(status: Status) -> &'static str {
    match status {
        Status::Approved | Status::Used => "Approved ✅",
        Status::Denied => "Denied ❌",
        Status::Expired => "This request has expired.",
        Status::Revoked => "This request was revoked.",
        Status::Pending => "Still pending.",
    }
}

/// Approve and Deny buttons for one request.
pub fn keyboard(request_id: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("✅ Approve", format!("a:{request_id}")),
        InlineKeyboardButton::callback("❌ Deny", format!("d:{request_id}")),
    ]])
}

/// Reads a button's data back: the choice and the request id.
pub fn parse_callback(data: &str) -> Option<(Choice, &str)> {
    let (choice, id) = data.split_once(':')?;
    let choice = match choice {
        "a" => Choice::Approve,
        "d" => Choice::Deny,
        _ => return None,
    };
    (!id.is_empty() && id.len() <= 64).then_some((choice, id))
}

/// The help, with linking instructions for someone not linked yet.
pub fn help(linked: bool) -> String {
    let mut out = String::from(
        "<b>agent-otp</b> asks you here before an AI agent does something sensitive.\n\n\
         /pending – requests waiting for your decision, with buttons\n\
         /login – a one-time link to log in to the web interface\n\
         /help – this help\n",
    );
    if !linked {
        out.push_str(
            "\nThis chat is not linked yet. Ask the operator to run \
             <code>agent-otp telegram link</code> and send me <code>/start CODE</code>.",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AgentId, RequestId};
    use serde_json::{Map, json};

    fn view(status: Status) -> PermissionView {
        let obj = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        PermissionView {
            id: RequestId("r1".into()),
            status,
            agent_id: AgentId("a1".into()),
            agent_name: "<b>mailer</b>".into(),
            action: "mail.send & more".into(),
            resource: Some("a\"b".into()),
            scope: obj(json!({"max_emails": 1, "to": "<x@y>"})),
            requested_scope: Map::new(),
            context: obj(json!({"reason": "pay & <go>"})),
            reason: None,
            rule: Some("ask".into()),
            policy_version: "v".into(),
            decided_by: Some("human:alice".into()),
            decided_at: Some(Timestamp(1_780_000_100_000)),
            expires_at: Timestamp(1_780_000_300_000),
            created_at: Timestamp(1_780_000_000_000),
            ttl: 300,
            uses_remaining: 1,
            token_issued: false,
            action_details: None,
            require_action_details: false,
            token: None,
        }
    }

    #[test]
    fn agent_text_is_escaped_everywhere() {
        let t = approval_text(
            &view(Status::Pending),
            Timestamp(1_780_000_000_000),
            Some("https://x/login/ll_1?a&b"),
        );
        assert!(t.contains("Agent: <b>&lt;b&gt;mailer&lt;/b&gt;</b>"), "{t}");
        assert!(t.contains("<code>mail.send &amp; more</code>"), "{t}");
        assert!(t.contains("<code>a&quot;b</code>"), "{t}");
        assert!(t.contains("Reason: <i>pay &amp; &lt;go&gt;</i>"), "{t}");
        assert!(t.contains("• to: &lt;x@y&gt;"), "{t}");
        assert!(t.contains("• max_emails: 1"), "{t}");
        assert!(t.contains("Time left: 5 min (until 2026-05-28"), "{t}");
        assert!(t.contains("href=\"https://x/login/ll_1?a&amp;b\""), "{t}");
        assert!(!t.contains("<b><b>"));
    }

    #[test]
    fn outcome_names_who_and_when_without_link() {
        let t = outcome_text(&view(Status::Denied), "alice");
        assert!(
            t.starts_with("❌ <b>Denied</b> by alice at 2026-05-28 "),
            "{t}"
        );
        assert!(!t.contains("href"));
        let t = outcome_text(&view(Status::Expired), "timeout");
        assert!(t.starts_with("⌛ <b>Expired</b>"), "{t}");
    }

    #[test]
    fn long_text_is_cut_and_callbacks_round_trip() {
        let long = "é".repeat(1000);
        assert_eq!(cut(&long, 300).chars().count(), 301);
        let mut v = view(Status::Pending);
        v.action = "<".repeat(5000);
        v.resource = Some("&".repeat(5000));
        v.context
            .insert("reason".into(), Value::String("x".repeat(5000)));
        for i in 0..100 {
            v.scope.insert(
                format!("{i}{}", "k".repeat(500)),
                Value::String("v".repeat(5000)),
            );
        }
        let t = approval_text(
            &v,
            Timestamp(0),
            Some("https://x.example/login/ll_0123456789"),
        );
        let visible = t.replace("&lt;", "<").replace("&amp;", "&");
        assert!(
            visible.chars().count() < 4096,
            "{} chars",
            visible.chars().count()
        );
        assert_eq!(duration(3725), "1 h 2 min");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(299), "4 min 59 s");
        assert_eq!(parse_callback("a:r1"), Some((Choice::Approve, "r1")));
        assert_eq!(parse_callback("d:r1"), Some((Choice::Deny, "r1")));
        assert_eq!(parse_callback("x:r1"), None);
        assert_eq!(parse_callback("a:"), None);
        assert_eq!(parse_callback("nonsense"), None);
    }
}
