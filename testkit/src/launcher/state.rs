//! The launcher's memory of one cluster: `DIR/cluster.json` (ports, etcd prefix, broker and
//! coordinator arguments, pids), the paths derived from DIR, and the lock that serializes
//! commands on a DIR. It starts no process.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use runnel_testkit::free_port;
use runnel_testkit::pid::{PidState, state};
use serde::{Deserialize, Serialize};

use super::error::LaunchError;

/// A cluster directory, by absolute path.
#[derive(Debug, Clone)]
pub struct ClusterDir {
    root: PathBuf,
}

impl ClusterDir {
    /// Opens `dir`, creating it when `create` is set.
    pub fn open(dir: &Path, create: bool) -> Result<Self, LaunchError> {
        let file_error = |action, source| LaunchError::File {
            action,
            path: dir.to_owned(),
            source,
        };
        if create {
            std::fs::create_dir_all(dir).map_err(|source| file_error("create", source))?;
        } else if !dir.join("cluster.json").is_file() {
            return Err(LaunchError::NoCluster {
                dir: dir.to_owned(),
            });
        }
        let root = dir
            .canonicalize()
            .map_err(|source| file_error("resolve", source))?;
        Ok(ClusterDir { root })
    }

    /// Returns the absolute directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the state file, `cluster.json`.
    pub fn state_file(&self) -> PathBuf {
        self.root.join("cluster.json")
    }

    /// Returns the shell-sourceable `cluster.env`.
    pub fn env_file(&self) -> PathBuf {
        self.root.join("cluster.env")
    }

    /// Returns etcd's data dir.
    pub fn etcd_data(&self) -> PathBuf {
        self.root.join("etcd")
    }

    /// Returns broker `id`'s data dir.
    pub fn broker_data(&self, id: u32) -> PathBuf {
        self.root.join(format!("broker-{id}"))
    }

    /// Returns coordinator `id`'s directory (it holds nothing; coordinators keep no state).
    pub fn coordinator_dir(&self, id: u32) -> PathBuf {
        self.root.join(format!("coordinator-{id}"))
    }

    /// Returns the log file of the process named `name` (`etcd`, `broker-1`,
    /// `coordinator-1`).
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    /// Takes the directory's lock, held until the returned value drops.
    pub fn lock(&self) -> Result<DirLock, LaunchError> {
        let path = self.root.join(".lock");
        let file = File::create(&path).map_err(|source| LaunchError::File {
            action: "create",
            path,
            source,
        })?;
        // SAFETY: flock on a descriptor we own; the lock goes with the descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == -1 {
            return Err(LaunchError::Busy {
                dir: self.root.clone(),
            });
        }
        Ok(DirLock { _file: file })
    }

    /// Writes `contents` to `path` atomically (temporary file, then rename).
    pub fn write_atomically(&self, path: &Path, contents: &str) -> Result<(), LaunchError> {
        let temporary = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temporary)?;
            file.write_all(contents.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        };
        write().map_err(|source| LaunchError::File {
            action: "write",
            path: path.to_owned(),
            source,
        })
    }
}

/// Holds a cluster directory's lock; the OS releases it when the descriptor closes (it is
/// close-on-exec, so children never hold it).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// What `cluster.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterState {
    /// etcd's ports and pid.
    pub etcd: EtcdState,
    /// Key prefix of the cluster in etcd.
    pub etcd_prefix: String,
    /// Extra arguments every broker gets.
    #[serde(default)]
    pub broker_args: Vec<String>,
    /// Brokers in id order, ids `1..=n`.
    pub brokers: Vec<ServiceState>,
    /// Extra arguments every coordinator gets.
    #[serde(default)]
    pub coordinator_args: Vec<String>,
    /// Coordinators in id order, ids `1..=n`; `None` in a state written before the launcher
    /// knew coordinators, which `up` gives the default count.
    #[serde(default)]
    pub coordinators: Option<Vec<ServiceState>>,
    /// Cluster id reported by broker 1, once known.
    #[serde(default)]
    pub cluster_id: Option<String>,
}

/// etcd's part of the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EtcdState {
    /// Client port on 127.0.0.1.
    pub client_port: u16,
    /// Peer port on 127.0.0.1.
    pub peer_port: u16,
    /// Pid while it runs.
    pub pid: Option<u32>,
}

/// One broker's or coordinator's part of the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceState {
    /// Broker or coordinator id.
    pub id: u32,
    /// HTTP port on 127.0.0.1.
    pub port: u16,
    /// Pid while it runs.
    pub pid: Option<u32>,
}

impl EtcdState {
    /// Returns the client URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
}

impl ServiceState {
    /// Returns the `host:port` it listens on.
    pub fn listen(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Returns its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.listen())
    }
}

impl ClusterState {
    /// A new cluster of no brokers and no coordinators on fresh ports.
    pub fn fresh() -> Result<Self, LaunchError> {
        Ok(ClusterState {
            etcd: EtcdState {
                client_port: free_port()?,
                peer_port: free_port()?,
                pid: None,
            },
            etcd_prefix: "/runnel".to_owned(),
            broker_args: Vec::new(),
            brokers: Vec::new(),
            coordinator_args: Vec::new(),
            coordinators: Some(Vec::new()),
            cluster_id: None,
        })
    }

