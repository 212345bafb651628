//! `runnel-bench`: produce, consume or GET load against Runnel brokers, with a
//! progress line a second on stderr and a summary (text or `--json`) on stdout;
//! `failover`, which kills partition leaders under load and times the stall; and `groups`,
//! the consumer-group measurements.

use std::process::ExitCode;

use clap::Parser;
use runnel_bench::cli::{Cli, Command, GroupsCommand};
use runnel_bench::groups::rounds::{self, Kind};
use runnel_bench::summary::Summary;
use runnel_bench::{consume, failover, get, groups, produce};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (threads, json) = match &cli.command {
        Command::Groups(g) => match &g.command {
            GroupsCommand::RestConsume(a) => (a.threads, a.json),
            _ => (
                cli.command.run_args().and_then(|r| r.threads),
                cli.command.run_args().is_some_and(|r| r.json),
            ),
        },
        other => (
            other.run_args().and_then(|r| r.threads),
            other.run_args().is_some_and(|r| r.json),
        ),
    };
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
    let command = match cli.command {
        Command::Failover(args) => return runtime.block_on(failover::main(args)),
        Command::Groups(g) => match g.command {
            GroupsCommand::Join(a) => {
                return runtime.block_on(rounds::main(Kind::Join, a.target, a.member));
            }
            GroupsCommand::Failover(a) => {
                return runtime.block_on(rounds::main(Kind::Failover, a.target, a.member));
            }
            other => Command::Groups(runnel_bench::cli::GroupsArgs { command: other }),
        },
        other => other,
    };
    match runtime.block_on(dispatch(command)) {
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
        Command::Groups(g) => match g.command {
            GroupsCommand::Commit(args) => groups::commit::run(args).await,
            GroupsCommand::RestConsume(args) => groups::rest::run(args).await,
            GroupsCommand::Join(_) | GroupsCommand::Failover(_) => {
                Err("groups join and failover are not load modes".into())
            }
        },
        Command::Failover(_) => Err("failover is not a load mode".into()),
    }
}
