//! Scopes: the JSON object of constraints attached to a permission. This module owns the key
//! conventions, their validation, narrowing (request ∧ rule `scopeTemplate` ∧ human edits, never
//! widening, in [`narrow`]) and enforcement against the `actionDetails` of a use ([`enforce`]).
//! docs/scopes.md is the reference; in short:
//! - every key, at every level, is a plain identifier (ASCII letters, digits, `_`);
//! - a key is classified by prefix first (`max_uses`, `max_<f>_count`, `max_<f>`, `min_<f>`,
//!   `allowed_<f>`, `blocked_<f>`), then by the `_pattern` suffix; anything else is passed on to
//!   the protected service, except that an object value is a nested scope whose constraints are
//!   enforced against the same nested object of `actionDetails`;
//! - a constraint inside a list cannot be enforced, so it is refused; `max_uses` counts only at
//!   the top;
//! - a field is looked up under all its spellings (`recipients`, `recipient`); two at once are
//!   refused; path-like fields are normalised ([`path`]) before any comparison;
//! - every check fails closed on a value of another type or shape.

mod enforce;
mod hosts;
mod narrow;
mod numeric_text;
pub(crate) mod path;

pub(crate) use enforce::enforce;
pub(crate) use narrow::{floor_unchosen, narrow, narrow_by_human};
pub(crate) use path::normalize_resource;

use std::cmp::Ordering;

use crate::number;
use crate::text::{is_hidden, with_markers};

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

