//! Who may decide from Telegram, and how they become an approver: the operator prints a one-time
//! code (`agent-otp telegram link`), the person sends `/start CODE` to the bot in a private chat,
//! and their user id and chat id are stored. Ids listed in `AGENT_OTP_TELEGRAM_APPROVERS` are
//! approvers too (their private chat id is their user id). Every change is audited in the same
//! transaction; codes are stored only as SHA-256.

use super::Service;
use crate::domain::{Approver, OpenMessage, RequestId};
use rusqlite::{Connection, Transaction};
use serde_json::json;

use crate::audit::NewEvent;
use crate::clock::Timestamp;
use crate::domain::Actor;
use crate::error::{Error, Result};
use crate::secret::{self, Secret};
use crate::store::telegram as sql;
use crate::store::{StoreError, audit};

/// How long a link code stays valid, in seconds.
pub(crate) const LINK_CODE_TTL_SECS: i64 = 600;

/// Characters in a link code (base62, ≈ 95 bits): short enough to type, too many to guess.
const LINK_CODE_CHARS: usize = 16;

/// The human name an approver acts as (`decidedBy` is `human:tg-<user id>`; also their web login).
pub(crate) fn human_name(user_id: i64) -> String {
    format!("tg-{user_id}")
}

/// Issues a one-time link code valid for [`LINK_CODE_TTL_SECS`].
pub(crate) fn issue_code(tx: &Transaction<'_>, by: &Actor, now: Timestamp) -> Result<Secret> {
    let random = secret::generate("")?;
    let code = Secret::new(
        random
            .expose()
            .chars()
            .take(LINK_CODE_CHARS)
            .collect::<String>(),
    );
    let expires_at = now.plus_secs(LINK_CODE_TTL_SECS);
    sql::insert_link_code(tx, &code.hash(), now, expires_at)?;
    let d = json!({ "expiresAt": expires_at });
    audit::append(tx, now, &NewEvent::new(by, "telegram.link_code_issued", d))?;
    Ok(code)
}

/// Who is trying to link, as Telegram tells us.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub user_id: i64,
    pub chat_id: i64,
    pub name: String,
}

/// Links `who` if `code` is live; a wrong, used or expired code is audited and gives `None`.
pub(crate) fn link(
    tx: &Transaction<'_>,
    code: &str,
    who: &Candidate,
    now: Timestamp,
) -> Result<Option<Approver>> {
    let actor = Actor::Human(human_name(who.user_id));
    let hash = secret::sha256_hex(code.trim().as_bytes());
    if !sql::redeem_link_code(tx, &hash, now, who.user_id)? {
        let d = json!({ "userId": who.user_id, "reason": "unknown, used or expired code" });
        audit::append(tx, now, &NewEvent::new(actor, "telegram.link_failed", d))?;
        return Ok(None);
    }
    let row = Approver {
        user_id: who.user_id,
        chat_id: who.chat_id,
        name: who.name.chars().take(64).collect(),
        linked_at: now,
    };
    let new = sql::upsert_approver(tx, &row)?;
    let d =
        json!({ "userId": row.user_id, "chatId": row.chat_id, "name": row.name, "relinked": !new });
    audit::append(
        tx,
        now,
        &NewEvent::new(actor, "telegram.approver_linked", d),
    )?;
    Ok(Some(row))
}

/// Unlinks an approver and retires their unused login links.
pub(crate) fn unlink(
    tx: &Transaction<'_>,
    user_id: i64,
    by: &Actor,
    now: Timestamp,
) -> Result<Approver> {
    let row = sql::remove_approver(tx, user_id)?.ok_or_else(|| {
        Error::NotFound(format!(
            "no linked Telegram approver with user id {user_id}"
        ))
    })?;
    let human = human_name(user_id);
    let links = sql::retire_login_links(tx, &human)?;
    // The web sessions they opened through their links end with the link to Telegram.
    let sessions = crate::store::sessions::revoke_all_of(tx, &human, now)?;
    let d = json!({
        "userId": row.user_id,
        "name": row.name,
        "loginLinksRetired": links,
        "sessionsRevoked": sessions,
    });
    audit::append(tx, now, &NewEvent::new(by, "telegram.approver_unlinked", d))?;
    Ok(row)
}

