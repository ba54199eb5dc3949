//! Permission requests: decided by policy or a human, read, verified, used, revoked, expired and
//! pruned. Each state change runs in one `BEGIN IMMEDIATE` transaction together with its audit
//! event, is a conditional update on the expected status (first writer wins, the loser gets
//! `Conflict`), and is announced on the [`Hub`](crate::changes::Hub) only after it committed.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Transaction;
use serde_json::{Map, Value, json};

use super::{Service, confirm_live, event, unauthorized};
use crate::audit::NewEvent;
use crate::clock::Timestamp;
use crate::domain::decision::{self, Decided, Verdict};
use crate::domain::request::{Edits, ValidRequest};
use crate::domain::token::{self, Refusal, UNCHECKED_USE, UseRequest, check_token, check_use};
use crate::domain::{Actor, Agent, AgentId, Permission, PermissionFilter, RequestId, Status};
use crate::error::{Error, Result};
use crate::policy::EvalInput;
use crate::secret::{self, Secret};
use crate::store::audit;
use crate::store::permissions::{self as sql, DecisionUpdate, OwnedRow, Owner};
use crate::wire::MAX_WAIT_SECS;
use crate::wire::permissions::{PermissionView, TokenView, UseOutcome, VerifyOutcome};

/// What `POST /permissions/request` answers.
#[derive(Debug)]
pub enum RequestOutcome {
    Denied {
        id: RequestId,
        reason: String,
        expires_at: Timestamp,
    },
    Approved {
        id: RequestId,
        token: Secret,
        scope: Map<String, Value>,
        uses_remaining: i64,
        expires_at: Timestamp,
    },
    Pending {
        id: RequestId,
        approval_url: String,
        webhook_url: String,
        expires_at: Timestamp,
    },
}

impl Service {
    /// Decides a new request by policy and stores it with its audit trail, in the transaction
    /// that confirms the agent is still live.
    pub async fn request(&self, agent: &Arc<Agent>, req: ValidRequest) -> Result<RequestOutcome> {
        let loaded = self.policy.current();
        let decision = loaded.policy.evaluate(&EvalInput {
            action: &req.action,
            resource: req.resource.as_deref(),
            agent_name: &agent.name,
            agent_id: agent.id.as_str(),
            scope: &req.scope,
            context: &req.context,
        });
        let now = self.clock.now();
        let Decided { row, token } = decision::decide(
            req,
            agent,
            &decision,
            loaded.policy.version(),
            RequestId::new_random(),
            now,
            token::mint_token,
        )?;
        let id = row.id.clone();

        let effect = decision.effect;
        let max_pending = self.limiter.limits.max_pending_per_agent;
        let caller = Arc::clone(agent);
        let row = Arc::new(row);
        let written = Arc::clone(&row);
        self.store
            .write(move |tx| {
                let row = &*written;
                confirm_live(tx, &caller)?;
                if row.status == Status::Pending && max_pending > 0 {
                    let (count, first_lapse) = sql::pending_of_agent(tx, &row.agent_id, now)?;
                    if count >= i64::from(max_pending) {
                        let lapse = first_lapse.unwrap_or(now);
                        return Err(Error::TooManyPending {
                            limit: max_pending,
                            retry_after_secs: u64::try_from(now.secs_until(lapse) + 1).unwrap_or(1),
                        });
                    }
                }
                sql::insert(tx, row)?;
                let details = decision::requested_details(row, effect);
                let actor = Actor::Agent(row.agent_id.0.clone());
                audit::append(tx, now, &event(actor, "permission.requested", details, row))?;
                Ok::<_, Error>(())
            })
            .await?;
        crate::metrics::record_request(effect.as_str(), row.rule.as_deref());
        // The writer has dropped its share by now, so this does not copy.
        let row = Arc::unwrap_or_clone(row);
        if row.status == Status::Pending {
            self.hub.publish(&id, Status::Pending);
        }
        Ok(match (row.status, token) {
            (Status::Approved, Some(token)) => RequestOutcome::Approved {
                id,
                token,
                scope: row.scope,
                uses_remaining: row.uses_remaining,
                expires_at: row.expires_at,
            },
            (Status::Denied, _) => RequestOutcome::Denied {
                id,
                reason: row.reason.unwrap_or_default(),
                expires_at: row.expires_at,
            },
            _ => RequestOutcome::Pending {
                approval_url: format!("{}/requests/{id}", self.public_url),
                webhook_url: format!(
                    "{}/api/v1/permissions/{id}?wait={MAX_WAIT_SECS}",
                    self.public_url
                ),
                id,
                expires_at: row.expires_at,
            },
        })
    }

