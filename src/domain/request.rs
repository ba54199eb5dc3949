//! What an agent may ask for, and what a human may change when approving: the input limits of
//! the wire contract, checked all at once so the caller learns every bad field in one answer.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::scope;
use crate::text::{first_hidden, is_hidden};

/// Longest `action`, in characters.
pub(crate) const ACTION_MAX_CHARS: usize = 255;
/// Longest `resource`, in characters.
pub(crate) const RESOURCE_MAX_CHARS: usize = 1024;
/// Token lifetime bounds and default, in seconds.
pub(crate) const TTL_MIN: i64 = 30;
pub(crate) const TTL_MAX: i64 = 3600;
pub(crate) const TTL_DEFAULT: i64 = 300;
/// Uses bounds and default.
pub(crate) const USES_MIN: i64 = 1;
pub(crate) const USES_MAX: i64 = 100;
pub(crate) const USES_DEFAULT: i64 = 1;
/// Deepest nesting allowed inside `scope`, `context` and `actionDetails` (an object is depth 1).
pub(crate) const JSON_DEPTH_MAX: usize = 8;
/// Largest serialized `scope`, `context` or `actionDetails`, in bytes.
pub(crate) const JSON_BYTES_MAX: usize = 16 * 1024;
/// Most keys at any one level of `scope`, `context` or `actionDetails`.
pub(crate) const JSON_KEYS_MAX: usize = 64;
/// Longest list anywhere inside `scope`, `context` or `actionDetails`.
pub(crate) const JSON_ITEMS_MAX: usize = 256;
/// Longest human note or deny reason, in characters.
pub(crate) const NOTE_MAX_CHARS: usize = 1000;

/// A request that passed every input rule.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub action: String,
    pub resource: Option<String>,
    pub scope: Map<String, Value>,
    pub context: Map<String, Value>,
    pub ttl_secs: i64,
    pub uses: i64,
    pub action_details: Option<Map<String, Value>>,
}

/// A request as the agent asked for it, before the input rules.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub action: String,
    pub resource: Option<String>,
    pub scope: Option<Map<String, Value>>,
    pub context: Option<Map<String, Value>>,
    pub ttl: Option<i64>,
    pub uses: Option<i64>,
    pub action_details: Option<Map<String, Value>>,
}

impl ValidRequest {
    /// Checks every field of a request as asked, reporting all problems together.
    pub fn check(asked: Asked) -> Result<ValidRequest> {
        let mut problems = Vec::new();
        check_action(&mut problems, &asked.action);
        let resource = asked.resource.map(|r| check_resource(&mut problems, r));
        let scope = asked.scope.unwrap_or_default();
        let context = asked.context.unwrap_or_default();
        check_object(&mut problems, "scope", &scope);
        check_object(&mut problems, "context", &context);
        if let Some(details) = &asked.action_details {
            check_object(&mut problems, "actionDetails", details);
            if let Some((path, why)) = unclear_key(details) {
                problems.push((format!("actionDetails{path}"), why));
            }
        }
        if let Err(bad) = scope::validate(&scope) {
            problems.extend(bad.into_iter().map(|(k, p)| (format!("scope.{k}"), p)));
        }
        let ttl_secs = asked.ttl.unwrap_or(TTL_DEFAULT);
        check_range(&mut problems, "ttl", ttl_secs, TTL_MIN, TTL_MAX);
        let uses = asked.uses.unwrap_or(USES_DEFAULT);
        check_range(&mut problems, "uses", uses, USES_MIN, USES_MAX);
        if !problems.is_empty() {
            return Err(Error::invalid_fields(problems));
        }
        Ok(ValidRequest {
            action: asked.action,
            resource,
            scope,
            context,
            ttl_secs,
            uses,
            action_details: asked.action_details,
        })
    }
}

/// What a human may change when approving (each only narrows what was asked); `None` keeps
/// what the request would get.
#[derive(Debug, Default, Clone)]
pub struct Edits {
    pub ttl: Option<i64>,
    pub uses: Option<i64>,
    pub scope: Option<Map<String, Value>>,
    pub note: Option<String>,
}

