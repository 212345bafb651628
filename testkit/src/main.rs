//! `runnel-cluster`: the local-cluster launcher behind `scripts/cluster`. Parses the command
//! line and maps outcomes to exit codes; the work is in [`launcher`].

mod launcher;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use launcher::{Signal, Target, UpOptions};

/// Runs a local Runnel cluster (etcd, brokers, coordinators) on free loopback ports, in detached
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
    /// Starts etcd, the brokers and, once those are ready, the coordinators (the same ports
    /// and data as before when DIR holds a cluster), waits until all are ready and writes
    /// DIR/cluster.env.
    Up {
        /// Number of brokers (default: as many as DIR already has, else 1). May grow a cluster.
        #[arg(long)]
        brokers: Option<u32>,
        /// Broker executable (default: runnel-broker next to this executable).
        #[arg(long, env = "RUNNEL_BROKER_BIN")]
        broker_bin: Option<PathBuf>,
        /// Number of coordinators (default: as many as DIR already has, else 1).
        #[arg(long)]
        coordinators: Option<u32>,
        /// Coordinator executable (default: runnel-coordinator next to this executable).
        #[arg(long, env = "RUNNEL_COORDINATOR_BIN")]
        coordinator_bin: Option<PathBuf>,
        /// An extra coordinator argument (repeat for several, e.g.
        /// `--coordinator-arg=--session-timeout-ms --coordinator-arg=10000`); remembered in DIR.
        #[arg(
            long = "coordinator-arg",
            value_name = "ARG",
            allow_hyphen_values = true
        )]
        coordinator_args: Vec<String>,
        /// Extra broker arguments, e.g. `-- --log-flush-interval-ms 100`; remembered in DIR.
        #[arg(last = true)]
        broker_args: Vec<String>,
    },
    /// Stops the coordinators, then the brokers, then etcd (SIGTERM, then SIGKILL after a
    /// bound); keeps the data.
    Down,
    /// Shows each process, its pid and whether it is ready. Exits 3 unless all are.
    Status,
    /// Sends a signal to one broker, coordinator or etcd; after KILL or TERM waits until it is
    /// gone.
    Kill {
        /// A broker id, `coordinator-<id>` or `etcd`.
        target: Target,
        /// Signal to send.
        #[arg(long, value_enum, ignore_case = true, default_value = "KILL")]
        signal: Signal,
    },
    /// Starts one stopped broker, coordinator or etcd again with its data and waits until it
    /// is ready.
    Start {
        /// A broker id, `coordinator-<id>` or `etcd`.
        target: Target,
        /// Broker executable (default: runnel-broker next to this executable).
        #[arg(long, env = "RUNNEL_BROKER_BIN")]
        broker_bin: Option<PathBuf>,
        /// Coordinator executable (default: runnel-coordinator next to this executable).
        #[arg(long, env = "RUNNEL_COORDINATOR_BIN")]
        coordinator_bin: Option<PathBuf>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Up {
            brokers,
            broker_bin,
            coordinators,
            coordinator_bin,
            coordinator_args,
            broker_args,
        } => {
            let options = UpOptions {
                brokers,
                broker_bin,
                broker_args,
                coordinators,
                coordinator_bin,
                coordinator_args,
            };
            launcher::up(&cli.dir, options).await
        }
        Command::Down => launcher::down(&cli.dir).await,
        Command::Status => launcher::status(&cli.dir).await,
        Command::Kill { target, signal } => launcher::kill(&cli.dir, target, signal).await,
        Command::Start {
            target,
            broker_bin,
            coordinator_bin,
        } => launcher::start(&cli.dir, target, broker_bin, coordinator_bin).await,
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("runnel-cluster: {error}");
            ExitCode::FAILURE
        }
    }
}
