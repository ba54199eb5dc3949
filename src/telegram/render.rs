//! What the bot writes: approval messages, their outcome after a decision, the buttons, and the
//! help. Pure functions over a [`PermissionView`].
//!
//! A message shows the whole request or offers no Approve button. Agent text is shown with its
//! hidden characters as visible markers and long runs of spaces counted, HTML-escaped (Telegram's
//! HTML parse mode), set in `<code>`, and wrapped in a Unicode isolate unless plain ASCII. It
//! never starts a line: each line begins with our own label or bullet, so nothing an agent writes
//! can pass for a line of ours or reorder what follows it. Every scope
//! entry is shown whole, a list one item per line, what agent-otp enforces apart from what it
//! passes on to the service. When that does not fit in one Telegram message the message says so,
//! shows the lines that fit as a partial view and offers only Deny and the link to the web page;
//! [`shows_in_full`] is also what the press handler checks before it approves.

use crate::wire::permissions::PermissionView;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::clock::Timestamp;
use crate::domain::Status;
use crate::shown::{self, Entry, Piece};
use crate::text::with_markers;

/// Most text in one message, in UTF-16 units after Telegram parses the HTML (its limit is 4096).
const MESSAGE_MAX: usize = 3900;
/// What the request's details may take in a message whose Approve button is offered: the rest
/// is for the heading, the time left and the link, which are ours and short.
const DETAILS_MAX: usize = MESSAGE_MAX - 500;

/// A button's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// First tap on Approve (a `confirm: true` rule then asks again).
    Approve,
    /// "Yes, approve": the second tap for a rule that asks for confirmation.
    Confirm,
    /// Deny: asks for an optional reason first.
    Deny,
    /// "Deny without a reason".
    DenyNow,
    /// Back to Approve / Deny.
    Cancel,
}

/// A message asking an approver to decide, with the buttons it may offer.
pub(crate) struct Approval {
    pub text: String,
    pub keyboard: InlineKeyboardMarkup,
}

/// Escapes text for Telegram's HTML parse mode.
pub(crate) fn escape(s: &str) -> String {
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

/// Agent text (already marked, long runs of spaces counted: [`with_markers`]) as it goes into a
/// message: escaped, and isolated (FSI … PDI) unless plain ASCII, which cannot change the
/// direction of what follows.
fn isolated(marked: &str) -> String {
    let text = escape(marked);
    if text.is_ascii() {
        text
    } else {
        format!("\u{2068}{text}\u{2069}")
    }
}

/// Agent text, marked and isolated, in `<code>`.
fn code(s: &str) -> String {
    format!("<code>{}</code>", isolated(&with_markers(s)))
}

/// Text shown without `<code>` (keys, names, rule names, who decided): marked, escaped, isolated.
fn plain(s: &str) -> String {
    isolated(&with_markers(s))
}

/// How many characters Telegram counts in `html` once parsed: tags are not text, an entity is
/// one character, and length is in UTF-16 units.
pub fn visible_len(html: &str) -> usize {
    let (mut n, mut in_tag, mut in_entity) = (0, false, false);
    for c in html.chars() {
        match c {
            '<' if !in_entity => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            '&' => {
                in_entity = true;
                n += 1;
            }
            ';' if in_entity => in_entity = false,
            _ if in_entity => {}
            c => n += c.len_utf16(),
        }
    }
    n
}

/// The audit checkpoint message: what `audit verify` must find, and its signature.
pub(crate) fn checkpoint_text(c: &crate::audit::checkpoint::Checkpoint) -> String {
    format!(
        "🧾 <b>Audit checkpoint</b>\n\nAt {}, the audit trail had {} events.\nHead: <code>{}</code>\nSignature: <code>{}</code>\n\nKeep this message: <code>agent-otp audit verify --expect-head {}</code> proves no event up to it was removed or changed.",
        when(Timestamp(c.at)),
        c.seq,
        escape(&c.head),
        escape(&c.mac),
        escape(&c.head)
    )
}

/// `2026-05-28 07:05:00 UTC`.
pub(crate) fn when(t: Timestamp) -> String {
    let s = t.rfc3339();
    match (s.get(..10), s.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => s,
    }
}

/// `4 min 59 s`, `1 h 2 min`, `12 s`.
pub(crate) fn duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) if s == 0 => format!("{m} min"),
        (0, _) => format!("{m} min {s} s"),
        _ => format!("{h} h {m} min"),
    }
}

