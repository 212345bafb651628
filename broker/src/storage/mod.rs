//! The partition replicas this broker hosts: opening and recovering their logs, removing
//! those of deleted topics, durability (group-commit flushes, interval flushes, recovery-point
//! checkpoints), retention and the log cleaner (compaction).
//!
//! Directory layout under the data dir:
//! ```text
//! meta.json                       {"cluster_id", "broker_id"}: refuses a foreign data dir
//! {topic}-{partition}/partition.json   {"topic_id"}: the topic incarnation the files belong to
//! {topic}-{partition}/{base:020}.log|.index|.timeindex, recovery-point
//! {topic}-{partition}/cleaner-checkpoint   where the last compaction ended
//! {topic}-{partition}/{base:020}.*.cleaned|.swap   a compacted segment being swapped in
//! ```

mod cleaner;
pub mod flusher;
pub mod partition;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use runnel_common::meta::ClusterView;
use runnel_common::time::now_ms;
use serde::{Deserialize, Serialize};

use crate::error::BrokerError;
use crate::log::{LogConfig, PartitionLog};
use crate::replication::Replicator;
use crate::topic_config;
pub use flusher::Flusher;
pub use partition::{Offsets, Partition};

type PartitionKey = (String, u32);

#[derive(Debug, Serialize, Deserialize)]
struct DataDirMeta {
    cluster_id: String,
    broker_id: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct PartitionMeta {
    topic_id: String,
}

/// The hosted replicas.
pub struct Storage {
    data_dir: PathBuf,
    broker_id: u32,
    defaults: LogConfig,
    partitions: RwLock<HashMap<PartitionKey, Arc<Partition>>>,
    flusher: Flusher,
    replicator: Arc<Replicator>,
}

impl Storage {
    /// Opens the data dir, claiming it for `cluster_id`/`broker_id` on first use.
    ///
    /// # Errors
    /// A message when the data dir belongs to another cluster or broker, or cannot be used.
    pub fn open(
        data_dir: &Path,
        cluster_id: &str,
        broker_id: u32,
        defaults: LogConfig,
        replicator: Arc<Replicator>,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
        let meta_path = data_dir.join("meta.json");
        match std::fs::read(&meta_path) {
            Ok(bytes) => {
                let meta: DataDirMeta = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{} is corrupt: {e}", meta_path.display()))?;
                if meta.cluster_id != cluster_id || meta.broker_id != broker_id {
                    return Err(format!(
                        "data dir {} belongs to broker {} of cluster {}, not broker {broker_id} of cluster {cluster_id}; refusing to touch it",
                        data_dir.display(),
                        meta.broker_id,
                        meta.cluster_id
                    ));
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let meta = DataDirMeta {
                    cluster_id: cluster_id.to_string(),
                    broker_id,
                };
                let bytes = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
                crate::log::segment::write_atomically(&meta_path, &bytes)
                    .map_err(|e| format!("cannot write {}: {e}", meta_path.display()))?;
            }
            Err(error) => return Err(format!("cannot read {}: {error}", meta_path.display())),
        }
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            broker_id,
            defaults,
            partitions: RwLock::new(HashMap::new()),
            flusher: replicator.flusher.clone(),
            replicator,
        })
    }

    pub fn defaults(&self) -> &LogConfig {
        &self.defaults
    }

    pub fn replicator(&self) -> &Arc<Replicator> {
        &self.replicator
    }

