//! A partition replica hosted by this broker: its log behind a lock, and the high watermark
//! readers wait on.
//!
//! With one replica per partition the high watermark is the log end offset once an append
//! returns; replication (a later capability) will advance it from followers' progress instead.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::log::partition_log::{self, Location};
use crate::log::{AppendInfo, LogConfig, LogError, PartitionLog};

/// A local replica of one partition.
#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub partition: u32,
    pub topic_id: String,
    log: Mutex<PartitionLog>,
    high_watermark: watch::Sender<i64>,
}

/// A snapshot of a partition's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub log_end: i64,
    pub high_watermark: i64,
}

impl Partition {
    pub fn new(topic: String, partition: u32, topic_id: String, log: PartitionLog) -> Self {
        let (high_watermark, _) = watch::channel(log.log_end_offset());
        Self {
            topic,
            partition,
            topic_id,
            log: Mutex::new(log),
            high_watermark,
        }
    }

    /// Runs `f` with the log locked. Never held across an await.
    pub fn with_log<T>(&self, f: impl FnOnce(&mut PartitionLog) -> T) -> T {
        let mut guard = match self.log.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Appends an encoded batch and publishes the new high watermark.
    ///
    /// # Errors
    /// The log's error; nothing is appended then.
    pub fn append(&self, batch: &mut [u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        let info = self.with_log(|log| log.append(batch, 0, now_ms))?;
        self.high_watermark.send_if_modified(|hw| {
            let next = info.last_offset + 1;
            if next > *hw {
                *hw = next;
                true
            } else {
                false
            }
        });
        Ok(info)
    }

    pub fn offsets(&self) -> Offsets {
        let (log_start, log_end) =
            self.with_log(|log| (log.log_start_offset(), log.log_end_offset()));
        Offsets {
            log_start,
            log_end,
            high_watermark: (*self.high_watermark.borrow()).min(log_end),
        }
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn config(&self) -> LogConfig {
        self.with_log(|log| log.config().clone())
    }

    /// Waits until the high watermark passes `offset`, at most `timeout`.
    pub async fn wait_for_data(&self, offset: i64, timeout: Duration) {
        let mut rx = self.high_watermark.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|hw| *hw > offset)).await;
    }

    /// Reads whole batches holding `offset` and after, below the high watermark, up to about
    /// `max_bytes` and about `max_records`. The lock is held only to find the segment, not for the read.
    ///
    /// # Errors
    /// [`LogError::OffsetOutOfRange`] outside the log; I/O errors.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_records: i64,
    ) -> Result<Vec<u8>, LogError> {
        let mut from = offset;
        // Bounded: each round moves to a later segment.
        for _ in 0..1024 {
            let location: Option<Location> = self.with_log(|log| log.locate(from))?;
            let Some(location) = location else {
                return Ok(Vec::new());
            };
            let (bytes, exhausted) =
                partition_log::read_batches(&location, from, max_bytes, max_records)?;
            match (exhausted, location.next_base) {
                (true, Some(next)) => from = next,
                _ => return Ok(bytes),
            }
        }
        Ok(Vec::new())
    }
}
