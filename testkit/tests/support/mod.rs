//! Helpers shared by the testkit's integration tests: where the service binaries are.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use runnel_testkit::find_bin;

/// Returns the broker built in this target dir.
///
/// # Panics
/// When it is not built (`cargo build -p runnel-broker`).
pub fn broker_bin() -> PathBuf {
    find_bin("runnel-broker").unwrap_or_else(|error| panic!("{error}"))
}

/// Returns the coordinator built in this target dir, or `None` (with a note on stderr) while
/// the workspace has no `coordinator/` crate to build it from; the caller then skips.
///
/// # Panics
/// When the workspace has the crate but the binary is not built.
pub fn coordinator_bin() -> Option<PathBuf> {
    match find_bin("runnel-coordinator") {
        Ok(binary) => Some(binary),
        Err(error) if !workspace_has_coordinator() => {
            eprintln!("skipped: {error}; the workspace has no coordinator/ crate yet");
            None
        }
        Err(error) => panic!("{error}"),
    }
}

fn workspace_has_coordinator() -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../coordinator/Cargo.toml")
        .is_file()
}
