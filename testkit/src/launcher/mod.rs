//! The launcher's commands: `up`, `down`, `status`, `kill`, `start`, over etcd, brokers and
//! coordinators (started in that order, stopped in the reverse one). Processes run detached
//! (own session, output in `DIR/logs/`) so they outlive the command; `DIR/cluster.json` is the
//! only link between invocations and `DIR/cluster.env` is rewritten from it after every change.
//! Commands that change anything hold the DIR's lock.

mod env_file;
mod error;
mod state;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use runnel_testkit::cluster::{
    BROKER_READY_PATH, COORDINATOR_READY_PATH, broker_args, coordinator_args, fetch_cluster_id,
};
use runnel_testkit::pid::{PidState, Termination, send_signal, terminate, wait_gone};
use runnel_testkit::{Etcd, EtcdConfig, Launch, ServiceProcess, ServiceSpec, find_bin};

pub use error::LaunchError;
use state::{ClusterDir, ClusterState};

/// Bound on etcd becoming healthy.
const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on a broker becoming ready; generous because a restart may recover large logs.
const BROKER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a broker gets to shut down cleanly before SIGKILL.
const BROKER_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a coordinator becoming ready.
const COORDINATOR_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a coordinator gets to shut down cleanly before SIGKILL; it keeps no state to flush.
const COORDINATOR_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Time etcd gets to shut down cleanly before SIGKILL.
const ETCD_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the kernel gets to remove a SIGKILLed process.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// Exit code of `status` when something is not running or not ready.
const NOT_ALL_READY: u8 = 3;

/// A signal `kill` can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Signal {
    /// SIGKILL: crash now.
    #[value(name = "KILL", alias = "SIGKILL")]
    Kill,
    /// SIGTERM: shut down cleanly.
    #[value(name = "TERM", alias = "SIGTERM")]
    Term,
    /// SIGSTOP: freeze.
    #[value(name = "STOP", alias = "SIGSTOP")]
    Stop,
    /// SIGCONT: unfreeze.
    #[value(name = "CONT", alias = "SIGCONT")]
    Cont,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Kill => libc::SIGKILL,
            Signal::Term => libc::SIGTERM,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

/// The process a command is about: `etcd`, a broker id or `coordinator-<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The cluster's etcd.
    Etcd,
    /// The broker with this id.
    Broker(u32),
    /// The coordinator with this id.
    Coordinator(u32),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected =
            || format!("expected a broker id, `coordinator-<id>` or `etcd`, got `{text}`");
        if text == "etcd" {
            return Ok(Target::Etcd);
        }
        if let Some(id) = text.strip_prefix("coordinator-") {
            return id.parse().map(Target::Coordinator).map_err(|_| expected());
        }
        text.parse().map(Target::Broker).map_err(|_| expected())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Etcd => f.write_str("etcd"),
            Target::Broker(id) => write!(f, "broker {id}"),
            Target::Coordinator(id) => write!(f, "coordinator {id}"),
        }
    }
}

/// What `up` was asked for; `None` and empty fields mean "as before, or the default".
#[derive(Debug, Default)]
pub struct UpOptions {
    /// Number of brokers (default: as many as DIR has, else 1).
    pub brokers: Option<u32>,
    /// Broker executable (default: `runnel-broker` next to this executable).
    pub broker_bin: Option<PathBuf>,
    /// Extra broker arguments; remembered in DIR.
    pub broker_args: Vec<String>,
    /// Number of coordinators (default: as many as DIR has, else 1).
    pub coordinators: Option<u32>,
    /// Coordinator executable (default: `runnel-coordinator` next to this executable).
    pub coordinator_bin: Option<PathBuf>,
    /// Extra coordinator arguments; remembered in DIR.
    pub coordinator_args: Vec<String>,
}

