//! One-time login links: how a human gets a web session without a password. `agent-otp login`,
//! the first start on an empty database, and Telegram (`/login`, and the per-request link in each
//! approval message) all issue them here. A link is usable once, until it expires; only its
//! SHA-256 is stored; issuing and redeeming are audited (never the secret).
//!
//! Opening a link (`GET`) spends nothing: it shows "Log in as <name> on this device?", and only
//! the page's `POST` redeems it (see `web::login`), so a chat app's link preview cannot use it up
//! and a page on another site cannot log a visitor in with a link of its choosing. A link made
//! for one request ([`issue_for_request`]) opens a session limited to that request.

use rusqlite::Transaction;

use super::Service;
use super::sessions::{self, Grant};
use crate::domain::Session;
use crate::error::Error;
use serde_json::json;

use crate::audit::NewEvent;
use crate::clock::Timestamp;
use crate::domain::Actor;
use crate::error::Result;
use crate::secret::{self, Secret};
use crate::store::{audit, login_links as sql};

/// How long a login link printed by `agent-otp login` stays valid, in seconds.
pub(crate) const DEFAULT_TTL_SECS: i64 = 600;

/// Prefix of login link secrets.
pub(crate) const PREFIX: &str = "ll_";

/// Who a redeemed link logs in, and where to send them afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub human: String,
    /// A local path such as `/requests/<id>`, if the link was made for one page.
    pub next: Option<String>,
    /// The one request the session may see and decide (a link from an approval message).
    pub request: Option<String>,
}

