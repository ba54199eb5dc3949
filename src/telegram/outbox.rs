//! Sending and editing approval messages. The outbox follows the hub: a request that turns
//! `pending` is sent to every approver who has no message for it yet; a request that leaves
//! `pending` has every message that still shows buttons edited to the outcome. The same sync runs
//! for everything at start, after the hub lagged, and every `resync_interval`, so a send that
//! gave up (Telegram down) is tried again and a restart misses nothing. Sync is idempotent.

use crate::domain::Approver;
use crate::wire::permissions::PermissionView;
use std::collections::BTreeSet;
use std::sync::Arc;

use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::requests::Output;
use teloxide::types::{LinkPreviewOptions, MessageId, ParseMode};

use super::{Telegram, render};
use crate::domain::PermissionFilter as Filter;
use crate::domain::{RequestId, Status};
use crate::error::{Error, Result};
use crate::service::approvers::{Sent, human_name};
use crate::service::login_links;

/// Most pending requests handled in one sweep.
const PENDING_MAX: i64 = 50;
/// Most pending requests `/pending` sends at once (Telegram allows about one message a second
/// per chat); the rest are on the web page.
const PENDING_SHOWN: i64 = 10;

/// How one call to Telegram ended.
pub(super) enum Delivery<T> {
    Done(T),
    /// The chat cannot be reached (bot blocked, user gone): logged and skipped.
    Unreachable,
    /// Telegram refused the call for good (e.g. the message to edit is gone).
    Rejected(ApiError),
    /// Retries ran out, or the service is stopping.
    GaveUp,
}

/// Link previews would fetch the login link: never.
pub(super) fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

fn unreachable_chat(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::BotBlocked
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel
            | ApiError::UserDeactivated
            | ApiError::ChatNotFound
            | ApiError::CantInitiateConversation
            | ApiError::CantTalkWithBots
    )
}

impl Telegram {
    /// Makes one call, retrying transient failures with backoff and waiting as long as a 429's
    /// `retry_after` says. Stops early when the service stops.
    pub(super) async fn deliver<R>(
        &self,
        what: &'static str,
        chat: i64,
        req: R,
    ) -> Delivery<Output<R>>
    where
        R: Request<Err = RequestError>,
    {
        const MAX_FAILURES: u32 = 5;
        const MAX_WAITS: u32 = 10;
        let (mut failures, mut waits) = (0, 0);
        loop {
            let result = tokio::select! {
                () = self.cancel.cancelled() => return Delivery::GaveUp,
                r = req.send_ref() => r,
            };
            let wait = match result {
                Ok(out) => return Delivery::Done(out),
                Err(RequestError::RetryAfter(secs)) if waits < MAX_WAITS => {
                    waits += 1;
                    crate::metrics::record_telegram_failure(what, "retried");
                    tracing::info!(what, chat, retry_after = %secs, "telegram asks to slow down");
                    secs.duration()
                }
                Err(RequestError::Api(e)) if unreachable_chat(&e) => {
                    tracing::warn!(what, chat, error = %e, "telegram chat unreachable, skipped");
                    crate::metrics::record_telegram_failure(what, "unreachable");
                    return Delivery::Unreachable;
                }
                Err(
                    e @ (RequestError::Api(ApiError::Unknown(_))
                    | RequestError::Network(_)
                    | RequestError::InvalidJson { .. }
                    | RequestError::Io(_)),
                ) if failures < MAX_FAILURES => {
                    let wait = self.backoff(failures);
                    failures += 1;
                    crate::metrics::record_telegram_failure(what, "retried");
                    tracing::warn!(what, chat, error = %e, retry_in = ?wait, "telegram call failed");
                    wait
                }
                Err(RequestError::Api(e)) => {
                    crate::metrics::record_telegram_failure(what, "rejected");
                    return Delivery::Rejected(e);
                }
                Err(e) => {
                    tracing::error!(what, chat, error = %e, "telegram call failed, giving up");
                    crate::metrics::record_telegram_failure(what, "gave_up");
                    return Delivery::GaveUp;
                }
            };
            if !self.pause(wait).await {
                return Delivery::GaveUp;
            }
        }
    }

