//! [`ServiceProcess`]: one service binary run as a real process, with its arguments, data dir
//! and log file, so a test can SIGKILL, SIGSTOP and restart it keeping its data. It knows
//! nothing about what the service does beyond an HTTP readiness path.

use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::error::{Error, LogTail, Result};
use crate::logs::{TAIL_LINES, tail};
use crate::pid::{Termination, terminate};
use crate::ready::{PollFailure, poll, status_ok};
use crate::spawn::{Launch, spawn};

/// Default bound on [`ServiceProcess::wait_ready`].
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time [`ServiceProcess::terminate_and_wait`] gives SIGTERM before SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How to run one service process. Fields are public so callers can adjust any of them.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Name in messages and log headers, e.g. `broker-2`.
    pub name: String,
    /// The executable.
    pub binary: PathBuf,
    /// Arguments, the same on every start.
    pub args: Vec<OsString>,
    /// Environment added to this process's own, minus every inherited `RUNNEL_*` variable.
    pub env: Vec<(OsString, OsString)>,
    /// Data directory; created before each start, kept across restarts.
    pub data_dir: PathBuf,
    /// File receiving stdout and stderr, appended to across restarts.
    pub log_file: PathBuf,
    /// Base URL of its HTTP listener, e.g. `http://127.0.0.1:40123`.
    pub base_url: String,
    /// Attached (tests) or detached (launcher).
    pub launch: Launch,
    /// Bound on [`ServiceProcess::wait_ready`].
    pub ready_timeout: Duration,
    /// Time SIGTERM gets before SIGKILL in [`ServiceProcess::terminate_and_wait`].
    pub stop_timeout: Duration,
}

impl ServiceSpec {
    /// Describes an attached process with no arguments and default timeouts.
    pub fn new(
        name: impl Into<String>,
        binary: impl Into<PathBuf>,
        base_url: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        log_file: impl Into<PathBuf>,
    ) -> Self {
        ServiceSpec {
            name: name.into(),
            binary: binary.into(),
            args: Vec::new(),
            env: Vec::new(),
            data_dir: data_dir.into(),
            log_file: log_file.into(),
            base_url: base_url.into(),
            launch: Launch::Attached,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
        }
    }

    /// Appends arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }
}

/// A service process that can be started, signalled and restarted with the same arguments
/// and data dir. An attached one is SIGKILLed on drop, and its log tail printed to stderr if
/// the thread is panicking.
#[derive(Debug)]
pub struct ServiceProcess {
    spec: ServiceSpec,
    child: Option<Child>,
    pid: Option<u32>,
    exit_status: Option<ExitStatus>,
}

impl ServiceProcess {
    /// Prepares a process; nothing runs until [`start`](Self::start).
    pub fn new(spec: ServiceSpec) -> Self {
        ServiceProcess {
            spec,
            child: None,
            pid: None,
            exit_status: None,
        }
    }

    /// Spawns the process without waiting for readiness.
    ///
    /// # Errors
    /// When it is already running, or its directories, log file or executable fail.
    pub fn start(&mut self) -> Result<()> {
        if self.is_running() {
            return Err(Error::io(
                format!("start {}", self.spec.name),
                std::io::Error::other(format!("already running as pid {}", self.pid.unwrap_or(0))),
            ));
        }
        let spec = &self.spec;
        // 0700 because etcd refuses (3.5) or warns about (3.4) a data dir others can read.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&spec.data_dir)
            .map_err(|source| Error::io(format!("create {}", spec.data_dir.display()), source))?;
        if let Some(logs) = spec.log_file.parent() {
            std::fs::create_dir_all(logs)
                .map_err(|source| Error::io(format!("create {}", logs.display()), source))?;
        }
        let log_error = |source| Error::io(format!("open log {}", spec.log_file.display()), source);
        let mut stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_file)
            .map_err(log_error)?;
        writeln!(
            stdout,
            "--- starting {}: {} {:?}",
            spec.name,
            spec.binary.display(),
            spec.args
        )
        .map_err(log_error)?;
        let stderr = stdout.try_clone().map_err(log_error)?;

