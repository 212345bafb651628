//! Which coordinator owns which shard. Each coordinator registers under an etcd lease and
//! claims shards under the same lease, up to its fair share (shards / live coordinators,
//! rounded up); one above its share gives shards back one at a time, so a joining coordinator
//! takes some over and a dead one's shards are claimed by the rest once its lease expires.
//! A claimed shard serves only after it has replayed its partition.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use runnel_common::meta::{CoordinatorRegistration, LeaseClock, MetaStore, ShardOwner};
use runnel_common::partitioner::murmur2;
use tokio::sync::watch;

use crate::brokers::Brokers;
use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::metrics::Metrics;
use crate::offsets_log::OFFSETS_TOPIC;
use crate::shard::{GroupSettings, Shard};

/// How often ownership is re-balanced and shards are swept.
const TICK: Duration = Duration::from_millis(250);

pub struct Ownership {
    pub id: u32,
    pub url: String,
    meta: MetaStore,
    pub brokers: Brokers,
    pub settings: GroupSettings,
    lease_ttl: Duration,
    clock: Arc<LeaseClock>,
    offsets_partitions: u32,
    offsets_replication: u32,
    shards: RwLock<BTreeMap<u32, Arc<Shard>>>,
    pub metrics: Arc<Metrics>,
}

/// Where a group is served.
pub enum Route {
    Here(Arc<Shard>),
    /// Another coordinator owns the shard: its URL.
    There(String),
}

impl Ownership {
    pub fn new(
        config: &CoordinatorConfig,
        meta: MetaStore,
        brokers: Brokers,
        settings: GroupSettings,
        clock: Arc<LeaseClock>,
    ) -> Self {
        Self {
            id: config.coordinator_id,
            url: config.advertised_url(),
            meta,
            brokers,
            settings,
            lease_ttl: Duration::from_secs(config.lease_ttl_secs),
            clock,
            offsets_partitions: config.offsets_topic_partitions,
            offsets_replication: config.offsets_topic_replication_factor,
            shards: RwLock::new(BTreeMap::new()),
            metrics: Arc::default(),
        }
    }

    /// The number of shards (partitions of `__consumer_offsets`), once the topic exists.
    pub fn shard_count(&self) -> Option<u32> {
        self.brokers
            .cache
            .view()
            .topics
            .get(OFFSETS_TOPIC)
            .map(|t| t.record.partitions)
    }

    /// Whether every group can be served: `__consumer_offsets` exists, every shard has an
    /// owner, and this coordinator's own shards are loaded. `/readyz` answers from it, so a
    /// launcher that waits for readiness hands out a cluster whose groups answer at once.
    pub fn settled(&self) -> bool {
        let Some(count) = self.shard_count() else {
            return false;
        };
        let view = self.brokers.cache.view();
        (0..count).all(|s| view.shards.contains_key(&s))
            && self.local_shards().iter().all(|s| s.is_loaded())
    }

    /// The shard of `group`: murmur2 of its id, like a keyed record's partition.
    pub fn shard_of(&self, group: &str) -> Result<u32, CoordinatorError> {
        let count = self
            .shard_count()
            .ok_or(CoordinatorError::CoordinatorNotAvailable { shard: 0 })?;
        Ok(runnel_common::partitioner::partition_for_key(
            group.as_bytes(),
            count,
        ))
    }

    /// Where `group` is served now.
    pub fn route(&self, group: &str) -> Result<Route, CoordinatorError> {
        let shard = self.shard_of(group)?;
        if let Some(local) = self.local(shard) {
            if local.is_loaded() && self.clock.is_valid() {
                return Ok(Route::Here(local));
            }
            return Err(CoordinatorError::CoordinatorNotAvailable { shard });
        }
        match self.brokers.cache.view().shards.get(&shard) {
            Some((owner, _)) if owner.coordinator_id != self.id => {
                Ok(Route::There(owner.url.clone()))
            }
            _ => Err(CoordinatorError::CoordinatorNotAvailable { shard }),
        }
    }