    /// Reads `cluster.json`, or `None` when there is none.
    pub fn load(dir: &ClusterDir) -> Result<Option<Self>, LaunchError> {
        let path = dir.state_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LaunchError::File {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| LaunchError::BadState { path, source })
    }

    /// Writes `cluster.json`.
    pub fn save(&self, dir: &ClusterDir) -> Result<(), LaunchError> {
        let path = dir.state_file();
        let text = serde_json::to_string_pretty(self).map_err(|source| LaunchError::BadState {
            path: path.clone(),
            source,
        })?;
        dir.write_atomically(&path, &(text + "\n"))
    }

    /// Adds brokers on fresh ports until there are `count`.
    pub fn grow_to(&mut self, count: u32) -> Result<(), LaunchError> {
        grow(&mut self.brokers, count)
    }

    /// Sets the number of coordinators to `count`: adds them on fresh ports, or forgets the
    /// highest ids (coordinators keep no state, so nothing is lost). Existing ones keep their
    /// ports.
    pub fn resize_coordinators(&mut self, count: u32) -> Result<(), LaunchError> {
        let coordinators = self.coordinators.get_or_insert_with(Vec::new);
        coordinators.truncate(count as usize);
        grow(coordinators, count)
    }

    /// Returns the coordinators in id order (none in a state that predates them).
    pub fn coordinators(&self) -> &[ServiceState] {
        self.coordinators.as_deref().unwrap_or_default()
    }

    /// Returns broker `id`.
    pub fn broker_mut(&mut self, id: u32) -> Result<&mut ServiceState, LaunchError> {
        let count = self.brokers.len();
        self.brokers
            .iter_mut()
            .find(|broker| broker.id == id)
            .ok_or(LaunchError::UnknownBroker { id, count })
    }

    /// Returns coordinator `id`.
    pub fn coordinator_mut(&mut self, id: u32) -> Result<&mut ServiceState, LaunchError> {
        let count = self.coordinators().len();
        self.coordinators
            .iter_mut()
            .flatten()
            .find(|coordinator| coordinator.id == id)
            .ok_or(LaunchError::UnknownCoordinator { id, count })
    }

    /// Forgets the pids of processes that are gone (exited, or the pid now runs another
    /// program), so the state says what runs.
    pub fn forget_dead(&mut self, dir: &ClusterDir) {
        let etcd_data = dir.etcd_data();
        if self
            .etcd
            .pid
            .is_some_and(|pid| state(pid, Some(etcd_data.as_os_str())) == PidState::Gone)
        {
            self.etcd.pid = None;
        }
        for broker in &mut self.brokers {
            let data = dir.broker_data(broker.id);
            if broker
                .pid
                .is_some_and(|pid| state(pid, Some(data.as_os_str())) == PidState::Gone)
            {
                broker.pid = None;
            }
        }
        for coordinator in self.coordinators.iter_mut().flatten() {
            // A coordinator has no data dir; its advertised URL is the argument that tells it
            // apart from a process that got its recycled pid.
            let url = coordinator.url();
            if coordinator
                .pid
                .is_some_and(|pid| state(pid, Some(OsStr::new(&url))) == PidState::Gone)
            {
                coordinator.pid = None;
            }
        }
    }

    /// Describes what runs, e.g. `etcd pid 12, broker 1 pid 13, coordinator 1 pid 14`; empty
    /// when nothing does.
    pub fn running(&self) -> String {
        let etcd = self.etcd.pid.map(|pid| format!("etcd pid {pid}"));
        let brokers = self.brokers.iter().filter_map(|broker| {
            broker
                .pid
                .map(|pid| format!("broker {} pid {pid}", broker.id))
        });
        let coordinators = self.coordinators().iter().filter_map(|coordinator| {
            coordinator
                .pid
                .map(|pid| format!("coordinator {} pid {pid}", coordinator.id))
        });
        etcd.into_iter()
            .chain(brokers)
            .chain(coordinators)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Adds services with ids following the last one, on fresh ports, until there are `count`.
fn grow(services: &mut Vec<ServiceState>, count: u32) -> Result<(), LaunchError> {
    for id in (services.len() as u32 + 1)..=count {
        services.push(ServiceState {
            id,
            port: free_port()?,
            pid: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_state_from_before_coordinators_when_loaded_should_have_none_recorded() {
        let text = r#"{
            "etcd": { "client_port": 1, "peer_port": 2, "pid": null },
            "etcd_prefix": "/runnel",
            "brokers": [{ "id": 1, "port": 3, "pid": null }]
        }"#;
        let state: ClusterState = serde_json::from_str(text).expect("old state parses");
        assert!(state.coordinators.is_none());
        assert!(state.coordinators().is_empty());
        assert!(state.coordinator_args.is_empty());
    }

    #[test]
    fn given_coordinators_when_resized_should_keep_ports_of_those_that_stay() {
        let mut state = ClusterState::fresh().expect("fresh state");
        state.resize_coordinators(3).expect("grow");
        let ports: Vec<u16> = state.coordinators().iter().map(|c| c.port).collect();
        state.resize_coordinators(1).expect("shrink");
        state.resize_coordinators(2).expect("grow again");
        let ids: Vec<u32> = state.coordinators().iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(state.coordinators()[0].port, ports[0]);
    }
}
