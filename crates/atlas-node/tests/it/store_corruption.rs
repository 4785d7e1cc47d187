//! Issue 10 finding 4: bytes on disk are checked before they are served, a
//! damaged file is dropped and fetched again, and a database redb cannot open
//! is named with the way out.

use crate::common;

use std::time::Duration;

use atlas_node::net::{self, NodeConfig};
use atlas_node::whitelist::MemoryWhitelist;
use common::*;

/// Flips `n` bytes of every copy of `needle` in the file at `path` (redb
/// copies on write, so freed pages may hold old copies too).
fn flip_inside(path: &std::path::Path, needle: &[u8], n: usize) {
    let mut raw = std::fs::read(path).unwrap();
    let at: Vec<usize> = raw
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert!(
        !at.is_empty(),
        "the zone file's bytes are in the database file"
    );
    for i in at {
        for b in &mut raw[i..i + n] {
            *b ^= 0xff;
        }
    }
    std::fs::write(path, raw).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_damaged_on_disk_is_never_served_and_is_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let files = zonefiles(300);
    let whitelist = MemoryWhitelist::new();
    whitelist.announce(&files.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    let spawn = |name: &str, seeds: Vec<(libp2p::PeerId, libp2p::Multiaddr)>| {
        let mut cfg = NodeConfig::new(dir.path().join(name));
        cfg.core = test_core();
        cfg.seeds = seeds;
        net::spawn(cfg, Box::new(whitelist.clone()))
    };
    let a = spawn("a", vec![]).await.unwrap();
    for (_, b) in &files {
        a.handle.put_zonefile(b.clone().into()).await.unwrap();
    }
    let a_addr = wait(&a.handle, "a listens", Duration::from_secs(10), |s| {
        !s.listen_addrs.is_empty()
    })
    .await
    .listen_addrs[0]
        .parse::<libp2p::Multiaddr>()
        .unwrap();
    let a_id = a.handle.peer_id;
    let backup = spawn("backup", vec![(a_id, a_addr.clone())]).await.unwrap();
    wait(
        &backup.handle,
        "backup syncs",
        Duration::from_secs(60),
        |s| s.present == 300,
    )
    .await;
    a.shutdown().await;

    // Damage one file's bytes inside a's database, then restart a.
    let unique = |needle: &[u8]| {
        files
            .iter()
            .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
            .count()
            == 1
    };
    let (victim, bytes) = files
        .iter()
        .find(|(_, b)| b.len() > 400 && unique(&b[..64]))
        .cloned()
        .unwrap();
    flip_inside(&dir.path().join("a/atlas.redb"), &bytes[..64], 8);
    let mut cfg = NodeConfig::new(dir.path().join("a"));
    cfg.core = test_core();
    cfg.listen = vec![a_addr.clone()];
    let a = net::spawn(cfg, Box::new(whitelist.clone())).await.unwrap();
    assert_eq!(
        a.handle.store.get_zonefile(&victim).unwrap(),
        None,
        "damaged bytes are not handed out"
    );

    // A fresh node that knows only a syncs everything and never sees a lie.
    let fresh = spawn("fresh", vec![(a_id, a_addr)]).await.unwrap();
    let s = wait(
        &fresh.handle,
        "fresh syncs from a",
        Duration::from_secs(120),
        |s| s.present == 300,
    )
    .await;
    let wrong = scrape(&fresh.handle)
        .get("atlas_penalties_total{reason=\"wrong_hash\"}")
        .copied()
        .unwrap_or(0.0);
    assert_eq!(wrong, 0.0, "a never served bytes with a wrong hash");
    // What it may cost a: "advertised, then missing" (not_found), small and
    // decaying: its copy was dropped while fresh was asking for it.
    assert_eq!(s.present, 300);
    let peers = fresh.handle.peers().await.unwrap();
    assert!(peers.iter().all(|p| !p.banned), "{peers:?}");
    // a dropped the damaged copy and fetched a good one again.
    let s = wait(
        &a.handle,
        "a refetches the damaged file",
        Duration::from_secs(120),
        |s| s.store.corrupt_files == 1 && s.present == 300,
    )
    .await;
    assert_eq!(s.store.state, atlas_node::store::StoreState::Ok);
    assert_eq!(
        a.handle.store.get_zonefile(&victim).unwrap().as_deref(),
        Some(&bytes[..])
    );
    fresh.shutdown().await;
    backup.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_opened_is_named_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("atlas.redb");
    // Not a redb file at all, and a redb file cut short.
    let mut good = Vec::new();
    {
        let store = atlas_node::store::Store::open(&dir.path().join("good.redb"), 10).unwrap();
        let files = zonefiles(50);
        let batch: Vec<_> = files.iter().map(|(h, b)| (*h, b.clone().into())).collect();
        store.put_zonefiles(&batch).unwrap();
    }
    good.extend(std::fs::read(dir.path().join("good.redb")).unwrap());
    for (what, bytes) in [
        ("garbage", vec![0x5a; 100_000]),
        ("truncated", good[..good.len() / 3].to_vec()),
    ] {
        std::fs::write(&db, &bytes).unwrap();
        let config = dir.path().join("node.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n[api]\nlisten = \"127.0.0.1:{}\"\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n",
                data.display().to_string(),
                free_port()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_atlas"))
            .args(["node", "--config", config.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: the node must not start");
        assert_ne!(out.status.code(), Some(101), "{what}: a panic: {err}");
        assert!(
            err.contains(&db.display().to_string()) && err.contains("move it aside"),
            "{what}: {err}"
        );
    }
}
