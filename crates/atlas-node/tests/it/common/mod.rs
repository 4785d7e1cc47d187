//! Shared helpers for the node's integration tests: free loopback ports, a
//! test core config, status waits, a tiny Prometheus text parser; `process`
//! runs the `atlas` binary. The corpus and the chain harnesses are in
//! `atlas_testkit`.
#![allow(dead_code)]

pub mod process;

pub use atlas_testkit::corpus::zonefiles;

use std::collections::HashMap;
use std::time::Duration;

use atlas_core::CoreConfig;
use atlas_core::zonefile::Hash160;
use atlas_devnet::{Devnet, DevnetConfig};
use atlas_node::net::{NodeHandle, NodeStatus};
use atlas_node::whitelist::Announcer;

/// The `atlas` binary cargo built for these tests.
pub fn atlas_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_atlas"))
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

/// Parses Prometheus/OpenMetrics text into `name{labels}` -> value.
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad metrics line: {line}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("metric value is not a number: {line}"));
        out.insert(key.to_string(), v);
    }
    out
}

/// A node's metrics, scraped from its registry and parsed.
pub fn scrape(node: &NodeHandle) -> HashMap<String, f64> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &node.registry.lock().unwrap()).unwrap();
    parse_metrics(&text)
}

pub fn metric(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key).unwrap_or_else(|| {
        panic!(
            "metric {key} missing; have {:?}",
            m.keys().collect::<Vec<_>>()
        )
    })
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
