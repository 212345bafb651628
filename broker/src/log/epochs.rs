//! The leader epoch cache of a partition: for each leader epoch, the first offset written in
//! it (Kafka's KIP-101). A replica that becomes a follower asks the new leader where its own
//! latest epoch ends there, and truncates to that boundary, so a divergent tail written by a
//! deposed leader is removed rather than served.
//!
//! Persisted as `leader-epoch-checkpoint` (one `epoch start_offset` line per entry), rewritten
//! on every change (once per leader change). When the file is missing it is rebuilt from the
//! epochs stamped in the batches themselves.

use std::io;
use std::path::{Path, PathBuf};

use super::segment;

const FILE: &str = "leader-epoch-checkpoint";

/// Epoch start offsets, in increasing epoch and offset order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    path: PathBuf,
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    /// Loads the checkpoint of the log in `dir`; `None` when there is none (or it is garbage)
    /// and the caller should rebuild it from the log.
    pub fn load(dir: &Path) -> Option<Self> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).ok()?;
        let mut entries: Vec<(i32, i64)> = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (epoch, offset) = line.trim().split_once(' ')?;
            let entry = (epoch.parse().ok()?, offset.parse().ok()?);
            if let Some(last) = entries.last()
                && (entry.0 <= last.0 || entry.1 < last.1)
            {
                return None;
            }
            entries.push(entry);
        }
        Some(Self { path, entries })
    }

    /// An empty cache for the log in `dir`, to be filled by [`EpochCache::assign`].
    pub fn empty(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE),
            entries: Vec::new(),
        }
    }

    /// The latest epoch and its start offset.
    pub fn latest(&self) -> Option<(i32, i64)> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than the latest epoch;
    /// returns whether the cache changed (and should be persisted).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        match self.entries.last() {
            Some(&(last, _)) if epoch <= last => false,
            _ => {
                self.entries.push((epoch, start_offset));
                true
            }
        }
    }

    /// Where `epoch` ends in this log: the largest epoch at or below it, and the start offset
    /// of the epoch after that one (or `log_end` if it is the latest). `None` when `epoch` is
    /// older than every epoch here.
    ///
    /// Worked cases, entries `[(0, 0), (2, 10), (5, 30)]`, `log_end` 42:
    /// epoch 0 → (0, 10); epoch 1 → (0, 10); epoch 2 → (2, 30); epoch 5 or 9 → (5, 42).
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        let index = self.entries.partition_point(|&(e, _)| e <= epoch);
        if index == 0 {
            return None;
        }
        let found = self.entries[index - 1].0;
        let end = self.entries.get(index).map_or(log_end, |&(_, start)| start);
        Some((found, end))
    }

    /// Drops epochs that start at or after `offset` (the log was truncated there).
    pub fn truncate_from(&mut self, offset: i64) -> bool {
        let keep = self.entries.partition_point(|&(_, start)| start < offset);
        let changed = keep != self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// Drops epochs wholly below `log_start` (retention removed them), keeping the one that
    /// covers `log_start`.
    pub fn truncate_before(&mut self, log_start: i64) -> bool {
        let covering = self
            .entries
            .partition_point(|&(_, start)| start <= log_start);
        if covering <= 1 {
            return false;
        }
        self.entries.drain(..covering - 1);
        true
    }

    /// Writes the checkpoint file.
    ///
    /// # Errors
    /// I/O errors.
    pub fn persist(&self) -> io::Result<()> {
        let text: String = self
            .entries
            .iter()
            .map(|(e, o)| format!("{e} {o}\n"))
            .collect();
        segment::write_atomically(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_follow_the_worked_cases() {
        let mut cache = EpochCache::empty(Path::new("/nonexistent"));
        assert!(cache.assign(0, 0));
        assert!(cache.assign(2, 10));
        assert!(!cache.assign(1, 20), "an older epoch is ignored");
        assert!(cache.assign(5, 30));
        assert_eq!(cache.end_offset_for(0, 42), Some((0, 10)));
        assert_eq!(cache.end_offset_for(1, 42), Some((0, 10)));
        assert_eq!(cache.end_offset_for(2, 42), Some((2, 30)));
        assert_eq!(cache.end_offset_for(5, 42), Some((5, 42)));
        assert_eq!(cache.end_offset_for(9, 42), Some((5, 42)));
        assert!(cache.truncate_from(30));
        assert_eq!(cache.latest(), Some((2, 10)));
        assert!(cache.truncate_before(15));
        assert_eq!(cache.latest(), Some((2, 10)));
        assert_eq!(cache.end_offset_for(0, 42), None);
    }

    #[test]
    fn persists_and_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cache = EpochCache::empty(dir.path());
        cache.assign(3, 0);
        cache.assign(4, 17);
        cache.persist().expect("persist");
        assert_eq!(EpochCache::load(dir.path()), Some(cache));
        std::fs::write(dir.path().join(FILE), "4 17\n3 20\n").expect("write");
        assert_eq!(
            EpochCache::load(dir.path()),
            None,
            "out-of-order entries are garbage"
        );
    }
}
