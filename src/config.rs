//! Settings, layered defaults → environment (`AGENT_OTP_*`) → command-line flags (clap does the
//! layering), then validated into a [`Config`] with a hint on how to fix anything wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock::Clock;
pub use crate::rate_limit::body::ByteRate;
pub use crate::rate_limit::forwarded::IpNet;
pub use crate::rate_limit::{Limits, Rate};
use crate::secret::Secret;
use crate::store::{Store, StoreError};
use crate::telegram::DEFAULT_API_URL;
pub use crate::telegram::TelegramConfig;

/// Every environment variable the service reads; others starting `AGENT_OTP_` are warned about.
pub const KNOWN_ENV: &[&str] = &[
    "AGENT_OTP_LISTEN",
    "AGENT_OTP_PUBLIC_URL",
    "AGENT_OTP_DATA_DIR",
    "AGENT_OTP_POLICIES",
    "AGENT_OTP_URL",
    "AGENT_OTP_KEY",
    "AGENT_OTP_TELEGRAM_TOKEN",
    "AGENT_OTP_TELEGRAM_API_URL",
    "AGENT_OTP_TELEGRAM_APPROVERS",
    "AGENT_OTP_KEY_FILE",
    "AGENT_OTP_RATE_LIMIT_AGENT",
    "AGENT_OTP_RATE_LIMIT_AUTH_FAILURES",
    "AGENT_OTP_RATE_LIMIT_LOGIN",
    "AGENT_OTP_RATE_LIMIT_TELEGRAM_LINK",
    "AGENT_OTP_MAX_PENDING_PER_AGENT",
    "AGENT_OTP_TRUST_FORWARDED_FOR",
    "AGENT_OTP_AUDIT_KEY",
    "AGENT_OTP_AUDIT_KEY_FILE",
    "AGENT_OTP_AUDIT_CHECKPOINT_SECS",
    "AGENT_OTP_RETENTION_DAYS",
    // BoundsArgs
    "AGENT_OTP_HEADER_TIMEOUT",
    "AGENT_OTP_BODY_TIMEOUT",
    "AGENT_OTP_MAX_STORED_PER_AGENT",
    "AGENT_OTP_TRUSTED_PROXIES",
    "AGENT_OTP_SESSION_MAX_AGE",
];

/// Days finished requests are kept by default (`--retention-days`).
pub const DEFAULT_RETENTION_DAYS: u64 = 90;

/// The bot token's variable (also read from the file named by `AGENT_OTP_TELEGRAM_TOKEN_FILE`).
pub const TELEGRAM_TOKEN_ENV: &str = "AGENT_OTP_TELEGRAM_TOKEN";

/// Where the database lives; shared by `serve` and the operator commands.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Directory holding the SQLite database `agent-otp.db` (only `serve` and `init` create it).
    #[arg(long, env = "AGENT_OTP_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

impl DataArgs {
    /// Opens (and migrates) the database of an existing data directory. Operator commands use
    /// this: run from the wrong directory, a relative `./data` would otherwise silently become a
    /// second, empty database whose keys the server has never heard of.
    pub fn open_store(&self) -> Result<Store, ConfigError> {
        open_existing_store(&self.data_dir)
    }

    /// The database file, as an absolute path (for messages).
    pub fn db_path(&self) -> PathBuf {
        absolute(&db_path(&self.data_dir))
    }
}

/// Flags of `agent-otp serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "AGENT_OTP_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// URL at which people and agents reach this server, used in the links it hands out
    /// (default: http://<listen address>).
    #[arg(long, env = "AGENT_OTP_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Policy file; if it does not exist every request requires human approval.
    #[arg(long, env = "AGENT_OTP_POLICIES", default_value = "policies.yaml")]
    pub policies: PathBuf,
    #[command(flatten)]
    pub telegram: TelegramArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub bounds: BoundsArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
}

