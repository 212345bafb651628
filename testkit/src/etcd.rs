//! [`Etcd`]: Debian's etcd 3.4 as a single-member cluster on two free loopback ports, with a
//! data dir that survives kills and restarts. Health is `GET /health` answering
//! `{"health":"true"}`. It must not know Runnel's key layout.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{Error, Result};
use crate::pid::terminate;
use crate::ports::free_port;
use crate::process::{ServiceProcess, ServiceSpec};
use crate::ready::{poll, shorten};
use crate::spawn::Launch;

/// Where Debian's `etcd-server` package installs etcd; `RUNNEL_ETCD_BIN` overrides it.
pub const DEFAULT_ETCD_BIN: &str = "/usr/bin/etcd";

/// How to run etcd.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// The etcd executable.
    pub binary: PathBuf,
    /// Data directory; etcd creates it (with the 0700 mode it insists on).
    pub data_dir: PathBuf,
    /// File receiving etcd's output.
    pub log_file: PathBuf,
    /// Port of the client URL.
    pub client_port: u16,
    /// Port of the peer URL.
    pub peer_port: u16,
    /// Attached (tests) or detached (launcher).
    pub launch: Launch,
    /// Bound on waiting for health, at start and restart.
    pub ready_timeout: Duration,
    /// Time SIGTERM gets before SIGKILL in [`Etcd::stop`].
    pub stop_timeout: Duration,
}

impl EtcdConfig {
    /// Describes an attached etcd with data in `root/etcd`, its log in `root/logs/etcd.log`,
    /// on fresh free ports.
    ///
    /// # Errors
    /// When no free port can be found.
    pub fn in_dir(root: &Path) -> Result<Self> {
        Ok(EtcdConfig {
            binary: std::env::var_os("RUNNEL_ETCD_BIN")
                .map_or_else(|| PathBuf::from(DEFAULT_ETCD_BIN), PathBuf::from),
            data_dir: root.join("etcd"),
            log_file: root.join("logs").join("etcd.log"),
            client_port: free_port()?,
            peer_port: free_port()?,
            launch: Launch::Attached,
            ready_timeout: Duration::from_secs(20),
            stop_timeout: Duration::from_secs(10),
        })
    }

