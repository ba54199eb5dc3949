//! Explanations for humans and the `policy test` command: the decision, and for every rule tried
//! before the deciding one, the first path and operator that did not hold together with the value
//! actually seen. Built from the same `eval::check` that `evaluate` uses, so the two cannot
//! disagree. Serializes to camelCase JSON; `Display` gives a short text form.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::eval::{Miss, check};
use super::{Effect, EvalInput, Policy};

/// A decision and why each earlier rule did not decide it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The decision.
    pub effect: Effect,
    /// The deciding rule's name; `None` means no rule matched (the default, `require_approval`).
    pub rule: Option<String>,
    /// SHA-256 of the policy file.
    pub policy_version: String,
    /// Rules tried before the deciding one, in evaluation order.
    pub not_matched: Vec<RuleMiss>,
}

/// Why one rule did not match: the first check that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleMiss {
    /// Rule name.
    pub rule: String,
    /// Rule priority.
    pub priority: i64,
    /// Condition path, e.g. `scope.max_size` (`agent` for the rule's `agent:` restriction).
    pub path: String,
    /// Operator name as written in the file (`equals` for the `agent:` restriction).
    pub operator: String,
    /// The operand from the file.
    pub expected: Value,
    /// What the request had at that path.
    pub actual: Seen,
}

/// A value seen in the request. Serializes as `"missing"` or `{"value": …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Seen {
    /// The path was absent.
    Missing,
    /// The value found.
    Value(Value),
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Missing => f.write_str("missing"),
            Seen::Value(v) => write!(f, "{v}"),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(rule) => writeln!(f, "decision: {} (rule `{rule}`)", self.effect.as_str())?,
            None => writeln!(
                f,
                "decision: {} (default: no rule matched)",
                self.effect.as_str()
            )?,
        }
        writeln!(f, "policy version: {}", self.policy_version)?;
        for miss in &self.not_matched {
            writeln!(
                f,
                "  rule `{}` (priority {}) did not match: {} {} {} — saw {}",
                miss.rule, miss.priority, miss.path, miss.operator, miss.expected, miss.actual
            )?;
        }
        Ok(())
    }
}

pub(crate) fn explain(policy: &Policy, input: &EvalInput<'_>) -> Explanation {
    let mut not_matched = Vec::new();
    for rule in policy.rules() {
        let miss = match check(rule, input) {
            Ok(()) => {
                return Explanation {
                    effect: rule.effect,
                    rule: Some(rule.name.clone()),
                    policy_version: policy.version().to_owned(),
                    not_matched,
                };
            }
            Err(miss) => miss,
        };
        let (path, operator, expected, actual) = match miss {
            Miss::Agent { expected, actual } => (
                "agent".to_owned(),
                "equals",
                Value::String(expected.to_owned()),
                Some(Value::String(actual.to_owned())),
            ),
            Miss::Condition {
                condition,
                operator,
                actual,
            } => (
                condition.path.clone(),
                operator.name(),
                operator.operand(),
                actual.to_json(),
            ),
        };
        not_matched.push(RuleMiss {
            rule: rule.name.clone(),
            priority: rule.priority,
            path,
            operator: operator.to_owned(),
            expected,
            actual: actual.map_or(Seen::Missing, Seen::Value),
        });
    }
    Explanation {
        effect: Effect::RequireApproval,
        rule: None,
        policy_version: policy.version().to_owned(),
        not_matched,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::parse;
    use super::*;
    use serde_json::{Map, json};

    const YAML: &str = r#"
policies:
  - name: reporter-only
    agent: reporter
    conditions: {}
    action: auto_approve
    priority: 9
  - name: small
    conditions:
      action: { equals: file.read }
      scope.max_size: { lessThanOrEqual: 10 }
    action: auto_approve
    priority: 5
  - name: internal
    conditions:
      context.recipient: { matches: "@mycompany\\.com$" }
    action: auto_approve
  - name: catch-all
    conditions: {}
    action: deny
    priority: -1
"#;

    #[test]
    fn explains_each_earlier_rule() {
        let policy = parse(YAML).unwrap();
        let scope = match json!({"max_size": 50}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let input = EvalInput {
            action: "file.read",
            resource: None,
            agent_name: "writer",
            agent_id: "ag_1",
            scope: &scope,
            context: &Map::new(),
        };
        let explanation = policy.explain(&input);
        assert_eq!(explanation.effect, Effect::Deny);
        assert_eq!(explanation.rule.as_deref(), Some("catch-all"));
        assert_eq!(explanation.policy_version, policy.version());
        let json = serde_json::to_value(&explanation).unwrap();
        assert_eq!(
            json["notMatched"],
            json!([
                {"rule": "reporter-only", "priority": 9, "path": "agent", "operator": "equals",
                 "expected": "reporter", "actual": {"value": "writer"}},
                {"rule": "small", "priority": 5, "path": "scope.max_size", "operator": "lessThanOrEqual",
                 "expected": 10, "actual": {"value": 50}},
                {"rule": "internal", "priority": 0, "path": "context.recipient", "operator": "matches",
                 "expected": "@mycompany\\.com$", "actual": "missing"},
            ])
        );
        assert_eq!(json["effect"], "deny");
        assert_eq!(json["rule"], "catch-all");
        let text = explanation.to_string();
        assert!(text.contains("decision: deny (rule `catch-all`)"), "{text}");
        assert!(
            text.contains("context.recipient matches \"@mycompany\\\\.com$\" — saw missing"),
            "{text}"
        );
        // Agrees with evaluate.
        assert_eq!(
            policy.evaluate(&input).rule.map(|r| r.name.as_str()),
            Some("catch-all")
        );
    }

    #[test]
    fn explains_the_default() {
        let policy = parse("policies: []\n").unwrap();
        let empty = Map::new();
        let input = EvalInput {
            action: "x",
            resource: None,
            agent_name: "a",
            agent_id: "b",
            scope: &empty,
            context: &empty,
        };
        let explanation = policy.explain(&input);
        assert_eq!(explanation.effect, Effect::RequireApproval);
        assert_eq!(explanation.rule, None);
        assert!(explanation.not_matched.is_empty());
        assert!(explanation.to_string().contains("default"));
    }
}
