//! `agent-otp telegram link|list|unlink`: manage who may approve from Telegram.

use std::process::ExitCode;

use super::TelegramCommand;
use super::operator::{describe, open};
use crate::config::TELEGRAM_TOKEN_ENV;
use crate::domain::Actor;
use crate::service::approvers;
use crate::telegram::render::{duration, when};

/// Runs one `telegram` command against the data directory.
pub(super) async fn run(command: TelegramCommand) -> Result<ExitCode, String> {
    match command {
        TelegramCommand::Link { data } => {
            let svc = open(&data)?;
            let (server, bot) = svc.telegram_status().await.map_err(describe)?;
            bot_configured(server.as_deref())?;
            let code = svc
                .issue_link_code(Actor::Operator)
                .await
                .map_err(describe)?;
            let ttl = duration(approvers::LINK_CODE_TTL_SECS);
            match bot.filter(|b| !b.is_empty()) {
                Some(bot) => eprintln!(
                    "send this to @{bot} in a private chat within {ttl}, or open \
                     https://t.me/{bot}?start={}:\n  /start {}\none-time link code:",
                    code.expose(),
                    code.expose()
                ),
                None => eprintln!(
                    "send \"/start CODE\" to your bot in a private chat within {ttl}; one-time link code:"
                ),
            }
            println!("{}", code.expose());
            super::operator::changed(&svc);
            Ok(ExitCode::SUCCESS)
        }
        TelegramCommand::List { data } => {
            // Linked ones only: configured ids are not known here.
            let rows = open(&data)?.approvers(&[]).await.map_err(describe)?;
            println!("{:<14} {:<14} {:<24} LINKED", "USER ID", "CHAT ID", "NAME");
            for r in rows {
                println!(
                    "{:<14} {:<14} {:<24} {}",
                    r.user_id,
                    r.chat_id,
                    r.name,
                    when(r.linked_at)
                );
            }
            eprintln!(
                "(user ids in AGENT_OTP_TELEGRAM_APPROVERS are approvers too and are not listed here)"
            );
            Ok(ExitCode::SUCCESS)
        }
        TelegramCommand::Unlink { user_id, data } => {
            let svc = open(&data)?;
            let row = svc
                .unlink_approver(Actor::Operator, user_id)
                .await
                .map_err(describe)?;
            eprintln!(
                "unlinked Telegram approver {} (user id {})",
                row.name, row.user_id
            );
            super::operator::changed(&svc);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A link code is only useful with a bot: the server must have started with a bot token (it
/// notes `telegram` = `on` at every start), or this shell must have one set (about to start it).
fn bot_configured(server: Option<&str>) -> Result<(), String> {
    let token_here = [
        TELEGRAM_TOKEN_ENV.to_owned(),
        format!("{TELEGRAM_TOKEN_ENV}_FILE"),
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
    if token_here || server == Some("on") {
        return Ok(());
    }
    let last = match server {
        None => "the server has not started with this data directory yet",
        Some(_) => "the server last started without a bot",
    };
    Err(format!(
        "no Telegram bot is configured: {last}, and {TELEGRAM_TOKEN_ENV} is not set here. \
         Create a bot with @BotFather, give its token to the server as {TELEGRAM_TOKEN_ENV} \
         (or {TELEGRAM_TOKEN_ENV}_FILE), restart it, then run `agent-otp telegram link` again \
         (docs/telegram.md)"
    ))
}