/// One scope or context entry: `• key: value`, or the key and one list item per line.
fn entry_lines(e: &Entry, out: &mut Vec<String>) {
    let what = e.enforced.map(|m| format!(" {m}")).unwrap_or_default();
    let key = plain(&e.key);
    match (e.list, e.values.as_slice()) {
        (false, [one]) => out.push(format!("• {key}{what}: {}", code(one))),
        (_, []) => out.push(format!("• {key}{what}: (empty list)")),
        (_, items) => {
            let n = items.len();
            let s = if n == 1 { "" } else { "s" };
            out.push(format!("• {key}{what} ({n} item{s}):"));
            out.extend(items.iter().map(|i| format!("    ◦ {}", code(i))));
        }
    }
}

/// Most entries of one list shown in the summary sentence; all of them are in the scope below.
const SUMMARY_ITEMS_MAX: usize = 5;

/// A piece of the summary as Telegram HTML: our words escaped, agent text isolated.
fn piece(p: &Piece) -> String {
    match (p.agent, p.code) {
        (_, true) => code(&p.text),
        (true, false) => plain(&p.text),
        (false, false) => escape(&p.text),
    }
}

/// The summary sentence ([`shown::summary`], as on the web page), after one line per warning
/// (first, as there, so that no amount of agent text pushes them down): its first line starts
/// "📝 In short:", a list of more than one entry follows one entry per line, and the sentence
/// goes on after it on a line of its own starting "↳".
fn summary_lines(v: &PermissionView) -> Vec<String> {
    let s = shown::summary(v);
    let mut line = format!(
        "📝 <b>In short:</b> {} {} <b>{}</b>",
        plain(&s.who),
        s.verb,
        s.what.iter().map(piece).collect::<String>()
    );
    let mut out: Vec<String> = s
        .warnings
        .iter()
        .map(|w| format!("⚠️ {}", plain(w)))
        .collect();
    for c in &s.clauses {
        line.push_str(if line.is_empty() { "↳ " } else { c.lead });
        line.push_str(&c.words.iter().map(piece).collect::<String>());
        if c.one_per_line() {
            out.push(std::mem::take(&mut line));
            for p in c.items.iter().take(SUMMARY_ITEMS_MAX) {
                out.push(format!("    ◦ {}", code(&p.text)));
            }
            if c.items.len() > SUMMARY_ITEMS_MAX {
                out.push(format!(
                    "    ◦ … and {} more (all listed below)",
                    c.items.len() - SUMMARY_ITEMS_MAX
                ));
            }
        } else {
            for p in &c.items {
                line.push(' ');
                line.push_str(&piece(p));
            }
        }
    }
    if let Some(r) = &s.reason {
        line.push_str(if line.is_empty() { "↳ " } else { " " });
        line.push_str(&format!("— reason (stated by the agent): {}", code(r)));
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// The lines describing a request, shared by the approval message and its outcome.
fn detail_lines(v: &PermissionView) -> Vec<String> {
    let mut out = summary_lines(v);
    out.push(String::new());
    out.extend([
        format!("Agent: <b>{}</b>", plain(&v.agent_name)),
        format!("Action: {}", code(&v.action)),
    ]);
    if let Some(resource) = &v.resource {
        out.push(format!("Resource: {}", code(resource)));
    }
    if let Some(reason) = shown::reason(&v.context) {
        out.push(format!("Reason: {}", code(&reason)));
    }
    let uses = v.uses_remaining;
    out.push(format!(
        "Token: valid {}, {uses} use{}",
        duration(v.ttl),
        if uses == 1 { "" } else { "s" }
    ));
    if let Some(rule) = &v.rule {
        out.push(format!("Rule: {}", plain(rule)));
    }
    let entries = shown::scope(&v.scope);
    let (enforced, passed): (Vec<_>, Vec<_>) = entries.iter().partition(|e| e.enforced.is_some());
    if entries.is_empty() {
        out.push("Scope: none (no constraint on this action)".to_owned());
    }
    if !enforced.is_empty() {
        out.push("<b>agent-otp enforces:</b>".to_owned());
        enforced.iter().for_each(|e| entry_lines(e, &mut out));
    }
    if !passed.is_empty() {
        out.push("<b>Passed on to the service (not checked here):</b>".to_owned());
        passed.iter().for_each(|e| entry_lines(e, &mut out));
    }
    if let Some(details) = &v.action_details {
        out.push("<b>Exact details (the token works for these only):</b>".to_owned());
        shown::context(details, &[])
            .iter()
            .for_each(|e| entry_lines(e, &mut out));
    }
    let context = shown::context(&v.context, shown::context_skip(&v.context));
    if !context.is_empty() {
        out.push("<b>Context:</b>".to_owned());
        context.iter().for_each(|e| entry_lines(e, &mut out));
    }
    out
}

/// Placeholder for lines left out of a partial view.
const LEFT_OUT: &str = "✂️ …";

/// The `lines` that fit in `budget` visible characters (one more each for its line break), in
/// order; each run of lines that do not fit leaves a [`LEFT_OUT`] line. Also how many were left out.
fn fitting(lines: &[String], budget: usize) -> (String, usize) {
    let placeholder = visible_len(LEFT_OUT) + 1;
    let (mut text, mut used, mut left, mut gap) = (String::new(), 0, 0, false);
    for line in lines {
        let cost = visible_len(line) + 1;
        // Room is kept for one more placeholder after this line.
        if used + cost + placeholder <= budget {
            used += cost;
            text.push_str(line);
            text.push('\n');
            gap = false;
        } else {
            left += 1;
            if !gap {
                used += placeholder;
                text.push_str(LEFT_OUT);
                text.push('\n');
                gap = true;
            }
        }
    }
    (text, left)
}

/// Whether the request fits in one message in full, so that it may be approved from Telegram.
pub(crate) fn shows_in_full(v: &PermissionView) -> bool {
    whole(&detail_lines(v))
}

/// Whether all of these detail lines fit beside the heading, time left and link.
fn whole(lines: &[String]) -> bool {
    fitting(lines, DETAILS_MAX).1 == 0
}

/// The lines that fit in what is left of a message after `frame`, marked as partial.
fn partial(lines: &[String], frame: &str) -> String {
    const CUT_NOTE: usize = 80;
    let budget = MESSAGE_MAX.saturating_sub(visible_len(frame) + CUT_NOTE);
    let (mut text, left) = fitting(lines, budget);
    text.push_str(&format!(
        "✂️ <b>{left} line{} not shown here.</b> The web page shows all of it.\n",
        if left == 1 { "" } else { "s" }
    ));
    text
}

/// The message asking an approver to decide, with a link to the request's page if given.
pub(crate) fn approval(v: &PermissionView, now: Timestamp, link: Option<&str>) -> Approval {
    let lines = detail_lines(v);
    let complete = whole(&lines);
    let mut tail = format!(
        "\nTime left: {} (until {})\n",
        duration(now.secs_until(v.expires_at)),
        when(v.expires_at)
    );
    if let Some(link) = link {
        tail.push_str(&format!(
            "\n<a href=\"{}\">Open in the browser</a> (link for you only; do not forward)",
            escape(link)
        ));
    }
    let id = v.id.as_str();
    if complete {
        return Approval {
            text: format!(
                "🔐 <b>Approval needed</b>\n\n{}{tail}",
                lines.join("\n") + "\n"
            ),
            keyboard: keyboard(id),
        };
    }
    let head = "🔐 <b>Approval needed — too long to show here</b>\n\n\
        This request is too long to show in full in Telegram, so it cannot be approved here: \
        open it in the browser to see all of it and decide. Here you can only deny it.\n\n\
        <b>Partial view</b> (what fits here):\n";
    let shown = partial(&lines, &format!("{head}{tail}"));
    Approval {
        text: format!("{head}{shown}{tail}"),
        keyboard: deny_only(id),
    }
}

/// The same message once the request left `pending`: the outcome, who and when; no link.
pub(crate) fn outcome_text(v: &PermissionView, who: &str) -> String {
    let at = when(v.decided_at.unwrap_or(v.expires_at));
    let who = plain(who);
    let head = match v.status {
        Status::Approved | Status::Used => format!("✅ <b>Approved</b> by {who} at {at}"),
        Status::Denied => format!("❌ <b>Denied</b> by {who} at {at}"),
        Status::Revoked => format!("🚫 <b>Revoked</b> by {who} at {at}"),
        Status::Expired => format!("⌛ <b>Expired</b> at {at}, nobody decided"),
        Status::Pending => "🔐 <b>Approval needed</b>".to_owned(),
    };
    let mut head = format!("{head}\n");
    if let Some(r) = &v.reason {
        let label = if v.status == Status::Denied {
            "Reason"
        } else {
            "Note"
        };
        head.push_str(&format!("{label}: {}\n", code(r)));
    }
    let narrowed = shown::narrowed(&v.requested_scope, &v.scope);
    if !narrowed.is_empty() {
        head.push_str("Narrowed:\n");
        for n in &narrowed {
            head.push_str(&format!("• {}\n", plain(n)));
        }
    }
    head.push('\n');
    let lines = detail_lines(v);
    let (full, left) = fitting(&lines, MESSAGE_MAX - visible_len(&head));
    if left == 0 {
        return format!("{head}{full}");
    }
    format!("{head}<b>Partial view</b>:\n{}", partial(&lines, &head))
}

/// A short line for the presser after a button press.
pub(crate) fn answer_for(status: Status) -> &'static str {
    match status {
        Status::Approved | Status::Used => "Approved ✅",
        Status::Denied => "Denied ❌",
        Status::Expired => "This request has expired.",
        Status::Revoked => "This request was revoked.",
        Status::Pending => "Still pending.",
    }
}

/// Approve and Deny buttons for one request.
pub(crate) fn keyboard(request_id: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("✅ Approve", format!("a:{request_id}")),
        InlineKeyboardButton::callback("❌ Deny", format!("d:{request_id}")),
    ]])
}

