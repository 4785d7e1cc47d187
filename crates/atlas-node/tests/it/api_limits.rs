//! Issue 10 finding 5, on a real `atlas node` process: slow and idle HTTP
//! clients are cut off, connections are capped, and running out of file
//! descriptors leaves the open connections served and is logged once.

use crate::common;

use std::time::{Duration, Instant};

use common::process::NodeProcess;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(dir: &std::path::Path, api_port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join("node.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n{extra}\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n",
            dir.join("node").display().to_string(),
        ),
    )
    .unwrap();
    path
}

/// A client that sends a request's headers one line every 500 ms, forever;
/// returns how long the server kept it (None: still open after `limit`).
async fn slowloris(port: u16, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let mut buf = [0u8; 1024];
    if s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        .await
        .is_err()
    {
        return Some(start.elapsed());
    }
    let mut i = 0u32;
    while start.elapsed() < limit {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return Some(start.elapsed()),
                Ok(_) => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                i += 1;
                if s.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).await.is_err() {
                    return Some(start.elapsed());
                }
            }
        }
    }
    None
}

async fn get_status(port: u16) -> u16 {
    atlas_node::api::client::get(&format!("http://127.0.0.1:{port}/v1/status"))
        .await
        .map(|r| r.status)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        "max_connections = 50\nheader_timeout_secs = 2",
    );
    let node = NodeProcess::start(&cfg);
    let clients: Vec<_> = (0..300)
        .map(|_| tokio::spawn(slowloris(port, Duration::from_secs(20))))
        .collect();
    let mut held = Vec::new();
    for c in clients {
        held.push(c.await.unwrap());
    }
    let open: Vec<_> = held.iter().filter(|h| h.is_none()).collect();
    assert!(
        open.is_empty(),
        "{} slow clients still held after 20 s",
        open.len()
    );
    let longest = held.iter().flatten().max().unwrap();
    assert!(
        *longest < Duration::from_secs(10),
        "cut off at the 2 s header timeout, not later: {longest:?}"
    );
    assert_eq!(
        get_status(port).await,
        200,
        "the API answers after the flood"
    );
    assert_eq!(
        node.log_lines("API at its 50 connections").len(),
        1,
        "the cap is logged once per episode"
    );
    node.kill();
}

fn open_descriptors(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_keeps_open_connections_and_logs_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "header_timeout_secs = 60");
    let node = NodeProcess::start(&cfg);
    // One keep-alive client, connected before the descriptors run out.
    let mut kept = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n";
    let answered = |mut s: TcpStream| async move {
        s.write_all(request).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        (s, String::from_utf8_lossy(&buf[..n]).to_string())
    };
    let (s, text) = answered(kept).await;
    kept = s;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    let pid = node.pid();
    node.limit_open_files(open_descriptors(pid) + 20);
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    // The node logs once that it cannot accept (an event in its log).
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.log_lines("API cannot accept connections").is_empty() {
        assert!(Instant::now() < deadline, "no log of the exhaustion");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, text) = answered(kept).await;
    kept = s;
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "an open connection is still served: {text}"
    );
    assert_eq!(node.log_lines("API cannot accept connections").len(), 1);

    // Descriptors come back: new connections are accepted again, and once
    // that has lasted a few seconds the episode's end is logged, once.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_status(port).await != 200
        || node.log_lines("API accepts connections again").is_empty()
    {
        assert!(Instant::now() < deadline, "the API did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(node.log_lines("API accepts connections again").len(), 1);
    assert_eq!(node.log_lines("API cannot accept connections").len(), 1);
    drop(kept);
    node.kill();
}
