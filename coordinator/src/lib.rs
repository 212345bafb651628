//! The Runnel group coordinator.
//!
//! # Layout
//! - [`assign`]: the server-side assignors (range, uniform, sticky). Pure.
//! - [`group`]: one group's membership and its incremental reconciliation (KIP-848). Pure.
//! - [`offsets_log`]: the records a shard keeps in `__consumer_offsets` and their replay.
//! - [`shard`]: a shard's groups, offsets and REST instances, and its single log writer.
//! - [`ownership`]: claiming, balancing, loading and giving up shards through etcd leases.
//! - [`brokers`]: topic metadata from etcd, produce and read calls to the brokers.
//! - [`api`]: the HTTP routers (member heartbeats and commits, REST consumer instances,
//!   group administration), forwarding to the owner of a group's shard.
//! - [`metrics`]: Prometheus text on `/metrics`.
//! - [`config`], [`error`].

pub mod api;
pub mod assign;
pub mod brokers;
pub mod config;
pub mod error;
pub mod group;
pub mod metrics;
pub mod offsets_log;
pub mod ownership;
pub mod shard;

use std::sync::Arc;
use std::time::Duration;

use runnel_common::http::Readiness;
use runnel_common::meta::{LeaseClock, MetaStore, MetadataCache};
use runnel_common::startup::retry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::assign::Assignor;
use crate::brokers::Brokers;
use crate::config::CoordinatorConfig;
use crate::ownership::Ownership;
use crate::shard::GroupSettings;

/// Runs a coordinator on `listener` until `shutdown` completes.
///
/// # Errors
/// A message when start-up fails (etcd unreachable, bad settings) or serving fails.
pub async fn run(
    config: CoordinatorConfig,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let default_assignor = Assignor::parse(&config.default_assignor).ok_or_else(|| {
        format!(
            "--default-assignor must be sticky, uniform or range, not {:?}",
            config.default_assignor
        )
    })?;
    let meta = retry("connect to etcd", || {
        MetaStore::connect(&config.etcd_endpoints, &config.etcd_prefix)
    })
    .await?;
    let cache = retry("list the cluster metadata", || {
        MetadataCache::start(meta.clone())
    })
    .await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let brokers = Brokers {
        cache: cache.clone(),
        http: http.clone(),
    };
    let settings = GroupSettings {
        session_timeout: Duration::from_millis(config.session_timeout_ms),
        heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms),
        rebalance_timeout: Duration::from_millis(config.rebalance_timeout_ms),
        instance_timeout: Duration::from_millis(config.instance_timeout_ms),
        default_assignor,
    };
    let ownership = Arc::new(Ownership::new(
        &config,
        meta,
        brokers.clone(),
        settings,
        Arc::new(LeaseClock::default()),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let owner_task = tokio::spawn(ownership.clone().run(stop_rx));
    let readiness = Readiness::default();
    let state = api::AppState {
        config: Arc::new(config),
        ownership: ownership.clone(),
        brokers,
        http,
        readiness: readiness.clone(),
    };
    readiness.set(true);
    let served = runnel_common::http::serve(listener, api::router(state), shutdown).await;
    readiness.set(false);
    let _ = stop_tx.send(true);
    let _ = owner_task.await;
    tracing::info!("coordinator stopped");
    served.map_err(|e| format!("server failed: {e}"))
}
