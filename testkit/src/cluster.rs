//! [`Cluster`]: one test's etcd, N brokers and M coordinators on loopback, under a temporary
//! root that is kept (and its logs printed) when the test fails. Every child dies with the
//! cluster.
//!
//! Layout of the root: `etcd/` (when the cluster owns its etcd), `broker-<id>/` data dirs,
//! `coordinator-<id>/` (coordinators keep no state; the dir only exists) and
//! `logs/<name>.log`, the same as the launcher's directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use crate::bin::find_bin;
use crate::error::{Error, Result};
use crate::etcd::{Etcd, EtcdConfig};
use crate::ports::free_port;
use crate::process::{DEFAULT_READY_TIMEOUT, ServiceProcess, ServiceSpec};
use crate::ready::{PollFailure, poll, shorten};

/// Path a broker answers 200 on once it is registered in etcd and has opened its logs.
pub const BROKER_READY_PATH: &str = "/readyz";

/// Path a coordinator answers 200 on once it is ready to serve groups.
pub const COORDINATOR_READY_PATH: &str = "/readyz";

/// Builds a [`Cluster`]; see [`Cluster::builder`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    brokers: u32,
    broker_bin: Option<PathBuf>,
    broker_args: Vec<OsString>,
    broker_env: Vec<(OsString, OsString)>,
    coordinators: u32,
    coordinator_bin: Option<PathBuf>,
    coordinator_args: Vec<OsString>,
    coordinator_env: Vec<(OsString, OsString)>,
    etcd: Option<Arc<Etcd>>,
    ready_timeout: Duration,
}

impl ClusterBuilder {
    /// Sets the number of brokers, with ids `1..=n` (default 1).
    pub fn brokers(mut self, n: u32) -> Self {
        self.brokers = n;
        self
    }

    /// Sets the broker executable, typically `env!("CARGO_BIN_EXE_runnel-broker")`; without
    /// it, [`find_bin`]`("runnel-broker")` is used.
    pub fn broker_bin(mut self, path: impl Into<PathBuf>) -> Self {
        self.broker_bin = Some(path.into());
        self
    }

