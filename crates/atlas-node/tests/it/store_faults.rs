//! Issue 10 findings 2 and 3, on a real `atlas node` process whose redb file
//! cannot grow (RLIMIT_FSIZE, the same EFBIG a full quota gives): the API
//! answers what the commit did, the store reports its state, logs the change
//! once, and recovers by itself once writes can succeed again.

use crate::common;

use std::time::{Duration, Instant};

use atlas_node::api::client;
use common::process::NodeProcess;
use common::*;

async fn status(api: &str) -> serde_json::Value {
    let r = client::get(&format!("{api}/v1/status")).await.unwrap();
    serde_json::from_slice(&r.body).unwrap()
}

/// Polls the child's status (an external process: HTTP is its only event source).
async fn poll_status(api: &str, what: &str, mut f: impl FnMut(&serde_json::Value) -> bool) {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(api).await;
        if f(&s) {
            return;
        }
        assert!(Instant::now() < end, "{what}: not reached; status {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_answered_reported_and_recovered_from() {
    let dir = tempfile::tempdir().unwrap();
    let files = zonefiles(3000);
    let wl_path = dir.path().join("whitelist.txt");
    let list: String = files.iter().map(|(h, _)| format!("{h}\n")).collect();
    std::fs::write(&wl_path, list).unwrap();
    let data_dir = dir.path().join("node");
    let api_port = free_port();
    let api = format!("http://127.0.0.1:{api_port}");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n[whitelist]\nfile = {:?}\n",
            data_dir.display().to_string(),
            wl_path.display().to_string()
        ),
    )
    .unwrap();
    let node = NodeProcess::start_ignoring_sigxfsz(&config);
    poll_status(&api, "whitelist read", |s| s["announced"] == 3000).await;

    // The redb file may not grow any more: the disk is "full".
    let size = std::fs::metadata(data_dir.join("atlas.redb"))
        .unwrap()
        .len();
    node.limit_file_size(Some(size));
    let mut refused = Vec::new();
    let mut stored = Vec::new();
    for (h, b) in &files {
        let r = client::post(&format!("{api}/v1/zonefiles"), b)
            .await
            .unwrap();
        match r.status {
            201 => stored.push((*h, b)),
            507 => {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                let msg = v["error"].as_str().unwrap();
                assert!(msg.contains("disk is full"), "{msg}");
                refused.push((*h, b));
            }
            503 => refused.push((*h, b)),
            other => panic!("unexpected {other}: {}", r.text()),
        }
        if refused.len() >= 20 {
            break;
        }
    }
    assert!(
        refused.len() >= 20,
        "the writes were refused ({} stored first)",
        stored.len()
    );
    // Every 201 was a commit: its file is served.
    for (h, b) in &stored {
        let r = client::get(&format!("{api}/v1/zonefiles/{h}"))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{h} was answered 201");
        assert_eq!(&r.body, *b);
    }
    let s = status(&api).await;
    assert_eq!(s["store"]["state"], "degraded", "{s}");
    assert!(
        s["store"]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    let m = parse_metrics(&client::get(&format!("{api}/metrics")).await.unwrap().text());
    assert_eq!(metric(&m, "atlas_store_healthy"), 0.0);
    assert!(metric(&m, "atlas_store_errors_total") >= 1.0);

    // Space comes back: the store reopens by itself and takes the files.
    node.limit_file_size(None);
    let end = Instant::now() + Duration::from_secs(60);
    for (h, b) in &refused {
        loop {
            let r = client::post(&format!("{api}/v1/zonefiles"), b)
                .await
                .unwrap();
            if r.status == 201 || r.status == 200 {
                break;
            }
            assert!(
                [503, 507].contains(&r.status) && Instant::now() < end,
                "{h}: {} {}",
                r.status,
                r.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = client::get(&format!("{api}/v1/zonefiles/{h}"))
            .await
            .unwrap();
        assert_eq!(&r.body, *b);
    }
    poll_status(&api, "store ok again", |s| s["store"]["state"] == "ok").await;
    let degraded = node.log_lines("degraded");
    assert_eq!(degraded.len(), 1, "logged once per change: {degraded:#?}");
    assert_eq!(node.log_lines("recovered").len(), 1);
    let errors = node.log_lines("ERROR");
    assert!(errors.len() <= 3, "not one line per write: {errors:#?}");
}