/// Starts etcd, the brokers and then the coordinators of the cluster in `dir` (creating it
/// with 1 broker and 1 coordinator unless told otherwise), waits until all are ready and
/// writes `cluster.env`. Refuses when any process of the cluster still runs. On failure,
/// stops what it started.
pub async fn up(dir: &Path, options: UpOptions) -> Result<ExitCode, LaunchError> {
    let dir = ClusterDir::open(dir, true)?;
    let _lock = dir.lock()?;
    let (mut state, default_brokers, default_coordinators) = match ClusterState::load(&dir)? {
        Some(state) => {
            let brokers = u32::try_from(state.brokers.len()).unwrap_or(u32::MAX);
            // A DIR from before coordinators existed gets the default, like a new one.
            let coordinators = state.coordinators.as_ref().map_or(1, |coordinators| {
                u32::try_from(coordinators.len()).unwrap_or(u32::MAX)
            });
            (state, brokers, coordinators)
        }
        None => (ClusterState::fresh()?, 1, 1),
    };
    state.forget_dead(&dir);
    let running = state.running();
    if !running.is_empty() {
        return Err(LaunchError::AlreadyRunning {
            dir: dir.root().to_owned(),
            running,
        });
    }
    let existing = state.brokers.len();
    let count = options.brokers.unwrap_or(default_brokers);
    if (count as usize) < existing {
        return Err(LaunchError::CannotShrink {
            dir: dir.root().to_owned(),
            existing,
        });
    }
    state.grow_to(count)?;
    if !options.broker_args.is_empty() {
        state.broker_args = options.broker_args;
    }
    let coordinators = options.coordinators.unwrap_or(default_coordinators);
    state.resize_coordinators(coordinators)?;
    if !options.coordinator_args.is_empty() {
        state.coordinator_args = options.coordinator_args;
    }
    // Both executables are resolved before anything starts, so a missing one costs nothing.
    let binaries = Binaries {
        broker: if count > 0 {
            Some(service_binary(BROKER, options.broker_bin)?)
        } else {
            None
        },
        coordinator: if coordinators > 0 {
            Some(service_binary(COORDINATOR, options.coordinator_bin)?)
        } else {
            None
        },
    };
    state.save(&dir)?;

    let started = start_everything(&dir, &mut state, &binaries).await;
    if let Err(error) = started {
        eprintln!("runnel-cluster: start failed; stopping what was started");
        stop_everything(&dir, &mut state).await;
        save(&dir, &state)?;
        return Err(error);
    }
    save(&dir, &state)?;
    println!(
        "cluster up in {} (cluster id {})",
        dir.root().display(),
        state.cluster_id.as_deref().unwrap_or("-")
    );
    let line = |name: &str, pid: Option<u32>, url: &str| {
        println!("  {name:<14} pid {:<8} {url}", pid.unwrap_or(0));
    };
    line("etcd", state.etcd.pid, &state.etcd.endpoint());
    for broker in &state.brokers {
        line(&format!("broker {}", broker.id), broker.pid, &broker.url());
    }
    for coordinator in state.coordinators() {
        line(
            &format!("coordinator {}", coordinator.id),
            coordinator.pid,
            &coordinator.url(),
        );
    }
    println!(
        "logs in {}; load the environment with: . {}",
        dir.root().join("logs").display(),
        dir.env_file().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Stops the coordinators, then the brokers, then etcd, keeping their data; removes the pids
/// from `cluster.env`.
pub async fn down(dir: &Path) -> Result<ExitCode, LaunchError> {
    let dir = ClusterDir::open(dir, false)?;
    let _lock = dir.lock()?;
    let mut state = load(&dir)?;
    if state.running().is_empty() {
        println!("the cluster in {} is not running", dir.root().display());
    } else {
        stop_everything(&dir, &mut state).await;
        println!(
            "cluster in {} stopped; its data is kept for the next `up`",
            dir.root().display()
        );
    }
    save(&dir, &state)?;
    let still = state.running();
    if still.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("runnel-cluster: still running: {still}");
        Ok(ExitCode::FAILURE)
    }
}

/// Prints each process with its pid and readiness; exits with 3 unless all are ready.
pub async fn status(dir: &Path) -> Result<ExitCode, LaunchError> {
    let dir = ClusterDir::open(dir, false)?;
    // Read-only, so no lock: status must work while another command waits on readiness.
    let state = load(&dir)?;
    let client = runnel_testkit::ready::probe_client()?;
    println!(
        "cluster in {} (cluster id {})",
        dir.root().display(),
        state.cluster_id.as_deref().unwrap_or("-")
    );
    let mut all_ready = true;
    let etcd = (
        String::from("etcd"),
        state.etcd.pid,
        state.etcd.endpoint(),
        "/health",
        dir.etcd_data().into_os_string(),
    );
    let brokers = state.brokers.iter().map(|b| {
        (
            format!("broker {}", b.id),
            b.pid,
            b.url(),
            BROKER_READY_PATH,
            dir.broker_data(b.id).into_os_string(),
        )
    });
    let coordinators = state.coordinators().iter().map(|c| {
        (
            format!("coordinator {}", c.id),
            c.pid,
            c.url(),
            COORDINATOR_READY_PATH,
            OsString::from(c.url()),
        )
    });
    let all = std::iter::once(etcd).chain(brokers).chain(coordinators);
    for (name, pid, url, ready_path, marker) in all {
        let process_state = pid.map_or(PidState::Gone, |pid| {
            runnel_testkit::pid::state(pid, Some(&marker))
        });
        let (what, ready) = match process_state {
            PidState::Gone => ("down", false),
            PidState::Stopped => ("stopped (SIGSTOP)", false),
            PidState::Running => {
                let answer = client.get(format!("{url}{ready_path}")).send().await;
                match answer {
                    Ok(response) if response.status().is_success() => ("ready", true),
                    Ok(response) => (
                        if response.status().as_u16() == 503 {
                            "not ready"
                        } else {
                            "unhealthy"
                        },
                        false,
                    ),
                    Err(_) => ("not answering", false),
                }
            }
        };
        all_ready &= ready;
        let pid = pid
            .filter(|_| process_state != PidState::Gone)
            .map_or("-".to_owned(), |pid| pid.to_string());
        println!("  {name:<14} {what:<18} pid {pid:<8} {url}");
    }
    Ok(if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_ALL_READY)
    })
}

