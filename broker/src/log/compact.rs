//! Log compaction (`cleanup.policy=compact`): rewriting a log's rolled segments so that only
//! the latest record of each key remains, at its original offset.
//!
//! Architecture invariant: like the rest of `log`, this knows nothing of HTTP, etcd or topics.
//! It reads and writes segment files without the log's lock and takes the lock (through
//! [`LockedLog`]) only to pick the segments and to swap each rewritten one in.
//!
//! The rules:
//! - **Cleanable**: the rolled segments from the log start on, as long as they are fsynced
//!   (below the recovery point) and their newest record is at least `min.compaction.lag.ms`
//!   old. The active segment never is.
//! - **When**: a log is cleaned once the dirty bytes (cleanable segments past where the last
//!   cleaning ended) are at least `min.cleanable.dirty.ratio` of its cleanable bytes, or once a
//!   tombstone the last cleaning kept is due for removal.
//! - **Kept**: a record is kept when its offset is the latest of its key in the cleanable
//!   segments. Records without a key are dropped (a compacted topic refuses them; they can
//!   only predate a change of policy), as Kafka's cleaner does.
//! - **Tombstones** (null value) are kept while `now - timestamp < delete.retention.ms` and
//!   dropped by the first cleaning after. The timestamp is the record's own (under
//!   `LogAppendTime`, its append time), the clock `retention.ms` uses too. Kafka counts from the
//!   first cleaning that saw the tombstone instead (KIP-534, a horizon written into the batch);
//!   this rule needs no extra state on disk. Either way a consumer that reads from the start
//!   and reaches a delete within `delete.retention.ms` of it sees the tombstone. Dropping one is
//!   safe: the older values of its key are removed by the same pass from earlier segments,
//!   which are swapped in first.
//! - **Offsets**: every batch keeps its base offset, last offset delta, leader epoch and
//!   producer fields; kept records keep their bytes (so offsets and timestamps); the CRC is
//!   recomputed. Batches left without records are dropped, except the last batch of each
//!   segment, kept even empty so the segment still ends where the next one starts: the log
//!   end and recovery's hole check are unchanged.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::batch::{self, BatchHeader, LOG_OVERHEAD};
use super::config::LogConfig;
use super::partition_log::{LogError, PartitionLog};
use super::segment::{CleanedSegment, Segment};

/// Access to a log behind a lock; the cleaner holds it only for short steps.
pub trait LockedLog {
    /// Runs `f` with the log locked.
    fn with_locked<T>(&self, f: impl FnOnce(&mut PartitionLog) -> T) -> T;
}

impl LockedLog for Mutex<PartitionLog> {
    fn with_locked<T>(&self, f: impl FnOnce(&mut PartitionLog) -> T) -> T {
        let mut guard = self.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

/// A rolled segment as the cleaner found it: enough to read it without the lock and to check,
/// at swap time, that it is still the same segment.
#[derive(Debug, Clone)]
pub struct SegmentSnapshot {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
    file: Arc<File>,
}

impl SegmentSnapshot {
    pub(super) fn of(segment: &Segment) -> Self {
        Self {
            base_offset: segment.base_offset,
            next_offset: segment.next_offset(),
            size: segment.size(),
            max_timestamp: segment.max_timestamp(),
            file: segment.file(),
        }
    }

    /// Whether `segment` is still the one this was taken from, unchanged.
    pub(super) fn is(&self, segment: &Segment) -> bool {
        Arc::ptr_eq(&self.file, &segment.file()) && segment.size() == self.size
    }
}

/// Where the last cleaning ended and the oldest tombstone it kept; persisted by the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanerCheckpoint {
    /// Offsets from here on were written since the last cleaning ("dirty").
    pub first_dirty_offset: i64,
    /// Timestamp of the oldest tombstone the last cleaning kept.
    pub oldest_tombstone: Option<i64>,
}

impl CleanerCheckpoint {
    /// Parses `"{first_dirty_offset} {oldest_tombstone or -1}"`; anything else reads as "never
    /// cleaned", which only makes the next cleaning come sooner.
    pub fn parse(text: &str) -> Self {
        let mut parts = text.split_whitespace().map(str::parse::<i64>);
        match (parts.next(), parts.next()) {
            (Some(Ok(first_dirty_offset)), Some(Ok(tombstone))) => Self {
                first_dirty_offset,
                oldest_tombstone: (tombstone >= 0).then_some(tombstone),
            },
            _ => Self::default(),
        }
    }

