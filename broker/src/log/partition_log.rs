//! The log of one partition: an ordered list of segments, the last one active.
//!
//! Architecture invariant: offsets are assigned here, under the caller's lock, in append
//! order; a batch is either wholly in the log or not at all. Everything below the recovery
//! point has been fsynced; recovery on open validates everything above it.
//!
//! A compacted log (see `compact`) has gaps between batches, never between segments: the
//! cleaner keeps the last batch of every segment (empty if need be), so each segment still
//! ends where the next begins and recovery's hole check holds. Reads ask for an offset and get
//! the first batch that ends after it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{self, BatchHeader};
use super::compact::{self, CleanerCheckpoint, CleaningPlan, SegmentSnapshot};
use super::config::LogConfig;
use super::epochs::EpochCache;
use super::segment::{self, CleanedSegment, Segment};

const RECOVERY_POINT_FILE: &str = "recovery-point";
const HIGH_WATERMARK_FILE: &str = "high-watermark";
const CLEANER_CHECKPOINT_FILE: &str = "cleaner-checkpoint";

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] batch::BatchError),
    #[error("log i/o error: {0}")]
    Io(#[from] io::Error),
}

/// What [`PartitionLog::open`] found and repaired.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub validated_segments: usize,
    pub truncated_bytes: u64,
    pub deleted_segments: usize,
    pub rebuilt_indexes: usize,
}

/// Where appended records landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// The part of a segment a reader needs, taken under the lock and read without it.
#[derive(Debug, Clone)]
pub struct Location {
    file: Arc<File>,
    start: u64,
    end: u64,
    /// Base offset of the following segment, where a reader continues when this one holds
    /// nothing at or after its offset.
    pub next_base: Option<i64>,
}

/// Files to fsync and the offset they make durable.
#[derive(Debug)]
pub struct SyncTargets {
    pub files: Vec<Arc<File>>,
    pub upto: i64,
}

