//! `agent-otp login`: issues a one-time web login link and prints it alone on stdout. The link's
//! base is `--public-url` / `AGENT_OTP_PUBLIC_URL`, or else the public URL the server last
//! started with (remembered in the database).

use std::process::ExitCode;

use super::LoginArgs;
use crate::clock::Clock;
use crate::config::validate_public_url;
use crate::domain::Actor;
use crate::login_links::{self, DEFAULT_TTL_SECS};
use crate::store::get_meta;

pub(super) fn run(args: LoginArgs) -> Result<ExitCode, String> {
    if let Some(next) = &args.next
        && !crate::login_links::is_local_path(next)
    {
        return Err(format!(
            "--next {next:?} must be a path on this server, e.g. /requests/<id>"
        ));
    }
    let store = args.data.open_store().map_err(|e| e.to_string())?;
    let public_url = match &args.public_url {
        Some(url) => validate_public_url(url).map_err(|e| e.to_string())?,
        None => store
            .read_blocking(|c| get_meta(c, "public_url"))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                "the server has never started with this data directory, so its address is \
                 unknown; pass --public-url or set AGENT_OTP_PUBLIC_URL"
                    .to_owned()
            })?,
    };
    let now = Clock::System.now();
    let link = store
        .write_blocking(|tx| {
            login_links::issue(
                tx,
                &args.name,
                args.next.as_deref(),
                &Actor::Operator,
                now,
                now.plus_secs(DEFAULT_TTL_SECS),
            )
        })
        .map_err(|e| e.to_string())?;
    eprintln!(
        "one-time login link for {:?}, valid for {} minutes:",
        args.name,
        DEFAULT_TTL_SECS / 60
    );
    println!("{}", login_links::url(&public_url, &link));
    super::operator::changed(&store);
    Ok(ExitCode::SUCCESS)
}