/// Issues a link for `human`, valid until `expires_at`, optionally leading to the local path
/// `next` (must start with `/`). Returns the secret; [`url`] makes the link from it.
pub(crate) fn issue(
    tx: &Transaction<'_>,
    human: &str,
    next: Option<&str>,
    by: &Actor,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<Secret> {
    store_link(
        tx,
        human,
        next.filter(|n| is_local_path(n)),
        None,
        by,
        now,
        expires_at,
    )
}

/// Issues a link for `human` to the page of request `request_id` whose session is limited to
/// that request: it can see and decide it, nothing else (no other request, no agents, no admin
/// API). This is the link in each Telegram approval message.
pub(crate) fn issue_for_request(
    tx: &Transaction<'_>,
    human: &str,
    request_id: &str,
    by: &Actor,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<Secret> {
    let next = format!("/requests/{request_id}");
    let plain_id = request_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if request_id.is_empty() || request_id.len() > 64 || !plain_id {
        return Err(crate::error::Error::invalid("request", "not a request id"));
    }
    store_link(
        tx,
        human,
        Some(&next),
        Some(request_id),
        by,
        now,
        expires_at,
    )
}

fn store_link(
    tx: &Transaction<'_>,
    human: &str,
    next: Option<&str>,
    request: Option<&str>,
    by: &Actor,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<Secret> {
    crate::domain::records::check_name(human)?;
    let link = secret::generate(PREFIX)?;
    sql::insert(tx, &link.hash(), human, next, request, now, expires_at)?;
    let mut d = json!({ "human": human, "next": next, "expiresAt": expires_at });
    if let Some(r) = request {
        d["request"] = json!(r);
    }
    audit::append(tx, now, &NewEvent::new(by, "login_link.issued", d))?;
    Ok(link)
}

/// What an unspent link would do, without spending it: `None` for an unknown, used or expired
/// link.
pub(crate) fn peek(
    conn: &rusqlite::Connection,
    presented: &str,
    now: Timestamp,
) -> Result<Option<Redeemed>, crate::store::StoreError> {
    let hash = secret::sha256_hex(presented.as_bytes());
    Ok(sql::peek(conn, &hash, now)?
        .filter(|l| l.usable && secret::hashes_equal(&l.secret_hash, &hash))
        .map(|l| Redeemed {
            human: l.human,
            next: l.next_path,
            request: l.request_id,
        }))
}

/// The request a presented link was limited to, when the link exists but no longer works (used,
/// expired, or retired because its request was decided): so its page can say what happened.
pub(crate) fn spent_request(
    conn: &rusqlite::Connection,
    presented: &str,
    now: Timestamp,
) -> Result<Option<String>, crate::store::StoreError> {
    let hash = secret::sha256_hex(presented.as_bytes());
    Ok(sql::peek(conn, &hash, now)?
        .filter(|l| !l.usable && secret::hashes_equal(&l.secret_hash, &hash))
        .and_then(|l| l.request_id))
}

/// Redeems a presented link secret once. A wrong, used or expired link is audited as a failed
/// login and gives `None`; the caller commits either way.
pub(crate) fn redeem(
    tx: &Transaction<'_>,
    presented: &str,
    now: Timestamp,
) -> Result<Option<Redeemed>> {
    let hash = secret::sha256_hex(presented.as_bytes());
    let found =
        sql::redeem(tx, &hash, now)?.filter(|l| secret::hashes_equal(&l.secret_hash, &hash));
    match found {
        Some(l) => {
            let mut d = json!({ "human": l.human });
            if let Some(r) = &l.request_id {
                d["request"] = json!(r);
            }
            audit::append(
                tx,
                now,
                &NewEvent::new(Actor::Human(l.human.clone()), "login", d),
            )?;
            Ok(Some(Redeemed {
                human: l.human,
                next: l.next_path,
                request: l.request_id,
            }))
        }
        None => {
            let d = json!({ "reason": "unknown, used or expired login link" });
            audit::append(tx, now, &NewEvent::new(Actor::System, "login.failed", d))?;
            Ok(None)
        }
    }
}

/// The value the confirmation page's form must send back to redeem `link`: bound to the random
/// `nonce` this browser got in a cookie with the page, so knowing the link is not enough.
pub(crate) fn confirm_token(nonce: &str, link: &str) -> String {
    let mut input = Vec::with_capacity(24 + nonce.len() + link.len());
    input.extend_from_slice(b"agent-otp login\0");
    input.extend_from_slice(nonce.as_bytes());
    input.push(0);
    input.extend_from_slice(link.as_bytes());
    secret::sha256_hex(&input)
}

/// The link a human opens: `<public_url>/login/<secret>`.
pub fn url(public_url: &str, link: &Secret) -> String {
    format!("{public_url}/login/{}", link.expose())
}

/// Only same-site paths of visible ASCII may follow a login (no `//host`, no scheme, no
/// backslash, no whitespace — browsers drop tabs and newlines, so `/\t/evil.example` would become
/// `//evil.example`): no open redirect.
pub(crate) fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && p.len() <= 512
        && p.bytes().all(|b| b.is_ascii_graphic())
}

impl Service {
    /// Issues a link for `human` valid until `expires_at` (see [`issue`]); returns its secret.
    pub async fn issue_login_link(
        &self,
        by: Actor,
        human: &str,
        next: Option<&str>,
        expires_at: Timestamp,
    ) -> Result<Secret> {
        let (now, human, next) = (self.now(), human.to_owned(), next.map(str::to_owned));
        self.store
            .write(move |tx| issue(tx, &human, next.as_deref(), &by, now, expires_at))
            .await
    }

    /// Issues a [`DEFAULT_TTL_SECS`] link for `human` (optionally leading to the local path
    /// `next`) and returns its URL. This is what `agent-otp serve` prints on first start and what
    /// Telegram's `/login` sends to a linked approver.
    pub async fn issue_login_url(
        &self,
        by: Actor,
        human: &str,
        next: Option<&str>,
    ) -> Result<String> {
        let expires = self.now().plus_secs(DEFAULT_TTL_SECS);
        let link = self.issue_login_link(by, human, next, expires).await?;
        Ok(url(self.public_url(), &link))
    }

    /// Issues a link limited to request `request` (see [`issue_for_request`]).
    pub async fn issue_request_link(
        &self,
        human: &str,
        request: &str,
        expires_at: Timestamp,
    ) -> Result<Secret> {
        let (now, human, request) = (self.now(), human.to_owned(), request.to_owned());
        self.store
            .write(move |tx| {
                issue_for_request(tx, &human, &request, &Actor::System, now, expires_at)
            })
            .await
    }

    /// What an unspent link would do, spending nothing (see [`peek`]).
    pub async fn peek_login_link(&self, presented: &str) -> Result<Option<Redeemed>> {
        let (now, presented) = (self.now(), presented.to_owned());
        self.store
            .read(move |c| peek(c, &presented, now).map_err(Error::from))
            .await
    }

    /// The request a spent link was limited to (see [`spent_request`]).
    pub async fn spent_link_request(&self, presented: &str) -> Result<Option<String>> {
        let (now, presented) = (self.now(), presented.to_owned());
        self.store
            .read(move |c| spent_request(c, &presented, now).map_err(Error::from))
            .await
    }

    /// Redeems a link and starts its session in one transaction: the session lasts
    /// `max_age_secs` and is limited to the link's request, if it had one. `None` (audited as a
    /// failed login) for an unknown, used or expired link.
    pub async fn log_in(
        &self,
        presented: &str,
        user_agent: Option<&str>,
        max_age_secs: i64,
    ) -> Result<Option<(Redeemed, Session, Secret)>> {
        let now = self.now();
        let (presented, user_agent) = (presented.to_owned(), user_agent.map(str::to_owned));
        self.store
            .write(move |tx| {
                let Some(link) = redeem(tx, &presented, now)? else {
                    return Ok(None);
                };
                let grant = Grant {
                    max_age_secs,
                    request_id: link.request.as_deref(),
                };
                let (session, secret) =
                    sessions::create(tx, &link.human, user_agent.as_deref(), grant, now)?;
                Ok::<_, Error>(Some((link, session, secret)))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_link_works_once_and_not_after_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let t0 = Timestamp(1_000_000);
        let expires = t0.plus_secs(DEFAULT_TTL_SECS);
        let (a, b) = store
            .write_blocking(|tx| {
                let a = issue(
                    tx,
                    "alice",
                    Some("/requests/r1"),
                    &Actor::Operator,
                    t0,
                    expires,
                )?;
                let b = issue(
                    tx,
                    "bob",
                    Some("//evil.example"),
                    &Actor::Operator,
                    t0,
                    expires,
                )?;
                Ok::<_, crate::error::Error>((a, b))
            })
            .unwrap();
        let redeem_at = |s: &Secret, at: Timestamp| {
            store
                .write_blocking(|tx| redeem(tx, s.expose(), at))
                .unwrap()
        };
        let first = redeem_at(&a, t0.plus_secs(1)).unwrap();
        assert_eq!(
            first,
            Redeemed {
                human: "alice".into(),
                next: Some("/requests/r1".into()),
                request: None,
            }
        );
        assert_eq!(redeem_at(&a, t0.plus_secs(2)), None, "used once");
        assert_eq!(redeem_at(&b, expires), None, "expired at expires_at");
        assert_eq!(redeem_at(&Secret::new("ll_nope"), t0), None);
        assert!(url("https://x.example", &a).starts_with("https://x.example/login/ll_"));
    }

    #[test]
    fn peeking_spends_nothing_and_a_request_link_names_its_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let t0 = Timestamp(1_000_000);
        let link = store
            .write_blocking(|tx| {
                issue_for_request(tx, "tg-1", "req-1", &Actor::System, t0, t0.plus_secs(60))
            })
            .unwrap();
        let want = Redeemed {
            human: "tg-1".into(),
            next: Some("/requests/req-1".into()),
            request: Some("req-1".into()),
        };
        for _ in 0..3 {
            let seen = store.read_blocking(|c| peek(c, link.expose(), t0)).unwrap();
            assert_eq!(seen.as_ref(), Some(&want));
        }
        let got = store
            .write_blocking(|tx| redeem(tx, link.expose(), t0))
            .unwrap();
        assert_eq!(got, Some(want));
        let after = store.read_blocking(|c| peek(c, link.expose(), t0)).unwrap();
        assert_eq!(after, None, "spent");
        let bad = store.write_blocking(|tx| {
            issue_for_request(tx, "tg-1", "../x", &Actor::System, t0, t0.plus_secs(60))
        });
        assert!(bad.is_err());
        assert_ne!(confirm_token("n1", "ll_a"), confirm_token("n2", "ll_a"));
        assert_ne!(confirm_token("n1", "ll_a"), confirm_token("n1", "ll_b"));
    }

    #[test]
    fn next_must_be_a_local_path() {
        assert!(is_local_path("/requests/abc"));
        for bad in [
            "//evil.example",
            "https://evil.example",
            "requests",
            "/\\evil",
            "/a\r\nb",
            "/\t/evil.example",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }
}
