//! One segment of a partition log: an append-only `.log` file of record batches named by its
//! base offset, with its sparse `.index` and `.timeindex`.
//!
//! A segment knows nothing of topics, the network or etcd. Only the active (last) segment of a
//! log is appended to; a rolled segment is immutable until retention deletes it or the cleaner
//! replaces it with a compacted copy ([`CleanedSegment`]).
//!
//! Replacing a segment is crash-safe by file names alone. The copy is written as
//! `{base}.{log,index,timeindex}.cleaned` and fsynced; then, under the log's lock, each file is
//! renamed to `.swap` (the log last: an existing `{base}.log.swap` is the commit point), the
//! directory is fsynced, and each `.swap` is renamed over its original (the log last again).
//! [`recover_swaps`], run before a log is opened, deletes `.cleaned` files (the original is
//! intact), finishes a swap whose `.log.swap` exists, and deletes `.swap` indexes without one;
//! wherever a swap was interrupted it also deletes the final indexes, which are rebuilt from
//! the log, so no ordering of renames a power failure may leave can pair a log with the other
//! version's index.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{self, BatchHeader, LOG_OVERHEAD};
use super::index::{self, OffsetIndex, TimeIndex};

/// File name stem of a segment: the base offset zero-padded to 20 digits, as Kafka names them.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    file: Arc<File>,
    size: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    offset_index_file: File,
    time_index: TimeIndex,
    time_index_file: File,
    /// Largest record timestamp in the segment, `-1` when empty.
    max_timestamp: i64,
    /// When the first batch was appended (wall clock; the first batch's timestamp after a
    /// restart): the segment's age for `segment.ms`.
    first_batch_timestamp: Option<i64>,
    bytes_since_index_entry: u64,
    /// Offset of the last batch relative to the base offset.
    last_batch_relative: u32,
}

/// What opening a segment found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes cut from the end because they were torn or corrupt.
    pub truncated_bytes: u64,
    /// Whether the indexes had to be rebuilt from the log.
    pub rebuilt_indexes: bool,
}

impl Segment {
    /// Creates an empty segment.
    ///
    /// # Errors
    /// I/O errors creating the files.
    pub fn create(dir: &Path, base_offset: i64) -> io::Result<Self> {
        let stem = file_stem(base_offset);
        let file = open_rw(&dir.join(format!("{stem}.log")), true)?;
        let offset_index_file = index::rewrite_file(&dir.join(format!("{stem}.index")), &[])?;
        let time_index_file = index::rewrite_file(&dir.join(format!("{stem}.timeindex")), &[])?;
        Ok(Self {
            base_offset,
            dir: dir.to_path_buf(),
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::default(),
            offset_index_file,
            time_index: TimeIndex::default(),
            time_index_file,
            max_timestamp: -1,
            first_batch_timestamp: None,
            bytes_since_index_entry: 0,
            last_batch_relative: 0,
        })
    }

