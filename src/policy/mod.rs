//! Policies: the YAML file that decides, for each permission request, whether to auto-approve,
//! deny or ask a human. `parse` is the only way in (and the only caller of serde-saphyr): it reads
//! the file strictly — an unknown key, unknown operator or path, wrong type, duplicate key or rule
//! name, or a regex that does not compile rejects the whole file with line and column — and
//! compiles it once, so `evaluate` is a walk over compiled conditions. Rules are tried by priority
//! (higher first, ties in file order); the first match decides; no match means `require_approval`.
//! Submodules: `model` (the file as written), `compile` (checks and compilation), `eval`
//! (matching), `explain` (why each rule did or did not match), `cases` (the `policy test --cases`
//! file, read by the same strict YAML rules).

mod cases;
mod compile;
mod eval;
mod explain;
/// The policy in force, swapped whole on reload.
pub(crate) mod live;
mod model;
/// Hot reload of the policy file: directory watch, debounce, SIGHUP, audit.
pub(crate) mod watch;

use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub(crate) use cases::parse_cases;
pub(crate) use explain::{Explanation, RuleMiss};
pub(crate) use model::Bind;

/// Largest policy file accepted, in bytes.
pub(crate) const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// What a rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Grant at once, without a human.
    AutoApprove,
    /// Ask a human.
    RequireApproval,
    /// Refuse at once.
    Deny,
}

impl Effect {
    /// The name used in the file and on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Effect::AutoApprove => "auto_approve",
            Effect::RequireApproval => "require_approval",
            Effect::Deny => "deny",
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique, non-empty name; recorded with each decision.
    pub name: String,
    /// Free text for humans.
    pub description: Option<String>,
    /// When set, the rule only applies to the agent with this name.
    pub agent: Option<String>,
    /// What the rule decides.
    pub effect: Effect,
    /// Higher is tried first; default 0.
    pub priority: i64,
    /// Constraints merged into the granted scope (see `scope::narrow`).
    pub scope_template: Option<Map<String, Value>>,
    /// A use of the grant must carry `actionDetails` (checked against the scope).
    pub require_action_details: bool,
    /// `bind: exact`: the request must carry its exact `actionDetails`, and each use the same.
    pub bind: Option<Bind>,
    /// `confirm: true`: a human approval takes a second, explicit confirmation (web and Telegram).
    pub confirm: bool,
    conditions: Vec<compile::Condition>,
}

impl Rule {
    /// True when the rule matches every request (no conditions, no agent restriction).
    pub fn matches_everything(&self) -> bool {
        self.conditions.is_empty() && self.agent.is_none()
    }

    /// True when the rule itself speaks of the scope key at `path` (its nesting, outermost
    /// first): a condition on `scope.<path>` or an entry of its `scopeTemplate`.
    pub fn names_scope_key(&self, path: &[&str]) -> bool {
        let in_conditions = self.conditions.iter().any(|c| {
            matches!(&c.subject, compile::Subject::Scope(p)
                if p.len() == path.len() && p.iter().zip(path).all(|(a, b)| a == b))
        });
        let in_template = self.scope_template.as_ref().is_some_and(|t| {
            let mut level = t;
            for (i, key) in path.iter().enumerate() {
                match level.get(*key) {
                    Some(_) if i + 1 == path.len() => return true,
                    Some(Value::Object(inner)) => level = inner,
                    _ => return false,
                }
            }
            false
        });
        in_conditions || in_template
    }

    /// Each condition as written, for people reading the rule: `(path, operator, operand)`.
    pub fn conditions(&self) -> impl Iterator<Item = (&str, &'static str, Value)> + '_ {
        self.conditions.iter().flat_map(|c| {
            c.operators
                .iter()
                .map(move |o| (c.path.as_str(), o.name(), o.operand()))
        })
    }
}

/// A loaded policy file: rules in evaluation order plus the file's hash.
#[derive(Debug, Clone)]
pub struct Policy {
    version: String,
    rules: Vec<Rule>,
}

/// What `evaluate` looks at.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    /// The requested action, e.g. `file.read`.
    pub action: &'a str,
    /// The resource, if the request named one.
    pub resource: Option<&'a str>,
    /// The requesting agent's name.
    pub agent_name: &'a str,
    /// The requesting agent's id.
    pub agent_id: &'a str,
    /// The requested scope.
    pub scope: &'a Map<String, Value>,
    /// The request's free-form context.
    pub context: &'a Map<String, Value>,
}

/// The outcome of `evaluate`: the effect and the rule that decided (`None`: the default).
#[derive(Debug, Clone, Copy)]
pub struct Decision<'p> {
    /// What to do.
    pub effect: Effect,
    /// The deciding rule; `None` when no rule matched.
    pub rule: Option<&'p Rule>,
}

