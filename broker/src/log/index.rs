//! Sparse indexes of a segment: offset → file position, and timestamp → offset.
//!
//! Both live in memory as sorted vectors and are appended to their files as entries are
//! added. They are a cache of the log, never the truth: recovery drops entries that point past
//! the log's end and rebuilds an index that is missing or malformed by scanning the segment.
//!
//! Entry formats (big-endian, as Kafka's): offset index `relative_offset u32, position u32`
//! (8 bytes); time index `timestamp i64, relative_offset u32` (12 bytes).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// Offset index: for some batches, the relative base offset and the batch's file position.
#[derive(Debug, Default)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

/// Time index: for some batches, the largest timestamp so far and the batch's relative offset.
#[derive(Debug, Default)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

pub const OFFSET_ENTRY: usize = 8;
pub const TIME_ENTRY: usize = 12;

impl OffsetIndex {
    /// Loads entries from `bytes`; `None` when the bytes are not a sane index (wrong size,
    /// offsets not increasing, positions not increasing).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(OFFSET_ENTRY) {
            return None;
        }
        let mut entries = Vec::with_capacity(bytes.len() / OFFSET_ENTRY);
        for chunk in bytes.chunks_exact(OFFSET_ENTRY) {
            let offset = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let position = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if let Some(&(last_offset, last_position)) = entries.last()
                && (offset <= last_offset || position <= last_position)
            {
                return None;
            }
            entries.push((offset, position));
        }
        Some(Self { entries })
    }

    pub fn push(&mut self, relative_offset: u32, position: u32) -> [u8; OFFSET_ENTRY] {
        self.entries.push((relative_offset, position));
        let mut entry = [0u8; OFFSET_ENTRY];
        entry[..4].copy_from_slice(&relative_offset.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        entry
    }

    /// Position of the last indexed batch starting at or before `relative_offset` (0 if none).
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let index = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        if index == 0 {
            0
        } else {
            self.entries[index - 1].1
        }
    }

    /// Position of the last indexed batch starting before `position` (0 if none).
    pub fn position_before(&self, position: u32) -> u32 {
        let index = self.entries.partition_point(|&(_, p)| p < position);
        if index == 0 {
            0
        } else {
            self.entries[index - 1].1
        }
    }

    /// Drops entries at or past `position` (after the log was truncated there).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self.entries.partition_point(|&(_, p)| p < position);
        self.entries.truncate(keep);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_ENTRY);
        for &(o, p) in &self.entries {
            out.extend_from_slice(&o.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }
}

impl TimeIndex {
    /// Loads entries from `bytes`; `None` when the bytes are not a sane index.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(TIME_ENTRY) {
            return None;
        }
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(bytes.len() / TIME_ENTRY);
        for chunk in bytes.chunks_exact(TIME_ENTRY) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let timestamp = i64::from_be_bytes(ts);
            let offset = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if let Some(&(last_ts, last_offset)) = entries.last()
                && (timestamp < last_ts || offset <= last_offset)
            {
                return None;
            }
            entries.push((timestamp, offset));
        }
        Some(Self { entries })
    }

    /// Records that the batch at `relative_offset` raised the segment's largest timestamp to
    /// `timestamp`; returns the entry's bytes, or `None` when it would not raise it.
    pub fn push(&mut self, timestamp: i64, relative_offset: u32) -> Option<[u8; TIME_ENTRY]> {
        if let Some(&(last_ts, last_offset)) = self.entries.last()
            && (timestamp <= last_ts || relative_offset <= last_offset)
        {
            return None;
        }
        self.entries.push((timestamp, relative_offset));
        let mut entry = [0u8; TIME_ENTRY];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&relative_offset.to_be_bytes());
        Some(entry)
    }

    /// The relative offset of the first indexed batch whose running largest timestamp is
    /// `>= timestamp`; scanning from the previous entry finds the exact record.
    pub fn lookup(&self, timestamp: i64) -> Option<u32> {
        let index = self.entries.partition_point(|&(t, _)| t < timestamp);
        if index == 0 {
            Some(0)
        } else {
            Some(self.entries[index - 1].1)
        }
    }

    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let keep = self.entries.partition_point(|&(_, o)| o < relative_offset);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_ENTRY);
        for &(t, o) in &self.entries {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&o.to_be_bytes());
        }
        out
    }
}

/// Reads a whole index file; a missing file reads as `None`.
pub fn read_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match File::open(path) {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Replaces an index file with `bytes` (used after a rebuild or a truncation).
pub fn rewrite_file(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_the_floor_entry() {
        let mut index = OffsetIndex::default();
        index.push(0, 0);
        index.push(10, 4096);
        index.push(20, 8192);
        assert_eq!(index.lookup(0), 0);
        assert_eq!(index.lookup(15), 4096);
        assert_eq!(index.lookup(20), 8192);
        assert_eq!(index.lookup(1000), 8192);
        let parsed = OffsetIndex::parse(&index.encode()).expect("round trip");
        assert_eq!(parsed.lookup(15), 4096);
        index.truncate_to_position(8192);
        assert_eq!(index.lookup(1000), 4096);
    }

    #[test]
    fn malformed_indexes_are_rejected() {
        assert!(OffsetIndex::parse(&[0u8; 7]).is_none());
        let mut index = OffsetIndex::default();
        index.push(10, 100);
        let mut bytes = index.encode();
        bytes.extend_from_slice(&index.encode()); // repeated entry: not increasing
        assert!(OffsetIndex::parse(&bytes).is_none());
        assert!(TimeIndex::parse(&[0u8; 13]).is_none());
    }

    #[test]
    fn time_lookup_starts_before_the_first_larger_timestamp() {
        let mut index = TimeIndex::default();
        assert!(index.push(100, 0).is_some());
        assert!(index.push(90, 5).is_none());
        assert!(index.push(200, 10).is_some());
        assert_eq!(index.lookup(50), Some(0));
        assert_eq!(index.lookup(150), Some(0));
        assert_eq!(index.lookup(250), Some(10));
    }
}