    pub fn render(&self) -> String {
        format!(
            "{} {}",
            self.first_dirty_offset,
            self.oldest_tombstone.unwrap_or(-1)
        )
    }
}

/// What one cleaning pass works on, taken under the lock.
#[derive(Debug, Clone)]
pub struct CleaningPlan {
    pub dir: PathBuf,
    /// The cleanable segments, in offset order.
    pub segments: Vec<SegmentSnapshot>,
    /// Where the last of them ends.
    pub end_offset: i64,
    pub delete_retention_ms: i64,
    pub index_interval_bytes: u64,
}

/// How many of the rolled segments `sealed` (in offset order) a cleaning should take now; 0 when
/// the log needs no cleaning. Only segments ending at or below `cleanable_end` (the recovery
/// point, and the high watermark) count. See the module doc for the rules.
///
/// Worked cases, `min.cleanable.dirty.ratio` 0.5, segments of 100 bytes ending at offsets 10,
/// 20, 30, cleanable end 30, no lag: never cleaned (checkpoint 0) → 3; cleaned up to 20 → 0
/// (a third dirty); cleaned up to 10 → 3 (two thirds dirty); cleanable end 25 → only the
/// first two count; a kept tombstone past `delete.retention.ms` → 3 even when clean.
pub fn cleanable_prefix(
    sealed: &[SegmentSnapshot],
    cleanable_end: i64,
    checkpoint: &CleanerCheckpoint,
    config: &LogConfig,
    now_ms: i64,
) -> usize {
    let lag_horizon = now_ms.saturating_sub(config.min_compaction_lag_ms);
    let count = sealed
        .iter()
        .take_while(|s| {
            s.next_offset <= cleanable_end
                && (config.min_compaction_lag_ms <= 0 || s.max_timestamp <= lag_horizon)
        })
        .count();
    let cleanable = &sealed[..count];
    let total: u64 = cleanable.iter().map(|s| s.size).sum();
    if total == 0 {
        return 0;
    }
    let dirty: u64 = cleanable
        .iter()
        .filter(|s| s.next_offset > checkpoint.first_dirty_offset)
        .map(|s| s.size)
        .sum();
    let dirty_enough = dirty > 0 && dirty as f64 >= config.min_cleanable_dirty_ratio * total as f64;
    let tombstone_due = checkpoint
        .oldest_tombstone
        .is_some_and(|t| now_ms.saturating_sub(t) >= config.delete_retention_ms);
    if dirty_enough || tombstone_due {
        count
    } else {
        0
    }
}

/// What a cleaning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_rewritten: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    /// False when the log changed under the pass (retention, truncation) and it stopped early;
    /// what it swapped in stays, the rest waits for the next pass.
    pub completed: bool,
}

