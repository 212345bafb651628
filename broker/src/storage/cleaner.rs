//! The log cleaner task: every `--log-cleaner-backoff-ms` it runs a compaction pass
//! (`log::compact::clean`) over each hosted replica whose `cleanup.policy` includes `compact`.
//! Leaders and followers clean their own copies independently, as Kafka's replicas do.
//!
//! Passes run one partition at a time on a blocking thread; the partition's lock is taken only
//! to plan and to swap each rewritten segment in, so produce and reads carry on meanwhile.

use std::sync::Arc;
use std::time::Duration;

use runnel_common::time::now_ms;
use tokio::sync::watch;

use super::{Partition, Storage};
use crate::log::PartitionLog;
use crate::log::compact::{self, LockedLog};

impl LockedLog for Partition {
    fn with_locked<T>(&self, f: impl FnOnce(&mut PartitionLog) -> T) -> T {
        self.with_log(f)
    }
}

/// Starts the cleaner; it stops when `stop` fires.
pub(super) fn spawn(storage: Arc<Storage>, mut stop: watch::Receiver<bool>) {
    let backoff = Duration::from_millis(storage.defaults().cleaner_backoff_ms.max(10));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(backoff);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            for partition in storage.all() {
                if *stop.borrow() {
                    return;
                }
                if !partition.with_log(|log| log.config().cleanup.compact) {
                    continue;
                }
                clean_partition(partition).await;
            }
        }
    });
}

async fn clean_partition(partition: Arc<Partition>) {
    let task_partition = partition.clone();
    let result = tokio::task::spawn_blocking(move || {
        let high_watermark = task_partition.high_watermark();
        compact::clean(&*task_partition, now_ms(), high_watermark)
    })
    .await;
    let (topic, index) = (&partition.topic, partition.partition);
    match result {
        Ok(Ok(Some(stats))) => {
            tracing::info!(
                %topic,
                partition = index,
                segments = stats.segments_rewritten,
                bytes_before = stats.bytes_before,
                bytes_after = stats.bytes_after,
                records_removed = stats.records_removed,
                tombstones_removed = stats.tombstones_removed,
                completed = stats.completed,
                "compacted log"
            );
        }
        Ok(Ok(None)) => {}
        Ok(Err(error)) => {
            tracing::warn!(%topic, partition = index, %error, "log cleaning failed; retrying after the backoff");
        }
        Err(error) => {
            tracing::error!(%topic, partition = index, %error, "log cleaning task failed")
        }
    }
}