    /// Opens an existing segment.
    ///
    /// With `validate`, every batch is read and CRC-checked, the file is truncated at the first
    /// torn or corrupt batch, and the indexes are rebuilt. Without it (a rolled segment below
    /// the recovery point), the indexes are trusted if they are sane, and rebuilt otherwise;
    /// `next_offset` must then be given (the following segment's base offset).
    ///
    /// # Errors
    /// I/O errors reading or truncating.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        validate: bool,
        next_offset: Option<i64>,
        index_interval: u64,
    ) -> io::Result<(Self, OpenReport)> {
        let stem = file_stem(base_offset);
        let file = open_rw(&dir.join(format!("{stem}.log")), false)?;
        let size = file.metadata()?.len();
        let index_path = dir.join(format!("{stem}.index"));
        let time_path = dir.join(format!("{stem}.timeindex"));
        let loaded = if validate {
            None
        } else {
            load_indexes(&index_path, &time_path, size)?
        };
        let mut report = OpenReport::default();
        let mut segment = match (loaded, next_offset) {
            (Some((offset_index, time_index, max_timestamp)), Some(next_offset)) => {
                let offset_index_file = open_append(&index_path)?;
                let time_index_file = open_append(&time_path)?;
                Self {
                    base_offset,
                    dir: dir.to_path_buf(),
                    file: Arc::new(file),
                    size,
                    next_offset,
                    offset_index,
                    offset_index_file,
                    time_index,
                    time_index_file,
                    max_timestamp,
                    first_batch_timestamp: None,
                    bytes_since_index_entry: 0,
                    last_batch_relative: 0,
                }
            }
            _ => {
                let scan = scan(&file, base_offset, size, validate, index_interval)?;
                if scan.valid_bytes < size {
                    report.truncated_bytes = size - scan.valid_bytes;
                    file.set_len(scan.valid_bytes)?;
                    file.sync_all()?;
                }
                report.rebuilt_indexes = true;
                let offset_index_file =
                    index::rewrite_file(&index_path, &scan.offset_index.encode())?;
                let time_index_file = index::rewrite_file(&time_path, &scan.time_index.encode())?;
                Self {
                    base_offset,
                    dir: dir.to_path_buf(),
                    file: Arc::new(file),
                    size: scan.valid_bytes,
                    next_offset: scan.next_offset,
                    offset_index: scan.offset_index,
                    offset_index_file,
                    time_index: scan.time_index,
                    time_index_file,
                    max_timestamp: scan.max_timestamp,
                    first_batch_timestamp: scan.first_batch_timestamp,
                    bytes_since_index_entry: scan.bytes_since_index_entry,
                    last_batch_relative: scan.last_batch_relative,
                }
            }
        };
        if segment.next_offset < base_offset {
            segment.next_offset = base_offset;
        }
        Ok((segment, report))
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    pub fn first_batch_timestamp(&self) -> Option<i64> {
        self.first_batch_timestamp
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Appends one stamped, validated batch.
    ///
    /// # Errors
    /// I/O errors; on error the segment is truncated back to its previous size so a partial
    /// write is never left behind for readers.
    pub fn append(
        &mut self,
        header: &BatchHeader,
        bytes: &[u8],
        index_interval: u64,
        now_ms: i64,
    ) -> io::Result<()> {
        let position = self.size;
        if let Err(error) = self.file.write_all_at(bytes, position) {
            let _ = self.file.set_len(position);
            return Err(error);
        }
        self.size += bytes.len() as u64;
        self.next_offset = header.next_offset();
        self.first_batch_timestamp.get_or_insert(now_ms);
        let relative = (header.base_offset - self.base_offset) as u32;
        self.last_batch_relative = relative;
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        if position == 0 || self.bytes_since_index_entry >= index_interval {
            let entry = self.offset_index.push(relative, position as u32);
            self.offset_index_file.write_all(&entry)?;
            if let Some(entry) = self.time_index.push(self.max_timestamp, relative) {
                self.time_index_file.write_all(&entry)?;
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += bytes.len() as u64;
        Ok(())
    }

    /// Seals a segment that is being rolled: records its final largest timestamp in the time
    /// index, so retention by time can trust the index once the segment is closed.
    ///
    /// # Errors
    /// I/O errors writing the index.
    pub fn seal(&mut self) -> io::Result<()> {
        if self.size > 0
            && let Some(entry) = self
                .time_index
                .push(self.max_timestamp, self.last_batch_relative)
        {
            self.time_index_file.write_all(&entry)?;
        }
        Ok(())
    }

    /// File position to start scanning from for `offset` (the floor index entry).
    pub fn scan_start(&self, offset: i64) -> u64 {
        let relative = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        u64::from(self.offset_index.lookup(relative))
    }

    /// Offset of the batch to start scanning from for the first record at or after `timestamp`.
    pub fn time_scan_start(&self, timestamp: i64) -> i64 {
        self.base_offset + i64::from(self.time_index.lookup(timestamp).unwrap_or(0))
    }

    /// Cuts the segment so it ends before `offset`. Returns the number of bytes removed.
    ///
    /// # Errors
    /// I/O errors reading headers or truncating.
    pub fn truncate_to_offset(&mut self, offset: i64) -> io::Result<u64> {
        if offset >= self.next_offset {
            return Ok(0);
        }
        // Like Kafka, cut at the start of the batch holding `offset`: a batch is never split.
        // The log then ends where the last kept batch ends; in a compacted log that can be
        // before `offset` (its records were cleaned away), and a follower refetches from there.
        let mut position = self.scan_start(offset);
        let mut next_offset = self.base_offset;
        while position < self.size {
            let header = read_header(&self.file, position, self.size)?;
            if header.last_offset() >= offset {
                break;
            }
            next_offset = header.next_offset();
            position += header.size as u64;
        }
        if position > 0 && next_offset == self.base_offset {
            // The walk started at an index entry past the first batch: the kept part ends
            // where the batch before `position` ends, which is where the index says it does.
            next_offset = self.batch_end_before(position)?;
        }
        let removed = self.size - position;
        self.file.set_len(position)?;
        self.size = position;
        self.next_offset = next_offset.max(self.base_offset);
        self.offset_index.truncate_to_position(position as u32);
        self.time_index
            .truncate_to_offset((next_offset - self.base_offset).max(0) as u32);
        self.offset_index_file =
            index::rewrite_file(&self.index_path(), &self.offset_index.encode())?;
        self.time_index_file =
            index::rewrite_file(&self.time_index_path(), &self.time_index.encode())?;
        Ok(removed)
    }

    /// Deletes the segment's files.
    pub fn delete_files(&self) {
        for path in [self.log_path(), self.index_path(), self.time_index_path()] {
            if let Err(error) = std::fs::remove_file(&path)
                && error.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), %error, "could not delete segment file");
            }
        }
    }

    /// The offset after the batch that ends at byte `position` (a walk from the index entry
    /// before it).
    fn batch_end_before(&self, position: u64) -> io::Result<i64> {
        let mut at = u64::from(self.offset_index.position_before(position as u32));
        let mut end = self.base_offset;
        while at < position {
            let header = read_header(&self.file, at, self.size)?;
            end = header.next_offset();
            at += header.size as u64;
        }
        Ok(end)
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .join(format!("{}.log", file_stem(self.base_offset)))
    }

    fn index_path(&self) -> PathBuf {
        self.dir
            .join(format!("{}.index", file_stem(self.base_offset)))
    }

    fn time_index_path(&self) -> PathBuf {
        self.dir
            .join(format!("{}.timeindex", file_stem(self.base_offset)))
    }
}