/// Runs one cleaning pass over `log` at `now_ms`, if [`PartitionLog::cleaning_plan`] finds
/// one due below `high_watermark`. Reading and rewriting happen without the lock; each
/// rewritten segment is swapped in under it, in offset order.
///
/// # Errors
/// I/O errors and corrupt batches; whatever was swapped in before stays (each swap is whole).
pub fn clean(
    log: &impl LockedLog,
    now_ms: i64,
    high_watermark: i64,
) -> Result<Option<CleanStats>, LogError> {
    let Some(plan) = log.with_locked(|l| l.cleaning_plan(now_ms, high_watermark)) else {
        return Ok(None);
    };
    let latest = latest_offsets(&plan.segments)?;
    let tombstone_horizon = now_ms.saturating_sub(plan.delete_retention_ms);
    let mut stats = CleanStats::default();
    let mut oldest_tombstone: Option<i64> = None;
    for source in &plan.segments {
        let rewrite = rewrite_segment(&plan, source, &latest, tombstone_horizon)?;
        oldest_tombstone = match (oldest_tombstone, rewrite.oldest_tombstone) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(cleaned) = rewrite.cleaned else {
            continue;
        };
        let size = cleaned.size();
        if !log.with_locked(|l| l.replace_segment(source, cleaned))? {
            return Ok(Some(stats));
        }
        stats.segments_rewritten += 1;
        stats.bytes_before += source.size;
        stats.bytes_after += size;
        stats.records_removed += rewrite.records_removed;
        stats.tombstones_removed += rewrite.tombstones_removed;
    }
    log.with_locked(|l| l.record_cleaning(plan.end_offset, oldest_tombstone))?;
    stats.completed = true;
    Ok(Some(stats))
}