/// Records a button press by someone who is not an approver.
pub(crate) fn unauthorized_press(
    tx: &Transaction<'_>,
    user_id: i64,
    username: Option<&str>,
    request_id: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    let d = json!({ "userId": user_id, "username": username, "requestId": request_id });
    let mut ev = NewEvent::new(Actor::System, "telegram.unauthorized_press", d);
    if let Some(id) = request_id {
        ev = ev.request(id);
    }
    audit::append(tx, now, &ev)?;
    Ok(())
}

/// The approver with this user id: linked, or listed in the settings.
pub(crate) fn find(
    conn: &Connection,
    configured: &[i64],
    user_id: i64,
) -> Result<Option<Approver>, StoreError> {
    if let Some(row) = sql::find_approver(conn, user_id)? {
        return Ok(Some(row));
    }
    Ok(configured
        .contains(&user_id)
        .then(|| configured_row(user_id)))
}

/// Every approver: linked ones, then configured ones not linked.
pub(crate) fn all(conn: &Connection, configured: &[i64]) -> Result<Vec<Approver>, StoreError> {
    let mut rows = sql::list_approvers(conn)?;
    for id in configured {
        if !rows.iter().any(|r| r.user_id == *id) {
            rows.push(configured_row(*id));
        }
    }
    Ok(rows)
}

fn configured_row(user_id: i64) -> Approver {
    Approver {
        user_id,
        chat_id: user_id,
        name: human_name(user_id),
        linked_at: Timestamp(0),
    }
}

/// What became of one approval message, for [`Service::record_approval_message`].
#[derive(Debug, Clone, Copy)]
pub enum Sent {
    /// Delivered; Telegram gave it this message id (edited when the request is decided).
    Message(i32),
    /// The chat cannot be reached (blocked the bot, say): not sent, and not tried again.
    Unreachable,
    /// Not sent this time; a later sync tries again.
    Retry,
}

impl Service {
    /// Every approver: linked ones, then `configured` ones not linked.
    pub async fn approvers(&self, configured: &[i64]) -> Result<Vec<Approver>> {
        let configured = configured.to_vec();
        self.store
            .read(move |c| all(c, &configured).map_err(Error::from))
            .await
    }

    /// The approver with this Telegram user id, linked or among `configured`.
    pub async fn approver(&self, configured: &[i64], user_id: i64) -> Result<Option<Approver>> {
        let configured = configured.to_vec();
        self.store
            .read(move |c| find(c, &configured, user_id).map_err(Error::from))
            .await
    }

    /// The approvers not yet sent a message about request `id`.
    pub async fn approvers_to_message(
        &self,
        configured: &[i64],
        id: &RequestId,
    ) -> Result<Vec<Approver>> {
        let (configured, id) = (configured.to_vec(), id.clone());
        self.store
            .read(move |c| {
                let messaged = sql::chats_messaged(c, &id)?;
                let mut approvers = all(c, &configured)?;
                approvers.retain(|a| !messaged.contains(&a.chat_id));
                Ok::<_, Error>(approvers)
            })
            .await
    }

    /// Issues a one-time link code (see [`issue_code`]).
    pub async fn issue_link_code(&self, by: Actor) -> Result<Secret> {
        let now = self.now();
        self.store.write(move |tx| issue_code(tx, &by, now)).await
    }

    /// Links `who` if `code` is live (see [`link`]).
    pub async fn link_approver(&self, code: &str, who: &Candidate) -> Result<Option<Approver>> {
        let (now, code, who) = (self.now(), code.to_owned(), who.clone());
        self.store.write(move |tx| link(tx, &code, &who, now)).await
    }

    /// Unlinks an approver (see [`unlink`]).
    pub async fn unlink_approver(&self, by: Actor, user_id: i64) -> Result<Approver> {
        let now = self.now();
        self.store
            .write(move |tx| unlink(tx, user_id, &by, now))
            .await
    }

    /// Records a button press by someone who is not an approver.
    pub async fn record_unauthorized_press(
        &self,
        user_id: i64,
        username: Option<String>,
        request: Option<String>,
    ) -> Result<()> {
        let now = self.now();
        self.store
            .write(move |tx| {
                unauthorized_press(tx, user_id, username.as_deref(), request.as_deref(), now)
            })
            .await
    }

