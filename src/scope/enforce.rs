//! Enforcement: checks the `actionDetails` of a use against every constraint of the granted
//! scope, at every level (a constraint inside an object checks the same object of the details).
//! Each convention has one meaning and refuses any other type or shape (docs/scopes.md).

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::path::{self, CleanPath};
use super::{
    Kind, ascii_look_alikes, brief, build_regex, check_key, check_rule, classify, fold,
    has_constraint, join, json_eq, spelled, spellings, type_name,
};
use super::{hosts, numeric_text};
use crate::number;
use crate::text::{is_hidden, with_markers};

/// A scope constraint that `actionDetails` does not satisfy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub(crate) struct Violation {
    /// The scope key that refused the use (dotted for nested objects).
    pub key: String,
    /// What was wrong.
    pub message: String,
}

/// Checks `actionDetails` against every constraint of a granted scope (first violation wins).
/// `None` is checked as an empty object, so any constraint that needs a value refuses it.
pub(crate) fn enforce(
    scope: &Map<String, Value>,
    action_details: Option<&Map<String, Value>>,
) -> Result<(), Violation> {
    let empty = Map::new();
    check_level(scope, "", action_details.unwrap_or(&empty), "actionDetails")
}

fn check_level(
    scope: &Map<String, Value>,
    prefix: &str,
    details: &Map<String, Value>,
    at: &str,
) -> Result<(), Violation> {
    path_named(scope, prefix, details, at)?;
    for (key, rule) in scope {
        let fail = |message: String| Violation {
            key: join(prefix, key),
            message,
        };
        check_key(key)
            .map_err(|_| fail("is not a plain identifier; this token cannot be used".into()))?;
        let kind = classify(key);
        if !matches!(kind, Kind::Pattern(_)) {
            check_rule(scope, prefix.is_empty(), key, rule, false)
                .map_err(|p| fail(format!("the scope is unusable: {p}")))?;
        }
        match (kind, rule) {
            (Kind::Other, Value::Object(inner)) if has_constraint(rule) => {
                let inner_prefix = join(prefix, key);
                let empty = Map::new();
                match lookup(details, key, at).map_err(fail)? {
                    None => check_level(inner, &inner_prefix, &empty, &format!("{at}.{key}"))?,
                    Some((name, Value::Object(d))) => {
                        check_level(inner, &inner_prefix, d, &format!("{at}.{}", shown(name)))?;
                    }
                    Some((name, other)) => {
                        return Err(fail(format!(
                            "{at}.{} must be an object, not {}",
                            shown(name),
                            type_name(other)
                        )));
                    }
                }
            }
            (Kind::Other, Value::Array(_)) if has_constraint(rule) => {
                return Err(fail(
                    "holds a constraint inside a list, which cannot be enforced".into(),
                ));
            }
            (Kind::Other | Kind::MaxUses, _) => {}
            _ => constraint(kind, scope, rule, details, at).map_err(fail)?,
        }
    }
    Ok(())
}

/// Refuses a field of `details` whose name is a path into a field this level of the scope
/// checks: `"payment.amount"` or `"payment[amount]"` beside a nested `payment` scope, or
/// `"amount.value"` beside `max_amount`. qs- and lodash-style services expand such names into
/// the checked field, while here they are a field of their own, passed on unchecked.
fn path_named(
    scope: &Map<String, Value>,
    prefix: &str,
    details: &Map<String, Value>,
    at: &str,
) -> Result<(), Violation> {
    // Only a name with a separator, or with characters that fold to one, can be such a path.
    let could_be = |name: &str| {
        name.bytes()
            .any(|b| matches!(b, b'.' | b'[' | b']') || b >= 0x80)
    };
    let mut checked: Option<Vec<(&str, Vec<String>)>> = None;
    for name in details.keys().filter(|n| could_be(n)) {
        let folded = fold(name);
        let separators = ['.', '[', ']'];
        if !folded.contains(separators) {
            continue;
        }
        // lodash reads `[amount].x` and `.amount` as paths starting at `amount` too.
        let Some(head) = folded.split(separators).find(|part| !part.is_empty()) else {
            continue;
        };
        let checked = checked.get_or_insert_with(|| checked_fields(scope));
        if let Some((key, _)) = checked.iter().find(|(_, r)| spelled(r, head)) {
            return Err(Violation {
                key: join(prefix, key),
                message: format!(
                    "{at} has `{}`, a path into a field this scope checks; send it as a nested object",
                    shown(name)
                ),
            });
        }
    }
    Ok(())
}

