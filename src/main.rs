//! The `agent-otp` binary: parses the command line and hands over to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // actix-server's own start and stop notices (workers, accept thread) say nothing
            // the start-up summary does not; RUST_LOG=info,actix_server=info brings them back.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: `docker logs`, journald and log files get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    agent_otp::cli::run(agent_otp::cli::Cli::parse()).await
}