    /// The owning agent's read, waiting up to `wait` while the request is pending. The first
    /// read after a human approval mints the token and returns it; later reads never do.
    pub async fn get_for_agent(
        &self,
        agent: &Arc<Agent>,
        id: &str,
        wait: Duration,
    ) -> Result<PermissionView> {
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribe before the first read, so a decision landing in between is not missed; a
        // plain read (no wait) needs no subscription.
        let mut listener = (!wait.is_zero()).then(|| self.hub.subscribe());
        loop {
            let row = self.owned(agent, id).await?;
            let now = self.clock.now();
            let status = row.status.effective(row.expires_at, now);
            if status == Status::Expired && row.status != Status::Expired {
                // Write the expiry down, then show the row as it now is.
                self.expire(&row).await?;
                continue;
            }
            if status == Status::Approved && row.token_hash.is_none() {
                return self.mint(agent, row).await;
            }
            if status != Status::Pending || tokio::time::Instant::now() >= deadline {
                return Ok(PermissionView::new(row, now, None));
            }
            let Some(listener) = listener.as_mut() else {
                return Ok(PermissionView::new(row, now, None));
            };
            // Either the request changes or time is up; both end in a fresh read.
            let _ = tokio::time::timeout_at(deadline, listener.changed(&row.id)).await;
        }
    }

    /// Any request, for a human (never mints a token).
    pub async fn get_for_human(&self, id: &str) -> Result<PermissionView> {
        let row = self.load(id).await?;
        Ok(PermissionView::new(row, self.clock.now(), None))
    }

    /// Pages of requests for a human, newest first.
    pub async fn list(
        &self,
        filter: PermissionFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<PermissionView>, i64)> {
        let (rows, total) = self
            .store
            .read(move |c| sql::page(c, &filter, offset, limit))
            .await?;
        let now = self.clock.now();
        Ok((
            rows.into_iter()
                .map(|r| PermissionView::new(r, now, None))
                .collect(),
            total,
        ))
    }

    /// Checks a token without consuming it.
    pub async fn verify(&self, agent: &Arc<Agent>, id: &str, token: &str) -> Result<VerifyOutcome> {
        let read = self.owned_recent(agent, id).await?;
        let row = &read.row;
        let now = self.clock.now();
        Ok(match check_token(row, token, now) {
            Ok(()) => VerifyOutcome::Valid {
                valid: true,
                token: TokenView::new(Arc::clone(row)),
            },
            Err(r) => VerifyOutcome::Invalid {
                valid: false,
                reason: r.reason(),
            },
        })
    }

    /// Uses a token once, checking what the agent says it does (action, resource,
    /// `actionDetails`) against what was granted. Refusals are audited and consume nothing.
    pub async fn use_token(
        &self,
        agent: &Arc<Agent>,
        id: &str,
        presented: UseRequest,
    ) -> Result<UseOutcome> {
        let now = self.clock.now();
        let (caller, id) = (Arc::clone(agent), id.to_owned());
        let used = self
            .store
            .write(move |tx| {
                let row = owned_row(tx, &caller, &id)?;
                let actor = Actor::Agent(caller.id.0.clone());
                use_in(tx, &row, &presented, actor, now)
            })
            .await?;
        Ok(self.settle_use(used))
    }

    /// After a use committed (an agent's or a protected service's): counts it and announces
    /// the status it changed, if any.
    pub(super) fn settle_use(&self, (outcome, changed): (UseOutcome, Changed)) -> UseOutcome {
        super::record_use(&outcome);
        if let Some((id, status)) = changed {
            self.hub.publish(&id, status);
        }
        outcome
    }