/// Suffix of a replacement segment's files while they are written; never trusted.
pub const CLEANED_SUFFIX: &str = "cleaned";
/// Suffix of a complete replacement segment's files being swapped in.
pub const SWAP_SUFFIX: &str = "swap";
/// A segment's files, in the order a swap renames them: the log last, so that its rename is
/// the commit point of each stage.
const SEGMENT_EXTENSIONS: [&str; 3] = ["index", "timeindex", "log"];

/// A compacted copy of a rolled segment, written under `.cleaned` names beside it and swapped in
/// by [`CleanedSegment::install`]. Batches are appended in offset order with their offsets as
/// they are (gaps allowed); the indexes are built as the batches are written.
#[derive(Debug)]
pub struct CleanedSegment {
    base_offset: i64,
    dir: PathBuf,
    writer: io::BufWriter<File>,
    size: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    max_timestamp: i64,
    first_batch_timestamp: Option<i64>,
    bytes_since_index_entry: u64,
    last_batch_relative: u32,
    index_interval: u64,
}

impl CleanedSegment {
    /// Starts the copy of the segment at `base_offset` in `dir` (replacing any earlier
    /// unfinished copy).
    ///
    /// # Errors
    /// I/O errors creating the file.
    pub fn create(dir: &Path, base_offset: i64, index_interval: u64) -> io::Result<Self> {
        let path = temp_path(dir, base_offset, "log", CLEANED_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self {
            base_offset,
            dir: dir.to_path_buf(),
            writer: io::BufWriter::with_capacity(1 << 20, file),
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            max_timestamp: -1,
            first_batch_timestamp: None,
            bytes_since_index_entry: 0,
            last_batch_relative: 0,
            index_interval,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one batch, which must follow the previous one in offset order.
    ///
    /// # Errors
    /// `InvalidInput` for a batch out of order or out of the segment's offset range; I/O
    /// errors.
    pub fn append(&mut self, header: &BatchHeader, bytes: &[u8]) -> io::Result<()> {
        let relative = header.base_offset - self.base_offset;
        if header.base_offset < self.next_offset || relative > i64::from(u32::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cleaned batch out of order",
            ));
        }
        let relative = relative as u32;
        let position = self.size;
        self.writer.write_all(bytes)?;
        self.first_batch_timestamp
            .get_or_insert(header.max_timestamp);
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        if position == 0 || self.bytes_since_index_entry >= self.index_interval {
            self.offset_index.push(relative, position as u32);
            self.time_index.push(self.max_timestamp, relative);
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += bytes.len() as u64;
        self.size += bytes.len() as u64;
        self.last_batch_relative = relative;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Writes the indexes (sealed, as a rolled segment's are) and fsyncs all three files and
    /// the directory: after this the copy is complete on disk, still under `.cleaned` names.
    ///
    /// # Errors
    /// I/O errors; the caller then [`discard`](Self::discard)s the copy.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.size > 0 {
            self.time_index
                .push(self.max_timestamp, self.last_batch_relative);
        }
        self.writer.flush()?;
        self.writer.get_ref().sync_all()?;
        let index = self.temp(".index", CLEANED_SUFFIX);
        index::rewrite_file(&index, &self.offset_index.encode())?.sync_all()?;
        let time = self.temp(".timeindex", CLEANED_SUFFIX);
        index::rewrite_file(&time, &self.time_index.encode())?.sync_all()?;
        sync_dir(&self.dir)
    }

    /// Deletes the copy's files (the original stays as it is).
    pub fn discard(self) {
        for extension in SEGMENT_EXTENSIONS {
            let path = temp_path(&self.dir, self.base_offset, extension, CLEANED_SUFFIX);
            if let Err(error) = std::fs::remove_file(&path)
                && error.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), %error, "could not delete a cleaned segment");
            }
        }
    }

    /// Swaps the finished copy in for the original segment's files and returns it as the
    /// segment, ending at `next_offset` (the original's end: its last batch is always kept).
    /// Call under the log's lock, after checking the original is still the one copied.
    /// Readers holding the original's file keep reading it: the renames unlink its name, not
    /// its open file.
    ///
    /// # Errors
    /// I/O errors. After the `.log.swap` rename the swap is committed: recovery completes it.
    pub fn install(self, next_offset: i64) -> io::Result<Segment> {
        for (step, (from, to)) in swap_renames(&self.dir, self.base_offset).iter().enumerate() {
            std::fs::rename(from, to)?;
            if step == SWAP_COMMIT_STEP || step == SWAP_RENAMES - 1 {
                sync_dir(&self.dir)?;
            }
        }
        let stem = file_stem(self.base_offset);
        let file = self
            .writer
            .into_inner()
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Segment {
            base_offset: self.base_offset,
            file: Arc::new(file),
            size: self.size,
            next_offset: next_offset.max(self.next_offset),
            offset_index: self.offset_index,
            offset_index_file: open_append(&self.dir.join(format!("{stem}.index")))?,
            time_index: self.time_index,
            time_index_file: open_append(&self.dir.join(format!("{stem}.timeindex")))?,
            max_timestamp: self.max_timestamp,
            first_batch_timestamp: self.first_batch_timestamp,
            bytes_since_index_entry: self.bytes_since_index_entry,
            last_batch_relative: self.last_batch_relative,
            dir: self.dir,
        })
    }

    fn temp(&self, extension: &str, suffix: &str) -> PathBuf {
        temp_path(
            &self.dir,
            self.base_offset,
            extension.trim_start_matches('.'),
            suffix,
        )
    }
}