    /// Sends every approver a signed checkpoint of the audit chain (the newest head, freshly
    /// written to the checkpoint file too), so an anchor lives outside the server: `audit verify`
    /// run on a restored or suspect database can be held against it by hand.
    async fn send_checkpoint(&self) {
        let checkpoint = match self.service.newest_checkpoint().await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => return tracing::error!(error = %e, "no audit checkpoint for telegram"),
        };
        let text = render::checkpoint_text(&checkpoint);
        let approvers = self.service.approvers(&self.config.approvers).await;
        match approvers {
            Ok(all) => {
                for a in all {
                    self.reply(a.chat_id, text.clone()).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list telegram approvers"),
        }
    }

    /// Sends an HTML text to a chat (for command replies).
    pub(super) async fn reply(&self, chat: i64, text: String) {
        let req = self
            .bot
            .send_message(ChatId(chat), text)
            .parse_mode(ParseMode::Html)
            .link_preview_options(no_preview());
        if let Delivery::Rejected(e) = self.deliver("reply", chat, req).await {
            tracing::warn!(chat, error = %e, "telegram refused a reply");
        }
    }

    /// Brings every message for `id` up to date with the request (see the module docs).
    pub(super) async fn sync(&self, id: &RequestId) {
        let _one_at_a_time = self.outbox.lock().await;
        if let Err(e) = self.sync_locked(id).await {
            tracing::error!(request = %id, error = %e, "telegram sync failed");
        }
    }

    async fn sync_locked(&self, id: &RequestId) -> Result<()> {
        let view = match self.service.get_for_human(id.as_str()).await {
            Ok(v) => v,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if view.status == Status::Pending {
            let approvers = self
                .service
                .approvers_to_message(&self.config.approvers, id)
                .await?;
            for a in &approvers {
                if self.cancel.is_cancelled() {
                    break;
                }
                self.send_approval(&view, a).await?;
            }
            return Ok(());
        }
        let open = self.service.open_messages(id).await?;
        if open.is_empty() {
            return Ok(());
        }
        let text = render::outcome_text(&view, &self.who(&view).await);
        for m in open {
            if let Some(message_id) = m.message_id {
                let req = self
                    .bot
                    .edit_message_text(ChatId(m.chat_id), MessageId(message_id), text.clone())
                    .parse_mode(ParseMode::Html)
                    .link_preview_options(no_preview());
                match self.deliver("edit outcome", m.chat_id, req).await {
                    Delivery::Done(_) | Delivery::Unreachable => {}
                    Delivery::Rejected(e) => {
                        tracing::warn!(request = %id, chat = m.chat_id, error = %e, "cannot edit message, leaving it");
                    }
                    Delivery::GaveUp => continue,
                }
            }
            self.service.close_message(&m).await?;
        }
        Ok(())
    }

    /// Sends one approver the message for a pending request, with a login link for its page.
    async fn send_approval(&self, view: &PermissionView, a: &Approver) -> Result<()> {
        let now = self.service.now();
        let (human, request, expires) = (
            human_name(a.user_id),
            view.id.as_str().to_owned(),
            view.expires_at,
        );
        // The session this link opens can see and decide this request only.
        let link = self
            .service
            .issue_request_link(&human, &request, expires)
            .await?;
        let url = login_links::url(self.service.public_url(), &link);
        // Without Approve when the request is too long to show whole (see `render`).
        let message = render::approval(view, now, Some(&url));
        let req = self
            .bot
            .send_message(ChatId(a.chat_id), message.text)
            .parse_mode(ParseMode::Html)
            .reply_markup(message.keyboard)
            .link_preview_options(no_preview());
        let sent = match self.deliver("send approval", a.chat_id, req).await {
            Delivery::Done(m) => Sent::Message(m.id.0),
            Delivery::Unreachable => Sent::Unreachable,
            Delivery::Rejected(e) => {
                tracing::error!(request = %view.id, chat = a.chat_id, error = %e, "telegram refused an approval message");
                Sent::Unreachable
            }
            Delivery::GaveUp => Sent::Retry,
        };
        self.service
            .record_approval_message(&view.id, a.chat_id, sent, link.hash())
            .await
    }

    /// `/pending`: every pending request, with buttons, to one approver.
    pub(super) async fn send_pending(&self, a: &Approver) {
        let _one_at_a_time = self.outbox.lock().await;
        let filter = Filter {
            status: Some(Status::Pending),
            agent_id: None,
        };
        let (pending, total) = match self.service.list(filter, 0, PENDING_SHOWN).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "cannot list pending requests");
                return;
            }
        };
        let pending: Vec<_> = pending
            .into_iter()
            .filter(|v| v.status == Status::Pending)
            .collect();
        if pending.is_empty() {
            self.reply(a.chat_id, "Nothing is waiting for a decision.".to_owned())
                .await;
        }
        let shown = i64::try_from(pending.len()).unwrap_or(0);
        for v in pending {
            if let Err(e) = self.send_approval(&v, a).await {
                tracing::error!(request = %v.id, error = %e, "cannot send pending request");
            }
        }
        if total > shown {
            let more = format!(
                "… and {} more waiting: see <a href=\"{}/\">the web interface</a> (/login to log in).",
                total - shown,
                render::escape(self.service.public_url())
            );
            self.reply(a.chat_id, more).await;
        }
    }

    /// Who decided, for the outcome line, as people call them (the web page says the same).
    async fn who(&self, v: &PermissionView) -> String {
        match v.decided_by.as_deref() {
            Some(by) => crate::shown::person(&self.service, by).await,
            None => "nobody".to_owned(),
        }
    }

    /// Requests whose messages may be out of date: all pending ones and all with open messages.
    async fn everything(&self) -> Vec<RequestId> {
        let filter = Filter {
            status: Some(Status::Pending),
            agent_id: None,
        };
        let mut ids = BTreeSet::new();
        match self.service.list(filter, 0, PENDING_MAX).await {
            Ok((views, _)) => ids.extend(views.into_iter().map(|v| v.id.0)),
            Err(e) => tracing::error!(error = %e, "cannot list pending requests"),
        }
        match self.service.requests_with_open_messages().await {
            Ok(open) => ids.extend(open.into_iter().map(|id| id.0)),
            Err(e) => tracing::error!(error = %e, "cannot list open telegram messages"),
        }
        ids.into_iter().map(RequestId).collect()
    }
}

/// The outbox loop: follows the hub until the service stops.
pub(super) async fn follow(tg: Arc<Telegram>) {
    let mut listener = tg.service.subscribe();
    let mut resync = tokio::time::interval(tg.config.resync_interval);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every = tg.config.checkpoint_interval;
    let mut anchor = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    anchor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first tick is immediate: everything is synced once at start.
        let ids = tokio::select! {
            () = tg.cancel.cancelled() => return,
            change = listener.next() => match change {
                Some(change) => vec![change.id],
                None => tg.everything().await,
            },
            _ = resync.tick() => tg.everything().await,
            _ = anchor.tick() => {
                tg.send_checkpoint().await;
                Vec::new()
            }
        };
        for id in ids {
            if tg.cancel.is_cancelled() {
                return;
            }
            tg.sync(&id).await;
        }
    }
}