/// The scope keys of one level that check a field of `actionDetails`, each with the readings of
/// the field it checks: constraints, and nested scopes (which check the field of their name).
fn checked_fields(scope: &Map<String, Value>) -> Vec<(&str, Vec<String>)> {
    scope
        .iter()
        .filter_map(|(key, rule)| {
            let field = match classify(key) {
                Kind::Other if rule.is_object() && has_constraint(rule) => key.as_str(),
                kind => kind.field()?,
            };
            Some((key.as_str(), spellings(field)))
        })
        .collect()
}

/// The one field of `details` spelled as `field`; two spellings at once are refused.
fn lookup<'d>(
    details: &'d Map<String, Value>,
    field: &str,
    at: &str,
) -> Result<Option<(&'d str, &'d Value)>, String> {
    let readings = spellings(field);
    let mut found: Option<(&str, &Value)> = None;
    for (name, value) in details {
        if spelled(&readings, name) {
            if let Some((first, _)) = found {
                return Err(format!(
                    "{at} has both `{}` and `{}`; send only one",
                    shown(first),
                    shown(name)
                ));
            }
            found = Some((name, value));
        }
    }
    Ok(found)
}

/// An agent's field name as it may appear in a reason: markers for hidden characters, cut short.
fn shown(name: &str) -> String {
    let marked = with_markers(name);
    if marked.chars().count() <= 60 {
        marked.into_owned()
    } else {
        let cut: String = marked.chars().take(57).collect();
        format!("{cut}...")
    }
}

