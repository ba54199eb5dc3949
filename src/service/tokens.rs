//! A protected service's side of a token: it has the token alone (the agent handed it over with
//! the request it makes) and its own service key. It may introspect and use tokens only for the
//! actions its key serves; any other token, unknown or not, looks the same to it.

use crate::domain::{Permission, ProtectedService};
use std::sync::Arc;

use serde_json::json;

use super::permissions::use_in;
use super::{Service, event};
use crate::domain::Actor;
use crate::domain::token::{Refusal, UseRequest, check_token};
use crate::error::{Error, Result};
use crate::secret;
use crate::store::audit;
use crate::store::permissions as sql;
use crate::store::services;
use crate::wire::permissions::{Introspection, TokenView, UseOutcome};

impl Service {
    /// What `token` allows, if it is live and for an action `service` serves. Never consumes.
    pub async fn introspect(
        &self,
        service: &Arc<ProtectedService>,
        token: &str,
    ) -> Result<Introspection> {
        let (caller, hash) = (Arc::clone(service), secret::sha256_hex(token.as_bytes()));
        let row = self
            .store
            .lookup(move |c| {
                confirm_service(c, &caller)?;
                Ok::<_, Error>(sql::get_by_token_hash(c, &hash)?)
            })
            .await?;
        let now = self.clock.now();
        let inactive = |reason: String| Introspection::Inactive {
            active: false,
            reason,
        };
        Ok(match row.filter(|r| service.serves(&r.action)) {
            None => inactive(Refusal::NotServed.reason()),
            Some(row) => match check_token(&row, token, now) {
                Ok(()) => Introspection::Active {
                    active: true,
                    token: Box::new(TokenView::new(&row)),
                },
                Err(refusal) => inactive(refusal.reason()),
            },
        })
    }

    /// Uses `token` once on behalf of `service`, with what it really does; the same checks as an
    /// agent's use (token, action, resource, exact details, scope), recorded as the service's.
    pub async fn use_by_service(
        &self,
        service: &Arc<ProtectedService>,
        presented: UseRequest,
    ) -> Result<UseOutcome> {
        let now = self.clock.now();
        let caller = Arc::clone(service);
        let used = self
            .store
            .write(move |tx| {
                confirm_service(tx, &caller)?;
                let hash = presented.token.hash();
                let actor = Actor::Service(caller.id.0.clone());
                let Some(row) = sql::get_by_token_hash(tx, &hash)? else {
                    return Ok((not_for_this_service(), None));
                };
                if !caller.serves(&row.action) {
                    // Another service's token: refused like an unknown one, but the owner of
                    // the request sees the attempt in its trail.
                    refuse_foreign(tx, &row, &caller, actor, now)?;
                    return Ok((not_for_this_service(), None));
                }
                use_in(tx, &row, &presented, actor, now)
            })
            .await?;
        Ok(self.settle_use(used))
    }
}

fn not_for_this_service() -> UseOutcome {
    let refusal = Refusal::NotServed;
    UseOutcome::Refused {
        success: false,
        uses_remaining: 0,
        reason: refusal.reason(),
        code: refusal.code(),
    }
}

fn refuse_foreign(
    tx: &rusqlite::Transaction<'_>,
    row: &Permission,
    service: &ProtectedService,
    actor: Actor,
    now: crate::clock::Timestamp,
) -> Result<()> {
    let d = json!({
        "code": "INVALID_TOKEN",
        "reason": format!("service {:?} does not serve {:?}", service.name, row.action),
    });
    audit::append(tx, now, &event(actor, "token.use_refused", d, row))?;
    Ok(())
}

/// Confirms, in the read or write that uses it, that `service` is live with the same key.
fn confirm_service(conn: &rusqlite::Connection, service: &ProtectedService) -> Result<()> {
    match services::live_key_hash(conn, &service.id)? {
        Some(stored) if secret::hashes_equal(&stored, &service.key_hash) => Ok(()),
        _ => Err(Error::Unauthorized(
            "a valid service key is required".into(),
        )),
    }
}
