//! The HTTP API, the metrics scrape and the CLI, against a real devnet.

use crate::common;

use std::process::Command;
use std::time::Duration;

use atlas_core::zonefile::{Hash160, MAX_ZONEFILE_BYTES};
use atlas_node::api::client;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zonefile_endpoints_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let net = devnet(2, dir.path()).await;
    let api = net.nodes[0].api_url();
    let files = zonefiles(3);
    let (h0, b0) = &files[0];

    let r = client::post(&format!("{api}/v1/zonefiles"), b"")
        .await
        .unwrap();
    assert_eq!(r.status, 400, "empty body");
    let big = vec![b'x'; MAX_ZONEFILE_BYTES + 1];
    let r = client::post(&format!("{api}/v1/zonefiles"), &big)
        .await
        .unwrap();
    assert_eq!(r.status, 413, "over 40960 bytes");
    // Far over: refused by the body limit before the handler, still in JSON.
    let huge = vec![b'x'; 200_000];
    let r = client::post(&format!("{api}/v1/zonefiles"), &huge)
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    let v: serde_json::Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("413 body is JSON ({e}): {}", r.text()));
    assert!(v["error"].as_str().unwrap().contains("40960"), "{v}");
    let exactly = vec![b'y'; MAX_ZONEFILE_BYTES];
    let r = client::post(&format!("{api}/v1/zonefiles"), &exactly)
        .await
        .unwrap();
    assert_eq!(
        r.status, 202,
        "40960 bytes is allowed (pending: not announced)"
    );

    // Not announced yet: kept in the pending inbox.
    let r = client::post(&format!("{api}/v1/zonefiles"), b0)
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["status"], "pending");
    assert_eq!(v["hash"], h0.to_hex());
    let r = client::get(&format!("{api}/v1/zonefiles/{h0}"))
        .await
        .unwrap();
    assert_eq!(r.status, 404, "pending files are not served");

    // The announcement promotes it, and it replicates.
    let body = serde_json::json!({ "hashes": [h0] }).to_string();
    let r = client::post(&format!("{api}/v1/devnet/announce"), body.as_bytes())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["length"],
        1
    );
    for n in &net.nodes {
        wait(
            &n.node.handle,
            "promoted file replicates",
            Duration::from_secs(60),
            |s| s.present == 1 && s.pending <= 1,
        )
        .await;
    }
    let r = client::get(&format!("{}/v1/zonefiles/{h0}", net.nodes[1].api_url()))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(&r.body, b0);

    // Announced first, then posted: 201, and 200 for a repeat.
    let (h1, b1) = &files[1];
    net.whitelist.announce(&[*h1]);
    wait(
        &net.nodes[0].node.handle,
        "announced",
        Duration::from_secs(10),
        |s| s.announced == 2,
    )
    .await;
    let r = client::post(&format!("{api}/v1/zonefiles"), b1)
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["status"],
        "stored"
    );
    let r = client::post(&format!("{api}/v1/zonefiles"), b1)
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    let r = client::get(&format!("{api}/v1/zonefiles/nothex"))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = client::get(&format!("{api}/v1/zonefiles/{}", Hash160([3; 20])))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = client::post(
        &format!("{api}/v1/devnet/announce"),
        b"{\"hashes\":[\"zz\"]}",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);

    let r = client::get(&format!("{api}/v1/status")).await.unwrap();
    let s: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    for key in [
        "peer_id",
        "listen_addrs",
        "neighbors",
        "peers_known",
        "announced",
        "present",
        "pending",
        "chain",
    ] {
        assert!(s.get(key).is_some(), "status has {key}: {s}");
    }
    assert_eq!(s["announced"], 2);
    assert_eq!(s["present"], 2);
    assert_eq!(s["pending"], 1, "the 40960-byte upload still waits");
    let r = client::get(&format!("{api}/v1/peers")).await.unwrap();
    let peers: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
    assert!(
        peers
            .iter()
            .any(|p| p["peer_id"] == net.nodes[1].node.handle.peer_id.to_string())
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_parses_and_matches_status() {
    let dir = tempfile::tempdir().unwrap();
    let net = devnet(3, dir.path()).await;
    let files = zonefiles(20);
    net.whitelist
        .announce(&files.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    for (_, b) in &files {
        net.nodes[0]
            .node
            .handle
            .put_zonefile(b.clone().into())
            .await
            .unwrap();
    }
    for n in &net.nodes {
        wait(&n.node.handle, "replicated", Duration::from_secs(60), |s| {
            s.present == 20
        })
        .await;
    }
    let r = client::get(&format!("{}/metrics", net.nodes[1].api_url()))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    let m = parse_metrics(&text);
    assert_eq!(metric(&m, "atlas_present"), 20.0);
    assert_eq!(metric(&m, "atlas_announced"), 20.0);
    assert_eq!(metric(&m, "atlas_missing"), 0.0);
    assert!(metric(&m, "atlas_neighbors") >= 1.0);
    assert!(metric(&m, "atlas_peers_known") >= 1.0);
    let stored: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("atlas_zonefiles_stored_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(stored, 20.0, "node 1 stored each file once");
    assert!(
        metric(
            &m,
            "atlas_wire_bytes_total{direction=\"in\",protocol=\"inv\"}"
        ) > 0.0
    );
    assert!(
        metric(
            &m,
            "atlas_wire_messages_total{direction=\"out\",protocol=\"peers\"}"
        ) > 0.0
    );
    for name in [
        "atlas_duplicate_zonefiles_total",
        "atlas_refused_busy_total",
        "atlas_fetch_latency_seconds_count",
        "atlas_push_fanout_count",
        "atlas_pending",
        "atlas_connected_peers",
        "atlas_chain_confirmed_height",
    ] {
        metric(&m, name);
    }
    assert_eq!(metric(&m, "atlas_chain_halted"), 0.0);
    assert!(
        m.keys().any(|k| k.starts_with("libp2p_")),
        "libp2p's own metrics share the registry"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_status_and_zonefile_get() {
    let dir = tempfile::tempdir().unwrap();
    let net = devnet(1, dir.path()).await;
    let (h, b) = &zonefiles(1)[0];
    net.whitelist.announce(&[*h]);
    wait(
        &net.nodes[0].node.handle,
        "announced",
        Duration::from_secs(10),
        |s| s.announced == 1,
    )
    .await;
    net.nodes[0]
        .node
        .handle
        .put_zonefile(b.clone().into())
        .await
        .unwrap();
    let api = net.nodes[0].api_url();
    let bin = env!("CARGO_BIN_EXE_atlas");
    let out = tokio::task::spawn_blocking({
        let api = api.clone();
        move || {
            Command::new(bin)
                .args(["status", "--api", &api])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["peer_id"], net.nodes[0].node.handle.peer_id.to_string());
    let hash = h.to_hex();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(["zonefile", "get", &hash, "--api", &api])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert_eq!(&out.stdout, b);
    net.shutdown().await;
}

#[test]
fn node_refuses_a_bad_config_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_atlas");
    let cases = [
        ("[p2p]\nneighbors = 0\n", "p2p.neighbors"),
        ("[api]\nlisten = \"localhost\"\n", "api.listen"),
        ("[p2p]\nseeds = [\"seed.example:6264\"]\n", "p2p.seeds[0]"),
        ("data_dir = 5\n", "data_dir"),
        ("[p2p\n", "TOML"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        // Run where a wrongly accepted config could only touch the temp dir,
        // and never let a node that did start outlive the test.
        let mut child = Command::new(bin)
            .args(["node", "--config", path.to_str().unwrap()])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("config {text:?} was accepted: the node kept running");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!status.success(), "config {text:?} must be refused");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(
            err.contains(needle),
            "error for {text:?} should name {needle}: {err}"
        );
    }
}
