//! `runnel-bench`: produce, consume or GET load against Runnel brokers, with a
//! progress line a second on stderr and a summary (text or `--json`) on stdout.

use std::process::ExitCode;

use clap::Parser;
use runnel_bench::cli::{Cli, Command};
use runnel_bench::summary::Summary;
use runnel_bench::{consume, get, produce};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run = cli.command.run_args().clone();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = run.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runnel-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(summary) => {
            if run.json {
                println!("{}", summary.to_json_line());
            } else {
                println!("{summary}");
            }
            // A run in which nothing succeeded is a failed run.
            if summary.requests == 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("runnel-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<Summary, String> {
    match command {
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
        Command::Get(args) => get::run(args).await,
    }
}