/// How many renames a swap takes.
pub const SWAP_RENAMES: usize = 2 * SEGMENT_EXTENSIONS.len();
/// The rename after which a swap is committed (`{base}.log.cleaned` → `{base}.log.swap`).
pub const SWAP_COMMIT_STEP: usize = SEGMENT_EXTENSIONS.len() - 1;

/// The renames that swap a finished copy of the segment at `base_offset` in, in order: every
/// `.cleaned` to `.swap`, then every `.swap` over the original; the log last each time.
pub fn swap_renames(dir: &Path, base_offset: i64) -> Vec<(PathBuf, PathBuf)> {
    let stem = file_stem(base_offset);
    let to_swap = SEGMENT_EXTENSIONS.map(|extension| {
        (
            temp_path(dir, base_offset, extension, CLEANED_SUFFIX),
            temp_path(dir, base_offset, extension, SWAP_SUFFIX),
        )
    });
    let to_final = SEGMENT_EXTENSIONS.map(|extension| {
        (
            temp_path(dir, base_offset, extension, SWAP_SUFFIX),
            dir.join(format!("{stem}.{extension}")),
        )
    });
    to_swap.into_iter().chain(to_final).collect()
}

fn temp_path(dir: &Path, base_offset: i64, extension: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{}.{extension}.{suffix}", file_stem(base_offset)))
}

