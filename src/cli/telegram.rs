//! `agent-otp telegram link|list|unlink`: manage who may approve from Telegram.

use std::process::ExitCode;

use super::TelegramCommand;
use crate::clock::Clock;
use crate::config::TELEGRAM_TOKEN_ENV;
use crate::domain::Actor;
use crate::store::{Store, get_meta, telegram as sql};
use crate::telegram::approvers;
use crate::telegram::render::{duration, when};

/// Runs one `telegram` command against the data directory.
pub(super) fn run(command: TelegramCommand) -> Result<ExitCode, String> {
    let now = Clock::System.now();
    match command {
        TelegramCommand::Link { data } => {
            let store = open(&data)?;
            bot_configured(&store)?;
            let code = store
                .write_blocking(|tx| approvers::issue_code(tx, &Actor::Operator, now))
                .map_err(|e| e.to_string())?;
            let bot = store
                .read_blocking(|c| get_meta(c, "telegram_bot_username"))
                .ok()
                .flatten();
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
            super::operator::changed(&store);
            Ok(ExitCode::SUCCESS)
        }
        TelegramCommand::List { data } => {
            let rows = open(&data)?
                .read_blocking(sql::list_approvers)
                .map_err(|e| e.to_string())?;
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
            let store = open(&data)?;
            let row = store
                .write_blocking(|tx| approvers::unlink(tx, user_id, &Actor::Operator, now))
                .map_err(|e| e.to_string())?;
            eprintln!(
                "unlinked Telegram approver {} (user id {})",
                row.name, row.user_id
            );
            super::operator::changed(&store);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A link code is only useful with a bot: the server must have started with a bot token (it
/// notes `telegram` = `on` at every start), or this shell must have one set (about to start it).
fn bot_configured(store: &Store) -> Result<(), String> {
    let token_here = [
        TELEGRAM_TOKEN_ENV.to_owned(),
        format!("{TELEGRAM_TOKEN_ENV}_FILE"),
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
    let server = store
        .read_blocking(|c| get_meta(c, "telegram"))
        .map_err(|e| e.to_string())?;
    if token_here || server.as_deref() == Some("on") {
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

fn open(data: &crate::config::DataArgs) -> Result<Store, String> {
    data.open_store().map_err(|e| e.to_string())
}
