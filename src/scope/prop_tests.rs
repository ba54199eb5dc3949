//! Property tests. Over random scopes and details, `enforce` accepts a use exactly when an
//! independent, deliberately plain reading of docs/scopes.md does (string rewriting for paths,
//! regexes for key names); narrowing never accepts what the wider scope refuses; and no input
//! makes validation, narrowing, enforcement or resource normalisation panic.

use std::collections::HashSet;

use proptest::prelude::*;
use regex::Regex;
use serde_json::json;

use super::*;
use crate::text::is_hidden;

// ---------- the independent reading of docs/scopes.md ----------

/// The spellings a name stands for: lower-case ASCII, hidden characters dropped, with and
/// without a final `s` or `es`, and with `ies` read as `y`.
fn forms(name: &str) -> HashSet<String> {
    let n: String = name
        .chars()
        .filter(|c| !is_hidden(*c))
        .collect::<String>()
        .to_ascii_lowercase();
    let mut out = HashSet::from([n.clone()]);
    for (end, with) in [("s", ""), ("es", ""), ("ies", "y")] {
        if n.ends_with(end) {
            out.insert(format!("{}{with}", &n[..n.len() - end.len()]));
        }
    }
    out.remove("");
    out
}

/// `Err` when two spellings are present, else the one value given.
fn find<'a>(details: &'a Map<String, Value>, field: &str) -> Result<Option<&'a Value>, ()> {
    let want = forms(field);
    let hits: Vec<&Value> = details
        .iter()
        .filter(|(k, _)| !forms(k).is_disjoint(&want))
        .map(|(_, v)| v)
        .collect();
    match hits.len() {
        0 => Ok(None),
        1 => Ok(Some(hits[0])),
        _ => Err(()),
    }
}

/// A path normalised by rewriting: `(parts without trailing slash, absolute, names a dir)`.
fn norm(p: &str) -> Option<(String, bool, bool)> {
    if p.is_empty() || p.contains('\\') || p.chars().any(is_hidden) {
        return None;
    }
    // A part of only dots and spaces other than `.` and `..` (`...`) has no single meaning.
    let odd_dots = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.chars().all(|c| c == '.' || c == ' ')
    };
    if p.split('/').any(odd_dots) {
        return None;
    }
    let up = Regex::new(r"/([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+)/\.\./").unwrap();
    let mut s = format!("/{p}/");
    loop {
        let before = s.clone();
        s = s.replace("//", "/").replace("/./", "/");
        s = up.replace(&s, "/").into_owned();
        if s == before {
            break;
        }
    }
    if s.starts_with("/../") {
        return None;
    }
    let dir = p.ends_with('/') || p.ends_with("/.") || p.ends_with("/..") || p == "." || p == "..";
    Some((s.trim_matches('/').to_owned(), p.starts_with('/'), dir))
}

fn rendered((parts, abs, dir): &(String, bool, bool)) -> String {
    let mut out = if *abs {
        format!("/{parts}")
    } else {
        parts.clone()
    };
    if out.is_empty() {
        out = ".".into();
    } else if *dir && !parts.is_empty() {
        out.push('/');
    }
    out
}

fn under(entry: &(String, bool, bool), value: &(String, bool, bool), fold: bool) -> bool {
    let (e, v) = if fold {
        (entry.0.to_lowercase(), value.0.to_lowercase())
    } else {
        (entry.0.clone(), value.0.clone())
    };
    entry.1 == value.1 && (e.is_empty() || v == e || v.starts_with(&format!("{e}/")))
}

