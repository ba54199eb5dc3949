//! `agent-otp policy check` and `policy test` as the real binary, on fixture files: outputs,
//! exit codes, the explain text, `--json`, `--cases`; plus a table test of evaluation order.

use serde_json::{Map, Value, json};

use crate::support::{Ran, run_cli};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies.example.yaml");
const EXAMPLE_CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies.example.tests.yaml");

fn fixture(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn check_passes_the_example_and_summarises_it() {
    let Ran {
        code,
        stdout,
        stderr,
        ..
    } = run_cli(&["policy", "check", EXAMPLE]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(": ok, 6 rules, version "), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn check_lists_every_problem_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(
        &dir,
        "bad.yaml",
        "policies:\n  - name: a\n    conditions:\n      scope.size: { less_than: 5 }\n    action: deny\n  - name: a\n    conditions:\n      action: { matches: \"(\" }\n    action: deny\n",
    );
    let Ran {
        code,
        stdout,
        stderr,
        ..
    } = run_cli(&["policy", "check", &file]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "{file}:4:21: error: unknown operator `less_than` (did you mean `lessThan`?)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:6:")),
        "duplicate name: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:8:")),
        "bad regex: {stderr}"
    );
    assert!(stderr.contains("rejected (3 problems)"), "{stderr}");

    let file = fixture(
        &dir,
        "typo.yaml",
        "policies:\n  - name: a\n    conditions: {}\n    action: deny\n    scope_template: {}\n",
    );
    let Ran { code, stderr, .. } = run_cli(&["policy", "check", &file]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "{file}:5:5: error: unknown field `scope_template`"
        )) && stderr.contains("did you mean `scopeTemplate`?"),
        "{stderr}"
    );

    let Ran { code, stderr, .. } = run_cli(&["policy", "check", "/nonexistent/policies.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn check_warns_about_rules_that_can_never_match() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(
        &dir,
        "shadow.yaml",
        "policies:\n  - name: everything\n    conditions: {}\n    action: require_approval\n    priority: 5\n  - name: never\n    conditions:\n      action: { equals: x }\n    action: deny\n",
    );
    let Ran {
        code,
        stdout,
        stderr,
        ..
    } = run_cli(&["policy", "check", &file]);
    assert_eq!(code, 0, "warnings do not fail the check");
    assert!(stdout.contains("ok, 2 rules"), "{stdout}");
    assert!(
        stderr.contains("warning: rule `never` can never match: rule `everything` before it matches every request"),
        "{stderr}"
    );
}