    /// Writes down an approval message sent (or not) to `chat` about request `id`, with the
    /// hash of the login link it carried: a link in no message is retired at once.
    pub async fn record_approval_message(
        &self,
        id: &RequestId,
        chat: i64,
        sent: Sent,
        link_hash: String,
    ) -> Result<()> {
        let (now, id) = (self.now(), id.clone());
        self.store
            .write(move |tx| {
                match sent {
                    Sent::Message(message_id) => {
                        sql::insert_message(
                            tx,
                            &id,
                            chat,
                            Some(message_id),
                            Some(&link_hash),
                            now,
                        )?;
                    }
                    Sent::Unreachable => {
                        sql::insert_message(tx, &id, chat, None, None, now)?;
                        sql::retire_login_link(tx, &link_hash)?;
                    }
                    Sent::Retry => sql::retire_login_link(tx, &link_hash)?,
                }
                Ok::<_, Error>(())
            })
            .await
    }

    /// The messages about request `id` that still show their buttons.
    pub async fn open_messages(&self, id: &RequestId) -> Result<Vec<OpenMessage>> {
        let id = id.clone();
        self.store
            .read(move |c| sql::open_messages(c, &id).map_err(Error::from))
            .await
    }

    /// Marks a message as edited to its request's outcome (its login link retires with it).
    pub async fn close_message(&self, message: &OpenMessage) -> Result<()> {
        let (now, id) = (self.now(), message.id);
        self.store
            .write(move |tx| sql::close_message(tx, id, now).map_err(Error::from))
            .await
    }

    /// Requests some message about which still shows its buttons.
    pub async fn requests_with_open_messages(&self) -> Result<Vec<RequestId>> {
        self.store
            .read(|c| sql::requests_with_open_messages(c).map_err(Error::from))
            .await
    }

    /// The last Telegram update handled, so a restart does not handle one twice.
    pub async fn last_update_id(&self) -> Result<Option<i64>> {
        self.store
            .read(|c| sql::last_update_id(c).map_err(Error::from))
            .await
    }

    /// Writes down that update `id` was handled.
    pub async fn handled_update(&self, id: i64) -> Result<()> {
        self.store
            .write(move |tx| sql::set_last_update_id(tx, id).map_err(Error::from))
            .await
    }

    /// Remembers the bot's username (`agent-otp telegram link` names the bot to write to).
    pub async fn remember_bot_username(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.store
            .write(move |tx| {
                crate::store::set_meta(tx, "telegram_bot_username", &name).map_err(Error::from)
            })
            .await
    }

    /// What the running server last said about Telegram: whether a bot is set (`"on"`/`"off"`,
    /// `None` if no server ran yet) and the bot's username.
    pub async fn telegram_status(&self) -> Result<(Option<String>, Option<String>)> {
        self.store
            .read(|c| {
                Ok::<_, Error>((
                    crate::store::get_meta(c, "telegram")?,
                    crate::store::get_meta(c, "telegram_bot_username")?,
                ))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_code_links_once_and_unlink_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let t0 = Timestamp(1_000_000);
        let code = store
            .write_blocking(|tx| issue_code(tx, &Actor::Operator, t0))
            .unwrap();
        assert_eq!(code.expose().len(), LINK_CODE_CHARS);
        let who = Candidate {
            user_id: 42,
            chat_id: 42,
            name: "Ann".into(),
        };
        let linked = store
            .write_blocking(|tx| link(tx, code.expose(), &who, t0.plus_secs(1)))
            .unwrap();
        assert_eq!(linked.unwrap().chat_id, 42);
        let again = store
            .write_blocking(|tx| link(tx, code.expose(), &who, t0.plus_secs(2)))
            .unwrap();
        assert!(again.is_none(), "a code works once");

        let late = store
            .write_blocking(|tx| issue_code(tx, &Actor::Operator, t0))
            .unwrap();
        let expired = store
            .write_blocking(|tx| link(tx, late.expose(), &who, t0.plus_secs(LINK_CODE_TTL_SECS)))
            .unwrap();
        assert!(expired.is_none(), "a code expires");

        let all_now = store.read_blocking(|c| all(c, &[7, 42])).unwrap();
        assert_eq!(
            all_now.iter().map(|r| r.user_id).collect::<Vec<_>>(),
            [42, 7]
        );
        store
            .write_blocking(|tx| unlink(tx, 42, &Actor::Operator, t0))
            .unwrap();
        assert!(store.read_blocking(|c| find(c, &[], 42)).unwrap().is_none());
        assert!(
            store
                .read_blocking(|c| find(c, &[42], 42))
                .unwrap()
                .is_some()
        );
        let e = store
            .write_blocking(|tx| unlink(tx, 42, &Actor::Operator, t0))
            .unwrap_err();
        assert_eq!(e.code(), "NOT_FOUND");
    }
}