#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// By base offset; never empty; the last is the active segment.
    segments: BTreeMap<i64, Segment>,
    recovery_point: i64,
    /// Rolled segments' files not yet fsynced.
    rolled_unsynced: Vec<Arc<File>>,
    /// Wall-clock ms of the oldest append not yet fsynced.
    oldest_unflushed_ms: Option<i64>,
    epochs: EpochCache,
    /// The high watermark read back from the last checkpoint (at most the log end).
    checkpointed_high_watermark: i64,
    /// Where the last cleaning ended, and the oldest tombstone it kept.
    cleaner: CleanerCheckpoint,
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering from an unclean stop.
    ///
    /// Segments at or above the recovery point are read batch by batch and CRC-checked; the
    /// log is cut at the first torn or corrupt batch, and any later segment is deleted (its data
    /// would follow a hole). Indexes that are missing or malformed are rebuilt.
    ///
    /// # Errors
    /// I/O errors.
    pub fn open(dir: &Path, config: LogConfig) -> io::Result<(Self, RecoveryReport)> {
        std::fs::create_dir_all(dir)?;
        segment::recover_swaps(dir)?;
        let recovery_point = read_recovery_point(dir);
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".log")
                && let Ok(base) = stem.parse::<i64>()
            {
                bases.push(base);
            } else if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(dir.join(&*name));
            }
        }
        bases.sort_unstable();
        let mut report = RecoveryReport::default();
        let mut segments = BTreeMap::new();
        let mut cut = false;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            if cut {
                let (stale, _) = Segment::open(
                    dir,
                    base,
                    false,
                    next_base.or(Some(base)),
                    config.index_interval_bytes,
                )?;
                stale.delete_files();
                report.deleted_segments += 1;
                continue;
            }
            let validate = next_base.is_none_or(|next| next > recovery_point);
            let (segment, opened) =
                Segment::open(dir, base, validate, next_base, config.index_interval_bytes)?;
            report.segments += 1;
            report.validated_segments += usize::from(validate);
            report.rebuilt_indexes += usize::from(opened.rebuilt_indexes);
            report.truncated_bytes += opened.truncated_bytes;
            if let Some(next) = next_base
                && segment.next_offset() < next
            {
                // A hole: this segment was cut short. What follows cannot be trusted.
                cut = true;
            }
            if opened.truncated_bytes > 0 {
                cut = true;
            }
            segments.insert(base, segment);
        }
        if segments.is_empty() {
            segments.insert(0, Segment::create(dir, 0)?);
        }
        let mut log = Self {
            dir: dir.to_path_buf(),
            config,
            segments,
            recovery_point: 0,
            rolled_unsynced: Vec::new(),
            oldest_unflushed_ms: None,
            epochs: EpochCache::empty(dir),
            checkpointed_high_watermark: 0,
            cleaner: CleanerCheckpoint::parse(
                &std::fs::read_to_string(dir.join(CLEANER_CHECKPOINT_FILE)).unwrap_or_default(),
            ),
        };
        log.recovery_point = recovery_point.min(log.log_end_offset());
        log.checkpointed_high_watermark = std::fs::read_to_string(dir.join(HIGH_WATERMARK_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0)
            .clamp(log.log_start_offset(), log.log_end_offset());
        log.epochs = match EpochCache::load(dir) {
            Some(mut cache) => {
                if cache.truncate_from(log.log_end_offset()) {
                    cache.persist()?;
                }
                cache
            }
            None => {
                let cache = log.rebuild_epochs()?;
                cache.persist()?;
                cache
            }
        };
        if report.truncated_bytes > 0 || report.deleted_segments > 0 {
            tracing::warn!(dir = %dir.display(), ?report, "recovered a torn or corrupt log tail");
        }
        Ok((log, report))
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.segments.values().next().map_or(0, |s| s.base_offset)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Offsets below this are on disk.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Records appended but not yet fsynced.
    pub fn unflushed_messages(&self) -> u64 {
        (self.log_end_offset() - self.recovery_point).max(0) as u64
    }

    /// Whether `flush.messages` asks for an fsync before the next acknowledgement.
    pub fn flush_due(&self) -> bool {
        self.unflushed_messages() >= self.config.flush_messages
    }

    /// Wall-clock ms of the oldest unflushed append, if any.
    pub fn oldest_unflushed_ms(&self) -> Option<i64> {
        self.oldest_unflushed_ms
    }

    fn active(&self) -> &Segment {
        // The map is never empty: open() and truncation keep one segment.
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has a segment")
    }

    /// Appends an encoded batch (from [`batch::encode`]), stamping its base offset and leader
    /// epoch. Rolls to a new segment first when the active one is full or old.
    ///
    /// # Errors
    /// [`LogError::Io`] when the write fails (the log is unchanged).
    pub fn append(
        &mut self,
        batch: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let base_offset = self.log_end_offset();
        batch::stamp(batch, base_offset, leader_epoch);
        self.append_stamped(batch, now_ms)
    }

    /// Appends a batch that already carries its offsets and leader epoch (a follower copying
    /// its leader's log). Its base offset must be at or after the log end offset: after it
    /// when the leader's log was compacted there.
    ///
    /// # Errors
    /// [`LogError::InvalidBatch`] when the batch is corrupt or starts before the log end; I/O
    /// errors.
    pub fn append_replicated(&mut self, batch: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        let header = batch::check(batch)?;
        if header.base_offset < self.log_end_offset() || header.size != batch.len() {
            return Err(LogError::InvalidBatch(batch::BatchError::Record(
                "replicated batch starts before the log end",
            )));
        }
        self.append_stamped(batch, now_ms)
    }

    fn append_stamped(&mut self, batch: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        let header = BatchHeader::parse(batch)?;
        let base_offset = header.base_offset;
        self.maybe_roll(batch.len() as u64, header.last_offset(), now_ms)?;
        let interval = self.config.index_interval_bytes;
        self.active_mut().append(&header, batch, interval, now_ms)?;
        self.oldest_unflushed_ms.get_or_insert(now_ms);
        if self.epochs.assign(header.leader_epoch, base_offset) {
            self.epochs.persist()?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
        })
    }

    fn maybe_roll(&mut self, incoming: u64, last_offset: i64, now_ms: i64) -> io::Result<()> {
        let config = &self.config;
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let too_big = active.size() + incoming > config.segment_bytes.min(i32::MAX as u64);
        let too_old = active
            .first_batch_timestamp()
            .is_some_and(|first| now_ms.saturating_sub(first) >= config.segment_ms);
        let relative_overflow = last_offset - active.base_offset >= i64::from(u32::MAX);
        if !(too_big || too_old || relative_overflow) {
            return Ok(());
        }
        let base = self.log_end_offset();
        self.active_mut().seal()?;
        let rolled = self.active().file();
        let fresh = Segment::create(&self.dir, base)?;
        self.rolled_unsynced.push(rolled);
        self.segments.insert(base, fresh);
        tracing::debug!(dir = %self.dir.display(), base, "rolled segment");
        Ok(())
    }

    /// Where to read from for `offset`. `Ok(None)` when `offset` is the log end (nothing yet).
    ///
    /// # Errors
    /// [`LogError::OffsetOutOfRange`] below the log start or past the log end.
    pub fn locate(&self, offset: i64) -> Result<Option<Location>, LogError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        if offset == log_end {
            return Ok(None);
        }
        let Some((&base, segment)) = self.segments.range(..=offset).next_back() else {
            return Ok(None);
        };
        Ok(Some(Location {
            file: segment.file(),
            start: segment.scan_start(offset),
            end: segment.size(),
            next_base: self.segments.range(base + 1..).next().map(|(&b, _)| b),
        }))
    }

    /// The first record at or after `timestamp`: its offset and timestamp; `None` if every
    /// record is older.
    ///
    /// # Errors
    /// I/O errors reading the segments.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        for segment in self.segments.values() {
            if segment.max_timestamp() < timestamp {
                continue;
            }
            let start_offset = segment.time_scan_start(timestamp);
            let location = Location {
                file: segment.file(),
                start: segment.scan_start(start_offset),
                end: segment.size(),
                next_base: None,
            };
            let mut position = location.start;
            while position < location.end {
                let header = segment::read_header(&location.file, position, location.end)?;
                if header.max_timestamp >= timestamp {
                    let mut bytes = vec![0u8; header.size];
                    location.file.read_exact_at(&mut bytes, position)?;
                    let header = batch::validate(&bytes)?;
                    for record in batch::records(&header, &bytes) {
                        let record = record?;
                        if record.timestamp >= timestamp {
                            return Ok(Some((record.offset, record.timestamp)));
                        }
                    }
                }
                position += header.size as u64;
            }
        }
        Ok(None)
    }

    /// Takes what a flush must fsync to make everything appended so far durable.
    pub fn sync_targets(&mut self) -> SyncTargets {
        let mut files: Vec<Arc<File>> = self.rolled_unsynced.drain(..).collect();
        files.push(self.active().file());
        SyncTargets {
            files,
            upto: self.log_end_offset(),
        }
    }

    /// Records that a flush of [`SyncTargets`] up to `upto` completed.
    pub fn mark_flushed(&mut self, upto: i64) {
        if upto > self.recovery_point {
            self.recovery_point = upto;
        }
        if self.recovery_point >= self.log_end_offset() {
            self.oldest_unflushed_ms = None;
        }
    }

    /// Persists the recovery point (so the next open validates only what follows it) and the
    /// high watermark (so a restarted replica does not expose records never committed).
    ///
    /// # Errors
    /// I/O errors writing the checkpoints.
    pub fn checkpoint(&self, high_watermark: i64) -> io::Result<()> {
        segment::write_atomically(
            &self.dir.join(RECOVERY_POINT_FILE),
            self.recovery_point.to_string().as_bytes(),
        )?;
        segment::write_atomically(
            &self.dir.join(HIGH_WATERMARK_FILE),
            high_watermark.to_string().as_bytes(),
        )
    }

    /// The high watermark of the last checkpoint, clamped to the log.
    pub fn checkpointed_high_watermark(&self) -> i64 {
        self.checkpointed_high_watermark
    }

    /// The latest leader epoch and its start offset.
    pub fn latest_epoch(&self) -> Option<(i32, i64)> {
        self.epochs.latest()
    }

    /// Records that a new leader epoch starts at the log end (this replica became leader).
    ///
    /// # Errors
    /// I/O errors persisting the epoch cache.
    pub fn begin_epoch(&mut self, epoch: i32) -> io::Result<()> {
        let start = self.log_end_offset();
        if self.epochs.assign(epoch, start) {
            self.epochs.persist()?;
        }
        Ok(())
    }

    /// Where `epoch` ends in this log (see [`EpochCache::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// Rebuilds the epoch cache from the leader epochs stamped in the batches.
    fn rebuild_epochs(&self) -> io::Result<EpochCache> {
        let mut cache = EpochCache::empty(&self.dir);
        for segment in self.segments.values() {
            let file = segment.file();
            let mut window = Window::new(&file, segment.size());
            let mut position = 0;
            while position < segment.size() {
                let header = window.header_at(position)?;
                cache.assign(header.leader_epoch, header.base_offset);
                position += header.size as u64;
            }
        }
        Ok(cache)
    }

    /// Removes rolled segments that retention no longer keeps and returns them; the caller
    /// deletes their files outside the lock. The active segment is never removed.
    pub fn take_expired_segments(&mut self, now_ms: i64) -> Vec<Segment> {
        let mut expired = Vec::new();
        if !self.config.cleanup.delete {
            return expired;
        }
        let mut total = self.size_bytes() as i64;
        while self.segments.len() > 1 {
            let Some(first) = self.segments.values().next() else {
                break;
            };
            let by_time = self.config.retention_ms >= 0
                && first.max_timestamp() < now_ms.saturating_sub(self.config.retention_ms);
            let by_size = self.config.retention_bytes >= 0
                && total - self.config.retention_bytes >= first.size() as i64;
            if !(by_time || by_size) {
                break;
            }
            let Some((_, segment)) = self.segments.pop_first() else {
                break;
            };
            total -= segment.size() as i64;
            expired.push(segment);
        }
        if !expired.is_empty() && self.epochs.truncate_before(self.log_start_offset()) {
            // A stale cache only keeps an extra epoch entry; it is rewritten on the next change.
            let _ = self.epochs.persist();
        }
        expired
    }

    /// Removes every record at or after `offset` (a follower diverging from its leader, or a
    /// test). Returns the bytes removed.
    ///
    /// # Errors
    /// I/O errors truncating.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<u64> {
        let mut removed = 0;
        while self.segments.len() > 1 {
            let Some((&base, _)) = self.segments.iter().next_back() else {
                break;
            };
            if base < offset {
                break;
            }
            if let Some(segment) = self.segments.remove(&base) {
                removed += segment.size();
                segment.delete_files();
            }
        }
        let active = self.active_mut();
        let old_base = active.base_offset;
        let base = offset.max(0);
        if old_base == base {
            removed += active.truncate_to_offset(base)?;
        } else if old_base > offset {
            // Everything goes. The new empty segment is created first, so the log is never
            // left without one if that fails.
            let fresh = Segment::create(&self.dir, base)?;
            if let Some(old) = self.segments.remove(&old_base) {
                removed += old.size();
                old.delete_files();
            }
            self.segments.insert(base, fresh);
        } else {
            removed += active.truncate_to_offset(offset)?;
        }
        self.recovery_point = self.recovery_point.min(self.log_end_offset());
        self.checkpointed_high_watermark =
            self.checkpointed_high_watermark.min(self.log_end_offset());
        if self.epochs.truncate_from(self.log_end_offset()) {
            self.epochs.persist()?;
        }
        Ok(removed)
    }

    /// Deletes every segment and restarts the log, empty, at `offset` (a follower whose leader
    /// no longer has what it would fetch next).
    ///
    /// # Errors
    /// I/O errors.
    pub fn reset_to(&mut self, offset: i64) -> io::Result<()> {
        let fresh_base = offset.max(0);
        let old: Vec<i64> = self.segments.keys().copied().collect();
        for base in old {
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete_files();
            }
        }
        self.segments
            .insert(fresh_base, Segment::create(&self.dir, fresh_base)?);
        self.recovery_point = fresh_base;
        self.checkpointed_high_watermark = fresh_base;
        self.rolled_unsynced.clear();
        self.epochs = EpochCache::empty(&self.dir);
        self.epochs.persist()
    }

    /// What the cleaner should compact now, if anything: the rolled segments that are fsynced,
    /// entirely below `high_watermark` (what is not committed may still be truncated, and with
    /// it the record that made an older one obsolete) and old enough for
    /// `min.compaction.lag.ms`, when enough of them is dirty or a kept tombstone's time is up
    /// (see [`compact::cleanable_prefix`]). Cheap: taken under the lock.
    pub fn cleaning_plan(&self, now_ms: i64, high_watermark: i64) -> Option<CleaningPlan> {
        if !self.config.cleanup.compact || self.segments.len() < 2 {
            return None;
        }
        let sealed: Vec<SegmentSnapshot> = self
            .segments
            .values()
            .take(self.segments.len() - 1)
            .map(SegmentSnapshot::of)
            .collect();
        let count = compact::cleanable_prefix(
            &sealed,
            self.recovery_point.min(high_watermark),
            &self.cleaner,
            &self.config,
            now_ms,
        );
        if count == 0 {
            return None;
        }
        let mut segments = sealed;
        segments.truncate(count);
        Some(CleaningPlan {
            dir: self.dir.clone(),
            end_offset: segments.last().map_or(0, |s| s.next_offset),
            segments,
            delete_retention_ms: self.config.delete_retention_ms,
            index_interval_bytes: self.config.index_interval_bytes,
        })
    }

    /// Swaps `cleaned` in for the segment `source` was taken from, if that segment is still in
    /// the log as it was copied: same file, same size, still rolled (retention, truncation or
    /// a reset may have changed it since). Otherwise deletes the copy and returns `false`.
    ///
    /// # Errors
    /// I/O errors renaming; the log keeps the original segment in memory, and recovery
    /// finishes or rolls back the swap on the next open.
    pub fn replace_segment(
        &mut self,
        source: &SegmentSnapshot,
        cleaned: CleanedSegment,
    ) -> io::Result<bool> {
        let unchanged = self
            .segments
            .range(source.base_offset + 1..)
            .next()
            .is_some()
            && self
                .segments
                .get(&source.base_offset)
                .is_some_and(|current| source.is(current));
        if !unchanged {
            cleaned.discard();
            return Ok(false);
        }
        let segment = cleaned.install(source.next_offset)?;
        self.segments.insert(source.base_offset, segment);
        Ok(true)
    }

    /// Records that a cleaning covered the log up to `end_offset` and kept tombstones as old as
    /// `oldest_tombstone`, persisting it (it decides when to clean next, not what is kept).
    ///
    /// # Errors
    /// I/O errors writing the checkpoint.
    pub fn record_cleaning(
        &mut self,
        end_offset: i64,
        oldest_tombstone: Option<i64>,
    ) -> io::Result<()> {
        self.cleaner = CleanerCheckpoint {
            first_dirty_offset: end_offset,
            oldest_tombstone,
        };
        segment::write_atomically(
            &self.dir.join(CLEANER_CHECKPOINT_FILE),
            self.cleaner.render().as_bytes(),
        )
    }

    /// Checks every batch of every segment (CRC, order, contiguity). For tests and tools.
    ///
    /// # Errors
    /// A description of the first problem found.
    pub fn verify(&self) -> Result<u64, String> {
        let mut expected = self.log_start_offset();
        let mut records = 0u64;
        for segment in self.segments.values() {
            if segment.base_offset != expected {
                return Err(format!(
                    "segment {} starts where the log holds offset {expected}",
                    segment.base_offset
                ));
            }
            let file = segment.file();
            let mut position = 0;
            while position < segment.size() {
                let header = segment::read_header(&file, position, segment.size())
                    .map_err(|e| format!("segment {} at {position}: {e}", segment.base_offset))?;
                let mut bytes = vec![0u8; header.size];
                file.read_exact_at(&mut bytes, position)
                    .map_err(|e| format!("segment {} at {position}: {e}", segment.base_offset))?;
                batch::validate(&bytes)
                    .map_err(|e| format!("segment {} at {position}: {e}", segment.base_offset))?;
                // Compaction leaves gaps between batches, never overlaps.
                if header.base_offset < expected {
                    return Err(format!(
                        "expected offset {expected} or later, found batch at {}",
                        header.base_offset
                    ));
                }
                expected = header.next_offset();
                records += header.record_count as u64;
                position += header.size as u64;
            }
        }
        if expected != self.log_end_offset() {
            return Err(format!(
                "log end {} but batches end at {expected}",
                self.log_end_offset()
            ));
        }
        Ok(records)
    }
}

