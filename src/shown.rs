//! How a request reads to the person deciding, the same in every channel: scope and context as
//! one entry per key (nested objects as dotted keys), a list item by item, every piece of agent
//! text with its hidden characters as visible markers ([`with_markers`]), and each scope entry
//! labelled with what agent-otp enforces for it ([`scope::meaning`]) or as passed on to the
//! protected service. The channels only lay these entries out (HTML page, Telegram message).

use serde_json::{Map, Value};

use crate::scope;

mod summary;
use crate::text::{is_blank, with_markers};
pub(crate) use summary::{Piece, Summary, summary};

/// One key of a scope or context, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key, nested keys joined with `.`, hidden characters as markers.
    pub key: String,
    /// What agent-otp enforces for this key (e.g. "at most"); `None`: passed on to the service.
    pub enforced: Option<&'static str>,
    /// The value as text; a list has one item per element (and may be empty).
    pub values: Vec<String>,
    /// Whether the value is a list (then `values` are its items, in order).
    pub list: bool,
}

/// What agent-otp enforces for a scope entry at `path` (outermost key first). A convention key
/// is enforced at every level, against the same nested object of the details (docs/scopes.md);
/// validation refuses the one exception, a nested `max_uses`, so it never reaches a screen.
fn enforced_at(path: &[&str]) -> Option<&'static str> {
    path.last().and_then(|key| scope::meaning(key))
}

/// The scope's entries, each with what agent-otp enforces for it.
pub(crate) fn scope(map: &Map<String, Value>) -> Vec<Entry> {
    let mut out = Vec::new();
    flatten(&mut Vec::new(), map, &[], enforced_at, &mut out);
    out
}

/// The context's entries (nothing in a context is enforced), leaving out the top-level `skip` keys.
pub(crate) fn context(map: &Map<String, Value>, skip: &[&str]) -> Vec<Entry> {
    let mut out = Vec::new();
    flatten(&mut Vec::new(), map, skip, |_| None, &mut out);
    out
}

/// The agent's stated reason, `context.reason`, when it is text (markers applied).
pub(crate) fn reason(context: &Map<String, Value>) -> Option<String> {
    context
        .get("reason")
        .and_then(Value::as_str)
        .map(|s| with_markers(s).into_owned())
}

/// The context keys shown on their own rather than among the entries: `reason` when it is text.
pub(crate) fn context_skip(context: &Map<String, Value>) -> &'static [&'static str] {
    if reason(context).is_some() {
        &["reason"]
    } else {
        &[]
    }
}

/// What the granted scope has less of than the agent asked, in words: "max_amount 100 → 40",
/// "allowed_recipients: 1 of 3 kept".
pub(crate) fn narrowed(asked: &Map<String, Value>, granted: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, now) in granted {
        let Some(was) = asked.get(key) else { continue };
        if scope::json_eq(was, now) {
            continue;
        }
        let key = with_markers(key);
        out.push(match (was, now) {
            (Value::Array(a), Value::Array(b)) => format!("{key}: {} of {} kept", b.len(), a.len()),
            _ => format!("{key} {} → {}", text(was), text(now)),
        });
    }
    out
}

/// A person as they are called, from a recorded actor: `human:alice` → "alice", a Telegram
/// approver by their Telegram name, `policy` → "the policy".
pub(crate) async fn person(svc: &crate::service::Service, by: &str) -> String {
    let Some(human) = by.strip_prefix("human:") else {
        return match by {
            "policy" => "the policy".to_owned(),
            other => with_markers(other).into_owned(),
        };
    };
    if let Some(user_id) = human
        .strip_prefix("tg-")
        .and_then(|id| id.parse::<i64>().ok())
    {
        let found = svc.approver(&[], user_id).await;
        return match found {
            Ok(Some(a)) if a.name != human => with_markers(&a.name).into_owned(),
            _ => format!("Telegram user {user_id}"),
        };
    }
    with_markers(human).into_owned()
}

fn flatten<'m>(
    path: &mut Vec<&'m str>,
    map: &'m Map<String, Value>,
    skip: &[&str],
    enforced: fn(&[&str]) -> Option<&'static str>,
    out: &mut Vec<Entry>,
) {
    for (k, v) in map {
        if path.is_empty() && skip.contains(&k.as_str()) {
            continue;
        }
        path.push(k);
        match v {
            Value::Object(inner) if !inner.is_empty() => flatten(path, inner, skip, enforced, out),
            _ => out.push(Entry {
                key: path
                    .iter()
                    .map(|p| with_markers(p))
                    .collect::<Vec<_>>()
                    .join("."),
                enforced: enforced(path),
                list: v.is_array(),
                values: match v {
                    Value::Array(items) => items.iter().map(item_text).collect(),
                    other => vec![text(other)],
                },
            }),
        }
        path.pop();
    }
}

/// A JSON value as text a person reads: strings bare, numbers with every digit in its place
/// ([`crate::number::for_people`]: a cap of `1e3` or `1.5e-7` is not one a person reads), everything else as
/// JSON, with hidden characters as markers (JSON escapes controls but not bidi or zero-width
/// characters).
///
/// A string that would not read as the text it is is shown in JSON's quotes: an empty one, one
/// with a blank at either end (a space, a wide space, the Braille blank), one that reads as
/// another kind of value (`"100"` and `100`, `"null"` and `null`, `"[]"` and `[]` are different
/// values to the service), one holding what reads as our markers (`[U+200B]`, `[4 spaces]`),
/// which a real hidden character would be shown as, and one holding our way of writing a long
/// number (`× 10^`). A list item is also quoted when it holds a
/// comma or a bracket, which would read as two items, or as the list's end, where the list is
/// written on one line.
pub(crate) fn text(v: &Value) -> String {
    shown_as(v, false)
}

