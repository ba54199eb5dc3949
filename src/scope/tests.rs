//! Tests for scope validation, narrowing, human edits and enforcement.

use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

#[test]
fn validate_accepts_and_rejects_each_convention() {
    let good = obj(json!({
        "max_uses": 3, "max_amount": 10.5, "max_size": 0, "allowed_extensions": [".txt", 1, true],
        "blocked_domains": [], "path_pattern": "^/tmp/", "note": {"anything": [1, {}]}
    }));
    assert_eq!(validate(&good), Ok(()));
    let cases = [
        ("max_uses", json!(0)),
        ("max_uses", json!(1.5)),
        ("max_uses", json!("3")),
        ("max_uses", json!(5_000_000_000u64)),
        ("max_amount", json!(-1)),
        ("max_amount", json!("10")),
        ("max_", json!(1)),
        ("allowed_recipients", json!("a@b.c")),
        ("allowed_recipients", json!([["nested"]])),
        ("blocked_domains", json!([{"a": 1}])),
        ("blocked_", json!([])),
        ("path_pattern", json!("(unclosed")),
        ("path_pattern", json!(5)),
        ("path_pattern", json!("a".repeat(MAX_PATTERN_CHARS + 1))),
        ("_pattern", json!("x")),
    ];
    for (key, value) in cases {
        let scope = obj(json!({ key: value.clone() }));
        let problems = validate(&scope).expect_err(&format!("{key}={value} should fail"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, key);
    }
    assert_eq!(validate(&obj(json!({"max_uses": 2.0}))), Ok(()));
}

#[test]
fn regex_errors_are_one_line_and_size_limited() {
    let err = build_regex("(a").unwrap_err();
    assert!(
        err.starts_with("invalid regex:") && !err.contains('\n'),
        "{err}"
    );
    assert!(
        build_regex(r"\w{1000}")
            .unwrap_err()
            .contains("too complex")
    );
    assert!(build_regex(r".*@mycompany\.com$").is_ok());
    assert!(build_regex(r"^[\w.+-]+@example\.com$").is_ok());
}

#[test]
fn max_uses_reads_whole_numbers_only() {
    assert_eq!(max_uses(&obj(json!({"max_uses": 3}))), Some(3));
    assert_eq!(max_uses(&obj(json!({"max_uses": 3.0}))), Some(3));
    assert_eq!(max_uses(&obj(json!({"max_uses": 0}))), None);
    assert_eq!(max_uses(&obj(json!({"max_uses": "3"}))), None);
    assert_eq!(max_uses(&obj(json!({}))), None);
}

#[test]
fn narrow_takes_the_tighter_side() {
    let request = obj(json!({
        "max_amount": 50, "max_size": 10, "allowed_to": ["a", "b", "c"], "blocked_to": ["x", "y"],
        "attachments": true, "inline": true, "subject": "mine", "only_request": 1,
        "nested": {"max_n": 9, "flag": true}, "mixed": "text"
    }));
    let template = obj(json!({
        "max_amount": 100, "max_size": 5.5, "allowed_to": ["c", "a", "z"], "blocked_to": ["y", "z"],
        "attachments": false, "inline": true, "subject": "theirs", "only_template": [1],
        "nested": {"max_n": 3, "extra": "e"}, "mixed": 7
    }));
    let got = narrow(&request, &template);
    assert_eq!(
        Value::Object(got),
        json!({
            "max_amount": 50, "max_size": 5.5, "allowed_to": ["a", "c"], "blocked_to": ["x", "y", "z"],
            "attachments": false, "inline": true, "subject": "theirs", "only_request": 1,
            "only_template": [1], "nested": {"max_n": 3, "flag": true, "extra": "e"}, "mixed": 7
        })
    );
    assert_eq!(narrow(&request, &Map::new()), request);
}

#[test]
fn narrow_by_human_accepts_narrowing() {
    let current = obj(json!({
        "max_amount": 100, "allowed_to": ["a", "b"], "blocked_to": ["x"], "attachments": true,
        "subject": "s", "nested": {"max_n": 5}
    }));
    let edits = obj(json!({
        "max_amount": 40, "allowed_to": ["b"], "blocked_to": ["x", "y"], "attachments": false,
        "subject": "s", "nested": {"max_n": 1}, "max_size": 1000, "path_pattern": "^/tmp/"
    }));
    let got = narrow_by_human(&current, &edits).unwrap();
    assert_eq!(
        Value::Object(got),
        json!({
            "max_amount": 40, "allowed_to": ["b"], "blocked_to": ["x", "y"], "attachments": false,
            "subject": "s", "nested": {"max_n": 1}, "max_size": 1000, "path_pattern": "^/tmp/"
        })
    );
    assert_eq!(narrow_by_human(&current, &Map::new()).unwrap(), current);
}

#[test]
fn narrow_by_human_refuses_widening() {
    let current = obj(json!({
        "max_amount": 100, "allowed_to": ["a", "b"], "blocked_to": ["x"], "attachments": false,
        "subject": "s", "nested": {"max_n": 5}, "max_uses": 2
    }));
    let cases = [
        (json!({"max_amount": 101}), "max_amount", "would widen"),
        (
            json!({"allowed_to": ["a", "c"]}),
            "allowed_to",
            "would widen",
        ),
        (json!({"blocked_to": []}), "blocked_to", "would widen"),
        (json!({"attachments": true}), "attachments", "would widen"),
        (json!({"subject": "other"}), "subject", "would widen"),
        (json!({"max_amount": "100"}), "max_amount", "would widen"),
        (json!({"max_amount": null}), "max_amount", "would widen"),
        (
            json!({"nested": {"max_n": 6}}),
            "nested.max_n",
            "would widen",
        ),
        (json!({"max_uses": 0}), "max_uses", "whole number"),
        (
            json!({"new_pattern": "(bad"}),
            "new_pattern",
            "invalid regex",
        ),
    ];
    for (edits, key, reason) in cases {
        let err = narrow_by_human(&current, &obj(edits.clone())).unwrap_err();
        assert_eq!(err.key, key, "{edits}");
        assert!(err.reason.contains(reason), "{edits}: {err}");
        assert!(err.to_string().contains(key));
    }
}

#[test]
fn enforce_accepts_matching_details() {
    let scope = obj(json!({
        "max_uses": 1, "path_pattern": "^/tmp/", "allowed_recipients": ["a@x.com", "b@x.com"],
        "blocked_domains": ["evil.com"], "max_amount": 100,
        "allowed_extensions": [".txt"], "allowed_addresses": ["home"], "free_text": "passes through",
        "max_attachments_count": 2
    }));
    let details = obj(json!({
        "path": "/tmp/a.txt", "recipients": ["a@x.com", "b@x.com"], "domain": "good.com",
        "amount": 100.0, "attachments": ["1", "2"], "extension": ".txt",
        "address": "home"
    }));
    assert_eq!(enforce(&scope, Some(&details)), Ok(()));
    assert_eq!(enforce(&obj(json!({"max_uses": 1, "x": 1})), None), Ok(()));
}

#[test]
fn enforce_refuses_each_violation() {
    let cases = [
        (
            json!({"path_pattern": "^/tmp/"}),
            json!({"path": "/etc/passwd"}),
            "path_pattern",
        ),
        (json!({"path_pattern": "^/tmp/"}), json!({}), "path_pattern"),
        (
            json!({"path_pattern": "^/tmp/"}),
            json!({"path": 5}),
            "path_pattern",
        ),
        (
            json!({"allowed_recipients": ["a"]}),
            json!({"recipients": ["a", "b"]}),
            "allowed_recipients",
        ),
        (
            json!({"allowed_recipients": ["a"]}),
            json!({"recipient": "b"}),
            "allowed_recipients",
        ),
        (
            json!({"allowed_recipients": ["a"]}),
            json!({}),
            "allowed_recipients",
        ),
        (
            json!({"allowed_addresses": ["a"]}),
            json!({"address": "b"}),
            "allowed_addresses",
        ),
        (
            json!({"blocked_domains": ["evil.com"]}),
            json!({"domain": "evil.com"}),
            "blocked_domains",
        ),
        (
            json!({"blocked_domains": ["evil.com"]}),
            json!({"domains": ["ok", "evil.com"]}),
            "blocked_domains",
        ),
        (
            json!({"max_amount": 100}),
            json!({"amount": 100.5}),
            "max_amount",
        ),
        (json!({"max_amount": 100}), json!({}), "max_amount"),
        (
            json!({"max_amount": 100}),
            json!({"amount": true}),
            "max_amount",
        ),
        (
            json!({"max_recipients": 1}),
            json!({"recipients": ["a", "b"]}),
            "max_recipients",
        ),
        // A numeric string is refused rather than measured by its length.
        (
            json!({"max_amount": 100}),
            json!({"amount": "1000000"}),
            "max_amount",
        ),
    ];
    for (scope, details, key) in cases {
        let err = enforce(&obj(scope.clone()), Some(&obj(details.clone())))
            .expect_err(&format!("{scope} vs {details}"));
        assert_eq!(err.key, key);
        assert!(err.to_string().starts_with(key));
    }
    assert!(enforce(&obj(json!({"blocked_domains": ["x"]})), None).is_ok());
    assert!(enforce(&obj(json!({"max_amount": 1})), None).is_err());
}

#[test]
fn json_eq_compares_numbers_numerically() {
    assert!(json_eq(&json!(1), &json!(1.0)));
    assert!(json_eq(&json!([1, {"a": 2}]), &json!([1.0, {"a": 2.0}])));
    assert!(!json_eq(&json!(1), &json!("1")));
    assert!(!json_eq(&json!(-1), &json!(u64::MAX)));
    assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
    // Both read as the f64 9007199254740992; they are not the same number.
    assert!(!json_eq(
        &json!(9007199254740993u64),
        &json!(9007199254740992.0)
    ));
    assert!(json_eq(
        &json!(9007199254740992u64),
        &json!(9007199254740992.0)
    ));
    assert!(json_eq(&json!(0), &json!(-0.0)));
}

#[test]
fn meaning_names_every_convention() {
    for (key, want) in [
        ("max_uses", Some("uses at most")),
        ("max_recipients_count", Some("at most this many")),
        ("max_amount", Some("at most")),
        ("max_count", Some("at most")),
        ("min_amount", Some("at least")),
        ("allowed_to", Some("only these")),
        ("blocked_to", Some("never these")),
        ("subject_pattern", Some("must match")),
        ("subject", None),
        ("payment", None),
    ] {
        assert_eq!(meaning(key), want, "{key}");
    }
}

#[test]
fn narrowing_raises_minimums_and_compares_paths_by_prefix() {
    let got = narrow(
        &obj(json!({"min_amount": -50, "max_amount": 100})),
        &obj(json!({"max_amount": 500})),
    );
    assert_eq!(
        Value::Object(got),
        json!({"min_amount": 0, "max_amount": 100})
    );
    let got = narrow(
        &obj(json!({"min_amount": 5})),
        &obj(json!({"min_amount": 10})),
    );
    assert_eq!(Value::Object(got), json!({"min_amount": 10}));
    let got = narrow(
        &obj(json!({"min_amount": -50, "max_amount": 10})),
        &Map::new(),
    );
    assert_eq!(
        Value::Object(got),
        json!({"min_amount": -50, "max_amount": 10})
    );
    let got = narrow(
        &obj(json!({"allowed_paths": ["/srv/reports", "/home"]})),
        &obj(json!({"allowed_paths": ["/srv/reports/q1", "/var"]})),
    );
    assert_eq!(
        Value::Object(got),
        json!({"allowed_paths": ["/srv/reports/q1"]})
    );
}

#[test]
fn a_human_narrows_with_the_same_key_rules() {
    let current = obj(json!({
        "max_amount": 100, "min_fee": -5, "allowed_paths": ["/srv/reports"],
        "blocked_paths": ["/etc/shadow"], "payment": {"max_n": 3}
    }));
    let accepted = [
        json!({"min_fee": 0}),
        json!({"min_amount": 5}),
        json!({"allowed_paths": ["/srv/reports/q1"]}),
        json!({"blocked_paths": ["/etc"]}),
        json!({"payment": {"min_n": 1}}),
        json!({"new_thing": {"max_x": 1}}),
    ];
    for edits in accepted {
        assert!(
            narrow_by_human(&current, &obj(edits.clone())).is_ok(),
            "{edits}"
        );
    }
    let refused = [
        (json!({"min_fee": -6}), "min_fee", "would widen"),
        (json!({"min_amount": -1}), "min_amount", "would widen"),
        (
            json!({"allowed_paths": ["/srv"]}),
            "allowed_paths",
            "would widen",
        ),
        (
            json!({"blocked_paths": ["/etc/shadow/x"]}),
            "blocked_paths",
            "unblocks",
        ),
        (json!({"bad key": 1}), "bad key", "ASCII letters"),
        (
            json!({"max_amount\u{200B}": 1}),
            "max_amount[U+200B]",
            "invisible",
        ),
        (
            json!({"payment": {"max_uses": 1}}),
            "payment.max_uses",
            "only at the top",
        ),
        (
            json!({"payment": {"n\u{0430}": 1}}),
            "payment.n[U+0430]",
            "U+0430",
        ),
        (
            json!({"list": [{"max_x": 1}]}),
            "list.0.max_x",
            "inside a list",
        ),
    ];
    for (edits, key, text) in refused {
        let err = narrow_by_human(&current, &obj(edits.clone())).unwrap_err();
        assert_eq!(err.key, key, "{edits}: {err}");
        assert!(err.reason.contains(text), "{edits}: {err}");
    }
}

/// -0.0 is not negative, so it needs no `min_`; it equals 0 in an allowed list, and a cap of 0
/// holds it but not the smallest float on either side.
#[test]
fn negative_zero_is_zero_in_scopes() {
    assert_eq!(validate(&obj(json!({ "max_amount": -0.0 }))), Ok(()));
    let ok = |scope: Value, details: Value| enforce(&obj(scope), Some(&obj(details))).is_ok();
    assert!(ok(json!({"max_amount": 0}), json!({"amount": -0.0})));
    assert!(ok(json!({"allowed_amounts": [0]}), json!({"amount": -0.0})));
    assert!(!ok(json!({"max_amount": 0}), json!({"amount": -5e-324})));
    assert!(!ok(json!({"max_amount": 0}), json!({"amount": 5e-324})));
    assert!(ok(
        json!({"max_amount": 0, "min_amount": -1}),
        json!({"amount": -5e-324})
    ));
}
