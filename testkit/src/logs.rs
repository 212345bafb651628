//! Tails of process log files, for failure messages and for what a failing test prints.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How many lines of a log a failure shows.
pub const TAIL_LINES: usize = 80;

/// Bytes read from the end of a log; enough for [`TAIL_LINES`] ordinary lines.
const TAIL_BYTES: u64 = 64 * 1024;

/// Returns the last `lines` lines of the file at `path`, or a note saying why it could not
/// be read. Never fails: it only feeds diagnostics.
pub fn tail(path: &Path, lines: usize) -> String {
    match read_end(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("<cannot read {}: {error}>", path.display()),
    }
}

fn read_end(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