/// Sends `signal` to one process; after KILL or TERM waits until it is gone and drops its pid
/// from `cluster.env`.
pub async fn kill(dir: &Path, target: Target, signal: Signal) -> Result<ExitCode, LaunchError> {
    let dir = ClusterDir::open(dir, false)?;
    let _lock = dir.lock()?;
    let mut state = load(&dir)?;
    let (pid, marker, stop_timeout) = match target {
        Target::Etcd => (
            state.etcd.pid,
            dir.etcd_data().into_os_string(),
            ETCD_STOP_TIMEOUT,
        ),
        Target::Broker(id) => (
            state.broker_mut(id)?.pid,
            dir.broker_data(id).into_os_string(),
            BROKER_STOP_TIMEOUT,
        ),
        Target::Coordinator(id) => {
            let coordinator = state.coordinator_mut(id)?;
            (
                coordinator.pid,
                OsString::from(coordinator.url()),
                COORDINATOR_STOP_TIMEOUT,
            )
        }
    };
    let Some(pid) = pid else {
        return Err(LaunchError::NotRunning {
            name: target.to_string(),
        });
    };
    let signal_error = |source| runnel_testkit::Error::Io {
        action: format!("signal {target} (pid {pid})"),
        source,
    };
    send_signal(pid, signal.number()).map_err(signal_error)?;
    let waited = match signal {
        Signal::Kill => KILL_TIMEOUT,
        Signal::Term => {
            // A frozen process would sit on SIGTERM until resumed.
            send_signal(pid, libc::SIGCONT).map_err(signal_error)?;
            stop_timeout
        }
        Signal::Stop => {
            println!(
                "{target} (pid {pid}) is frozen; `kill {} --signal CONT` resumes it",
                target_arg(target)
            );
            return Ok(ExitCode::SUCCESS);
        }
        Signal::Cont => {
            println!("{target} (pid {pid}) resumed");
            return Ok(ExitCode::SUCCESS);
        }
    };
    if !wait_gone(pid, Some(&marker), waited).await {
        return Err(LaunchError::StillRunning {
            name: target.to_string(),
            pid,
            waited,
        });
    }
    state.forget_dead(&dir);
    save(&dir, &state)?;
    let with_data = match target {
        Target::Coordinator(_) => "",
        Target::Etcd | Target::Broker(_) => " with its data",
    };
    println!(
        "{target} (pid {pid}) is gone; `start {}` brings it back{with_data}",
        target_arg(target)
    );
    Ok(ExitCode::SUCCESS)
}

