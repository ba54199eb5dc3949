//! `agent-otp login`: issues a one-time web login link and prints it alone on stdout. The link's
//! base is `--public-url` / `AGENT_OTP_PUBLIC_URL`, or else the public URL the server last
//! started with (remembered in the database).

use std::process::ExitCode;

use super::LoginArgs;
use crate::clock::Clock;
use crate::config::validate_public_url;
use crate::domain::Actor;
use crate::service::login_links::{self, DEFAULT_TTL_SECS};

pub(super) async fn run(args: LoginArgs) -> Result<ExitCode, String> {
    if let Some(next) = &args.next
        && !crate::service::login_links::is_local_path(next)
    {
        return Err(format!(
            "--next {next:?} must be a path on this server, e.g. /requests/<id>"
        ));
    }
    let svc = super::operator::open(&args.data)?;
    let public_url = match &args.public_url {
        Some(url) => validate_public_url(url).map_err(|e| e.to_string())?,
        // What the server last started with ([`Service::offline`] reads it).
        None if !svc.public_url().is_empty() => svc.public_url().to_owned(),
        None => {
            return Err(
                "the server has never started with this data directory, so its \
                        address is unknown; pass --public-url or set AGENT_OTP_PUBLIC_URL"
                    .to_owned(),
            );
        }
    };
    let expires = Clock::System.now().plus_secs(DEFAULT_TTL_SECS);
    let link = svc
        .issue_login_link(Actor::Operator, &args.name, args.next.as_deref(), expires)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "one-time login link for {:?}, valid for {} minutes:",
        args.name,
        DEFAULT_TTL_SECS / 60
    );
    println!("{}", login_links::url(&public_url, &link));
    super::operator::changed(&svc);
    Ok(ExitCode::SUCCESS)
}
