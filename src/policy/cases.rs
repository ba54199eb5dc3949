//! The case file of `agent-otp policy test --cases FILE`: a list of requests with the decision
//! each must get, so operators can check a policy in CI before deploying it. Read with the same
//! strict YAML rules as the policy file (unknown keys, duplicate keys, wrong types are errors with
//! line and column).
//!
//! ```yaml
//! tests:
//!   - name: small reads are automatic
//!     agent: reporter            # required: the requesting agent's name
//!     agentId: ag_123            # optional (default: the name)
//!     action: file.read          # required
//!     resource: /srv/a.txt       # optional
//!     scope: { max_size: 10 }    # optional mapping
//!     context: {}                # optional mapping
//!     expect: auto_approve       # auto_approve | require_approval | deny
//!     expectRule: small-reads    # optional: the deciding rule's name; `null` for the default
//! ```

use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::{Effect, PolicyError, Problem, yaml_options, yaml_problem};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCases {
    tests: Vec<Spanned<RawCase>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCase {
    name: String,
    agent: String,
    #[serde(default)]
    agent_id: Option<String>,
    action: String,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    scope: Option<Map<String, Value>>,
    #[serde(default)]
    context: Option<Map<String, Value>>,
    expect: Effect,
    /// Absent: any rule; `null`: the default (no rule matched); a string: that rule.
    #[serde(default, deserialize_with = "present")]
    expect_rule: Option<Option<String>>,
}

/// Tells "key absent" (outer `None`, via `default`) from "key: null" (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// One request and the decision it must get.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    /// Shown in the report.
    pub name: String,
    /// Line of the case in its file.
    pub line: u64,
    pub agent: String,
    pub agent_id: String,
    pub action: String,
    pub resource: Option<String>,
    pub scope: Map<String, Value>,
    pub context: Map<String, Value>,
    /// The decision required.
    pub expect: Effect,
    /// `None`: any rule; `Some(None)`: no rule (the default); `Some(Some(name))`: that rule.
    pub expect_rule: Option<Option<String>>,
}

/// Parses a case file.
pub(crate) fn parse_cases(yaml: &str) -> Result<Vec<Case>, PolicyError> {
    let raw: RawCases = serde_saphyr::from_str_with_options(yaml, yaml_options())
        .map_err(|e| yaml_problem(e, yaml))?;
    if raw.tests.is_empty() {
        return Err(PolicyError {
            problems: vec![Problem {
                line: None,
                column: None,
                message: "`tests` is empty: add at least one case".to_owned(),
            }],
        });
    }
    Ok(raw
        .tests
        .into_iter()
        .map(|spanned| {
            let c = spanned.value;
            Case {
                name: c.name,
                line: spanned.referenced.line(),
                agent_id: c.agent_id.unwrap_or_else(|| c.agent.clone()),
                agent: c.agent,
                action: c.action,
                resource: c.resource,
                scope: c.scope.unwrap_or_default(),
                context: c.context.unwrap_or_default(),
                expect: c.expect,
                expect_rule: c.expect_rule,
            }
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_cases_strictly() {
        let cases = parse_cases(
            "tests:\n  - name: a\n    agent: x\n    action: file.read\n    scope: { n: 1 }\n    expect: deny\n    expectRule: null\n  - name: b\n    agent: y\n    agentId: id-y\n    action: z\n    expect: auto_approve\n    expectRule: r\n",
        )
        .unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].expect_rule, Some(None));
        assert_eq!(cases[0].agent_id, "x");
        assert_eq!(cases[0].scope["n"], 1);
        assert_eq!(cases[1].expect_rule, Some(Some("r".into())));
        assert_eq!(cases[1].line, 8);

        let err =
            parse_cases("tests:\n  - name: a\n    agent: x\n    action: y\n    expect: allow\n")
                .unwrap_err();
        assert_eq!(err.problems()[0].line, Some(5), "{err}");
        let err = parse_cases("tests:\n  - name: a\n    agent: x\n    action: y\n    expect: deny\n    expected: deny\n")
            .unwrap_err();
        assert!(err.to_string().contains("line 6"), "{err}");
    }
}