/// Audit trail and retention settings of `agent-otp serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    /// Seconds between signed checkpoints of the audit chain while it grows (also written at
    /// start and at shutdown).
    #[arg(long, env = "AGENT_OTP_AUDIT_CHECKPOINT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub audit_checkpoint_secs: u64,
    /// Days a finished request (denied, expired, used, revoked) is kept before its row is
    /// pruned; its audit events stay. 0 keeps every request.
    #[arg(long, env = "AGENT_OTP_RETENTION_DAYS", default_value_t = DEFAULT_RETENTION_DAYS)]
    pub retention_days: u64,
}

/// Rate limits and caps of `agent-otp serve` (see docs/limits.md). A rate is `N/s`, `N/min` or
/// `N/h` — a burst of N, refilled evenly over the period — or `off`.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Requests per agent key, all agent routes together.
    #[arg(long, env = "AGENT_OTP_RATE_LIMIT_AGENT", default_value = "600/min", value_parser = parse_rate)]
    pub rate_limit_agent: RateArg,
    /// Failed agent-key or admin-token authentications per client address.
    #[arg(long, env = "AGENT_OTP_RATE_LIMIT_AUTH_FAILURES", default_value = "30/min", value_parser = parse_rate)]
    pub rate_limit_auth_failures: RateArg,
    /// Failed login-link redemptions per client address.
    #[arg(long, env = "AGENT_OTP_RATE_LIMIT_LOGIN", default_value = "10/min", value_parser = parse_rate)]
    pub rate_limit_login: RateArg,
    /// Failed Telegram link codes (`/start CODE`) per Telegram user.
    #[arg(long, env = "AGENT_OTP_RATE_LIMIT_TELEGRAM_LINK", default_value = "10/h", value_parser = parse_rate)]
    pub rate_limit_telegram_link: RateArg,
    /// Requests one agent may have waiting for a human at once (0: no cap).
    #[arg(long, env = "AGENT_OTP_MAX_PENDING_PER_AGENT", default_value_t = 20)]
    pub max_pending_per_agent: u32,
    /// Take the client address from the last X-Forwarded-For entry; set only behind a reverse
    /// proxy that appends it, or clients can pick their own address.
    #[arg(long, env = "AGENT_OTP_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,
}

impl LimitArgs {
    fn into_limits(self) -> Limits {
        Limits {
            agent: self.rate_limit_agent.0,
            auth_failures: self.rate_limit_auth_failures.0,
            login: self.rate_limit_login.0,
            telegram_link: self.rate_limit_telegram_link.0,
            max_pending_per_agent: self.max_pending_per_agent,
            trust_forwarded_for: self.trust_forwarded_for,
            ..Limits::default()
        }
    }
}

/// Timeouts, the storage cap, proxies and session age of `agent-otp serve` (see docs/limits.md
/// and docs/operations.md). Durations are `N` followed by `ms`, `s`, `m`, `h` or `d`.
#[derive(clap::Args, Debug, Clone)]
pub struct BoundsArgs {
    /// Longest wait for a request's headers; a slower client gets 408 and is disconnected.
    #[arg(long, env = "AGENT_OTP_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Longest wait for a request's whole body after its headers; slower gets 408, disconnected.
    #[arg(long, env = "AGENT_OTP_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Bytes of new requests one agent may have stored per period, like 8MiB/h (at least 64KiB
    /// per period), or off.
    #[arg(long, env = "AGENT_OTP_MAX_STORED_PER_AGENT", default_value = "8MiB/h", value_parser = parse_byte_rate)]
    pub max_stored_per_agent: ByteRateArg,
    /// Reverse proxies (comma-separated CIDR ranges, e.g. 10.0.0.0/8,::1) whose X-Forwarded-For
    /// entries are walked past from the right; implies --trust-forwarded-for for connections
    /// from them, and ignores the header on any other connection.
    #[arg(long, env = "AGENT_OTP_TRUSTED_PROXIES", value_parser = parse_proxies)]
    pub trusted_proxies: Option<ProxiesArg>,
    /// How long a web session lasts from login.
    #[arg(long, env = "AGENT_OTP_SESSION_MAX_AGE", default_value = "7d", value_parser = parse_duration)]
    pub session_max_age: Duration,
}

