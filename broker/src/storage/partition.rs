//! A partition replica hosted by this broker: its log behind a lock, its role (leader,
//! follower or offline) with the assignment it acts on, the leader's view of its followers,
//! and the high watermark readers wait on.
//!
//! Architecture invariant: the high watermark only moves forward while this replica leads (it
//! is the minimum log end over the in-sync set, see `replication::progress`) or, on a
//! follower, to what its leader reported; readers never see past it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::log::partition_log::{self, Location};
use crate::log::{AppendInfo, LogConfig, LogError, PartitionLog};
use crate::replication::progress::{self, FollowerProgress};

/// What this replica does for its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    /// Not started, or the partition has no leader.
    Offline,
}

/// The partition state this replica acts on, as read from the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub leader: Option<u32>,
    pub leader_epoch: u32,
    pub replicas: Vec<u32>,
    pub isr: Vec<u32>,
    /// etcd mod revision of the partition key this was read at.
    pub revision: i64,
}

#[derive(Debug)]
struct ReplicaState {
    role: Role,
    assignment: Option<Assignment>,
    followers: BTreeMap<u32, FollowerProgress>,
    min_insync: usize,
    /// The follower fetch loop, while following.
    follower_task: Option<JoinHandle<()>>,
}

/// A local replica of one partition.
#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub partition: u32,
    pub topic_id: String,
    log: Mutex<PartitionLog>,
    high_watermark: watch::Sender<i64>,
    log_end: watch::Sender<i64>,
    replica: Mutex<ReplicaState>,
}

/// A snapshot of a partition's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub log_end: i64,
    pub high_watermark: i64,
}

/// Why an append as leader was refused.
#[derive(Debug)]
pub enum LeaderAppendError {
    /// This replica does not lead the partition at `expected_epoch`.
    NotLeader,
    /// Fewer replicas are in sync than `min.insync.replicas` asks for.
    NotEnoughReplicas {
        isr: usize,
        min_insync: usize,
    },
    Log(LogError),
}

/// Why waiting for the high watermark ended without reaching the target.
#[derive(Debug, PartialEq, Eq)]
pub enum AckWaitError {
    /// Leadership moved (or the lease may have expired) while waiting.
    LeadershipLost,
    /// Followers did not confirm in time.
    TimedOut,
}

