//! Times `Policy::evaluate` for 10, 100 and 1000 rules when no rule matches (every rule tried).
//! Each rule: `action` equals + a `scope` number comparison + a `context` regex.
//! Run with `cargo run --release --example policy_bench`.

use std::hint::black_box;
use std::time::Instant;

use agent_otp::testing::policy::{EvalInput, parse};
use serde_json::{Map, Value, json};

fn policy_yaml(rules: usize, shared_action: bool) -> String {
    let mut yaml = String::from("policies:\n");
    for i in 0..rules {
        let action = if shared_action {
            "payments.send".to_owned()
        } else {
            format!("action.{i}")
        };
        yaml.push_str(&format!(
            "  - name: rule-{i}\n    conditions:\n      action: {{ equals: \"{action}\" }}\n      scope.amount: {{ lessThanOrEqual: {i} }}\n      context.recipient: {{ matches: '^user{i}@example\\.com$' }}\n    action: auto_approve\n    priority: {}\n",
            i % 7
        ));
    }
    yaml
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scope = object(json!({"amount": 5000, "currency": "EUR"}));
    let context = object(json!({"recipient": "someone@elsewhere.org", "reason": "benchmark"}));
    let input = EvalInput {
        action: "nothing.matches",
        resource: Some("/tmp/x"),
        agent_name: "bench",
        agent_id: "ag_bench",
        scope: &scope,
        context: &context,
    };
    for rules in [10usize, 100, 1000] {
        let policy = parse(&policy_yaml(rules, false))?;
        if policy.evaluate(&input).rule.is_some() {
            return Err("a rule matched; the benchmark needs none to".into());
        }
        let iterations = 20_000_000 / rules;
        for _ in 0..iterations / 10 {
            black_box(policy.evaluate(black_box(&input)));
        }
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(policy.evaluate(black_box(&input)));
        }
        let per = start.elapsed().as_secs_f64() / iterations as f64;
        println!(
            "{rules:>5} rules, none matching: {:>9.3} µs per decision ({iterations} iterations)",
            per * 1e6
        );
    }
    // Harder: every rule's action and amount conditions hold, so every rule runs its regex.
    let same_action = object(json!({"amount": 0}));
    let hard = EvalInput {
        action: "payments.send",
        scope: &same_action,
        ..input
    };
    for rules in [10usize, 100, 1000] {
        let policy = parse(&policy_yaml(rules, true))?;
        if policy.evaluate(&hard).rule.is_some() {
            return Err("a rule matched; the benchmark needs none to".into());
        }
        let iterations = 5_000_000 / rules;
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(policy.evaluate(black_box(&hard)));
        }
        let per = start.elapsed().as_secs_f64() / iterations as f64;
        println!(
            "{rules:>5} rules, every regex run:  {:>9.3} µs per decision",
            per * 1e6
        );
    }
    Ok(())
}