    /// Revokes a pending or approved request; its token stops working at once. `owner` limits
    /// the request to one agent's own (agents); humans pass `None`.
    pub async fn revoke(
        &self,
        by: Actor,
        owner: Option<&Arc<Agent>>,
        id: &str,
    ) -> Result<PermissionView> {
        let now = self.clock.now();
        let (caller, id) = (owner.cloned(), id.to_owned());
        let row = self
            .store
            .write(move |tx| {
                let row = match &caller {
                    Some(agent) => owned_row(tx, agent, &id)?,
                    None => any_row(tx, &id)?,
                };
                let status = row.status.effective(row.expires_at, now);
                if status.is_final() {
                    return Err(Error::Conflict(format!("the request is already {status}")));
                }
                if !sql::end(
                    tx,
                    &row.id,
                    row.status,
                    Status::Revoked,
                    &by.to_string(),
                    now,
                )? {
                    return Err(Error::Conflict("the request changed meanwhile".into()));
                }
                audit::append(
                    tx,
                    now,
                    &event(
                        by.clone(),
                        "permission.revoked",
                        json!({ "was": status }),
                        &row,
                    ),
                )?;
                Ok::<_, Error>(row)
            })
            .await?;
        self.hub.publish(&row.id, Status::Revoked);
        self.get_for_human(row.id.as_str()).await
    }

    /// A human approves a pending request, optionally narrowing it. First decision wins.
    pub async fn approve(&self, human: &str, id: &str, edits: Edits) -> Result<PermissionView> {
        self.decide_pending(human, id, move |row, now| {
            decision::approval(row, edits.clone(), now)
        })
        .await
    }

    /// A human denies a pending request. First decision wins.
    pub async fn deny(
        &self,
        human: &str,
        id: &str,
        reason: Option<String>,
    ) -> Result<PermissionView> {
        decision::check_deny_reason(reason.as_deref())?;
        let who = human.to_owned();
        self.decide_pending(human, id, move |row, now| {
            Ok(decision::denial(row, &who, reason.clone(), now))
        })
        .await
    }

    /// The one way a human decides: in one transaction, the request must still be pending, the
    /// conditional update must win, and the audit event (`permission.approved|denied`) is
    /// appended; then waiters are woken and the request is shown as it now is.
    async fn decide_pending<F>(&self, human: &str, id: &str, verdict: F) -> Result<PermissionView>
    where
        F: Fn(&Permission, Timestamp) -> Result<Verdict> + Send + 'static,
    {
        let now = self.clock.now();
        let by = Actor::Human(human.to_owned());
        let id = id.to_owned();
        let (row, to) = self
            .store
            .write(move |tx| {
                let row = pending_row(tx, &id, now)?;
                let v = verdict(&row, now)?;
                let decided_by = by.to_string();
                let update = DecisionUpdate {
                    to: v.to,
                    decided_by: &decided_by,
                    at: now,
                    reason: v.reason.as_deref(),
                    scope: &v.scope,
                    ttl_secs: v.ttl_secs,
                    uses: v.uses,
                    expires_at: v.expires_at,
                };
                if !sql::decide(tx, &row.id, &update)? {
                    return Err(Error::Conflict("the request was decided meanwhile".into()));
                }
                audit::append(tx, now, &event(by.clone(), v.event(), v.details, &row))?;
                Ok::<_, Error>((row, v.to))
            })
            .await?;
        crate::metrics::record_human_decision(to, row.created_at, now);
        self.hub.publish(&row.id, to);
        self.get_for_human(row.id.as_str()).await
    }

    /// Marks every live request whose time is up as expired; returns how many.
    pub async fn sweep(&self) -> Result<usize> {
        const BATCH: i64 = 500;
        let mut total = 0;
        loop {
            let now = self.clock.now();
            let due = self
                .store
                .read(move |c| sql::due_to_expire(c, now, BATCH))
                .await?;
            let n = due.len();
            // One write for the whole batch: one commit, however many lapsed at once.
            let expired = self
                .store
                .write(move |tx| {
                    let mut expired = Vec::with_capacity(due.len());
                    for (id, agent, from) in &due {
                        if expire_in(tx, id, agent, *from, now)? {
                            expired.push(id.clone());
                        }
                    }
                    Ok::<_, Error>(expired)
                })
                .await?;
            crate::metrics::record_expired(expired.len());
            for id in &expired {
                self.hub.publish(id, Status::Expired);
            }
            total += n;
            if i64::try_from(n).unwrap_or(0) < BATCH {
                return Ok(total);
            }
        }
    }

