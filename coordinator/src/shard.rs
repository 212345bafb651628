//! A shard of the consumer groups: the groups whose id hashes onto one partition of
//! `__consumer_offsets`, their live membership, committed offsets and REST instances, and
//! the single writer that appends the shard's changes to its partition.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::assign::{Assignor, Tp};
use crate::brokers::Brokers;
use crate::error::CoordinatorError;
use crate::group::{Group, MemberKind, Subscription};
use crate::metrics::Metrics;
use crate::offsets_log::{Change, Committed, InstanceConfig, OFFSETS_TOPIC, Replayed};

/// A REST consumer instance: its settings and where it reads.
#[derive(Debug)]
pub struct Instance {
    pub config: InstanceConfig,
    /// Next offset to hand out per partition it reads.
    pub positions: BTreeMap<Tp, i64>,
    pub last_seen: Instant,
    /// Serializes the instance's polls, so two concurrent polls never hand out one record twice.
    pub poll: Arc<tokio::sync::Mutex<()>>,
}

impl Instance {
    pub fn new(config: InstanceConfig, now: Instant) -> Self {
        Self {
            config,
            positions: BTreeMap::new(),
            last_seen: now,
            poll: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The subscription this instance's settings name, if any.
    pub fn subscription(&self) -> Option<Subscription> {
        if let Some(pattern) = &self.config.topic_pattern {
            return Subscription::pattern(pattern).ok();
        }
        self.config
            .topics
            .as_ref()
            .map(|t| Subscription::Topics(t.iter().cloned().collect()))
    }
}

/// One group's state in its shard.
#[derive(Debug)]
pub struct GroupData {
    pub group: Group,
    pub offsets: BTreeMap<Tp, Committed>,
    pub instances: BTreeMap<String, Instance>,
}

impl GroupData {
    pub fn new(id: &str, assignor: Assignor) -> Self {
        Self {
            group: Group::new(id, assignor),
            offsets: BTreeMap::new(),
            instances: BTreeMap::new(),
        }
    }

    /// Active consumers: members, and instances reading a manual assignment.
    pub fn active(&self) -> usize {
        self.group.members.len()
            + self
                .instances
                .values()
                .filter(|i| i.config.assignment.is_some())
                .count()
    }

    pub fn is_dead(&self) -> bool {
        self.group.members.is_empty() && self.offsets.is_empty() && self.instances.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct ShardData {
    pub groups: BTreeMap<String, GroupData>,
}

type Apply = Box<dyn FnOnce(&mut ShardData) + Send>;

struct Write {
    changes: Vec<Change>,
    apply: Apply,
    done: oneshot::Sender<Result<(), CoordinatorError>>,
}

/// Settings every shard applies.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub rebalance_timeout: Duration,
    pub instance_timeout: Duration,
    pub default_assignor: Assignor,
}

pub struct Shard {
    pub id: u32,
    /// The shard epoch: the create revision of this coordinator's claim in etcd.
    pub epoch: i64,
    pub settings: GroupSettings,
    data: Mutex<ShardData>,
    loaded: AtomicBool,
    /// Cleared when the shard is given up or lost; the writer stops writing at once.
    owned: Arc<AtomicBool>,
    writer: mpsc::Sender<Write>,
    metrics: Arc<Metrics>,
}

/// Most changes one produce request carries.
const MAX_WRITE_BATCH: usize = 512;

impl Shard {
    /// A shard claimed at `epoch`, not yet loaded; its writer runs until the shard is dropped.
    pub fn new(
        id: u32,
        epoch: i64,
        settings: GroupSettings,
        brokers: Brokers,
        lease_valid: Arc<dyn Fn() -> bool + Send + Sync>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let (writer, queue) = mpsc::channel(4096);
        let owned = Arc::new(AtomicBool::new(true));
        let shard = Arc::new(Self {
            id,
            epoch,
            settings,
            data: Mutex::new(ShardData::default()),
            loaded: AtomicBool::new(false),
            owned: owned.clone(),
            writer,
            metrics,
        });
        tokio::spawn(write_loop(
            Arc::downgrade(&shard),
            queue,
            brokers,
            owned,
            lease_valid,
        ));
        shard
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire) && self.owned.load(Ordering::Acquire)
    }

    pub fn give_up(&self) {
        self.owned.store(false, Ordering::Release);
    }

    /// The shard's state. Never held across an await.
    pub fn data(&self) -> MutexGuard<'_, ShardData> {
        self.data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `changes` to the shard's partition with `acks=all`, then runs `apply` on the
    /// state (in log order with every other write of this shard).
    pub async fn write(
        &self,
        changes: Vec<Change>,
        apply: impl FnOnce(&mut ShardData) + Send + 'static,
    ) -> Result<(), CoordinatorError> {
        let (done, answer) = oneshot::channel();
        let unavailable = || CoordinatorError::CoordinatorNotAvailable { shard: self.id };
        self.writer
            .send(Write {
                changes,
                apply: Box::new(apply),
                done,
            })
            .await
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }

    /// Commits `offsets` (partition, next offset to read, metadata) for `group`: written to
    /// the shard's partition, then recorded in memory. Returns the commit timestamp.
    pub async fn commit(
        &self,
        group: &str,
        offsets: Vec<(Tp, i64, String)>,
    ) -> Result<i64, CoordinatorError> {
        let now = runnel_common::time::now_ms();
        if offsets.is_empty() {
            return Ok(now);
        }
        let committed = move |offset: i64, metadata: String| Committed {
            offset,
            metadata,
            commit_timestamp: now,
        };
        let changes = offsets
            .iter()
            .map(|(tp, offset, metadata)| Change::Commit {
                group: group.to_string(),
                tp: tp.clone(),
                committed: committed(*offset, metadata.clone()),
            })
            .collect();
        let owner = group.to_string();
        let assignor = self.settings.default_assignor;
        self.write(changes, move |data| {
            let g = data
                .groups
                .entry(owner.clone())
                .or_insert_with(|| GroupData::new(&owner, assignor));
            for (tp, offset, metadata) in offsets {
                g.offsets.insert(tp, committed(offset, metadata));
            }
        })
        .await?;
        Ok(now)
    }

    /// Takes the shard over: appends this owner's epoch marker, then replays the partition up
    /// to where the marker landed and rebuilds every group from it.
    pub async fn load(
        &self,
        brokers: &Brokers,
        coordinator_id: u32,
    ) -> Result<(), CoordinatorError> {
        self.write(vec![Change::Marker { coordinator_id }], |_| {})
            .await?;
        let end = brokers
            .offsets(OFFSETS_TOPIC, self.id, None)
            .await?
            .latest_offset;
        let mut replayed = Replayed::default();
        let mut offset = 0;
        let started = Instant::now();
        while offset < end {
            let page = match brokers
                .read(
                    OFFSETS_TOPIC,
                    self.id,
                    offset,
                    8 << 20,
                    Duration::ZERO,
                    "json",
                )
                .await
            {
                Ok(page) => page,
                Err(error) if error.code() == runnel_common::error::ErrorCode::OffsetOutOfRange => {
                    // Retention or compaction moved the log start past us: continue there.
                    offset = brokers
                        .offsets(OFFSETS_TOPIC, self.id, None)
                        .await?
                        .earliest_offset
                        .max(offset + 1);
                    continue;
                }
                Err(error) => return Err(error),
            };
            for record in &page.records {
                replayed.apply(record);
            }
            if page.next_offset <= offset {
                // Nothing below the high watermark yet (a new leader catching up): wait a bit.
                if started.elapsed() > Duration::from_secs(30) {
                    return Err(CoordinatorError::CoordinatorNotAvailable { shard: self.id });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            offset = page.next_offset.max(offset);
        }
        let now = Instant::now();
        let mut data = self.data();
        for (group, offsets) in replayed.offsets {
            let entry = data
                .groups
                .entry(group.clone())
                .or_insert_with(|| GroupData::new(&group, self.settings.default_assignor));
            entry.offsets = offsets;
        }
        for (group, instances) in replayed.instances {
            let entry = data
                .groups
                .entry(group.clone())
                .or_insert_with(|| GroupData::new(&group, self.settings.default_assignor));
            for (name, config) in instances {
                let instance = Instance::new(config, now);
                // Subscribed instances rejoin at once; they read on from the committed offsets.
                if let Some(subscription) = instance.subscription() {
                    entry.group.upsert_rest_member(
                        &name,
                        subscription,
                        self.settings.instance_timeout,
                        now,
                    );
                }
                entry.instances.insert(name, instance);
            }
        }
        data.groups.retain(|_, g| !g.is_dead());
        drop(data);
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Periodic upkeep: expires silent members and idle instances, and moves REST instances
    /// along their reconciliation (committing what they consumed of revoked partitions when
    /// they auto-commit).
    pub async fn sweep(&self, topics: &BTreeMap<String, u32>) {
        let now = Instant::now();
        let mut changes = Vec::new();
        let mut acks: Vec<(String, String)> = Vec::new();
        {
            let mut data = self.data();
            for (id, g) in data.groups.iter_mut() {
                let idle: Vec<String> = g
                    .instances
                    .iter()
                    .filter(|(_, i)| {
                        now.duration_since(i.last_seen) > self.settings.instance_timeout
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                for name in idle {
                    tracing::info!(group = %id, instance = %name, "consumer instance expired");
                    Metrics::add(&self.metrics.instances_expired, 1);
                    g.instances.remove(&name);
                    g.group.remove_member(&name);
                    changes.push(Change::Instance {
                        group: id.clone(),
                        name,
                        config: None,
                    });
                }
                for member in g.group.expire(now) {
                    Metrics::add(&self.metrics.members_expired, 1);
                    tracing::info!(group = %id, member = %member.id, "member expired; its partitions move");
                }
                g.group.refresh_target(topics);
                let rest: Vec<String> = g
                    .group
                    .members
                    .values()
                    .filter(|m| m.kind == MemberKind::RestInstance)
                    .map(|m| m.id.clone())
                    .collect();
                for name in rest {
                    // One step: grants what is free, or starts a revocation. The coordinator
                    // confirms a revocation itself, below, once the positions are committed.
                    g.group.reconcile(&name, None, now);
                    let Some(member) = g.group.members.get(&name) else {
                        continue;
                    };
                    if member.revoking.is_empty() {
                        continue;
                    }
                    if let Some(instance) = g.instances.get_mut(&name) {
                        for tp in &member.revoking {
                            if let Some(position) = instance.positions.remove(tp)
                                && instance.config.auto_commit
                            {
                                changes.push(Change::Commit {
                                    group: id.clone(),
                                    tp: tp.clone(),
                                    committed: Committed {
                                        offset: position,
                                        metadata: String::new(),
                                        commit_timestamp: runnel_common::time::now_ms(),
                                    },
                                });
                            }
                        }
                    }
                    acks.push((id.clone(), name));
                }
            }
            data.groups.retain(|_, g| !g.is_dead());
        }
        if changes.is_empty() && acks.is_empty() {
            return;
        }
        // Revoked partitions are released only once what was consumed of them is committed,
        // so their next owner starts after it.
        let result = self
            .write(changes, move |data| {
                let now = Instant::now();
                for (group, name) in acks {
                    if let Some(g) = data.groups.get_mut(&group)
                        && let Some(member) = g.group.members.get(&name)
                    {
                        let assigned = member.assigned.clone();
                        g.group.reconcile(&name, Some(&assigned), now);
                    }
                }
            })
            .await;
        if let Err(error) = result {
            tracing::warn!(shard = self.id, %error, "sweep could not write");
        }
    }
}

async fn write_loop(
    shard: std::sync::Weak<Shard>,
    mut queue: mpsc::Receiver<Write>,
    brokers: Brokers,
    owned: Arc<AtomicBool>,
    lease_valid: Arc<dyn Fn() -> bool + Send + Sync>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_WRITE_BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let Some(shard) = shard.upgrade() else {
            return;
        };
        // A coordinator that may have lost its lease (or gave the shard up) must not write:
        // another owner may be replaying the partition already.
        let result = if !owned.load(Ordering::Acquire) || !lease_valid() {
            Err(CoordinatorError::CoordinatorNotAvailable { shard: shard.id })
        } else {
            let records: Vec<serde_json::Value> = batch
                .iter()
                .flat_map(|w| w.changes.iter())
                .map(|c| c.to_record(shard.epoch, shard.id))
                .collect();
            let commits = batch
                .iter()
                .flat_map(|w| w.changes.iter())
                .filter(|c| matches!(c, Change::Commit { .. }))
                .count() as u64;
            if records.is_empty() {
                Ok(())
            } else {
                Metrics::add(&shard.metrics.log_writes, 1);
                Metrics::add(&shard.metrics.commits, commits);
                brokers
                    .produce(OFFSETS_TOPIC, shard.id, &records, Duration::from_secs(10))
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => {
                let mut data = shard.data();
                let mut answers = Vec::with_capacity(batch.len());
                for write in batch {
                    (write.apply)(&mut data);
                    answers.push(write.done);
                }
                drop(data);
                for done in answers {
                    let _ = done.send(Ok(()));
                }
            }
            Err(error) => {
                Metrics::add(&shard.metrics.log_write_errors, 1);
                for write in batch {
                    let _ = write.done.send(Err(error.clone()));
                }
            }
        }
    }
}