fn is_path(field: &str) -> bool {
    let re = Regex::new(r"(?i)^(.*_)?(path|file|dir|directory|folder)$").unwrap();
    forms(field).iter().any(|f| re.is_match(f))
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// docs/scopes.md: a whole number, or numeric text, is read as the whole number it spells and
/// as the float it becomes; a whole float as its every digit.
fn loose(v: &Value) -> Vec<String> {
    let text = match v {
        Value::String(s) => s.chars().filter(|c| !is_hidden(*c)).collect::<String>(),
        other => other.to_string(),
    };
    let t = text.trim().to_lowercase();
    let mut readings: Vec<String> = crate::number::whole_digits(&t).into_iter().collect();
    match t.parse::<f64>() {
        Ok(0.0) => readings.push("0".into()),
        Ok(f) if f.is_finite() && f.fract() == 0.0 => readings.push(format!("{f:.0}")),
        Ok(f) if f.is_finite() => readings.push(format!("{f}")),
        _ if readings.is_empty() => readings.push(t),
        _ => {}
    }
    readings
}

/// An address as docs/scopes.md compares it in a blocked list, by rewriting.
fn address(text: &str) -> String {
    let t: String = text.chars().filter(|c| !is_hidden(*c)).collect();
    let t = t.trim().to_lowercase();
    let t = Regex::new(r"^mailto:")
        .unwrap()
        .replace(&t, "")
        .into_owned();
    let t = Regex::new(r"\.+$").unwrap().replace(&t, "").into_owned();
    let t = Regex::new(r"\+[^@]*@")
        .unwrap()
        .replace(&t, "@")
        .into_owned();
    Regex::new(r"\.+$").unwrap().replace(&t, "").into_owned()
}

/// The addresses a text value names: quotes dropped, split at `, ; < >` and spaces.
fn names(v: &Value) -> Vec<String> {
    let Some(s) = v.as_str() else {
        return Vec::new();
    };
    let s = s.replace(['"', '\''], "");
    Regex::new(r"[,;<>\s]+")
        .unwrap()
        .split(&s)
        .map(address)
        .filter(|a| !a.is_empty())
        .collect()
}

fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

fn accepts(scope: &Map<String, Value>, details: &Map<String, Value>) -> bool {
    let key_re =
        Regex::new(r"^(?:(max)_(.+)_count|(max|min|allowed|blocked)_(.+)|(.+)_(pattern))$")
            .unwrap();
    scope.iter().all(|(key, rule)| {
        if key == "max_uses" {
            return true;
        }
        let Some(c) = key_re.captures(key) else {
            return match rule {
                Value::Object(inner) if !inner.is_empty() => match find(details, key) {
                    Err(()) => false,
                    Ok(None) => accepts(inner, &Map::new()),
                    Ok(Some(Value::Object(d))) => accepts(inner, d),
                    Ok(Some(_)) => false,
                },
                _ => true,
            };
        };
        let (kind, field) = if c.get(1).is_some() {
            ("count", &c[2])
        } else if let Some(k) = c.get(3) {
            (k.as_str(), &c[4])
        } else {
            ("pattern", &c[5])
        };
        let Ok(found) = find(details, field) else {
            return false;
        };
        let path = is_path(field);
        match kind {
            "max" => found.and_then(num).is_some_and(|x| {
                x <= num(rule).unwrap()
                    && (x >= 0.0 || scope.contains_key(&format!("min_{field}")))
                    && found.is_some_and(Value::is_number)
            }),
            "min" => found
                .filter(|v| v.is_number())
                .and_then(num)
                .is_some_and(|x| x >= num(rule).unwrap()),
            "count" => found.and_then(Value::as_array).is_some_and(|a| {
                !a.iter().any(Value::is_array)
                    && a.iter()
                        .map(|x| {
                            let mut at: Vec<String> =
                                names(x).into_iter().filter(|n| n.contains('@')).collect();
                            at.sort();
                            at.dedup();
                            at.len().max(1)
                        })
                        .sum::<usize>() as f64
                        <= num(rule).unwrap()
            }),
            "allowed" => found.is_some_and(|v| {
                let list = rule.as_array().unwrap();
                let vs = items(v);
                !vs.is_empty()
                    && vs.iter().all(|x| scalar(x))
                    && vs.iter().all(|x| {
                        if path {
                            x.as_str().and_then(norm).is_some_and(|p| {
                                list.iter()
                                    .filter_map(|e| e.as_str().and_then(norm))
                                    .any(|e| under(&e, &p, false))
                            })
                        } else {
                            list.iter().any(|e| json_eq(x, e))
                        }
                    })
            }),
            "blocked" => found.is_none_or(|v| {
                let list = rule.as_array().unwrap();
                let vs = items(v);
                vs.iter().all(|x| scalar(x))
                    && vs.iter().all(|x| {
                        if path {
                            let entries: Vec<_> = list
                                .iter()
                                .filter_map(|e| e.as_str().and_then(norm))
                                .collect();
                            x.as_str().and_then(norm).is_some_and(|p| {
                                entries.iter().all(|e| e.1 == p.1)
                                    && !entries.iter().any(|e| under(e, &p, true))
                            })
                        } else {
                            !list.iter().any(|e| {
                                json_eq(x, e)
                                    || loose(x).iter().any(|r| loose(e).contains(r))
                                    || e.as_str().is_some_and(|e| names(x).contains(&address(e)))
                            })
                        }
                    })
            }),
            "pattern" => found.is_some_and(|v| {
                let re = Regex::new(rule.as_str().unwrap()).unwrap();
                let vs = items(v);
                !vs.is_empty()
                    && vs.iter().all(|x| match x {
                        Value::String(s) if path => {
                            norm(s).is_some_and(|p| re.is_match(&rendered(&p)))
                        }
                        // An absolute path in a field of another name must match in its
                        // normal form too (and have one).
                        Value::String(s) => {
                            re.is_match(s)
                                && (!s.trim_start().starts_with('/')
                                    || norm(s.trim()).is_some_and(|p| re.is_match(&rendered(&p))))
                        }
                        _ => false,
                    })
            }),
            _ => unreachable!(),
        }
    })
}

// ---------- generators ----------

fn path_text(dots: bool) -> impl Strategy<Value = String> {
    let mut parts = vec!["srv", "etc", "ETC", "a.csv", "...", "a..b"];
    if dots {
        parts.extend(["..", ".", ""]);
    }
    (
        prop::bool::weighted(0.85),
        prop::collection::vec(prop::sample::select(parts), 0..4),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(abs, parts, slash)| {
            let mut s = parts.join("/");
            if abs {
                s.insert(0, '/');
            }
            if slash {
                s.push('/');
            }
            s
        })
}

fn word() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        "a",
        "b",
        "c",
        "A",
        " a",
        "EUR",
        "usd",
        "1",
        "a\u{200B}",
    ])
    .prop_map(Value::from)
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-150i64..150).prop_map(Value::from),
        (-150.0f64..150.0).prop_map(Value::from),
        Just(json!(u64::MAX)),
    ]
}

