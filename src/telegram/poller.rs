//! The update loop: `getUpdates` long polling, one update at a time, each remembered as handled
//! in the database (so a restart asks Telegram for the next one and never handles one twice).
//! Handlers are idempotent where a crash could repeat them: a link code works once, and a
//! decision that already happened answers "too late".

use crate::domain::Approver;
use std::sync::Arc;

use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, CallbackQuery, ForceReply, InlineKeyboardMarkup, MessageId, ParseMode,
    UpdateKind,
};
use teloxide::utils::command::BotCommands;

use super::Telegram;
use super::outbox::Delivery;
use super::render::{self, Choice};
use crate::domain::request::Edits;
use crate::domain::{Actor, RequestId, Status};
use crate::error::Error;
use crate::service::approvers::{Candidate, human_name};
use crate::service::login_links;

/// The bot's commands.
#[derive(BotCommands, Clone, Debug)]
#[command(rename_rule = "lowercase")]
enum Command {
    /// `/start CODE` links this chat.
    Start(String),
    Pending,
    Login,
    Help,
}

/// Runs until the service stops.
pub(super) async fn run(tg: Arc<Telegram>) {
    let Some(username) = connect(&tg).await else {
        return;
    };
    let mut offset = match tg.service.last_update_id().await {
        Ok(last) => last.map_or(0, next_offset),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the last telegram update id");
            0
        }
    };
    let timeout = u32::try_from(tg.config.poll_timeout.as_secs()).unwrap_or(10);
    let mut failures = 0;
    loop {
        let req = tg
            .bot
            .get_updates()
            .offset(offset)
            .timeout(timeout)
            .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        let got = tokio::select! {
            () = tg.cancel.cancelled() => return,
            r = req.send() => r,
        };
        let wait = match got {
            Ok(updates) => {
                failures = 0;
                for update in updates {
                    let id = i64::from(update.id.0);
                    tg.handle(update.kind, &username).await;
                    let stored = tg.service.handled_update(id).await;
                    if let Err(e) = stored {
                        tracing::error!(error = %e, update = id, "cannot remember telegram update");
                    }
                    offset = next_offset(id);
                }
                continue;
            }
            Err(RequestError::RetryAfter(secs)) => secs.duration(),
            Err(e) => {
                let wait = tg.backoff(failures);
                failures += 1;
                tracing::warn!(error = %e, retry_in = ?wait, "telegram getUpdates failed");
                wait
            }
        };
        if !tg.pause(wait).await {
            return;
        }
    }
}

fn next_offset(last: i64) -> i32 {
    i32::try_from(last + 1).unwrap_or(i32::MAX)
}

/// Asks `getMe` until it answers (Telegram may be down at start); returns the bot's username.
async fn connect(tg: &Telegram) -> Option<String> {
    let mut failures = 0;
    loop {
        let got = tokio::select! {
            () = tg.cancel.cancelled() => return None,
            r = tg.bot.get_me().send() => r,
        };
        match got {
            Ok(me) => {
                let username = me.username.clone().unwrap_or_default();
                let saved = tg.service.remember_bot_username(&username).await;
                if let Err(e) = saved {
                    tracing::warn!(error = %e, "cannot remember the bot's username");
                }
                tracing::info!(bot = %username, "telegram connected");
                return Some(username);
            }
            Err(e) => {
                let wait = tg.backoff(failures);
                failures += 1;
                tracing::warn!(error = %e, retry_in = ?wait, "telegram not reachable yet");
                if !tg.pause(wait).await {
                    return None;
                }
            }
        }
    }
}

impl Telegram {
    async fn handle(&self, update: UpdateKind, username: &str) {
        match update {
            UpdateKind::Message(msg) => self.on_message(msg, username).await,
            UpdateKind::CallbackQuery(q) => self.on_press(q).await,
            _ => {}
        }
    }

