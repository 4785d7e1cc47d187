//! Shared helpers for the integration tests: the real BNS corpus, devnets on
//! free loopback ports, a tiny Prometheus text parser, and (`oracle`) the
//! original BNS indexer run over a regtest chain.
#![allow(dead_code)]

pub mod bns;
pub mod oracle;
pub mod process;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use atlas::atlas::CoreConfig;
use atlas::devnet::{Devnet, DevnetConfig};
use atlas::net::{NodeHandle, NodeStatus};
use atlas::whitelist::Announcer;
use atlas::zonefile::Hash160;

pub fn corpus_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/bns/zonefiles.jsonl")
}

/// The real zone files (1,644), with the hash160 recorded on chain, checked.
pub fn real_zonefiles() -> Vec<(Hash160, Vec<u8>)> {
    let path = corpus_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the BNS corpus must be at {} (../shared beside the project): {e}",
            path.display()
        )
    });
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
            let hash: Hash160 = v["zonefile_hash"].as_str().unwrap().parse().unwrap();
            let bytes = hex::decode(v["zonefile_hex"].as_str().unwrap()).unwrap();
            assert_eq!(Hash160::of(&bytes), hash, "corpus record verifies");
            (hash, bytes)
        })
        .collect()
}

/// `n` distinct zone files: the real corpus first, then real files with a
/// numbered comment line appended (same shapes and sizes, new hashes).
pub fn zonefiles(n: usize) -> Vec<(Hash160, Vec<u8>)> {
    let real = real_zonefiles();
    let mut out: Vec<_> = real.iter().take(n).cloned().collect();
    let mut i = 0;
    while out.len() < n {
        let (_, base) = &real[i % real.len()];
        let mut b = base.clone();
        if b.len() + 32 > atlas::zonefile::MAX_ZONEFILE_BYTES {
            i += 1;
            continue;
        }
        b.extend_from_slice(format!("\n; variant {i}\n").as_bytes());
        out.push((Hash160::of(&b), b));
        i += 1;
    }
    out
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

/// Awaits every node of a devnet holding `n` whitelist entries.
pub async fn all_hold(net: &Devnet, n: u64, what: &str) {
    for node in &net.nodes {
        wait(&node.node.handle, what, Duration::from_secs(120), |s| {
            s.present == n
        })
        .await;
    }
}
