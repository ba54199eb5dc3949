//! Turns the file as written (`model`) into rules ready to evaluate: condition paths are split
//! once, operands are type-checked and converted (numbers to `f64`, regexes compiled with the
//! shared limits of `scope::build_regex`), scope templates are validated, names are checked for
//! emptiness and uniqueness, and rules are put in evaluation order (higher priority first, ties in
//! file order). Every problem found is reported with its line and column, not just the first.

use std::cmp::Reverse;
use std::collections::HashMap;

use regex::Regex;
use serde_json::{Number, Value};
use serde_saphyr::{Location, Spanned};

use super::model::{RawFile, RawOperators, RawRule};
use super::{Problem, Rule};
use crate::scope;

/// Every operator, as written in the file.
pub(crate) const OPERATORS: &[&str] = &[
    "equals",
    "notEquals",
    "lessThan",
    "lessThanOrEqual",
    "greaterThan",
    "greaterThanOrEqual",
    "startsWith",
    "endsWith",
    "contains",
    "matches",
    "in",
    "notIn",
    "exists",
];

const PATHS_ALLOWED: &str =
    "action, resource, agent, agentId, scope.<key>[.<key>…], context.<key>[.<key>…]";

/// Where a condition looks in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    Action,
    Resource,
    AgentName,
    AgentId,
    Scope(Box<[String]>),
    Context(Box<[String]>),
}

/// One operator with its operand, ready to test.
#[derive(Debug, Clone)]
pub(crate) enum Operator {
    Equals(Value),
    NotEquals(Value),
    LessThan(Number),
    LessThanOrEqual(Number),
    GreaterThan(Number),
    GreaterThanOrEqual(Number),
    StartsWith(String),
    EndsWith(String),
    Contains(Value),
    Matches(Regex),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Exists(bool),
}

impl Operator {
    /// The name as written in the file.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Operator::Equals(_) => "equals",
            Operator::NotEquals(_) => "notEquals",
            Operator::LessThan(_) => "lessThan",
            Operator::LessThanOrEqual(_) => "lessThanOrEqual",
            Operator::GreaterThan(_) => "greaterThan",
            Operator::GreaterThanOrEqual(_) => "greaterThanOrEqual",
            Operator::StartsWith(_) => "startsWith",
            Operator::EndsWith(_) => "endsWith",
            Operator::Contains(_) => "contains",
            Operator::Matches(_) => "matches",
            Operator::In(_) => "in",
            Operator::NotIn(_) => "notIn",
            Operator::Exists(_) => "exists",
        }
    }

    /// The operand as JSON (for explanations).
    pub(crate) fn operand(&self) -> Value {
        match self {
            Operator::Equals(v) | Operator::NotEquals(v) | Operator::Contains(v) => v.clone(),
            Operator::LessThan(n)
            | Operator::LessThanOrEqual(n)
            | Operator::GreaterThan(n)
            | Operator::GreaterThanOrEqual(n) => Value::Number(n.clone()),
            Operator::StartsWith(s) | Operator::EndsWith(s) => Value::String(s.clone()),
            Operator::Matches(re) => Value::String(re.as_str().to_owned()),
            Operator::In(list) | Operator::NotIn(list) => Value::Array(list.clone()),
            Operator::Exists(b) => Value::Bool(*b),
        }
    }
}

/// One path and the operators that must all hold on it.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    /// The path as written, e.g. `scope.max_size`.
    pub(crate) path: String,
    pub(crate) subject: Subject,
    pub(crate) operators: Vec<Operator>,
}

fn problem(at: &Location, message: String) -> Problem {
    Problem {
        line: Some(at.line()),
        column: Some(at.column()),
        message,
    }
}