/// Finishes or rolls back segment swaps a crash interrupted in `dir` (see the module doc) and
/// deletes their leftovers. Returns how many segments it touched.
///
/// # Errors
/// I/O errors listing, renaming or deleting.
pub fn recover_swaps(dir: &Path) -> io::Result<usize> {
    let mut cleaned = Vec::new();
    let mut swapping: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(&format!(".{CLEANED_SUFFIX}")) {
            cleaned.push(name);
        } else if let Some(rest) = name.strip_suffix(&format!(".{SWAP_SUFFIX}"))
            && let Some((stem, extension)) = rest.split_once('.')
            && let Ok(base) = stem.parse::<i64>()
        {
            swapping
                .entry(base)
                .or_default()
                .push(extension.to_string());
        }
    }
    for name in &cleaned {
        remove_if_present(&dir.join(name))?;
    }
    for (&base, extensions) in &swapping {
        let stem = file_stem(base);
        if extensions.iter().any(|e| e == "log") {
            std::fs::rename(
                temp_path(dir, base, "log", SWAP_SUFFIX),
                dir.join(format!("{stem}.log")),
            )?;
        }
        // Indexes are a cache: whichever version they are, drop them and rebuild from the log.
        for extension in ["index", "timeindex"] {
            remove_if_present(&temp_path(dir, base, extension, SWAP_SUFFIX))?;
            remove_if_present(&dir.join(format!("{stem}.{extension}")))?;
        }
        tracing::warn!(dir = %dir.display(), base, committed = extensions.iter().any(|e| e == "log"), "recovered an interrupted segment swap");
    }
    if !cleaned.is_empty() || !swapping.is_empty() {
        sync_dir(dir)?;
    }
    Ok(swapping.len())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// fsyncs a directory, making renames and creations in it durable.
///
/// # Errors
/// I/O errors.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the header of the batch at `position` (which must end by `limit`).
///
/// # Errors
/// `InvalidData` when the header is malformed or runs past `limit`.
pub fn read_header(file: &File, position: u64, limit: u64) -> io::Result<BatchHeader> {
    let mut head = [0u8; batch::HEADER_LEN];
    if position + batch::HEADER_LEN as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "batch header past the end",
        ));
    }
    file.read_exact_at(&mut head, position)?;
    let header = BatchHeader::parse(&head)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if position + header.size as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "batch past the end",
        ));
    }
    Ok(header)
}

