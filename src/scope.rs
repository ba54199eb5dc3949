//! Scopes: the JSON object of constraints attached to a permission. This module owns the key
//! conventions (`max_uses`, `max_<field>`, `allowed_<field>`, `blocked_<field>`, `<field>_pattern`),
//! their validation, narrowing (request ∧ rule `scopeTemplate` ∧ human edits — never widening) and
//! enforcement against the `actionDetails` an agent sends when it uses a token. Keys are classified
//! by prefix first (`max_uses`, `max_`, `allowed_`, `blocked_`), then by the `_pattern` suffix;
//! any other key passes through untouched for the protected service to apply. Conventions apply to
//! top-level keys only; nested objects are narrowed recursively but not enforced. Enforcement fails
//! closed: a constraint whose field is absent from `actionDetails` is refused (except `blocked_`).

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

/// Longest regex pattern accepted, in characters (policy `matches` and scope `_pattern` alike).
pub(crate) const MAX_PATTERN_CHARS: usize = 1024;
/// Compiled-program size limit for one regex, in bytes.
pub(crate) const REGEX_SIZE_LIMIT: usize = 64 * 1024;

/// Compiles a user-supplied regex with the shared length and size limits. The error is one line.
pub(crate) fn build_regex(pattern: &str) -> Result<Regex, String> {
    let chars = pattern.chars().count();
    if chars > MAX_PATTERN_CHARS {
        return Err(format!(
            "regex is {chars} characters long (at most {MAX_PATTERN_CHARS} allowed)"
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(4 * REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| match err {
            regex::Error::Syntax(text) => {
                let last = text.lines().rev().find(|l| l.starts_with("error:"));
                format!(
                    "invalid regex: {}",
                    last.unwrap_or(&text).trim_start_matches("error: ")
                )
            }
            regex::Error::CompiledTooBig(limit) => {
                format!("regex is too complex (compiled size over {limit} bytes)")
            }
            other => format!("invalid regex: {other}"),
        })
}

/// JSON equality where numbers compare numerically (`1 == 1.0`), recursively in lists and objects.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// What a scope key means, by naming convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'k> {
    MaxUses,
    Max(&'k str),
    Allowed(&'k str),
    Blocked(&'k str),
    Pattern(&'k str),
    Other,
}

fn classify(key: &str) -> Kind<'_> {
    if key == "max_uses" {
        Kind::MaxUses
    } else if let Some(field) = key.strip_prefix("max_") {
        Kind::Max(field)
    } else if let Some(field) = key.strip_prefix("allowed_") {
        Kind::Allowed(field)
    } else if let Some(field) = key.strip_prefix("blocked_") {
        Kind::Blocked(field)
    } else if let Some(field) = key.strip_suffix("_pattern") {
        Kind::Pattern(field)
    } else {
        Kind::Other
    }
}

/// What agent-otp enforces for a scope key, in a few words for the person approving (`None`: the
/// key is passed on to the protected service, which alone applies it). Every channel that shows
/// a scope labels its keys with this, so nothing is shown as enforced that is not.
pub fn meaning(key: &str) -> Option<&'static str> {
    match classify(key) {
        Kind::MaxUses => Some("uses at most"),
        Kind::Max(_) => Some("at most"),
        Kind::Allowed(_) => Some("only these"),
        Kind::Blocked(_) => Some("never these"),
        Kind::Pattern(_) => Some("must match"),
        Kind::Other => None,
    }
}

/// A non-negative whole number that fits `u64`, also when written as `3.0`.
fn whole_number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

/// Checks every conventional key; returns `(key, problem)` for each bad one.
pub fn validate(scope: &Map<String, Value>) -> Result<(), Vec<(String, String)>> {
    let mut problems = Vec::new();
    for (key, value) in scope {
        if let Err(problem) = validate_key(key, value) {
            problems.push((key.clone(), problem));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn validate_key(key: &str, value: &Value) -> Result<(), String> {
    let field_needed = |field: &str| {
        if field.is_empty() {
            Err(format!(
                "`{key}` needs a field name (e.g. max_amount, allowed_recipients, path_pattern)"
            ))
        } else {
            Ok(())
        }
    };
    match classify(key) {
        Kind::MaxUses => match whole_number(value) {
            Some(n) if n >= 1 && u32::try_from(n).is_ok() => Ok(()),
            _ => Err(format!("must be a whole number from 1 to {}", u32::MAX)),
        },
        Kind::Max(field) => {
            field_needed(field)?;
            match value.as_f64() {
                Some(n) if n >= 0.0 => Ok(()),
                _ => Err("must be a non-negative number".to_owned()),
            }
        }
        Kind::Allowed(field) | Kind::Blocked(field) => {
            field_needed(field)?;
            match value {
                Value::Array(items)
                    if items.iter().all(|v| {
                        matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
                    }) =>
                {
                    Ok(())
                }
                _ => Err("must be a list of strings, numbers or booleans".to_owned()),
            }
        }
        Kind::Pattern(field) => {
            field_needed(field)?;
            match value {
                Value::String(pattern) => build_regex(pattern).map(|_| ()),
                _ => Err("must be a regex written as a string".to_owned()),
            }
        }
        Kind::Other => Ok(()),
    }
}

/// The use cap `max_uses`, when present and valid.
pub fn max_uses(scope: &Map<String, Value>) -> Option<u32> {
    scope
        .get("max_uses")
        .and_then(whole_number)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
}

/// Request ∧ rule template: the granted scope never exceeds either side.
pub fn narrow(request: &Map<String, Value>, template: &Map<String, Value>) -> Map<String, Value> {
    let mut out = request.clone();
    for (key, t) in template {
        let merged = match request.get(key) {
            Some(r) => narrow_value(key, r, t),
            None => t.clone(),
        };
        out.insert(key.clone(), merged);
    }
    out
}

fn narrow_value(key: &str, request: &Value, template: &Value) -> Value {
    match (request, template) {
        (Value::Number(r), Value::Number(t)) => {
            if r.as_f64() <= t.as_f64() {
                request.clone()
            } else {
                template.clone()
            }
        }
        (Value::Array(r), Value::Array(t)) if key.starts_with("blocked_") => {
            let mut union = r.clone();
            for v in t {
                if !union.iter().any(|u| json_eq(u, v)) {
                    union.push(v.clone());
                }
            }
            Value::Array(union)
        }
        (Value::Array(r), Value::Array(t)) => Value::Array(
            r.iter()
                .filter(|v| t.iter().any(|w| json_eq(v, w)))
                .cloned()
                .collect(),
        ),
        (Value::Bool(r), Value::Bool(t)) => Value::Bool(*r && *t),
        (Value::Object(r), Value::Object(t)) => Value::Object(narrow(r, t)),
        _ => template.clone(),
    }
}

/// Why a human edit to a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope key `{key}`: {reason}")]
pub struct ScopeError {
    /// The key (dotted for nested objects).
    pub key: String,
    /// What is wrong, e.g. "would widen: …".
    pub reason: String,
}

/// Applies a human's edits on approval; every edit must narrow `current` (or add a valid key).
pub fn narrow_by_human(
    current: &Map<String, Value>,
    edits: &Map<String, Value>,
) -> Result<Map<String, Value>, ScopeError> {
    let out = apply_edits("", current, edits)?;
    if let Err(problems) = validate(&out)
        && let Some((key, reason)) = problems.into_iter().find(|(k, _)| edits.contains_key(k))
    {
        return Err(ScopeError { key, reason });
    }
    Ok(out)
}

fn apply_edits(
    prefix: &str,
    current: &Map<String, Value>,
    edits: &Map<String, Value>,
) -> Result<Map<String, Value>, ScopeError> {
    let mut out = current.clone();
    for (key, edit) in edits {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let fail = |reason: String| ScopeError {
            key: path.clone(),
            reason,
        };
        let Some(cur) = current.get(key) else {
            out.insert(key.clone(), edit.clone());
            continue;
        };
        let merged = match (cur, edit) {
            (Value::Number(c), Value::Number(e)) => {
                if e.as_f64() > c.as_f64() {
                    return Err(fail(format!("would widen: {e} is more than {c}")));
                }
                edit.clone()
            }
            (Value::Array(c), Value::Array(e)) if key.starts_with("blocked_") => {
                let dropped: Vec<&Value> = c
                    .iter()
                    .filter(|v| !e.iter().any(|w| json_eq(v, w)))
                    .collect();
                if !dropped.is_empty() {
                    return Err(fail(format!(
                        "would widen: unblocks {}",
                        brief_list(&dropped)
                    )));
                }
                edit.clone()
            }
            (Value::Array(c), Value::Array(e)) => {
                let added: Vec<&Value> = e
                    .iter()
                    .filter(|v| !c.iter().any(|w| json_eq(v, w)))
                    .collect();
                if !added.is_empty() {
                    return Err(fail(format!("would widen: adds {}", brief_list(&added))));
                }
                edit.clone()
            }
            (Value::Bool(c), Value::Bool(e)) => {
                if *e && !*c {
                    return Err(fail("would widen: false may not become true".to_owned()));
                }
                edit.clone()
            }
            (Value::Object(c), Value::Object(e)) => Value::Object(apply_edits(&path, c, e)?),
            (c, e) if json_eq(c, e) => edit.clone(),
            (Value::String(_), Value::String(_)) => {
                return Err(fail(
                    "would widen: a text constraint cannot be changed, only kept".to_owned(),
                ));
            }
            (c, e) => {
                return Err(fail(format!(
                    "would widen: cannot replace {} with {}",
                    type_name(c),
                    type_name(e)
                )));
            }
        };
        out.insert(key.clone(), merged);
    }
    Ok(out)
}

/// A scope constraint that `actionDetails` does not satisfy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct Violation {
    /// The scope key that refused the use.
    pub key: String,
    /// What was wrong.
    pub message: String,
}

/// Checks `actionDetails` against the conventional keys of a granted scope (first violation wins).
pub fn enforce(
    scope: &Map<String, Value>,
    action_details: Option<&Map<String, Value>>,
) -> Result<(), Violation> {
    let empty = Map::new();
    let details = action_details.unwrap_or(&empty);
    for (key, rule) in scope {
        enforce_key(key, rule, details).map_err(|message| Violation {
            key: key.clone(),
            message,
        })?;
    }
    Ok(())
}

fn enforce_key(key: &str, rule: &Value, details: &Map<String, Value>) -> Result<(), String> {
    let required =
        |field: &str| format!("actionDetails.{field} is required by this scope but was not given");
    match classify(key) {
        Kind::MaxUses | Kind::Other => Ok(()),
        Kind::Pattern(field) => {
            let value = details.get(field).ok_or_else(|| required(field))?;
            let Value::String(text) = value else {
                return Err(format!("actionDetails.{field} must be a string"));
            };
            let Value::String(pattern) = rule else {
                return Err("the scope's pattern is not a string".to_owned());
            };
            let regex = build_regex(pattern)
                .map_err(|e| format!("the scope's pattern is unusable: {e}"))?;
            if regex.is_match(text) {
                Ok(())
            } else {
                Err(format!(
                    "actionDetails.{field} {} does not match {pattern:?}",
                    brief(value)
                ))
            }
        }
        Kind::Allowed(field) => {
            let list = rule
                .as_array()
                .ok_or("the scope's allowed list is not a list")?;
            let (name, value) = lookup_singular(details, field).ok_or_else(|| required(field))?;
            match each(value)
                .iter()
                .find(|v| !list.iter().any(|a| json_eq(v, a)))
            {
                Some(bad) => Err(format!(
                    "actionDetails.{name} value {} is not allowed",
                    brief(bad)
                )),
                None => Ok(()),
            }
        }
        Kind::Blocked(field) => {
            let list = rule
                .as_array()
                .ok_or("the scope's blocked list is not a list")?;
            let Some((name, value)) = lookup_singular(details, field) else {
                return Ok(());
            };
            match each(value)
                .iter()
                .find(|v| list.iter().any(|b| json_eq(v, b)))
            {
                Some(bad) => Err(format!(
                    "actionDetails.{name} value {} is blocked",
                    brief(bad)
                )),
                None => Ok(()),
            }
        }
        Kind::Max(field) => {
            let max = rule.as_f64().ok_or("the scope's maximum is not a number")?;
            let value = details.get(field).ok_or_else(|| required(field))?;
            let (size, what) = match value {
                Value::Number(n) => (n.as_f64().unwrap_or(f64::INFINITY), "is"),
                Value::Array(items) => (items.len() as f64, "has length"),
                // A string is refused, not measured: "1000000" must not pass `max_amount: 100`.
                other => {
                    return Err(format!(
                        "actionDetails.{field} must be a number or a list, not {}",
                        type_name(other)
                    ));
                }
            };
            if size <= max {
                Ok(())
            } else {
                Err(format!(
                    "actionDetails.{field} {what} {size}, more than the maximum {max}"
                ))
            }
        }
    }
}

/// `field`, else its singular (`recipients` → `recipient`, `addresses` → `address`).
fn lookup_singular<'a, 'f>(
    details: &'a Map<String, Value>,
    field: &'f str,
) -> Option<(&'f str, &'a Value)> {
    [
        Some(field),
        field.strip_suffix('s'),
        field.strip_suffix("es"),
    ]
    .into_iter()
    .flatten()
    .filter(|name| !name.is_empty())
    .find_map(|name| details.get(name).map(|v| (name, v)))
}

/// A scalar as a one-element slice, a list as its elements.
fn each(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) => items,
        other => std::slice::from_ref(other),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A JSON rendering cut to a readable length (values may come from agents).
pub(crate) fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 80 {
        text
    } else {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    }
}

fn brief_list(values: &[&Value]) -> String {
    values
        .iter()
        .map(|v| brief(v))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