/// Key → offset of its latest record in `segments`.
fn latest_offsets(segments: &[SegmentSnapshot]) -> Result<HashMap<Vec<u8>, i64>, LogError> {
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    for segment in segments {
        for_each_batch(segment, |header, bytes, _| {
            for record in batch::records(&header, bytes) {
                let record = record?;
                let Some(key) = record.key else { continue };
                match latest.get_mut(key) {
                    Some(offset) => *offset = record.offset,
                    None => {
                        latest.insert(key.to_vec(), record.offset);
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(latest)
}

#[derive(Debug, Default)]
struct Rewrite {
    /// The finished copy, or `None` when nothing would change.
    cleaned: Option<CleanedSegment>,
    records_removed: u64,
    tombstones_removed: u64,
    oldest_tombstone: Option<i64>,
}

/// Writes the compacted copy of `source` (under `.cleaned` names) and fsyncs it.
fn rewrite_segment(
    plan: &CleaningPlan,
    source: &SegmentSnapshot,
    latest: &HashMap<Vec<u8>, i64>,
    tombstone_horizon: i64,
) -> Result<Rewrite, LogError> {
    let mut out = Rewrite::default();
    let mut cleaned =
        CleanedSegment::create(&plan.dir, source.base_offset, plan.index_interval_bytes)?;
    let mut changed = false;
    let written = for_each_batch(source, |header, bytes, last| {
        let (records_removed, tombstones_removed, oldest_tombstone) = (
            &mut out.records_removed,
            &mut out.tombstones_removed,
            &mut out.oldest_tombstone,
        );
        let (retained, kept) = batch::retain(&header, bytes, |record| {
            let is_latest = record
                .key
                .is_some_and(|key| latest.get(key) == Some(&record.offset));
            if !is_latest {
                *records_removed += 1;
                return false;
            }
            if record.value.is_none() {
                if record.timestamp <= tombstone_horizon {
                    *tombstones_removed += 1;
                    return false;
                }
                *oldest_tombstone =
                    Some(oldest_tombstone.map_or(record.timestamp, |t| t.min(record.timestamp)));
            }
            true
        })?;
        if kept == header.record_count {
            cleaned.append(&header, bytes)?;
        } else if kept > 0 || last {
            changed = true;
            cleaned.append(&BatchHeader::parse(&retained)?, &retained)?;
        } else {
            changed = true;
        }
        Ok(())
    });
    let result = written.and_then(|()| {
        if changed {
            cleaned.finish()?;
        }
        Ok(())
    });
    match result {
        Ok(()) if changed => out.cleaned = Some(cleaned),
        Ok(()) => cleaned.discard(),
        Err(error) => {
            cleaned.discard();
            return Err(error);
        }
    }
    Ok(out)
}

/// Calls `f(header, batch bytes, is_last)` for every batch of `segment`, CRC-checked, reading
/// with `pread` in large chunks (the segment's file is shared with readers).
fn for_each_batch(
    segment: &SegmentSnapshot,
    mut f: impl FnMut(BatchHeader, &[u8], bool) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut chunks = Chunks {
        file: &segment.file,
        size: segment.size,
        start: 0,
        bytes: Vec::new(),
    };
    let mut position = 0u64;
    while position < segment.size {
        let overhead = chunks
            .slice(position, LOG_OVERHEAD as u64)
            .ok_or_else(|| truncated(segment, position))??;
        let size = batch::frame_size(overhead)? as u64;
        let bytes = chunks
            .slice(position, size)
            .ok_or_else(|| truncated(segment, position))??;
        let header = batch::check(bytes)?;
        position += size;
        f(header, bytes, position == segment.size)?;
    }
    Ok(())
}

/// A read-ahead buffer over a segment file.
struct Chunks<'a> {
    file: &'a File,
    size: u64,
    start: u64,
    bytes: Vec<u8>,
}

impl Chunks<'_> {
    const CHUNK: u64 = 1 << 20;

    /// `len` bytes at `position`; `None` when they run past the segment's end.
    fn slice(&mut self, position: u64, len: u64) -> Option<io::Result<&[u8]>> {
        if position + len > self.size {
            return None;
        }
        let end = self.start + self.bytes.len() as u64;
        if position < self.start || position + len > end {
            let read = len.max(Self::CHUNK).min(self.size - position);
            self.bytes.resize(read as usize, 0);
            if let Err(error) = self.file.read_exact_at(&mut self.bytes, position) {
                self.bytes.clear();
                return Some(Err(error));
            }
            self.start = position;
        }
        let at = (position - self.start) as usize;
        Some(Ok(&self.bytes[at..at + len as usize]))
    }
}

fn truncated(segment: &SegmentSnapshot, position: u64) -> LogError {
    LogError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "segment {} has a partial batch at {position}",
            segment.base_offset
        ),
    ))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::log::batch::NewRecord;
    use crate::log::config::CleanupPolicy;
    use crate::log::partition_log::read_batches;
    use crate::log::segment::{self, SWAP_COMMIT_STEP, SWAP_RENAMES};

    type Record = (i64, Option<String>, Option<String>, i64);

    const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };

    fn config(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 64,
            cleanup: COMPACT,
            delete_retention_ms: 1000,
            ..LogConfig::default()
        }
    }

    /// Appends one record per batch; returns its offset.
    fn put(log: &mut PartitionLog, key: Option<&str>, value: Option<&str>, timestamp: i64) -> i64 {
        let record = NewRecord {
            key: key.map(|k| Cow::Owned(k.as_bytes().to_vec())),
            value: value.map(|v| Cow::Owned(v.as_bytes().to_vec())),
            headers: Vec::new(),
            timestamp,
        };
        let mut encoded = batch::encode(&[record], None);
        log.append(&mut encoded, 0, timestamp)
            .expect("append")
            .base_offset
    }

    /// Makes everything appended so far count as fsynced (the cleaner only takes that).
    fn flushed(log: &mut PartitionLog) {
        let targets = log.sync_targets();
        log.mark_flushed(targets.upto);
    }

    /// Every record from the log start, as a consumer reads them: (offset, key, value, ts).
    fn read_all(log: &PartitionLog) -> Vec<Record> {
        read_from(log, log.log_start_offset())
    }

    fn read_from(log: &PartitionLog, from: i64) -> Vec<Record> {
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let mut out = Vec::new();
        let mut offset = from;
        while offset < log.log_end_offset() {
            let location = log.locate(offset).expect("in range").expect("data");
            let (bytes, exhausted) =
                read_batches(&location, offset, 1 << 20, i64::MAX).expect("read");
            let mut position = 0;
            let mut next = offset;
            while position < bytes.len() {
                let header = batch::validate(&bytes[position..]).expect("valid batch");
                for record in batch::records(&header, &bytes[position..position + header.size]) {
                    let record = record.expect("record");
                    if record.offset >= offset {
                        out.push((
                            record.offset,
                            text(record.key),
                            text(record.value),
                            record.timestamp,
                        ));
                    }
                }
                next = next.max(header.next_offset());
                position += header.size;
            }
            offset = match (exhausted, location.next_base) {
                (true, Some(base)) => base,
                _ => next,
            };
        }
        out
    }

    /// What compaction should leave of `records`: below `boundary` the latest record of each
    /// key, minus tombstones at or before `tombstone_horizon`; from `boundary` on, everything.
    fn expected(records: &[Record], boundary: i64, tombstone_horizon: i64) -> Vec<Record> {
        let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
        for (offset, key, _, _) in records.iter().filter(|r| r.0 < boundary) {
            if let Some(key) = key {
                latest.insert(key, *offset);
            }
        }
        records
            .iter()
            .filter(|(offset, key, value, timestamp)| {
                *offset >= boundary
                    || (key.as_deref().and_then(|k| latest.get(k)) == Some(offset)
                        && (value.is_some() || *timestamp > tombstone_horizon))
            })
            .cloned()
            .collect()
    }

    fn segment_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".log") || n.contains("index"))
            .collect();
        names.sort();
        names
    }

    /// Many updates of a few keys, one record per batch, over many small segments.
    fn updates(log: &mut PartitionLog, rounds: usize, timestamp: i64) {
        for round in 0..rounds {
            for key in ["a", "b", "c"] {
                put(log, Some(key), Some(&format!("{key}-{round}")), timestamp);
            }
        }
    }

    #[test]
    fn given_updates_when_cleaned_then_the_latest_value_per_key_stays_at_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = PartitionLog::open(dir.path(), config(400)).expect("open");
        updates(&mut log, 30, 1000);
        put(&mut log, Some("d"), Some("only"), 1000);
        updates(&mut log, 2, 1000);
        flushed(&mut log);
        let before = read_all(&log);
        let (start, end, segments, size) = (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count(),
            log.size_bytes(),
        );
        assert!(segments > 5, "expected many segments, got {segments}");
        let boundary = log.cleaning_plan(5000, i64::MAX).expect("due").end_offset;
        assert!(
            log.cleaning_plan(5000, 0).is_none(),
            "nothing above the high watermark is cleaned"
        );
        let below = log.cleaning_plan(5000, boundary - 1).expect("due");
        assert!(below.end_offset < boundary);
        let log = Mutex::new(log);

        let stats = clean(&log, 5000, i64::MAX)
            .expect("clean")
            .expect("a pass ran");
        assert!(stats.completed && stats.segments_rewritten > 0, "{stats:?}");
        let log = log.into_inner().expect("lock");
        let after = read_all(&log);
        assert_eq!(after, expected(&before, boundary, i64::MIN));
        assert!(after.len() < before.len());
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (start, end),
            "log start and end do not move"
        );
        assert_eq!(log.segment_count(), segments);
        assert!(log.size_bytes() < size);
        log.verify().expect("verifies");
        // Asking for a compacted-away offset gives the next record that exists.
        for wanted in start..end {
            let first = read_from(&log, wanted).first().map(|r| r.0);
            let next = after.iter().map(|r| r.0).find(|&o| o >= wanted);
            assert_eq!(first, next, "read from {wanted}");
        }
        // Nothing is dirty any more until more is written.
        assert!(log.cleaning_plan(5000, i64::MAX).is_none());
        drop(log);

        let (log, report) = PartitionLog::open(dir.path(), config(400)).expect("reopen");
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(report.deleted_segments, 0);
        assert_eq!(read_all(&log), after);
        assert_eq!(log.log_end_offset(), end);
        log.verify().expect("verifies after reopen");
    }

    #[test]
    fn given_a_tombstone_when_cleaned_then_it_is_kept_until_delete_retention_passes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = PartitionLog::open(dir.path(), config(200)).expect("open");
        put(&mut log, Some("gone"), Some("v1"), 1000);
        put(&mut log, Some("kept"), Some("k1"), 1000);
        put(&mut log, Some("gone"), Some("v2"), 1000);
        let tombstone = put(&mut log, Some("gone"), None, 1500);
        for i in 0..6 {
            put(&mut log, Some("kept"), Some(&format!("k{}", i + 2)), 1500);
        }
        flushed(&mut log);
        let before = read_all(&log);
        let boundary = log.cleaning_plan(2000, i64::MAX).expect("due").end_offset;
        assert!(
            tombstone < boundary,
            "the tombstone must be in a rolled segment"
        );
        let log = Mutex::new(log);

        // 500 ms after the tombstone (delete.retention.ms is 1000): kept, its values gone.
        clean(&log, 2000, i64::MAX).expect("clean").expect("ran");
        let young = log.with_locked(|l| read_all(l));
        assert_eq!(young, expected(&before, boundary, i64::MIN));
        assert!(young.iter().any(|r| r.0 == tombstone && r.2.is_none()));
        assert!(!young.iter().any(|r| r.2.as_deref() == Some("v1")));

        // Not due yet: nothing dirty, and the tombstone still young.
        assert_eq!(clean(&log, 2499, i64::MAX).expect("clean"), None);
        // Due: the kept tombstone's time is up, though nothing new was written.
        let stats = clean(&log, 2500, i64::MAX).expect("clean").expect("ran");
        assert_eq!(stats.tombstones_removed, 1);
        let old = log.with_locked(|l| read_all(l));
        assert_eq!(old, expected(&before, boundary, 1500));
        assert!(!old.iter().any(|r| r.1.as_deref() == Some("gone")));
        log.with_locked(|l| l.verify()).expect("verifies");
        assert_eq!(
            clean(&log, 10_000, i64::MAX).expect("clean"),
            None,
            "nothing left to do"
        );
    }

    #[test]
    fn the_active_segment_and_young_segments_are_never_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config(300);
        config.min_compaction_lag_ms = 1000;
        let (mut log, _) = PartitionLog::open(dir.path(), config).expect("open");
        updates(&mut log, 10, 1000);
        let young_from = log.log_end_offset();
        updates(&mut log, 10, 5000);
        flushed(&mut log);
        let before = read_all(&log);
        let active_name = segment_files(dir.path())
            .into_iter()
            .rfind(|n| n.ends_with(".log"))
            .expect("active segment");
        let active_path = dir.path().join(active_name);
        let active_bytes = std::fs::read(&active_path).expect("read");

        // At 5500 the segments written at 5000 are younger than min.compaction.lag.ms.
        let plan = log.cleaning_plan(5500, i64::MAX).expect("due");
        assert!(
            plan.end_offset <= young_from,
            "young segments are not cleanable"
        );
        let log = Mutex::new(log);
        clean(&log, 5500, i64::MAX).expect("clean").expect("ran");
        let after = log.with_locked(|l| read_all(l));
        assert_eq!(after, expected(&before, plan.end_offset, i64::MIN));
        assert!(
            after.iter().filter(|r| r.0 >= young_from).count()
                == before.iter().filter(|r| r.0 >= young_from).count(),
            "young records untouched"
        );
        assert_eq!(std::fs::read(&active_path).expect("read"), active_bytes);
    }

    #[test]
    fn retention_by_time_and_size_applies_only_with_the_delete_policy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config(200);
        config.retention_ms = 10;
        config.retention_bytes = 0;
        let (mut log, _) = PartitionLog::open(dir.path(), config.clone()).expect("open");
        updates(&mut log, 5, 1000);
        let segments = log.segment_count();
        assert!(log.take_expired_segments(1_000_000).is_empty());
        assert_eq!(log.segment_count(), segments);
        config.cleanup.delete = true;
        log.set_config(config);
        assert!(!log.take_expired_segments(1_000_000).is_empty());
    }

    #[test]
    fn dirty_ratio_recovery_point_and_tombstones_decide_when_to_clean() {
        let snapshot = |next_offset| SegmentSnapshot {
            base_offset: next_offset - 10,
            next_offset,
            size: 100,
            max_timestamp: 0,
            file: Arc::new(tempfile::tempfile().expect("file")),
        };
        let sealed = [snapshot(10), snapshot(20), snapshot(30)];
        let config = LogConfig {
            cleanup: COMPACT,
            ..LogConfig::default()
        };
        let at = |first_dirty_offset, recovery_point| {
            cleanable_prefix(
                &sealed,
                recovery_point,
                &CleanerCheckpoint {
                    first_dirty_offset,
                    oldest_tombstone: None,
                },
                &config,
                0,
            )
        };
        assert_eq!(at(0, 30), 3);
        assert_eq!(at(20, 30), 0, "a third dirty is below 0.5");
        assert_eq!(at(10, 30), 3, "two thirds dirty");
        assert_eq!(at(0, 25), 2, "unflushed segments wait");
        assert_eq!(at(30, 30), 0, "nothing dirty");
        let tombstone = CleanerCheckpoint {
            first_dirty_offset: 30,
            oldest_tombstone: Some(1000),
        };
        let due = |now| cleanable_prefix(&sealed, 30, &tombstone, &config, now);
        assert_eq!(due(1000 + config.delete_retention_ms - 1), 0);
        assert_eq!(due(1000 + config.delete_retention_ms), 3);
        assert_eq!(
            CleanerCheckpoint::parse(&tombstone.render()),
            tombstone,
            "round trip"
        );
        assert_eq!(
            CleanerCheckpoint::parse("garbage"),
            CleanerCheckpoint::default()
        );
    }

    #[test]
    fn a_reader_holding_a_location_keeps_reading_the_segment_it_located() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = PartitionLog::open(dir.path(), config(400)).expect("open");
        updates(&mut log, 20, 1000);
        flushed(&mut log);
        let location = log.locate(0).expect("range").expect("data");
        let log = Mutex::new(log);
        clean(&log, 5000, i64::MAX).expect("clean").expect("ran");
        assert!(
            log.with_locked(|l| read_all(l)).first().map(|r| r.0) != Some(0),
            "offset 0 was compacted away"
        );
        let (bytes, _) = read_batches(&location, 0, 1 << 20, 1).expect("read");
        let header = batch::validate(&bytes).expect("the old file is intact");
        assert_eq!(header.base_offset, 0);
    }

    #[test]
    fn a_follower_copies_a_compacted_leader_and_truncates_into_its_gaps() {
        let leader_dir = tempfile::tempdir().expect("tempdir");
        let (mut leader, _) = PartitionLog::open(leader_dir.path(), config(300)).expect("open");
        put(&mut leader, Some("z"), Some("first"), 1000);
        updates(&mut leader, 20, 1000);
        put(&mut leader, Some("a"), None, 1000);
        updates(&mut leader, 3, 1000);
        flushed(&mut leader);
        let leader = Mutex::new(leader);
        clean(&leader, 1500, i64::MAX).expect("clean").expect("ran");
        let leader = leader.into_inner().expect("lock");

        // Fetch as a follower does: raw batches from its log end, appended as they are.
        let follower_dir = tempfile::tempdir().expect("tempdir");
        let (mut follower, _) = PartitionLog::open(follower_dir.path(), config(300)).expect("open");
        for _ in 0..1000 {
            let offset = follower.log_end_offset();
            if offset == leader.log_end_offset() {
                break;
            }
            let location = leader.locate(offset).expect("range").expect("data");
            let (bytes, _) = read_batches(&location, offset, 256, i64::MAX).expect("read");
            let mut position = 0;
            while position < bytes.len() {
                let header = batch::check(&bytes[position..]).expect("valid");
                follower
                    .append_replicated(&bytes[position..position + header.size], 1000)
                    .expect("a gap from compaction is accepted");
                position += header.size;
            }
        }
        assert_eq!(follower.log_end_offset(), leader.log_end_offset());
        assert_eq!(read_all(&follower), read_all(&leader));
        follower.verify().expect("follower verifies");
        let overlapping = {
            let location = leader.locate(0).expect("range").expect("data");
            read_batches(&location, 0, 1, 1).expect("read").0
        };
        assert!(
            follower.append_replicated(&overlapping, 1000).is_err(),
            "a batch before the log end is refused"
        );

        // Truncating to an offset inside a gap ends the log where the last kept batch ends.
        let records = read_all(&follower);
        let gap = records
            .windows(2)
            .find(|w| w[1].0 > w[0].0 + 1)
            .map(|w| w[0].0 + 1)
            .expect("a gap");
        follower.truncate_to(gap).expect("truncate");
        assert!(follower.log_end_offset() <= gap);
        follower.verify().expect("verifies after truncation");
        let end = follower.log_end_offset();
        drop(follower);
        let (follower, _) = PartitionLog::open(follower_dir.path(), config(300)).expect("reopen");
        assert_eq!(follower.log_end_offset(), end);
    }

    /// A SIGKILL can stop a swap after any of its renames, or while the copy is written. Each
    /// of those states, left on disk, must reopen as the old segment (before the commit point)
    /// or the new one (after), verify, and leave no temporary files behind.
    #[test]
    fn a_crash_at_any_step_of_a_swap_recovers_the_old_or_the_new_segment() {
        for validate_everything in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let (mut log, _) = PartitionLog::open(dir.path(), config(400)).expect("open");
            updates(&mut log, 20, 1000);
            flushed(&mut log);
            if !validate_everything {
                log.checkpoint(0).expect("checkpoint");
            }
            let old = read_all(&log);
            let plan = log.cleaning_plan(5000, i64::MAX).expect("due");
            let latest = latest_offsets(&plan.segments).expect("map");
            let source = plan.segments[0].clone();
            let rewrite = rewrite_segment(&plan, &source, &latest, i64::MIN).expect("rewrite");
            let cleaned = rewrite.cleaned.expect("the first segment shrinks");

            // Every state a crash may leave, as copies of the data dir.
            let mut states = Vec::new();
            for renames in 0..=SWAP_RENAMES {
                let copy = tempfile::tempdir().expect("tempdir");
                copy_dir(dir.path(), copy.path());
                for (from, to) in segment::swap_renames(copy.path(), source.base_offset)
                    .into_iter()
                    .take(renames)
                {
                    std::fs::rename(from, to).expect("rename");
                }
                states.push((copy, renames > SWAP_COMMIT_STEP));
            }
            let torn = tempfile::tempdir().expect("tempdir");
            copy_dir(dir.path(), torn.path());
            let torn_log = torn.path().join(format!(
                "{}.log.{}",
                segment::file_stem(source.base_offset),
                segment::CLEANED_SUFFIX
            ));
            let len = std::fs::metadata(&torn_log).expect("meta").len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&torn_log)
                .expect("open")
                .set_len(len / 2)
                .expect("cut");
            states.push((torn, false));

            assert!(log.replace_segment(&source, cleaned).expect("swap"));
            let new = read_all(&log);
            assert_ne!(old, new);
            let clean_files = segment_files(dir.path());

            for (step, (copy, committed)) in states.iter().enumerate() {
                let (recovered, report) =
                    PartitionLog::open(copy.path(), config(400)).expect("recover");
                let want = if *committed { &new } else { &old };
                assert_eq!(&read_all(&recovered), want, "state {step}");
                assert_eq!(report.deleted_segments, 0, "state {step}");
                recovered.verify().expect("verifies");
                assert_eq!(
                    segment_files(copy.path()),
                    clean_files,
                    "state {step}: leftovers"
                );
            }
        }
    }

    fn copy_dir(from: &Path, to: &Path) {
        for entry in std::fs::read_dir(from).expect("list") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}
