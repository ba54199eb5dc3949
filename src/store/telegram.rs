//! SQL for Telegram: linked approvers, one-time link codes (hashes only), the approval messages
//! sent per request and chat, and the last update handled.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;
use crate::clock::Timestamp;
use crate::domain::RequestId;
use crate::domain::{Approver, OpenMessage};

/// Links (or re-links, e.g. from a new chat) an approver; `true` when they were not linked.
pub(crate) fn upsert_approver(tx: &Transaction<'_>, a: &Approver) -> Result<bool, StoreError> {
    let existed = find_approver(tx, a.user_id)?.is_some();
    tx.prepare_cached(
        "INSERT INTO telegram_approvers(user_id, chat_id, name, linked_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user_id) DO UPDATE SET chat_id = excluded.chat_id, name = excluded.name",
    )?
    .execute(params![a.user_id, a.chat_id, a.name, a.linked_at.0])?;
    Ok(!existed)
}

/// Unlinks an approver; returns who was removed.
pub(crate) fn remove_approver(
    tx: &Transaction<'_>,
    user_id: i64,
) -> Result<Option<Approver>, StoreError> {
    Ok(tx
        .prepare_cached(
            "DELETE FROM telegram_approvers WHERE user_id = ?1
             RETURNING user_id, chat_id, name, linked_at",
        )?
        .query_row([user_id], approver)
        .optional()?)
}

/// One linked approver by Telegram user id.
pub(crate) fn find_approver(
    conn: &Connection,
    user_id: i64,
) -> Result<Option<Approver>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT user_id, chat_id, name, linked_at FROM telegram_approvers WHERE user_id = ?1",
        )?
        .query_row([user_id], approver)
        .optional()?)
}

/// All linked approvers, oldest link first.
pub(crate) fn list_approvers(conn: &Connection) -> Result<Vec<Approver>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, chat_id, name, linked_at FROM telegram_approvers ORDER BY linked_at, user_id",
    )?;
    let rows = stmt.query_map([], approver)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

fn approver(r: &rusqlite::Row<'_>) -> rusqlite::Result<Approver> {
    Ok(Approver {
        user_id: r.get(0)?,
        chat_id: r.get(1)?,
        name: r.get(2)?,
        linked_at: Timestamp(r.get(3)?),
    })
}

/// Stores a new link code by its hash.
pub(crate) fn insert_link_code(
    tx: &Transaction<'_>,
    code_hash: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO telegram_link_codes(code_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![code_hash, now.0, expires_at.0])?;
    Ok(())
}

/// Uses an unused, unexpired code once; `false` when there is no such code.
pub(crate) fn redeem_link_code(
    tx: &Transaction<'_>,
    code_hash: &str,
    now: Timestamp,
    user_id: i64,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE telegram_link_codes SET used_at = ?2, used_by = ?3
         WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
        )?
        .execute(params![code_hash, now.0, user_id])?;
    Ok(n == 1)
}

/// Records a message sent for a request (`message_id` `None`: the chat was unreachable, and the
/// row is closed at once so it is not retried).
pub(crate) fn insert_message(
    tx: &Transaction<'_>,
    request_id: &RequestId,
    chat_id: i64,
    message_id: Option<i32>,
    login_link_hash: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let closed = message_id.is_none().then_some(now.0);
    tx.prepare_cached(
        "INSERT INTO telegram_messages(request_id, chat_id, message_id, login_link_hash, sent_at,
            closed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        request_id.as_str(),
        chat_id,
        message_id,
        login_link_hash,
        now.0,
        closed
    ])?;
    Ok(())
}

/// Chats that already got (or could not get) a message for this request.
pub(crate) fn chats_messaged(
    conn: &Connection,
    request_id: &RequestId,
) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT chat_id FROM telegram_messages WHERE request_id = ?1 ORDER BY chat_id",
    )?;
    let rows = stmt
        .query_map([request_id.as_str()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Messages for this request that still show buttons.
pub(crate) fn open_messages(
    conn: &Connection,
    request_id: &RequestId,
) -> Result<Vec<OpenMessage>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, chat_id, message_id FROM telegram_messages
         WHERE request_id = ?1 AND closed_at IS NULL ORDER BY id",
    )?;
    let rows = stmt
        .query_map([request_id.as_str()], |r| {
            Ok(OpenMessage {
                id: r.get(0)?,
                chat_id: r.get(1)?,
                message_id: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Requests that have a message still showing buttons.
pub(crate) fn requests_with_open_messages(conn: &Connection) -> Result<Vec<RequestId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT request_id FROM telegram_messages WHERE closed_at IS NULL ORDER BY request_id",
    )?;
    let rows = stmt
        .query_map([], |r| Ok(RequestId(r.get(0)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Marks a message as showing the outcome, and retires the unused login link it carried.
pub(crate) fn close_message(
    tx: &Transaction<'_>,
    id: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let link: Option<Option<String>> = tx
        .prepare_cached(
            "UPDATE telegram_messages SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL
             RETURNING login_link_hash",
        )?
        .query_row(params![id, now.0], |r| r.get(0))
        .optional()?;
    if let Some(Some(hash)) = link {
        retire_login_link(tx, &hash)?;
    }
    Ok(())
}

/// Retires one login link if it was not used yet: it stops working, but is kept, so opening it
/// can still say what became of its request.
pub(crate) fn retire_login_link(tx: &Transaction<'_>, hash: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE login_links SET expires_at = 0 WHERE secret_hash = ?1 AND used_at IS NULL",
    )?
    .execute([hash])?;
    Ok(())
}

/// Retires every unused login link of `human` (an unlinked approver keeps no way in).
pub(crate) fn retire_login_links(tx: &Transaction<'_>, human: &str) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached("DELETE FROM login_links WHERE human = ?1 AND used_at IS NULL")?
        .execute([human])?)
}

/// The id of the last update handled, if any.
pub(crate) fn last_update_id(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT last_update_id FROM telegram_poll_state WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// Remembers that update `id` was handled.
pub(crate) fn set_last_update_id(tx: &Transaction<'_>, id: i64) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO telegram_poll_state(id, last_update_id) VALUES (1, ?1)
         ON CONFLICT(id) DO UPDATE SET last_update_id = max(last_update_id, excluded.last_update_id)")?.execute(
        [id],
    )?;
    Ok(())
}