        let mut command = Command::new(&spec.binary);
        command
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // A developer's sourced cluster.env must not leak into the processes under test.
        for (key, _) in std::env::vars_os() {
            if key.as_bytes().starts_with(b"RUNNEL_") {
                command.env_remove(key);
            }
        }
        command.envs(spec.env.iter().map(|(key, value)| (key, value)));
        let child = spawn(command, spec.launch).map_err(|source| {
            Error::io(
                format!("spawn {} ({})", spec.name, spec.binary.display()),
                source,
            )
        })?;
        self.pid = Some(child.id());
        self.child = Some(child);
        self.exit_status = None;
        Ok(())
    }

    /// Sends `signal` (e.g. `libc::SIGSTOP`) to the process. SIGKILL is better sent with
    /// [`kill`](Self::kill), which also reaps it.
    ///
    /// # Errors
    /// [`Error::NotRunning`] when it has exited.
    pub fn signal(&mut self, signal: libc::c_int) -> Result<()> {
        let pid = self.running_pid()?;
        crate::pid::send_signal(pid, signal)
            .map_err(|source| Error::io(format!("signal {} (pid {pid})", self.spec.name), source))
    }

    /// SIGKILLs the process and reaps it; does nothing when it is not running.
    ///
    /// # Errors
    /// When the kill or the wait fails.
    pub fn kill(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        if self.exit_status.is_none() {
            // An error means it already exited; the wait below collects it.
            let _ = child.kill();
            let status = child
                .wait()
                .map_err(|source| Error::io(format!("wait for {}", self.spec.name), source))?;
            self.exit_status = Some(status);
        }
        Ok(())
    }

    /// Sends SIGTERM (and SIGCONT, in case it is stopped), waits for the exit up to the
    /// spec's stop timeout, and returns how it exited.
    ///
    /// # Errors
    /// [`Error::NotRunning`] when it was not running; [`Error::StopTimedOut`] when it had to
    /// be SIGKILLed.
    pub async fn terminate_and_wait(&mut self) -> Result<ExitStatus> {
        let pid = self.running_pid()?;
        let termination = terminate(pid, None, self.spec.stop_timeout).await;
        self.kill()?;
        match (termination, self.exit_status) {
            (Termination::Exited, Some(status)) => Ok(status),
            _ => Err(Error::StopTimedOut {
                name: self.spec.name.clone(),
                waited: self.spec.stop_timeout,
            }),
        }
    }

    /// Starts the process again with the same arguments and data dir, SIGKILLing it first if
    /// it is still running (a restart models a crash; call
    /// [`terminate_and_wait`](Self::terminate_and_wait) first for a clean one). Does not wait
    /// for readiness.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.start()
    }

    /// Polls `GET <base_url><path>` until it answers 200, bounded by the spec's ready timeout.
    ///
    /// # Errors
    /// [`Error::NotRunning`] when it was never started, [`Error::ExitedEarly`] when it has
    /// exited, [`Error::NotReady`] on timeout; the last two carry the log tail.
    pub async fn wait_ready(&mut self, path: &str) -> Result<()> {
        if self.child.is_none() {
            return Err(Error::NotRunning {
                name: self.spec.name.clone(),
            });
        }
        let url = self.url(path);
        let timeout = self.spec.ready_timeout;
        let outcome = poll(&url, timeout, status_ok, || self.poll_exit()).await;
        outcome.map_err(|failure| self.poll_failure(failure, url, timeout))
    }

    /// Returns whether the process is running (a stopped one counts as running).
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.poll_exit().is_none()
    }

    /// Returns the pid of the most recently spawned process, running or not.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Returns how the most recent process exited, once it has been seen to exit.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit_status
    }

    /// Returns the base URL, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> &str {
        &self.spec.base_url
    }

    /// Returns `base_url` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.spec.base_url)
    }

    /// Returns the name, e.g. `broker-2`.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Returns the data directory.
    pub fn data_dir(&self) -> &Path {
        &self.spec.data_dir
    }

    /// Returns the log file.
    pub fn log_file(&self) -> &Path {
        &self.spec.log_file
    }

    /// Returns the spec it runs with.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// Returns the last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.spec.log_file, lines)
    }

    /// Reaps the process if it exited and returns its exit status.
    pub(crate) fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.exit_status.is_none()
            && let Some(child) = self.child.as_mut()
        {
            // An error here means there is no such child left to wait for.
            self.exit_status = child.try_wait().unwrap_or(None);
        }
        self.exit_status
    }

    pub(crate) fn poll_failure(
        &self,
        failure: PollFailure,
        url: String,
        waited: Duration,
    ) -> Error {
        let name = self.spec.name.clone();
        let log = Box::new(LogTail {
            path: self.spec.log_file.clone(),
            lines: self.log_tail(TAIL_LINES),
        });
        match failure {
            PollFailure::Exited(status) => Error::ExitedEarly { name, status, log },
            PollFailure::TimedOut(last) => Error::NotReady {
                name,
                url,
                waited,
                last,
                log,
            },
        }
    }

    fn running_pid(&mut self) -> Result<u32> {
        let running = self.is_running();
        match self.pid {
            Some(pid) if running => Ok(pid),
            _ => Err(Error::NotRunning {
                name: self.spec.name.clone(),
            }),
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if self.spec.launch == Launch::Detached {
            return;
        }
        let _ = self.kill();
        if std::thread::panicking() && self.child.is_some() {
            eprintln!(
                "----- last {TAIL_LINES} lines of {} ({}) -----\n{}\n----- end of {} -----",
                self.spec.name,
                self.spec.log_file.display(),
                self.log_tail(TAIL_LINES),
                self.spec.name
            );
        }
    }
}