    /// Appends arguments given to every broker after the ones the cluster sets.
    pub fn broker_args<S: AsRef<std::ffi::OsStr>>(mut self, args: &[S]) -> Self {
        self.broker_args
            .extend(args.iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Adds an environment variable to every broker.
    pub fn broker_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.broker_env.push((key.into(), value.into()));
        self
    }

    /// Sets the number of coordinators, with ids `1..=n` (default 0). They start once every
    /// broker is ready.
    pub fn coordinators(mut self, n: u32) -> Self {
        self.coordinators = n;
        self
    }

    /// Sets the coordinator executable; without it, [`find_bin`]`("runnel-coordinator")` is
    /// used (only when [`coordinators`](Self::coordinators) is above 0).
    pub fn coordinator_bin(mut self, path: impl Into<PathBuf>) -> Self {
        self.coordinator_bin = Some(path.into());
        self
    }

    /// Appends arguments given to every coordinator after the ones the cluster sets.
    pub fn coordinator_args<S: AsRef<std::ffi::OsStr>>(mut self, args: &[S]) -> Self {
        self.coordinator_args
            .extend(args.iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Adds an environment variable to every coordinator.
    pub fn coordinator_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.coordinator_env.push((key.into(), value.into()));
        self
    }

    /// Uses an existing etcd instead of starting one; the cluster gets its own key prefix in
    /// it and leaves it running on drop.
    pub fn etcd(mut self, etcd: Arc<Etcd>) -> Self {
        self.etcd = Some(etcd);
        self
    }

    /// Bounds each broker's and coordinator's readiness wait (default 30 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Starts etcd (unless given one) and the brokers, waits until they are ready, then starts
    /// the coordinators and waits until they are ready too.
    ///
    /// # Errors
    /// [`Error::ClusterStart`] naming the kept root directory and what failed (with the
    /// failing process's log tail).
    pub async fn start(self) -> Result<Cluster> {
        let root = tempfile::Builder::new()
            .prefix("runnel-test-")
            .tempdir()
            .map_err(|source| Error::io("create a temporary directory", source))?;
        match self.launch(root.path()).await {
            Ok(mut cluster) => {
                cluster.root = Some(root);
                Ok(cluster)
            }
            Err(error) => Err(Error::ClusterStart {
                root: root.keep(),
                source: Box::new(error),
            }),
        }
    }

    /// Starts everything under `root`; on error, what was started dies with the locals.
    async fn launch(self, root: &Path) -> Result<Cluster> {
        let etcd = match self.etcd {
            Some(etcd) => etcd,
            None => Arc::new(Etcd::start_with(EtcdConfig::in_dir(root)?).await?),
        };
        let binary = match self.broker_bin {
            Some(binary) => binary,
            None => find_bin("runnel-broker")?,
        };
        let prefix = unique_prefix();
        let mut brokers = Vec::new();
        for id in 1..=self.brokers {
            let port = free_port()?;
            let listen = format!("127.0.0.1:{port}");
            let data_dir = root.join(format!("broker-{id}"));
            let base_url = format!("http://{listen}");
            let log_file = root.join("logs").join(format!("broker-{id}.log"));
            let mut spec = ServiceSpec::new(
                format!("broker-{id}"),
                &binary,
                &base_url,
                &data_dir,
                log_file,
            )
            .args(broker_args(
                id,
                &listen,
                &base_url,
                &data_dir,
                etcd.endpoint(),
                &prefix,
            ))
            .args(&self.broker_args);
            spec.env.extend(self.broker_env.iter().cloned());
            spec.ready_timeout = self.ready_timeout;
            brokers.push(ServiceProcess::new(spec));
        }
        // Spawn all first so they boot in parallel; then each wait costs only what is left.
        for broker in &mut brokers {
            broker.start()?;
        }
        for broker in &mut brokers {
            broker.wait_ready(BROKER_READY_PATH).await?;
        }
        let cluster_id = match brokers.first() {
            Some(first) => fetch_cluster_id(first.base_url(), self.ready_timeout).await?,
            None => String::new(),
        };
        let mut coordinators = Vec::new();
        if self.coordinators > 0 {
            let binary = match self.coordinator_bin {
                Some(binary) => binary,
                None => find_bin("runnel-coordinator")?,
            };
            for id in 1..=self.coordinators {
                let port = free_port()?;
                let listen = format!("127.0.0.1:{port}");
                let base_url = format!("http://{listen}");
                let name = format!("coordinator-{id}");
                let log_file = root.join("logs").join(format!("{name}.log"));
                let mut spec =
                    ServiceSpec::new(&name, &binary, &base_url, root.join(&name), log_file)
                        .args(coordinator_args(
                            id,
                            &listen,
                            &base_url,
                            etcd.endpoint(),
                            &prefix,
                        ))
                        .args(&self.coordinator_args);
                spec.env.extend(self.coordinator_env.iter().cloned());
                spec.ready_timeout = self.ready_timeout;
                coordinators.push(ServiceProcess::new(spec));
            }
        }
        for coordinator in &mut coordinators {
            coordinator.start()?;
        }
        for coordinator in &mut coordinators {
            coordinator.wait_ready(COORDINATOR_READY_PATH).await?;
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| Error::io("build an HTTP client", std::io::Error::other(error)))?;
        Ok(Cluster {
            coordinators,
            brokers,
            etcd,
            etcd_prefix: prefix,
            cluster_id,
            http,
            root_path: root.to_owned(),
            root: None,
        })
    }
}

/// The arguments that place broker `id` on its port, data dir and etcd prefix.
pub fn broker_args(
    id: u32,
    listen: &str,
    advertised_url: &str,
    data_dir: &Path,
    etcd_endpoints: &str,
    etcd_prefix: &str,
) -> Vec<OsString> {
    let mut args = service_args(id, listen, advertised_url, etcd_endpoints, etcd_prefix);
    args.push("--data-dir".into());
    args.push(data_dir.as_os_str().to_owned());
    args
}

/// The arguments that place coordinator `id` on its port and etcd prefix (a coordinator keeps
/// no local state, so it takes no data dir).
pub fn coordinator_args(
    id: u32,
    listen: &str,
    advertised_url: &str,
    etcd_endpoints: &str,
    etcd_prefix: &str,
) -> Vec<OsString> {
    service_args(id, listen, advertised_url, etcd_endpoints, etcd_prefix)
}

/// The flags every service takes: `--id`, `--listen`, `--advertised-url`, `--etcd-endpoints`
/// and `--etcd-prefix`.
fn service_args(
    id: u32,
    listen: &str,
    advertised_url: &str,
    etcd_endpoints: &str,
    etcd_prefix: &str,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    for (flag, value) in [
        ("--id", id.to_string()),
        ("--listen", listen.to_owned()),
        ("--advertised-url", advertised_url.to_owned()),
        ("--etcd-endpoints", etcd_endpoints.to_owned()),
        ("--etcd-prefix", etcd_prefix.to_owned()),
    ] {
        args.push(flag.into());
        args.push(value.into());
    }
    args
}

/// Fetches the cluster id from `GET <base_url>/v3/clusters` (`data[0].cluster_id`), retrying
/// until `timeout`.
///
/// # Errors
/// [`Error::BadResponse`] when no well-formed answer came in time.
pub async fn fetch_cluster_id(base_url: &str, timeout: Duration) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Clusters {
        data: Vec<ClusterEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ClusterEntry {
        cluster_id: String,
    }
    let url = format!("{base_url}/v3/clusters");
    let accept = |status: u16, body: &str| match serde_json::from_str::<Clusters>(body) {
        Ok(Clusters { data }) if status == 200 => data
            .into_iter()
            .next()
            .map(|entry| entry.cluster_id)
            .ok_or_else(|| "empty data".to_owned()),
        _ => Err(format!("HTTP {status}: {}", shorten(body))),
    };
    poll(&url, timeout, accept, || None)
        .await
        .map_err(|failure| {
            let detail = match failure {
                PollFailure::TimedOut(last) => format!("no cluster id after {timeout:?}: {last}"),
                PollFailure::Exited(status) => format!("broker exited: {status}"),
            };
            Error::BadResponse {
                url: url.clone(),
                detail,
            }
        })
}

/// Returns an etcd key prefix no other cluster of this process uses.
fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "/runnel-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Etcd plus brokers `1..=n` and coordinators `1..=m` for one test. Dropping it SIGKILLs every
/// coordinator, then every broker, and etcd unless it was shared in through
/// [`ClusterBuilder::etcd`]. If the thread is panicking, the root directory is kept and each
/// process's log tail is printed to stderr.
#[derive(Debug)]
pub struct Cluster {
    // Fields drop in order: coordinators, then brokers, then etcd, so each log ends with its
    // own story rather than with the loss of what it depends on.
    coordinators: Vec<ServiceProcess>,
    brokers: Vec<ServiceProcess>,
    etcd: Arc<Etcd>,
    etcd_prefix: String,
    cluster_id: String,
    http: reqwest::Client,
    root_path: PathBuf,
    /// Dropped last, after every process is dead; taken (kept on disk) on panic.
    root: Option<TempDir>,
}

impl Cluster {
    /// Returns a builder for one broker, no coordinator, its own etcd and a 30 s readiness
    /// bound.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            brokers: 1,
            broker_bin: None,
            broker_args: Vec::new(),
            broker_env: Vec::new(),
            coordinators: 0,
            coordinator_bin: None,
            coordinator_args: Vec::new(),
            coordinator_env: Vec::new(),
            etcd: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }

    /// Returns broker `id` to signal, kill or restart.
    ///
    /// # Panics
    /// When there is no broker `id`.
    pub fn broker(&mut self, id: u32) -> &mut ServiceProcess {
        let count = self.brokers.len();
        id.checked_sub(1)
            .and_then(|index| self.brokers.get_mut(index as usize))
            .unwrap_or_else(|| panic!("no broker {id} in a cluster of {count} brokers"))
    }

    /// Returns every broker, in id order.
    pub fn brokers(&mut self) -> &mut [ServiceProcess] {
        &mut self.brokers
    }

    /// Returns the brokers' base URLs in id order.
    pub fn broker_urls(&self) -> Vec<String> {
        self.brokers
            .iter()
            .map(|broker| broker.base_url().to_owned())
            .collect()
    }

    /// Restarts broker `id` keeping its data dir (SIGKILLing it first if it runs) and waits
    /// until it is ready.
    ///
    /// # Errors
    /// As [`ServiceProcess::start`] and [`ServiceProcess::wait_ready`].
    ///
    /// # Panics
    /// When there is no broker `id`.
    pub async fn restart_broker(&mut self, id: u32) -> Result<()> {
        let broker = self.broker(id);
        broker.restart()?;
        broker.wait_ready(BROKER_READY_PATH).await
    }

    /// Returns coordinator `id` to signal, kill or restart.
    ///
    /// # Panics
    /// When there is no coordinator `id`.
    pub fn coordinator(&mut self, id: u32) -> &mut ServiceProcess {
        let count = self.coordinators.len();
        id.checked_sub(1)
            .and_then(|index| self.coordinators.get_mut(index as usize))
            .unwrap_or_else(|| panic!("no coordinator {id} in a cluster of {count} coordinators"))
    }

    /// Returns every coordinator, in id order.
    pub fn coordinators(&mut self) -> &mut [ServiceProcess] {
        &mut self.coordinators
    }

    /// Returns the coordinators' base URLs in id order.
    pub fn coordinator_urls(&self) -> Vec<String> {
        self.coordinators
            .iter()
            .map(|coordinator| coordinator.base_url().to_owned())
            .collect()
    }

    /// Restarts coordinator `id` (SIGKILLing it first if it runs) and waits until it is ready.
    ///
    /// # Errors
    /// As [`ServiceProcess::start`] and [`ServiceProcess::wait_ready`].
    ///
    /// # Panics
    /// When there is no coordinator `id`.
    pub async fn restart_coordinator(&mut self, id: u32) -> Result<()> {
        let coordinator = self.coordinator(id);
        coordinator.restart()?;
        coordinator.wait_ready(COORDINATOR_READY_PATH).await
    }

    /// Waits until every running broker, then every running coordinator, is ready.
    ///
    /// # Errors
    /// As [`ServiceProcess::wait_ready`].
    pub async fn wait_ready(&mut self) -> Result<()> {
        for broker in &mut self.brokers {
            if broker.is_running() {
                broker.wait_ready(BROKER_READY_PATH).await?;
            }
        }
        for coordinator in &mut self.coordinators {
            if coordinator.is_running() {
                coordinator.wait_ready(COORDINATOR_READY_PATH).await?;
            }
        }
        Ok(())
    }

    /// Returns the etcd the brokers and coordinators use.
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// Returns the etcd key prefix of this cluster.
    pub fn etcd_prefix(&self) -> &str {
        &self.etcd_prefix
    }

    /// Returns the cluster id reported by broker 1 at start (empty with no brokers).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Returns an HTTP client for talking to the services (no proxy, 30 s timeout).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Returns the root directory holding data dirs and `logs/`.
    pub fn root(&self) -> &Path {
        &self.root_path
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(root) = self.root.take()
        {
            eprintln!("test cluster files kept in {}", root.keep().display());
        }
    }
}
