//! What the templates show: requests, scopes and times turned into plain text. Everything here is
//! text; the templates escape it (agent-supplied text is never marked safe) and isolate it
//! (`<bdi>`). Agent text comes with its hidden characters as visible markers, and a scope in the
//! two groups of [`Scope`], both from [`crate::shown`], as every channel shows them.

use crate::wire::permissions::PermissionView;
use serde_json::{Map, Value};

use super::form;
use crate::clock::Timestamp;
use crate::domain::Status;
use crate::shown::{self, Entry};
use crate::text::with_markers;

/// The logged-in human, for the navigation bar and the logout form.
pub(super) struct Me {
    pub name: String,
    pub csrf: String,
}

impl From<&super::auth::Human> for Me {
    fn from(h: &super::auth::Human) -> Me {
        Me {
            name: h.name.clone(),
            csrf: h.csrf.clone(),
        }
    }
}

/// One request in a list.
pub(super) struct Card {
    pub id: String,
    pub agent: String,
    pub action: String,
    pub resource: Option<String>,
    pub reason: Option<String>,
    pub status: &'static str,
    /// "4 min 10 s left", or when it was decided.
    pub when: String,
    /// Seconds left while pending (the page counts down from this).
    pub expires_in: i64,
    /// The capped amount with its currency, "250 EUR", as the summary says it.
    pub money: Option<String>,
    /// The pending request that expires first in its list.
    pub soonest: bool,
    /// Who decided, as they are called (filled in by lists that show it).
    pub by: Option<String>,
    /// The note or deny reason given with the decision, with markers.
    pub why: Option<String>,
}

impl Card {
    pub(super) fn new(v: &PermissionView, now: Timestamp) -> Card {
        let decided = v.decided_at.map(short_time);
        let when = match (v.status, decided) {
            (Status::Pending, _) => time_left(now, v.expires_at),
            (Status::Expired, _) => format!("expired {}", short_time(v.expires_at)),
            (Status::Used, Some(t)) => format!("used up · approved {t}"),
            (Status::Revoked, Some(t)) => format!("revoked · decided {t}"),
            (s, Some(t)) => format!("{s} {t}"),
            (s, None) => format!("{s} · asked {}", short_time(v.created_at)),
        };
        Card {
            id: v.id.to_string(),
            agent: with_markers(&v.agent_name).into_owned(),
            action: with_markers(&v.action).into_owned(),
            resource: v.resource.as_deref().map(|r| with_markers(r).into_owned()),
            reason: shown::reason(&v.context),
            status: v.status.as_str(),
            when,
            expires_in: now.secs_until(v.expires_at),
            money: shown::summary(v).money,
            soonest: false,
            by: None,
            why: v.reason.as_deref().map(|r| with_markers(r).into_owned()),
        }
    }
}

/// A scope as the approval page shows it: what agent-otp enforces, apart from what it only
/// passes on to the protected service.
pub(super) struct Scope {
    pub enforced: Vec<Entry>,
    pub passed_on: Vec<Entry>,
}

impl Scope {
    pub(super) fn new(scope: &Map<String, Value>) -> Scope {
        let (enforced, passed_on) = shown::scope(scope)
            .into_iter()
            .partition(|e| e.enforced.is_some());
        Scope {
            enforced,
            passed_on,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.enforced.is_empty() && self.passed_on.is_empty()
    }
}

/// The context's entries but the stated reason (shown on its own).
pub(super) fn context(context: &Map<String, Value>) -> Vec<Entry> {
    shown::context(context, shown::context_skip(context))
}

/// One narrowing control on the approval page.
pub(super) struct Edit {
    /// The scope key, with markers (the form field names use the key as it is).
    pub key: String,
    /// The scope key as it is, for the `has:` field of lists and flags.
    pub raw_key: String,
    /// `number`, `list` or `flag`.
    pub kind: &'static str,
    pub field: String,
    /// For numbers: the value in the field (the request's to begin with).
    pub value: String,
    /// For numbers: the most it may be (what the request has).
    pub max: String,
    pub step: &'static str,
    /// For lists: `(index, text, ticked)` of each entry, all ticked to begin with.
    pub items: Vec<(usize, String, bool)>,
    /// For flags: whether it is still ticked.
    pub checked: bool,
    pub hint: &'static str,
    /// Why the server refused this field, after a refused approval.
    pub problem: Option<String>,
}

impl Edit {
    /// The field as the human last sent it, so a refused approval keeps their edits.
    pub(super) fn keep(&mut self, form: &form::Form) {
        match self.kind {
            "number" => {
                if let Some(v) = form.text(&self.field) {
                    self.value = v;
                }
            }
            "list" | "flag" if form.get(&format!("has:{}", self.raw_key)).is_some() => {
                let ticked: Vec<&str> = form.all(&self.field).collect();
                for (i, _, on) in &mut self.items {
                    *on = ticked.contains(&i.to_string().as_str());
                }
                self.checked = !ticked.is_empty();
            }
            _ => {}
        }
    }
}

/// What a scope key means under the conventions the service enforces (empty: passed on).
fn hint(key: &str) -> &'static str {
    crate::scope::meaning(key).unwrap_or("")
}