/// The terms a human approval grants.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub ttl_secs: i64,
    pub uses: i64,
    pub scope: Map<String, Value>,
    pub note: Option<String>,
}

impl Edits {
    /// Applies the edits to what the request would get, refusing any widening.
    pub fn narrow(self, ttl_secs: i64, uses: i64, scope: &Map<String, Value>) -> Result<Terms> {
        let mut problems = Vec::new();
        let new_ttl = self.ttl.unwrap_or(ttl_secs);
        check_range(
            &mut problems,
            "ttl",
            new_ttl,
            TTL_MIN,
            ttl_secs.max(TTL_MIN),
        );
        let new_uses = self.uses.unwrap_or(uses);
        check_range(&mut problems, "uses", new_uses, USES_MIN, uses);
        check_text(
            &mut problems,
            "note",
            self.note.as_deref(),
            0,
            NOTE_MAX_CHARS,
        );
        let new_scope = match &self.scope {
            None => scope.clone(),
            Some(edits) => {
                check_object(&mut problems, "scope", edits);
                match scope::narrow_by_human(scope, edits) {
                    Ok(s) => s,
                    Err(e) => {
                        problems.push((format!("scope.{}", e.key), e.reason));
                        scope.clone()
                    }
                }
            }
        };
        if !problems.is_empty() {
            return Err(Error::invalid_fields(problems));
        }
        let new_uses = capped_uses(new_uses, &new_scope);
        Ok(Terms {
            ttl_secs: new_ttl,
            uses: new_uses,
            scope: new_scope,
            note: self.note,
        })
    }
}

/// `uses` capped by the scope's `max_uses`, if any.
pub(crate) fn capped_uses(uses: i64, scope: &Map<String, Value>) -> i64 {
    match scope::max_uses(scope) {
        Some(max) => uses.min(i64::from(max)),
        None => uses,
    }
}

/// Checks a human's free-text note or reason.
pub(crate) fn check_note(field: &str, note: Option<&str>) -> Result<()> {
    let mut problems = Vec::new();
    check_text(&mut problems, field, note, 0, NOTE_MAX_CHARS);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_fields(problems))
    }
}

/// Checks `actionDetails` sent with a token use.
pub(crate) fn check_action_details(details: &Map<String, Value>) -> Result<()> {
    let mut problems = Vec::new();
    check_object(&mut problems, "actionDetails", details);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_fields(problems))
    }
}

/// The action and resource a use names, checked by the same rules as a request's: the action a
/// dotted name, the resource free of hidden characters and returned in its normal form (so it
/// compares with the stored one).
pub(crate) fn check_use_target(
    action: Option<&str>,
    resource: Option<String>,
) -> Result<Option<String>> {
    let mut problems = Vec::new();
    if let Some(action) = action {
        check_action(&mut problems, action);
    }
    let resource = resource.map(|r| check_resource(&mut problems, r));
    if problems.is_empty() {
        Ok(resource)
    } else {
        Err(Error::invalid_fields(problems))
    }
}

/// `action` is a dotted name: 1–255 ASCII letters, digits and `._:-`.
fn check_action(problems: &mut Vec<(String, String)>, action: &str) {
    let chars = action.chars().count();
    let problem = if chars == 0 || chars > ACTION_MAX_CHARS {
        format!("must be 1–{ACTION_MAX_CHARS} characters, got {chars}")
    } else if let Some(c) = action
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        format!(
            "must be a dotted name of ASCII letters, digits and . _ : - (e.g. email.send); {} is not allowed",
            named_char(c)
        )
    } else if action.starts_with(['.', ':'])
        || action.ends_with(['.', ':'])
        || action.contains("..")
    {
        // `gmail.delete.` or `gmail..delete` passes `startsWith: "gmail."` while a rule
        // `equals: gmail.delete` denies, and a service that trims or collapses dots reads it
        // as that action.
        "must be a dotted name: it may not start or end with `.` or `:`, nor have an empty \
         part (`..`)"
            .to_owned()
    } else {
        return;
    };
    problems.push(("action".to_owned(), problem));
}

