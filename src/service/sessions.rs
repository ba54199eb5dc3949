//! Web sessions of humans. A redeemed login link starts one; the browser keeps its random secret
//! in an HttpOnly, SameSite=Strict cookie (Secure when the public URL is https); only the
//! secret's SHA-256 is stored. A session lasts its maximum age from login ([`TTL_SECS`] unless
//! `--session-max-age` says otherwise), until logout or revocation. A session opened by a link
//! made for one request (Telegram's approval messages) is limited to that request: see
//! `web::auth`.
//!
//! The CSRF token of a session is derived from its secret (`SHA-256("agent-otp csrf\0" ‖ secret)`),
//! so it needs no storage, differs per session, cannot be computed from the stored hash, and is
//! compared in constant time. Starting and ending sessions is audited (never the secret).

use crate::domain::Session;
use rusqlite::{Connection, Transaction};

use super::Service;
use serde_json::json;

use crate::audit::NewEvent;
use crate::clock::Timestamp;
use crate::domain::Actor;
use crate::error::{Error, Result};
use crate::secret::{self, Secret};
use crate::store::sessions as sql;
use crate::store::{StoreError, audit};

/// Name of the session cookie.
pub const COOKIE: &str = "agent_otp_session";
/// Prefix of session secrets.
pub(crate) const PREFIX: &str = "ses_";
/// How long a session lasts from login by default, in seconds (7 days).
pub(crate) const TTL_SECS: i64 = crate::domain::SESSION_TTL_SECS;
/// Header that carries the CSRF token when the admin JSON API is used with a session cookie.
pub(crate) const CSRF_HEADER: &str = "X-CSRF-Token";
/// `last_seen_at` is written at most this often per session, in milliseconds.
const TOUCH_EVERY_MS: i64 = 60_000;
/// Longest user agent kept for the sessions page.
const USER_AGENT_MAX_CHARS: usize = 200;

/// How a new session is limited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant<'a> {
    /// Seconds from login until it ends by itself.
    pub max_age_secs: i64,
    /// The one request it may see and decide, or `None` for a full session.
    pub request_id: Option<&'a str>,
}

/// Starts a session for `human`; returns it and the secret for the cookie.
pub(crate) fn create(
    tx: &Transaction<'_>,
    human: &str,
    user_agent: Option<&str>,
    grant: Grant<'_>,
    now: Timestamp,
) -> Result<(Session, Secret)> {
    let secret = secret::generate(PREFIX)?;
    let row = Session {
        id: uuid::Uuid::new_v4().to_string(),
        secret_hash: secret.hash(),
        human: human.to_owned(),
        user_agent: user_agent.map(|ua| ua.chars().take(USER_AGENT_MAX_CHARS).collect()),
        created_at: now,
        last_seen_at: now,
        expires_at: now.plus_secs(grant.max_age_secs),
        request_id: grant.request_id.map(str::to_owned),
    };
    sql::insert(tx, &row)?;
    let mut d = json!({ "session": row.id, "expiresAt": row.expires_at });
    if let Some(r) = &row.request_id {
        d["request"] = json!(r);
    }
    audit::append(
        tx,
        now,
        &NewEvent::new(Actor::Human(human.to_owned()), "session.started", d),
    )?;
    Ok((row, secret))
}

/// The live session for a presented cookie secret, if any.
pub(crate) fn authenticate(
    conn: &Connection,
    presented: &str,
    now: Timestamp,
) -> Result<Option<Session>, StoreError> {
    if !presented.starts_with(PREFIX) || presented.len() > 128 {
        return Ok(None);
    }
    let hash = secret::sha256_hex(presented.as_bytes());
    Ok(
        sql::live_by_hash(conn, &hash, now)?
            .filter(|s| secret::hashes_equal(&s.secret_hash, &hash)),
    )
}

/// Whether `last_seen_at` of `session` is worth rewriting at `now` (at most once a minute).
pub(crate) fn needs_touch(session: &Session, now: Timestamp) -> bool {
    now.0 - session.last_seen_at.0 >= TOUCH_EVERY_MS
}