/// The narrowing controls for a pending request's scope: numbers can go down, list entries can
/// be dropped, a `true` can become `false`. Blocked lists and text are shown, not edited.
pub(super) fn edits(scope: &Map<String, Value>) -> Vec<Edit> {
    let mut out = Vec::new();
    for (key, v) in scope {
        // The page's one "uses" control stands for it.
        if key == "max_uses" {
            continue;
        }
        let base = Edit {
            key: with_markers(key).into_owned(),
            raw_key: key.clone(),
            kind: "",
            field: String::new(),
            value: String::new(),
            max: String::new(),
            step: "1",
            items: Vec::new(),
            checked: true,
            hint: hint(key),
            problem: None,
        };
        match v {
            Value::Number(n) => {
                // The cap as it stands is both the field's value and its most.
                let cap = crate::number::positional(n);
                out.push(Edit {
                    kind: "number",
                    field: form::number_field(key),
                    value: cap.clone(),
                    max: cap,
                    step: if n.is_f64() { "any" } else { "1" },
                    ..base
                });
            }
            Value::Array(items) if !key.starts_with("blocked_") && !items.is_empty() => {
                out.push(Edit {
                    kind: "list",
                    field: form::list_field(key),
                    items: items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (i, shown::text(v), true))
                        .collect(),
                    ..base
                });
            }
            Value::Bool(true) => out.push(Edit {
                kind: "flag",
                field: form::flag_field(key),
                ..base
            }),
            _ => {}
        }
    }
    out
}

/// What became of a request that can no longer be decided, for a sentence: "approved by alice
/// at …", "expired at …" (`by` is the decider's name as people know it).
pub(super) fn what_happened(v: &PermissionView, by: Option<&str>) -> String {
    match (v.status, by, v.decided_at) {
        (Status::Expired, _, _) => format!("expired at {}", short_time(v.expires_at)),
        (Status::Approved | Status::Denied | Status::Used, Some(by), Some(at)) => {
            format!("{} by {by} at {}", v.status, short_time(at))
        }
        (s, _, _) => s.to_string(),
    }
}

/// "Approved by alice at 2026-05-28 07:00:00 UTC", "Expired at …, nobody decided".
pub(super) fn outcome_title(
    status: Status,
    by: Option<&str>,
    at: Option<&str>,
    v: &PermissionView,
) -> String {
    let by = by.map(|b| format!(" by {b}")).unwrap_or_default();
    let at = at.map(|t| format!(" at {t}")).unwrap_or_default();
    match status {
        Status::Approved => format!("Approved{by}{at}"),
        Status::Used => format!("Approved{by}{at}, and used up"),
        Status::Denied => format!("Denied{by}{at}"),
        // Revoking an approved request keeps who approved it; revoking a pending one records
        // who revoked it. Either way this is who decided last before the revocation.
        Status::Revoked => format!("Revoked (decided{by}{at})"),
        Status::Expired => format!(
            "Expired at {}: nobody decided in time",
            short_time(v.expires_at)
        ),
        Status::Pending => "Waiting for a decision".to_owned(),
    }
}