/// Starts one process that is down, with its data, waits until it is ready and writes its
/// new pid to `cluster.env`.
pub async fn start(
    dir: &Path,
    target: Target,
    broker_bin: Option<PathBuf>,
    coordinator_bin: Option<PathBuf>,
) -> Result<ExitCode, LaunchError> {
    let dir = ClusterDir::open(dir, false)?;
    let _lock = dir.lock()?;
    let mut state = load(&dir)?;
    match target {
        Target::Etcd => {
            if let Some(pid) = state.etcd.pid {
                return Err(LaunchError::AlreadyStarted {
                    name: target.to_string(),
                    pid,
                });
            }
            start_etcd(&dir, &mut state).await?;
        }
        Target::Broker(id) => {
            if let Some(pid) = state.broker_mut(id)?.pid {
                return Err(LaunchError::AlreadyStarted {
                    name: target.to_string(),
                    pid,
                });
            }
            if state.etcd.pid.is_none() {
                return Err(LaunchError::NotRunning {
                    name: "etcd (which brokers need)".to_owned(),
                });
            }
            let binary = service_binary(BROKER, broker_bin)?;
            let mut broker = ServiceProcess::new(broker_spec(&dir, &state, id, &binary)?);
            broker.start()?;
            state.broker_mut(id)?.pid = broker.pid();
            save(&dir, &state)?;
            if let Err(error) = broker.wait_ready(BROKER_READY_PATH).await {
                broker.kill()?;
                state.broker_mut(id)?.pid = None;
                save(&dir, &state)?;
                return Err(error.into());
            }
        }
        Target::Coordinator(id) => {
            if let Some(pid) = state.coordinator_mut(id)?.pid {
                return Err(LaunchError::AlreadyStarted {
                    name: target.to_string(),
                    pid,
                });
            }
            if state.etcd.pid.is_none() {
                return Err(LaunchError::NotRunning {
                    name: "etcd (which coordinators need)".to_owned(),
                });
            }
            let binary = service_binary(COORDINATOR, coordinator_bin)?;
            let mut coordinator = ServiceProcess::new(coordinator_spec(&dir, &state, id, &binary)?);
            coordinator.start()?;
            state.coordinator_mut(id)?.pid = coordinator.pid();
            save(&dir, &state)?;
            if let Err(error) = coordinator.wait_ready(COORDINATOR_READY_PATH).await {
                coordinator.kill()?;
                state.coordinator_mut(id)?.pid = None;
                save(&dir, &state)?;
                return Err(error.into());
            }
        }
    }
    save(&dir, &state)?;
    let (pid, url) = match target {
        Target::Etcd => (state.etcd.pid, state.etcd.endpoint()),
        Target::Broker(id) => {
            let broker = state.broker_mut(id)?;
            (broker.pid, broker.url())
        }
        Target::Coordinator(id) => {
            let coordinator = state.coordinator_mut(id)?;
            (coordinator.pid, coordinator.url())
        }
    };
    println!("{target} ready at {url} (pid {})", pid.unwrap_or(0));
    Ok(ExitCode::SUCCESS)
}

/// The executables `up` starts; `None` where the cluster has none of that service.
struct Binaries {
    broker: Option<PathBuf>,
    coordinator: Option<PathBuf>,
}