impl Partition {
    pub fn new(topic: String, partition: u32, topic_id: String, log: PartitionLog) -> Self {
        let hw = log.checkpointed_high_watermark();
        let (high_watermark, _) = watch::channel(hw);
        let (log_end, _) = watch::channel(log.log_end_offset());
        Self {
            topic,
            partition,
            topic_id,
            log: Mutex::new(log),
            high_watermark,
            log_end,
            replica: Mutex::new(ReplicaState {
                role: Role::Offline,
                assignment: None,
                followers: BTreeMap::new(),
                min_insync: 1,
                follower_task: None,
            }),
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

    fn with_replica<T>(&self, f: impl FnOnce(&mut ReplicaState) -> T) -> T {
        let mut guard = match self.replica.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    pub fn role(&self) -> Role {
        self.with_replica(|r| r.role)
    }

    pub fn assignment(&self) -> Option<Assignment> {
        self.with_replica(|r| r.assignment.clone())
    }

    /// Leads the partition under `assignment` (whose leader epoch is new to this replica):
    /// starts the epoch in the log and gives every in-sync follower a fresh grace period.
    ///
    /// # Errors
    /// I/O errors persisting the epoch.
    pub fn become_leader(
        &self,
        assignment: Assignment,
        min_insync: usize,
        now_ms: i64,
    ) -> std::io::Result<()> {
        self.with_log(|log| log.begin_epoch(assignment.leader_epoch as i32))?;
        let old_task = self.with_replica(|r| {
            r.role = Role::Leader;
            r.followers = assignment
                .replicas
                .iter()
                .filter(|&&id| Some(id) != assignment.leader)
                .map(|&id| (id, FollowerProgress::new(now_ms)))
                .collect();
            r.assignment = Some(assignment);
            r.min_insync = min_insync;
            r.follower_task.take()
        });
        if let Some(task) = old_task {
            task.abort();
        }
        // A lone in-sync replica commits everything it has at once; with followers the mark
        // waits for their fetches.
        self.advance_high_watermark(true);
        Ok(())
    }

    /// Follows the leader of `assignment` with the fetch loop `task` (replacing any other).
    pub fn become_follower(&self, assignment: Assignment, task: JoinHandle<()>) {
        let old = self.with_replica(|r| {
            r.role = Role::Follower;
            r.assignment = Some(assignment);
            r.followers.clear();
            r.follower_task.replace(task)
        });
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Stops serving (no live leader, or the partition left this broker).
    pub fn go_offline(&self, assignment: Option<Assignment>) {
        let old = self.with_replica(|r| {
            r.role = Role::Offline;
            r.assignment = assignment;
            r.followers.clear();
            r.follower_task.take()
        });
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Takes a new in-sync set or `min.insync.replicas` within the same leader epoch, and
    /// recomputes the high watermark.
    pub fn update_assignment(&self, assignment: Assignment, min_insync: usize, lease_valid: bool) {
        self.with_replica(|r| {
            r.assignment = Some(assignment);
            r.min_insync = min_insync;
        });
        self.advance_high_watermark(lease_valid);
    }

    /// Takes the in-sync set this leader just wrote at `revision`.
    pub fn update_isr(&self, isr: Vec<u32>, revision: i64, lease_valid: bool) {
        self.with_replica(|r| {
            if let Some(assignment) = r.assignment.as_mut() {
                assignment.isr = isr;
                assignment.revision = revision;
            }
        });
        self.advance_high_watermark(lease_valid);
    }

    /// Appends an encoded batch as leader of `expected_epoch`, publishes the new log end, and
    /// advances the high watermark as far as the in-sync set allows.
    ///
    /// # Errors
    /// [`LeaderAppendError`]: not leader at that epoch, too few in sync (when `require_isr`),
    /// or the log's error (nothing appended).
    pub fn append_as_leader(
        &self,
        batch: &mut [u8],
        expected_epoch: u32,
        require_isr: bool,
        now_ms: i64,
    ) -> Result<AppendInfo, LeaderAppendError> {
        let (role, epoch, isr, min_insync) = self.with_replica(|r| {
            (
                r.role,
                r.assignment.as_ref().map(|a| a.leader_epoch),
                r.assignment.as_ref().map_or(0, |a| a.isr.len()),
                r.min_insync,
            )
        });
        if role != Role::Leader || epoch != Some(expected_epoch) {
            return Err(LeaderAppendError::NotLeader);
        }
        if require_isr && isr < min_insync {
            return Err(LeaderAppendError::NotEnoughReplicas { isr, min_insync });
        }
        let info = self
            .with_log(|log| log.append(batch, expected_epoch as i32, now_ms))
            .map_err(LeaderAppendError::Log)?;
        self.log_end.send_replace(info.last_offset + 1);
        self.advance_high_watermark(true);
        Ok(info)
    }

    /// Appends a batch copied from the leader (follower side).
    ///
    /// # Errors
    /// The log's error: corrupt or non-contiguous batch, I/O.
    pub fn append_replicated(&self, batch: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        let info = self.with_log(|log| log.append_replicated(batch, now_ms))?;
        self.log_end.send_replace(info.last_offset + 1);
        Ok(info)
    }

    /// Sets a follower's high watermark from its leader's, capped by its own log end.
    pub fn set_follower_high_watermark(&self, leader_high_watermark: i64) {
        let log_end = self.with_log(|log| log.log_end_offset());
        self.high_watermark
            .send_replace(leader_high_watermark.min(log_end));
    }

    /// Removes every record at or after `offset` (a follower cutting a divergent tail).
    ///
    /// # Errors
    /// I/O errors.
    pub fn truncate_to(&self, offset: i64) -> std::io::Result<u64> {
        let (removed, log_end) = self.with_log(|log| {
            Ok::<_, std::io::Error>((log.truncate_to(offset)?, log.log_end_offset()))
        })?;
        self.log_end.send_replace(log_end);
        self.high_watermark.send_if_modified(|hw| {
            let capped = (*hw).min(log_end);
            std::mem::replace(hw, capped) != capped
        });
        Ok(removed)
    }

    /// Empties the log and restarts it at `offset` (a follower behind its leader's log start).
    ///
    /// # Errors
    /// I/O errors.
    pub fn reset_to(&self, offset: i64) -> std::io::Result<()> {
        self.with_log(|log| log.reset_to(offset))?;
        self.log_end.send_replace(offset);
        self.high_watermark.send_replace(offset);
        Ok(())
    }

    /// Records a follower's fetch at `fetch_offset` (its log end) and advances the high
    /// watermark. Returns the leader's log end at the time of the fetch.
    pub fn record_fetch(
        &self,
        replica: u32,
        fetch_offset: i64,
        now_ms: i64,
        lease_valid: bool,
    ) -> i64 {
        let log_end = self.with_log(|log| log.log_end_offset());
        self.with_replica(|r| {
            if let Some(progress) = r.followers.get_mut(&replica) {
                progress.on_fetch(fetch_offset, log_end, now_ms);
            }
        });
        self.advance_high_watermark(lease_valid);
        log_end
    }

    /// Recomputes the high watermark as leader. A leader whose lease may have expired does not
    /// advance it: it may already have been replaced.
    fn advance_high_watermark(&self, lease_valid: bool) {
        if !lease_valid {
            return;
        }
        let log_end = self.with_log(|log| log.log_end_offset());
        let next = self.with_replica(|r| {
            let assignment = r.assignment.as_ref()?;
            let leader = assignment.leader?;
            if r.role != Role::Leader {
                return None;
            }
            let current = *self.high_watermark.borrow();
            Some(progress::high_watermark(
                current,
                leader,
                log_end,
                &assignment.isr,
                &r.followers,
                r.min_insync,
            ))
        });
        if let Some(next) = next {
            self.high_watermark.send_if_modified(|hw| {
                if next > *hw {
                    *hw = next;
                    true
                } else {
                    false
                }
            });
        }
    }

    /// The in-sync set this leader should write, if lag calls for a change.
    pub fn isr_change(&self, now_ms: i64, lag_max_ms: i64) -> Option<(Assignment, Vec<u32>)> {
        let epoch_start = self.with_log(|log| log.latest_epoch().map_or(0, |(_, start)| start));
        let high_watermark = self.high_watermark();
        self.with_replica(|r| {
            if r.role != Role::Leader {
                return None;
            }
            let assignment = r.assignment.as_ref()?;
            let leader = assignment.leader?;
            let next = progress::next_isr(
                now_ms,
                lag_max_ms,
                leader,
                &assignment.isr,
                &assignment.replicas,
                &r.followers,
                high_watermark,
                epoch_start,
            )?;
            Some((assignment.clone(), next))
        })
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

    pub fn log_end(&self) -> i64 {
        *self.log_end.borrow()
    }

    pub fn config(&self) -> LogConfig {
        self.with_log(|log| log.config().clone())
    }

    /// Waits until the high watermark passes `offset`, at most `timeout`.
    pub async fn wait_for_data(&self, offset: i64, timeout: Duration) {
        let mut rx = self.high_watermark.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|hw| *hw > offset)).await;
    }

    /// Waits until the log end passes `offset` (a follower waiting at the leader's end), at
    /// most `timeout`.
    pub async fn wait_for_log_end(&self, offset: i64, timeout: Duration) {
        let mut rx = self.log_end.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|end| *end > offset)).await;
    }

    /// Waits until the high watermark reaches `target` while this replica leads at `epoch` and
    /// `lease_valid()` holds, at most `timeout`.
    ///
    /// # Errors
    /// [`AckWaitError`] when leadership is lost or time runs out first.
    pub async fn wait_for_high_watermark(
        &self,
        target: i64,
        epoch: u32,
        timeout: Duration,
        lease_valid: impl Fn() -> bool,
    ) -> Result<(), AckWaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.high_watermark.subscribe();
        loop {
            if *rx.borrow_and_update() >= target {
                return Ok(());
            }
            let leading = self.with_replica(|r| {
                r.role == Role::Leader
                    && r.assignment.as_ref().map(|a| a.leader_epoch) == Some(epoch)
            });
            if !leading || !lease_valid() {
                return Err(AckWaitError::LeadershipLost);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(AckWaitError::TimedOut);
            }
            // Wake on progress, and at least every 100 ms to re-check leadership and lease.
            let wake = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(wake, rx.changed()).await;
        }
    }

    /// Reads whole batches holding `offset` and after, up to about `max_bytes` and about
    /// `max_records`. The lock is held only to find the segment, not for the read. Callers cap
    /// what they return at the high watermark (consumers) or the log end (followers).
    ///
    /// In a compacted log the first batch may start after `offset`, and the empty batches
    /// compaction leaves at segment ends come first, followed by what the next segment holds,
    /// so a page is never only empty batches while records follow.
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
        let mut empty_batches = Vec::new();
        // Bounded: each round moves to a later segment.
        for _ in 0..1024 {
            let location: Option<Location> = self.with_log(|log| log.locate(from))?;
            let Some(location) = location else {
                break;
            };
            let (bytes, exhausted) =
                partition_log::read_batches(&location, from, max_bytes, max_records)?;
            match (exhausted, location.next_base) {
                (true, Some(next)) => {
                    empty_batches.extend_from_slice(&bytes);
                    from = next;
                }
                _ if empty_batches.is_empty() => return Ok(bytes),
                _ => {
                    empty_batches.extend_from_slice(&bytes);
                    break;
                }
            }
        }
        Ok(empty_batches)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let task = self.with_replica(|r| r.follower_task.take());
        if let Some(task) = task {
            task.abort();
        }
    }
}
