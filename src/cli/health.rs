//! `agent-otp health`: asks a running server's `GET /health` and says, in its exit code, whether
//! it answered `ok` in time. It is the container's `HEALTHCHECK` (the final image has no curl), so
//! it needs nothing but the binary, talks to the server directly (never through a proxy) and gives
//! up quickly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

/// Flags of `agent-otp health`.
#[derive(clap::Args, Debug)]
pub struct HealthArgs {
    /// Base URL of the server to check (default: the `serve` listen address, with 0.0.0.0 or
    /// [::] replaced by loopback).
    #[arg(long)]
    pub url: Option<String>,
    /// The address `serve` listens on; used when --url is not given.
    #[arg(long, env = "AGENT_OTP_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout: u64,
}

/// Exit 0 when the server answers `{"success":true,"data":{"status":"ok"}}`, 1 otherwise.
pub(super) async fn run(args: HealthArgs) -> Result<ExitCode, String> {
    let url = health_url(args.url.as_deref(), args.listen);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("unhealthy: {url}: {e}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("unhealthy: {url} answered {status} without JSON: {e}"))?;
    let data = &body["data"];
    if !status.is_success() || body["success"] != Value::Bool(true) || data["status"] != "ok" {
        return Err(format!("unhealthy: {url} answered {status}: {body}"));
    }
    // The policy is told only to an admin (`/health` with credentials); this check has none.
    println!("ok: {url}");
    Ok(ExitCode::SUCCESS)
}

/// `<base>/health`, the base being `--url` or `http://<listen address>`.
fn health_url(url: Option<&str>, listen: SocketAddr) -> String {
    let base = match url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => format!("http://{}", reachable(listen)),
    };
    if base.ends_with("/health") {
        base
    } else {
        format!("{base}/health")
    }
}

/// A listen address one can connect to: the wildcard addresses become loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_comes_from_the_flag_or_the_listen_address() {
        let listen = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            health_url(None, listen("0.0.0.0:8787")),
            "http://127.0.0.1:8787/health"
        );
        assert_eq!(
            health_url(None, listen("[::]:9000")),
            "http://[::1]:9000/health"
        );
        assert_eq!(
            health_url(None, listen("10.1.2.3:80")),
            "http://10.1.2.3:80/health"
        );
        assert_eq!(
            health_url(Some("https://otp.example.com/"), listen("0.0.0.0:1")),
            "https://otp.example.com/health"
        );
        assert_eq!(
            health_url(Some("http://h:1/health"), listen("0.0.0.0:1")),
            "http://h:1/health"
        );
    }
}
