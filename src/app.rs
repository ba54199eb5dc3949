//! `start(config) -> AppHandle`: opens the store, loads the policy, binds the HTTP server and
//! starts the background tasks (expiry sweeper, policy watcher), all under one cancellation token. `main` and every integration
//! test run exactly this.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpServer, web};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, open_store};
use crate::policy::live::{LivePolicy, LoadError};
use crate::service::Service;
use crate::store::set_meta;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("policy: {0}")]
    Policy(#[from] LoadError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot record start-up: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("telegram: {0}")]
    Telegram(String),
    #[error("another agent-otp server is already serving {}", .data_dir.display())]
    AlreadyServing { data_dir: std::path::PathBuf },
    #[error("cannot lock {}: {source}", .path.display())]
    Lock {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A running service.
pub struct AppHandle {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// The shared operations, for tests and in-process callers.
    pub service: Arc<Service>,
    cancel: CancellationToken,
    server: actix_web::dev::ServerHandle,
    http: JoinHandle<std::io::Result<()>>,
    sweeper: JoinHandle<()>,
    /// Writes signed checkpoints of the audit chain, and a last one at shutdown.
    anchor: JoinHandle<()>,
    /// The Telegram poller and outbox, when a bot token is set.
    telegram: Option<JoinHandle<()>>,
    policy_watcher: JoinHandle<()>,
    /// Held while serving: one server per data directory (see [`lock_data_dir`]).
    _serving: std::fs::File,
}

/// Starts the service and returns once it accepts connections.
pub async fn start(config: Config) -> Result<AppHandle, StartError> {
    let serving = lock_data_dir(&config.data_dir)?;
    let store = open_store(&config.data_dir)?;
    let policy = Arc::new(LivePolicy::load_at_start(
        &config.policies,
        config.clock.now(),
    )?);
    let telegram = config
        .telegram
        .clone()
        .map(crate::telegram::Client::new)
        .transpose()
        .map_err(StartError::Telegram)?;
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let telegram_on = if telegram.is_some() { "on" } else { "off" };
    store.read_blocking(|c| {
        set_meta(c, "public_url", &public_url)?;
        // `agent-otp telegram link` reads it: a link code is no use without a bot.
        set_meta(c, "telegram", telegram_on)
    })?;

    let service = Arc::new(Service::new(
        store,
        policy,
        config.clock.clone(),
        public_url,
        crate::rate_limit::RateLimiter::new(config.limits.clone()),
    ));
    // Before "listening": whoever waits for that line (an operator, a test) has the link by then.
    if let Err(e) = crate::web::announce_first_login(&service).await {
        tracing::error!(error = %e, "cannot issue the first login link");
    }
    let data = web::Data::from(Arc::clone(&service));
    let https = service.public_url().starts_with("https://");
    let header_timeout = config.limits.header_timeout;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::from_fn(move |req, next| {
                around_each_request(req, next, https)
            }))
            .configure(crate::api::configure)
            .configure(crate::api::metrics::configure)
            .configure(crate::web::configure)
    })
    // A client slower than this with its headers gets 408 and is disconnected; bodies are
    // bounded by `api::bodies::guard_bodies`.
    .client_request_timeout(header_timeout)
    .listen(listener)
    .map_err(|source| StartError::Bind { addr, source })?
    .disable_signals()
    .shutdown_timeout(5)
    .run();
    let server_handle = server.handle();
    let http = tokio::spawn(server);

    let cancel = CancellationToken::new();
    let sweeper = tokio::spawn(sweep_until_cancelled(
        Arc::clone(&service),
        config.sweep_interval,
        config.retention,
        cancel.clone(),
    ));
    let anchor = tokio::spawn(checkpoint_until_cancelled(
        Arc::clone(&service),
        config.audit_checkpoint_interval,
        cancel.clone(),
    ));
    let telegram = telegram.map(|tg| tg.spawn(Arc::clone(&service), cancel.clone()));
    let policy_watcher =
        crate::policy::watch::spawn(Arc::clone(&service), config.policy_debounce, cancel.clone());
    let policy = service.policy().status();
    // The one start-up summary (tests and scripts read `addr=` from it).
    tracing::info!(
        %addr,
        public_url = %service.public_url(),
        data_dir = %std::path::absolute(&config.data_dir).unwrap_or(config.data_dir.clone()).display(),
        policy = %policy.source,
        policy_version = %policy.version.get(..12).unwrap_or(&policy.version),
        rules = policy.rules,
        telegram = %telegram_on,
        "agent-otp listening"
    );
    Ok(AppHandle {
        addr,
        service,
        cancel,
        server: server_handle,
        http,
        sweeper,
        anchor,
        telegram,
        policy_watcher,
        _serving: serving,
    })
}

