//! Where the workspace's files are, seen from any of its crates.

use std::path::PathBuf;

/// The workspace root (this crate lives at `crates/atlas-testkit`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else `target/` at the root.
/// Test venvs and the oracle's install live there.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
