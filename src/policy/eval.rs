//! Evaluation: a walk over compiled conditions with no allocation. `check` is the single source of
//! truth for "does this rule match": `Policy::evaluate` stops at the first rule it accepts, and
//! `explain` reuses the `Miss` it returns for every rule that did not. A missing value fails every
//! operator except `exists: false`; a JSON `null` counts as present.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::compile::{Condition, Operator, Subject};
use super::{EvalInput, Rule};
use crate::number;
use crate::scope::json_eq;

/// A value looked up in the request, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Actual<'a> {
    Missing,
    Str(&'a str),
    Json(&'a Value),
}

impl Actual<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Actual::Str(s) => Some(s),
            Actual::Json(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// How a number compares with a policy's operand, by exact value; `None` for a non-number.
    fn cmp_number(&self, operand: &Number) -> Option<Ordering> {
        match self {
            Actual::Json(Value::Number(n)) => Some(number::cmp(n, operand)),
            _ => None,
        }
    }

    fn equals(&self, expected: &Value) -> bool {
        match self {
            Actual::Missing => false,
            Actual::Str(s) => expected.as_str() == Some(*s),
            Actual::Json(v) => json_eq(v, expected),
        }
    }

    /// Owned JSON for explanations; `None` when missing.
    pub(crate) fn to_json(self) -> Option<Value> {
        match self {
            Actual::Missing => None,
            Actual::Str(s) => Some(Value::String(s.to_owned())),
            Actual::Json(v) => Some(v.clone()),
        }
    }
}

/// Why a rule did not match: the first check that failed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Miss<'r, 'a> {
    /// The rule is for another agent (`agent:` shorthand).
    Agent { expected: &'r str, actual: &'a str },
    /// An operator on a path did not hold.
    Condition {
        condition: &'r Condition,
        operator: &'r Operator,
        actual: Actual<'a>,
    },
}

/// `Ok` when every condition of `rule` holds for `input`.
pub(crate) fn check<'r, 'a>(rule: &'r Rule, input: &EvalInput<'a>) -> Result<(), Miss<'r, 'a>> {
    if let Some(agent) = &rule.agent
        && agent != input.agent_name
    {
        return Err(Miss::Agent {
            expected: agent,
            actual: input.agent_name,
        });
    }
    for condition in &rule.conditions {
        let actual = resolve(&condition.subject, input);
        for operator in &condition.operators {
            if !holds(operator, actual) {
                return Err(Miss::Condition {
                    condition,
                    operator,
                    actual,
                });
            }
        }
    }
    Ok(())
}

fn resolve<'a>(subject: &Subject, input: &EvalInput<'a>) -> Actual<'a> {
    match subject {
        Subject::Action => Actual::Str(input.action),
        Subject::Resource => input.resource.map_or(Actual::Missing, Actual::Str),
        Subject::AgentName => Actual::Str(input.agent_name),
        Subject::AgentId => Actual::Str(input.agent_id),
        Subject::Scope(keys) => walk(input.scope, keys),
        Subject::Context(keys) => walk(input.context, keys),
    }
}

fn walk<'a>(map: &'a Map<String, Value>, keys: &[String]) -> Actual<'a> {
    let Some((first, rest)) = keys.split_first() else {
        return Actual::Missing;
    };
    let Some(mut value) = map.get(first.as_str()) else {
        return Actual::Missing;
    };
    for key in rest {
        match value.as_object().and_then(|m| m.get(key.as_str())) {
            Some(next) => value = next,
            None => return Actual::Missing,
        }
    }
    Actual::Json(value)
}

