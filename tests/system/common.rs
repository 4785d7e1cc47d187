//! Helpers for the system tests: the workspace's binaries (built here, since
//! they belong to other packages), devnets on free loopback ports, status
//! waits, and the node tests' process runner.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use atlas_devnet::testing::{all_hold, free_port, test_core, wait};
pub use atlas_testkit::corpus::zonefiles;

#[path = "../../crates/atlas-node/tests/it/common/process.rs"]
pub mod process;

/// Held by the tests that run documents word for word (README's regtest
/// recipe, the operator's guide): both use the documents' fixed ports (the
/// API on 7600, ElectrumX on 50001, ...), so in one test binary they take
/// turns. A test that failed while holding it must not fail the other too.
pub fn fixed_ports() -> std::sync::MutexGuard<'static, ()> {
    static PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `atlas` and `atlas-dev`, built once per test run by the cargo that runs
/// the tests, in the tests' own profile (they live in other packages, so
/// cargo does not hand their paths to this one).
fn binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let release = !cfg!(debug_assertions);
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.current_dir(root())
            .args(["build", "--locked", "-p", "atlas-node", "--bin", "atlas"])
            .args(["-p", "atlas-devnet", "--bin", "atlas-dev"]);
        if release {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("running cargo build");
        assert!(
            out.status.success(),
            "building atlas and atlas-dev failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        atlas_testkit::paths::target_dir().join(if release { "release" } else { "debug" })
    })
}

/// The `atlas` node binary.
pub fn atlas_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| binaries().join("atlas"))
}

/// The developer's `atlas-dev` (devnet, simulate, every `atlas` command).
pub fn atlas_dev_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| binaries().join("atlas-dev"))
}
