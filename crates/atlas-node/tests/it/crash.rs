//! kill -9 in the middle of a sync: the node restarts from a consistent store
//! and finishes. The node under test is the real `atlas node` binary.

use crate::common;

use std::time::{Duration, Instant};

use atlas_node::api::client;
use atlas_node::net::{self, NodeConfig};
use atlas_node::whitelist::FileWhitelist;
use common::process::NodeProcess;
use common::*;

async fn present(api: &str) -> Option<u64> {
    let r = client::get(&format!("{api}/v1/status")).await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v["present"].as_u64()
}

/// Polls the child's status until `f` holds; the child is an external
/// process, so its HTTP status is the only event source we have.
async fn poll_until(api: &str, limit: Duration, mut f: impl FnMut(u64) -> bool) -> u64 {
    let end = Instant::now() + limit;
    loop {
        if let Some(p) = present(api).await
            && f(p)
        {
            return p;
        }
        assert!(Instant::now() < end, "condition not reached in {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_sync_then_restart_finishes_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let n = 4000;
    let files = zonefiles(n);
    let list: String = files.iter().map(|(h, _)| format!("{h}\n")).collect();
    let wl_path = dir.path().join("whitelist.txt");
    std::fs::write(&wl_path, list).unwrap();

    let mut cfg = NodeConfig::new(dir.path().join("seed"));
    cfg.core = test_core();
    let wl = FileWhitelist {
        path: wl_path.clone(),
        poll: Duration::from_millis(200),
    };
    let seed = net::spawn(cfg, Box::new(wl)).await.unwrap();
    wait(
        &seed.handle,
        "seed reads the whitelist",
        Duration::from_secs(20),
        |s| s.announced == n as u64,
    )
    .await;
    for (_, b) in &files {
        seed.handle.put_zonefile(b.clone().into()).await.unwrap();
    }
    let seed_addr = seed.handle.seed_addr().unwrap();

    let api_port = free_port();
    let api = format!("http://127.0.0.1:{api_port}");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nseeds = [\"{seed_addr}\"]\n[whitelist]\nfile = {:?}\n",
            dir.path().join("node").display().to_string(),
            wl_path.display().to_string()
        ),
    )
    .unwrap();

    let mut last = 0;
    let mut mid_sync_kills = 0;
    for round in 0..3 {
        let child = NodeProcess::start(&config);
        // Kill as soon as this run has made progress of its own.
        let before = last;
        let seen = poll_until(&api, Duration::from_secs(60), |p| p > before).await;
        child.kill(); // SIGKILL
        assert!(
            seen >= last,
            "round {round}: files held went backwards ({seen} < {last})"
        );
        last = seen;
        if seen < n as u64 {
            mid_sync_kills += 1;
        }
        if last == n as u64 {
            break;
        }
    }
    assert!(mid_sync_kills >= 1, "at least one kill must land mid-sync");
    let child = NodeProcess::start(&config);
    poll_until(&api, Duration::from_secs(120), |p| p == n as u64).await;
    for (h, b) in files.iter().step_by(331) {
        let r = client::get(&format!("{api}/v1/zonefiles/{h}"))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(&r.body, b, "{h} intact after kill -9");
    }
    child.kill();
    seed.shutdown().await;
}
