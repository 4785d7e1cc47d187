//! `announce`: N hashes announced on a one-node devnet through its API. How
//! long the POST takes (mining the NAME_IMPORTs), how long until the node's
//! chain follower has verified them all, and how the node's status endpoint
//! answers meanwhile (mining runs off the async workers, so it should not
//! wait on it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atlas_core::CoreConfig;
use atlas_core::zonefile::Hash160;
use atlas_devnet::{Devnet, DevnetConfig};
use atlas_node::api::client;

use super::percentile;

pub async fn announce(counts: &[usize]) -> anyhow::Result<()> {
    println!("\n### Announcing on the devnet: one node, hashes in one POST\n");
    println!(
        "| hashes | POST answered | whitelisted by the node | per 1,000 hashes | status p50 / max while it ran |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for &n in counts {
        let row = one(n).await?;
        println!(
            "| {n} | {:.2} s | {:.2} s | {:.3} s | {:.1} / {:.1} ms |",
            row.post.as_secs_f64(),
            row.followed.as_secs_f64(),
            row.followed.as_secs_f64() * 1000.0 / n as f64,
            row.status_p50_ms,
            row.status_max_ms
        );
    }
    Ok(())
}

struct Row {
    post: Duration,
    followed: Duration,
    status_p50_ms: f64,
    status_max_ms: f64,
}

async fn one(n: usize) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let net = Devnet::start(DevnetConfig {
        nodes: 1,
        base_port: 0,
        data_dir: dir.path().to_path_buf(),
        core: CoreConfig::default(),
        block_interval: None,
    })
    .await?;
    let api = net.nodes[0].api_url();
    let hashes: Vec<String> = (0..n)
        .map(|i| Hash160::of(format!("announce {n} {i}").as_bytes()).to_hex())
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "hashes": hashes }))?;

    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, url) = (stop.clone(), format!("{api}/v1/status"));
        tokio::spawn(async move {
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if client::get(&url).await.is_ok() {
                    took.push(t.elapsed().as_secs_f64() * 1e3);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            took
        })
    };
    let started = Instant::now();
    let r = client::post(&format!("{api}/v1/devnet/announce"), &body).await?;
    if r.status != 200 {
        bail!("announce answered {}: {}", r.status, r.text());
    }
    let post = started.elapsed();
    tokio::time::timeout(
        Duration::from_secs(1800),
        net.nodes[0]
            .node
            .handle
            .wait_for(|s| s.announced >= n as u64),
    )
    .await
    .context("the follower did not whitelist every hash within 30 minutes")??;
    let followed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut took = poller.await?;
    took.sort_by(f64::total_cmp);
    net.shutdown().await;
    Ok(Row {
        post,
        followed,
        status_p50_ms: percentile(&took, 0.5),
        status_max_ms: took.last().copied().unwrap_or(0.0),
    })
}
