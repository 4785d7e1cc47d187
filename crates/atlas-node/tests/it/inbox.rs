//! Issue 10 finding 6, on a real `atlas node`: a flood of unannounced uploads
//! from one address neither evicts another client's pending uploads nor grows
//! the database past the inbox's byte bound.

use crate::common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::process::NodeProcess;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// POSTs `body` to the node's API from the local address `from`; returns the status.
async fn post_from(from: IpAddr, port: u16, body: &[u8]) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let mut s = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let head = format!(
        "POST /v1/zonefiles HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_uploads_evicts_no_one_else_and_stays_within_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let wl = dir.path().join("whitelist.txt");
    std::fs::write(&wl, "").unwrap();
    let data = dir.path().join("node");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[api]\nlisten = \"127.0.0.1:{port}\"\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n[store]\npending_bytes = 2000000\n[whitelist]\nfile = {:?}\n",
            data.display().to_string(),
            wl.display().to_string()
        ),
    )
    .unwrap();
    let node = NodeProcess::start(&config);
    let client: IpAddr = "127.0.0.2".parse().unwrap();
    let flooder: IpAddr = "127.0.0.3".parse().unwrap();

    let legit = zonefiles(5);
    for (_, b) in &legit {
        assert_eq!(post_from(client, port, b).await, 202);
    }
    // 300 junk files of 40 KB (12 MB) from one address, into a 2 MB inbox.
    for i in 0..300u32 {
        let mut junk = vec![b'j'; atlas_core::zonefile::MAX_ZONEFILE_BYTES];
        junk[..4].copy_from_slice(&i.to_be_bytes());
        assert_eq!(post_from(flooder, port, &junk).await, 202, "junk {i}");
    }
    let db = std::fs::metadata(data.join("atlas.redb")).unwrap().len();
    assert!(db < 8_000_000, "the database grew to {db} bytes");

    // The client's uploads are announced: all five are still there.
    let list: String = legit.iter().map(|(h, _)| format!("{h}\n")).collect();
    std::fs::write(&wl, list).unwrap();
    let api = format!("http://127.0.0.1:{port}");
    // An external process: its status is what we can watch.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = atlas_node::api::client::get(&format!("{api}/v1/status"))
            .await
            .unwrap();
        let s: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        if s["present"] == 5 {
            assert!(s["pending"].as_u64().unwrap() <= 50, "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "legit uploads lost: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (h, b) in &legit {
        let r = atlas_node::api::client::get(&format!("{api}/v1/zonefiles/{h}"))
            .await
            .unwrap();
        assert_eq!(&r.body, b);
    }
    node.kill();
}

/// A node killed after its whitelist learned a hash but before the upload
/// waiting for it was stored: at the next start the upload is stored from
/// the inbox (it used to stay there for good), and leaves the inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_announced_just_before_a_crash_is_stored_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    let files = zonefiles(3);
    let hashes: Vec<_> = files.iter().map(|(h, _)| *h).collect();
    {
        let store = atlas_node::store::Store::open(&data.join("atlas.redb"), 100).unwrap();
        store.set_announcements(0, &hashes).unwrap();
        store
            .put_zonefiles(&[(files[0].0, files[0].1.clone().into())])
            .unwrap();
        for (h, b) in &files[1..] {
            store.stash_pending(h, b, "ip:127.0.0.2").unwrap();
        }
    }
    let whitelist = atlas_node::whitelist::MemoryWhitelist::new();
    whitelist.announce(&hashes);
    let mut cfg = atlas_node::net::NodeConfig::new(data.clone());
    cfg.core = test_core();
    let node = atlas_node::net::spawn(cfg, Box::new(whitelist))
        .await
        .unwrap();
    let s = wait(
        &node.handle,
        "the inbox's announced uploads are stored",
        Duration::from_secs(30),
        |s| s.present == 3 && s.pending == 0,
    )
    .await;
    assert_eq!(s.announced, 3);
    for (h, b) in &files {
        let held = node.handle.store.get_zonefiles(&[*h], 1 << 20).unwrap().0;
        assert_eq!(held, vec![bytes::Bytes::from(b.clone())]);
    }
    node.shutdown().await;
}
