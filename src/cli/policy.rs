//! `agent-otp policy check` and `agent-otp policy test`: what an operator runs before (or
//! instead of) letting the server reload a file. Results go to stdout, problems and warnings to
//! stderr; the exit code is 0 when all is well, 1 otherwise.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{PolicyCommand, PolicyTestArgs};
use crate::policy::live::{self, LoadError};
use crate::policy::{self, Effect, EvalInput, Explanation, Policy, RuleMiss};
use crate::scope;

pub(super) fn run(command: PolicyCommand) -> Result<ExitCode, String> {
    match command {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::Test(args) => test(args),
    }
}

fn check(file: &Path) -> Result<ExitCode, String> {
    let Some(policy) = load(file) else {
        return Ok(ExitCode::FAILURE);
    };
    warn_shadowed(file, &policy);
    println!(
        "{}: ok, {} rule{}, version {}",
        file.display(),
        policy.rules().len(),
        if policy.rules().len() == 1 { "" } else { "s" },
        policy.version()
    );
    Ok(ExitCode::SUCCESS)
}

/// Loads the file, printing every problem as `FILE:LINE:COLUMN: message` when it is invalid.
fn load(file: &Path) -> Option<Policy> {
    match live::load_file(file) {
        Ok(policy) => Some(policy),
        Err(LoadError::Invalid { error, .. }) => {
            for p in error.problems() {
                let at = match (p.line, p.column) {
                    (Some(l), Some(c)) => format!("{l}:{c}:"),
                    (Some(l), None) => format!("{l}:"),
                    _ => String::new(),
                };
                eprintln!("{}:{at} error: {}", file.display(), p.message);
            }
            let n = error.problems().len();
            eprintln!(
                "{}: rejected ({n} problem{})",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
            None
        }
        Err(other) => {
            eprintln!("error: {other}");
            None
        }
    }
}

fn warn_shadowed(file: &Path, policy: &Policy) {
    for (rule, by) in policy.shadowed_rules() {
        eprintln!(
            "{}: warning: rule `{rule}` can never match: rule `{by}` before it matches every request",
            file.display()
        );
    }
}

/// One decision as `policy test` reports it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    decision: Effect,
    /// The deciding rule; `null` for the default (no rule matched).
    rule: Option<String>,
    policy_version: String,
    /// The scope a grant would carry (request ∧ the rule's scopeTemplate, and for an
    /// auto-approval the negative floors the rule does not name raised to 0); `null` when denied.
    scope: Option<Map<String, Value>>,
    /// Each rule tried before the deciding one, with the condition that failed.
    not_matched: Vec<RuleMiss>,
}

fn decide(policy: &Policy, input: &EvalInput<'_>) -> Report {
    let Explanation {
        effect,
        rule,
        policy_version,
        not_matched,
    } = policy.explain(input);
    let deciding = rule
        .as_deref()
        .and_then(|name| policy.rules().iter().find(|r| r.name == name));
    let scope = (effect != Effect::Deny)
        .then(|| crate::domain::decision::granted_scope(input.scope, deciding, effect));
    Report {
        decision: effect,
        rule,
        policy_version,
        scope,
        not_matched,
    }
}

fn print_text(report: &Report) {
    match &report.rule {
        Some(rule) => println!("decision: {} (rule `{rule}`)", report.decision.as_str()),
        None => println!(
            "decision: {} (default: no rule matched)",
            report.decision.as_str()
        ),
    }
    match &report.scope {
        Some(s) => println!("scope: {}", Value::Object(s.clone())),
        None => println!("scope: none (denied)"),
    }
    println!("policy version: {}", report.policy_version);
    if report.not_matched.is_empty() {
        return;
    }
    println!("rules tried before it:");
    for m in &report.not_matched {
        println!(
            "  `{}` (priority {}): {} {} {} failed; the request has {}",
            m.rule, m.priority, m.path, m.operator, m.expected, m.actual
        );
    }
}

fn json_object(flag: &str, text: Option<&str>) -> Result<Map<String, Value>, String> {
    let Some(text) = text else {
        return Ok(Map::new());
    };
    super::json_object(text).map_err(|why| format!("--{flag}: {why}"))
}

