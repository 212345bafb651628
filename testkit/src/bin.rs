//! Finds sibling binaries of the running executable in the cargo target dir, for code that
//! has no `CARGO_BIN_EXE_*` at hand (the launcher, tests of other crates).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Returns the path of binary `name` next to the current executable or in its parent
/// directory (so `target/debug/deps/some-test` finds `target/debug/name`).
///
/// # Errors
/// [`Error::BinaryNotFound`] when it is in neither place.
pub fn find_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|source| Error::io("locate the current executable", source))?;
    let dirs: Vec<&Path> = exe
        .parent()
        .into_iter()
        .flat_map(|dir| [Some(dir), dir.parent()])
        .flatten()
        .collect();
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| Error::BinaryNotFound {
            name: name.to_owned(),
            searched: dirs
                .iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}
