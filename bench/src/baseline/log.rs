//! The baseline's storage: one append-only file of length-prefixed values
//! under a mutex, a global offset counter, and an fsync through a second
//! handle so syncing never holds the append lock.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// The append-only file and its offset counter.
pub struct AppendLog {
    inner: Mutex<Tail>,
    sync_handle: File,
}

struct Tail {
    file: File,
    next_offset: u64,
}

impl AppendLog {
    /// Creates (or truncates) the file at `path`; offsets start at 0.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        let sync_handle = file.try_clone()?;
        Ok(AppendLog {
            inner: Mutex::new(Tail {
                file,
                next_offset: 0,
            }),
            sync_handle,
        })
    }

    /// Appends `frame` (holding `count` records) in one write and returns
    /// the offset of its first record. On failure no offset is used up.
    pub fn append(&self, frame: &[u8], count: u64) -> io::Result<u64> {
        let mut tail = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        tail.file.write_all(frame)?;
        let base = tail.next_offset;
        tail.next_offset += count;
        Ok(base)
    }

    /// Flushes the file's data to disk (blocking).
    pub fn sync(&self) -> io::Result<()> {
        self.sync_handle.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_advance_and_bytes_land() {
        let path = std::env::temp_dir().join(format!("runnel-baseline-log-{}", std::process::id()));
        let log = AppendLog::create(&path).unwrap();
        assert_eq!(log.append(b"abc", 2).unwrap(), 0);
        assert_eq!(log.append(b"de", 3).unwrap(), 2);
        assert_eq!(log.append(b"", 0).unwrap(), 5);
        log.sync().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcde");
        std::fs::remove_file(&path).unwrap();
    }
}
