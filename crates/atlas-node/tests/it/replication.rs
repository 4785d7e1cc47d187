//! Replication over real sockets: devnets of real libp2p nodes on loopback,
//! each with its own redb file, talking through the HTTP API.

use crate::common;

use std::time::Duration;

use atlas_core::zonefile::Hash160;
use atlas_node::api::client;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_replicate_2000_zonefiles_published_at_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let net = devnet(10, dir.path()).await;
    let files = zonefiles(2000);
    let hashes: Vec<Hash160> = files.iter().map(|(h, _)| *h).collect();
    let api0 = net.nodes[0].api_url();

    let body = serde_json::json!({ "hashes": hashes }).to_string();
    let r = client::post(&format!("{api0}/v1/devnet/announce"), body.as_bytes())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // The announcement is mined into the devnet's chain; wait for the follower.
    wait(
        &net.nodes[0].node.handle,
        "announced",
        Duration::from_secs(120),
        |s| s.announced == 2000,
    )
    .await;
    for (h, bytes) in &files {
        let r = client::post(&format!("{api0}/v1/zonefiles"), bytes)
            .await
            .unwrap();
        assert!(
            r.status == 201 || r.status == 200,
            "{} {}",
            r.status,
            r.text()
        );
        assert!(r.text().contains(&h.to_hex()));
    }
    for (i, n) in net.nodes.iter().enumerate() {
        wait(
            &n.node.handle,
            &format!("node {i} holds all 2000"),
            Duration::from_secs(180),
            |s| s.present == 2000,
        )
        .await;
    }
    // Every node serves the exact bytes (tabs, missing final newlines and all).
    for (i, n) in net.nodes.iter().enumerate() {
        for (h, bytes) in files.iter().skip(i).step_by(97) {
            let r = client::get(&format!("{}/v1/zonefiles/{h}", n.api_url()))
                .await
                .unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(&r.body, bytes, "node {i} serves {h} byte for byte");
        }
    }
    // The overlay formed: everyone has neighbours (a neighbour dropped for a
    // slow answer under test load is replaced by the walk; wait for it).
    for (i, n) in net.nodes.iter().enumerate() {
        wait(
            &n.node.handle,
            &format!("node {i} has 3 neighbours"),
            Duration::from_secs(60),
            |s| s.neighbors >= 3,
        )
        .await;
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_late_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = devnet(4, dir.path()).await;
    let files = zonefiles(300);
    publish(&net.whitelist, &net.nodes[1].node.handle, &files).await;
    all_hold(&net, 300, "early nodes replicate").await;
    let late = net.add_node().await.unwrap();
    wait(
        &late.node.handle,
        "late node catches up",
        Duration::from_secs(120),
        |s| s.present == 300,
    )
    .await;
    assert_eq!(late.node.handle.store.zonefile_count().unwrap(), 300);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_files_and_identity() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = devnet(3, dir.path()).await;
    let files = zonefiles(120);
    publish(&net.whitelist, &net.nodes[0].node.handle, &files).await;
    all_hold(&net, 120, "replicated").await;
    let victim = net.nodes.pop().unwrap();
    let id_before = victim.node.handle.peer_id;
    victim.shutdown().await;

    // Files posted while it is down must also reach it after the restart.
    let more = zonefiles(150).split_off(120);
    publish(&net.whitelist, &net.nodes[0].node.handle, &more).await;

    let back = net.start_node(2, dir.path().join("node-2")).await.unwrap();
    assert_eq!(
        back.node.handle.peer_id, id_before,
        "identity key persisted"
    );
    assert!(
        back.node.handle.store.zonefile_count().unwrap() >= 120,
        "files survived the restart"
    );
    wait(
        &back.node.handle,
        "restarted node catches up",
        Duration::from_secs(120),
        |s| s.present == 150,
    )
    .await;
    let (h, bytes) = &files[7];
    let r = client::get(&format!("{}/v1/zonefiles/{h}", back.api_url()))
        .await
        .unwrap();
    assert_eq!(&r.body, bytes);
    back.shutdown().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_known_only_by_address_is_dialed_and_pinned() {
    use atlas_node::net::{self, NodeConfig};
    use atlas_node::whitelist::MemoryWhitelist;
    let dir = tempfile::tempdir().unwrap();
    let files = zonefiles(5);
    let whitelist = MemoryWhitelist::new();
    whitelist.announce(&files.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    let mut cfg = NodeConfig::new(dir.path().join("seed"));
    cfg.core = test_core();
    let seed = net::spawn(cfg, Box::new(whitelist.clone())).await.unwrap();
    for (_, b) in &files {
        seed.handle.put_zonefile(b.clone().into()).await.unwrap();
    }
    let status = wait(&seed.handle, "listening", Duration::from_secs(10), |s| {
        !s.listen_addrs.is_empty()
    })
    .await;
    let addr: libp2p::Multiaddr = status.listen_addrs[0].parse().unwrap();

    let mut cfg = NodeConfig::new(dir.path().join("mirror"));
    cfg.core = test_core();
    cfg.bare_seeds = vec![addr];
    let mirror = net::spawn(cfg, Box::new(whitelist)).await.unwrap();
    wait(
        &mirror.handle,
        "mirror syncs from the seed",
        Duration::from_secs(60),
        |s| s.present == 5,
    )
    .await;
    let peers = mirror.handle.peers().await.unwrap();
    assert!(
        peers
            .iter()
            .any(|p| p.peer_id == seed.handle.peer_id.to_string())
    );
    mirror.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_replicate_over_quic_alone() {
    use atlas_node::net::{self, NodeConfig};
    use atlas_node::whitelist::MemoryWhitelist;
    let dir = tempfile::tempdir().unwrap();
    let files = zonefiles(40);
    let whitelist = MemoryWhitelist::new();
    whitelist.announce(&files.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    let quic: libp2p::Multiaddr = "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap();
    let mut cfg = NodeConfig::new(dir.path().join("a"));
    cfg.core = test_core();
    cfg.listen = vec![quic.clone()];
    let a = net::spawn(cfg, Box::new(whitelist.clone())).await.unwrap();
    for (_, b) in &files {
        a.handle.put_zonefile(b.clone().into()).await.unwrap();
    }
    let s = wait(&a.handle, "listening", Duration::from_secs(10), |s| {
        !s.listen_addrs.is_empty()
    })
    .await;
    let addr: libp2p::Multiaddr = s.listen_addrs[0].parse().unwrap();
    assert!(
        s.listen_addrs[0].contains("/quic-v1"),
        "{:?}",
        s.listen_addrs
    );

    let mut cfg = NodeConfig::new(dir.path().join("b"));
    cfg.core = test_core();
    cfg.listen = vec![quic];
    cfg.seeds = vec![(a.handle.peer_id, addr)];
    let b = net::spawn(cfg, Box::new(whitelist)).await.unwrap();
    wait(
        &b.handle,
        "replicated over QUIC",
        Duration::from_secs(60),
        |s| s.present == 40,
    )
    .await;
    b.shutdown().await;
    a.shutdown().await;
}
