//! Telegram approvals over long polling (no inbound port needed): approvers get a message with
//! Approve / Deny buttons for every request that needs a human, presses are checked against the
//! approver list by `from.id` and decided through the same [`Service`] operations as the web and
//! admin API, and every message for a request is edited to show the outcome once it leaves
//! `pending` — whoever decided, or the clock.
//!
//! Two loops run under the service's cancellation token: the [`poller`] reads updates (commands,
//! button presses) and remembers the last one handled in the database, so after a restart none
//! is handled twice; the [`outbox`] follows the [`crate::changes::Hub`] and sends and edits
//! messages, one at a time, with retries that honour Telegram's `retry_after`. Neither ever sits
//! on an API request's path.

mod outbox;
mod poller;
pub(crate) mod render;

use std::sync::Arc;
use std::time::Duration;

use teloxide::Bot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::secret::Secret;
use crate::service::Service;

/// Telegram's Bot API.
pub(crate) const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// The Telegram settings (present only when a bot token is configured).
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The bot token from BotFather.
    pub token: Secret,
    /// Base URL of the Bot API (Telegram's, a self-hosted Bot API server, or a test fake).
    pub api_url: String,
    /// User ids that are approvers without linking.
    pub approvers: Vec<i64>,
    /// How long one `getUpdates` call may wait for news.
    pub poll_timeout: Duration,
    /// First wait after a failed call; doubles on each further failure.
    pub retry_base: Duration,
    /// How often messages are re-checked against the database (catches sends that gave up).
    pub resync_interval: Duration,
    /// How often every approver is sent a signed checkpoint of the audit chain (an anchor kept
    /// outside the server; see `audit::checkpoint`).
    pub checkpoint_interval: Duration,
}

impl TelegramConfig {
    /// Settings with the defaults for everything but the token.
    pub fn new(token: Secret) -> TelegramConfig {
        TelegramConfig {
            token,
            api_url: DEFAULT_API_URL.to_owned(),
            approvers: Vec::new(),
            poll_timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(1),
            resync_interval: Duration::from_secs(60),
            checkpoint_interval: Duration::from_secs(24 * 3600),
        }
    }
}

/// What both loops share.
struct Telegram {
    bot: Bot,
    service: Arc<Service>,
    config: TelegramConfig,
    cancel: CancellationToken,
    /// One send or edit sequence at a time, so a message is recorded before anyone edits it.
    outbox: tokio::sync::Mutex<()>,
}

/// A bot client checked against the settings, ready to [`Client::spawn`].
pub(crate) struct Client {
    bot: Bot,
    config: TelegramConfig,
}

impl Client {
    /// Checks the settings and builds the client (no network yet).
    pub(crate) fn new(config: TelegramConfig) -> Result<Client, String> {
        let url = config
            .api_url
            .parse()
            .map_err(|e| format!("invalid Telegram API URL {:?}: {e}", config.api_url))?;
        let bot = Bot::new(config.token.expose()).set_api_url(url);
        Ok(Client { bot, config })
    }

    /// Starts the poller and the outbox; the task ends when `cancel` fires. Telegram being
    /// unreachable is retried inside the task, never reported here.
    pub(crate) fn spawn(self, service: Arc<Service>, cancel: CancellationToken) -> JoinHandle<()> {
        let tg = Arc::new(Telegram {
            bot: self.bot,
            service,
            config: self.config,
            cancel,
            outbox: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(async move {
            tokio::join!(
                poller::run(Arc::clone(&tg)),
                outbox::follow(Arc::clone(&tg))
            );
            tracing::info!("telegram stopped");
        })
    }
}

impl Telegram {
    /// Sleeps for `d` unless stopped first; `false` when stopped.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            () = self.cancel.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    }

    /// The wait before attempt `n` (0-based) after failures: base × 2ⁿ, at most a minute.
    fn backoff(&self, n: u32) -> Duration {
        self.config
            .retry_base
            .saturating_mul(1 << n.min(16))
            .min(Duration::from_secs(60))
    }
}