fn constraint(
    kind: Kind<'_>,
    level: &Map<String, Value>,
    rule: &Value,
    details: &Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    let Some(field) = kind.field() else {
        return Ok(());
    };
    let found = lookup(details, field, at)?;
    let name = |n: &str| format!("{at}.{}", shown(n));
    let required = || format!("{at}.{field} is required by this scope but was not given");
    let is_path = path::is_path_field(field);
    match kind {
        Kind::Max(_) | Kind::Min(_) => {
            let Value::Number(bound) = rule else {
                return Err("the scope's bound is not a number".into());
            };
            let (n, value) = found.ok_or_else(required)?;
            let Value::Number(x) = value else {
                return Err(format!(
                    "{} must be a number, not {}",
                    name(n),
                    type_name(value)
                ));
            };
            if matches!(kind, Kind::Max(_)) {
                if number::cmp(x, bound) == Ordering::Greater {
                    return Err(format!("{} is {x}, more than the maximum {bound}", name(n)));
                }
                if is_negative(x) && !level.contains_key(&format!("min_{field}")) {
                    return Err(format!(
                        "{} is {x}; a negative value needs min_{field} in the scope",
                        name(n)
                    ));
                }
            } else if number::cmp(x, bound) == Ordering::Less {
                return Err(format!("{} is {x}, less than the minimum {bound}", name(n)));
            }
            Ok(())
        }
        Kind::Count(_) => {
            let cap = rule.as_f64().ok_or("the scope's count is not a number")?;
            let (n, value) = found.ok_or_else(required)?;
            let Value::Array(items) = value else {
                return Err(format!(
                    "{} must be a list, not {}",
                    name(n),
                    type_name(value)
                ));
            };
            if let Some(bad) = items.iter().find(|v| holds_list(v)) {
                return Err(format!(
                    "{} holds {}, which cannot be counted",
                    name(n),
                    type_name(bad)
                ));
            }
            let count: usize = items.iter().map(named_count).sum();
            if count as f64 > cap {
                return Err(if count == items.len() {
                    format!("{} has {count} items, more than {cap}", name(n))
                } else {
                    format!(
                        "{} names {count} addresses in {} items, more than {cap}",
                        name(n),
                        items.len()
                    )
                });
            }
            Ok(())
        }
        Kind::Allowed(_) => {
            let list = rule
                .as_array()
                .ok_or("the scope's allowed list is not a list")?;
            let (n, value) = found.ok_or_else(required)?;
            for item in values(value, &name(n), false)? {
                let ok = if is_path {
                    let p = path_of(item, &name(n))?;
                    list.iter()
                        .filter_map(|a| a.as_str().and_then(|s| path::clean(s).ok()))
                        .any(|a| a.covers(&p, false))
                } else {
                    list.iter().any(|a| json_eq(item, a))
                };
                if !ok {
                    return Err(format!("{} value {} is not allowed", name(n), brief(item)));
                }
            }
            Ok(())
        }
        Kind::Blocked(_) => {
            let list = rule
                .as_array()
                .ok_or("the scope's blocked list is not a list")?;
            let Some((n, value)) = found else {
                return Ok(());
            };
            // In a field of any other name, the entries that are absolute paths still block as
            // paths: `blocked_destinations: ["/etc"]` blocks `/etc/passwd`, `/etc//passwd` and
            // `/srv/../etc/passwd`, as the approver reads it.
            let absolute = |s: &&str| s.starts_with('/');
            let path_entries: Vec<CleanPath<'_>> = list
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| is_path || absolute(s))
                .filter_map(|s| path::clean(s).ok())
                .collect();
            // Each text entry as an address, and the host it names, read once for all values.
            let forms: Vec<Option<(String, Option<hosts::Host>)>> = list
                .iter()
                .map(|b| {
                    let form = address_form(&fold_text(b.as_str()?))?;
                    let host = hosts::of_entry(&form);
                    Some((form, host))
                })
                .collect();
            let names_a_host = forms.iter().flatten().any(|(_, host)| host.is_some());
            for item in values(value, &name(n), true)? {
                let hit = if is_path {
                    let p = path_of(item, &name(n))?;
                    if path_entries
                        .iter()
                        .any(|b| b.is_absolute() != p.is_absolute())
                    {
                        return Err(format!(
                            "{} {} cannot be compared with the blocked paths (one is relative, the other absolute)",
                            name(n),
                            brief(item)
                        ));
                    }
                    path_entries.iter().any(|b| b.covers(&p, true))
                        || blocked_reading(item, &path_entries, &name(n))?
                } else {
                    let as_path =
                        !path_entries.is_empty() && blocked_reading(item, &path_entries, &name(n))?;
                    let texts = url_texts(item);
                    let mut pieces = pieces(item);
                    pieces.extend(texts.iter().flat_map(|t| url_hosts(t)));
                    let named = if names_a_host {
                        hosts::named(&texts, &pieces)
                    } else {
                        Vec::new()
                    };
                    as_path
                        || list.iter().zip(&forms).any(|(b, form)| {
                            json_eq(item, b)
                                || loosely_equal(item, b)
                                || form.as_ref().is_some_and(|(form, host)| {
                                    pieces.contains(form)
                                        || host
                                            .as_ref()
                                            .is_some_and(|e| hosts::any_under(&named, e))
                                })
                        })
                };
                if hit {
                    return Err(format!("{} value {} is blocked", name(n), brief(item)));
                }
            }
            Ok(())
        }
        Kind::Pattern(_) => {
            let Value::String(pattern) = rule else {
                return Err("the scope's pattern is not a string".into());
            };
            let regex = build_regex(pattern)
                .map_err(|e| format!("the scope's pattern is unusable: {e}"))?;
            let (n, value) = found.ok_or_else(required)?;
            for item in values(value, &name(n), false)? {
                let Value::String(text) = item else {
                    return Err(format!(
                        "{} must be a string, not {}",
                        name(n),
                        type_name(item)
                    ));
                };
                let subject = if is_path {
                    path_of(item, &name(n))?.to_string()
                } else {
                    text.clone()
                };
                // In a field of any other name, a value that is an absolute path must match in
                // its normal form too: `/srv/data/../../etc/shadow` is `/etc/shadow` to a file
                // system, whatever its field is called.
                let normal = if !is_path && text.trim_start().starts_with('/') {
                    Some(path_of(&Value::String(text.trim().to_owned()), &name(n))?.to_string())
                } else {
                    None
                };
                for subject in std::iter::once(subject).chain(normal) {
                    if !regex.is_match(&subject) {
                        return Err(format!(
                            "{} {} does not match {}",
                            name(n),
                            brief(&Value::String(subject)),
                            brief(rule)
                        ));
                    }
                }
            }
            Ok(())
        }
        Kind::MaxUses | Kind::Other => Ok(()),
    }
}

fn is_negative(x: &Number) -> bool {
    x.as_i64().is_some_and(|i| i < 0) || x.as_f64().is_some_and(|f| f < 0.0)
}

