//! `runnel-cluster`: the local-cluster launcher behind `scripts/cluster`. Parses the command
//! line and maps outcomes to exit codes; the work is in [`launcher`].

mod launcher;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use launcher::{Signal, Target};

/// Runs a local Runnel cluster (etcd and brokers) on free loopback ports, in detached
/// processes that outlive this command. State, data and logs live in DIR; `DIR/cluster.env`
/// is a shell-sourceable description of the running cluster.
#[derive(Debug, Parser)]
#[command(name = "runnel-cluster", version)]
struct Cli {
    /// Directory holding the cluster's state, data and logs.
    #[arg(long, global = true, env = "RUNNEL_DIR", default_value = ".runnel")]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts etcd and the brokers (the same ports and data as before when DIR holds a
    /// cluster), waits until they are ready and writes DIR/cluster.env.
    Up {
        /// Number of brokers (default: as many as DIR already has, else 1). May grow a cluster.
        #[arg(long)]
        brokers: Option<u32>,
        /// Broker executable (default: runnel-broker next to this executable).
        #[arg(long, env = "RUNNEL_BROKER_BIN")]
        broker_bin: Option<PathBuf>,
        /// Extra broker arguments, e.g. `-- --log-flush-interval-ms 100`; remembered in DIR.
        #[arg(last = true)]
        broker_args: Vec<String>,
    },
    /// Stops the brokers, then etcd (SIGTERM, then SIGKILL after a bound); keeps the data.
    Down,
    /// Shows each process, its pid and whether it is ready. Exits 3 unless all are.
    Status,
    /// Sends a signal to one broker (or `etcd`); after KILL or TERM waits until it is gone.
    Kill {
        /// A broker id, or `etcd`.
        target: Target,
        /// Signal to send.
        #[arg(long, value_enum, ignore_case = true, default_value = "KILL")]
        signal: Signal,
    },
    /// Starts one stopped broker (or `etcd`) again with its data and waits until it is ready.
    Start {
        /// A broker id, or `etcd`.
        target: Target,
        /// Broker executable (default: runnel-broker next to this executable).
        #[arg(long, env = "RUNNEL_BROKER_BIN")]
        broker_bin: Option<PathBuf>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Up {
            brokers,
            broker_bin,
            broker_args,
        } => launcher::up(&cli.dir, brokers, broker_bin, broker_args).await,
        Command::Down => launcher::down(&cli.dir).await,
        Command::Status => launcher::status(&cli.dir).await,
        Command::Kill { target, signal } => launcher::kill(&cli.dir, target, signal).await,
        Command::Start { target, broker_bin } => {
            launcher::start(&cli.dir, target, broker_bin).await
        }
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("runnel-cluster: {error}");
            ExitCode::FAILURE
        }
    }
}