fn test(args: PolicyTestArgs) -> Result<ExitCode, String> {
    let Some(policy) = load(&args.file) else {
        return Ok(ExitCode::FAILURE);
    };
    warn_shadowed(&args.file, &policy);
    if let Some(cases) = &args.cases {
        return run_cases(&policy, cases, args.json);
    }
    let (Some(agent), Some(action)) = (args.agent, args.action) else {
        return Err("--agent and --action are required (or give --cases FILE)".into());
    };
    let scope = json_object("scope", args.scope.as_deref())?;
    if let Err(problems) = scope::validate(&scope) {
        let text: Vec<String> = problems.iter().map(|(k, p)| format!("{k}: {p}")).collect();
        return Err(format!("--scope: {}", text.join("; ")));
    }
    let context = json_object("context", args.context.as_deref())?;
    let agent_id = args.agent_id.unwrap_or_else(|| agent.clone());
    let resource = args
        .resource
        .as_deref()
        .map(|r| as_the_server_sees(r).map_err(|e| format!("--resource: {e}")))
        .transpose()?;
    let report = decide(
        &policy,
        &EvalInput {
            action: &action,
            resource: resource.as_deref(),
            agent_name: &agent,
            agent_id: &agent_id,
            scope: &scope,
            context: &context,
        },
    );
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print_text(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// A resource as the policy sees it on the server: in the normal form `POST /permissions/request`
/// stores (paths and URLs normalised), or the 400 it would answer.
fn as_the_server_sees(resource: &str) -> Result<String, String> {
    scope::normalize_resource(resource).map(std::borrow::Cow::into_owned)
}

/// One case's result, for `--cases --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CaseResult {
    name: String,
    line: u64,
    passed: bool,
    expected: Effect,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_rule: Option<Option<String>>,
    #[serde(flatten)]
    got: Report,
}

fn run_cases(policy: &Policy, file: &Path, json: bool) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let cases = match policy::parse_cases(&text) {
        Ok(cases) => cases,
        Err(error) => {
            for p in error.problems() {
                eprintln!("{}: {p}", file.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let resource = match case.resource.as_deref().map(as_the_server_sees).transpose() {
            Ok(r) => r,
            Err(e) => {
                return Err(format!(
                    "{}:{}: case {:?}: the server refuses its resource ({e}); a case must be a request the server accepts",
                    file.display(),
                    case.line,
                    case.name
                ));
            }
        };
        let got = decide(
            policy,
            &EvalInput {
                action: &case.action,
                resource: resource.as_deref(),
                agent_name: &case.agent,
                agent_id: &case.agent_id,
                scope: &case.scope,
                context: &case.context,
            },
        );
        let rule_ok = case
            .expect_rule
            .as_ref()
            .is_none_or(|want| *want == got.rule);
        results.push(CaseResult {
            passed: got.decision == case.expect && rule_ok,
            name: case.name,
            line: case.line,
            expected: case.expect,
            expected_rule: case.expect_rule,
            got,
        });
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?
        );
    } else {
        for r in &results {
            if r.passed {
                println!("ok    {}", r.name);
                continue;
            }
            let rule = |r: &Option<String>| match r {
                Some(name) => format!("rule `{name}`"),
                None => "no rule (default)".to_owned(),
            };
            let want = match &r.expected_rule {
                Some(w) => format!("{} by {}", r.expected.as_str(), rule(w)),
                None => r.expected.as_str().to_owned(),
            };
            println!(
                "FAIL  {} ({}:{}): expected {want}, got {} by {}",
                r.name,
                file.display(),
                r.line,
                r.got.decision.as_str(),
                rule(&r.got.rule)
            );
            for m in &r.got.not_matched {
                println!(
                    "        `{}` (priority {}): {} {} {} failed; the request has {}",
                    m.rule, m.priority, m.path, m.operator, m.expected, m.actual
                );
            }
        }
        println!(
            "{} cases: {} passed, {failed} failed",
            results.len(),
            results.len() - failed
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