/// A cap: mostly 0 or more (a negative cap is valid only beside a `min_`).
fn cap() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0i64..150).prop_map(Value::from),
        4 => (0.0f64..150.0).prop_map(Value::from),
        1 => number(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => number(),
        3 => word(),
        3 => path_text(true).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
    ]
}

fn detail_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec!["amount", "currency", "currencies", "amounts"]),
                inner,
                0..3
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// Details biased towards lawful shapes (so that acceptance is common), with every bypass
/// shape mixed in: other types, extra spellings, traversals, hidden characters.
fn details() -> impl Strategy<Value = Map<String, Value>> {
    let typed = |s: BoxedStrategy<Value>| prop_oneof![6 => s, 1 => detail_value()].boxed();
    let words = || prop_oneof![word(), list_of(word())].boxed();
    let paths = || {
        prop_oneof![
            path_text(true).prop_map(Value::from),
            list_of(path_text(true).prop_map(Value::from))
        ]
        .boxed()
    };
    let payment = (
        prop::option::weighted(0.8, number()),
        prop::option::weighted(0.8, word()),
    )
        .prop_map(|(a, c)| {
            let mut m = Map::new();
            if let Some(a) = a {
                m.insert("amount".into(), a);
            }
            if let Some(c) = c {
                m.insert("currency".into(), c);
            }
            Value::Object(m)
        });
    let fields = (
        prop::option::weighted(0.7, typed(number().boxed())),
        prop::option::weighted(0.05, typed(number().boxed())),
        prop::option::weighted(0.05, typed(number().boxed())),
        prop::option::weighted(0.4, typed(words())),
        prop::option::weighted(0.4, typed(words())),
        prop::option::weighted(0.4, typed(paths())),
        prop::option::weighted(0.3, typed(paths())),
        prop::option::weighted(0.5, typed(payment.boxed())),
        prop::option::weighted(0.05, detail_value()),
        prop::option::weighted(0.5, typed(number().boxed())),
    );
    fields.prop_map(
        |(amount, amounts, upper, recipient, recipients, path, paths, payment, payments, fee)| {
            let mut m = Map::new();
            for (k, v) in [
                ("amount", amount),
                ("amounts", amounts),
                ("Amount", upper),
                ("recipient", recipient),
                ("recipients", recipients),
                ("path", path),
                ("paths", paths),
                ("payment", payment),
                ("payments", payments),
                ("fee", fee),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            m
        },
    )
}

fn list_of<S: Strategy<Value = Value>>(s: S) -> impl Strategy<Value = Value> {
    prop::collection::vec(s, 0..3).prop_map(Value::from)
}

fn scope() -> impl Strategy<Value = Map<String, Value>> {
    let clean_path = || {
        path_text(false)
            .prop_filter("a path is not empty", |p| !p.is_empty())
            .prop_map(Value::from)
    };
    let entries = (
        (
            prop::option::weighted(0.25, cap()),
            prop::option::weighted(0.25, number()),
            prop::option::weighted(0.25, (0u64..4).prop_map(Value::from)),
            prop::option::weighted(0.25, list_of(word())),
            prop::option::weighted(0.25, list_of(word())),
        ),
        (
            prop::option::weighted(
                0.25,
                prop::sample::select(vec![
                    "^a$",
                    "^[ab]",
                    "(?i)eur",
                    "^/srv/",
                    "^/etc(/|$)",
                    "/$",
                ])
                .prop_map(Value::from),
            ),
            prop::option::weighted(0.25, list_of(clean_path())),
            prop::option::weighted(0.25, list_of(clean_path())),
            prop::option::weighted(
                0.25,
                prop::sample::select(vec!["^/srv/", "^/etc(/|$)", "/$", "^[a-z./]+$"])
                    .prop_map(Value::from),
            ),
            prop::option::weighted(
                0.25,
                (
                    prop::option::weighted(0.6, cap()),
                    prop::option::weighted(0.6, list_of(word())),
                ),
            ),
            prop::option::weighted(0.25, cap()),
        ),
    );
    entries.prop_map(
        |(
            (max, min, count, allowed, blocked),
            (pattern, allowed_p, blocked_p, path_pattern, payment, max_fee),
        )| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            };
            put("max_amount", max);
            put("min_amount", min);
            put("max_recipients_count", count);
            put("allowed_recipients", allowed);
            put("blocked_recipients", blocked);
            put("recipient_pattern", pattern);
            put("allowed_paths", allowed_p);
            put("blocked_paths", blocked_p);
            put("path_pattern", path_pattern);
            put("max_fee", max_fee);
            if let Some((pmax, pcur)) = payment {
                let mut p = Map::new();
                if let Some(v) = pmax {
                    p.insert("max_amount".into(), v);
                }
                if let Some(v) = pcur {
                    p.insert("allowed_currencies".into(), v);
                }
                m.insert("payment".into(), Value::Object(p));
            }
            m
        },
    )
}

