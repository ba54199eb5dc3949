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
    /// What binds the token, from a keyed `permission.requested` (events from before keys
    /// predate some of these columns, so they are not held to them).
    binding: Option<Binding>,
    /// When the row's time ends, from a keyed decision; `token.issued` must agree with it.
    expires_at: Option<i64>,
    /// A keyed event said something about the expiry that the decision did not give.
    odd_expiry: Option<String>,
}

impl Expected {
    /// A token was issued: `tokenHash` and `expiresAt` of `token.issued`, or of a
    /// `permission.requested` that auto-approved and issued in one event.
    fn issued(&mut self, d: &Value, keyed: bool) {
        if let Some(h) = d.get("tokenHash").and_then(Value::as_str) {
            self.token_hash = Some(h.to_owned());
        }
        let said = d
            .get("expiresAt")
            .and_then(Value::as_str)
            .and_then(|t| crate::clock::Timestamp::parse_rfc3339(t).ok());
        if keyed
            && let (Some(want), Some(said)) = (self.expires_at, said)
            && said.0 != want
        {
            self.odd_expiry = Some(format!(
                "its token was issued to expire at {said}, but its decision gave {}",
                crate::clock::Timestamp(want)
            ));
        }
    }
}

/// The parts of a request that say what its token is for: a row edited here would let a token
/// for one thing be used for another (another action at another service, no exact binding).
#[derive(Debug, Clone, PartialEq)]
struct Binding {
    agent_id: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    require_details: bool,
    details_digest: Option<String>,
}

/// A request's state as stored, for [`Replay::check`].
#[derive(Debug, Clone)]
pub(crate) struct StoredState {
    pub id: String,
    pub status: String,
    pub uses_remaining: i64,
    pub scope: Map<String, Value>,
    pub token_hash: Option<String>,
    pub agent_id: String,
    pub action: String,
    pub resource: Option<String>,
    /// Unix milliseconds.
    pub expires_at: i64,
    pub require_details: bool,
    pub details_digest: Option<String>,
}

/// One request whose row disagrees with its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub request_id: String,
    pub why: String,
}

/// Expected request states, built from the events.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    requests: HashMap<String, Expected>,
    seen_rows: std::collections::HashSet<String>,
}

