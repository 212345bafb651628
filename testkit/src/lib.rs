//! Starts real etcd and real Runnel processes on loopback, for integration tests and for the
//! local-cluster launcher (`runnel-cluster`, driven by `scripts/cluster`).
//!
//! It owns process lifecycles (spawn, signal, restart, readiness) and nothing about what the
//! services do: it speaks only `/health`, `/readyz` and `/v3/clusters` over HTTP.
//!
//! # Layout
//! - [`ports`]: free loopback ports, never handed out twice in one process.
//! - [`bin`]: finds sibling binaries in the cargo target dir.
//! - [`spawn`]: the one place a child is forked; ties test children to this process's life.
//! - [`pid`]: signals and liveness of raw pids, for processes this process did not spawn.
//! - [`process`]: [`ServiceProcess`], one service binary with its data dir and log file.
//! - [`etcd`]: [`Etcd`], Debian's etcd on a data dir and two free ports.
//! - [`cluster`]: [`Cluster`], etcd plus N brokers and M coordinators for one test; kills
//!   everything on drop.
//! - [`ready`]: bounded HTTP polling shared by the readiness waits.
//! - [`logs`]: tails of log files for failure messages.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> runnel_testkit::Result<()> {
//! let mut cluster = runnel_testkit::Cluster::builder()
//!     .brokers(3)
//!     .broker_bin(runnel_testkit::find_bin("runnel-broker")?)
//!     .start()
//!     .await?;
//! cluster.broker(2).kill()?;
//! cluster.restart_broker(2).await?;
//! # Ok(()) }
//! ```
//!
//! Coordinators start after the brokers are ready:
//! ```no_run
//! # async fn demo() -> runnel_testkit::Result<()> {
//! let mut cluster = runnel_testkit::Cluster::builder()
//!     .brokers(1)
//!     .coordinators(2)
//!     .start()
//!     .await?;
//! let urls = cluster.coordinator_urls();
//! cluster.restart_coordinator(1).await?;
//! # Ok(()) }
//! ```

pub mod bin;
pub mod cluster;
pub mod error;
pub mod etcd;
pub mod logs;
pub mod pid;
pub mod ports;
pub mod process;
pub mod ready;
pub mod spawn;

pub use bin::find_bin;
pub use cluster::{Cluster, ClusterBuilder};
pub use error::{Error, LogTail, Result};
pub use etcd::{Etcd, EtcdConfig};
pub use ports::free_port;
pub use process::{ServiceProcess, ServiceSpec};
pub use spawn::Launch;