/// Compiles every rule, or returns every problem found.
pub(crate) fn compile(file: RawFile) -> Result<Vec<Rule>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut rules = Vec::with_capacity(file.policies.len());
    let mut seen: HashMap<String, Location> = HashMap::new();
    for raw in file.policies {
        let name = &raw.value.name;
        if name.value.trim().is_empty() {
            problems.push(problem(
                &name.referenced,
                "rule name must not be empty".to_owned(),
            ));
        } else if let Some(first) = seen.get(&name.value) {
            problems.push(problem(
                &name.referenced,
                format!(
                    "duplicate rule name `{}` (first used on line {}; names must be unique)",
                    name.value,
                    first.line()
                ),
            ));
        } else {
            seen.insert(name.value.clone(), name.referenced);
        }
        if let Some(rule) = compile_rule(raw.value, &mut problems) {
            rules.push(rule);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Stable: ties keep file order.
    rules.sort_by_key(|rule| Reverse(rule.priority));
    Ok(rules)
}

fn compile_rule(raw: RawRule, problems: &mut Vec<Problem>) -> Option<Rule> {
    let before = problems.len();
    if let Some(agent) = &raw.agent
        && agent.value.trim().is_empty()
    {
        problems.push(problem(
            &agent.referenced,
            "`agent` must be an agent name (leave it out to apply the rule to every agent)"
                .to_owned(),
        ));
    }
    let mut conditions = Vec::with_capacity(raw.conditions.0.len());
    for (path, operators) in raw.conditions.0 {
        if let Some(condition) = compile_condition(path, operators, problems) {
            conditions.push(condition);
        }
    }
    if let Some(template) = &raw.scope_template
        && let Err(bad) = scope::validate(&template.value)
    {
        for (key, why) in bad {
            problems.push(problem(
                &template.referenced,
                format!("scopeTemplate key `{key}`: {why}"),
            ));
        }
    }
    (problems.len() == before).then(|| Rule {
        name: raw.name.value,
        description: raw.description,
        agent: raw.agent.map(|a| a.value),
        effect: raw.action,
        priority: raw.priority.unwrap_or(0),
        scope_template: raw.scope_template.map(|t| t.value),
        require_action_details: raw.require_action_details,
        bind: raw.bind,
        confirm: raw.confirm,
        conditions,
    })
}

fn compile_condition(
    path: Spanned<String>,
    operators: RawOperators,
    problems: &mut Vec<Problem>,
) -> Option<Condition> {
    let subject = match parse_path(&path.value) {
        Ok(subject) => Some(subject),
        Err(message) => {
            problems.push(problem(&path.referenced, message));
            None
        }
    };
    if operators.0.is_empty() {
        problems.push(problem(
            &path.referenced,
            format!(
                "condition `{}` has no operator (allowed: {})",
                path.value,
                OPERATORS.join(", ")
            ),
        ));
    }
    let mut compiled = Vec::with_capacity(operators.0.len());
    for (name, operand) in operators.0 {
        match compile_operator(&name.value, operand.value) {
            Ok(op) => compiled.push(op),
            Err(OperatorError::UnknownName(message)) => {
                problems.push(problem(&name.referenced, message));
            }
            Err(OperatorError::BadOperand(message)) => problems.push(problem(
                &operand.referenced,
                format!("`{}` on `{}` {message}", name.value, path.value),
            )),
        }
    }
    Some(Condition {
        path: path.value,
        subject: subject?,
        operators: compiled,
    })
}

/// Splits a condition path once, at load.
pub(crate) fn parse_path(path: &str) -> Result<Subject, String> {
    let keys = |rest: &str, root: &str| -> Result<Box<[String]>, String> {
        let keys: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if keys.iter().any(String::is_empty) {
            Err(format!(
                "condition path `{path}` has an empty key (write {root}.<key>[.<key>…])"
            ))
        } else {
            Ok(keys.into_boxed_slice())
        }
    };
    match path {
        "action" => Ok(Subject::Action),
        "resource" => Ok(Subject::Resource),
        "agent" => Ok(Subject::AgentName),
        "agentId" => Ok(Subject::AgentId),
        "scope" | "context" => Err(format!(
            "condition path `{path}` needs a key, e.g. `{path}.amount`"
        )),
        _ => {
            if let Some(rest) = path.strip_prefix("scope.") {
                keys(rest, "scope").map(Subject::Scope)
            } else if let Some(rest) = path.strip_prefix("context.") {
                keys(rest, "context").map(Subject::Context)
            } else {
                let roots = ["action", "resource", "agent", "agentId", "scope", "context"];
                let first = path.split('.').next().unwrap_or(path);
                Err(format!(
                    "unknown condition path `{path}`{} (allowed: {PATHS_ALLOWED})",
                    hint(first, &roots)
                ))
            }
        }
    }
}

enum OperatorError {
    UnknownName(String),
    BadOperand(String),
}

fn compile_operator(name: &str, operand: Value) -> Result<Operator, OperatorError> {
    use OperatorError::BadOperand;
    // Kept as the YAML reader gave it: a whole number stays exact (`crate::number::cmp`).
    let number = |v: &Value| match v {
        Value::Number(n) => Ok(n.clone()),
        other => Err(BadOperand(format!(
            "needs a number, not {}",
            describe(other)
        ))),
    };
    let string = |v: Value| match v {
        Value::String(s) => Ok(s),
        other => Err(BadOperand(format!(
            "needs a string, not {}",
            describe(&other)
        ))),
    };
    let list = |v: Value| match v {
        Value::Array(items) => Ok(items),
        other => Err(BadOperand(format!(
            "needs a list, not {}",
            describe(&other)
        ))),
    };
    Ok(match name {
        "equals" => Operator::Equals(operand),
        "notEquals" => Operator::NotEquals(operand),
        "lessThan" => Operator::LessThan(number(&operand)?),
        "lessThanOrEqual" => Operator::LessThanOrEqual(number(&operand)?),
        "greaterThan" => Operator::GreaterThan(number(&operand)?),
        "greaterThanOrEqual" => Operator::GreaterThanOrEqual(number(&operand)?),
        "startsWith" => Operator::StartsWith(string(operand)?),
        "endsWith" => Operator::EndsWith(string(operand)?),
        "contains" => match operand {
            Value::Array(_) | Value::Object(_) => {
                return Err(BadOperand(format!(
                    "needs a string (substring) or a single value (list element), not {}",
                    describe(&operand)
                )));
            }
            scalar => Operator::Contains(scalar),
        },
        "matches" => {
            let pattern = string(operand)?;
            Operator::Matches(
                scope::build_regex(&pattern).map_err(|e| BadOperand(format!("has an {e}")))?,
            )
        }
        "in" => Operator::In(list(operand)?),
        "notIn" => Operator::NotIn(list(operand)?),
        "exists" => match operand {
            Value::Bool(b) => Operator::Exists(b),
            other => {
                return Err(BadOperand(format!(
                    "needs true or false, not {}",
                    describe(&other)
                )));
            }
        },
        _ => {
            return Err(OperatorError::UnknownName(format!(
                "unknown operator `{name}`{} (allowed: {})",
                hint(name, OPERATORS),
                OPERATORS.join(", ")
            )));
        }
    })
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {}", scope::brief(&Value::String(s.clone()))),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
        other => other.to_string(),
    }
}