impl BoundsArgs {
    fn apply(self, limits: &mut Limits) {
        limits.header_timeout = self.header_timeout;
        limits.body_timeout = self.body_timeout;
        limits.stored_bytes_per_agent = self.max_stored_per_agent.0;
        limits.trusted_proxies = self.trusted_proxies.map(|p| p.0).unwrap_or_default();
        limits.session_max_age = self.session_max_age;
    }
}

/// `--max-stored-per-agent`'s value; `None` is `off`.
#[derive(Debug, Clone, Copy)]
pub struct ByteRateArg(pub Option<ByteRate>);

fn parse_byte_rate(text: &str) -> Result<ByteRateArg, String> {
    let rate = ByteRate::parse(text)?;
    if rate.is_some_and(|r| r.bytes < crate::wire::MAX_BODY_BYTES as u64) {
        return Err(format!(
            "{text:?} is less than one largest request body ({} KiB) per period",
            crate::wire::MAX_BODY_BYTES >> 10
        ));
    }
    Ok(ByteRateArg(rate))
}

/// `--trusted-proxies`'s value.
#[derive(Debug, Clone)]
pub struct ProxiesArg(pub Vec<IpNet>);

fn parse_proxies(text: &str) -> Result<ProxiesArg, String> {
    IpNet::parse_list(text).map(ProxiesArg)
}

/// Parses a duration such as `10s`, `500ms`, `15m`, `12h` or `30d` (1 ms to 10 years).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let err = || format!("{text:?} is not a duration like 10s, 15m, 12h or 30d");
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..digits].parse().map_err(|_| err())?;
    let ms: u64 = match text[digits..].trim() {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(err()),
    };
    let total = n.checked_mul(ms).ok_or_else(err)?;
    if !(1..=10 * 366 * 86_400_000).contains(&total) {
        return Err(format!("{text:?} must be between 1ms and 10 years"));
    }
    Ok(Duration::from_millis(total))
}

/// A rate flag's value; `None` is `off`. (A newtype, because clap reads a bare `Option` field
/// as "flag may be absent".)
#[derive(Debug, Clone, Copy)]
pub struct RateArg(pub Option<Rate>);

fn parse_rate(text: &str) -> Result<RateArg, String> {
    Rate::parse(text).map(RateArg)
}

/// Telegram flags of `agent-otp serve`. The bot token is read only from the environment
/// (`AGENT_OTP_TELEGRAM_TOKEN` or `AGENT_OTP_TELEGRAM_TOKEN_FILE`), never from a flag, so it does
/// not show in the process list; without it the service runs without Telegram.
#[derive(clap::Args, Debug, Clone)]
pub struct TelegramArgs {
    /// Base URL of the Telegram Bot API (Telegram's, or a self-hosted Bot API server).
    #[arg(long = "telegram-api-url", env = "AGENT_OTP_TELEGRAM_API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// Telegram user ids (comma-separated numbers) that are approvers without linking.
    #[arg(long = "telegram-approvers", env = "AGENT_OTP_TELEGRAM_APPROVERS")]
    pub approvers: Option<String>,
}

/// A setting that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "invalid public URL {url:?}: {why} (set --public-url or AGENT_OTP_PUBLIC_URL to e.g. https://otp.example.com)"
    )]
    PublicUrl { url: String, why: &'static str },
    #[error(
        "cannot create data directory {path}: {source} (set --data-dir or AGENT_OTP_DATA_DIR to a writable directory)"
    )]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no agent-otp database at {} (data directory {}); point this command at the server's \
         data directory with --data-dir DIR or AGENT_OTP_DATA_DIR=DIR (the same setting \
         `agent-otp serve` runs with), or create a new one with `agent-otp init --data-dir DIR`",
        .db.display(), .data_dir.display()
    )]
    NoDatabase { db: PathBuf, data_dir: PathBuf },
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("{name}: {why}")]
    Secret { name: String, why: String },
    #[error(
        "invalid AGENT_OTP_TELEGRAM_APPROVERS {value:?}: {why} (give numeric Telegram user ids separated by commas, e.g. 12345678,87654321)"
    )]
    TelegramApprovers { value: String, why: String },
    #[error(
        "invalid Telegram API URL {url:?}: must start with http:// or https:// (set --telegram-api-url or AGENT_OTP_TELEGRAM_API_URL, default {DEFAULT_API_URL})"
    )]
    TelegramApiUrl { url: String },
}

