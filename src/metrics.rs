//! Operator metrics, in the Prometheus text format (version 0.0.4); `api::metrics` serves them
//! at `GET /metrics` to an admin token or a web session (docs/metrics.md). The counters live in one process-wide
//! registry so that the code being measured records with one call (`metrics::record_use(..)`);
//! the pending count is read from the database at scrape time. Labels are bounded: decisions,
//! refusal codes and outcomes are fixed lists, and rule names come from the operator's policy.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::clock::Timestamp;
use crate::domain::Status;

/// Upper bounds of the histograms' buckets.
const DECISION_SECS: &[f64] = &[5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];
const BATCH_JOBS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
const COMMIT_SECS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); one more than the bounds, for `+Inf`.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; bounds.len() + 1];
        }
        let i = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        if let Some(n) = self.buckets.get_mut(i) {
            *n += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Registry {
    /// (decision, rule) → requests.
    requests: BTreeMap<(&'static str, String), u64>,
    /// outcome (`approved`, `denied`) → seconds from request to a human's decision.
    human_decisions: BTreeMap<&'static str, Histogram>,
    expired: u64,
    /// `checked` (`true`/`false`) → successful uses.
    uses: BTreeMap<&'static str, u64>,
    /// refusal code → refused uses.
    refusals: BTreeMap<&'static str, u64>,
    /// result (`applied`, `rejected`, `not_recorded`) → reloads.
    reloads: BTreeMap<&'static str, u64>,
    /// (what, outcome) → failed Telegram calls.
    telegram: BTreeMap<(&'static str, &'static str), u64>,
    batches: Histogram,
    commits: Histogram,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut guard: MutexGuard<'_, Option<Registry>> = match REGISTRY.lock() {
        Ok(g) => g,
        // A panic while counting leaves counts, not broken invariants: keep going.
        Err(poisoned) => poisoned.into_inner(),
    };
    f(guard.get_or_insert_with(Registry::default))
}

/// A request the policy decided (`auto_approve`, `deny`, `require_approval`) by `rule`.
pub(crate) fn record_request(decision: &'static str, rule: Option<&str>) {
    let rule = rule.unwrap_or("").to_owned();
    with(|r| *r.requests.entry((decision, rule)).or_default() += 1);
}

/// A human decided a request created at `created`; `to` is its new status.
pub(crate) fn record_human_decision(to: Status, created: Timestamp, now: Timestamp) {
    let outcome = if to == Status::Approved {
        "approved"
    } else {
        "denied"
    };
    let secs = created.secs_until(now).max(0) as f64;
    with(|r| {
        r.human_decisions
            .entry(outcome)
            .or_default()
            .observe(DECISION_SECS, secs)
    });
}

/// Requests the sweeper marked expired.
pub(crate) fn record_expired(n: usize) {
    with(|r| r.expired += n as u64);
}

/// The outcome of a token use (by the agent or a protected service).
pub(crate) fn record_use(refused: Option<&'static str>, checked: bool) {
    with(|r| match refused {
        None => {
            *r.uses
                .entry(if checked { "true" } else { "false" })
                .or_default() += 1
        }
        Some(code) => *r.refusals.entry(code).or_default() += 1,
    });
}

/// A policy reload that did something: `applied`, `rejected` or `not_recorded`.
pub(crate) fn record_policy_reload(result: &'static str) {
    with(|r| *r.reloads.entry(result).or_default() += 1);
}

/// A Telegram call for `what` that failed: `retried`, `unreachable`, `rejected` or `gave_up`.
pub(crate) fn record_telegram_failure(what: &'static str, outcome: &'static str) {
    with(|r| *r.telegram.entry((what, outcome)).or_default() += 1);
}

/// Runs a group commit of `jobs` writes and records its size and how long the commit took.
pub(crate) fn commit<T>(jobs: usize, commit: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = commit();
    let took = started.elapsed();
    with(|r| {
        r.batches.observe(BATCH_JOBS, jobs as f64);
        r.commits.observe(COMMIT_SECS, took.as_secs_f64());
    });
    out
}

/// The exposition for one scrape: `pending` requests waiting for a human now, `rules` in the
/// policy in force, then every counter and histogram.
pub(crate) fn exposition(pending: i64, rules: usize) -> String {
    let mut out = String::with_capacity(4096);
    gauge(
        &mut out,
        "agent_otp_pending_requests",
        "Requests waiting for a human now.",
        pending,
    );
    gauge(
        &mut out,
        "agent_otp_policy_rules",
        "Rules in the policy in force.",
        rules,
    );
    with(|r| render(r, &mut out));
    out
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped, as the text format wants.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, bounds: &[f64], h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, bound) in bounds.iter().enumerate() {
        cumulative += h.buckets.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
        );
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = |l: &str| {
        if l.is_empty() {
            String::new()
        } else {
            format!("{{{l}}}")
        }
    };
    let _ = writeln!(out, "{name}_sum{} {}", braces(labels), h.sum);
    let _ = writeln!(out, "{name}_count{} {}", braces(labels), h.count);
}