/// What runs around every request, inside out: the body guard (`api::bodies`), the check of an
/// agent that came from memory (`api::auth::confirm_remembered`), then the security headers and
/// the rate-limit headers, so that every answer, the guard's and the check's own included,
/// carries them. One layer, not four: each layer of actix middleware boxes the call it wraps.
async fn around_each_request<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
    https: bool,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let res = crate::api::bodies::guard_bodies(req, next).await?;
    let mut res = crate::api::auth::confirm_remembered(res).await?;
    crate::web::add_security_headers(res.headers_mut(), https);
    crate::api::limits::add_quota_headers(&mut res);
    Ok(res)
}

/// Takes the data directory for this server alone, before anything in it is opened. Two
/// servers on one database would each run the sweeper and the Telegram bot, and neither would
/// see the other's writes in the reads it remembers (`store::recent`). The lock is an `flock`
/// on `<data-dir>/serve.lock`, so it goes with the process however that ends; the command-line
/// tools do not take it.
fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File, StartError> {
    let path = data_dir.join("serve.lock");
    let lock_error = |source| StartError::Lock {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(lock_error)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_error)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::AlreadyServing {
            data_dir: data_dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(lock_error(e)),
    }
}

impl AppHandle {
    /// Base URL of the running server, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many listeners are subscribed to request changes (long polls, open pages, the
    /// Telegram sender): for tests, to wait until a waiter is subscribed.
    #[doc(hidden)]
    pub fn listeners(&self) -> usize {
        self.service.listeners()
    }

    /// Stops accepting requests, lets those in flight finish, then stops the background tasks.
    pub async fn shutdown(self) {
        self.server.stop(true).await;
        self.cancel.cancel();
        if let Err(e) = self.http.await {
            tracing::error!(error = %e, "http server task failed");
        }
        if let Err(e) = self.sweeper.await {
            tracing::error!(error = %e, "sweeper task failed");
        }
        if let Some(telegram) = self.telegram
            && let Err(e) = telegram.await
        {
            tracing::error!(error = %e, "telegram task failed");
        }
        if let Err(e) = self.policy_watcher.await {
            tracing::error!(error = %e, "policy watcher task failed");
        }
        // Last: a checkpoint covering everything this server wrote.
        if let Err(e) = self.anchor.await {
            tracing::error!(error = %e, "audit checkpoint task failed");
        }
        tracing::info!("agent-otp stopped");
    }
}

/// Expires lapsed requests every `every`, and (about hourly) prunes finished requests older than
/// `retention`.
async fn sweep_until_cancelled(
    service: Arc<Service>,
    every: std::time::Duration,
    retention: Option<std::time::Duration>,
    cancel: CancellationToken,
) {
    const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match service.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired lapsed requests"),
            Err(e) => tracing::error!(error = %e, "expiry sweep failed"),
        }
        if let Some(keep) = retention
            && tokio::time::Instant::now() >= next_prune
        {
            next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
            match service.prune(keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "pruned finished requests past retention"),
                Err(e) => tracing::error!(error = %e, "pruning finished requests failed"),
            }
        }
    }
}

/// Writes a signed checkpoint of the audit chain at start, every `every` while it grows, and
/// once more when cancelled (after the HTTP server has stopped).
async fn checkpoint_until_cancelled(
    service: Arc<Service>,
    every: std::time::Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            () = cancel.cancelled() => true,
            _ = tick.tick() => false,
        };
        if let Err(e) = service.checkpoint().await {
            tracing::error!(error = %e, "cannot write the audit checkpoint");
        }
        if stop {
            return;
        }
    }
}