/// [`text`] for an item of a list.
fn item_text(v: &Value) -> String {
    shown_as(v, true)
}

fn shown_as(v: &Value, in_list: bool) -> String {
    let splits_a_list = |s: &str| s.contains([',', '[', ']']);
    match v {
        Value::String(s) if reads_as_itself(s) && !(in_list && splits_a_list(s)) => {
            with_markers(s).into_owned()
        }
        Value::Number(n) => crate::number::for_people(n),
        other => with_markers(&other.to_string()).into_owned(),
    }
}

/// Whether `s` shown bare reads as exactly this text, and as text.
fn reads_as_itself(s: &str) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().next_back()) else {
        return false;
    };
    !is_blank(first)
        && !is_blank(last)
        && !matches!(first, '"' | '[' | '{')
        && !s.contains("[U+")
        && !s.contains(" spaces]")
        // How a long number is written (`5 × 10^-324`): text so written is text, in quotes.
        && !s.contains("× 10^")
        && serde_json::from_str::<Value>(s).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn entries_are_flat_marked_and_labelled() {
        let s = obj(json!({
            "max_amount": 40,
            "allowed_recipients": ["a@example.com", "evil\u{202E}exe.txt"],
            "blocked_paths": [],
            "limits": {"max_per_day": 3, "note": "x\ny"},
            "notify": false,
            "empty": {},
            "items": [{"a": 1}, [2, "\u{200B}"]],
        }));
        let got = scope(&s);
        let find = |k: &str| got.iter().find(|e| e.key == k).unwrap().clone();
        assert_eq!(find("max_amount").enforced, Some("at most"));
        assert_eq!(find("max_amount").values, ["40"]);
        assert!(!find("max_amount").list);
        let r = find("allowed_recipients");
        assert_eq!(r.enforced, Some("only these"));
        assert!(r.list);
        assert_eq!(r.values, ["a@example.com", "evil[U+202E]exe.txt"]);
        assert!(find("blocked_paths").list && find("blocked_paths").values.is_empty());
        // Nested convention keys are not enforced, so they are not shown as enforced.
        assert_eq!(find("limits.max_per_day").enforced, Some("at most"));
        assert_eq!(find("limits.note").values, ["x[U+000A]y"]);
        assert_eq!(find("notify").values, ["false"]);
        assert_eq!(find("empty").values, ["{}"]);
        assert_eq!(find("items").values, ["{\"a\":1}", "[2,\"[U+200B]\"]"]);
        assert_eq!(got.len(), 8);
    }

    #[test]
    fn context_keeps_a_reason_that_is_not_text() {
        let c = obj(json!({"reason": "pay\u{202E}now", "ticket": 7}));
        assert_eq!(reason(&c).as_deref(), Some("pay[U+202E]now"));
        let shown = context(&c, context_skip(&c));
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].key, "ticket");
        assert_eq!(shown[0].enforced, None);
        let c = obj(json!({"reason": {"why": "x"}, "k\u{200B}": "v"}));
        assert_eq!(reason(&c), None);
        let shown = context(&c, context_skip(&c));
        // In the order the agent sent them.
        assert_eq!(shown[0].key, "reason.why");
        assert_eq!(shown[1].key, "k[U+200B]");
    }

    #[test]
    fn a_string_that_would_read_as_another_value_is_quoted() {
        for (value, shown) in [
            (json!("Invoice 42"), "Invoice 42"),
            (json!("DE89370400440532013000"), "DE89370400440532013000"),
            (json!("-"), "-"),
            (json!(100), "100"),
            (json!("100"), r#""100""#),
            (json!("1e3"), r#""1e3""#),
            (json!(true), "true"),
            (json!("true"), r#""true""#),
            (json!(null), "null"),
            (json!("null"), r#""null""#),
            (json!(""), r#""""#),
            (json!(" x"), r#"" x""#),
            (json!("x\n"), r#""x\n""#),
            (json!("[]"), r#""[]""#),
            (json!("{a}"), r#""{a}""#),
            (json!("\"quoted\""), r#""\"quoted\"""#),
            (json!("\u{202E}100"), "[U+202E]100"),
            (json!(" \u{202E}"), r#"" [U+202E]""#),
            (json!("100\u{2800}"), "\"100\u{2800}\""),
            (json!("100\u{1BCA0}"), "100[U+1BCA0]"),
            (json!("100\u{1D173}"), "100[U+1D173]"),
            (json!("DE89[U+200B]3704"), r#""DE89[U+200B]3704""#),
            (json!("a [5 spaces] b"), r#""a [5 spaces] b""#),
        ] {
            assert_eq!(text(&value), shown, "{value}");
        }
        // In a list, an item with ", " is quoted too; on its own it is not.
        let got = scope(&obj(
            json!({"to": ["a, b", "c", "a,b", "x]", "[y"], "note": "a, b"}),
        ));
        assert_eq!(
            got[0].values,
            [r#""a, b""#, "c", r#""a,b""#, r#""x]""#, r#""[y""#]
        );
        assert_eq!(got[1].values, ["a, b"]);
    }
}