fn read_recovery_point(dir: &Path) -> i64 {
    std::fs::read_to_string(dir.join(RECOVERY_POINT_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads whole batches from `location`, starting with the first batch that ends after
/// `offset` (it holds `offset`, or in a compacted log may start after it), up to `max_bytes`
/// (but always at least one whole batch with records, so a large batch cannot stall a reader)
/// and no further than the batch that reaches `offset + max_records`.
///
/// Returns the bytes and whether the segment ended without a record at or after `offset`;
/// the bytes then hold only the empty batches compaction leaves at a segment's end, which a
/// caller moving on to the next segment keeps in front of what it reads there (a follower must
/// copy them; a consumer skips them).
///
/// # Errors
/// I/O errors; `InvalidData` if the segment is malformed.
pub fn read_batches(
    location: &Location,
    offset: i64,
    max_bytes: usize,
    max_records: i64,
) -> io::Result<(Vec<u8>, bool)> {
    let mut window = Window::new(&location.file, location.end);
    let mut position = location.start;
    // Skip batches that end before `offset`.
    loop {
        if position >= location.end {
            return Ok((Vec::new(), true));
        }
        let header = window.header_at(position)?;
        if header.next_offset() > offset {
            break;
        }
        position += header.size as u64;
    }
    let begin = position;
    let enough = offset.saturating_add(max_records.max(1));
    let mut found_records = false;
    while position < location.end {
        let header = window.header_at(position)?;
        let taken = position - begin;
        if found_records && taken + header.size as u64 > max_bytes as u64 {
            break;
        }
        position += header.size as u64;
        found_records |= header.record_count > 0;
        if found_records && header.next_offset() >= enough {
            break;
        }
    }
    let mut bytes = vec![0u8; (position - begin) as usize];
    location.file.read_exact_at(&mut bytes, begin)?;
    Ok((bytes, !found_records))
}

/// A read-ahead window over a segment file, so walking many small batch headers costs one
/// `pread` per 8 KiB rather than one per batch.
struct Window<'a> {
    file: &'a File,
    limit: u64,
    start: u64,
    bytes: Vec<u8>,
}

impl<'a> Window<'a> {
    const SIZE: u64 = 8 * 1024;

    fn new(file: &'a File, limit: u64) -> Self {
        Self {
            file,
            limit,
            start: 0,
            bytes: Vec::new(),
        }
    }

    fn header_at(&mut self, position: u64) -> io::Result<BatchHeader> {
        let need = batch::HEADER_LEN as u64;
        if position + need > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "batch header past the end",
            ));
        }
        if position < self.start || position + need > self.start + self.bytes.len() as u64 {
            let len = Self::SIZE.max(need).min(self.limit - position);
            self.bytes.resize(len as usize, 0);
            self.file.read_exact_at(&mut self.bytes, position)?;
            self.start = position;
        }
        let at = (position - self.start) as usize;
        let header = BatchHeader::parse(&self.bytes[at..at + batch::HEADER_LEN])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        if position + header.size as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "batch past the end",
            ));
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::log::batch::NewRecord;

    fn config(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 64,
            ..LogConfig::default()
        }
    }

    fn append_values(log: &mut PartitionLog, values: &[&str], timestamp: i64) -> AppendInfo {
        let records: Vec<NewRecord<'_>> = values
            .iter()
            .map(|v| NewRecord {
                key: None,
                value: Some(Cow::Borrowed(v.as_bytes())),
                headers: Vec::new(),
                timestamp,
            })
            .collect();
        let mut encoded = batch::encode(&records, None);
        log.append(&mut encoded, 0, timestamp).expect("append")
    }

    fn read_all(log: &PartitionLog, from: i64) -> Vec<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut offset = from;
        while offset < log.log_end_offset() {
            let location = log.locate(offset).expect("in range").expect("data");
            let (bytes, exhausted) =
                read_batches(&location, offset, 1 << 20, i64::MAX).expect("read");
            if exhausted {
                offset = location.next_base.expect("next segment");
                continue;
            }
            let mut position = 0;
            while position < bytes.len() {
                let header = batch::validate(&bytes[position..]).expect("valid");
                for record in batch::records(&header, &bytes[position..position + header.size]) {
                    let record = record.expect("record");
                    if record.offset >= offset {
                        out.push((record.offset, record.value.expect("value").to_vec()));
                    }
                }
                position += header.size;
            }
            offset = out.last().map_or(offset, |(o, _)| o + 1);
        }
        out
    }

    #[test]
    fn appends_roll_and_read_back_across_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = PartitionLog::open(dir.path(), config(300)).expect("open");
        for i in 0..50 {
            let value = format!("value-{i:03}");
            let info = append_values(&mut log, &[&value], 1000 + i);
            assert_eq!(info.base_offset, i);
        }
        assert!(
            log.segment_count() > 3,
            "expected rolls, got {}",
            log.segment_count()
        );
        let all = read_all(&log, 0);
        assert_eq!(all.len(), 50);
        for (i, (offset, value)) in all.iter().enumerate() {
            assert_eq!(*offset, i as i64);
            assert_eq!(value, format!("value-{i:03}").as_bytes());
        }
        assert_eq!(read_all(&log, 37)[0].0, 37);
        assert_eq!(log.verify(), Ok(50));
    }

    #[test]
    fn reopening_keeps_everything_and_continues_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut log, _) = PartitionLog::open(dir.path(), config(300)).expect("open");
            for i in 0..20 {
                append_values(&mut log, &["a", "b"], i);
            }
            let targets = log.sync_targets();
            log.mark_flushed(targets.upto);
            log.checkpoint(0).expect("checkpoint");
        }
        let (mut log, report) = PartitionLog::open(dir.path(), config(300)).expect("reopen");
        assert_eq!(report.truncated_bytes, 0);
        assert!(
            report.validated_segments < report.segments,
            "checkpoint should spare old segments"
        );
        assert_eq!(log.log_end_offset(), 40);
        assert_eq!(append_values(&mut log, &["c"], 99).base_offset, 40);
        assert_eq!(log.verify(), Ok(41));
    }

    /// Cutting the active segment at any byte recovers exactly the whole batches before the
    /// cut: a torn write never leaves a partial batch, and nothing before it is lost.
    #[test]
    fn truncating_the_tail_at_any_byte_recovers_a_valid_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ends = vec![0u64];
        {
            let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).expect("open");
            for i in 0..5 {
                append_values(&mut log, &["first", "second", &format!("third-{i}")], i);
                ends.push(log.size_bytes());
            }
        }
        let path = dir.path().join(format!("{}.log", segment::file_stem(0)));
        let original = std::fs::read(&path).expect("read");
        for cut in 0..original.len() {
            std::fs::write(&path, &original[..cut]).expect("write");
            let (log, _) = PartitionLog::open(dir.path(), config(1 << 20)).expect("recover");
            let whole_batches = ends.iter().filter(|&&end| end <= cut as u64).count() - 1;
            assert_eq!(
                log.log_end_offset(),
                whole_batches as i64 * 3,
                "cut at {cut}"
            );
            assert_eq!(log.verify(), Ok(whole_batches as u64 * 3));
        }
    }

    #[test]
    fn a_corrupt_batch_truncates_it_and_what_follows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let second_batch_at;
        {
            let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).expect("open");
            append_values(&mut log, &["ok"], 1);
            second_batch_at = log.size_bytes();
            append_values(&mut log, &["corrupt-me"], 2);
            append_values(&mut log, &["after"], 3);
        }
        let path = dir.path().join(format!("{}.log", segment::file_stem(0)));
        let mut bytes = std::fs::read(&path).expect("read");
        let flip = second_batch_at as usize + 70;
        bytes[flip] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let (log, report) = PartitionLog::open(dir.path(), config(1 << 20)).expect("recover");
        assert!(report.truncated_bytes > 0);
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(read_all(&log, 0), vec![(0, b"ok".to_vec())]);
    }

    #[test]
    fn missing_or_garbage_indexes_are_rebuilt() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut log, _) = PartitionLog::open(dir.path(), config(400)).expect("open");
            for i in 0..30 {
                append_values(&mut log, &[&format!("v{i}")], i);
            }
            let targets = log.sync_targets();
            log.mark_flushed(targets.upto);
            log.checkpoint(0).expect("checkpoint");
        }
        let mut indexes: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "index"))
            .collect();
        indexes.sort();
        std::fs::remove_file(&indexes[0]).expect("remove");
        std::fs::write(&indexes[1], b"garbage!!").expect("garble");
        let (log, report) = PartitionLog::open(dir.path(), config(400)).expect("reopen");
        assert!(report.rebuilt_indexes >= 2);
        let all = read_all(&log, 0);
        assert_eq!(all.len(), 30);
        assert_eq!(read_all(&log, 17)[0], (17, b"v17".to_vec()));
    }

    #[test]
    fn retention_removes_only_old_or_excess_rolled_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = PartitionLog::open(dir.path(), config(200)).expect("open");
        for i in 0..10 {
            append_values(&mut log, &[&format!("old-{i}")], 1_000);
        }
        for i in 0..10 {
            append_values(&mut log, &[&format!("new-{i}")], 1_000_000);
        }
        let segments = log.segment_count();
        log.config.retention_ms = 10_000;
        let expired = log.take_expired_segments(1_005_000);
        assert!(!expired.is_empty());
        for segment in &expired {
            assert!(segment.max_timestamp() < 1_000_000);
        }
        assert_eq!(log.segment_count(), segments - expired.len());
        // Every new record is still there.
        let remaining = read_all(&log, log.log_start_offset());
        assert!(
            remaining
                .iter()
                .filter(|(_, v)| v.starts_with(b"new"))
                .count()
                == 10
        );
        log.config.retention_ms = -1;
        log.config.retention_bytes = 0;
        log.take_expired_segments(1_005_000);
        assert_eq!(log.segment_count(), 1, "the active segment always stays");
        assert_eq!(log.log_end_offset(), 20);
    }

    #[test]
    fn segments_roll_by_age() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config(1 << 20);
        config.segment_ms = 1000;
        let (mut log, _) = PartitionLog::open(dir.path(), config).expect("open");
        let append_at = |log: &mut PartitionLog, now: i64| {
            let mut encoded = batch::encode(
                &[NewRecord {
                    key: None,
                    value: Some(Cow::Borrowed(b"v")),
                    headers: Vec::new(),
                    timestamp: 5,
                }],
                None,
            );
            log.append(&mut encoded, 0, now).expect("append");
        };
        append_at(&mut log, 10_000);
        append_at(&mut log, 10_500);
        assert_eq!(log.segment_count(), 1, "younger than segment.ms: no roll");
        append_at(&mut log, 11_000);
        assert_eq!(log.segment_count(), 2, "segment.ms reached: rolled");
        assert_eq!(log.verify(), Ok(3));
    }

    #[test]
    fn finds_offsets_by_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = PartitionLog::open(dir.path(), config(200)).expect("open");
        for i in 0..20 {
            append_values(&mut log, &["x"], 100 + i * 10);
        }
        assert_eq!(log.offset_for_timestamp(0).expect("ok"), Some((0, 100)));
        assert_eq!(log.offset_for_timestamp(155).expect("ok"), Some((6, 160)));
        assert_eq!(log.offset_for_timestamp(290).expect("ok"), Some((19, 290)));
        assert_eq!(log.offset_for_timestamp(291).expect("ok"), None);
    }

    #[test]
    fn truncate_to_removes_the_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = PartitionLog::open(dir.path(), config(200)).expect("open");
        for i in 0..20 {
            append_values(&mut log, &["x"], i);
        }
        log.truncate_to(7).expect("truncate");
        assert_eq!(log.log_end_offset(), 7);
        assert_eq!(log.verify(), Ok(7));
        assert_eq!(append_values(&mut log, &["y"], 0).base_offset, 7);
    }
}