/// Everything `app::start` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Validated, without a trailing slash; `None` means `http://<bound address>`.
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    pub policies: PathBuf,
    /// How often the sweeper expires lapsed requests.
    pub sweep_interval: Duration,
    /// How long the policy directory must be quiet before a change is reloaded.
    pub policy_debounce: Duration,
    pub clock: Clock,
    /// Telegram approvals; `None` when no bot token is set.
    pub telegram: Option<TelegramConfig>,
    /// Rate limits and the pending-requests cap.
    pub limits: Limits,
    /// How often the server writes a signed checkpoint of the audit chain while it grows.
    pub audit_checkpoint_interval: Duration,
    /// How long finished requests are kept before their rows are pruned (their audit events
    /// stay); `None` keeps them forever.
    pub retention: Option<Duration>,
}

impl Config {
    /// Defaults for a data directory: loopback on an ephemeral port, `policies.yaml` inside it.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        let data_dir = data_dir.into();
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            policies: data_dir.join("policies.yaml"),
            data_dir,
            sweep_interval: Duration::from_secs(1),
            policy_debounce: Duration::from_millis(250),
            clock: Clock::System,
            telegram: None,
            limits: Limits::default(),
            audit_checkpoint_interval: Duration::from_secs(60),
            retention: Some(Duration::from_secs(DEFAULT_RETENTION_DAYS * 86_400)),
        }
    }

    /// Validates `serve` flags into a config.
    pub fn from_args(args: ServeArgs) -> Result<Config, ConfigError> {
        let public_url = args
            .public_url
            .as_deref()
            .map(validate_public_url)
            .transpose()?;
        let telegram = telegram_config(&args.telegram, |k| std::env::var(k).ok())?;
        let mut limits = args.limits.into_limits();
        args.bounds.apply(&mut limits);
        Ok(Config {
            listen: args.listen,
            public_url,
            policies: args.policies,
            telegram,
            limits,
            audit_checkpoint_interval: Duration::from_secs(args.audit.audit_checkpoint_secs),
            retention: (args.audit.retention_days > 0)
                .then(|| Duration::from_secs(args.audit.retention_days.saturating_mul(86_400))),
            ..Config::new(args.data.data_dir)
        })
    }

    /// The database file inside the data directory.
    pub fn db_path(&self) -> PathBuf {
        db_path(&self.data_dir)
    }
}

/// The database file inside `data_dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent-otp.db")
}

