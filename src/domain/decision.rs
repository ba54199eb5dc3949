//! How a request is decided, as pure functions of their inputs: the policy's decision on a new
//! request, and a human's approval or denial of a pending one. The clock and the token are passed
//! in; the service stores what these return, with the audit details they give.

use serde_json::{Map, Value, json};

use super::request::{Edits, ValidRequest, capped_uses, check_note};
use super::token::details_digest;
use super::{Actor, Agent, Permission, RequestId, Status};
use crate::audit::{Canonical, CanonicalObject};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::policy::{Bind, Decision, Effect, Rule};
use crate::secret::Secret;

/// A new request as the policy decided it: the row to store, and the token when it was
/// auto-approved (shown to the agent once; only its hash is in the row).
#[derive(Debug)]
pub(crate) struct Decided {
    pub row: Permission,
    pub token: Option<Secret>,
}

/// Decides a new request: the deciding rule's scope template narrows the scope, `bind: exact`
/// demands the exact `actionDetails`, a deny gets its reason, and an auto-approval the token
/// `mint` makes for the request (called only then). The request is `id`, made `now`.
pub(crate) fn decide(
    req: ValidRequest,
    agent: &Agent,
    decision: &Decision<'_>,
    policy_version: &str,
    id: RequestId,
    now: Timestamp,
    mint: impl FnOnce(&RequestId) -> Result<Secret>,
) -> Result<Decided> {
    let rule = decision.rule;
    let granted_scope = granted_scope(&req.scope, rule, decision.effect);
    let bind_exact = rule.is_some_and(|r| r.bind == Some(Bind::Exact));
    if bind_exact && req.action_details.is_none() {
        return Err(Error::invalid_fields(vec![(
            "actionDetails".to_owned(),
            "this action needs the exact actionDetails the agent will perform (policy rule \
             with `bind: exact`)"
                .to_owned(),
        )]));
    }
    let details_digest = req.action_details.as_ref().map(details_digest);
    let require_details =
        bind_exact || rule.is_some_and(|r| r.require_action_details) || details_digest.is_some();
    let uses = capped_uses(req.uses, &granted_scope);
    let mut row = Permission {
        id,
        agent_id: agent.id.clone(),
        agent_name: agent.name.clone(),
        action: req.action,
        resource: req.resource,
        requested_scope: req.scope,
        scope: granted_scope,
        context: req.context,
        status: Status::Pending,
        reason: None,
        rule: rule.map(|r| r.name.clone()),
        policy_version: policy_version.to_owned(),
        decided_by: None,
        decided_at: None,
        ttl_secs: req.ttl_secs,
        uses_total: uses,
        uses_remaining: uses,
        token_hash: None,
        token_issued_at: None,
        expires_at: now.plus_secs(req.ttl_secs),
        created_at: now,
        require_details,
        action_details: req.action_details,
        details_digest,
    };
    let mut token = None;
    match decision.effect {
        Effect::RequireApproval => return Ok(Decided { row, token }),
        Effect::Deny => {
            row.status = Status::Denied;
            row.expires_at = now;
            row.reason = Some(policy_deny_reason(rule));
        }
        Effect::AutoApprove => {
            let t = mint(&row.id)?;
            row.status = Status::Approved;
            row.token_hash = Some(t.hash());
            row.token_issued_at = Some(now);
            token = Some(t);
        }
    }
    row.decided_by = Some(Actor::Policy.to_string());
    row.decided_at = Some(now);
    Ok(Decided { row, token })
}

/// The scope a grant carries: the request ∧ the rule's `scopeTemplate`; for an auto-approval,
/// which no human sees, with each negative floor the rule does not name raised to 0
/// ([`crate::scope::floor_unchosen`]). `policy test` shows the same.
pub(crate) fn granted_scope(
    requested: &Map<String, Value>,
    rule: Option<&Rule>,
    effect: Effect,
) -> Map<String, Value> {
    let mut scope = match rule.and_then(|r| r.scope_template.as_ref()) {
        Some(template) => crate::scope::narrow(requested, template),
        None => requested.clone(),
    };
    if effect == Effect::AutoApprove {
        crate::scope::floor_unchosen(&mut scope, &|key| {
            rule.is_some_and(|r| r.names_scope_key(key))
        });
    }
    scope
}

/// What the agent is told when the policy denies: the rule, and its description if it has one.
pub(crate) fn policy_deny_reason(rule: Option<&Rule>) -> String {
    match rule {
        Some(r) => match &r.description {
            Some(d) => format!("denied by policy rule \"{}\": {d}", r.name),
            None => format!("denied by policy rule \"{}\"", r.name),
        },
        None => "denied by policy".to_owned(),
    }
}