    async fn approver(&self, user_id: i64) -> Option<Approver> {
        match self.service.approver(&self.config.approvers, user_id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "cannot read telegram approvers");
                None
            }
        }
    }

    async fn on_message(&self, msg: Message, username: &str) {
        // Approval messages and login links go to private chats only, never to a group.
        let (Some(from), true) = (msg.from.as_ref(), msg.chat.is_private()) else {
            return;
        };
        let Ok(user_id) = i64::try_from(from.id.0) else {
            return;
        };
        let chat = msg.chat.id.0;
        let approver = self.approver(user_id).await;
        let prompted = msg
            .reply_to_message()
            .filter(|p| p.from.as_ref().is_some_and(|f| f.is_bot))
            .and_then(|p| p.text())
            .and_then(render::prompted_request);
        if let (Some(a), Some(id), Some(reason)) = (&approver, prompted, msg.text()) {
            self.deny_with_reason(a, id, reason).await;
            return;
        }
        let command = msg.text().and_then(|t| Command::parse(t, username).ok());
        match (command, approver) {
            (Some(Command::Start(code)), _) if !code.trim().is_empty() => {
                let who = Candidate {
                    user_id,
                    chat_id: chat,
                    name: from.username.clone().unwrap_or_else(|| from.full_name()),
                };
                self.link(&code, &who).await;
            }
            (Some(Command::Pending), Some(a)) => self.send_pending(&a).await,
            (Some(Command::Login), Some(a)) => self.send_login(&a).await,
            (_, approver) => self.reply(chat, render::help(approver.is_some())).await,
        }
    }

    async fn link(&self, code: &str, who: &Candidate) {
        let now = self.service.now();
        // Failed codes are limited per user before the database is asked (and audited).
        let tries = &self.service.limiter().telegram_link;
        if let Err(denied) = tries.check(who.user_id, now) {
            let text = format!(
                "Too many wrong codes. Try again in {}.",
                render::duration(i64::try_from(denied.retry_after_secs).unwrap_or(i64::MAX))
            );
            self.reply(who.chat_id, text).await;
            return;
        }
        let linked = self.service.link_approver(code, who).await;
        let text = match linked {
            Ok(Some(_)) => {
                tries.refund(who.user_id);
                tracing::info!(user = who.user_id, "telegram approver linked");
                "✅ Linked. Approval requests will arrive in this chat. /pending shows what is waiting now."
            }
            Ok(None) => {
                "That code is unknown, used or expired. Ask the operator for a new one \
                 (<code>agent-otp telegram link</code>)."
            }
            Err(e) => {
                tries.refund(who.user_id);
                tracing::error!(error = %e, "cannot link telegram approver");
                "Something went wrong; please try again."
            }
        };
        self.reply(who.chat_id, text.to_owned()).await;
    }

    async fn send_login(&self, a: &Approver) {
        let expires = self.service.now().plus_secs(login_links::DEFAULT_TTL_SECS);
        let issued = self
            .service
            .issue_login_link(Actor::System, &human_name(a.user_id), None, expires)
            .await;
        let text = match issued {
            Ok(link) => {
                let url = render::escape(&login_links::url(self.service.public_url(), &link));
                format!(
                    "Your one-time login link, valid for {} (do not forward it):\n<a href=\"{url}\">{url}</a>",
                    render::duration(login_links::DEFAULT_TTL_SECS)
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot issue a login link");
                "Something went wrong; please try again.".to_owned()
            }
        };
        self.reply(a.chat_id, text).await;
    }

    /// Whether `id` is a pending request that Telegram cannot show in full, so cannot approve.
    async fn too_long_to_approve(&self, id: &str) -> bool {
        match self.service.get_for_human(id).await {
            Ok(v) => v.status == Status::Pending && !render::shows_in_full(&v),
            // Gone: the decision answers that.
            Err(Error::NotFound(_)) => false,
            Err(e) => {
                tracing::error!(error = %e, "cannot read a request before approving it");
                true
            }
        }
    }

    async fn on_press(&self, q: CallbackQuery) {
        let Ok(user_id) = i64::try_from(q.from.id.0) else {
            return;
        };
        let pressed = q.data.as_deref().and_then(render::parse_callback);
        let (text, alert, stale) = match (self.approver(user_id).await, pressed) {
            (None, pressed) => {
                let username = q.from.username.clone();
                let request = pressed.map(|(_, id)| id.to_owned());
                tracing::warn!(user = user_id, "button press from a non-approver refused");
                let audited = self
                    .service
                    .record_unauthorized_press(user_id, username, request)
                    .await;
                if let Err(e) = audited {
                    tracing::error!(error = %e, "cannot audit a refused button press");
                }
                (
                    "Only linked approvers can decide. This attempt was recorded.".to_owned(),
                    true,
                    None,
                )
            }
            (Some(_), None) => ("Unknown button.".to_owned(), true, None),
            (Some(a), Some((Choice::Approve, id))) if self.too_long_to_approve(id).await => {
                // No Approve button was offered; this press is forged or from an old client.
                tracing::warn!(user = a.user_id, request = %id, "approve press for a request too long to show refused");
                (render::TOO_LONG_TO_APPROVE.to_owned(), true, None)
            }
            (Some(a), Some((choice, id))) => self.choose(&a, &q, choice, id).await,
        };
        let req = self
            .bot
            .answer_callback_query(q.id)
            .text(text)
            .show_alert(alert);
        if let Delivery::Rejected(e) = self.deliver("answer press", user_id, req).await {
            tracing::warn!(error = %e, "telegram refused a press answer");
        }
        // The message showed buttons for a request already decided: bring it up to date.
        if let Some(id) = stale {
            self.sync(&id).await;
        }
    }

    /// What an approver's button press does. Approve on a `confirm: true` rule and Deny ask
    /// first (a second button, a reason); every decision goes through the service, so a press
    /// on a stale message decides nothing and is answered with what happened.
    async fn choose(
        &self,
        a: &Approver,
        q: &CallbackQuery,
        choice: Choice,
        id: &str,
    ) -> (String, bool, Option<RequestId>) {
        let pressed = q.message.as_ref().map(|m| (m.chat().id.0, m.id()));
        let pending = match self.service.get_for_human(id).await {
            Ok(v) if v.status == Status::Pending => Some(v),
            _ => None,
        };
        match (choice, pending) {
            (Choice::Approve, Some(v))
                if self
                    .service
                    .policy()
                    .current()
                    .policy
                    .asks_confirmation(v.rule.as_deref().unwrap_or_default()) =>
            {
                self.set_buttons(pressed, render::confirm_keyboard(&v))
                    .await;
                (render::CONFIRM_ASKED.to_owned(), false, None)
            }
            (Choice::Deny, Some(v)) => {
                let prompt = self
                    .bot
                    .send_message(ChatId(a.chat_id), render::deny_prompt(&v))
                    .parse_mode(ParseMode::Html)
                    .reply_markup(
                        ForceReply::new()
                            .input_field_placeholder(Some("Reason for the agent".into())),
                    );
                if let Delivery::Rejected(e) = self.deliver("deny prompt", a.chat_id, prompt).await
                {
                    tracing::warn!(error = %e, "telegram refused a deny prompt");
                }
                self.set_buttons(pressed, render::deny_keyboard(id)).await;
                (render::REASON_ASKED.to_owned(), false, None)
            }
            (Choice::Cancel, Some(v)) => {
                let buttons = if render::shows_in_full(&v) {
                    render::keyboard(id)
                } else {
                    render::deny_only(id)
                };
                self.set_buttons(pressed, buttons).await;
                ("Nothing was decided.".to_owned(), false, None)
            }
            (Choice::Cancel, None) => (
                "This request was decided already.".to_owned(),
                false,
                Some(RequestId(id.to_owned())),
            ),
            (Choice::Approve | Choice::Confirm, _) if self.too_long_to_approve(id).await => {
                // No Approve button was offered; this press is forged or from an old client.
                tracing::warn!(user = a.user_id, request = %id, "approve press for a request too long to show refused");
                (render::TOO_LONG_TO_APPROVE.to_owned(), true, None)
            }
            (Choice::Approve | Choice::Confirm, _) => {
                let human = human_name(a.user_id);
                let decided = self.service.approve(&human, id, Edits::default()).await;
                answer_decision(decided, id)
            }
            (Choice::Deny | Choice::DenyNow, _) => {
                let decided = self.service.deny(&human_name(a.user_id), id, None).await;
                answer_decision(decided, id)
            }
        }
    }

    /// Replaces the buttons under the pressed message.
    async fn set_buttons(&self, pressed: Option<(i64, MessageId)>, buttons: InlineKeyboardMarkup) {
        let Some((chat, message)) = pressed else {
            return;
        };
        let req = self
            .bot
            .edit_message_reply_markup(ChatId(chat), message)
            .reply_markup(buttons);
        if let Delivery::Rejected(e) = self.deliver("edit buttons", chat, req).await {
            tracing::warn!(error = %e, "telegram refused new buttons");
        }
    }

    /// A reply to a deny prompt: deny that request with the reply as the reason.
    async fn deny_with_reason(&self, a: &Approver, id: &str, reason: &str) {
        let decided = self
            .service
            .deny(&human_name(a.user_id), id, Some(reason.trim().to_owned()))
            .await;
        let text = match decided {
            Ok(_) => "❌ Denied; the agent gets your reason.".to_owned(),
            Err(Error::Conflict(why)) => format!("Too late: {}.", render::escape(&why)),
            Err(Error::NotFound(_)) => "This request no longer exists.".to_owned(),
            Err(Error::Validation { message, .. }) => format!(
                "Not denied: {}. Reply again, or tap \"Deny without a reason\".",
                render::escape(&message)
            ),
            Err(e) => {
                tracing::error!(error = %e, "telegram deny with a reason failed");
                "Something went wrong; try the web page.".to_owned()
            }
        };
        self.reply(a.chat_id, text).await;
    }
}

/// The answer to a press that decided, or tried to.
fn answer_decision(
    decided: Result<crate::wire::permissions::PermissionView, Error>,
    id: &str,
) -> (String, bool, Option<RequestId>) {
    match decided {
        Ok(v) => (render::answer_for(v.status).to_owned(), false, None),
        Err(Error::Conflict(why)) => (
            format!("Too late: {why}."),
            true,
            Some(RequestId(id.to_owned())),
        ),
        Err(Error::NotFound(_)) => ("This request no longer exists.".to_owned(), true, None),
        Err(e) => {
            tracing::error!(error = %e, "telegram decision failed");
            (
                "Something went wrong; try the web page.".to_owned(),
                true,
                None,
            )
        }
    }
}
