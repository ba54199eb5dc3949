//! Tests for `parse` (every rejection class, with line and column), ordering, the built-in default,
//! versions, shadowed rules and the annotated example file.

use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn input<'a>(
    action: &'a str,
    scope: &'a Map<String, Value>,
    context: &'a Map<String, Value>,
) -> EvalInput<'a> {
    EvalInput {
        action,
        resource: None,
        agent_name: "bot",
        agent_id: "ag_1",
        scope,
        context,
    }
}

#[test]
fn rejects_each_problem_with_line_and_column() {
    // (yaml, line, column, text the message must contain)
    let cases: &[(&str, u64, u64, &str)] = &[
        // YAML syntax
        ("policies: [\n", 1, 11, "unclosed bracket"),
        ("policies:\n  - name: a\n    conditions: {\n", 3, 17, ""),
        // unknown keys, including the snake_case typo that once made a rule match everything
        (
            "policies:\n  - name: a\n    conditions: {}\n    action: deny\n    scope_template: {}\n",
            5,
            5,
            "unknown field `scope_template`",
        ),
        (
            "policy:\n  - name: a\n",
            1,
            1,
            "unknown top-level key `policy` (expected a list of rules (or `policies:` followed by a list))",
        ),
        // the common mistakes of a person writing the file by hand, in words
        (
            "- name: a\n\tconditions: {}\n  action: deny\n",
            2,
            1,
            "a tab character: YAML indents with spaces only",
        ),
        ("policies:\n\t- name: a\n", 2, 1, "a tab character"),
        (
            "- name: a\n  conditions: {}\n  action: deny\n- just a string\n",
            4,
            3,
            "expected a rule here: a mapping such as `- name: …`",
        ),
        (
            "- name: a\n  conditions: {}\n   action: deny\n",
            3,
            4,
            "indented differently from the keys above it",
        ),
        (
            "- name: a\n  conditions:\n    action: { equals: x }\n   scope.x: { equals: 1 }\n  action: deny\n",
            4,
            4,
            "indented differently from the keys above it",
        ),
        (
            "- name: a\n  action: deny\n",
            1,
            3,
            "the rule has no `conditions` (every rule needs `name`, `conditions` and `action`, `conditions: {}` matches every request",
        ),
        (
            "hello\n",
            0,
            0,
            "found the text \"hello\", expected a list of rules (or `policies:` followed by a list)",
        ),
        (
            "policies:\n  name: a\n",
            2,
            3,
            "found a mapping, expected a list of rules under `policies:`",
        ),
        (
            "- name: a\n  conditions: {}\n  action: deny\n  scope_template: {}\n",
            4,
            3,
            "unknown field `scope_template`",
        ),
        (
            "policies:\n  - name: a\n    conditions: {}\n    action: deny\n    effect: deny\n",
            5,
            5,
            "unknown field `effect`",
        ),
        // unknown operator, with a hint for a near miss
        (
            "policies:\n  - name: a\n    conditions:\n      scope.size: { less_than: 5 }\n    action: deny\n",
            4,
            21,
            "unknown operator `less_than` (did you mean `lessThan`?)",
        ),
        (
            "policies:\n  - name: a\n    conditions:\n      action:\n        equal: x\n    action: deny\n",
            5,
            9,
            "unknown operator `equal`",
        ),
        // wrong types
        (
            "policies:\n  - name: a\n    conditions:\n      scope.size: { lessThan: '5' }\n    action: deny\n",
            4,
            31,
            "`lessThan` on `scope.size` needs a number, not the string \"5\"",
        ),
        (
            "policies:\n  - name: a\n    conditions:\n      action: { in: file.read }\n    action: deny\n",
            4,
            21,
            "needs a list",
        ),
        (
            "policies:\n  - name: a\n    conditions:\n      action: { exists: yes }\n    action: deny\n",
            4,
            25,
            "needs true or false",
        ),
        (
            "policies:\n  - name: a\n    conditions: {}\n    action: deny\n    priority: high\n",
            5,
            15,
            "expected a whole number",
        ),
        (
            "policies:\n  - name: a\n    conditions: {}\n    action: AutoApprove\n",
            4,
            13,
            "unknown variant `AutoApprove`",
        ),
        (
            "policies:\n  - name: a\n    conditions: []\n    action: deny\n",
            2,
            5,
            "mapping of condition paths",
        ),
        (
            "policies:\n  - name: a\n    conditions:\n    action: deny\n",
            2,
            5,
            "empty value, expected a mapping of condition paths",
        ),
        (
            "policies:\n  - name: a\n    conditions:\n      action: file.read\n    action: deny\n",
            4,
            7,
            "mapping of operators",
        ),
        (
            "policies: {}\n",
            1,
            11,
            "found a mapping, expected a list of rules under `policies:`",
        ),
        (
            "policies:\n  - name: a\n    action: deny\n",
            2,
            5,
            "the rule has no `conditions`",
        ),
        // duplicate key (at every level)
        (
            "policies:\n  - name: a\n    name: b\n    conditions: {}\n    action: deny\n",
            3,
            5,
            "duplicate mapping key",
        ),
        (
            "policies:\n  - name: a\n    conditions:\n      action: { equals: x }\n      action: { equals: y }\n    action: deny\n",
            5,
            7,
            "duplicate mapping key",
        ),
        // bad regex
        (
            "policies:\n  - name: a\n    conditions:\n      context.to: { matches: '(unclosed' }\n    action: deny\n",
            4,
            30,
            "invalid regex",
        ),
        // unknown path
        (
            "policies:\n  - name: a\n    conditions:\n      agent_id: { equals: x }\n    action: deny\n",
            4,
            7,
            "unknown condition path `agent_id` (did you mean `agentId`?)",
        ),
        (
            "policies:\n  - name: a\n    conditions:\n      scope: { exists: true }\n    action: deny\n",
            4,
            7,
            "needs a key",
        ),
        // operator map with no operator
        (
            "policies:\n  - name: a\n    conditions:\n      action: {}\n    action: deny\n",
            4,
            7,
            "has no operator",
        ),
        // empty and duplicate names
        (
            "policies:\n  - name: ''\n    conditions: {}\n    action: deny\n",
            2,
            11,
            "must not be empty",
        ),
        (
            "policies:\n  - name: a\n    conditions: {}\n    action: deny\n  - name: a\n    conditions: {}\n    action: deny\n",
            5,
            11,
            "duplicate rule name `a` (first used on line 2",
        ),
        // empty agent, invalid scopeTemplate
        (
            "policies:\n  - name: a\n    agent: ''\n    conditions: {}\n    action: deny\n",
            3,
            12,
            "`agent` must be an agent name",
        ),
        (
            "policies:\n  - name: a\n    conditions: {}\n    action: deny\n    scopeTemplate: { max_uses: 0 }\n",
            5,
            20,
            "scopeTemplate key `max_uses`",
        ),
        // more than one document
        (
            "policies: []\n---\npolicies: []\n",
            3,
            1,
            "more than one YAML document",
        ),
        ("policies: []\n---\n", 3, 1, "more than one YAML document"),
    ];
    let mut failures = Vec::new();
    for (yaml, line, column, text) in cases {
        let Err(err) = parse(yaml) else {
            failures.push(format!("accepted: {yaml}"));
            continue;
        };
        let first = &err.problems()[0];
        let shown = err.to_string();
        let located = (*line == 0 && first.line.is_none())
            || shown.starts_with(&format!("line {line}, column {column}: "));
        if !first.message.contains(text) || !located || shown.contains(" at line ") {
            failures.push(format!("{yaml}=> {shown}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn reports_every_semantic_problem_at_once() {
    let yaml = "policies:\n  - name: a\n    conditions:\n      bogus: { equals: 1 }\n      action: { matches: '(' }\n    action: deny\n  - name: a\n    conditions: {}\n    action: deny\n";
    let err = parse(yaml).unwrap_err();
    let lines: Vec<(Option<u64>, Option<u64>)> =
        err.problems().iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(
        lines,
        vec![(Some(4), Some(7)), (Some(5), Some(26)), (Some(7), Some(11))],
        "{err}"
    );
    assert_eq!(err.to_string().lines().count(), 3);
}

#[test]
fn rejects_empty_oversized_and_over_budget_files() {
    assert!(parse("").unwrap_err().to_string().contains("empty"));
    assert!(
        parse("# only a comment\n\n")
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    let big = format!("policies: []\n#{}\n", "x".repeat(MAX_POLICY_BYTES));
    assert!(parse(&big).unwrap_err().to_string().contains("at most"));
    let deep = format!(
        "policies:\n  - name: a\n    conditions: {{}}\n    action: deny\n    scopeTemplate: {{ x: {}1{} }}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    assert!(
        parse(&deep)
            .unwrap_err()
            .to_string()
            .contains("deeply nested"),
        "{}",
        parse(&deep).unwrap_err()
    );
}

#[test]
fn orders_by_priority_then_file_order_first_match_wins() {
    let yaml = r#"
policies:
  - name: low
    conditions: {}
    action: deny
    priority: -5
  - name: tie-first
    conditions:
      action: { startsWith: "bank." }
    action: require_approval
    priority: 10
  - name: tie-second
    conditions:
      action: { startsWith: "bank." }
    action: auto_approve
    priority: 10
  - name: high
    conditions:
      scope.amount: { greaterThan: 1000 }
    action: deny
    priority: 50
  - name: zero
    conditions:
      action: { equals: file.read }
    action: auto_approve
"#;
    let policy = parse(yaml).unwrap();
    let names: Vec<&str> = policy.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["high", "tie-first", "tie-second", "zero", "low"]);
    let empty = Map::new();
    let big = obj(json!({"amount": 5000}));
    let cases: &[(&str, &Map<String, Value>, Effect, &str)] = &[
        ("bank.transfer", &big, Effect::Deny, "high"),
        (
            "bank.transfer",
            &empty,
            Effect::RequireApproval,
            "tie-first",
        ),
        ("file.read", &empty, Effect::AutoApprove, "zero"),
        ("other", &empty, Effect::Deny, "low"),
    ];
    for (action, scope, effect, rule) in cases {
        let decision = policy.evaluate(&input(action, scope, &empty));
        assert_eq!(decision.effect, *effect, "{action}");
        assert_eq!(
            decision.rule.map(|r| r.name.as_str()),
            Some(*rule),
            "{action}"
        );
    }
    assert_eq!(policy.shadowed_rules(), Vec::<(String, String)>::new());
}

#[test]
fn numeric_operators_compare_a_whole_number_by_its_exact_value() {
    // 9007199254740995 read as f64 is 9007199254740996, so comparing as floats made it equal to
    // the operand and let it past `greaterThanOrEqual`.
    let policy = parse(
        "policies:\n  - name: big\n    conditions:\n      scope.amount: { greaterThanOrEqual: 9007199254740996 }\n    action: deny\n  - name: rest\n    conditions:\n      scope.amount: { lessThan: 9007199254740996 }\n    action: auto_approve\n",
    )
    .unwrap();
    let empty = Map::new();
    for (amount, rule) in [
        (json!(9007199254740995u64), "rest"),
        (json!(9007199254740996u64), "big"),
        (json!(9007199254740997u64), "big"),
        (json!(9.007199254740994e15), "rest"),
        (json!(-1), "rest"),
    ] {
        let scope = obj(json!({ "amount": amount }));
        let decision = policy.evaluate(&input("x", &scope, &empty));
        assert_eq!(
            decision.rule.map(|r| r.name.as_str()),
            Some(rule),
            "{amount}"
        );
    }
}

/// A whole-number operand is kept as written, not read as the f64 beside it: before,
/// `lessThan: 9223372036854775807` was `lessThan: 2^63` and let 9223372036854775807 through.
#[test]
fn a_whole_number_operand_is_not_rounded_at_load() {
    let cases: [(&str, Value, bool); 5] = [
        ("lessThan: 9223372036854775807", json!(i64::MAX), false),
        ("lessThan: 18446744073709551615", json!(u64::MAX), false),
        (
            "lessThanOrEqual: 9007199254740995",
            json!(9007199254740996u64),
            false,
        ),
        (
            "lessThanOrEqual: 9007199254740995",
            json!(9007199254740995u64),
            true,
        ),
        (
            "greaterThan: 9007199254740993",
            json!(9007199254740993u64),
            false,
        ),
    ];
    let empty = Map::new();
    for (op, amount, matches) in cases {
        let yaml = format!(
            "policies:\n  - name: small\n    conditions:\n      scope.amount: {{ {op} }}\n    action: auto_approve\n"
        );
        let policy = parse(&yaml).unwrap();
        let scope = obj(json!({ "amount": amount }));
        let decision = policy.evaluate(&input("x", &scope, &empty));
        assert_eq!(decision.rule.is_some(), matches, "{op} with {amount}");
    }
}

#[test]
fn no_match_means_require_approval_with_no_rule() {
    let policy = parse(
        "policies:\n  - name: a\n    conditions:\n      action: { equals: x }\n    action: deny\n",
    )
    .unwrap();
    let empty = Map::new();
    let decision = policy.evaluate(&input("y", &empty, &empty));
    assert_eq!(decision.effect, Effect::RequireApproval);
    assert!(decision.rule.is_none());
}

#[test]
fn builtin_default_requires_approval() {
    assert!(parse(BUILTIN_DEFAULT).is_ok());
    let policy = Policy::builtin_default();
    assert_eq!(policy.rules().len(), 1);
    assert_eq!(policy.rules()[0].name, "builtin-require-approval");
    let empty = Map::new();
    let decision = policy.evaluate(&input("anything", &empty, &empty));
    assert_eq!(decision.effect, Effect::RequireApproval);
    assert_eq!(
        decision.rule.map(|r| r.name.as_str()),
        Some("builtin-require-approval")
    );
    assert_eq!(policy.version(), sha256_hex(BUILTIN_DEFAULT.as_bytes()));
}

#[test]
fn version_is_sha256_of_exact_text() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let a = parse("policies: []\n").unwrap();
    let b = parse("policies: []  \n").unwrap();
    assert_eq!(a.version().len(), 64);
    assert_ne!(a.version(), b.version());
}

#[test]
fn finds_shadowed_rules() {
    let yaml = "policies:\n  - name: only-reporter\n    agent: reporter\n    conditions: {}\n    action: auto_approve\n    priority: 5\n  - name: everything\n    conditions: {}\n    action: deny\n  - name: later\n    conditions:\n      action: { equals: x }\n    action: auto_approve\n  - name: lowest\n    conditions: {}\n    action: deny\n    priority: -1\n";
    let policy = parse(yaml).unwrap();
    assert_eq!(
        policy.shadowed_rules(),
        vec![
            ("later".to_owned(), "everything".to_owned()),
            ("lowest".to_owned(), "everything".to_owned())
        ]
    );
}

#[test]
fn effect_names() {
    for (effect, name) in [
        (Effect::AutoApprove, "auto_approve"),
        (Effect::RequireApproval, "require_approval"),
        (Effect::Deny, "deny"),
    ] {
        assert_eq!(effect.as_str(), name);
        assert_eq!(serde_json::to_value(effect).unwrap(), json!(name));
    }
}

#[test]
fn example_file_parses_and_behaves() {
    let policy =
        parse(include_str!("../../policies.example.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(policy.rules().len() >= 4);
    assert_eq!(policy.shadowed_rules(), Vec::<(String, String)>::new());
    let empty = Map::new();
    let small = obj(json!({"max_size": 1000}));
    let internal = obj(json!({"recipient": "ann@mycompany.com"}));
    let external = obj(json!({"recipient": "eve@elsewhere.com"}));
    let decide = |action, scope, context| policy.evaluate(&input(action, scope, context)).effect;
    assert_eq!(decide("file.read", &small, &empty), Effect::AutoApprove);
    assert_eq!(
        decide("bank.transfer", &empty, &empty),
        Effect::RequireApproval
    );
    assert_eq!(decide("email.send", &empty, &internal), Effect::AutoApprove);
    assert_eq!(
        decide("email.send", &empty, &external),
        Effect::RequireApproval
    );
    assert_eq!(decide("rm.rf", &empty, &empty), Effect::Deny);
}

/// The policy file of the original Agent OTP v0.1 README, byte for byte: a bare list of rules.
const ORIGINAL: &str = include_str!("../../tests/fixtures/original-v0.1-policies.yaml");

/// The same rules under `policies:`, each line indented by two spaces.
fn under_policies(bare: &str) -> String {
    let mut out = String::from("policies:\n");
    for line in bare.lines() {
        if !line.is_empty() {
            out.push_str("  ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn the_original_policy_file_loads_in_both_forms_and_decides_as_written() {
    assert!(
        ORIGINAL
            .starts_with("# Auto-approve small file reads\n- name: \"Auto-approve file reads\"")
    );
    let bare = parse(ORIGINAL).unwrap_or_else(|e| panic!("{e}"));
    let mapped = parse(&under_policies(ORIGINAL)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bare.rules().len(), 4);
    let empty = Map::new();
    let small = obj(json!({"size_limit": 1000}));
    let big = obj(json!({"size_limit": 2_000_000}));
    let internal = obj(json!({"recipient": "ann@mycompany.com"}));
    let lookalike = obj(json!({"recipient": "ann@mycompanyXcom"}));
    // (action, scope, context, effect, deciding rule)
    type Case<'a> = (
        &'a str,
        &'a Map<String, Value>,
        &'a Map<String, Value>,
        Effect,
        &'a str,
    );
    let cases: [Case<'_>; 6] = [
        (
            "file.read",
            &small,
            &empty,
            Effect::AutoApprove,
            "Auto-approve file reads",
        ),
        ("file.read", &big, &empty, Effect::Deny, "Default deny"),
        (
            "bank.transfer",
            &empty,
            &empty,
            Effect::RequireApproval,
            "Financial operations require approval",
        ),
        (
            "gmail.send",
            &empty,
            &internal,
            Effect::AutoApprove,
            "Auto-approve internal emails",
        ),
        // `\\.` in double quotes is a regex `\.`: a literal dot, not any character.
        (
            "gmail.send",
            &empty,
            &lookalike,
            Effect::Deny,
            "Default deny",
        ),
        ("shell.exec", &empty, &empty, Effect::Deny, "Default deny"),
    ];
    for policy in [&bare, &mapped] {
        for (action, scope, context, effect, rule) in cases {
            let decision = policy.evaluate(&input(action, scope, context));
            assert_eq!(decision.effect, effect, "{action} {scope:?} {context:?}");
            assert_eq!(decision.rule.map(|r| r.name.as_str()), Some(rule));
        }
    }
    let template = bare
        .rules()
        .iter()
        .find(|r| r.name == "Auto-approve file reads");
    assert_eq!(
        template.and_then(|r| r.scope_template.clone()),
        Some(obj(
            json!({"max_size": 1048576, "allowed_extensions": [".txt", ".md", ".json"]})
        ))
    );
}
