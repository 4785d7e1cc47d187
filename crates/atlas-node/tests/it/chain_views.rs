//! Chain views on real nodes: two nodes whose whitelists part after index 5
//! exchange nothing beyond it (no request for a file the other does not hold
//! at that position), and replicate in full once their whitelists agree.

use crate::common;

use std::time::Duration;

use atlas_core::zonefile::Hash160;
use atlas_node::net::{self, NodeConfig};
use atlas_node::whitelist::FileWhitelist;
use common::*;

fn write_list(path: &std::path::Path, hashes: &[Hash160]) {
    let text: String = hashes.iter().map(|h| format!("{h}\n")).collect();
    // Written whole and renamed: the node's poll never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn chain_of(node: &atlas_node::net::NodeHandle, other: &str) -> Option<&'static str> {
    node.peers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.peer_id == other)
        .and_then(|p| p.chain)
        .map(|a| a.label())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_different_chains_share_only_the_common_prefix_until_they_agree() {
    let dir = tempfile::tempdir().unwrap();
    let files = zonefiles(11);
    let h = |i: usize| files[i].0;
    // Positions 0..5 are shared; then B's chain has files 5..8, A's 8..11.
    let b_list: Vec<Hash160> = (0..8).map(h).collect();
    let a_list: Vec<Hash160> = (0..5).chain(8..11).map(h).collect();

    let b_wl = dir.path().join("b.txt");
    write_list(&b_wl, &b_list);
    let mut cfg = NodeConfig::new(dir.path().join("b"));
    cfg.core = test_core();
    let poll = Duration::from_millis(100);
    let b = net::spawn(cfg, Box::new(FileWhitelist { path: b_wl, poll }))
        .await
        .unwrap();
    wait(
        &b.handle,
        "B reads its whitelist",
        Duration::from_secs(20),
        |s| s.announced == 8,
    )
    .await;
    for (_, bytes) in &files[..8] {
        b.handle.put_zonefile(bytes.clone().into()).await.unwrap();
    }
    let b_addr = b.handle.seed_addr().unwrap();

    let a_wl = dir.path().join("a.txt");
    write_list(&a_wl, &a_list);
    let mut cfg = NodeConfig::new(dir.path().join("a"));
    cfg.core = test_core();
    cfg.seeds = vec![(b.handle.peer_id, b_addr)];
    let a = net::spawn(
        cfg,
        Box::new(FileWhitelist {
            path: a_wl.clone(),
            poll,
        }),
    )
    .await
    .unwrap();
    let s = wait(
        &a.handle,
        "A fetches the shared prefix from B",
        Duration::from_secs(60),
        |s| s.present == 5,
    )
    .await;
    // Without views, A read B's positions 5..8 as its own files 8..11, asked
    // B for them and was told "not found": a penalty on an honest peer.
    assert_eq!(s.penalties, 0, "{s:?}");
    assert_eq!(s.missing, 3);
    let b_id = b.handle.peer_id.to_string();
    let a_id = a.handle.peer_id.to_string();
    assert_eq!(s.diverged_neighbors, 1);
    assert_eq!(chain_of(&a.handle, &b_id).await, Some("diverged"));
    for i in 0..5 {
        assert!(a.handle.store.has_zonefile(&h(i)).unwrap());
    }
    for i in 8..11 {
        assert!(!a.handle.store.has_zonefile(&h(i)).unwrap());
    }

    // A's follower reorganises onto B's chain: the views agree and A gets
    // the rest from B.
    write_list(&a_wl, &b_list);
    let s = wait(
        &a.handle,
        "A replicates B's chain in full",
        Duration::from_secs(60),
        |s| s.announced == 8 && s.present == 8,
    )
    .await;
    assert_eq!(s.penalties, 0, "{s:?}");
    for i in 0..8 {
        assert!(a.handle.store.has_zonefile(&h(i)).unwrap());
    }
    // Each side sees the other on the same chain once a message with the
    // new view has crossed (A's deltas for the files it just stored).
    for (node, other, who) in [(&a.handle, &b_id, "A"), (&b.handle, &a_id, "B")] {
        wait(
            node,
            &format!("{who} sees no diverged neighbour"),
            Duration::from_secs(30),
            |s| s.diverged_neighbors == 0,
        )
        .await;
        assert_eq!(chain_of(node, other).await, Some("same"), "{who}");
    }
    a.shutdown().await;
    b.shutdown().await;
}