fn render(r: &Registry, out: &mut String) {
    let name = "agent_otp_requests_total";
    header(
        out,
        name,
        "counter",
        "Permission requests by policy decision and deciding rule (empty: no rule matched).",
    );
    for ((decision, rule), n) in &r.requests {
        let rule = label(rule);
        let _ = writeln!(out, "{name}{{decision=\"{decision}\",rule=\"{rule}\"}} {n}");
    }

    let name = "agent_otp_human_decision_seconds";
    header(
        out,
        name,
        "histogram",
        "Time from a request to a human's decision, by outcome.",
    );
    for (outcome, h) in &r.human_decisions {
        let labels = format!("outcome=\"{outcome}\"");
        histogram(out, name, &labels, DECISION_SECS, h);
    }

    let name = "agent_otp_expired_total";
    header(
        out,
        name,
        "counter",
        "Requests that lapsed (marked expired by the sweeper).",
    );
    let _ = writeln!(out, "{name} {}", r.expired);

    let name = "agent_otp_token_uses_total";
    header(
        out,
        name,
        "counter",
        "Successful token uses; checked=false: without actionDetails.",
    );
    for checked in ["true", "false"] {
        let n = r.uses.get(checked).copied().unwrap_or(0);
        let _ = writeln!(out, "{name}{{checked=\"{checked}\"}} {n}");
    }

    let name = "agent_otp_token_refusals_total";
    header(out, name, "counter", "Refused token uses, by refusal code.");
    for (code, n) in &r.refusals {
        let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
    }

    let name = "agent_otp_policy_reloads_total";
    header(
        out,
        name,
        "counter",
        "Policy reloads: applied, rejected (the last good policy stays), not_recorded.",
    );
    for result in ["applied", "rejected", "not_recorded"] {
        let n = r.reloads.get(result).copied().unwrap_or(0);
        let _ = writeln!(out, "{name}{{result=\"{result}\"}} {n}");
    }

    let name = "agent_otp_telegram_failures_total";
    header(
        out,
        name,
        "counter",
        "Failed Telegram Bot API calls, by purpose and outcome (retried, unreachable, rejected, gave_up).",
    );
    for ((what, outcome), n) in &r.telegram {
        let _ = writeln!(out, "{name}{{what=\"{what}\",outcome=\"{outcome}\"}} {n}");
    }

    let name = "agent_otp_writer_batch_jobs";
    header(
        out,
        name,
        "histogram",
        "Writes committed together in one group commit.",
    );
    histogram(out, name, "", BATCH_JOBS, &r.batches);
    let name = "agent_otp_writer_commit_seconds";
    header(
        out,
        name,
        "histogram",
        "How long a group commit's COMMIT (with its fsync) took.",
    );
    histogram(out, name, "", COMMIT_SECS, &r.commits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let mut h = Histogram::default();
        for v in [0.5, 1.0, 3.0, 9.0] {
            h.observe(&[1.0, 2.0, 4.0], v);
        }
        let mut out = String::new();
        histogram(&mut out, "x", "a=\"b\"", &[1.0, 2.0, 4.0], &h);
        assert_eq!(
            out,
            "x_bucket{a=\"b\",le=\"1\"} 2\nx_bucket{a=\"b\",le=\"2\"} 2\n\
             x_bucket{a=\"b\",le=\"4\"} 3\nx_bucket{a=\"b\",le=\"+Inf\"} 4\n\
             x_sum{a=\"b\"} 13.5\nx_count{a=\"b\"} 4\n"
        );
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