/// The values a field gives: a list's items, or a single value as one. Each must be a string,
/// number or boolean; an empty list is refused unless `empty_ok`.
fn values<'v>(value: &'v Value, name: &str, empty_ok: bool) -> Result<&'v [Value], String> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    if items.is_empty() && !empty_ok {
        return Err(format!(
            "{name} is an empty list; at least one value is needed"
        ));
    }
    match items
        .iter()
        .find(|v| !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
    {
        Some(bad) => Err(format!(
            "{name} holds {}, which cannot be checked",
            type_name(bad)
        )),
        None => Ok(items),
    }
}

/// The absolute paths a text value may name to some reader, as a block list compares them:
/// as written without surrounding white space, with `\\` read as `/`, the path of a URL or of
/// `host:/path` (`file:///etc/passwd`, `file:/etc/passwd`, `file:etc/passwd`, `scp://h/etc/x`,
/// `h:/etc/x`), and each of those with `%XX` decoded (`/%65tc/passwd`, `/etc%2fpasswd`). Only
/// readings that start with `/`.
fn path_readings(text: &str) -> Vec<String> {
    let trimmed = text.trim();
    let slashed = trimmed.replace('\\', "/");
    let mut out = vec![trimmed.to_owned(), slashed.clone()];
    if let Some((scheme, rest)) = slashed.split_once(':') {
        out.push(rest.to_owned());
        if scheme.eq_ignore_ascii_case("file") {
            // `file:etc/passwd` and `file:/etc/passwd` are `/etc/passwd` to a URL parser.
            out.push(format!("/{}", rest.trim_start_matches('/')));
        }
        let after = rest.trim_start_matches('/');
        if let Some(j) = after.find('/') {
            out.push(after[j..].to_owned());
        }
    }
    for i in 0..out.len() {
        out.push(fully_decoded(&out[i]));
    }
    // As written first, so a value that cannot be normalised is refused for what it is.
    let mut seen = Vec::with_capacity(out.len());
    for p in out {
        if p.starts_with('/') && !seen.contains(&p) {
            seen.push(p);
        }
    }
    seen
}

/// `text` with `%XX` decoded until nothing changes (at most four layers: `%2565` is `e`).
fn fully_decoded(text: &str) -> String {
    let mut decoded = text.to_owned();
    for _ in 0..4 {
        let next = percent_decoded(&decoded);
        if next == decoded {
            break;
        }
        decoded = next;
    }
    decoded
}