    /// The hosted replica of `topic`-`partition`, if any.
    pub fn get(&self, topic: &str, partition: u32) -> Option<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.get(&(topic.to_string(), partition)).cloned()
    }

    /// Every hosted replica.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    /// Makes `partition`'s appends so far durable when its `flush.messages` asks for it.
    ///
    /// # Errors
    /// [`BrokerError::Storage`] when the fsync fails: the records may not be durable.
    pub async fn flush_if_due(&self, partition: &Arc<Partition>) -> Result<(), BrokerError> {
        self.flusher.flush_if_due(partition).await.map_err(|e| {
            BrokerError::Storage(format!(
                "fsync of {}-{} failed: {e}",
                partition.topic, partition.partition
            ))
        })
    }

    /// Brings the hosted replicas in line with the metadata: opens logs of partitions assigned
    /// here, deletes those of topics that are gone or re-created, applies config changes.
    pub async fn reconcile(&self, view: &ClusterView) {
        let mut desired: HashMap<PartitionKey, (String, LogConfig)> = HashMap::new();
        for (name, topic) in &view.topics {
            let config = topic_config::effective(&self.defaults, &topic.record.configs);
            for (&index, state) in &topic.partitions {
                if state.replicas.contains(&self.broker_id) {
                    desired.insert(
                        (name.clone(), index),
                        (topic.record.topic_id.clone(), config.clone()),
                    );
                }
            }
        }
        let wanted: Vec<PartitionKey> = desired.keys().cloned().collect();
        let current: Vec<(PartitionKey, Arc<Partition>)> = {
            let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (key, partition) in current {
            match desired.get(&key) {
                Some((topic_id, config)) if *topic_id == partition.topic_id => {
                    if partition.config() != *config {
                        partition.with_log(|log| log.set_config(config.clone()));
                    }
                }
                _ => {
                    partition.go_offline(None);
                    self.partitions
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                    let dir = self.partition_dir(&key.0, key.1);
                    tracing::info!(topic = %key.0, partition = key.1, "removing partition");
                    remove_dir(dir).await;
                }
            }
        }
        for (key, (topic_id, config)) in desired {
            if self.get(&key.0, key.1).is_some() {
                continue;
            }
            let dir = self.partition_dir(&key.0, key.1);
            let (topic, index) = key.clone();
            let opened = tokio::task::spawn_blocking(move || {
                open_partition(&dir, topic, index, topic_id, config)
            })
            .await;
            match opened {
                Ok(Ok(partition)) => {
                    self.partitions
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key, Arc::new(partition));
                }
                Ok(Err(error)) => {
                    tracing::error!(topic = %key.0, partition = key.1, %error, "cannot open partition log");
                }
                Err(error) => tracing::error!(%error, "partition open task failed"),
            }
        }
        for (name, index) in wanted {
            let (Some(partition), Some(topic)) = (self.get(&name, index), view.topics.get(&name))
            else {
                continue;
            };
            let (Some(state), Some(&revision)) = (
                topic.partitions.get(&index),
                topic.partition_revisions.get(&index),
            ) else {
                continue;
            };
            let min_insync = topic_config::min_insync(&topic.record.configs);
            self.replicator
                .apply(&partition, state, revision, min_insync, view)
                .await;
        }
    }

    /// Deletes partition directories that no topic in `view` assigns here (topics deleted
    /// while this broker was down, replicas moved away). Decided from the metadata alone, never
    /// from what failed to open: a log that could not be opened is kept for an operator.
    pub async fn remove_orphans(&self, view: &ClusterView) {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let assigned = name
                .rsplit_once('-')
                .and_then(|(topic, p)| p.parse::<u32>().ok().map(|p| (topic.to_string(), p)))
                .is_some_and(|(topic, p)| {
                    view.topics
                        .get(&topic)
                        .and_then(|t| t.partitions.get(&p))
                        .is_some_and(|state| state.replicas.contains(&self.broker_id))
                });
            if !assigned {
                tracing::info!(dir = %path.display(), "removing data of a partition no longer assigned here");
                remove_dir(path).await;
            }
        }
    }

    /// Starts the interval flush, retention and log cleaner tasks; they stop when `stop` fires.
    pub fn spawn_background(
        self: &Arc<Self>,
        retention_interval: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        cleaner::spawn(self.clone(), stop.clone());
        let storage = self.clone();
        let mut stop_flush = stop.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(50));
            let mut last_checkpoint = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop_flush.changed() => return,
                }
                let now = now_ms();
                for partition in storage.all() {
                    let due = partition.with_log(|log| {
                        log.oldest_unflushed_ms()
                            .is_some_and(|oldest| now - oldest >= log.config().flush_ms)
                    });
                    if due {
                        storage.flusher.request(partition);
                    }
                }
                storage.replicator.maintain_isr(&storage.all()).await;
                if last_checkpoint.elapsed() >= Duration::from_secs(10) {
                    last_checkpoint = tokio::time::Instant::now();
                    storage.checkpoint_all().await;
                }
            }
        });
        let storage = self.clone();
        let mut stop_retention = stop;
        tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval(retention_interval.max(Duration::from_millis(100)));
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop_retention.changed() => return,
                }
                storage.apply_retention().await;
            }
        });
    }

    /// Deletes segments retention no longer keeps, in every hosted partition.
    pub async fn apply_retention(&self) {
        let now = now_ms();
        for partition in self.all() {
            let expired = partition.with_log(|log| log.take_expired_segments(now));
            if expired.is_empty() {
                continue;
            }
            tracing::info!(
                topic = %partition.topic,
                partition = partition.partition,
                segments = expired.len(),
                "retention deleted segments"
            );
            let _ = tokio::task::spawn_blocking(move || {
                for segment in expired {
                    segment.delete_files();
                }
            })
            .await;
        }
    }

    async fn checkpoint_all(&self) {
        let partitions = self.all();
        let _ = tokio::task::spawn_blocking(move || {
            for partition in partitions {
                let high_watermark = partition.high_watermark();
                if let Err(error) = partition.with_log(|log| log.checkpoint(high_watermark)) {
                    tracing::warn!(topic = %partition.topic, partition = partition.partition, %error, "recovery point checkpoint failed");
                }
            }
        })
        .await;
    }

    /// Flushes every partition and checkpoints recovery points: a clean stop.
    pub async fn shutdown(&self) {
        for partition in self.all() {
            if let Err(error) = self.flusher.flush(partition.clone()).await {
                tracing::error!(topic = %partition.topic, partition = partition.partition, %error, "final flush failed");
            }
        }
        self.checkpoint_all().await;
    }

    /// Log size per hosted partition, for metrics.
    pub fn sizes(&self) -> BTreeMap<(String, u32), (u64, Offsets)> {
        self.all()
            .into_iter()
            .map(|p| {
                let size = p.with_log(|log| log.size_bytes());
                ((p.topic.clone(), p.partition), (size, p.offsets()))
            })
            .collect()
    }

    fn partition_dir(&self, topic: &str, partition: u32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }
}