/// Creates `data_dir` if needed and opens its database, creating that too (`serve`, `init`).
pub fn open_store(data_dir: &Path) -> Result<Store, ConfigError> {
    std::fs::create_dir_all(data_dir).map_err(|source| ConfigError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    Ok(Store::open(&db_path(data_dir))?)
}

/// Opens the database in `data_dir`, which must already exist: creates neither the directory
/// nor the file (the error says where it looked and how to point elsewhere).
pub fn open_existing_store(data_dir: &Path) -> Result<Store, ConfigError> {
    let db = absolute(&db_path(data_dir));
    match Store::open_existing(&db) {
        Ok(store) => Ok(store),
        Err(_) if !db.is_file() => Err(ConfigError::NoDatabase {
            db,
            data_dir: data_dir.to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// `path` made absolute against the working directory (unchanged if that cannot be read).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Checks a public URL and drops any trailing slash.
pub fn validate_public_url(url: &str) -> Result<String, ConfigError> {
    let err = |why| ConfigError::PublicUrl {
        url: url.to_owned(),
        why,
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| err("must start with http:// or https://"))?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(err("has no host"));
    }
    if rest.contains(['?', '#', ' ']) {
        return Err(err("must not contain a query, fragment or spaces"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Reads a secret from `name`, or from the file named by `<name>_FILE` (trailing whitespace
/// dropped). Setting both is an error; an empty value counts as unset.
pub fn secret_from_env(
    name: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    let err = |why: String| ConfigError::Secret {
        name: name.to_owned(),
        why,
    };
    let file_var = format!("{name}_FILE");
    let value = env(name).filter(|v| !v.is_empty());
    let file = env(&file_var).filter(|v| !v.is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(err(format!("set either {name} or {file_var}, not both"))),
        (Some(v), None) => Ok(Some(Secret::new(v.trim()))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("cannot read {file_var}={path}: {e}")))?;
            let text = text.trim();
            if text.is_empty() {
                return Err(err(format!("the file {path} named by {file_var} is empty")));
            }
            Ok(Some(Secret::new(text)))
        }
        (None, None) => Ok(None),
    }
}

/// The Telegram settings, or `None` when no bot token is set.
pub fn telegram_config(
    args: &TelegramArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<TelegramConfig>, ConfigError> {
    let Some(token) = secret_from_env(TELEGRAM_TOKEN_ENV, env)? else {
        return Ok(None);
    };
    let looks_right = token.expose().split_once(':').is_some_and(|(id, rest)| {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty()
    });
    if !looks_right {
        return Err(ConfigError::Secret {
            name: TELEGRAM_TOKEN_ENV.to_owned(),
            why: "does not look like a bot token (BotFather gives one like 123456789:AAE…)"
                .to_owned(),
        });
    }
    let url = args.api_url.trim_end_matches('/');
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError::TelegramApiUrl {
            url: url.to_owned(),
        });
    }
    let approvers = match &args.approvers {
        Some(list) => parse_approvers(list)?,
        None => Vec::new(),
    };
    Ok(Some(TelegramConfig {
        api_url: url.to_owned(),
        approvers,
        ..TelegramConfig::new(token)
    }))
}

fn parse_approvers(list: &str) -> Result<Vec<i64>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<i64>() {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(ConfigError::TelegramApprovers {
                value: list.to_owned(),
                why: format!("{s:?} is not a user id"),
            }),
        })
        .collect()
}

/// Logs a warning for each `AGENT_OTP_*` variable that nothing reads (usually a typo).
pub fn warn_unknown_env() {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let base = name.strip_suffix("_FILE").unwrap_or(name);
        // AGENT_OTP_BIN names the server binary for the test suites (crash test, SDKs).
        if name.starts_with("AGENT_OTP_") && !KNOWN_ENV.contains(&base) && name != "AGENT_OTP_BIN" {
            tracing::warn!(variable = name, "unknown environment variable ignored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_is_checked_and_normalized() {
        assert_eq!(
            validate_public_url("https://otp.example.com/").unwrap(),
            "https://otp.example.com"
        );
        assert_eq!(
            validate_public_url("http://10.0.0.2:8787").unwrap(),
            "http://10.0.0.2:8787"
        );
        for bad in ["otp.example.com", "https://", "https://x/?a=1", "ftp://x"] {
            let e = validate_public_url(bad).unwrap_err().to_string();
            assert!(e.contains("AGENT_OTP_PUBLIC_URL"), "{e}");
        }
    }

    #[test]
    fn limit_flags_parse_into_limits() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            limits: LimitArgs,
        }
        use clap::Parser;
        let defaults = Cli::try_parse_from(["x"]).unwrap().limits.into_limits();
        let d = Limits::default();
        assert_eq!(defaults.agent, d.agent);
        assert_eq!(defaults.auth_failures, d.auth_failures);
        assert_eq!(defaults.login, d.login);
        assert_eq!(defaults.telegram_link, d.telegram_link);
        assert_eq!(defaults.max_pending_per_agent, d.max_pending_per_agent);
        let set = Cli::try_parse_from([
            "x",
            "--rate-limit-agent",
            "off",
            "--rate-limit-login",
            "3/h",
            "--max-pending-per-agent",
            "0",
            "--trust-forwarded-for",
        ])
        .unwrap()
        .limits
        .into_limits();
        assert_eq!(set.agent, None);
        assert_eq!(set.login, Rate::parse("3/h").unwrap());
        assert_eq!(set.max_pending_per_agent, 0);
        assert!(set.trust_forwarded_for);
        let bad = Cli::try_parse_from(["x", "--rate-limit-agent", "lots"]);
        assert!(bad.is_err());
    }

    #[test]
    fn bounds_flags_parse_into_limits() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bounds: BoundsArgs,
        }
        use clap::Parser;
        let mut limits = Limits::default();
        Cli::try_parse_from(["x"])
            .unwrap()
            .bounds
            .apply(&mut limits);
        let d = Limits::default();
        assert_eq!(limits.header_timeout, d.header_timeout);
        assert_eq!(limits.body_timeout, d.body_timeout);
        assert_eq!(limits.stored_bytes_per_agent, d.stored_bytes_per_agent);
        assert_eq!(limits.session_max_age, d.session_max_age);
        assert!(limits.trusted_proxies.is_empty());
        Cli::try_parse_from([
            "x",
            "--body-timeout",
            "1500ms",
            "--max-stored-per-agent",
            "off",
            "--trusted-proxies",
            "10.0.0.0/8, ::1",
            "--session-max-age",
            "12h",
        ])
        .unwrap()
        .bounds
        .apply(&mut limits);
        assert_eq!(limits.body_timeout, Duration::from_millis(1500));
        assert_eq!(limits.stored_bytes_per_agent, None);
        assert_eq!(limits.trusted_proxies.len(), 2);
        assert_eq!(limits.session_max_age, Duration::from_secs(12 * 3600));
        for bad in [
            ["x", "--body-timeout", "soon"],
            ["x", "--max-stored-per-agent", "1KiB/h"],
            ["x", "--trusted-proxies", "10.0.0.0/99"],
            ["x", "--session-max-age", "0s"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn telegram_settings_from_env_and_files() {
        let args = TelegramArgs {
            api_url: "http://127.0.0.1:9/".into(),
            approvers: Some(" 11, 22,".into()),
        };
        let none = telegram_config(&args, |_| None).unwrap();
        assert!(none.is_none(), "no token: no Telegram");

        let env = |k: &str| (k == TELEGRAM_TOKEN_ENV).then(|| "123:abc".to_owned());
        let tg = telegram_config(&args, env).unwrap().unwrap();
        assert_eq!(tg.token.expose(), "123:abc");
        assert_eq!(
            format!("{tg:?}").matches("123:abc").count(),
            0,
            "Debug hides the token"
        );
        assert_eq!(tg.api_url, "http://127.0.0.1:9");
        assert_eq!(tg.approvers, [11, 22]);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "456:def\n").unwrap();
        let path = file.display().to_string();
        let env = |k: &str| (k == "AGENT_OTP_TELEGRAM_TOKEN_FILE").then(|| path.clone());
        let tg = telegram_config(&args, env).unwrap().unwrap();
        assert_eq!(tg.token.expose(), "456:def");

        let both = |_: &str| Some("1:x".to_owned());
        assert!(
            telegram_config(&args, both)
                .unwrap_err()
                .to_string()
                .contains("not both")
        );
        let bad = |k: &str| (k == TELEGRAM_TOKEN_ENV).then(|| "nope".to_owned());
        assert!(
            telegram_config(&args, bad)
                .unwrap_err()
                .to_string()
                .contains("BotFather")
        );
        let ids = TelegramArgs {
            approvers: Some("12,@bob".into()),
            ..args
        };
        let e = telegram_config(&ids, env).unwrap_err().to_string();
        assert!(e.contains("\"@bob\" is not a user id"), "{e}");
    }
}