/// Ends the live session `id` (logout, or revocation from the sessions page).
pub(crate) fn end(tx: &Transaction<'_>, id: &str, by: &Actor, now: Timestamp) -> Result<()> {
    let Some(human) = sql::revoke(tx, id, now)? else {
        return Err(Error::NotFound("no live session with this id".into()));
    };
    let d = json!({ "session": id, "human": human });
    audit::append(tx, now, &NewEvent::new(by, "session.ended", d))?;
    Ok(())
}

/// The CSRF token of the session whose cookie secret is `secret`.
pub(crate) fn csrf_token(secret: &str) -> String {
    let mut input = Vec::with_capacity(16 + secret.len());
    input.extend_from_slice(b"agent-otp csrf\0");
    input.extend_from_slice(secret.as_bytes());
    secret::sha256_hex(&input)
}

/// Whether `presented` is the CSRF token of the session with cookie secret `secret`.
pub(crate) fn csrf_ok(secret: &str, presented: &str) -> bool {
    secret::hashes_equal(&csrf_token(secret), presented)
}

impl Service {
    /// The live session for a presented cookie secret, noting (at most once a minute) that it
    /// was used.
    pub async fn session(&self, presented: &Secret) -> Result<Option<Session>> {
        let now = self.now();
        let presented = presented.expose().to_owned();
        let found = self
            .store
            .read(move |c| authenticate(c, &presented, now).map_err(Error::from))
            .await?;
        if let Some(s) = found.as_ref().filter(|s| needs_touch(s, now)) {
            let id = s.id.clone();
            self.store
                .write(move |tx| sql::touch(tx, &id, now).map_err(Error::from))
                .await?;
        }
        Ok(found)
    }

    /// Every live session, newest first.
    pub async fn live_sessions(&self) -> Result<Vec<Session>> {
        let now = self.now();
        self.store
            .read(move |c| sql::live(c, now).map_err(Error::from))
            .await
    }

    /// Ends the live session `id` (logout, or revocation from the sessions page).
    pub async fn end_session(&self, by: Actor, id: &str) -> Result<()> {
        let (now, id) = (self.now(), id.to_owned());
        self.store.write(move |tx| end(tx, &id, &by, now)).await
    }

    /// Whether anyone ever logged in (the first start prints a login link when no one has).
    pub async fn anyone_ever_logged_in(&self) -> Result<bool> {
        self.store
            .read(|c| sql::anyone_ever_logged_in(c).map_err(Error::from))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_session_authenticates_until_it_ends_or_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let t0 = Timestamp(1_000_000);
        let (row, secret) = store
            .write_blocking(|tx| {
                let grant = Grant {
                    max_age_secs: TTL_SECS,
                    request_id: None,
                };
                create(tx, "alice", Some("phone"), grant, t0)
            })
            .unwrap();
        let auth = |at: Timestamp, s: &str| {
            store
                .read_blocking(|c| authenticate(c, s, at))
                .unwrap()
                .map(|s| s.human)
        };
        assert_eq!(auth(t0, secret.expose()), Some("alice".into()));
        assert_eq!(auth(t0, "ses_wrong"), None);
        assert_eq!(auth(t0.plus_secs(TTL_SECS), secret.expose()), None);
        assert!(csrf_ok(secret.expose(), &csrf_token(secret.expose())));
        assert!(!csrf_ok(secret.expose(), &csrf_token("ses_other")));
        assert!(!csrf_ok(secret.expose(), ""));
        store
            .write_blocking(|tx| end(tx, &row.id, &Actor::Human("alice".into()), t0))
            .unwrap();
        assert_eq!(auth(t0, secret.expose()), None);
        let again = store.write_blocking(|tx| end(tx, &row.id, &Actor::System, t0));
        assert!(matches!(again, Err(Error::NotFound(_))));
    }
}