fn open_partition(
    dir: &Path,
    topic: String,
    index: u32,
    topic_id: String,
    config: LogConfig,
) -> Result<Partition, String> {
    let meta_path = dir.join("partition.json");
    if let Ok(bytes) = std::fs::read(&meta_path) {
        // Only a readable record of another topic id proves the files are an earlier topic's;
        // an unreadable one is left for an operator rather than deleted with the data.
        let stale = match serde_json::from_slice::<PartitionMeta>(&bytes) {
            Ok(meta) => meta.topic_id != topic_id,
            Err(error) => {
                return Err(format!(
                    "{} is unreadable ({error}); not touching the partition",
                    meta_path.display()
                ));
            }
        };
        if stale {
            tracing::info!(dir = %dir.display(), "removing files of an earlier topic of the same name");
            std::fs::remove_dir_all(dir).map_err(|e| e.to_string())?;
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    if !meta_path.exists() {
        let bytes = serde_json::to_vec(&PartitionMeta {
            topic_id: topic_id.clone(),
        })
        .map_err(|e| e.to_string())?;
        crate::log::segment::write_atomically(&meta_path, &bytes).map_err(|e| e.to_string())?;
    }
    let (log, report) = PartitionLog::open(dir, config).map_err(|e| e.to_string())?;
    tracing::info!(
        %topic,
        partition = index,
        log_start = log.log_start_offset(),
        log_end = log.log_end_offset(),
        segments = report.segments,
        validated = report.validated_segments,
        truncated_bytes = report.truncated_bytes,
        "opened partition"
    );
    Ok(Partition::new(topic, index, topic_id, log))
}

async fn remove_dir(dir: PathBuf) {
    let result = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err((dir, e)),
        _ => Ok(()),
    })
    .await;
    if let Ok(Err((dir, error))) = result {
        tracing::warn!(dir = %dir.display(), %error, "could not remove directory");
    }
}