/// Longest "Yes, approve …" label, in characters.
const CONFIRM_LABEL_MAX: usize = 60;

/// The second question of a rule that asks for confirmation: "Yes, approve …" or Cancel.
pub(crate) fn confirm_keyboard(v: &PermissionView) -> InlineKeyboardMarkup {
    let id = v.id.as_str();
    // A button label is plain text (no HTML), kept short: a money phrase too long for it is
    // left out whole (the message above says it), never cut to a smaller-looking number.
    let what = shown::summary(v)
        .money
        .map(|m| format!("✅ Yes, approve {m}"))
        .filter(|label| label.chars().count() <= CONFIRM_LABEL_MAX)
        .unwrap_or_else(|| "✅ Yes, approve".to_owned());
    // Cancel takes Approve's place, so the second tap of a double tap on Approve cancels.
    InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("↩️ Cancel", format!("k:{id}")),
        InlineKeyboardButton::callback(what, format!("y:{id}")),
    ]])
}

/// While a reason for Deny is asked: deny without one, or go back.
pub(crate) fn deny_keyboard(request_id: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("❌ Deny without a reason", format!("n:{request_id}")),
        InlineKeyboardButton::callback("↩️ Cancel", format!("k:{request_id}")),
    ]])
}

/// The answer to a first tap on Approve for a rule that asks for confirmation.
pub(crate) const CONFIRM_ASKED: &str =
    "This rule asks for a second confirmation: tap \"Yes, approve\".";