    fn spec(&self) -> ServiceSpec {
        let client_url = format!("http://127.0.0.1:{}", self.client_port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut spec = ServiceSpec::new(
            "etcd",
            &self.binary,
            &client_url,
            &self.data_dir,
            &self.log_file,
        )
        .args([
            "--name".to_owned(),
            "runnel".to_owned(),
            "--data-dir".to_owned(),
            self.data_dir.display().to_string(),
            "--listen-client-urls".to_owned(),
            client_url.clone(),
            "--advertise-client-urls".to_owned(),
            client_url,
            "--listen-peer-urls".to_owned(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".to_owned(),
            peer_url.clone(),
            "--initial-cluster".to_owned(),
            format!("runnel={peer_url}"),
            // A single member on loopback: short ticks make its first election near-instant.
            "--heartbeat-interval".to_owned(),
            "20".to_owned(),
            "--election-timeout".to_owned(),
            "200".to_owned(),
            "--logger".to_owned(),
            "zap".to_owned(),
            "--log-outputs".to_owned(),
            "stderr".to_owned(),
        ]);
        spec.launch = self.launch;
        spec.ready_timeout = self.ready_timeout;
        spec.stop_timeout = self.stop_timeout;
        spec
    }
}

/// A running etcd. Methods take `&self` so one etcd can be shared (`Arc<Etcd>`) by several
/// test clusters, each under its own key prefix. An attached etcd is SIGKILLed when dropped.
#[derive(Debug)]
pub struct Etcd {
    process: Mutex<ServiceProcess>,
    config: EtcdConfig,
    endpoint: String,
    /// Set when this etcd made its own temporary root; dropped after the process.
    root: Option<TempDir>,
}

impl Etcd {
    /// Starts an attached etcd in a fresh temporary directory and waits until it is healthy.
    ///
    /// # Errors
    /// [`Error::EtcdMissing`] when etcd is not installed, otherwise as [`Etcd::start_with`].
    pub async fn start() -> Result<Arc<Etcd>> {
        let root = tempfile::Builder::new()
            .prefix("runnel-etcd-")
            .tempdir()
            .map_err(|source| Error::io("create a temporary directory", source))?;
        let config = EtcdConfig::in_dir(root.path())?;
        let mut etcd = Self::start_with(config).await?;
        etcd.root = Some(root);
        Ok(Arc::new(etcd))
    }

    /// Starts etcd as `config` says and waits until it is healthy. An existing data dir is
    /// reused, so this also brings back a stopped etcd.
    ///
    /// # Errors
    /// [`Error::EtcdMissing`] when the binary is missing; spawn errors; [`Error::ExitedEarly`]
    /// or [`Error::NotReady`] with etcd's log tail.
    pub async fn start_with(config: EtcdConfig) -> Result<Etcd> {
        if !config.binary.is_file() {
            return Err(Error::EtcdMissing {
                path: config.binary.clone(),
            });
        }
        let mut process = ServiceProcess::new(config.spec());
        process.start()?;
        let endpoint = process.base_url().to_owned();
        let etcd = Etcd {
            process: Mutex::new(process),
            config,
            endpoint,
            root: None,
        };
        if let Err(error) = etcd.wait_healthy().await {
            // The caller gets no handle, so even a detached etcd must not be left behind.
            let _ = etcd.process().kill();
            return Err(error);
        }
        Ok(etcd)
    }

    /// Returns the client URL, e.g. `http://127.0.0.1:40123`, for `--etcd-endpoints`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Returns the configuration it runs with (ports, data dir, log file).
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// Returns the pid of the most recently started etcd process.
    pub fn pid(&self) -> Option<u32> {
        self.process().pid()
    }

    /// Returns whether etcd is running (a stopped one counts as running).
    pub fn is_running(&self) -> bool {
        self.process().is_running()
    }

    /// Sends `signal` to etcd; after SIGKILL it is also reaped, so [`is_running`](Self::is_running)
    /// is false at once.
    ///
    /// # Errors
    /// [`Error::NotRunning`] when it has exited.
    pub fn kill(&self, signal: libc::c_int) -> Result<()> {
        let mut process = self.process();
        if signal == libc::SIGKILL {
            if !process.is_running() {
                return Err(Error::NotRunning {
                    name: process.name().to_owned(),
                });
            }
            return process.kill();
        }
        process.signal(signal)
    }

    /// Stops etcd with SIGTERM, waiting up to the stop timeout before SIGKILL.
    ///
    /// # Errors
    /// [`Error::StopTimedOut`] when it had to be SIGKILLed.
    pub async fn stop(&self) -> Result<()> {
        let Some(pid) = self.running_pid() else {
            return Ok(());
        };
        let termination = terminate(pid, None, self.config.stop_timeout).await;
        self.process().kill()?;
        match termination {
            crate::pid::Termination::Exited => Ok(()),
            crate::pid::Termination::Killed => Err(Error::StopTimedOut {
                name: "etcd".to_owned(),
                waited: self.config.stop_timeout,
            }),
        }
    }

    /// Starts etcd again on the same ports and data dir (SIGKILLing it first if it still
    /// runs) and waits until it is healthy.
    ///
    /// # Errors
    /// As [`Etcd::start_with`].
    pub async fn restart(&self) -> Result<()> {
        self.process().restart()?;
        self.wait_healthy().await
    }

    /// Polls `GET /health` until it answers `{"health":"true"}`, bounded by the ready timeout.
    ///
    /// # Errors
    /// [`Error::ExitedEarly`] or [`Error::NotReady`] with etcd's log tail.
    pub async fn wait_healthy(&self) -> Result<()> {
        let url = format!("{}/health", self.endpoint);
        let timeout = self.config.ready_timeout;
        let outcome = poll(&url, timeout, healthy, || self.process().poll_exit()).await;
        outcome.map_err(|failure| self.process().poll_failure(failure, url, timeout))
    }

    fn running_pid(&self) -> Option<u32> {
        let mut process = self.process();
        if process.is_running() {
            process.pid()
        } else {
            None
        }
    }

    fn process(&self) -> MutexGuard<'_, ServiceProcess> {
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(root) = self.root.take()
        {
            eprintln!("etcd files kept in {}", root.keep().display());
        }
    }
}

/// Accepts etcd's `{"health":"true"}`.
fn healthy(status: u16, body: &str) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Health {
        health: String,
    }
    match serde_json::from_str::<Health>(body) {
        Ok(Health { health }) if status == 200 && health == "true" => Ok(()),
        _ => Err(format!("HTTP {status}: {}", shorten(body))),
    }
}