impl Replay {
    /// Applies one event (in `seq` order).
    pub(crate) fn push(&mut self, e: &StoredEvent) {
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
                if e.keyed {
                    let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
                    x.binding = Some(Binding {
                        agent_id: e.agent_id.clone(),
                        action: text("action"),
                        resource: text("resource"),
                        require_details: d.get("requireActionDetails") == Some(&Value::Bool(true)),
                        details_digest: text("detailsDigest"),
                    });
                    let ttl = d.get("ttl").and_then(Value::as_i64);
                    x.expires_at = match (x.status.as_deref(), ttl) {
                        (Some("denied"), _) => Some(e.at.0),
                        (_, Some(ttl)) => Some(e.at.plus_secs(ttl).0),
                        _ => None,
                    };
                }
                // An auto-approval may record its token's issue in the same event.
                if d.get("tokenHash").is_some() {
                    x.issued(d, e.keyed);
                }
            }
            "token.issued" => x.issued(d, e.keyed),
            "permission.approved" => {
                x.status = status("approved");
                x.uses_remaining = d.get("uses").and_then(Value::as_i64);
                if let Some(scope) = d.get("scope").and_then(Value::as_object) {
                    x.scope = Some(scope.clone());
                }
                x.expires_at = match d.get("ttl").and_then(Value::as_i64) {
                    Some(ttl) if e.keyed => Some(e.at.plus_secs(ttl).0),
                    _ => None,
                };
            }
            "permission.denied" => {
                x.status = status("denied");
                x.expires_at = e.keyed.then_some(e.at.0);
            }
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
    pub(crate) fn check(&mut self, row: &StoredState) -> Option<Mismatch> {
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
        if let Some(b) = &x.binding {
            let stored = Binding {
                agent_id: Some(row.agent_id.clone()),
                action: Some(row.action.clone()),
                resource: row.resource.clone(),
                require_details: row.require_details,
                details_digest: row.details_digest.clone(),
            };
            let differs = [
                ("agent", b.agent_id != stored.agent_id),
                ("action", b.action != stored.action),
                ("resource", b.resource != stored.resource),
                (
                    "whether a use needs actionDetails",
                    b.require_details != stored.require_details,
                ),
                (
                    "the exact details its token is bound to",
                    b.details_digest != stored.details_digest,
                ),
            ];
            if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
                return mismatch(format!("{what} differs from what its events say"));
            }
        }
        if let Some(why) = &x.odd_expiry {
            return mismatch(why.clone());
        }
        if let Some(want) = x.expires_at
            && want != row.expires_at
        {
            return mismatch(format!(
                "it expires at {}, its events say {}",
                crate::clock::Timestamp(row.expires_at),
                crate::clock::Timestamp(want)
            ));
        }
        None
    }

    /// Requests with events whose row is gone without a `permission.pruned` event (call after
    /// every row has been checked).
    pub(crate) fn missing_rows(&self) -> Vec<Mismatch> {
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
            agent_id: Some("ag".into()),
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
            agent_id: "ag".into(),
            action: "pay.send".into(),
            resource: Some("acct:1".into()),
            expires_at: 1 + 300_000,
            require_details: true,
            details_digest: Some("d1".into()),
        }
    }

    #[test]
    fn rows_must_say_what_their_events_say() {
        let mut r = Replay::default();
        let granted = json!({"decision": "auto_approve", "uses": 1, "ttl": 300,
            "grantedScope": {"max_amount": 10}, "action": "pay.send", "resource": "acct:1",
            "requireActionDetails": true, "detailsDigest": "d1"});
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

    /// A row edited to serve another action or resource, to drop its exact binding or its need
    /// for details, or to live longer, is found: each would let the token do what was not approved.
    #[test]
    fn what_the_token_is_for_and_when_it_ends_follow_from_the_events() {
        let mut r = Replay::default();
        let granted = json!({"decision": "auto_approve", "uses": 1, "ttl": 300,
            "grantedScope": {"max_amount": 10}, "action": "pay.send", "resource": "acct:1",
            "requireActionDetails": true, "detailsDigest": "d1"});
        r.push(&ev(1, "a", "permission.requested", granted));
        r.push(&ev(
            1,
            "a",
            "token.issued",
            json!({"tokenHash": "h1", "expiresAt": Timestamp(300_001).rfc3339()}),
        ));
        let good = row("a", "approved", 1, Some("h1"));
        assert_eq!(r.check(&good), None);
        type Edit = fn(&mut StoredState);
        let edits: [(&str, Edit); 7] = [
            ("action", |s| s.action = "gmail.send".into()),
            ("resource", |s| s.resource = Some("acct:2".into())),
            ("resource", |s| s.resource = None),
            ("agent", |s| s.agent_id = "other".into()),
            ("needs actionDetails", |s| s.require_details = false),
            ("exact details", |s| s.details_digest = None),
            ("expires", |s| s.expires_at += 86_400_000),
        ];
        for (what, edit) in edits {
            let mut edited = good.clone();
            edit(&mut edited);
            let m = r
                .check(&edited)
                .unwrap_or_else(|| panic!("{what} edit not found"));
            assert!(m.why.contains(what), "{what}: {m:?}");
        }

        // Approved by a human, then the row's end moved before the token was minted: the
        // token.issued event carries the edited time, but it is not what the approval gave.
        let mut r = Replay::default();
        let asked = json!({"decision": "require_approval", "uses": 1, "ttl": 300,
            "grantedScope": {"max_amount": 10}, "action": "pay.send", "resource": "acct:1",
            "requireActionDetails": true, "detailsDigest": "d1"});
        r.push(&ev(1, "b", "permission.requested", asked));
        r.push(&ev(
            1,
            "b",
            "permission.approved",
            json!({"uses": 1, "ttl": 300, "scope": {"max_amount": 10}}),
        ));
        let late = Timestamp(300_001 + 86_400_000);
        r.push(&ev(
            1,
            "b",
            "token.issued",
            json!({"tokenHash": "h1", "expiresAt": late.rfc3339()}),
        ));
        let mut row_b = row("b", "approved", 1, Some("h1"));
        row_b.expires_at = late.0;
        let m = r.check(&row_b).unwrap();
        assert!(m.why.contains("decision gave"), "{m:?}");

        // Events from before keys are not held to columns they predate.
        let mut r = Replay::default();
        let mut old = ev(
            1,
            "c",
            "permission.requested",
            json!({"decision": "auto_approve", "uses": 1}),
        );
        old.keyed = false;
        r.push(&old);
        let mut row_c = row("c", "approved", 1, None);
        row_c.require_details = false;
        row_c.details_digest = None;
        assert_eq!(r.check(&row_c), None);
    }
    /// An auto-approval recorded as one event (request, decision and token issue together)
    /// replays like the two events it replaces.
    #[test]
    fn an_auto_approval_may_issue_its_token_in_the_request_event() {
        let one = |expires: Timestamp| {
            json!({"decision": "auto_approve", "uses": 2, "ttl": 300,
                "grantedScope": {"max_amount": 10}, "action": "pay.send", "resource": null,
                "tokenHash": "h1", "expiresAt": expires.rfc3339()})
        };
        let mut r = Replay::default();
        r.push(&ev(1, "a", "permission.requested", one(Timestamp(300_001))));
        let mut good = row("a", "approved", 2, Some("h1"));
        good.resource = None;
        good.require_details = false;
        good.details_digest = None;
        assert_eq!(r.check(&good), None);
        let mut other = good.clone();
        other.token_hash = Some("h2".into());
        assert!(r.check(&other).unwrap().why.contains("token hash"));
        let mut missing = good.clone();
        missing.token_hash = None;
        assert!(r.check(&missing).unwrap().why.contains("token hash"));
        let mut longer = good.clone();
        longer.expires_at += 86_400_000;
        assert!(r.check(&longer).unwrap().why.contains("expires"));

        // The event's own expiry must agree with its ttl.
        let mut r = Replay::default();
        let late = Timestamp(300_001 + 86_400_000);
        r.push(&ev(1, "b", "permission.requested", one(late)));
        let mut row_b = good.clone();
        row_b.id = "b".into();
        row_b.expires_at = late.0;
        assert!(r.check(&row_b).unwrap().why.contains("decision gave"));
    }
}