/// The answer to a tap on Deny.
pub(crate) const REASON_ASKED: &str =
    "Reply to my message with a reason for the agent, or tap \"Deny without a reason\".";

/// Where the request id sits in a deny prompt, so the reply to it names its request.
const PROMPT_ID_LABEL: &str = "Request id: ";

/// The message asking for a deny reason; replying to it with text denies with that reason.
pub(crate) fn deny_prompt(v: &PermissionView) -> String {
    format!(
        "❌ <b>Why deny</b> {} wants to <b>{}</b>?\n\
         Reply to this message with a reason for the agent (it is shown to the agent), or tap \
         \"Deny without a reason\" under the request.\n{PROMPT_ID_LABEL}<code>{}</code>",
        plain(&shown::summary(v).who),
        shown::summary(v).what.iter().map(piece).collect::<String>(),
        escape(v.id.as_str())
    )
}

/// The request a deny prompt is for, read back from the prompt's text as Telegram returns it
/// (entities stripped).
pub(crate) fn prompted_request(prompt: &str) -> Option<&str> {
    let id = prompt.lines().last()?.strip_prefix(PROMPT_ID_LABEL)?.trim();
    (!id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then_some(id)
}

/// Only Deny, for a request too long to show (it is approved on the web page).
pub(crate) fn deny_only(request_id: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
        "❌ Deny",
        format!("d:{request_id}"),
    )]])
}