/// One thing wrong with a policy file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// What is wrong (and what is allowed).
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A rejected policy file: every problem found, one per line in `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    problems: Vec<Problem>,
}

impl PolicyError {
    /// Each problem, in file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    fn one(message: String) -> Self {
        PolicyError {
            problems: vec![Problem {
                line: None,
                column: None,
                message,
            }],
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// Parses, validates and compiles a policy file. The only place serde-saphyr is called.
pub fn parse(yaml: &str) -> Result<Policy, PolicyError> {
    if yaml.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::one(format!(
            "policy file is {} bytes (at most {MAX_POLICY_BYTES} allowed)",
            yaml.len()
        )));
    }
    let blank = yaml
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Err(PolicyError::one(format!(
            "policy file is empty (expected {})",
            model::TOP_LEVEL
        )));
    }
    let options = yaml_options();
    let raw: model::RawFile =
        serde_saphyr::from_str_with_options(yaml, options).map_err(|e| yaml_problem(e, yaml))?;
    let rules = compile::compile(raw).map_err(|problems| PolicyError { problems })?;
    Ok(Policy {
        version: sha256_hex(yaml.as_bytes()),
        rules,
    })
}

/// The strict reading rules shared by policy files and `policy test` case files.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::Options {
        budget: Some(serde_saphyr::Budget {
            max_reader_input_bytes: Some(MAX_POLICY_BYTES),
            max_events: 500_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 64,
            // 2, not 1: serde-saphyr swallows a budget breach at the start of a second document
            // (it ends the first), whereas with room for it, it reports "multiple YAML documents".
            max_documents: 2,
            max_nodes: 250_000,
            max_total_scalar_bytes: MAX_POLICY_BYTES,
            max_merge_keys: 1_000,
            ..serde_saphyr::Budget::default()
        }),
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        // YAML 1.2 booleans only: `yes`/`no`/`on`/`off` stay strings.
        strict_booleans: true,
        with_snippet: false,
        ..serde_saphyr::Options::default()
    }
}

/// A serde-saphyr error as a `Problem`: location split out, a hint added for near-miss keys.
fn yaml_problem(err: serde_saphyr::Error, yaml: &str) -> PolicyError {
    let location = err.location();
    let mut message = err.to_string();
    let mut at = location.map(|l| (l.line(), l.column()));
    if let Some(loc) = location {
        let suffix = format!(" at line {}, column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    if let Some(rest) = message.strip_prefix("unknown top-level key `")
        && let Some((key, _)) = rest.split_once('`')
        && at.is_none()
    {
        // Raised by our own top-level visitor, which serde-saphyr does not locate.
        at = key_location(yaml, 1, 1, key);
    }
    if message == "invalid i64" {
        message = "expected a whole number".to_owned();
    } else if let Some(rest) = message.strip_prefix("invalid type: unit value") {
        message = format!("empty value{rest}");
    } else if let Some(rest) = message.strip_prefix("invalid type: ") {
        message = format!("found {}", plain_type(rest));
    } else if let Some(tab) = tab_near(yaml, at, &message) {
        message = "a tab character: YAML indents with spaces only".to_owned();
        at = Some(tab);
    } else if message.contains("did not find expected key")
        || message.contains("mapping values are not allowed")
    {
        message = "this line is indented differently from the keys above it (the keys of one \
                   mapping, e.g. of one rule, must start in the same column)"
            .to_owned();
    } else if message.starts_with("unexpected event: expected mapping start") {
        message = "expected a rule here: a mapping such as `- name: …` with `conditions:` and \
                   `action:` beneath it"
            .to_owned();
    } else if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        message = format!(
            "the rule has no `{field}` (every rule needs `name`, `conditions` and `action`{}; \
             is it indented differently from the rule's other keys?)",
            if field == "conditions" {
                ", `conditions: {}` matches every request"
            } else {
                ""
            }
        );
    } else if message.starts_with("multiple YAML documents") {
        message =
            "more than one YAML document (one list of rules per file; remove the `---`)".to_owned();
    } else if message.starts_with("YAML budget breached") {
        message.push_str(" (the file is too large, too deeply nested or uses too many aliases)");
    } else if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, tail)) = rest.split_once('`')
        && let Some(expected) = tail.strip_prefix(", expected one of ")
    {
        let known: Vec<&str> = expected.split(", ").map(|k| k.trim_matches('`')).collect();
        let hint = compile::hint(field, &known);
        at = at.map(|(line, column)| {
            key_location(yaml, line, column, field).unwrap_or((line, column))
        });
        message.push_str(&hint);
    }
    PolicyError {
        problems: vec![Problem {
            line: at.map(|(l, _)| l),
            column: at.map(|(_, c)| c),
            message,
        }],
    }
}

