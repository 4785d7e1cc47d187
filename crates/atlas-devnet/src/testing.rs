//! Helpers for tests that run nodes and devnets in-process: free loopback
//! ports, a core config with short timeouts, status waits, publishing and
//! awaiting replication. Shared by the node's and the system tests.

use std::path::Path;
use std::time::Duration;

use atlas_core::CoreConfig;
use atlas_core::zonefile::Hash160;
use atlas_node::net::{NodeHandle, NodeStatus};
use atlas_node::whitelist::Announcer;

use crate::{Devnet, DevnetConfig};

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

pub async fn devnet(nodes: usize, dir: &Path) -> Devnet {
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