/// `resource`: at most 1024 characters, no control, bidi or zero-width character, and in the
/// normal form of `scope::normalize_resource` (paths and URLs normalised, traversal above the
/// root refused). Returns the normalised resource.
fn check_resource(problems: &mut Vec<(String, String)>, resource: String) -> String {
    let chars = resource.chars().count();
    let problem = if chars > RESOURCE_MAX_CHARS {
        format!("must be 0–{RESOURCE_MAX_CHARS} characters, got {chars}")
    } else if let Some(c) = first_hidden(&resource) {
        format!(
            "must not contain control, bidi or zero-width characters; {} found",
            named_char(c)
        )
    } else {
        match scope::normalize_resource(&resource) {
            Ok(Cow::Borrowed(_)) => return resource,
            Ok(Cow::Owned(clean)) => return clean,
            Err(e) => e,
        }
    };
    problems.push(("resource".to_owned(), problem));
    resource
}

/// A character for an error message: visible ones quoted, hidden ones by code point only.
fn named_char(c: char) -> String {
    if is_hidden(c) {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("`{c}` (U+{:04X})", u32::from(c))
    }
}

fn check_text(
    problems: &mut Vec<(String, String)>,
    field: &str,
    value: Option<&str>,
    min: usize,
    max: usize,
) {
    let Some(value) = value else { return };
    let chars = value.chars().count();
    if chars < min || chars > max {
        problems.push((
            field.to_owned(),
            format!("must be {min}–{max} characters, got {chars}"),
        ));
    } else if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        problems.push((
            field.to_owned(),
            "must not contain control characters".to_owned(),
        ));
    }
}

fn check_range(problems: &mut Vec<(String, String)>, field: &str, v: i64, min: i64, max: i64) {
    if v < min || v > max {
        problems.push((
            field.to_owned(),
            format!("must be between {min} and {max}, got {v}"),
        ));
    }
}

fn check_object(problems: &mut Vec<(String, String)>, field: &str, obj: &Map<String, Value>) {
    let bytes = serde_json::to_vec(obj)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if bytes > JSON_BYTES_MAX {
        problems.push((
            field.to_owned(),
            format!("must be at most {JSON_BYTES_MAX} bytes"),
        ));
    } else if depth_of_map(obj) > JSON_DEPTH_MAX {
        problems.push((
            field.to_owned(),
            format!("must nest at most {JSON_DEPTH_MAX} levels"),
        ));
    } else if widest_map(obj) > JSON_KEYS_MAX {
        problems.push((
            field.to_owned(),
            format!("must have at most {JSON_KEYS_MAX} keys per object"),
        ));
    } else if let Some(path) = long_list(obj) {
        problems.push((
            format!("{field}.{path}"),
            format!("must be a list of at most {JSON_ITEMS_MAX} items"),
        ));
    }
}

/// Longest key of a request's exact details.
const DETAIL_KEY_MAX_CHARS: usize = 64;

/// The first key of a request's exact details, at any depth, that is not a plain name (1–64
/// ASCII letters, digits, `_` and `-`): the path to it (`.a.0`, empty at the top) and what is
/// wrong. The person deciding reads exact details as `creditor.iban = …`, nested keys joined with
/// dots, so a key `creditor.iban` beside a nested `creditor → iban` would read the same, and a
/// key with spaces or `=` could read as a second entry or as our words. Two keys of one object
/// that differ only in case are refused too.
fn unclear_key(obj: &Map<String, Value>) -> Option<(String, String)> {
    fn plain(key: &str) -> bool {
        (1..=DETAIL_KEY_MAX_CHARS).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }
    fn within(v: &Value) -> Option<(String, String)> {
        match v {
            Value::Object(m) => unclear_key(m),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| within(item).map(|(path, why)| (format!(".{i}{path}"), why))),
            _ => None,
        }
    }
    // The keys so far, in lower case, and as written.
    let mut seen: Vec<(String, &str)> = Vec::with_capacity(obj.len());
    obj.iter().find_map(|(k, v)| {
        if !plain(k) {
            return Some((
                String::new(),
                format!(
                    "keys must be plain names of 1–{DETAIL_KEY_MAX_CHARS} ASCII letters, digits, \
                     _ and - (nested keys are shown joined with dots, so `a.b` would read like a \
                     nested b); {} is not",
                    crate::text::with_markers(&format!("`{k}`"))
                ),
            ));
        }
        // Both are plain names here, safe to quote.
        let folded = k.to_ascii_lowercase();
        if let Some((_, first)) = seen.iter().find(|(f, _)| *f == folded) {
            return Some((
                String::new(),
                format!(
                    "has both `{first}` and `{k}`: keys that differ only in case read as one to \
                     the person deciding (and to some services); send only one"
                ),
            ));
        }
        seen.push((folded, k));
        within(v).map(|(path, why)| (format!(".{}{path}", k), why))
    })
}