/// True when a reading of `item` ([`path_readings`]) lies under a blocked path. A reading that
/// cannot be normalised refuses the use: what it names is unclear.
fn blocked_reading(item: &Value, entries: &[CleanPath<'_>], name: &str) -> Result<bool, String> {
    let Value::String(text) = item else {
        return Ok(false);
    };
    for reading in path_readings(text) {
        let p = path::clean(&reading).map_err(|e| {
            format!(
                "{name} {} reads as the path {}, which {e}",
                brief(item),
                brief(&Value::String(reading.clone()))
            )
        })?;
        if entries.iter().any(|b| b.covers(&p, true)) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn path_of<'v>(item: &'v Value, name: &str) -> Result<CleanPath<'v>, String> {
    let Value::String(s) = item else {
        return Err(format!(
            "{name} must be a path (a string), not {}",
            type_name(item)
        ));
    };
    path::clean(s).map_err(|e| format!("{name} {} {e}", brief(item)))
}

/// Text without hidden characters, look-alikes of ASCII read as ASCII ([`ascii_look_alikes`]),
/// in lower case.
fn fold_text(s: &str) -> String {
    ascii_look_alikes(&s.chars().filter(|c| !is_hidden(*c)).collect::<String>()).to_lowercase()
}

/// The pieces a text value names, as a blocked list also compares them: every piece of every
/// [`readings`] of it. So `"Boss <ceo@x.com>"`, `"bob@x.com, ceo@x.com"`, `"ceo+tag@x.com"`,
/// `"evil.com."`, `"group:ceo@x.com;"` and `"mailto:?to=ceo@x.com"` each name the blocked
/// `ceo@x.com` or `evil.com`: a mail or DNS library reads them so.
fn pieces(value: &Value) -> Vec<String> {
    readings(value).into_iter().flatten().collect()
}

/// Each way a text may be read, as its pieces: quotes dropped, white space around `@` closed up
/// (RFC 5322 allows it: `ceo @ x.com`), split at `,` `;` `:` `<` `>` `(` `)` `?` `&` `=` `#` and
/// white space (lists, groups, source routes, `mailto:` queries), each in [`address_form`].
/// A text is read with `%XX` decoded as `mailto:` URLs are and as it is; with hidden characters
/// dropped and as separators (a line separator between two addresses); and an RFC 5322
/// `(comment)` both dropped, as parsers drop it (`ceo(x)@x.com` is sent to `ceo@x.com`), and as a
/// separator, so an address inside one still counts.
fn readings(value: &Value) -> Vec<Vec<String>> {
    let Value::String(s) = value else {
        return Vec::new();
    };
    let mut texts = Vec::new();
    for raw in [s.clone(), percent_decoded(s)] {
        let spaced: String = raw
            .chars()
            .map(|c| if is_hidden(c) { ' ' } else { c })
            .collect();
        for text in [fold_text(&raw), fold_text(&spaced)] {
            let text: String = text.chars().filter(|c| !matches!(c, '"' | '\'')).collect();
            if text.contains('(') {
                texts.push(without_comments(&text));
            }
            texts.push(text);
        }
    }
    texts.sort();
    texts.dedup();
    texts
        .iter()
        .map(|t| {
            closed_up_at_signs(t)
                .split(|c: char| {
                    matches!(
                        c,
                        ',' | ';' | ':' | '<' | '>' | '(' | ')' | '?' | '&' | '=' | '#'
                    ) || c.is_whitespace()
                })
                .filter_map(address_form)
                .collect()
        })
        .collect()
}

/// `text` with each `%XX` read as the byte it encodes (as in a `mailto:` URL).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let byte = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(byte).unwrap_or(0));
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with runs of white space collapsed to one space, and dropped next to an `@`.
fn closed_up_at_signs(text: &str) -> String {
    let words: Vec<&str> = text
        .split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = String::with_capacity(text.len());
    for (i, word) in words.iter().enumerate() {
        if i > 0 && !words[i - 1].ends_with('@') && !word.starts_with('@') {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// True for a list, or an object holding one at any depth: a count cap cannot tell how many
/// items such an item stands for.
fn holds_list(item: &Value) -> bool {
    match item {
        Value::Array(_) => true,
        Value::Object(fields) => fields.values().any(holds_list),
        _ => false,
    }
}

/// How many items one list item counts as under a count cap: a text naming several addresses
/// (`"a@x.com, b@y.com"`, which a mail library sends to two) counts each address it names, as
/// the [`readings`] that finds the most reads them; an object (`{"email": "a@x.com, b@x.com"}`)
/// the addresses its texts name at any depth; anything else counts once.
fn named_count(item: &Value) -> usize {
    addresses_named(item).max(1)
}

fn addresses_named(item: &Value) -> usize {
    if let Value::Object(fields) = item {
        return fields.values().map(addresses_named).sum();
    }
    readings(item)
        .into_iter()
        .map(|pieces| {
            let mut addresses: Vec<String> =
                pieces.into_iter().filter(|p| p.contains('@')).collect();
            addresses.sort();
            addresses.dedup();
            addresses.len()
        })
        .max()
        .unwrap_or(0)
}

/// A value as URL parsers may read it: a text as written, and with `%XX` decoded and look-alikes
/// of ASCII as ASCII, once with `\` as `/` (as WHATWG URL parsers read it) and once as written
/// (as Python's `urlsplit` reads `http://good.com\@evil.com/`: its host is `evil.com`); a number
/// as its digits.
fn url_texts(item: &Value) -> Vec<String> {
    match item {
        Value::String(text) => {
            let folded = fold_text(&fully_decoded(text));
            vec![text.to_owned(), folded.replace('\\', "/"), folded]
        }
        // A service may put a number in a URL: `http://2130706433/` is 127.0.0.1, and so is
        // JavaScript's `"http://" + 2130706433.0`.
        Value::Number(n) => {
            let whole = n
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| format!("{f:.0}"));
            std::iter::once(n.to_string()).chain(whole).collect()
        }
        _ => Vec::new(),
    }
}

/// The hosts a URL-like text ([`url_texts`]) may name, as a block list of hosts compares them:
/// the authority after `//` or after a scheme's colon and any slashes (`https://evil.com`,
/// `https:/evil.com`, `https:evil.com`, `ws:\\evil.com` read with `\\` as `/`), without user
/// info, port and final dots; and the part before the first `/` of a text without `//` that has
/// a dot there and no `@` (`evil.com/x`).
fn url_hosts(text: &str) -> Vec<String> {
    let text = text.trim();
    let mut authorities = Vec::new();
    if let Some((_, rest)) = text.split_once("//") {
        authorities.push(rest);
    }
    if let Some((scheme, rest)) = text.split_once(':')
        && !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
    {
        authorities.push(rest.trim_start_matches('/'));
    }
    if !text.contains("//")
        && let Some((head, _)) = text.split_once('/')
        && head.contains('.')
        && !head.contains('@')
    {
        authorities.push(head);
    }
    authorities
        .into_iter()
        .filter_map(|authority| {
            let authority = authority.split(['/', '?', '#']).next()?;
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = match host.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => host,
            };
            let host = host.trim_end_matches('.');
            (!host.is_empty()).then(|| host.to_owned())
        })
        .collect()
}

/// Text without its RFC 5322 comments (nested `(…)` spans); an unclosed one runs to the end.
fn without_comments(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// A piece as an address: without a `mailto:` prefix (and its `?query`) or final dots; for
/// `local@domain`, the local part without its `+tag` and the domain without final dots. `None`
/// when empty.
fn address_form(piece: &str) -> Option<String> {
    let p = piece.trim();
    let p = match p.strip_prefix("mailto:") {
        // `mailto:ceo@x.com?subject=…` is sent to `ceo@x.com`.
        Some(rest) => rest.split(['?', '#']).next().unwrap_or(rest),
        None => p,
    };
    let p = p.trim_end_matches('.');
    if p.is_empty() {
        return None;
    }
    Some(match p.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{}", domain.trim_end_matches('.'))
        }
        None => p.to_owned(),
    })
}

/// The readings of a value that a blocked list compares: text without hidden characters or
/// surrounding spaces, in lower case; a number, or numeric text in any notation that a reader
/// takes for a number ([`numeric_text`]: `"١٣"`, `"1_3"`, `"0x0d"`), as its canonical number. A
/// whole number, as a number or as text, has two readings, itself and the float it becomes
/// (`9007199254740993` and `"9007199254740993.0"` are both 9007199254740993 and
/// 9007199254740992), so a variant is blocked whether the protected service reads it exactly or
/// as a float (JavaScript's `JSON.parse` does). A boolean is also 1 or 0, and empty text 0, as
/// Python and JavaScript compare them. Two values match when a reading is shared.
fn loose(value: &Value) -> Vec<String> {
    // A whole float as the exact whole number it is (`{:.0}` prints every digit; Display would
    // print 2^64 as 18446744073709552000), any other by its shortest spelling.
    let canon = |f: f64| match f {
        0.0 => "0".to_owned(),
        f if f.fract() == 0.0 => format!("{f:.0}"),
        f => f.to_string(),
    };
    match value {
        Value::String(s) => {
            let t: String = s.chars().filter(|c| !is_hidden(*c)).collect();
            let t = t.trim().to_lowercase();
            let numbers: Vec<String> = numeric_text::spellings(&ascii_look_alikes(&t))
                .iter()
                .flat_map(|text| {
                    let spelled = number::whole_digits(text);
                    let float = text.parse::<f64>().ok().filter(|f| f.is_finite());
                    spelled.into_iter().chain(float.map(canon))
                })
                .collect();
            // Empty text is 0 to JavaScript's `Number("")`.
            match (numbers.is_empty(), t.is_empty()) {
                (true, true) => vec![t, "0".to_owned()],
                (true, false) => vec![t],
                (false, _) => numbers,
            }
        }
        Value::Number(n) => {
            let whole = n.as_i64().map(|i| i.to_string());
            let whole = whole.or_else(|| n.as_u64().map(|u| u.to_string()));
            whole.into_iter().chain(n.as_f64().map(canon)).collect()
        }
        // Python's `True == 1`, JavaScript's `Number(true)`.
        Value::Bool(b) => vec![b.to_string(), u8::from(*b).to_string()],
        _ => Vec::new(),
    }
}

/// Whether two values share a [`loose`] reading.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    let b = loose(b);
    loose(a).iter().any(|r| b.contains(r))
}