/// Starts etcd, then all brokers in parallel, then (once the brokers are ready and the
/// cluster id is known) all coordinators in parallel, recording pids as soon as they exist so
/// a failure can stop them.
async fn start_everything(
    dir: &ClusterDir,
    state: &mut ClusterState,
    binaries: &Binaries,
) -> Result<(), LaunchError> {
    start_etcd(dir, state).await?;
    state.save(dir)?;
    if let Some(binary) = &binaries.broker {
        let mut brokers = Vec::new();
        for index in 0..state.brokers.len() {
            let id = state.brokers[index].id;
            let mut broker = ServiceProcess::new(broker_spec(dir, state, id, binary)?);
            broker.start()?;
            state.brokers[index].pid = broker.pid();
            brokers.push(broker);
        }
        state.save(dir)?;
        for broker in &mut brokers {
            broker.wait_ready(BROKER_READY_PATH).await?;
        }
        if let Some(first) = brokers.first() {
            state.cluster_id =
                Some(fetch_cluster_id(first.base_url(), BROKER_READY_TIMEOUT).await?);
        }
    }
    if let Some(binary) = &binaries.coordinator {
        let ids: Vec<u32> = state.coordinators().iter().map(|c| c.id).collect();
        let mut coordinators = Vec::new();
        for id in ids {
            let mut coordinator = ServiceProcess::new(coordinator_spec(dir, state, id, binary)?);
            coordinator.start()?;
            state.coordinator_mut(id)?.pid = coordinator.pid();
            coordinators.push(coordinator);
        }
        state.save(dir)?;
        for coordinator in &mut coordinators {
            coordinator.wait_ready(COORDINATOR_READY_PATH).await?;
        }
    }
    Ok(())
}

/// Starts etcd detached on the cluster's ports and data dir and waits until it is healthy.
async fn start_etcd(dir: &ClusterDir, state: &mut ClusterState) -> Result<(), LaunchError> {
    let mut config = EtcdConfig::in_dir(dir.root())?;
    config.client_port = state.etcd.client_port;
    config.peer_port = state.etcd.peer_port;
    config.launch = Launch::Detached;
    config.ready_timeout = ETCD_READY_TIMEOUT;
    // Dropping a detached Etcd leaves the process running, which is the point.
    let etcd = Etcd::start_with(config).await?;
    state.etcd.pid = etcd.pid();
    Ok(())
}

/// Stops every running coordinator (all at once), then every running broker (all at once),
/// then etcd. Reports each on stdout; a process that survives even SIGKILL keeps its pid in
/// the state.
async fn stop_everything(dir: &ClusterDir, state: &mut ClusterState) {
    state.forget_dead(dir);
    let coordinators: Vec<(String, u32, OsString)> = state
        .coordinators()
        .iter()
        .filter_map(|c| {
            let pid = c.pid?;
            Some((format!("coordinator {}", c.id), pid, c.url().into()))
        })
        .collect();
    stop_all(&coordinators, COORDINATOR_STOP_TIMEOUT).await;
    let brokers: Vec<(String, u32, OsString)> = state
        .brokers
        .iter()
        .filter_map(|b| {
            let pid = b.pid?;
            Some((
                format!("broker {}", b.id),
                pid,
                dir.broker_data(b.id).into(),
            ))
        })
        .collect();
    stop_all(&brokers, BROKER_STOP_TIMEOUT).await;
    if let Some(pid) = state.etcd.pid {
        let termination =
            terminate(pid, Some(dir.etcd_data().as_os_str()), ETCD_STOP_TIMEOUT).await;
        report_stop("etcd", pid, termination, ETCD_STOP_TIMEOUT);
    }
    state.forget_dead(dir);
}

/// Sends SIGTERM to every `(name, pid, marker)` at once, then waits for each in turn
/// (SIGKILLing any that outlive `timeout`), so they shut down in parallel.
async fn stop_all(processes: &[(String, u32, OsString)], timeout: Duration) {
    for (_, pid, _) in processes {
        // Errors mean it is gone already; terminate below notices.
        let _ = send_signal(*pid, libc::SIGTERM);
        let _ = send_signal(*pid, libc::SIGCONT);
    }
    for (name, pid, marker) in processes {
        let termination = terminate(*pid, Some(marker), timeout).await;
        report_stop(name, *pid, termination, timeout);
    }
}

fn report_stop(name: &str, pid: u32, termination: Termination, waited: Duration) {
    match termination {
        Termination::Exited => println!("  stopped {name} (pid {pid})"),
        Termination::Killed => {
            println!("  {name} (pid {pid}) ignored SIGTERM for {waited:?}; sent SIGKILL")
        }
    }
}