/// The dotted path of the first list longer than [`JSON_ITEMS_MAX`], if any.
fn long_list(obj: &Map<String, Value>) -> Option<String> {
    obj.iter()
        .find_map(|(k, v)| long_list_in(v).map(|p| join_path(k, p)))
}

/// Like [`long_list`] for any value; `Some("")` when `v` itself is too long.
fn long_list_in(v: &Value) -> Option<String> {
    match v {
        Value::Array(items) if items.len() > JSON_ITEMS_MAX => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| long_list_in(item).map(|p| join_path(&i.to_string(), p))),
        Value::Object(m) => long_list(m),
        _ => None,
    }
}

fn join_path(head: &str, rest: String) -> String {
    if rest.is_empty() {
        head.to_owned()
    } else {
        format!("{head}.{rest}")
    }
}

fn depth_of_map(obj: &Map<String, Value>) -> usize {
    1 + obj.values().map(depth).max().unwrap_or(0)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => depth_of_map(m),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn widest_map(obj: &Map<String, Value>) -> usize {
    obj.values().map(widest).max().unwrap_or(0).max(obj.len())
}

fn widest(v: &Value) -> usize {
    match v {
        Value::Object(m) => widest_map(m),
        Value::Array(items) => items.iter().map(widest).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::permissions::{ApprovalEdits, RequestInput};
    use serde_json::json;

    /// Edits as the admin API reads them.
    fn edits_from(v: Value) -> Edits {
        serde_json::from_value::<ApprovalEdits>(v).unwrap().into()
    }

    fn input(v: Value) -> RequestInput {
        serde_json::from_value(v).unwrap()
    }

    fn bad_fields(e: Error) -> Vec<String> {
        match e {
            Error::Validation { details, .. } => details.keys().cloned().collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply() {
        let r = input(json!({"action": "gmail.send"})).validate().unwrap();
        assert_eq!((r.ttl_secs, r.uses), (TTL_DEFAULT, USES_DEFAULT));
        assert!(r.scope.is_empty() && r.context.is_empty() && r.resource.is_none());
    }

    #[test]
    fn every_bad_field_is_named() {
        let deep = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}});
        let e = input(json!({
            "action": "", "resource": "x".repeat(1025), "ttl": 5, "uses": 101, "context": deep
        }))
        .validate()
        .unwrap_err();
        let mut fields = bad_fields(e);
        fields.sort();
        assert_eq!(fields, ["action", "context", "resource", "ttl", "uses"]);
    }

    #[test]
    fn limits_are_inclusive() {
        let ok = input(json!({"action": "a".repeat(255), "ttl": 3600, "uses": 100})).validate();
        assert!(ok.is_ok());
        let e = input(json!({"action": "a\u{0007}b"}))
            .validate()
            .unwrap_err();
        assert_eq!(bad_fields(e), ["action"]);
        let wide: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
        let e = input(json!({"action": "a", "context": wide}))
            .validate()
            .unwrap_err();
        assert_eq!(bad_fields(e), ["context"]);
        let items: Vec<Value> = (0..JSON_ITEMS_MAX).map(|i| json!(i)).collect();
        let ok = input(json!({"action": "a", "scope": {"allowed_ids": items}})).validate();
        assert!(ok.is_ok());
        let long: Vec<Value> = (0..=JSON_ITEMS_MAX).map(|i| json!(i)).collect();
        let e = input(json!({"action": "a", "context": {"a": {"b": long}}}))
            .validate()
            .unwrap_err();
        assert_eq!(bad_fields(e), ["context.a.b"]);
    }

    #[test]
    fn action_is_a_dotted_name() {
        for ok in ["email.send", "gmail:send", "db.drop-table", "a_b.C9", "a"] {
            assert!(input(json!({"action": ok})).validate().is_ok(), "{ok}");
        }
        for bad in [
            "email.send\nresource: /tmp",
            "email send",
            "deploy<b>",
            "e\u{200B}mail.send",
            "evil\u{202E}exe.send",
            "е.send", // Cyrillic е
            "a/b",
            " ",
        ] {
            let e = input(json!({"action": bad})).validate().unwrap_err();
            assert_eq!(bad_fields(e), ["action"], "{bad:?}");
        }
    }

    #[test]
    fn resource_is_normalised_or_refused() {
        let resource = |r: &str| {
            input(json!({"action": "file.read", "resource": r}))
                .validate()
                .map(|v| v.resource.unwrap())
        };
        assert_eq!(
            resource("/srv/reports/../../etc/passwd").unwrap(),
            "/etc/passwd"
        );
        assert_eq!(
            resource("/srv//reports/./q1.csv").unwrap(),
            "/srv/reports/q1.csv"
        );
        assert_eq!(resource("file:///srv/a/../b").unwrap(), "file:///srv/b");
        assert_eq!(resource("client@x.com").unwrap(), "client@x.com");
        for bad in [
            "/srv/../..",
            "reports/../secret",
            "evil\u{202E}txt.exe",
            "/tmp/a\u{200B}",
            "/tmp/a\nb",
            "\tx",
        ] {
            let e = resource(bad).unwrap_err();
            assert_eq!(bad_fields(e), ["resource"], "{bad:?}");
        }
    }

    #[test]
    fn scope_keys_are_identifiers_and_context_is_free_text() {
        let e = input(json!({"action": "a", "scope": {"max_amount\u{200B}": 10, "payment": {"mаx_amount": 1}}}))
            .validate()
            .unwrap_err();
        let mut fields = bad_fields(e);
        fields.sort();
        assert_eq!(
            fields,
            [
                "scope.max_amount[U+200B]",
                "scope.payment.m[U+0430]x_amount"
            ]
        );
        let ok = input(
            json!({"action": "a", "context": {"reason": "pay\u{202E} now\n", "k\u{200B}": 1}}),
        );
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn approval_edits_only_narrow() {
        let scope = json!({"max_amount": 100}).as_object().cloned().unwrap();
        let edits = edits_from(json!({"ttl": 60, "uses": 1, "scope": {"max_amount": 40}}));
        let t = edits.narrow(300, 3, &scope).unwrap();
        assert_eq!((t.ttl_secs, t.uses), (60, 1));
        assert_eq!(t.scope["max_amount"], json!(40));

        for widen in [
            json!({"ttl": 301}),
            json!({"uses": 4}),
            json!({"scope": {"max_amount": 101}}),
        ] {
            let edits = edits_from(widen.clone());
            assert!(
                edits.narrow(300, 3, &scope).is_err(),
                "{widen} must be refused"
            );
        }
        // A refused scope edit names the key it is about.
        let edits = edits_from(json!({"scope": {"max_amount": 101}}));
        assert_eq!(
            bad_fields(edits.narrow(300, 3, &scope).unwrap_err()),
            ["scope.max_amount"]
        );
    }

    #[test]
    fn max_uses_in_scope_caps_uses() {
        let scope = json!({"max_uses": 2}).as_object().cloned().unwrap();
        assert_eq!(capped_uses(5, &scope), 2);
        assert_eq!(capped_uses(1, &scope), 1);
        assert_eq!(capped_uses(5, &Map::new()), 5);
    }
}
