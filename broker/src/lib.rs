//! The Runnel broker.
//!
//! # Layout
//! - [`log`]: partition logs on disk (batch codec, segments, indexes, recovery, retention).
//!   Knows nothing of HTTP or etcd.
//! - [`storage`]: the replicas this broker hosts, kept in line with the metadata; durability
//!   (group-commit flusher, interval flushes, checkpoints) and retention.
//! - [`replication`]: replica roles, the follower fetch loop, high watermark and in-sync set.
//! - [`controller`]: the elected controller's decisions (leader election, in-sync removals).
//! - [`topic_config`]: topic config keys, validation, effective log settings.
//! - [`produce`]: request bodies to records, partitioning, appending.
//! - [`api`]: the HTTP routers (the only module that imports axum besides `error`).
//! - [`config`]: flags, environment and config file.
//! - [`error`]: the broker's error enum, mapped onto the shared code table.

pub mod api;
pub mod config;
pub mod controller;
pub mod error;
pub mod log;
pub mod metrics;
pub mod produce;
pub mod replication;
pub mod storage;
pub mod topic_config;

use std::sync::Arc;
use std::time::Duration;

use runnel_common::http::Readiness;
use runnel_common::meta::store::random_id;
use runnel_common::meta::{BrokerRegistration, LeaseClock, MetaStore, MetadataCache};
use runnel_common::startup::retry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::controller::{ControllerSettings, ControllerTrigger};
use crate::replication::{ReplicationSettings, Replicator};
use crate::storage::{Flusher, Storage};

/// Runs a broker on `listener` until `shutdown` completes, then flushes every log, deregisters,
/// and returns.
///
/// # Errors
/// A message when start-up fails (etcd unreachable, data dir unusable) or serving fails.
pub async fn run(
    config: BrokerConfig,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let defaults = config.log_defaults()?;
    let meta = Arc::new(connect_with_retry(&config).await?);
    let cluster_id = retry("read the cluster id", || meta.ensure_cluster_id()).await?;
    let lease_clock = Arc::new(LeaseClock::default());
    let replicator = Arc::new(Replicator {
        broker_id: config.broker_id,
        settings: ReplicationSettings {
            lag_max: Duration::from_millis(config.replica_lag_time_max_ms),
            fetch_max_bytes: config.replica_fetch_max_bytes,
            fetch_wait: Duration::from_millis(config.replica_fetch_wait_max_ms),
            ack_timeout: Duration::from_millis(config.replica_ack_timeout_ms),
        },
        meta: meta.clone(),
        lease: lease_clock.clone(),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the replication HTTP client: {e}"))?,
        flusher: Flusher::start(),
    });
    let storage = Arc::new(Storage::open(
        &config.data_dir,
        &cluster_id,
        config.broker_id,
        defaults,
        replicator,
    )?);
    let cache = retry("list the cluster metadata", || {
        MetadataCache::start((*meta).clone())
    })
    .await?;
    let registration = BrokerRegistration {
        broker_id: config.broker_id,
        url: config.advertised_url(),
        rack: config.rack.clone(),
        incarnation: random_id(),
    };
    wait_for_broker_id(&cache, &registration, config.lease_ttl()).await?;
    let lease = retry("register the broker", || {
        meta.register_broker(&registration, config.lease_ttl(), lease_clock.clone())
    })
    .await?;
    tracing::info!(broker_id = config.broker_id, url = %registration.url, %cluster_id, "broker registered");
    // Serve only once this broker sees its own registration, so what it answers about the
    // cluster includes itself.
    let mut changes = cache.subscribe();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        changes.wait_for(|_| {
            cache
                .view()
                .brokers
                .get(&registration.broker_id)
                .is_some_and(|b| b.incarnation == registration.incarnation)
        }),
    )
    .await;
    // Logs open after registering: a replica's role needs a live lease, and a follower needs
    // its leader's registration.
    let view = cache.view();
    storage.reconcile(&view).await;
    storage.remove_orphans(&view).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let (reconciled_tx, reconciled_rx) = watch::channel(cache.view().revision);
    let (lease_id_tx, lease_id_rx) = watch::channel(lease.lease_id);
    tokio::spawn(reconcile_loop(
        storage.clone(),
        cache.clone(),
        reconciled_tx,
        stop_rx.clone(),
    ));
    let lease_task = tokio::spawn(keep_registered(
        meta.clone(),
        registration,
        config.lease_ttl(),
        lease,
        lease_clock,
        lease_id_tx,
        stop_rx.clone(),
    ));
    let controller_trigger = ControllerTrigger::default();
    tokio::spawn(controller::run(
        config.broker_id,
        meta.clone(),
        cache.clone(),
        lease_id_rx,
        ControllerSettings {
            auto_leader_rebalance: config.auto_leader_rebalance_enable,
            leader_imbalance_check: Duration::from_millis(
                config.leader_imbalance_check_interval_ms,
            ),
        },
        controller_trigger.clone(),
        stop_rx.clone(),
    ));
    storage.spawn_background(
        Duration::from_millis(config.log_retention_check_interval_ms),
        stop_rx.clone(),
    );

    let readiness = Readiness::default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let state = api::AppState {
        config: Arc::new(config),
        cluster_id: cluster_id.into(),
        meta,
        controller: controller_trigger,
        cache,
        storage: storage.clone(),
        metrics: Arc::default(),
        readiness: readiness.clone(),
        reconciled: reconciled_rx,
        sticky: Arc::default(),
        http,
    };
    readiness.set(true);
    let served = runnel_common::http::serve(listener, api::router(state), shutdown).await;
    readiness.set(false);
    tracing::info!("shutting down: flushing logs");
    let _ = stop_tx.send(true);
    storage.shutdown().await;
    if let Ok(Some(lease)) = lease_task.await {
        lease.revoke().await;
    }
    tracing::info!("broker stopped");
    served.map_err(|e| format!("server failed: {e}"))
}

