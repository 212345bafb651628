//! `runnel-bench`: produce, consume or GET load against Runnel brokers, with a
//! progress line a second on stderr and a summary (text or `--json`) on stdout;
//! and `failover`, which kills partition leaders under load and times the stall.

use std::process::ExitCode;

use clap::Parser;
use runnel_bench::cli::{Cli, Command};
use runnel_bench::summary::Summary;
use runnel_bench::{consume, failover, get, produce};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = cli.command.run_args().and_then(|r| r.threads);
    let json = cli.command.run_args().is_some_and(|r| r.json);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runnel-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Failover(args) = cli.command {
        return runtime.block_on(failover::main(args));
    }
    match runtime.block_on(dispatch(cli.command)) {
        Ok(summary) => {
            if json {
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
        Command::Failover(_) => Err("failover is not a load mode".into()),
    }
}