/// JSON equality where numbers compare by value (`1 == 1.0`), recursively in lists and objects.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number::cmp(x, y) == Ordering::Equal,
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
pub(crate) enum Kind<'k> {
    MaxUses,
    Count(&'k str),
    Max(&'k str),
    Min(&'k str),
    Allowed(&'k str),
    Blocked(&'k str),
    Pattern(&'k str),
    Other,
}

impl<'k> Kind<'k> {
    /// The `actionDetails` field a constraint is about.
    fn field(self) -> Option<&'k str> {
        match self {
            Kind::Count(f)
            | Kind::Max(f)
            | Kind::Min(f)
            | Kind::Allowed(f)
            | Kind::Blocked(f)
            | Kind::Pattern(f) => Some(f),
            Kind::MaxUses | Kind::Other => None,
        }
    }
}

pub(crate) fn classify(key: &str) -> Kind<'_> {
    if key == "max_uses" {
        Kind::MaxUses
    } else if let Some(rest) = key.strip_prefix("max_") {
        match rest.strip_suffix("_count") {
            Some(field) if !field.is_empty() => Kind::Count(field),
            _ => Kind::Max(rest),
        }
    } else if let Some(field) = key.strip_prefix("min_") {
        Kind::Min(field)
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
/// a scope labels its keys with this, so nothing is shown as enforced that is not. It holds at
/// every nesting level: inside an object the same key is enforced against the same nested
/// object of `actionDetails` (a key that cannot be enforced where it is, e.g. inside a list, is
/// refused when the scope is checked, so it never reaches a screen).
pub(crate) fn meaning(key: &str) -> Option<&'static str> {
    match classify(key) {
        Kind::MaxUses => Some("uses at most"),
        Kind::Count(_) => Some("at most this many"),
        Kind::Max(_) => Some("at most"),
        Kind::Min(_) => Some("at least"),
        Kind::Allowed(_) => Some("only these"),
        Kind::Blocked(_) => Some("never these"),
        Kind::Pattern(_) => Some("must match"),
        Kind::Other => None,
    }
}

/// `Ok` for a plain identifier (ASCII letters, digits, `_`); else what is wrong with it.
pub(crate) fn check_key(key: &str) -> Result<(), String> {
    const RULE: &str = "scope keys use only ASCII letters, digits and _";
    if key.is_empty() {
        return Err(format!("an empty key is not allowed; {RULE}"));
    }
    match key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        None => Ok(()),
        Some(c) if is_hidden(c) => Err(format!(
            "has the invisible character U+{:04X}; {RULE}",
            u32::from(c)
        )),
        Some(c) => Err(format!("has `{c}` (U+{:04X}); {RULE}", u32::from(c))),
    }
}

/// `prefix.key`, the key with its hidden characters shown as markers.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    let key = with_markers(key);
    if prefix.is_empty() {
        key.into_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// `name` and its singular readings: without a final `s`, without a final `es`, with a final
/// `ies` read as `y`. Empty readings are dropped.
pub(crate) fn singulars(name: &str) -> Vec<String> {
    let mut out = vec![name.to_owned()];
    if let Some(s) = name.strip_suffix('s') {
        out.push(s.to_owned());
    }
    if let Some(s) = name.strip_suffix("es") {
        out.push(s.to_owned());
    }
    if let Some(s) = name.strip_suffix("ies") {
        out.push(format!("{s}y"));
    }
    out.retain(|s| !s.is_empty());
    out
}

/// A name as spellings compare it: invisible characters dropped, look-alikes of ASCII letters,
/// digits and `_` read as them ([`ascii_reading`]), ASCII letters lower-cased, and the word
/// separators `_`, `-` and white space dropped. So `ａmount` (full-width), `lin\u{212A}s`
/// (Kelvin sign, which JavaScript's `toLowerCase` reads as `k`), `𝐚mount` (mathematical bold),
/// `totalAmount`, `total-amount` or `amount ` is a spelling of the field too: a service that
/// normalises, case-folds or converts the case of keys would read it as that field.
pub(crate) fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut push = |c: char| {
        if !(c == '_' || c == '-' || c.is_whitespace()) {
            out.push(c.to_ascii_lowercase());
        }
    };
    for c in name.chars().filter(|c| !is_hidden(*c)) {
        match ascii_reading(c) {
            Some(text) => text.chars().for_each(&mut push),
            None => push(c),
        }
    }
    out
}

/// The ASCII text a character turns into under Unicode compatibility normalisation (NFKC), as
/// IDNA and many services read text (full-width, mathematical, circled and superscript letters
/// and digits, roman numerals, ligatures, letterlike symbols such as the Kelvin sign, the one dot
/// leader), or
/// under case mapping (the dotless `ı` and dotted `İ`, which upper- and lower-case to ASCII);
/// `None` for ASCII and for everything else.
fn ascii_reading(c: char) -> Option<std::borrow::Cow<'static, str>> {
    use std::borrow::Cow;
    use unicode_normalization::UnicodeNormalization;
    if c.is_ascii() {
        return None;
    }
    if matches!(c, '\u{0131}' | '\u{0130}') {
        return Some(Cow::Borrowed("i"));
    }
    let text: String = std::iter::once(c).nfkc().collect();
    text.is_ascii().then_some(Cow::Owned(text))
}

/// Text with the look-alikes of ASCII letters, digits and `_` read as them ([`ascii_reading`]),
/// and the full-width, small and ideographic full stops, `@` and list separators (`,` `;` `:`
/// `<` `>`) read as ASCII, as IDNA (UTS 46) and NFKC read a mail address or host name:
/// `ceo@ｘ.com`, `ceo@x。com` and `ceo﹫x.com` are sent to `ceo@x.com`. Other characters are kept
/// as they are.
pub(crate) fn ascii_look_alikes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{FF0E}' | '\u{3002}' | '\u{FF61}' | '\u{FE52}' => out.push('.'),
            '\u{FF20}' | '\u{FE6B}' => out.push('@'),
            // The full-width and small forms of the separators a list of addresses uses.
            '\u{FF0C}' | '\u{FE50}' => out.push(','),
            '\u{FF1B}' | '\u{FE54}' => out.push(';'),
            '\u{FF1A}' | '\u{FE55}' => out.push(':'),
            '\u{FF1C}' | '\u{FE64}' => out.push('<'),
            '\u{FF1E}' | '\u{FE65}' => out.push('>'),
            _ => match ascii_reading(c) {
                Some(t) => out.push_str(&t),
                None => out.push(c),
            },
        }
    }
    out
}

/// The readings under which `actionDetails` names count as spellings of `field`.
pub(crate) fn spellings(field: &str) -> Vec<String> {
    singulars(&fold(field))
}