/// Describes broker `id` of the cluster as a detached process.
fn broker_spec(
    dir: &ClusterDir,
    state: &ClusterState,
    id: u32,
    binary: &Path,
) -> Result<ServiceSpec, LaunchError> {
    let count = state.brokers.len();
    let broker = state
        .brokers
        .iter()
        .find(|broker| broker.id == id)
        .ok_or(LaunchError::UnknownBroker { id, count })?;
    let data_dir = dir.broker_data(id);
    let name = format!("broker-{id}");
    let args = broker_args(
        id,
        &broker.listen(),
        &broker.url(),
        &data_dir,
        &state.etcd.endpoint(),
        &state.etcd_prefix,
    );
    let mut spec = ServiceSpec::new(&name, binary, broker.url(), &data_dir, dir.log_file(&name))
        .args(args)
        .args(&state.broker_args);
    spec.launch = Launch::Detached;
    spec.ready_timeout = BROKER_READY_TIMEOUT;
    spec.stop_timeout = BROKER_STOP_TIMEOUT;
    Ok(spec)
}

/// Describes coordinator `id` of the cluster as a detached process.
fn coordinator_spec(
    dir: &ClusterDir,
    state: &ClusterState,
    id: u32,
    binary: &Path,
) -> Result<ServiceSpec, LaunchError> {
    let coordinators = state.coordinators();
    let coordinator = coordinators
        .iter()
        .find(|coordinator| coordinator.id == id)
        .ok_or(LaunchError::UnknownCoordinator {
            id,
            count: coordinators.len(),
        })?;
    let name = format!("coordinator-{id}");
    let args = coordinator_args(
        id,
        &coordinator.listen(),
        &coordinator.url(),
        &state.etcd.endpoint(),
        &state.etcd_prefix,
    );
    let mut spec = ServiceSpec::new(
        &name,
        binary,
        coordinator.url(),
        dir.coordinator_dir(id),
        dir.log_file(&name),
    )
    .args(args)
    .args(&state.coordinator_args);
    spec.launch = Launch::Detached;
    spec.ready_timeout = COORDINATOR_READY_TIMEOUT;
    spec.stop_timeout = COORDINATOR_STOP_TIMEOUT;
    Ok(spec)
}

/// A service binary `runnel-cluster` starts: its short name and executable file name.
struct Service {
    name: &'static str,
    binary: &'static str,
}

const BROKER: Service = Service {
    name: "broker",
    binary: "runnel-broker",
};

const COORDINATOR: Service = Service {
    name: "coordinator",
    binary: "runnel-coordinator",
};

/// The executable of `service`: as given, else its binary next to this executable. Checks it
/// exists, so a missing one is named before anything starts.
fn service_binary(service: Service, given: Option<PathBuf>) -> Result<PathBuf, LaunchError> {
    let binary = match given {
        Some(binary) => binary,
        None => match find_bin(service.binary) {
            Ok(binary) => binary,
            Err(runnel_testkit::Error::BinaryNotFound { searched, .. }) => {
                return Err(LaunchError::MissingBinary {
                    service: service.name,
                    binary: service.binary,
                    looked_in: searched,
                });
            }
            Err(error) => return Err(error.into()),
        },
    };
    let binary = std::path::absolute(&binary).map_err(|source| LaunchError::File {
        action: "resolve",
        path: binary,
        source,
    })?;
    if !binary.is_file() {
        return Err(LaunchError::MissingBinary {
            service: service.name,
            binary: service.binary,
            looked_in: binary.display().to_string(),
        });
    }
    Ok(binary)
}

/// Loads the state with dead pids forgotten.
fn load(dir: &ClusterDir) -> Result<ClusterState, LaunchError> {
    let mut state = ClusterState::load(dir)?.ok_or_else(|| LaunchError::NoCluster {
        dir: dir.root().to_owned(),
    })?;
    state.forget_dead(dir);
    Ok(state)
}

/// Saves the state and rewrites `cluster.env` from it.
fn save(dir: &ClusterDir, state: &ClusterState) -> Result<(), LaunchError> {
    state.save(dir)?;
    dir.write_atomically(&dir.env_file(), &env_file::render(dir, state))
}

fn target_arg(target: Target) -> String {
    match target {
        Target::Etcd => "etcd".to_owned(),
        Target::Broker(id) => id.to_string(),
        Target::Coordinator(id) => format!("coordinator-{id}"),
    }
}