/// ` (did you mean `lessThan`?)` when `written` differs from a known name only by case or `_`.
pub(crate) fn hint(written: &str, known: &[&str]) -> String {
    let squash = |s: &str| s.replace(['_', '-'], "").to_lowercase();
    let target = squash(written);
    known
        .iter()
        .find(|k| squash(k) == target)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_split_once() {
        let cases: &[(&str, Result<Subject, &str>)] = &[
            ("action", Ok(Subject::Action)),
            ("resource", Ok(Subject::Resource)),
            ("agent", Ok(Subject::AgentName)),
            ("agentId", Ok(Subject::AgentId)),
            (
                "scope.a.b",
                Ok(Subject::Scope(vec!["a".into(), "b".into()].into())),
            ),
            ("context.to", Ok(Subject::Context(vec!["to".into()].into()))),
            ("scope", Err("needs a key")),
            ("context.", Err("empty key")),
            ("scope.a..b", Err("empty key")),
            ("agent_id", Err("did you mean `agentId`")),
            ("Action", Err("did you mean `action`")),
            ("request.x", Err("unknown condition path")),
        ];
        for (path, want) in cases {
            match (parse_path(path), want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{path}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{path}: {got}"),
                (got, want) => panic!("{path}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn operands_are_type_checked() {
        let bad = [
            ("lessThan", json!("5")),
            ("greaterThan", json!(null)),
            ("startsWith", json!(1)),
            ("endsWith", json!(["a"])),
            ("matches", json!("(")),
            ("matches", json!(true)),
            ("in", json!("a")),
            ("notIn", json!({"a": 1})),
            ("exists", json!("yes")),
            ("contains", json!(["a"])),
        ];
        for (name, operand) in bad {
            assert!(
                matches!(
                    compile_operator(name, operand.clone()),
                    Err(OperatorError::BadOperand(_))
                ),
                "{name}: {operand}"
            );
        }
        assert!(
            matches!(compile_operator("less_than", json!(1)), Err(OperatorError::UnknownName(m)) if m.contains("lessThan"))
        );
        for name in OPERATORS {
            let operand = match *name {
                "exists" => json!(true),
                "in" | "notIn" => json!([1]),
                "startsWith" | "endsWith" | "matches" => json!("a"),
                _ => json!(1),
            };
            let op = compile_operator(name, operand).ok().unwrap();
            assert_eq!(op.name(), *name);
        }
    }
}