#[test]
fn test_prints_the_decision_scope_and_why_earlier_rules_failed() {
    let Ran {
        code,
        stdout,
        stderr,
        ..
    } = run_cli(&[
        "policy",
        "test",
        EXAMPLE,
        "--agent",
        "writer",
        "--action",
        "file.read",
        "--scope",
        r#"{"max_size": 2000000, "allowed_extensions": [".txt", ".exe"]}"#,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let expected = "\
decision: deny (rule `default-deny`)
scope: none (denied)
policy version: VERSION
rules tried before it:
  `reporter-reads-reports` (priority 200): agent equals \"reporter\" failed; the request has \"writer\"
  `financial-operations-need-approval` (priority 150): action startsWith \"bank.\" failed; the request has \"file.read\"
  `small-file-reads` (priority 100): scope.max_size lessThanOrEqual 1048576 failed; the request has 2000000
  `internal-emails` (priority 100): action in [\"email.send\",\"email.reply\"] failed; the request has \"file.read\"
  `other-email-needs-approval` (priority 50): action in [\"gmail.send\",\"email.send\",\"email.reply\"] failed; the request has \"file.read\"
";
    let version = stdout
        .lines()
        .find_map(|l| l.strip_prefix("policy version: "))
        .unwrap();
    assert_eq!(stdout, expected.replace("VERSION", version));

    // A grant shows the narrowed scope: request ∧ scopeTemplate.
    let Ran { code, stdout, .. } = run_cli(&[
        "policy",
        "test",
        EXAMPLE,
        "--agent",
        "writer",
        "--action",
        "file.read",
        "--scope",
        r#"{"max_size": 4096, "allowed_extensions": [".txt", ".exe"]}"#,
        "--json",
    ]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["decision"], "auto_approve");
    assert_eq!(report["rule"], "small-file-reads");
    assert_eq!(
        report["scope"],
        json!({"max_size": 4096, "allowed_extensions": [".txt"], "blocked_paths": ["/etc/shadow"]})
    );
    assert_eq!(report["notMatched"].as_array().unwrap().len(), 2);
    // As the server grants it: a negative floor the rule does not name is raised to 0.
    let Ran { code, stdout, .. } = run_cli(&[
        "policy",
        "test",
        EXAMPLE,
        "--agent",
        "writer",
        "--action",
        "file.read",
        "--scope",
        r#"{"max_size": 4096, "min_size": -5}"#,
        "--json",
    ]);
    assert_eq!(code, 0);
    let floored: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(floored["decision"], "auto_approve");
    assert_eq!(floored["scope"]["min_size"], 0, "{floored}");
    assert_eq!(
        report["notMatched"][0],
        json!({"rule": "reporter-reads-reports", "priority": 200, "path": "agent",
               "operator": "equals", "expected": "reporter", "actual": {"value": "writer"}})
    );

    let Ran { code, stderr, .. } = run_cli(&[
        "policy", "test", EXAMPLE, "--agent", "a", "--action", "x", "--scope", "[1]",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--scope: must be a JSON object"),
        "{stderr}"
    );
    let Ran { code, stderr, .. } = run_cli(&[
        "policy",
        "test",
        EXAMPLE,
        "--agent",
        "a",
        "--action",
        "x",
        "--scope",
        r#"{"max_size": 4096.0000000000000001}"#,
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--scope: the number 4096.0000000000000001 cannot be held exactly"),
        "{stderr}"
    );
    let Ran { code, stderr, .. } = run_cli(&["policy", "test", EXAMPLE, "--agent", "a"]);
    assert_eq!(code, 2, "clap usage error");
    assert!(stderr.contains("--action"), "{stderr}");
}

#[test]
fn cases_pass_for_the_example_and_mismatches_fail_the_run() {
    let Ran {
        code,
        stdout,
        stderr,
        ..
    } = run_cli(&["policy", "test", EXAMPLE, "--cases", EXAMPLE_CASES]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("10 cases: 10 passed, 0 failed"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let cases = fixture(
        &dir,
        "cases.yaml",
        "tests:\n  - name: reads are fine\n    agent: w\n    action: file.read\n    scope: { max_size: 1 }\n    expect: auto_approve\n  - name: wrong on purpose\n    agent: w\n    action: shell.exec\n    expect: auto_approve\n  - name: wrong rule\n    agent: w\n    action: file.read\n    scope: { max_size: 1 }\n    expect: auto_approve\n    expectRule: internal-emails\n",
    );
    let Ran { code, stdout, .. } = run_cli(&["policy", "test", EXAMPLE, "--cases", &cases]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("ok    reads are fine"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FAIL  wrong on purpose ({cases}:7): expected auto_approve, got deny by rule `default-deny`"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("expected auto_approve by rule `internal-emails`, got auto_approve by rule `small-file-reads`"),
        "{stdout}"
    );
    assert!(stdout.contains("3 cases: 1 passed, 2 failed"), "{stdout}");

    let Ran { code, stdout, .. } =
        run_cli(&["policy", "test", EXAMPLE, "--cases", &cases, "--json"]);
    assert_eq!(code, 1);
    let results: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(results[1]["passed"], false);
    assert_eq!(results[1]["decision"], "deny");
    assert_eq!(results[1]["expected"], "auto_approve");

    let bad = fixture(
        &dir,
        "bad-cases.yaml",
        "tests:\n  - name: x\n    agent: w\n    action: a\n    expect: allow\n",
    );
    let Ran { code, stderr, .. } = run_cli(&["policy", "test", EXAMPLE, "--cases", &bad]);
    assert_eq!(code, 1);
    assert!(stderr.contains("line 5"), "{stderr}");
}

/// Evaluation order: higher priority first, ties in file order, first match wins, no match →
/// require_approval. Each row: rules as (name, priority, matches?) in file order → the decider.
#[test]
fn evaluation_order_table() {
    type Row = (&'static [(&'static str, i64, bool)], Option<&'static str>);
    let table: &[Row] = &[
        (&[], None),
        (&[("a", 0, false)], None),
        (&[("a", 0, true)], Some("a")),
        (&[("a", 0, true), ("b", 0, true)], Some("a")),
        (&[("a", 0, true), ("b", 1, true)], Some("b")),
        (
            &[("a", -1, true), ("b", -1, true), ("c", -2, true)],
            Some("a"),
        ),
        (
            &[("a", 5, false), ("b", 1, true), ("c", 1, true)],
            Some("b"),
        ),
        (
            &[("a", 0, true), ("b", 10, false), ("c", 0, true)],
            Some("a"),
        ),
        (
            &[("a", -5, true), ("b", 3, false), ("c", 2, false)],
            Some("a"),
        ),
        (&[("a", 1, false), ("b", 2, false)], None),
        (&[("a", i64::MIN, true), ("b", i64::MAX, true)], Some("b")),
    ];
    let effects = ["auto_approve", "deny", "require_approval"];
    for (rules, want) in table {
        let mut yaml = String::from("policies:\n");
        if rules.is_empty() {
            yaml = "policies: []\n".into();
        }
        for (i, (name, priority, hit)) in rules.iter().enumerate() {
            let cond = if *hit { "file.read" } else { "never" };
            yaml.push_str(&format!(
                "  - name: {name}\n    conditions:\n      action: {{ equals: {cond} }}\n    action: {}\n    priority: {priority}\n",
                effects[i % 3]
            ));
        }
        let policy = agent_otp::testing::policy::parse(&yaml).unwrap();
        let empty = Map::new();
        let input = agent_otp::testing::policy::EvalInput {
            action: "file.read",
            resource: None,
            agent_name: "a",
            agent_id: "a",
            scope: &empty,
            context: &empty,
        };
        let decision = policy.evaluate(&input);
        assert_eq!(
            decision.rule.map(|r| r.name.as_str()),
            *want,
            "rules {rules:?}"
        );
        match (decision.rule, want) {
            (None, _) => assert_eq!(
                decision.effect,
                agent_otp::testing::policy::Effect::RequireApproval
            ),
            (Some(r), _) => assert_eq!(decision.effect, r.effect),
        }
        // explain agrees, and lists exactly the rules tried before the decider.
        let explanation = policy.explain(&input);
        assert_eq!(explanation.rule.as_deref(), *want);
        let tried: Vec<&str> = explanation
            .not_matched
            .iter()
            .map(|m| m.rule.as_str())
            .collect();
        let order: Vec<&str> = policy.rules().iter().map(|r| r.name.as_str()).collect();
        let upto = want.map_or(order.len(), |w| order.iter().position(|n| *n == w).unwrap());
        assert_eq!(tried, order[..upto], "rules {rules:?}");
    }
}

const ORIGINAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/original-v0.1-policies.yaml"
);

/// The original Agent OTP v0.1 README's policy file, byte for byte (a bare list of rules): `policy
/// check` accepts it, `serve` loads it, and each of its four rules decides a request as written.
#[tokio::test(flavor = "multi_thread")]
async fn the_original_readme_policy_file_checks_loads_and_decides() {
    let Ran {
        code,
        stdout,
        stderr,
        ..
    } = run_cli(&["policy", "check", ORIGINAL]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(": ok, 4 rules, version "), "{stdout}");

    let text = std::fs::read_to_string(ORIGINAL).unwrap();
    let s = crate::support::TestServer::with_policy(Some(&text)).await;
    let key = s.agent("assistant").await;
    // (request body, HTTP status, status, deciding rule)
    let cases = [
        (
            json!({"action": "file.read", "resource": "/notes.md", "scope": {"size_limit": 1000}}),
            201,
            "approved",
            "Auto-approve file reads",
        ),
        (
            json!({"action": "bank.transfer", "scope": {"amount": 40}}),
            202,
            "pending",
            "Financial operations require approval",
        ),
        (
            json!({"action": "gmail.send", "context": {"recipient": "ann@mycompany.com"}}),
            201,
            "approved",
            "Auto-approve internal emails",
        ),
        (
            json!({"action": "gmail.send", "context": {"recipient": "ann@mycompanyXcom"}}),
            200,
            "denied",
            "Default deny",
        ),
    ];
    for (body, http, status, rule) in cases {
        let (code, data) = s.request(&key, body.clone()).await;
        assert_eq!(code.as_u16(), http, "{body} -> {data}");
        assert_eq!(data["status"], status, "{body} -> {data}");
        let id = data["id"].as_str().unwrap();
        let (_, read) = s.get(&key, &format!("/api/v1/permissions/{id}")).await;
        assert_eq!(read["data"]["rule"], rule, "{body} -> {read}");
    }
    // The template narrowed the auto-approved read as the file says.
    let (_, data) = s
        .request(
            &key,
            json!({"action": "file.read", "scope": {"size_limit": 10}}),
        )
        .await;
    assert_eq!(data["scope"]["max_size"], 1048576);
    assert_eq!(
        data["scope"]["allowed_extensions"],
        json!([".txt", ".md", ".json"])
    );
}

/// `policy test` sees a resource as the server does: normalised, or refused like the server's 400.
#[test]
fn policy_test_normalises_the_resource_as_the_server_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(
        &dir,
        "p.yaml",
        "- name: reports\n  conditions:\n    resource: { startsWith: \"/srv/reports/\" }\n  action: auto_approve\n",
    );
    let test = |resource: &str| {
        run_cli(&[
            "policy",
            "test",
            &file,
            "--agent",
            "a",
            "--action",
            "file.read",
            "--resource",
            resource,
        ])
    };
    let Ran { code, stdout, .. } = test("/srv/reports/./q1//x.csv");
    assert_eq!(code, 0);
    assert!(
        stdout.contains("decision: auto_approve (rule `reports`)"),
        "{stdout}"
    );
    let Ran { code, stdout, .. } = test("/srv/reports/../secrets/x");
    assert_eq!(code, 0);
    assert!(
        stdout.contains("decision: require_approval (default"),
        "{stdout}"
    );
    let Ran { code, stderr, .. } = test("/srv/../../x");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--resource: climbs above its root"),
        "{stderr}"
    );
}
