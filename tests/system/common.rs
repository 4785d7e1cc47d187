//! Helpers for the system tests: the workspace's binaries (built here, since
//! they belong to other packages), devnets on free loopback ports, status
//! waits, and the node tests' process runner.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use atlas_core::CoreConfig;
use atlas_core::zonefile::Hash160;
use atlas_devnet::{Devnet, DevnetConfig};
use atlas_node::net::{NodeHandle, NodeStatus};
use atlas_node::whitelist::Announcer;

pub use atlas_testkit::corpus::zonefiles;

#[path = "../../crates/atlas-node/tests/it/common/process.rs"]
pub mod process;

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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A core config tuned for tests: short timeouts so failures show quickly.
pub fn test_core() -> CoreConfig {
    CoreConfig {
        request_timeout_ms: 5_000,
        backoff_base_ms: 100,
        backoff_cap_ms: 2_000,
        ..CoreConfig::default()
    }
}

/// Awaits a status condition, failing the test with the last status after `limit`.
pub async fn wait(
    node: &NodeHandle,
    what: &str,
    limit: Duration,
    f: impl FnMut(&NodeStatus) -> bool,
) -> NodeStatus {
    match tokio::time::timeout(limit, node.wait_for(f)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => panic!("{what}: node stopped: {e}"),
        Err(_) => panic!(
            "{what}: not reached in {limit:?}; status {:?}",
            node.status.borrow()
        ),
    }
}

/// Announces `files` and uploads them at `at`.
pub async fn publish(whitelist: &dyn Announcer, at: &NodeHandle, files: &[(Hash160, Vec<u8>)]) {
    whitelist.announce(&files.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    for (_, bytes) in files {
        at.put_zonefile(bytes.clone().into()).await.unwrap();
    }
}

pub async fn devnet(nodes: usize, dir: &std::path::Path) -> Devnet {
    Devnet::start(DevnetConfig {
        nodes,
        base_port: 0,
        data_dir: dir.to_path_buf(),
        core: test_core(),
        block_interval: None,
    })
    .await
    .expect("devnet starts")
}

/// Awaits every node of a devnet holding `n` whitelist entries.
pub async fn all_hold(net: &Devnet, n: u64, what: &str) {
    for node in &net.nodes {
        wait(&node.node.handle, what, Duration::from_secs(120), |s| {
            s.present == n
        })
        .await;
    }
}