/// The details of a new request's `permission.requested` event: everything it asked and was
/// granted, and how the policy decided. An auto-approval is this one event: it also records the
/// token's issue (`tokenHash`, `expiresAt`; `uses` is above), as `token.issued` does for a human
/// approval. Written in canonical form directly (keys in byte order), as every request writes it.
pub(crate) fn requested_details(row: &Permission, effect: Effect) -> Canonical {
    let mut d = CanonicalObject::with_capacity(512);
    d.str("action", &row.action);
    if let Some(details) = &row.action_details {
        d.object("actionDetails", details);
    }
    d.object("context", &row.context)
        .str("decision", effect.as_str());
    if row.action_details.is_some() {
        d.opt_str("detailsDigest", row.details_digest.as_deref());
    }
    if row.token_hash.is_some() {
        d.value("expiresAt", &json!(row.expires_at));
    }
    d.object("grantedScope", &row.scope)
        .str("policyVersion", &row.policy_version)
        .object("requestedScope", &row.requested_scope);
    if row.require_details {
        d.value("requireActionDetails", &json!(true));
    }
    d.opt_str("resource", row.resource.as_deref())
        .opt_str("rule", row.rule.as_deref());
    if let Some(hash) = &row.token_hash {
        // The hash, never the token: `audit verify` replays it against the row.
        d.str("tokenHash", hash);
    }
    d.int("ttl", row.ttl_secs).int("uses", row.uses_total);
    d.finish()
}

/// The details of a `token.issued` event: the hash, never the token (`audit verify` replays it
/// against the row).
pub(crate) fn issued_details(row: &Permission, token_hash: &str) -> Value {
    json!({
        "expiresAt": row.expires_at,
        "uses": row.uses_total,
        "tokenHash": token_hash,
    })
}

/// What a human decision writes, and what its audit event says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    pub to: Status,
    pub reason: Option<String>,
    pub scope: Map<String, Value>,
    pub ttl_secs: i64,
    pub uses: i64,
    pub expires_at: Timestamp,
    /// The details of the `permission.approved` or `permission.denied` event.
    pub details: Value,
}

impl Verdict {
    /// The audit event's type.
    pub(crate) fn event(&self) -> &'static str {
        match self.to {
            Status::Approved => "permission.approved",
            _ => "permission.denied",
        }
    }
}

/// A human approves `row` at `now` with `edits`, which may only narrow it.
pub(crate) fn approval(row: &Permission, edits: Edits, now: Timestamp) -> Result<Verdict> {
    let terms = edits.narrow(row.ttl_secs, row.uses_total, &row.scope)?;
    let details = json!({
        "note": terms.note,
        "ttl": terms.ttl_secs,
        "uses": terms.uses,
        "scope": terms.scope,
        "narrowed": terms.ttl_secs != row.ttl_secs
            || terms.uses != row.uses_total
            || terms.scope != row.scope,
    });
    Ok(Verdict {
        to: Status::Approved,
        expires_at: now.plus_secs(terms.ttl_secs),
        reason: terms.note,
        scope: terms.scope,
        ttl_secs: terms.ttl_secs,
        uses: terms.uses,
        details,
    })
}

/// Checks a deny reason before anything is read: bad input changes nothing.
pub(crate) fn check_deny_reason(reason: Option<&str>) -> Result<()> {
    check_note("reason", reason)
}

