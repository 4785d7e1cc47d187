//! Shared helpers for the node's integration tests: free loopback ports, a
//! test core config, status waits, a tiny Prometheus text parser; `process`
//! runs the `atlas` binary. The corpus and the chain harnesses are in
//! `atlas_testkit`.
#![allow(dead_code)]

pub mod process;

pub use atlas_devnet::testing::{all_hold, devnet, free_port, publish, test_core, wait};
pub use atlas_testkit::corpus::zonefiles;

use std::collections::HashMap;

use atlas_node::net::NodeHandle;

/// The `atlas` binary cargo built for these tests.
pub fn atlas_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_atlas"))
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