struct Scan {
    valid_bytes: u64,
    next_offset: i64,
    max_timestamp: i64,
    first_batch_timestamp: Option<i64>,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_index_entry: u64,
    last_batch_relative: u32,
}

/// Reads the segment from the start, batch by batch, stopping at the first batch that is torn,
/// corrupt (with `validate`), or out of order; rebuilds both indexes on the way.
fn scan(
    file: &File,
    base_offset: i64,
    size: u64,
    validate: bool,
    index_interval: u64,
) -> io::Result<Scan> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut scan = Scan {
        valid_bytes: 0,
        next_offset: base_offset,
        max_timestamp: -1,
        first_batch_timestamp: None,
        offset_index: OffsetIndex::default(),
        time_index: TimeIndex::default(),
        bytes_since_index_entry: 0,
        last_batch_relative: 0,
    };
    let mut buf = Vec::new();
    let mut overhead = [0u8; LOG_OVERHEAD];
    while scan.valid_bytes + LOG_OVERHEAD as u64 <= size {
        if reader.read_exact(&mut overhead).is_err() {
            break;
        }
        let Ok(frame) = batch::frame_size(&overhead) else {
            break;
        };
        if scan.valid_bytes + frame as u64 > size {
            break;
        }
        buf.clear();
        buf.extend_from_slice(&overhead);
        buf.resize(frame, 0);
        if reader.read_exact(&mut buf[LOG_OVERHEAD..]).is_err() {
            break;
        }
        let header = if validate {
            batch::validate(&buf)
        } else {
            BatchHeader::parse(&buf)
        };
        let Ok(header) = header else { break };
        if header.base_offset < scan.next_offset
            || header.base_offset - base_offset > i64::from(u32::MAX)
        {
            break;
        }
        let position = scan.valid_bytes;
        let relative = (header.base_offset - base_offset) as u32;
        scan.last_batch_relative = relative;
        scan.first_batch_timestamp
            .get_or_insert(header.max_timestamp);
        scan.max_timestamp = scan.max_timestamp.max(header.max_timestamp);
        if position == 0 || scan.bytes_since_index_entry >= index_interval {
            scan.offset_index.push(relative, position as u32);
            scan.time_index.push(scan.max_timestamp, relative);
            scan.bytes_since_index_entry = 0;
        }
        scan.bytes_since_index_entry += frame as u64;
        scan.valid_bytes += frame as u64;
        scan.next_offset = header.next_offset();
    }
    Ok(scan)
}

/// Loads both indexes if they are present and sane for a log of `size` bytes; returns them with
/// the segment's largest timestamp.
fn load_indexes(
    index_path: &Path,
    time_path: &Path,
    size: u64,
) -> io::Result<Option<(OffsetIndex, TimeIndex, i64)>> {
    let (Some(offset_bytes), Some(time_bytes)) =
        (index::read_file(index_path)?, index::read_file(time_path)?)
    else {
        return Ok(None);
    };
    let (Some(offset_index), Some(time_index)) = (
        OffsetIndex::parse(&offset_bytes),
        TimeIndex::parse(&time_bytes),
    ) else {
        return Ok(None);
    };
    if size > 0 && offset_index.is_empty() {
        return Ok(None);
    }
    if offset_index.lookup(u32::MAX) as u64 >= size.max(1) && size > 0 {
        return Ok(None);
    }
    let max_timestamp = time_bytes
        .chunks_exact(index::TIME_ENTRY)
        .last()
        .map(|c| {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&c[..8]);
            i64::from_be_bytes(ts)
        })
        .unwrap_or(-1);
    Ok(Some((offset_index, time_index, max_timestamp)))
}

fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .open(path)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

/// Writes `bytes` to `path` atomically (write to a temporary name, fsync, rename).
///
/// # Errors
/// I/O errors.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
