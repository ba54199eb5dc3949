//! What the templates show: requests, scopes and times turned into plain text. Everything here is
//! text; the templates escape it (agent-supplied text is never marked safe).

use serde_json::{Map, Value};

use super::form;
use crate::clock::Timestamp;
use crate::domain::Status;
use crate::service::PermissionView;

/// The logged-in human, for the navigation bar and the logout form.
pub struct Me {
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
pub struct Card {
    pub id: String,
    pub agent: String,
    pub action: String,
    pub resource: Option<String>,
    pub reason: Option<String>,
    pub status: &'static str,
    /// "4 min 10 s left", or when it was decided.
    pub when: String,
}

impl Card {
    pub fn new(v: &PermissionView, now: Timestamp) -> Card {
        let when = match v.status {
            Status::Pending => time_left(now, v.expires_at),
            _ => match v.decided_at {
                Some(t) => format!("{} {}", v.status, short_time(t)),
                None => format!("asked {}", short_time(v.created_at)),
            },
        };
        Card {
            id: v.id.to_string(),
            agent: v.agent_name.clone(),
            action: v.action.clone(),
            resource: v.resource.clone(),
            reason: stated_reason(&v.context),
            status: v.status.as_str(),
            when,
        }
    }
}

/// A scope or context entry as a readable line.
pub struct Row {
    pub key: String,
    pub value: String,
    /// What the key means by convention (e.g. "at most"), if anything.
    pub hint: &'static str,
}

/// One narrowing control on the approval page.
pub struct Edit {
    pub key: String,
    /// `number`, `list` or `flag`.
    pub kind: &'static str,
    pub field: String,
    /// For numbers: the current value (also the maximum).
    pub value: String,
    pub step: &'static str,
    /// For lists: `(index, text)` of each entry, all ticked to begin with.
    pub items: Vec<(usize, String)>,
    pub hint: &'static str,
}

/// The agent's stated reason: `context.reason` when it is text.
pub fn stated_reason(context: &Map<String, Value>) -> Option<String> {
    context
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Scope or context as readable `key: value` lines, nested objects flattened to dotted keys.
pub fn rows(map: &Map<String, Value>, skip: &[&str]) -> Vec<Row> {
    let mut out = Vec::new();
    flatten("", map, skip, &mut out);
    out
}

fn flatten(prefix: &str, map: &Map<String, Value>, skip: &[&str], out: &mut Vec<Row>) {
    for (k, v) in map {
        if prefix.is_empty() && skip.contains(&k.as_str()) {
            continue;
        }
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => flatten(&key, inner, skip, out),
            _ => out.push(Row {
                hint: hint(k),
                value: text(v),
                key,
            }),
        }
    }
}

/// A JSON value as text a person reads: strings bare, lists comma-separated, yes/no.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "(none)".to_owned(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        Value::Object(_) => v.to_string(),
    }
}

/// What a scope key means under the conventions the service enforces (empty: passed on).
fn hint(key: &str) -> &'static str {
    crate::scope::meaning(key).unwrap_or("")
}

/// The narrowing controls for a pending request's scope: numbers can go down, list entries can
/// be dropped, a `true` can become `false`. Blocked lists and text are shown, not edited.
pub fn edits(scope: &Map<String, Value>) -> Vec<Edit> {
    let mut out = Vec::new();
    for (key, v) in scope {
        let base = Edit {
            key: key.clone(),
            kind: "",
            field: String::new(),
            value: String::new(),
            step: "1",
            items: Vec::new(),
            hint: hint(key),
        };
        match v {
            Value::Number(n) => out.push(Edit {
                kind: "number",
                field: form::number_field(key),
                value: n.to_string(),
                step: if n.is_f64() { "any" } else { "1" },
                ..base
            }),
            Value::Array(items) if !key.starts_with("blocked_") && !items.is_empty() => {
                out.push(Edit {
                    kind: "list",
                    field: form::list_field(key),
                    items: items.iter().map(text).enumerate().collect(),
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

/// "4 min 10 s left", "expired".
pub fn time_left(now: Timestamp, until: Timestamp) -> String {
    let s = now.secs_until(until);
    match s {
        0 => "expired".to_owned(),
        1..=59 => format!("{s} s left"),
        60..=3599 => format!("{} min {} s left", s / 60, s % 60),
        _ => format!("{} h {} min left", s / 3600, (s % 3600) / 60),
    }
}

/// A duration in seconds as "5 min", "1 h", "45 s".
pub fn duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s % 60 == 0 && s < 3600 => format!("{} min", s / 60),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// `2026-05-28 14:03:07 UTC`.
pub fn short_time(t: Timestamp) -> String {
    let full = t.rfc3339();
    match (full.get(..10), full.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => full,
    }
}

/// The first 12 characters of a policy version hash.
pub fn short_version(v: &str) -> String {
    v.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scope_reads_as_text() {
        let scope = json!({
            "max_amount": 40,
            "allowed_domains": ["a.example", "b.example"],
            "cc": false,
            "limits": {"per_day": 3},
        });
        let rows = rows(scope.as_object().unwrap(), &[]);
        let shown: Vec<_> = rows
            .iter()
            .map(|r| format!("{}={}", r.key, r.value))
            .collect();
        assert!(shown.contains(&"max_amount=40".to_owned()));
        assert!(shown.contains(&"allowed_domains=a.example, b.example".to_owned()));
        assert!(shown.contains(&"cc=no".to_owned()));
        assert!(shown.contains(&"limits.per_day=3".to_owned()));
        assert_eq!(
            time_left(Timestamp(0), Timestamp(250_000)),
            "4 min 10 s left"
        );
        assert_eq!(time_left(Timestamp(5), Timestamp(0)), "expired");
        assert_eq!(duration(300), "5 min");
        assert_eq!(short_time(Timestamp(0)), "1970-01-01 00:00:00 UTC");
    }
}