/// Audit event names, each with what it means in words (also the audit page's filter).
pub(super) const EVENTS: &[(&str, &str)] = &[
    ("permission.requested", "An agent asked for permission"),
    ("permission.approved", "Approved"),
    ("permission.denied", "Denied"),
    ("permission.expired", "Expired without a decision"),
    ("permission.revoked", "Revoked"),
    ("permission.pruned", "Old finished requests removed"),
    ("token.issued", "The agent collected its token"),
    ("token.used", "The token was used"),
    ("token.use_refused", "A use of the token was refused"),
    ("agent.created", "Agent created"),
    ("agent.revoked", "Agent revoked"),
    ("service.created", "Service key created"),
    ("service.revoked", "Service key revoked"),
    ("admin_token.created", "Admin token created"),
    ("login_link.issued", "Login link issued"),
    ("login.failed", "A login link did not work"),
    ("session.started", "Logged in"),
    ("session.ended", "Logged out or session revoked"),
    ("policy.reloaded", "Policy reloaded"),
    (
        "policy.reload_rejected",
        "Policy reload rejected (old policy kept)",
    ),
    ("telegram.link_code_issued", "Telegram link code issued"),
    ("telegram.approver_linked", "Telegram approver linked"),
    ("telegram.approver_unlinked", "Telegram approver unlinked"),
    ("telegram.link_failed", "A Telegram link code did not work"),
    (
        "telegram.unauthorized_press",
        "A Telegram button press by someone not an approver",
    ),
];

/// An audit event name in words ("Approved"); an unknown one as it is.
pub(super) fn event_words(event: &str) -> String {
    EVENTS.iter().find(|(e, _)| *e == event).map_or_else(
        || with_markers(event).into_owned(),
        |(_, w)| (*w).to_owned(),
    )
}

/// A recorded actor in words without a lookup: `human:alice` → "alice", `policy` → "the policy",
/// `agent:<id>` → "agent <id>".
pub(super) fn actor_words(actor: &str) -> String {
    let s = match actor.split_once(':') {
        Some(("human", name)) => match name.strip_prefix("tg-") {
            Some(id) if id.parse::<i64>().is_ok() => format!("Telegram user {id}"),
            _ => name.to_owned(),
        },
        Some((kind, rest)) => format!("{kind} {rest}"),
        None if actor == "policy" => "the policy".to_owned(),
        None => actor.to_owned(),
    };
    with_markers(&s).into_owned()
}

/// Seconds as minutes for a number field: 600 → "10", 90 → "1.5".
pub(super) fn minutes_field(secs: i64) -> String {
    if secs % 60 == 0 {
        (secs / 60).to_string()
    } else {
        format!("{:.2}", secs as f64 / 60.0)
            .trim_end_matches('0')
            .to_owned()
    }
}

/// "4 min 10 s left", "expired".
pub(super) fn time_left(now: Timestamp, until: Timestamp) -> String {
    let s = now.secs_until(until);
    match s {
        0 => "expired".to_owned(),
        1..=59 => format!("{s} s left"),
        60..=3599 => format!("{} min {} s left", s / 60, s % 60),
        _ => format!("{} h {} min left", s / 3600, (s % 3600) / 60),
    }
}

/// A duration in seconds as "5 min", "1 h", "45 s".
pub(super) fn duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s % 60 == 0 && s < 3600 => format!("{} min", s / 60),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// `2026-05-28 14:03:07 UTC`.
pub(super) fn short_time(t: Timestamp) -> String {
    let full = t.rfc3339();
    match (full.get(..10), full.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => full,
    }
}

/// The first 12 characters of a policy version hash.
pub(super) fn short_version(v: &str) -> String {
    v.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scope_reads_as_text_in_two_groups() {
        let scope = json!({
            "max_amount": 40,
            "allowed_domains": ["a.example", "b\u{202E}.example"],
            "cc": false,
            "limits": {"max_per_day": 3},
        });
        let groups = Scope::new(scope.as_object().unwrap());
        let line = |e: &Entry| format!("{}={}", e.key, e.values.join("|"));
        let enforced: Vec<_> = groups.enforced.iter().map(line).collect();
        let passed: Vec<_> = groups.passed_on.iter().map(line).collect();
        assert_eq!(
            enforced,
            [
                "max_amount=40",
                "allowed_domains=a.example|b[U+202E].example",
                "limits.max_per_day=3"
            ]
        );
        assert_eq!(passed, ["cc=false"]);
        assert!(!groups.is_empty() && Scope::new(&Map::new()).is_empty());
        let edits = edits(scope.as_object().unwrap());
        assert_eq!(edits[1].items[1].1, "b[U+202E].example");
        assert!(edits[1].items[1].2, "ticked to begin with");
        assert_eq!(
            time_left(Timestamp(0), Timestamp(250_000)),
            "4 min 10 s left"
        );
        assert_eq!(time_left(Timestamp(5), Timestamp(0)), "expired");
        assert_eq!(duration(300), "5 min");
        assert_eq!(short_time(Timestamp(0)), "1970-01-01 00:00:00 UTC");
    }
}
