//! A protected service's side of a token: it has the token alone (the agent handed it over with
//! the request it makes) and its own service key. It may introspect and use tokens only for the
//! actions its key serves; any other token, unknown or not, looks the same to it.

use crate::domain::{Permission, ProtectedService};
use std::sync::Arc;

use serde_json::json;

use super::permissions::use_in;
use super::{Service, event};
use crate::domain::Actor;
use crate::domain::token::{self, Refusal, UseRequest, check_token};
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
        let (caller, presented) = (Arc::clone(service), token.to_owned());
        let row = self
            .store
            .lookup(move |c| {
                confirm_service(c, &caller)?;
                row_of_token(c, &presented)
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
                    token: TokenView::new(Arc::new(row)),
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
                let actor = Actor::Service(caller.id.0.clone());
                let Some(row) = row_of_token(tx, presented.token.expose())? else {
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

/// The request `token` is for, if it is one: read by the id the token names (or, for a token
/// issued before tokens named their request, by its hash), and only if the hash stored for that
/// request is the token's. Anything else, a real request's id with a made-up secret included, is
/// no request, answered like an unknown token. (Reading a row that exists takes a little longer
/// than finding none, so timing could tell a caller that an id it already holds exists: ids are
/// not secrets, and the caller learns nothing about the secret part.)
fn row_of_token(c: &rusqlite::Connection, token: &str) -> Result<Option<Permission>> {
    let hash = secret::sha256_hex(token.as_bytes());
    let row = match token::named_request(token) {
        Some(id) => sql::get(c, id.as_str())?,
        None => sql::get_by_unnamed_token(c, &hash)?,
    };
    Ok(row.filter(|r| {
        r.token_hash
            .as_deref()
            .is_some_and(|stored| secret::hashes_equal(stored, &hash))
    }))
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
