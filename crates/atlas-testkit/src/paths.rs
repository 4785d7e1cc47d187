//! Where the workspace's files are, seen from any of its crates.

use std::path::PathBuf;

/// The workspace root (this crate lives at `crates/atlas-testkit`).
pub fn workspace_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (a relative one taken from
/// the root, where cargo is run), else `target/` at the root. Test venvs,
/// the oracle's install and the image's cached root filesystem live there.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d,
        Some(d) => workspace_root().join(d),
        None => workspace_root().join("target"),
    }
}