    /// Prunes the rows of finished requests whose time ended more than `keep` ago; each leaves
    /// a `permission.pruned` event in the same transaction, so the trail still says what became
    /// of it and `audit verify` knows the row is gone on purpose. Returns how many.
    pub async fn prune(&self, keep: Duration) -> Result<usize> {
        const BATCH: i64 = 500;
        let mut total = 0;
        loop {
            let now = self.clock.now();
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            let cutoff = Timestamp(now.0.saturating_sub(keep_ms));
            let due = self
                .store
                .read(move |c| sql::finished_before(c, cutoff, BATCH))
                .await?;
            let n = due.len();
            self.store
                .write(move |tx| {
                    for (id, agent) in &due {
                        if sql::delete_finished(tx, id)? {
                            let ev = NewEvent::new(
                                Actor::System,
                                "permission.pruned",
                                json!({ "retentionDays": keep.as_secs() / 86_400 }),
                            )
                            .request(id)
                            .agent(agent);
                            audit::append(tx, now, &ev)?;
                        }
                    }
                    Ok::<_, Error>(())
                })
                .await?;
            total += n;
            if i64::try_from(n).unwrap_or(0) < BATCH {
                return Ok(total);
            }
        }
    }

    /// Writes down that a live request's time is up.
    async fn expire(&self, row: &Permission) -> Result<()> {
        let now = self.clock.now();
        let (id, agent, from) = (row.id.clone(), row.agent_id.clone(), row.status);
        let changed = self
            .store
            .write(move |tx| expire_in(tx, &id, &agent, from, now))
            .await?;
        if changed {
            self.hub.publish(&row.id, Status::Expired);
        }
        Ok(())
    }

    async fn mint(&self, agent: &Arc<Agent>, row: Permission) -> Result<PermissionView> {
        let now = self.clock.now();
        let token = token::mint_token(&row.id)?;
        let hash = token.hash();
        let id = row.id.clone();
        let caller = Arc::clone(agent);
        let row = Arc::new(row);
        let written = Arc::clone(&row);
        let minted = self
            .store
            .write(move |tx| {
                let row = &*written;
                confirm_live(tx, &caller)?;
                if !sql::set_token(tx, &row.id, &hash, now)? {
                    return Ok(false);
                }
                let d = decision::issued_details(row, &hash);
                let actor = Actor::Agent(row.agent_id.0.clone());
                audit::append(tx, now, &event(actor, "token.issued", d, row))?;
                Ok::<_, Error>(true)
            })
            .await?;
        if minted {
            Ok(PermissionView::new(
                Arc::unwrap_or_clone(row),
                now,
                Some(token),
            ))
        } else {
            // Another read minted it first: this one shows `tokenIssued` only.
            self.get_for_human(id.as_str()).await
        }
    }

    async fn load(&self, id: &str) -> Result<Permission> {
        let id = id.to_owned();
        self.store.lookup(move |c| any_row(c, &id)).await
    }

    async fn owned(&self, agent: &Arc<Agent>, id: &str) -> Result<Permission> {
        let (caller, id) = (Arc::clone(agent), id.to_owned());
        self.store.lookup(move |c| owned_row(c, &caller, &id)).await
    }

    /// [`Service::owned`] for `verify`, which may answer from a recent read (see
    /// `store::recent`), with the same checks of the caller.
    async fn owned_recent(&self, agent: &Arc<Agent>, id: &str) -> Result<Arc<OwnedRow>> {
        match self.store.request_with_owner(id).await? {
            Some(read) if read.row.agent_id == agent.id => {
                confirm_owner(&read.owner, agent)?;
                Ok(read)
            }
            _ => Err(self.not_owned(agent).await),
        }
    }

    /// [`not_owned`], read on a pooled connection.
    async fn not_owned(&self, agent: &Arc<Agent>) -> Error {
        let caller = Arc::clone(agent);
        self.store
            .lookup(move |c| Ok::<_, Error>(not_owned(c, &caller)))
            .await
            .unwrap_or_else(|e| e)
    }
}

fn no_such_request() -> Error {
    Error::NotFound("no permission request with this id".into())
}

fn any_row(conn: &rusqlite::Connection, id: &str) -> Result<Permission> {
    sql::get(conn, id)?.ok_or_else(no_such_request)
}