/// Any JSON at all, with keys and text from the whole of Unicode.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        path_text(true).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    "(max_|min_|allowed_|blocked_)?[a-z\u{200B}\u{0430}]{0,6}(_pattern|_count)?",
                    ".{0,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => Map::from_iter([("v".to_owned(), other)]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, max_global_rejects: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn enforce_accepts_exactly_what_the_documented_rules_accept(s in scope(), d in details()) {
        prop_assume!(validate(&s).is_ok());
        let got = enforce(&s, Some(&d));
        prop_assert_eq!(got.is_ok(), accepts(&s, &d), "scope {:?}\ndetails {:?}\nenforce {:?}", s, d, got);
    }

    #[test]
    fn narrowing_never_accepts_what_the_wider_scope_refuses(
        request in scope(), template in scope(), edits in scope(), d in details()
    ) {
        prop_assume!(validate(&request).is_ok() && validate(&template).is_ok());
        let granted = narrow(&request, &template);
        if enforce(&granted, Some(&d)).is_ok() {
            prop_assert!(enforce(&template, Some(&d)).is_ok(), "granted {:?} wider than template", granted);
        }
        if let Ok(edited) = narrow_by_human(&granted, &edits)
            && enforce(&edited, Some(&d)).is_ok()
        {
            prop_assert!(enforce(&granted, Some(&d)).is_ok(), "edited {:?} wider than {:?}", edited, granted);
        }
    }

    #[test]
    fn nothing_panics_on_any_input(a in any_json(), b in any_json(), c in any_json(), text in ".{0,40}") {
        let (a, b, c) = (as_map(a), as_map(b), as_map(c));
        let _ = validate(&a);
        let _ = enforce(&a, Some(&b));
        let _ = narrow(&a, &b);
        let _ = narrow_by_human(&a, &c);
        let _ = normalize_resource(&text);
        let _ = path::clean(&text);
        for key in a.keys() {
            let _ = meaning(key);
        }
        let body = json!({"action": text, "resource": text, "scope": a, "context": b});
        if let Ok(input) = serde_json::from_value::<crate::wire::permissions::RequestInput>(body) {
            let _ = input.validate();
        }
    }
}
