//! The controller: one broker, elected through an etcd key under its lease, that decides
//! leaders and removes dead or restarted replicas from in-sync sets (see [`decide`]).
//!
//! Its epoch is the revision that created the controller key. Every write it makes is a
//! transaction that also compares the controller key's create revision with that epoch, so a
//! paused or partitioned ex-controller cannot overwrite a newer controller's decisions.

pub mod decide;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use runnel_common::meta::{MetaStore, MetadataCache};
use tokio::sync::{Notify, watch};

/// Controller settings.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// Move leadership back to preferred replicas automatically.
    pub auto_leader_rebalance: bool,
    /// How often automatic preferred-leader election runs.
    pub leader_imbalance_check: Duration,
}

/// Handle to ask the controller (if this broker is it) for a preferred-leader election now.
#[derive(Clone, Default)]
pub struct ControllerTrigger(Arc<Notify>);

impl ControllerTrigger {
    pub fn elect_preferred(&self) {
        self.0.notify_one();
    }
}

/// Runs for the broker's lifetime: campaigns for the controller key whenever it is free and
/// acts as controller while it holds it. `lease` carries the broker's current lease id.
pub async fn run(
    broker_id: u32,
    meta: Arc<MetaStore>,
    cache: MetadataCache,
    mut lease: watch::Receiver<i64>,
    settings: ControllerSettings,
    trigger: ControllerTrigger,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = cache.subscribe();
    loop {
        if *stop.borrow() {
            return;
        }
        let lease_id = *lease.borrow_and_update();
        if cache.view().controller.is_none() && lease_id != 0 {
            match meta.try_become_controller(broker_id, lease_id).await {
                Ok(Some(epoch)) => {
                    tracing::info!(broker_id, epoch, "became controller");
                    lead(
                        broker_id, epoch, &meta, &cache, &settings, &trigger, &mut stop,
                    )
                    .await;
                    tracing::info!(broker_id, epoch, "no longer controller");
                    continue;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "controller election failed"),
            }
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = lease.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Acts as controller of `epoch` until the controller key is no longer this broker's.
async fn lead(
    broker_id: u32,
    epoch: i64,
    meta: &MetaStore,
    cache: &MetadataCache,
    settings: &ControllerSettings,
    trigger: &ControllerTrigger,
    stop: &mut watch::Receiver<bool>,
) {
    cache
        .wait_for_revision(epoch, Duration::from_secs(10))
        .await;
    let mut changes = cache.subscribe();
    // Restarts are detected from here on: the incarnations seen at takeover are the baseline.
    let mut incarnations: BTreeMap<u32, String> = cache
        .view()
        .brokers
        .iter()
        .map(|(&id, b)| (id, b.incarnation.clone()))
        .collect();
    let mut restarted: BTreeSet<u32> = BTreeSet::new();
    let mut last_rebalance = tokio::time::Instant::now();
    let mut prefer_now = false;
    loop {
        let view = cache.view();
        match &view.controller {
            Some((record, e)) if record.broker_id == broker_id && *e == epoch => {}
            _ => return,
        }
        for (&id, registration) in &view.brokers {
            match incarnations.insert(id, registration.incarnation.clone()) {
                Some(previous) if previous != registration.incarnation => {
                    tracing::info!(
                        broker = id,
                        "broker restarted; it must catch up before it is in sync again"
                    );
                    restarted.insert(id);
                }
                _ => {}
            }
        }
        let prefer = prefer_now
            || (settings.auto_leader_rebalance
                && last_rebalance.elapsed() >= settings.leader_imbalance_check);
        if prefer {
            last_rebalance = tokio::time::Instant::now();
            prefer_now = false;
        }
        let decisions = decide::decide(&view, &restarted, prefer);
        let mut all_applied = true;
        for decision in &decisions {
            match meta
                .update_partition(
                    &decision.topic,
                    decision.partition,
                    &decision.state,
                    decision.expected_revision,
                    Some(epoch),
                )
                .await
            {
                Ok(_) => tracing::info!(
                    topic = %decision.topic,
                    partition = decision.partition,
                    leader = ?decision.state.leader,
                    leader_epoch = decision.state.leader_epoch,
                    isr = ?decision.state.isr,
                    reason = decision.reason,
                    "controller decision"
                ),
                Err(error) => {
                    all_applied = false;
                    tracing::debug!(topic = %decision.topic, partition = decision.partition, %error, "controller decision lost a race; retrying");
                }
            }
        }
        if all_applied {
            restarted.clear();
        }
        let wait = if all_applied {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(100)
        };
        tokio::select! {
            _ = changes.changed() => {}
            _ = trigger.0.notified() => prefer_now = true,
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}
