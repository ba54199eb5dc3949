//! Settings, layered defaults → environment (`AGENT_OTP_*`) → command-line flags (clap does the
//! layering), then validated into a [`Config`] with a hint on how to fix anything wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock::Clock;
use crate::store::{Store, StoreError};

/// Every environment variable the service reads; others starting `AGENT_OTP_` are warned about.
pub const KNOWN_ENV: &[&str] = &[
    "AGENT_OTP_LISTEN",
    "AGENT_OTP_PUBLIC_URL",
    "AGENT_OTP_DATA_DIR",
    "AGENT_OTP_POLICIES",
    "AGENT_OTP_URL",
    "AGENT_OTP_KEY",
    "AGENT_OTP_KEY_FILE",
];

/// Where the database lives; shared by `serve` and the operator commands.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Directory holding the SQLite database (created if missing).
    #[arg(long, env = "AGENT_OTP_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

impl DataArgs {
    /// Opens (creating and migrating) the database in the data directory.
    pub fn open_store(&self) -> Result<Store, ConfigError> {
        open_store(&self.data_dir)
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
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
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
    pub clock: Clock,
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
            clock: Clock::System,
        }
    }

    /// Validates `serve` flags into a config.
    pub fn from_args(args: ServeArgs) -> Result<Config, ConfigError> {
        let public_url = args
            .public_url
            .as_deref()
            .map(validate_public_url)
            .transpose()?;
        Ok(Config {
            listen: args.listen,
            public_url,
            policies: args.policies,
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

/// Creates `data_dir` if needed and opens its database.
pub fn open_store(data_dir: &Path) -> Result<Store, ConfigError> {
    std::fs::create_dir_all(data_dir).map_err(|source| ConfigError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    Ok(Store::open(&db_path(data_dir))?)
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

/// Logs a warning for each `AGENT_OTP_*` variable that nothing reads (usually a typo).
pub fn warn_unknown_env() {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let base = name.strip_suffix("_FILE").unwrap_or(name);
        if name.starts_with("AGENT_OTP_") && !KNOWN_ENV.contains(&base) {
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
}
