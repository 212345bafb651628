//! The launcher's commands: `up`, `down`, `status`, `kill`, `start`. Processes run detached
//! (own session, output in `DIR/logs/`) so they outlive the command; `DIR/cluster.json` is the
//! only link between invocations and `DIR/cluster.env` is rewritten from it after every change.
//! Commands that change anything hold the DIR's lock.

mod env_file;
mod error;
mod state;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use runnel_testkit::cluster::{BROKER_READY_PATH, broker_args, fetch_cluster_id};
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

/// The process a command is about: `etcd` or a broker id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The cluster's etcd.
    Etcd,
    /// The broker with this id.
    Broker(u32),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "etcd" {
            return Ok(Target::Etcd);
        }
        text.parse()
            .map(Target::Broker)
            .map_err(|_| format!("expected a broker id or `etcd`, got `{text}`"))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Etcd => f.write_str("etcd"),
            Target::Broker(id) => write!(f, "broker {id}"),
        }
    }
}

/// Starts etcd and the brokers of the cluster in `dir` (creating it with `brokers` brokers,
/// default 1), waits until all are ready and writes `cluster.env`. Refuses when any process of
/// the cluster still runs. On failure, stops what it started.
pub async fn up(
    dir: &Path,
    brokers: Option<u32>,
    broker_bin: Option<PathBuf>,
    extra_broker_args: Vec<String>,
) -> Result<ExitCode, LaunchError> {
    let dir = ClusterDir::open(dir, true)?;
    let _lock = dir.lock()?;
    let (mut state, default_brokers) = match ClusterState::load(&dir)? {
        Some(state) => {
            let existing = u32::try_from(state.brokers.len()).unwrap_or(u32::MAX);
            (state, existing)
        }
        None => (ClusterState::fresh()?, 1),
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
    let count = brokers.unwrap_or(default_brokers);
    if (count as usize) < existing {
        return Err(LaunchError::CannotShrink {
            dir: dir.root().to_owned(),
            existing,
        });
    }
    state.grow_to(count)?;
    if !extra_broker_args.is_empty() {
        state.broker_args = extra_broker_args;
    }
    let binary = if count > 0 {
        Some(broker_binary(broker_bin)?)
    } else {
        None
    };
    state.save(&dir)?;

    let started = start_everything(&dir, &mut state, binary.as_deref()).await;
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
    println!(
        "  etcd      pid {:<8} {}",
        state.etcd.pid.unwrap_or(0),
        state.etcd.endpoint()
    );
    for broker in &state.brokers {
        println!(
            "  broker {:<2} pid {:<8} {}",
            broker.id,
            broker.pid.unwrap_or(0),
            broker.url()
        );
    }
    println!(
        "logs in {}; load the environment with: . {}",
        dir.root().join("logs").display(),
        dir.env_file().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Stops the brokers, then etcd, keeping their data; removes the pids from `cluster.env`.
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
        dir.etcd_data(),
    );
    let brokers = state.brokers.iter().map(|b| {
        (
            format!("broker {}", b.id),
            b.pid,
            b.url(),
            BROKER_READY_PATH,
            dir.broker_data(b.id),
        )
    });
    for (name, pid, url, ready_path, marker) in std::iter::once(etcd).chain(brokers) {
        let process_state = pid.map_or(PidState::Gone, |pid| {
            runnel_testkit::pid::state(pid, Some(marker.as_os_str()))
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
        println!("  {name:<9} {what:<18} pid {pid:<8} {url}");
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
    let (pid, marker) = match target {
        Target::Etcd => (state.etcd.pid, dir.etcd_data()),
        Target::Broker(id) => (state.broker_mut(id)?.pid, dir.broker_data(id)),
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
            BROKER_STOP_TIMEOUT
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
    if !wait_gone(pid, Some(marker.as_os_str()), waited).await {
        return Err(LaunchError::StillRunning {
            name: target.to_string(),
            pid,
            waited,
        });
    }
    state.forget_dead(&dir);
    save(&dir, &state)?;
    println!(
        "{target} (pid {pid}) is gone; `start {}` brings it back with its data",
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
            let binary = broker_binary(broker_bin)?;
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
    }
    save(&dir, &state)?;
    let (pid, url) = match target {
        Target::Etcd => (state.etcd.pid, state.etcd.endpoint()),
        Target::Broker(id) => {
            let broker = state.broker_mut(id)?;
            (broker.pid, broker.url())
        }
    };
    println!("{target} ready at {url} (pid {})", pid.unwrap_or(0));
    Ok(ExitCode::SUCCESS)
}

/// Starts etcd, then all brokers in parallel, recording pids as soon as they exist so a
/// failure can stop them; then fetches the cluster id.
async fn start_everything(
    dir: &ClusterDir,
    state: &mut ClusterState,
    binary: Option<&Path>,
) -> Result<(), LaunchError> {
    start_etcd(dir, state).await?;
    state.save(dir)?;
    let Some(binary) = binary else { return Ok(()) };
    let mut brokers = Vec::new();
    for index in 0..state.brokers.len() {
        let mut broker =
            ServiceProcess::new(broker_spec(dir, state, state.brokers[index].id, binary)?);
        broker.start()?;
        state.brokers[index].pid = broker.pid();
        brokers.push(broker);
    }
    state.save(dir)?;
    for broker in &mut brokers {
        broker.wait_ready(BROKER_READY_PATH).await?;
    }
    if let Some(first) = brokers.first() {
        state.cluster_id = Some(fetch_cluster_id(first.base_url(), BROKER_READY_TIMEOUT).await?);
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

/// Stops every running broker (all at once), then etcd. Reports each on stdout; a process
/// that survives even SIGKILL keeps its pid in the state.
async fn stop_everything(dir: &ClusterDir, state: &mut ClusterState) {
    state.forget_dead(dir);
    for pid in state.brokers.iter().filter_map(|broker| broker.pid) {
        // Errors mean it is gone already; terminate below notices.
        let _ = send_signal(pid, libc::SIGTERM);
        let _ = send_signal(pid, libc::SIGCONT);
    }
    for broker in &mut state.brokers {
        let data = dir.broker_data(broker.id);
        if let Some(pid) = broker.pid {
            let termination = terminate(pid, Some(data.as_os_str()), BROKER_STOP_TIMEOUT).await;
            report_stop(
                &format!("broker {}", broker.id),
                pid,
                termination,
                BROKER_STOP_TIMEOUT,
            );
        }
    }
    if let Some(pid) = state.etcd.pid {
        let termination =
            terminate(pid, Some(dir.etcd_data().as_os_str()), ETCD_STOP_TIMEOUT).await;
        report_stop("etcd", pid, termination, ETCD_STOP_TIMEOUT);
    }
    state.forget_dead(dir);
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

/// The broker executable: as given, else `runnel-broker` next to this executable.
fn broker_binary(given: Option<PathBuf>) -> Result<PathBuf, LaunchError> {
    let binary = match given {
        Some(binary) => binary,
        None => find_bin("runnel-broker")?,
    };
    std::path::absolute(&binary).map_err(|source| LaunchError::File {
        action: "resolve",
        path: binary,
        source,
    })
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
    }
}