    pub fn local(&self, shard: u32) -> Option<Arc<Shard>> {
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard)
            .cloned()
    }

    pub fn local_shards(&self) -> Vec<Arc<Shard>> {
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn drop_shard(&self, shard: u32) -> Option<Arc<Shard>> {
        let removed = self
            .shards
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&shard);
        if let Some(s) = &removed {
            s.give_up();
        }
        removed
    }

    /// Registers, keeps the registration alive, and balances shards until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let registration = CoordinatorRegistration {
            coordinator_id: self.id,
            url: self.url.clone(),
        };
        'register: loop {
            let lease = loop {
                match self
                    .meta
                    .register_coordinator(&registration, self.lease_ttl, self.clock.clone())
                    .await
                {
                    Ok(lease) => break lease,
                    Err(error) => {
                        tracing::warn!(%error, "cannot register the coordinator yet; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }
            };
            tracing::info!(coordinator_id = self.id, url = %self.url, "coordinator registered");
            let mut alive = lease.alive.clone();
            let mut ticker = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = alive.changed() => {}
                    _ = stop.changed() => {
                        for shard in self.local_shards() {
                            self.drop_shard(shard.id);
                        }
                        lease.revoke().await;
                        return;
                    }
                }
                if !*alive.borrow() {
                    tracing::warn!(
                        "coordinator lease lost: giving up every shard and registering again"
                    );
                    for shard in self.local_shards() {
                        self.drop_shard(shard.id);
                    }
                    continue 'register;
                }
                self.balance(lease.lease_id).await;
                let topics = self.brokers.topics();
                for shard in self.local_shards() {
                    if shard.is_loaded() {
                        shard.sweep(&topics).await;
                    }
                }
            }
        }
    }

    async fn balance(self: &Arc<Self>, lease_id: i64) {
        let Some(count) = self.shard_count() else {
            self.create_offsets_topic().await;
            return;
        };
        let view = self.brokers.cache.view();
        // Shards this process holds but etcd no longer shows as its own were lost. A claim
        // newer than the cached view is not judged until the view has caught up with it.
        for shard in self.local_shards() {
            let still = view
                .shards
                .get(&shard.id)
                .is_some_and(|(o, epoch)| o.coordinator_id == self.id && *epoch == shard.epoch);
            if !still && view.revision >= shard.epoch {
                tracing::warn!(shard = shard.id, "shard lost");
                self.drop_shard(shard.id);
            }
        }
        let live = view.coordinators.len().max(1) as u32;
        let fair = count.div_ceil(live) as usize;
        let mine = self.local_shards();
        if mine.len() > fair {
            // Give back the highest one; its groups' members find the new owner on retry.
            if let Some(shard) = mine.iter().max_by_key(|s| s.id) {
                self.drop_shard(shard.id);
                match self.meta.release_shard(shard.id, shard.epoch).await {
                    Ok(_) => tracing::info!(shard = shard.id, "shard released for balance"),
                    Err(error) => tracing::warn!(shard = shard.id, %error, "cannot release shard"),
                }
            }
            return;
        }
        let mut wanted = fair - mine.len();
        // Prefer shards whose rotation puts them near this coordinator's id, so several
        // coordinators starting at once claim different ones first.
        let start = murmur2(&self.id.to_be_bytes()).unsigned_abs() % count;
        for offset in 0..count {
            if wanted == 0 {
                break;
            }
            let shard = (start + offset) % count;
            if view.shards.contains_key(&shard) || self.local(shard).is_some() {
                continue;
            }
            let owner = ShardOwner {
                coordinator_id: self.id,
                url: self.url.clone(),
            };
            match self.meta.claim_shard(shard, &owner, lease_id).await {
                Ok(Some(epoch)) => {
                    wanted -= 1;
                    let clock = self.clock.clone();
                    let local = Shard::new(
                        shard,
                        epoch,
                        self.settings.clone(),
                        self.brokers.clone(),
                        Arc::new(move || clock.is_valid()),
                        self.metrics.clone(),
                    );
                    self.shards
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(shard, local.clone());
                    let this = self.clone();
                    tokio::spawn(async move { this.load(local).await });
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(shard, %error, "cannot claim shard");
                    return;
                }
            }
        }
    }

    async fn load(self: Arc<Self>, shard: Arc<Shard>) {
        let started = std::time::Instant::now();
        for attempt in 0..20 {
            if self
                .local(shard.id)
                .is_none_or(|s| !Arc::ptr_eq(&s, &shard))
            {
                return;
            }
            match shard.load(&self.brokers, self.id).await {
                Ok(()) => {
                    tracing::info!(
                        shard = shard.id,
                        epoch = shard.epoch,
                        ms = started.elapsed().as_millis() as u64,
                        "shard loaded"
                    );
                    return;
                }
                Err(error) => {
                    tracing::warn!(shard = shard.id, attempt, %error, "cannot load shard yet; retrying");
                    tokio::time::sleep(Duration::from_millis(250 * (attempt + 1).min(8))).await;
                }
            }
        }
        tracing::error!(
            shard = shard.id,
            "giving the shard up: it could not be loaded"
        );
        self.drop_shard(shard.id);
        let _ = self.meta.release_shard(shard.id, shard.epoch).await;
    }

    async fn create_offsets_topic(&self) {
        let live = self.brokers.live_brokers() as u32;
        if live == 0 {
            return;
        }
        let replication = self.offsets_replication.min(live).max(1);
        let result = self
            .brokers
            .ensure_topic(
                OFFSETS_TOPIC,
                self.offsets_partitions,
                replication,
                &[
                    ("cleanup.policy", "compact"),
                    ("segment.bytes", "104857600"),
                ],
            )
            .await;
        match result {
            Ok(()) => tracing::info!(
                partitions = self.offsets_partitions,
                replication,
                "{OFFSETS_TOPIC} ready"
            ),
            Err(error) => tracing::warn!(%error, "cannot create {OFFSETS_TOPIC} yet"),
        }
    }
}
