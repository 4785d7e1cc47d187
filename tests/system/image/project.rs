//! The project: its workspace, target directory, the cache under it, the
//! `atlas` binary, and the root the tests need.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub(super) fn workspace() -> &'static Path {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        dir.canonicalize().unwrap_or(dir)
    })
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => workspace().join(d),
        None => workspace().join("target"),
    }
}

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
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let args = [
            "build",
            "--release",
            "--locked",
            "-p",
            "atlas-node",
            "--bin",
            "atlas",
        ];
        let status = Command::new(&cargo)
            .args(args)
            .current_dir(workspace())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {cargo:?}: {e}"));
        assert!(
            status.success(),
            "cargo {} failed: {status}",
            args.join(" ")
        );
        let bin = target_dir().join("release/atlas");
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