/// The request if `agent` owns it, confirming in the same read that the agent is live and still
/// has the key it authenticated with (401 otherwise). Someone else's request looks exactly like
/// a missing one.
fn owned_row(conn: &rusqlite::Connection, agent: &Agent, id: &str) -> Result<Permission> {
    match sql::get_with_owner(conn, id)? {
        Some(read) if read.row.agent_id == agent.id => {
            confirm_owner(&read.owner, agent)?;
            Ok(Arc::unwrap_or_clone(read.row))
        }
        _ => Err(not_owned(conn, agent)),
    }
}

/// The answer for a request id that is not the caller's: 404, or 401 if the caller is no
/// longer live (the agents table decides, as there is no row of its own to confirm it with).
fn not_owned(conn: &rusqlite::Connection, agent: &Agent) -> Error {
    match confirm_live(conn, agent) {
        Ok(()) => no_such_request(),
        Err(e) => e,
    }
}

/// Confirms `agent` against its own row's owner as read with the request: live, same key.
fn confirm_owner(owner: &Owner, agent: &Agent) -> Result<()> {
    if owner.revoked || !secret::hashes_equal(&owner.key_hash, &agent.key_hash) {
        return Err(unauthorized());
    }
    Ok(())
}

/// The request if it can still be decided.
fn pending_row(conn: &rusqlite::Connection, id: &str, now: Timestamp) -> Result<Permission> {
    let row = any_row(conn, id)?;
    match row.status.effective(row.expires_at, now) {
        Status::Pending => Ok(row),
        other => Err(Error::Conflict(format!("the request is already {other}"))),
    }
}

/// Ends a live request whose time is up, with its audit event; `false` if it was no longer `from`.
fn expire_in(
    tx: &Transaction<'_>,
    id: &RequestId,
    agent: &AgentId,
    from: Status,
    now: Timestamp,
) -> Result<bool> {
    if !sql::end(tx, id, from, Status::Expired, "timeout", now)? {
        return Ok(false);
    }
    let ev = NewEvent::new(Actor::System, "permission.expired", json!({ "was": from }))
        .request(id)
        .agent(agent);
    audit::append(tx, now, &ev)?;
    Ok(true)
}

/// A request whose status changed, to announce once the transaction committed.
type Changed = Option<(RequestId, Status)>;

/// One use of `row`'s token, inside the caller's write: checks the token, the binding and the
/// details; on success consumes one use; either way appends the audit event. A refusal changes
/// nothing but the audit (and writes down an expiry it found).
pub(super) fn use_in(
    tx: &Transaction<'_>,
    row: &Permission,
    presented: &UseRequest,
    actor: Actor,
    now: Timestamp,
) -> Result<(UseOutcome, Changed)> {
    let details = presented.details.as_ref();
    if let Err(refusal) = check_use(row, presented, now) {
        let mut changed = None;
        if refusal == Refusal::Expired && !row.status.is_final() {
            expire_in(tx, &row.id, &row.agent_id, row.status, now)?;
            changed = Some((row.id.clone(), Status::Expired));
        }
        let d = json!({
            "code": refusal.code(),
            "reason": refusal.reason(),
            "action": presented.action,
            "resource": presented.resource,
            "actionDetails": details,
        });
        audit::append(tx, now, &event(actor, "token.use_refused", d, row))?;
        let outcome = UseOutcome::Refused {
            success: false,
            uses_remaining: row.uses_remaining,
            reason: refusal.reason(),
            code: refusal.code(),
        };
        return Ok((outcome, changed));
    }
    if !sql::consume_use(tx, &row.id, row.uses_remaining)? {
        return Err(Error::Internal(
            "use raced inside an immediate transaction".into(),
        ));
    }
    let left = row.uses_remaining - 1;
    let checked = details.is_some();
    let mut d = json!({ "actionDetails": details, "usesRemaining": left, "checked": checked });
    if !checked {
        d["note"] = json!(UNCHECKED_USE);
    }
    audit::append(tx, now, &event(actor, "token.used", d, row))?;
    let changed = (left == 0).then(|| (row.id.clone(), Status::Used));
    let used = UseOutcome::Used {
        success: true,
        uses_remaining: left,
        checked,
    };
    Ok((used, changed))
}
