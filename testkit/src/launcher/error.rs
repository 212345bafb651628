//! Why a launcher command failed, worded as advice for the person at the terminal.

use std::path::PathBuf;
use std::time::Duration;

/// A launcher command's failure.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Starting, probing or stopping a process failed.
    #[error(transparent)]
    Testkit(#[from] runnel_testkit::Error),
    /// `up` found processes of this cluster still running.
    #[error(
        "the cluster in {} is already running ({running}); run `scripts/cluster down --dir {0}` first, or `scripts/cluster start <id|coordinator-<id>>` for a stopped broker or coordinator",
        dir.display()
    )]
    AlreadyRunning {
        /// The cluster directory.
        dir: PathBuf,
        /// What runs, e.g. `etcd pid 12, broker 1 pid 13`.
        running: String,
    },
    /// The directory holds no cluster.
    #[error("no cluster in {} (no cluster.json); create one with `scripts/cluster up --dir {0}`", dir.display())]
    NoCluster {
        /// The cluster directory.
        dir: PathBuf,
    },
    /// `up --brokers N` asked for fewer brokers than the directory holds.
    #[error("{} holds {existing} brokers and `up` cannot remove brokers; use `--brokers {existing}` or another --dir", dir.display())]
    CannotShrink {
        /// The cluster directory.
        dir: PathBuf,
        /// Brokers it holds.
        existing: usize,
    },
    /// The named broker does not exist.
    #[error("no broker {id} in this cluster (it has brokers 1..={count})")]
    UnknownBroker {
        /// The id asked for.
        id: u32,
        /// Brokers it has.
        count: usize,
    },
    /// The named coordinator does not exist.
    #[error("no coordinator {id} in this cluster ({})", coordinator_range(*count))]
    UnknownCoordinator {
        /// The id asked for.
        id: u32,
        /// Coordinators it has.
        count: usize,
    },
    /// A service executable is not where it was looked for.
    #[error(
        "the {service} executable {binary} is missing (looked in {looked_in}); build it with `cargo build -p {binary}` (scripts/cluster does when the workspace has it) or pass --{service}-bin"
    )]
    MissingBinary {
        /// `broker` or `coordinator`.
        service: &'static str,
        /// Its file name, which is also its package name, e.g. `runnel-coordinator`.
        binary: &'static str,
        /// Where it was looked for.
        looked_in: String,
    },
    /// `start` was asked for a process that runs.
    #[error("{name} is already running as pid {pid}")]
    AlreadyStarted {
        /// `etcd`, `broker <id>` or `coordinator <id>`.
        name: String,
        /// Its pid.
        pid: u32,
    },
    /// A signal was asked for a process that does not run.
    #[error("{name} is not running")]
    NotRunning {
        /// `etcd`, `broker <id>` or `coordinator <id>`.
        name: String,
    },
    /// A process outlived SIGTERM's wait.
    #[error("{name} (pid {pid}) is still running {waited:?} after SIGTERM")]
    StillRunning {
        /// `etcd`, `broker <id>` or `coordinator <id>`.
        name: String,
        /// Its pid.
        pid: u32,
        /// How long it was given.
        waited: Duration,
    },
    /// Another launcher command holds the directory's lock.
    #[error("another scripts/cluster command is working on {}; try again when it is done", dir.display())]
    Busy {
        /// The cluster directory.
        dir: PathBuf,
    },
    /// A file of the cluster directory could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `cluster.json` does not parse.
    #[error("{} is not a cluster state file ({source}); move it away to start over", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

fn coordinator_range(count: usize) -> String {
    match count {
        0 => "it has none; `up --coordinators N` adds them".to_owned(),
        count => format!("it has coordinators 1..={count}"),
    }
}