/// True when `name` (from `actionDetails`) is a spelling of the field with these readings: the
/// two share a singular reading, e.g. `recipients`/`recipient`, `currencies`/`currency`.
pub(crate) fn spelled(readings: &[String], name: &str) -> bool {
    singulars(&fold(name)).iter().any(|r| readings.contains(r))
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

/// Checks every key at every level; returns `(dotted key, problem)` for each bad one.
pub(crate) fn validate(scope: &Map<String, Value>) -> Result<(), Vec<(String, String)>> {
    let mut problems = Vec::new();
    validate_level(scope, "", &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn validate_level(level: &Map<String, Value>, prefix: &str, problems: &mut Vec<(String, String)>) {
    for (key, value) in level {
        let path = join(prefix, key);
        if let Err(problem) =
            check_key(key).and_then(|()| check_rule(level, prefix.is_empty(), key, value, true))
        {
            problems.push((path, problem));
            continue;
        }
        match value {
            Value::Object(inner) if classify(key) == Kind::Other => {
                validate_level(inner, &path, problems);
            }
            Value::Array(_) if classify(key) == Kind::Other => {
                validate_inert(value, &path, problems)
            }
            _ => {}
        }
    }
}

/// Checks a value inside a list: keys must be identifiers, and no key may be a constraint,
/// which could not be enforced there.
fn validate_inert(value: &Value, path: &str, problems: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let p = join(path, key);
                if let Err(problem) = check_key(key) {
                    problems.push((p, problem));
                } else if classify(key) != Kind::Other {
                    problems.push((p, IN_A_LIST.to_owned()));
                } else {
                    validate_inert(v, &p, problems);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                validate_inert(item, &format!("{path}.{i}"), problems);
            }
        }
        _ => {}
    }
}

const IN_A_LIST: &str =
    "is a constraint inside a list, which agent-otp cannot enforce; put it in an object";

/// True when a constraint key appears anywhere inside `value`.
pub(crate) fn has_constraint(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| classify(k) != Kind::Other || has_constraint(v)),
        Value::Array(items) => items.iter().any(has_constraint),
        _ => false,
    }
}

/// Checks one key's value against its convention. `level` is the object holding it (a
/// `max_<f>` below 0 needs a `min_<f>` beside it); `top` is true at the top of the scope.
/// With `compile`, a `_pattern` regex is compiled to check it.
pub(crate) fn check_rule(
    level: &Map<String, Value>,
    top: bool,
    key: &str,
    value: &Value,
    compile: bool,
) -> Result<(), String> {
    let kind = classify(key);
    if kind.field() == Some("") {
        return Err(format!(
            "`{key}` needs a field name (e.g. max_amount, allowed_recipients, path_pattern)"
        ));
    }
    let number = || value.as_f64().ok_or_else(|| "must be a number".to_owned());
    match kind {
        Kind::MaxUses if !top => Err("counts only at the top of the scope".to_owned()),
        Kind::MaxUses => match whole_number(value) {
            Some(n) if n >= 1 && u32::try_from(n).is_ok() => Ok(()),
            _ => Err(format!("must be a whole number from 1 to {}", u32::MAX)),
        },
        Kind::Count(_) => whole_number(value)
            .map(|_| ())
            .ok_or_else(|| "must be a whole number, 0 or more".to_owned()),
        Kind::Max(field) => {
            if number()? < 0.0 && !level.contains_key(&format!("min_{field}")) {
                return Err(format!(
                    "must be at least 0 (a negative cap needs min_{field} beside it)"
                ));
            }
            Ok(())
        }
        Kind::Min(_) => number().map(|_| ()),
        Kind::Allowed(field) | Kind::Blocked(field) => {
            let Value::Array(items) = value else {
                return Err("must be a list of strings, numbers or booleans".to_owned());
            };
            if path::is_path_field(field) {
                for item in items {
                    let Value::String(s) = item else {
                        return Err("must be a list of paths (strings)".to_owned());
                    };
                    path::clean(s).map_err(|e| format!("{}: {e}", brief(item)))?;
                }
            } else if !items
                .iter()
                .all(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
            {
                return Err("must be a list of strings, numbers or booleans".to_owned());
            }
            Ok(())
        }
        Kind::Pattern(_) => match value {
            Value::String(pattern) if compile => build_regex(pattern).map(|_| ()),
            Value::String(_) => Ok(()),
            _ => Err("must be a regex written as a string".to_owned()),
        },
        Kind::Other => Ok(()),
    }
}

/// The use cap `max_uses`, when present and valid.
pub(crate) fn max_uses(scope: &Map<String, Value>) -> Option<u32> {
    scope
        .get("max_uses")
        .and_then(whole_number)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
}

pub(crate) fn type_name(value: &Value) -> &'static str {
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
    let text = with_markers(&value.to_string()).into_owned();
    if text.chars().count() <= 80 {
        text
    } else {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    }
}

pub(crate) fn brief_list(values: &[&Value]) -> String {
    values
        .iter()
        .map(|v| brief(v))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod bypass_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod prop_tests;