async fn connect_with_retry(config: &BrokerConfig) -> Result<MetaStore, String> {
    retry("connect to etcd", || {
        MetaStore::connect(&config.etcd_endpoints, &config.etcd_prefix)
    })
    .await
}

/// Refuses to start while another live broker holds this id at a different address; a
/// registration at our own address is a previous run of this broker and is replaced.
async fn wait_for_broker_id(
    cache: &MetadataCache,
    registration: &BrokerRegistration,
    ttl: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + ttl * 2;
    loop {
        let view = cache.view();
        match view.brokers.get(&registration.broker_id) {
            Some(existing) if existing.url != registration.url => {
                if tokio::time::Instant::now() > deadline {
                    return Err(format!(
                        "broker id {} is registered by a live broker at {}; ids must be unique",
                        registration.broker_id, existing.url
                    ));
                }
                tracing::warn!(other = %existing.url, "broker id in use elsewhere; waiting for its lease to expire");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => return Ok(()),
        }
    }
}

/// Re-applies metadata to the local replicas whenever it changes.
async fn reconcile_loop(
    storage: Arc<Storage>,
    cache: MetadataCache,
    reconciled: watch::Sender<i64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = cache.subscribe();
    loop {
        let view = cache.view();
        storage.reconcile(&view).await;
        reconciled.send_replace(view.revision);
        // Also re-run every second: a role change that could not complete (etcd unreachable
        // to confirm leadership, a leader not registered yet) is retried without a new event.
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Keeps the registration alive, registering again under a new lease when one is lost
/// (etcd restarted, or this process was paused past the TTL). Returns the live lease on stop.
async fn keep_registered(
    meta: Arc<MetaStore>,
    registration: BrokerRegistration,
    ttl: Duration,
    mut lease: runnel_common::meta::store::LeaseHandle,
    clock: Arc<LeaseClock>,
    lease_id: watch::Sender<i64>,
    mut stop: watch::Receiver<bool>,
) -> Option<runnel_common::meta::store::LeaseHandle> {
    loop {
        let mut alive = lease.alive.clone();
        tokio::select! {
            _ = alive.wait_for(|a| !*a) => {}
            _ = stop.changed() => return Some(lease),
        }
        tracing::warn!("broker lease lost; registering again");
        loop {
            if *stop.borrow() {
                return None;
            }
            match meta
                .register_broker(&registration, ttl, clock.clone())
                .await
            {
                Ok(fresh) => {
                    lease_id.send_replace(fresh.lease_id);
                    lease = fresh;
                    tracing::info!("broker registered again");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "re-registration failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
