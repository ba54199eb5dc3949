//! Replaying the trail against the state tables: every request's status, uses left, scope and
//! token hash follow from its events, so a row edited behind the service's back (say
//! `UPDATE permissions SET status = 'approved', uses_remaining = 5`) shows as a request whose row
//! disagrees with its history. A pure fold: feed it events in `seq` order, then each stored row.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::StoredEvent;
use crate::scope::json_eq;

/// What a request's events say its row must hold.
#[derive(Debug, Clone, Default)]
struct Expected {
    status: Option<String>,
    uses_remaining: Option<i64>,
    scope: Option<Map<String, Value>>,
    /// `None`: no event named it (events from before hashes were recorded).
    token_hash: Option<String>,
    pruned: bool,
}

/// A request's state as stored, for [`Replay::check`].
#[derive(Debug, Clone)]
pub struct StoredState {
    pub id: String,
    pub status: String,
    pub uses_remaining: i64,
    pub scope: Map<String, Value>,
    pub token_hash: Option<String>,
}

/// One request whose row disagrees with its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub request_id: String,
    pub why: String,
}

/// Expected request states, built from the events.
#[derive(Debug, Default)]
pub struct Replay {
    requests: HashMap<String, Expected>,
    seen_rows: std::collections::HashSet<String>,
}

impl Replay {
    /// Applies one event (in `seq` order).
    pub fn push(&mut self, e: &StoredEvent) {
        let Some(id) = &e.request_id else {
            return;
        };
        let d = &e.details;
        let x = self.requests.entry(id.clone()).or_default();
        let status = |s: &str| Some(s.to_owned());
        match e.event.as_str() {
            "permission.requested" => {
                x.status = match d.get("decision").and_then(Value::as_str) {
                    Some("deny") => status("denied"),
                    Some("auto_approve") => status("approved"),
                    _ => status("pending"),
                };
                x.uses_remaining = d.get("uses").and_then(Value::as_i64);
                x.scope = d.get("grantedScope").and_then(Value::as_object).cloned();
            }
            "token.issued" => {
                if let Some(h) = d.get("tokenHash").and_then(Value::as_str) {
                    x.token_hash = Some(h.to_owned());
                }
            }
            "permission.approved" => {
                x.status = status("approved");
                x.uses_remaining = d.get("uses").and_then(Value::as_i64);
                if let Some(scope) = d.get("scope").and_then(Value::as_object) {
                    x.scope = Some(scope.clone());
                }
            }
            "permission.denied" => x.status = status("denied"),
            "permission.revoked" => x.status = status("revoked"),
            "permission.expired" => x.status = status("expired"),
            "token.used" => {
                x.uses_remaining = d.get("usesRemaining").and_then(Value::as_i64);
                if x.uses_remaining == Some(0) {
                    x.status = status("used");
                }
            }
            "permission.pruned" => x.pruned = true,
            _ => {}
        }
    }

    /// Checks one stored row against what its events say.
    pub fn check(&mut self, row: &StoredState) -> Option<Mismatch> {
        self.seen_rows.insert(row.id.clone());
        let mismatch = |why: String| {
            Some(Mismatch {
                request_id: row.id.clone(),
                why,
            })
        };
        let Some(x) = self.requests.get(&row.id) else {
            return mismatch("the row has no events (inserted behind the service's back?)".into());
        };
        if x.pruned {
            return mismatch("the row was pruned, yet it is still there".into());
        }
        if let Some(status) = &x.status
            && *status != row.status
        {
            return mismatch(format!(
                "status is {:?}, its events say {status:?}",
                row.status
            ));
        }
        if let Some(uses) = x.uses_remaining
            && uses != row.uses_remaining
        {
            return mismatch(format!(
                "uses left is {}, its events say {uses}",
                row.uses_remaining
            ));
        }
        if let Some(scope) = &x.scope
            && !json_eq(
                &Value::Object(scope.clone()),
                &Value::Object(row.scope.clone()),
            )
        {
            return mismatch("the scope differs from the one its events granted".into());
        }
        if let Some(hash) = &x.token_hash
            && row.token_hash.as_deref() != Some(hash.as_str())
        {
            return mismatch("the token hash differs from the one its events issued".into());
        }
        None
    }

    /// Requests with events whose row is gone without a `permission.pruned` event (call after
    /// every row has been checked).
    pub fn missing_rows(&self) -> Vec<Mismatch> {
        let mut out: Vec<Mismatch> = self
            .requests
            .iter()
            .filter(|(id, x)| !x.pruned && !self.seen_rows.contains(*id))
            .map(|(id, _)| Mismatch {
                request_id: id.clone(),
                why: "the row is gone, and no event pruned it (deleted behind the service's back?)"
                    .into(),
            })
            .collect();
        out.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use serde_json::json;

    fn ev(seq: i64, id: &str, event: &str, details: Value) -> StoredEvent {
        StoredEvent {
            seq,
            at: Timestamp(seq),
            actor: "policy".into(),
            event: event.into(),
            request_id: Some(id.into()),
            agent_id: None,
            details,
            prev_hash: String::new(),
            hash: String::new(),
            keyed: true,
        }
    }

    fn row(id: &str, status: &str, uses: i64, token: Option<&str>) -> StoredState {
        StoredState {
            id: id.into(),
            status: status.into(),
            uses_remaining: uses,
            scope: json!({"max_amount": 10}).as_object().cloned().unwrap(),
            token_hash: token.map(str::to_owned),
        }
    }

    #[test]
    fn rows_must_say_what_their_events_say() {
        let mut r = Replay::default();
        let granted =
            json!({"decision": "auto_approve", "uses": 1, "grantedScope": {"max_amount": 10}});
        r.push(&ev(1, "a", "permission.requested", granted.clone()));
        r.push(&ev(2, "a", "token.issued", json!({"tokenHash": "h1"})));
        r.push(&ev(3, "a", "token.used", json!({"usesRemaining": 0})));
        r.push(&ev(4, "b", "permission.requested", granted));
        r.push(&ev(5, "b", "permission.pruned", json!({})));
        assert_eq!(r.check(&row("a", "used", 0, Some("h1"))), None);
        let revived = r.check(&row("a", "approved", 5, Some("h1"))).unwrap();
        assert!(revived.why.contains("status"), "{revived:?}");
        let other_token = r.check(&row("a", "used", 0, Some("h2"))).unwrap();
        assert!(other_token.why.contains("token hash"));
        let mut wider = row("a", "used", 0, Some("h1"));
        wider.scope.insert("max_amount".into(), json!(1000));
        assert!(r.check(&wider).unwrap().why.contains("scope"));
        assert!(
            r.check(&row("z", "approved", 1, None))
                .unwrap()
                .why
                .contains("no events")
        );
        assert_eq!(r.missing_rows(), vec![], "b was pruned, a was seen");
        let mut r2 = Replay::default();
        r2.push(&ev(
            1,
            "c",
            "permission.requested",
            json!({"decision": "deny", "uses": 1}),
        ));
        assert_eq!(r2.missing_rows()[0].request_id, "c");
    }
}