/// `human` denies `row` at `now`, with `reason` or the default one.
pub(crate) fn denial(
    row: &Permission,
    human: &str,
    reason: Option<String>,
    now: Timestamp,
) -> Verdict {
    let reason = reason.unwrap_or_else(|| format!("denied by {}", Actor::Human(human.to_owned())));
    Verdict {
        to: Status::Denied,
        details: json!({ "reason": reason }),
        reason: Some(reason),
        scope: row.scope.clone(),
        ttl_secs: row.ttl_secs,
        uses: row.uses_total,
        expires_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgentId;

    const NOW: Timestamp = Timestamp(1_780_000_000_000);

    fn agent() -> Agent {
        Agent {
            id: AgentId::new_random(),
            name: "mailer".into(),
            created_at: NOW,
            revoked_at: None,
            key_hash: "h".into(),
        }
    }

    fn asked(scope: Value, details: Option<Value>) -> ValidRequest {
        ValidRequest {
            action: "gmail.send".into(),
            resource: None,
            scope: scope.as_object().cloned().unwrap_or_default(),
            context: Map::new(),
            ttl_secs: 300,
            uses: 3,
            action_details: details.and_then(|d| d.as_object().cloned()),
        }
    }

    fn rule(effect: Effect) -> Rule {
        let yaml = format!(
            "policies:\n  - name: r\n    description: too risky\n    conditions: {{}}\n    action: {}\n",
            effect.as_str()
        );
        crate::policy::parse(&yaml).unwrap().rules()[0].clone()
    }

    /// `req` decided with `effect`, by rule `r` (`by_rule`) or by no rule; an auto-approval mints
    /// `mint`'s token.
    fn decided(
        effect: Effect,
        by_rule: bool,
        req: ValidRequest,
        mint: impl FnOnce(&RequestId) -> Result<Secret>,
    ) -> Decided {
        let r = rule(effect);
        let d = Decision {
            effect,
            rule: by_rule.then_some(&r),
        };
        decide(req, &agent(), &d, "v1", RequestId::new_random(), NOW, mint).unwrap()
    }

    fn minted(_: &RequestId) -> Result<Secret> {
        Ok(Secret::new("pt_minted"))
    }

    /// `requested_details` as it was built before it was written directly (a `Value`, then
    /// canonicalized): the oracle for the direct writer.
    fn requested_details_as_value(row: &Permission, effect: Effect) -> Value {
        let mut details = json!({
            "action": row.action,
            "resource": row.resource,
            "requestedScope": row.requested_scope,
            "grantedScope": row.scope,
            "context": row.context,
            "ttl": row.ttl_secs,
            "uses": row.uses_total,
            "decision": effect.as_str(),
            "rule": row.rule,
            "policyVersion": row.policy_version,
        });
        if let Some(d) = &row.action_details {
            details["actionDetails"] = Value::Object(d.clone());
            details["detailsDigest"] = json!(row.details_digest);
        }
        if row.require_details {
            details["requireActionDetails"] = json!(true);
        }
        if let Some(hash) = &row.token_hash {
            details["tokenHash"] = json!(hash);
            details["expiresAt"] = json!(row.expires_at);
        }
        details
    }

    #[test]
    fn requested_details_are_written_as_the_canonical_json_of_the_same_object() {
        let scope = json!({"z_max": 1.5, "allowed_recipients": ["a@x.com", "b\"q\\u{1}@x.com"],
                           "nested": {"b": null, "a": [true, {"y": 1, "x": "é\u{2028}"}]}});
        let details = json!({"subject": "Invoice \"11\"\n", "emails": 1});
        let mut rows = Vec::new();
        for effect in [Effect::AutoApprove, Effect::Deny, Effect::RequireApproval] {
            for by_rule in [true, false] {
                for bound in [None, Some(details.clone())] {
                    let out = decided(effect, by_rule, asked(scope.clone(), bound), minted);
                    rows.push((effect, out.row));
                }
            }
        }
        let (_, mut odd) = rows[0].clone();
        odd.resource = Some("email:\"ceo\"@x.com".into());
        odd.context = json!({"why": "monthly\tinvoice", "a": {}})
            .as_object()
            .cloned()
            .unwrap();
        odd.require_details = true;
        odd.action_details = None;
        rows.push((Effect::AutoApprove, odd));
        for (effect, row) in &rows {
            assert_eq!(
                requested_details(row, *effect),
                Canonical::from(requested_details_as_value(row, *effect)),
                "{effect:?} {row:?}"
            );
        }
    }

    #[test]
    fn each_effect_gives_its_state_and_only_auto_approval_mints() {
        let never =
            |_: &RequestId| -> Result<Secret> { panic!("a pending request mints no token") };
        let pending = decided(Effect::RequireApproval, true, asked(json!({}), None), never);
        assert_eq!(pending.row.status, Status::Pending);
        assert_eq!(
            (pending.row.decided_by, pending.token.is_none()),
            (None, true)
        );
        assert_eq!(pending.row.expires_at, NOW.plus_secs(300));

        let denied = decided(Effect::Deny, true, asked(json!({}), None), minted);
        assert_eq!(denied.row.status, Status::Denied);
        assert_eq!(
            denied.row.reason.as_deref(),
            Some("denied by policy rule \"r\": too risky")
        );
        assert_eq!((denied.row.expires_at, denied.token.is_none()), (NOW, true));

        let approved = decided(Effect::AutoApprove, true, asked(json!({}), None), minted);
        assert_eq!(approved.row.status, Status::Approved);
        assert_eq!(approved.row.decided_by.as_deref(), Some("policy"));
        let token = approved.token.unwrap();
        assert_eq!(approved.row.token_hash, Some(token.hash()));
    }

    /// An attacker pass: a rule auto-approving `scope.max_amount <= 10` granted an agent-added
    /// `min_amount: -1000000`, and a use of -999,999 passed. No human saw that grant, so a
    /// negative floor stands only where the rule names it (a condition or its template).
    #[test]
    fn an_auto_approval_keeps_a_negative_floor_only_where_the_rule_names_it() {
        let decide_with = |yaml: &str, effect: Effect, scope: Value| {
            let policy = crate::policy::parse(yaml).unwrap();
            let r = policy.rules()[0].clone();
            let d = Decision {
                effect,
                rule: Some(&r),
            };
            let req = asked(scope, None);
            decide(
                req,
                &agent(),
                &d,
                "v1",
                RequestId::new_random(),
                NOW,
                minted,
            )
            .unwrap()
            .row
            .scope
        };
        let caps = "policies:\n  - name: small\n    conditions:\n      scope.max_amount: \
                    {lessThanOrEqual: 10}\n    action: auto_approve\n";
        let asked_for = json!({"max_amount": 5, "min_amount": -1_000_000,
                               "payment": {"max_fee_amount": 1, "min_fee_amount": -3},
                               "min_count_x": -2});
        let granted = decide_with(caps, Effect::AutoApprove, asked_for.clone());
        assert_eq!(
            Value::Object(granted),
            json!({"max_amount": 5, "min_amount": 0,
                   "payment": {"max_fee_amount": 1, "min_fee_amount": 0},
                   "min_count_x": -2}),
            "raised beside a max_, at every level; a min_ alone only narrows"
        );
        // The rule chose the floor: in a condition, or in its template.
        let floor_condition = "policies:\n  - name: refunds\n    conditions:\n      \
                               scope.min_amount: {greaterThanOrEqual: -1000000}\n    \
                               action: auto_approve\n";
        let granted = decide_with(floor_condition, Effect::AutoApprove, asked_for.clone());
        assert_eq!(granted["min_amount"], json!(-1_000_000));
        assert_eq!(granted["payment"]["min_fee_amount"], json!(0));
        let floor_template = "policies:\n  - name: refunds\n    conditions: {}\n    \
                              action: auto_approve\n    scopeTemplate:\n      payment:\n        \
                              min_fee_amount: -5\n";
        let granted = decide_with(floor_template, Effect::AutoApprove, asked_for.clone());
        assert_eq!(granted["payment"]["min_fee_amount"], json!(-3));
        assert_eq!(granted["min_amount"], json!(0));
        // A human sees the floor ("between -1000000 and 5"): the request waits as asked.
        let human = "policies:\n  - name: ask\n    conditions: {}\n    action: require_approval\n";
        let granted = decide_with(human, Effect::RequireApproval, asked_for);
        assert_eq!(granted["min_amount"], json!(-1_000_000));
    }

    #[test]
    fn a_count_cap_caps_the_uses_and_details_bind_the_token() {
        let details = json!({"to": "client@x.com"});
        let req = asked(json!({"max_uses": 1}), Some(details.clone()));
        let out = decided(Effect::RequireApproval, false, req, minted);
        assert_eq!((out.row.uses_total, out.row.uses_remaining), (1, 1));
        assert!(out.row.require_details);
        let bound = details.as_object().cloned().unwrap_or_default();
        assert_eq!(out.row.details_digest, Some(details_digest(&bound)));
        assert_eq!(policy_deny_reason(None), "denied by policy");
    }

    #[test]
    fn a_human_narrows_or_denies_with_a_reason() {
        let req = asked(json!({"max_amount": 100}), None);
        let row = decided(Effect::RequireApproval, false, req, minted).row;
        let edits = Edits {
            ttl: Some(60),
            scope: json!({"max_amount": 40}).as_object().cloned(),
            ..Edits::default()
        };
        let v = approval(&row, edits, NOW).unwrap();
        assert_eq!(
            (v.to, v.ttl_secs, v.expires_at),
            (Status::Approved, 60, NOW.plus_secs(60))
        );
        assert_eq!(v.details["narrowed"], json!(true));
        assert_eq!(v.event(), "permission.approved");
        let wider = Edits {
            uses: Some(4),
            ..Edits::default()
        };
        assert!(approval(&row, wider, NOW).is_err());

        let no = denial(&row, "alice", None, NOW);
        assert_eq!(no.reason.as_deref(), Some("denied by human:alice"));
        assert_eq!((no.event(), no.expires_at), ("permission.denied", NOW));
        assert!(check_deny_reason(Some(&"x".repeat(1001))).is_err());
    }
}
