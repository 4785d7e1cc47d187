//! Helpers for the system tests: the workspace's binaries (built here, since
//! they belong to other packages), devnets on free loopback ports, status
//! waits, and the node tests' process runner.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
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

pub use atlas_testkit::paths::{target_dir, workspace_root as root};

/// Builds `targets` (cargo's `-p PACKAGE --bin NAME` arguments) with the
/// cargo that runs the tests, and returns the profile's output directory.
/// The workspace's binaries live in other packages, so cargo does not hand
/// their paths to this one.
pub fn cargo_build(release: bool, targets: &[&str]) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root())
        .args(["build", "--locked"])
        .args(targets);
    if release {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir().join(if release { "release" } else { "debug" })
}

/// `atlas` and `atlas-dev`, built once per test run in the tests' own profile.
fn binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        cargo_build(
            !cfg!(debug_assertions),
            &[
                "-p",
                "atlas-node",
                "--bin",
                "atlas",
                "-p",
                "atlas-devnet",
                "--bin",
                "atlas-dev",
            ],
        )
    })
}

/// A tool of the host's, or a failure that says what to install.
pub fn host_tool(name: &str, package: &str) -> PathBuf {
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: apt-get install {package} (.ci/run does)");
}

/// Runs `cmd`, failing the test with its output unless it succeeds; its stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
