//! The project: the cache under its target directory, the `atlas` binary,
//! and the root the tests need.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::{cargo_build, target_dir};

pub(super) fn cache_dir() -> PathBuf {
    let dir = target_dir().join("system-image");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `$ATLAS_BIN`, or the release binary `cargo build` makes, once per run.
pub(super) fn atlas_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("ATLAS_BIN") {
            let bin = PathBuf::from(bin);
            assert!(bin.is_file(), "ATLAS_BIN={} is not a file", bin.display());
            return bin.canonicalize().unwrap();
        }
        // The Dockerfile's build: the release profile, the node alone.
        let dir = cargo_build(true, &["-p", "atlas-node", "--bin", "atlas"]);
        let bin = dir.join("atlas");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

pub(super) fn require_root() {
    let uid = fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "this test builds a Debian root filesystem and runs the image's user in namespaces: run it as root"
    );
}