fn holds(operator: &Operator, actual: Actual<'_>) -> bool {
    if let Actual::Missing = actual {
        return matches!(operator, Operator::Exists(false));
    }
    match operator {
        Operator::Exists(want) => *want,
        Operator::Equals(v) => actual.equals(v),
        Operator::NotEquals(v) => !actual.equals(v),
        Operator::LessThan(n) => actual.cmp_number(n).is_some_and(Ordering::is_lt),
        Operator::LessThanOrEqual(n) => actual.cmp_number(n).is_some_and(Ordering::is_le),
        Operator::GreaterThan(n) => actual.cmp_number(n).is_some_and(Ordering::is_gt),
        Operator::GreaterThanOrEqual(n) => actual.cmp_number(n).is_some_and(Ordering::is_ge),
        Operator::StartsWith(p) => actual.as_str().is_some_and(|s| s.starts_with(p.as_str())),
        Operator::EndsWith(p) => actual.as_str().is_some_and(|s| s.ends_with(p.as_str())),
        Operator::Contains(needle) => match actual {
            Actual::Json(Value::Array(items)) => items.iter().any(|item| json_eq(item, needle)),
            _ => match (actual.as_str(), needle.as_str()) {
                (Some(hay), Some(needle)) => hay.contains(needle),
                _ => false,
            },
        },
        Operator::Matches(re) => actual.as_str().is_some_and(|s| re.is_match(s)),
        Operator::In(list) => list.iter().any(|v| actual.equals(v)),
        Operator::NotIn(list) => !list.iter().any(|v| actual.equals(v)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::{Effect, parse};
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// One rule `t` with the given condition, evaluated against a fixed request.
    fn matches(condition: &str) -> bool {
        let yaml = format!(
            "policies:\n  - name: t\n    conditions:\n      {condition}\n    action: deny\n"
        );
        let policy = parse(&yaml).unwrap_or_else(|e| panic!("{condition}: {e}"));
        let scope = obj(
            json!({"max_size": 100, "ratio": 0.5, "tags": ["a", 2], "nested": {"k": "v"}, "nul": null}),
        );
        let context = obj(json!({"recipient": "bob@mycompany.com", "count": 3}));
        let input = EvalInput {
            action: "file.read",
            resource: Some("/tmp/report.txt"),
            agent_name: "reporter",
            agent_id: "ag_1",
            scope: &scope,
            context: &context,
        };
        policy.evaluate(&input).effect == Effect::Deny
    }

    #[test]
    fn every_operator_true_false_and_missing() {
        // (condition, expected) — each operator holds, fails, and fails on a missing value.
        let table: &[(&str, bool)] = &[
            ("action: { equals: file.read }", true),
            ("action: { equals: file.write }", false),
            ("scope.missing: { equals: 1 }", false),
            ("scope.max_size: { equals: 100.0 }", true),
            ("scope.tags: { equals: [a, 2.0] }", true),
            ("scope.nul: { equals: null }", true),
            ("action: { notEquals: file.write }", true),
            ("action: { notEquals: file.read }", false),
            ("scope.missing: { notEquals: 1 }", false),
            ("scope.max_size: { lessThan: 101 }", true),
            ("scope.max_size: { lessThan: 100 }", false),
            ("scope.missing: { lessThan: 100 }", false),
            ("action: { lessThan: 100 }", false),
            ("scope.max_size: { lessThanOrEqual: 100 }", true),
            ("scope.max_size: { lessThanOrEqual: 99.9 }", false),
            ("scope.missing: { lessThanOrEqual: 1 }", false),
            ("scope.ratio: { greaterThan: 0.25 }", true),
            ("scope.ratio: { greaterThan: 0.5 }", false),
            ("scope.missing: { greaterThan: 0 }", false),
            ("context.count: { greaterThanOrEqual: 3 }", true),
            ("context.count: { greaterThanOrEqual: 4 }", false),
            ("context.missing: { greaterThanOrEqual: 0 }", false),
            ("resource: { startsWith: /tmp/ }", true),
            ("resource: { startsWith: /etc/ }", false),
            ("context.missing: { startsWith: '' }", false),
            ("scope.max_size: { startsWith: '1' }", false),
            ("resource: { endsWith: .txt }", true),
            ("resource: { endsWith: .pdf }", false),
            ("context.missing: { endsWith: '' }", false),
            ("context.recipient: { contains: '@mycompany' }", true),
            ("context.recipient: { contains: '@other' }", false),
            ("scope.tags: { contains: 2.0 }", true),
            ("scope.tags: { contains: b }", false),
            ("scope.missing: { contains: a }", false),
            (
                "context.recipient: { matches: '.*@mycompany\\.com$' }",
                true,
            ),
            ("context.recipient: { matches: '^alice@' }", false),
            ("context.count: { matches: '3' }", false),
            ("context.missing: { matches: '.*' }", false),
            ("action: { in: [file.write, file.read] }", true),
            ("action: { in: [file.write] }", false),
            ("scope.max_size: { in: [100.0] }", true),
            ("scope.missing: { in: [1] }", false),
            ("action: { notIn: [file.write] }", true),
            ("action: { notIn: [file.read] }", false),
            ("scope.missing: { notIn: [1] }", false),
            ("context.recipient: { exists: true }", true),
            ("context.recipient: { exists: false }", false),
            ("context.missing: { exists: true }", false),
            ("context.missing: { exists: false }", true),
            ("scope.nul: { exists: true }", true),
            ("scope.nested.k: { equals: v }", true),
            ("scope.nested.k.deeper: { exists: false }", true),
            ("scope.max_size.x: { exists: false }", true),
            ("agent: { equals: reporter }", true),
            ("agentId: { equals: ag_2 }", false),
            ("resource: { exists: true }", true),
            // Several operators on one path must all hold.
            ("scope.max_size: { greaterThan: 1, lessThan: 1000 }", true),
            ("scope.max_size: { greaterThan: 1, lessThan: 50 }", false),
        ];
        for (condition, want) in table {
            assert_eq!(matches(condition), *want, "{condition}");
        }
    }

    #[test]
    fn missing_resource_and_agent_shorthand() {
        let policy = parse(
            "policies:\n  - name: r\n    agent: reporter\n    conditions:\n      resource: { exists: false }\n    action: deny\n",
        )
        .unwrap();
        let empty = Map::new();
        let mut input = EvalInput {
            action: "a",
            resource: None,
            agent_name: "reporter",
            agent_id: "id",
            scope: &empty,
            context: &empty,
        };
        assert_eq!(policy.evaluate(&input).effect, Effect::Deny);
        input.agent_name = "other";
        assert_eq!(policy.evaluate(&input).effect, Effect::RequireApproval);
        assert!(policy.evaluate(&input).rule.is_none());
    }
}