/// The alert for an Approve press on a request too long to show here.
pub(crate) const TOO_LONG_TO_APPROVE: &str = "This request is too long to show in Telegram, so it cannot be approved here. Open it in the browser to see all of it.";

/// Reads a button's data back: the choice and the request id.
pub(crate) fn parse_callback(data: &str) -> Option<(Choice, &str)> {
    let (choice, id) = data.split_once(':')?;
    let choice = match choice {
        "a" => Choice::Approve,
        "y" => Choice::Confirm,
        "d" => Choice::Deny,
        "n" => Choice::DenyNow,
        "k" => Choice::Cancel,
        _ => return None,
    };
    (!id.is_empty() && id.len() <= 64).then_some((choice, id))
}

/// The help, with linking instructions for someone not linked yet.
pub(crate) fn help(linked: bool) -> String {
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

/// How every line the service writes in a message starts: a label, a bullet, a heading. Agent
/// text never starts a line (it is quoted after one of these), which the tests hold every
/// message to.
const LINE_STARTS: &[&str] = &[
    "🔐 <b>Approval needed",
    "Agent: <b>",
    "Action: <code>",
    "Resource: <code>",
    "Reason: <code>",
    "Token: valid ",
    "Rule: ",
    "Scope: none",
    "<b>agent-otp enforces:</b>",
    "<b>Passed on to the service (not checked here):</b>",
    "<b>Context:</b>",
    "<b>Exact details (the token works for these only):</b>",
    "• ",
    "    ◦ <code>",
    "Time left: ",
    "📝 <b>In short:</b> ",
    "    ◦ … and ",
    "↳ ",
    "⚠️ ",
    "Note: <code>",
    "Narrowed:",
    "<a href=",
    "This request is too long",
    "<b>Partial view</b>",
    "✂️ ",
    "✅ <b>Approved",
    "❌ <b>Denied",
];

/// The first non-empty line of `text` that does not start as one of ours, if any.
pub fn first_line_not_ours(text: &str) -> Option<&str> {
    text.lines()
        .filter(|l| !l.is_empty())
        .find(|l| !LINE_STARTS.iter().any(|o| l.starts_with(o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the message has an Approve button (a partial one has Deny and the web link only).
    fn offers_approve(a: &Approval) -> bool {
        a.keyboard.inline_keyboard.iter().flatten().any(|b| {
            matches!(&b.kind, teloxide::types::InlineKeyboardButtonKind::CallbackData(d) if d.starts_with("a:"))
        })
    }
    use crate::domain::{AgentId, RequestId};
    use serde_json::{Map, Value, json};

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn view(status: Status) -> PermissionView {
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

    fn buttons(k: &InlineKeyboardMarkup) -> Vec<String> {
        k.inline_keyboard
            .iter()
            .flatten()
            .map(|b| b.text.clone())
            .collect()
    }

    /// Every line of `text` starts with one of ours: a label, a bullet, a heading, or nothing.
    fn assert_lines_are_ours(text: &str) {
        if let Some(line) = first_line_not_ours(text) {
            panic!("a line not of ours: {line:?} in\n{text}");
        }
    }

    #[test]
    fn agent_text_is_escaped_everywhere() {
        let a = approval(
            &view(Status::Pending),
            Timestamp(1_780_000_000_000),
            Some("https://x/login/ll_1?a&b"),
        );
        let t = &a.text;
        assert!(offers_approve(&a));
        assert!(t.contains("Agent: <b>&lt;b&gt;mailer&lt;/b&gt;</b>"), "{t}");
        assert!(
            t.contains("Action: <code>mail.send &amp; more</code>"),
            "{t}"
        );
        assert!(t.contains("Resource: <code>a&quot;b</code>"), "{t}");
        assert!(
            t.contains("Reason: <code>pay &amp; &lt;go&gt;</code>"),
            "{t}"
        );
        assert!(
            t.contains("<b>agent-otp enforces:</b>\n• max_emails at most: <code>1</code>\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "<b>Passed on to the service (not checked here):</b>\n• to: <code>&lt;x@y&gt;</code>\n"
            ),
            "{t}"
        );
        assert!(t.contains("Token: valid 5 min, 1 use\n"), "{t}");
        assert!(t.contains("Time left: 5 min (until 2026-05-28"), "{t}");
        assert!(t.contains("href=\"https://x/login/ll_1?a&amp;b\""), "{t}");
        assert!(!t.contains("<b><b>"));
        assert_eq!(buttons(&a.keyboard), ["✅ Approve", "❌ Deny"]);
        assert_lines_are_ours(t);
    }

    #[test]
    fn warnings_come_before_the_sentence_whatever_its_length() {
        let mut v = view(Status::Pending);
        v.action = "payment.transfer".into();
        v.scope = obj(json!({"max_amount": 100, "note": "long text ".repeat(300)}));
        v.action_details = Some(obj(json!({"amount": 500})));
        let t = approval(&v, Timestamp(1_780_000_000_000), None).text;
        let warning = t.find("⚠️ This request cannot be used as asked").expect(&t);
        let sentence = t.find("📝 <b>In short:</b>").expect(&t);
        assert!(warning < sentence, "{t}");
        assert_lines_are_ours(&t);
    }

    #[test]
    fn hidden_characters_and_newlines_cannot_start_a_line_or_reorder() {
        let mut v = view(Status::Pending);
        v.action = "gmail.send\nResource: harmless.txt\n".into();
        v.resource = Some("evil\u{202E}txt.exe".into());
        v.context = obj(json!({
            "reason": "monthly\n\nAction: nothing",
            "note\u{200B}": "a\u{2066}b",
            "ticket": "x                                        Rule: safe",
        }));
        v.scope = obj(json!({"allowed_recipients": ["a@x\n• max_amount at most: 1", "שלום 100"]}));
        let t = approval(&v, Timestamp(1_780_000_000_000), None).text;
        assert!(
            t.contains("Action: <code>gmail.send[U+000A]Resource: harmless.txt[U+000A]</code>"),
            "{t}"
        );
        assert!(
            t.contains("Resource: <code>evil[U+202E]txt.exe</code>"),
            "{t}"
        );
        assert!(
            t.contains("Reason: <code>monthly[U+000A][U+000A]Action: nothing</code>"),
            "{t}"
        );
        assert!(t.contains("• note[U+200B]: <code>a[U+2066]b</code>"), "{t}");
        assert!(t.contains("<code>x [40 spaces] Rule: safe</code>"), "{t}");
        assert!(
            t.contains("    ◦ <code>\u{2068}a@x[U+000A]• max_amount at most: 1\u{2069}</code>"),
            "{t}"
        );
        // Right-to-left text is isolated, so it cannot reorder what follows it.
        assert!(
            t.contains("    ◦ <code>\u{2068}שלום 100\u{2069}</code>"),
            "{t}"
        );
        assert_eq!(t.matches('\u{202E}').count(), 0, "{t}");
        assert_eq!(
            t.lines().filter(|l| l.starts_with("Resource: ")).count(),
            1,
            "one line of ours; the forged one stays quoted (in the summary and the action)"
        );
        assert_lines_are_ours(&t);
    }

    #[test]
    fn exact_details_are_shown_whole() {
        let mut v = view(Status::Pending);
        v.action_details = Some(obj(json!({"to": ["a@x", "b@x"], "amount": 40})));
        let t = approval(&v, Timestamp(0), None).text;
        assert!(
            t.contains(
                "<b>Exact details (the token works for these only):</b>\n\
                 • to (2 items):\n    ◦ <code>a@x</code>\n    ◦ <code>b@x</code>\n\
                 • amount: <code>40</code>\n"
            ),
            "{t}"
        );
        assert_lines_are_ours(&t);
    }

    #[test]
    fn every_list_entry_is_shown_one_per_line() {
        let mut v = view(Status::Pending);
        let people: Vec<String> = (0..40).map(|i| format!("person{i}@example.com")).collect();
        v.scope = obj(json!({
            "allowed_recipients": people,
            "max_amount": 100,
            "limits": {"max_per_day": 3},
            "blocked_paths": [],
            "long": "z".repeat(500),
        }));
        let a = approval(&v, Timestamp(0), None);
        assert!(offers_approve(&a));
        let t = &a.text;
        assert!(
            t.contains("• allowed_recipients only these (40 items):\n    ◦ <code>person0@example.com</code>\n"),
            "{t}"
        );
        for p in &people {
            assert!(t.contains(&format!("    ◦ <code>{p}</code>\n")), "{p}");
        }
        assert!(
            t.contains("• blocked_paths never these: (empty list)"),
            "{t}"
        );
        // Nested: enforced against the same object of the details, so shown as enforced.
        let passed = t.find("Passed on to the service").unwrap();
        let nested = t.find("• limits.max_per_day at most: <code>3</code>");
        assert!(nested.is_some_and(|at| at < passed), "{t}");
        assert!(t.contains(&format!("• long: <code>{}</code>", "z".repeat(500))));
        assert_lines_are_ours(t);
    }

    #[test]
    fn a_request_too_long_to_show_offers_only_deny() {
        let mut v = view(Status::Pending);
        let people: Vec<String> = (0..200).map(|i| format!("person{i}@example.com")).collect();
        v.scope = obj(json!({"allowed_recipients": people}));
        assert!(!shows_in_full(&v));
        let a = approval(
            &v,
            Timestamp(0),
            Some("https://x.example/login/ll_0123456789"),
        );
        assert!(!offers_approve(&a));
        assert_eq!(buttons(&a.keyboard), ["❌ Deny"]);
        let t = &a.text;
        assert!(
            t.starts_with("🔐 <b>Approval needed — too long to show here</b>"),
            "{t}"
        );
        assert!(t.contains("cannot be approved here"), "{t}");
        assert!(t.contains("<b>Partial view</b>"), "{t}");
        assert!(t.contains("lines not shown here"), "{t}");
        assert!(t.contains("Open in the browser"), "{t}");
        assert!(t.contains("    ◦ <code>person0@example.com</code>"), "{t}");
        assert!(!t.contains("person199@"), "{t}");
        assert!(visible_len(t) <= MESSAGE_MAX, "{}", visible_len(t));
        assert_lines_are_ours(t);

        // The outcome of a long request fits too, marked as partial.
        v.status = Status::Denied;
        let t = outcome_text(&v, "alice");
        assert!(t.starts_with("❌ <b>Denied</b> by alice"), "{t}");
        assert!(
            t.contains("<b>Partial view</b>") && t.contains("not shown here"),
            "{t}"
        );
        assert!(visible_len(&t) <= MESSAGE_MAX, "{}", visible_len(&t));
        assert_lines_are_ours(&t);

        // A single huge value is not cut: the request is too long, the message partial.
        let mut v = view(Status::Pending);
        v.context = obj(json!({"reason": "é".repeat(5000)}));
        let a = approval(&v, Timestamp(0), None);
        assert!(
            !offers_approve(&a) && !a.text.contains("Reason:"),
            "{}",
            a.text
        );
        assert!(a.text.contains("Token: valid"), "{}", a.text);
    }

    #[test]
    fn visible_length_counts_as_telegram_does() {
        assert_eq!(visible_len("<b>a&amp;b</b>"), 3);
        assert_eq!(visible_len("<a href=\"https://x/?a&amp;b\">link</a>"), 4);
        assert_eq!(visible_len("😀é"), 3);
    }

    #[test]
    fn outcome_names_who_and_when_without_link() {
        let t = outcome_text(&view(Status::Denied), "alice");
        assert!(
            t.starts_with("❌ <b>Denied</b> by alice at 2026-05-28 "),
            "{t}"
        );
        assert!(!t.contains("href") && !t.contains("Partial"), "{t}");
        assert!(
            t.contains("Action: <code>mail.send &amp; more</code>"),
            "{t}"
        );
        let t = outcome_text(&view(Status::Expired), "timeout");
        assert!(t.starts_with("⌛ <b>Expired</b>"), "{t}");
    }

    #[test]
    fn durations_and_callbacks_round_trip() {
        assert_eq!(duration(3725), "1 h 2 min");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(299), "4 min 59 s");
        assert_eq!(parse_callback("a:r1"), Some((Choice::Approve, "r1")));
        assert_eq!(parse_callback("d:r1"), Some((Choice::Deny, "r1")));
        assert_eq!(parse_callback("x:r1"), None);
        assert_eq!(parse_callback("a:"), None);
        assert_eq!(parse_callback("nonsense"), None);
        assert_eq!(buttons(&deny_only("r1")), ["❌ Deny"]);
    }

    /// An attacker pass: a money phrase longer than a button was cut mid-number ("… and
    /// 18446744", about 18 million, no currency). It is left out whole instead.
    #[test]
    fn a_confirm_button_never_cuts_the_money_short() {
        let mut v = view(Status::Pending);
        v.scope = obj(json!({"max_amount": 250, "allowed_currency": ["EUR"]}));
        assert_eq!(
            buttons(&confirm_keyboard(&v)),
            ["↩️ Cancel", "✅ Yes, approve up to 250 EUR"]
        );
        v.scope = obj(json!({"max_amount": 18_446_744_073_709_551_615_u64,
                             "min_amount": -1.234_567_890_123_456_7e-100,
                             "allowed_currency": ["EUR"]}));
        assert_eq!(
            buttons(&confirm_keyboard(&v)),
            ["↩️ Cancel", "✅ Yes, approve"]
        );
    }
}
