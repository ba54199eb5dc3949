//! Narrowing, never widening: request ∧ rule `scopeTemplate` ([`narrow`]) and a human's edits on
//! approval ([`narrow_by_human`]). Numbers take the smaller value, except a `min_<f>`, which
//! takes the larger; lists intersect (`blocked_` lists unite; path lists compare by path prefix);
//! booleans AND; strings from the template win; keys missing from one side are added. A
//! `max_<f>` without a `min_<f>` means "at least 0", so a `min_<f>` below 0 is raised to 0 when
//! the other side caps the field.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::path::{self, CleanPath};
use super::{Kind, brief_list, classify, json_eq, type_name, validate};
use crate::number;

/// Request ∧ rule template: the granted scope never exceeds either side.
pub(crate) fn narrow(
    request: &Map<String, Value>,
    template: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = request.clone();
    for (key, t) in template {
        let merged = match request.get(key) {
            Some(r) => narrow_value(key, r, t),
            None => t.clone(),
        };
        out.insert(key.clone(), merged);
    }
    raise_floors(&mut out, request, template);
    out
}

fn narrow_value(key: &str, request: &Value, template: &Value) -> Value {
    let kind = classify(key);
    match (request, template) {
        (Value::Number(r), Value::Number(t)) => {
            let keep = if matches!(kind, Kind::Min(_)) {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            if number::cmp(r, t) == keep {
                request.clone()
            } else {
                template.clone()
            }
        }
        (Value::Array(r), Value::Array(t)) => match kind {
            Kind::Blocked(_) => {
                let mut union = r.clone();
                for v in t {
                    if !union.iter().any(|u| json_eq(u, v)) {
                        union.push(v.clone());
                    }
                }
                Value::Array(union)
            }
            Kind::Allowed(field) if path::is_path_field(field) => {
                // Each side's entries that the other side allows: `/srv/reports/q1` survives
                // against `/srv/reports`.
                let mut out: Vec<Value> = Vec::new();
                for v in r
                    .iter()
                    .filter(|v| covered(t, v, false))
                    .chain(t.iter().filter(|v| covered(r, v, false)))
                {
                    if !out.iter().any(|o| json_eq(o, v)) {
                        out.push(v.clone());
                    }
                }
                Value::Array(out)
            }
            _ => Value::Array(
                r.iter()
                    .filter(|v| t.iter().any(|w| json_eq(v, w)))
                    .cloned()
                    .collect(),
            ),
        },
        (Value::Bool(r), Value::Bool(t)) => Value::Bool(*r && *t),
        (Value::Object(r), Value::Object(t)) => Value::Object(narrow(r, t)),
        _ => template.clone(),
    }
}

/// True when some path in `list` covers the path `value`.
fn covered(list: &[Value], value: &Value, fold: bool) -> bool {
    let Some(p) = value.as_str().and_then(|s| path::clean(s).ok()) else {
        return false;
    };
    list.iter()
        .filter_map(|e| e.as_str().and_then(|s| path::clean(s).ok()))
        .any(|e: CleanPath<'_>| e.covers(&p, fold))
}

/// The lower bound a level puts on `field`: its `min_<f>`, else 0 under a `max_<f>`.
fn floor(level: &Map<String, Value>, field: &str) -> Option<Value> {
    match level.get(&format!("min_{field}")) {
        Some(v @ Value::Number(_)) => Some(v.clone()),
        _ if level.contains_key(&format!("max_{field}")) => Some(Value::from(0)),
        _ => None,
    }
}

fn raise_floors(out: &mut Map<String, Value>, a: &Map<String, Value>, b: &Map<String, Value>) {
    let fields: Vec<String> = out
        .keys()
        .filter_map(|k| match classify(k) {
            Kind::Min(f) => Some(f.to_owned()),
            _ => None,
        })
        .collect();
    for field in fields {
        let highest = [floor(a, &field), floor(b, &field)]
            .into_iter()
            .flatten()
            .max_by(|x, y| match (x, y) {
                (Value::Number(x), Value::Number(y)) => number::cmp(x, y),
                _ => Ordering::Equal,
            });
        if let Some(v) = highest {
            out.insert(format!("min_{field}"), v);
        }
    }
}

/// A grant no human saw, with each `min_<f>` below 0 beside a `max_<f>` raised to 0 unless
/// `chosen` (given the key's nesting, outermost first) says the policy itself named it. A
/// `max_<f>` alone means "at least 0"; a rule whose conditions cap `scope.max_amount` has not
/// agreed to the `min_amount: -1000000` an agent added beside it.
pub(crate) fn floor_unchosen(scope: &mut Map<String, Value>, chosen: &dyn Fn(&[&str]) -> bool) {
    floor_level(scope, &mut Vec::new(), chosen);
}

fn floor_level(
    scope: &mut Map<String, Value>,
    path: &mut Vec<String>,
    chosen: &dyn Fn(&[&str]) -> bool,
) {
    let mut chosen_at = |key: &str| {
        path.push(key.to_owned());
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        let yes = chosen(&keys);
        path.pop();
        yes
    };
    let raise: Vec<String> = scope
        .iter()
        .filter(|(key, value)| match classify(key) {
            Kind::Min(field) => {
                value.as_f64().is_some_and(|f| f < 0.0)
                    && scope.contains_key(&format!("max_{field}"))
            }
            _ => false,
        })
        .map(|(key, _)| key.clone())
        .filter(|key| !chosen_at(key))
        .collect();
    for key in raise {
        scope.insert(key, Value::from(0));
    }
    for (key, value) in scope.iter_mut() {
        if let (Kind::Other, Value::Object(inner)) = (classify(key), value) {
            path.push(key.clone());
            floor_level(inner, path, chosen);
            path.pop();
        }
    }
}

/// Why a human edit to a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope key `{key}`: {reason}")]
pub(crate) struct ScopeError {
    /// The key (dotted for nested objects).
    pub key: String,
    /// What is wrong, e.g. "would widen: …".
    pub reason: String,
}

/// Applies a human's edits on approval; every edit must narrow `current` (or add a valid key).
/// The result is validated as a whole, so an added key must be a plain identifier.
pub(crate) fn narrow_by_human(
    current: &Map<String, Value>,
    edits: &Map<String, Value>,
) -> Result<Map<String, Value>, ScopeError> {
    let out = apply_edits("", current, edits)?;
    if let Err(problems) = validate(&out)
        && let Some((key, reason)) = problems.into_iter().next()
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
        let path = super::join(prefix, key);
        let fail = |reason: String| ScopeError {
            key: path.clone(),
            reason,
        };
        let kind = classify(key);
        let Some(cur) = current.get(key) else {
            // A new key narrows, except a `min_<f>` below the floor a `max_<f>` already sets.
            if let (Kind::Min(field), Some(Value::Number(f)), Value::Number(e)) =
                (kind, floor(current, kind.field().unwrap_or_default()), edit)
                && number::cmp(e, &f) == Ordering::Less
            {
                return Err(fail(format!(
                    "would widen: {e} is below {f}, the lowest max_{field} allows now"
                )));
            }
            out.insert(key.clone(), edit.clone());
            continue;
        };
        let merged = match (cur, edit) {
            (Value::Number(c), Value::Number(e)) => {
                let order = number::cmp(e, c);
                if matches!(kind, Kind::Min(_)) && order == Ordering::Less {
                    return Err(fail(format!("would widen: {e} is less than {c}")));
                }
                if !matches!(kind, Kind::Min(_)) && order == Ordering::Greater {
                    return Err(fail(format!("would widen: {e} is more than {c}")));
                }
                edit.clone()
            }
            (Value::Array(c), Value::Array(e)) => {
                let is_path = kind.field().is_some_and(path::is_path_field);
                if let Kind::Blocked(_) = kind {
                    let dropped: Vec<&Value> = c
                        .iter()
                        .filter(|v| {
                            !(e.iter().any(|w| json_eq(v, w)) || is_path && covered(e, v, true))
                        })
                        .collect();
                    if !dropped.is_empty() {
                        return Err(fail(format!(
                            "would widen: unblocks {}",
                            brief_list(&dropped)
                        )));
                    }
                } else {
                    let path_list = is_path && matches!(kind, Kind::Allowed(_));
                    let added: Vec<&Value> = e
                        .iter()
                        .filter(|v| {
                            !(c.iter().any(|w| json_eq(v, w)) || path_list && covered(c, v, false))
                        })
                        .collect();
                    if !added.is_empty() {
                        return Err(fail(format!("would widen: adds {}", brief_list(&added))));
                    }
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
