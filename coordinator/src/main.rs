//! `runnel-coordinator`: see the crate documentation.

use clap::Parser;
use runnel_coordinator::config::CoordinatorConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match runnel_common::config::args_with_config_file(std::env::args_os(), "RUNNEL_") {
        Ok(args) => args,
        Err(message) => {
            eprintln!("runnel-coordinator: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let config = CoordinatorConfig::parse_from(args);
    runnel_common::telemetry::init(config.log_format);
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(listen = %config.listen, %error, "cannot listen");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runnel_coordinator::run(config, listener, runnel_common::http::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            std::process::ExitCode::FAILURE
        }
    }
}