/// serde's `invalid type: map, expected …` in words: `found a mapping, expected …`.
fn plain_type(rest: &str) -> String {
    for (raw, plain) in [
        ("map,", "a mapping,"),
        ("sequence,", "a list,"),
        ("string ", "the text "),
        ("boolean ", "the boolean "),
        ("integer ", "the number "),
        ("floating point ", "the number "),
    ] {
        if let Some(tail) = rest.strip_prefix(raw) {
            return format!("{plain}{tail}");
        }
    }
    rest.to_owned()
}

/// For a scanner error caused by a tab (its messages do not always say so, nor point at it):
/// where the first tab at or after the error's line is.
fn tab_near(yaml: &str, at: Option<(u64, u64)>, message: &str) -> Option<(u64, u64)> {
    let scanner = message.contains("tab") || message.starts_with("while ");
    let from = at.and_then(|(line, _)| usize::try_from(line).ok())?;
    if !scanner {
        return None;
    }
    yaml.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .take(2)
        .find_map(|(n, text)| {
            let column = text.chars().position(|c| c == '\t')?;
            Some((u64::try_from(n + 1).ok()?, u64::try_from(column + 1).ok()?))
        })
}

/// serde-saphyr places an unknown field at the start of its mapping; this finds the key itself:
/// the first line of that mapping (same indentation, from `line`) that starts with `key:`.
fn key_location(yaml: &str, line: u64, column: u64, key: &str) -> Option<(u64, u64)> {
    let indent = usize::try_from(column.checked_sub(1)?).ok()?;
    let first = usize::try_from(line.checked_sub(1)?).ok()?;
    for (n, text) in yaml.lines().enumerate().skip(first) {
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let col = text.len() - trimmed.len();
        let (col, rest) = match trimmed.strip_prefix("- ") {
            Some(after) if n == first => (
                col + 2 + after.len() - after.trim_start().len(),
                after.trim_start(),
            ),
            _ => (col, trimmed),
        };
        if col < indent && n > first {
            return None; // left the mapping
        }
        let is_key = rest
            .strip_prefix(key)
            .is_some_and(|after| after.trim_start().starts_with(':'));
        if col == indent && is_key {
            return Some((u64::try_from(n + 1).ok()?, column));
        }
    }
    None
}

fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const BUILTIN_DEFAULT: &str = "\
# Built-in policy, used when no policy file is configured: every request needs a human.
policies:
  - name: builtin-require-approval
    description: Every request needs a human's approval.
    conditions: {}
    action: require_approval
";

impl Policy {
    /// The policy in force without a file: one rule sending every request to a human.
    pub fn builtin_default() -> Policy {
        parse(BUILTIN_DEFAULT).unwrap_or_else(|_| Policy {
            version: sha256_hex(BUILTIN_DEFAULT.as_bytes()),
            rules: vec![Rule {
                name: "builtin-require-approval".to_owned(),
                description: None,
                agent: None,
                effect: Effect::RequireApproval,
                priority: 0,
                scope_template: None,
                require_action_details: false,
                bind: None,
                confirm: false,
                conditions: Vec::new(),
            }],
        })
    }

    /// Whether the rule named `rule` asks a human for a second confirmation (`confirm: true`).
    pub fn asks_confirmation(&self, rule: &str) -> bool {
        self.rules.iter().any(|r| r.name == rule && r.confirm)
    }

    /// Lowercase hex SHA-256 of the exact file text.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Rules in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first matching rule decides; none matching means `require_approval`.
    pub fn evaluate(&self, input: &EvalInput<'_>) -> Decision<'_> {
        self.rules
            .iter()
            .find(|rule| eval::check(rule, input).is_ok())
            .map_or(
                Decision {
                    effect: Effect::RequireApproval,
                    rule: None,
                },
                |rule| Decision {
                    effect: rule.effect,
                    rule: Some(rule),
                },
            )
    }

    /// The decision and, for each rule tried before it, the check that failed.
    pub fn explain(&self, input: &EvalInput<'_>) -> Explanation {
        explain::explain(self, input)
    }

    /// `(shadowed, by)` for rules that can never match because an earlier rule matches everything.
    pub fn shadowed_rules(&self) -> Vec<(String, String)> {
        let Some(at) = self.rules.iter().position(Rule::matches_everything) else {
            return Vec::new();
        };
        let by = &self.rules[at].name;
        self.rules[at + 1..]
            .iter()
            .map(|rule| (rule.name.clone(), by.clone()))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
