//! The error type of the testkit: what failed, with the log tail that explains it. It holds no
//! logic beyond formatting.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Result of testkit operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why starting, stopping or probing a process failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or process operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done, e.g. `create data dir /tmp/x`.
        action: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The etcd binary is not installed.
    #[error("etcd not found at {}; install it with `apt-get install -y etcd-server`", path.display())]
    EtcdMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A sibling binary was not found by [`crate::find_bin`].
    #[error("binary {name} not found in {searched}; build it first (cargo build -p <its package>)")]
    BinaryNotFound {
        /// The binary's file name.
        name: String,
        /// The directories searched, comma-separated.
        searched: String,
    },
    /// An operation needed a running process.
    #[error("{name} is not running")]
    NotRunning {
        /// The process's name, e.g. `broker-2`.
        name: String,
    },
    /// The process exited while it was awaited to become ready.
    #[error("{name} exited ({status}) before it was ready; {log}")]
    ExitedEarly {
        /// The process's name.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// The end of its log.
        log: Box<LogTail>,
    },
    /// The process did not answer as ready in time.
    #[error("{name} not ready at {url} after {waited:?} (last answer: {last}); {log}")]
    NotReady {
        /// The process's name.
        name: String,
        /// The URL polled.
        url: String,
        /// How long it was polled.
        waited: Duration,
        /// The last status, body or connection error seen.
        last: String,
        /// The end of its log.
        log: Box<LogTail>,
    },
    /// The process ignored SIGTERM for too long and was SIGKILLed.
    #[error("{name} did not exit within {waited:?} of SIGTERM and was killed")]
    StopTimedOut {
        /// The process's name.
        name: String,
        /// How long it was given.
        waited: Duration,
    },
    /// An HTTP answer did not have the expected shape.
    #[error("unexpected answer from {url}: {detail}")]
    BadResponse {
        /// The URL asked.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// Starting a test cluster failed; its files were kept for inspection.
    #[error("{source} (logs and data kept in {})", root.display())]
    ClusterStart {
        /// The kept root directory.
        root: PathBuf,
        /// What failed.
        source: Box<Error>,
    },
}

/// The end of a process's log, carried by errors so failures explain themselves.
#[derive(Debug, Clone)]
pub struct LogTail {
    /// The log file.
    pub path: PathBuf,
    /// Its last lines.
    pub lines: String,
}

impl std::fmt::Display for LogTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "last lines of {}:\n{}", self.path.display(), self.lines)
    }
}

impl Error {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }
}
