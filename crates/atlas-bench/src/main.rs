//! Benchmarks that print a table (not timed tests):
//!
//! * `bootstrap`: a fresh node syncs N zone files from 8 loopback peers, against
//!   the ceiling of writing the same files straight into redb in one process.
//! * `propagation`: in a 16-node loopback network, time from a POST at one node
//!   until every node holds the file, and payload copies received per node.
//!
//! * `announce`: hashes announced on the devnet, until its node whitelists them.
//! * `footprint`: a node started on a store of a million zone files.
//!
//! `cargo run --release --bin atlas-bench -- all`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atlas_core::CoreConfig;
use atlas_core::zonefile::Hash160;
use atlas_devnet::{Devnet, DevnetConfig};
use atlas_node::api::client;
use atlas_node::net::{self, NodeConfig, NodeHandle};
use atlas_node::store::Store;
use atlas_node::whitelist::MemoryWhitelist;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod announce;
mod footprint;

#[derive(Parser)]
struct Cli {
    /// The real BNS zone files whose sizes the synthetic set copies.
    #[arg(long, default_value = "crates/atlas-testkit/data/bns/zonefiles.jsonl")]
    corpus: PathBuf,
    #[command(subcommand)]
    cmd: Bench,
}

#[derive(Subcommand)]
enum Bench {
    Bootstrap {
        #[arg(long, default_value_t = 100_000)]
        files: usize,
        #[arg(long, default_value_t = 8)]
        peers: usize,
    },
    Propagation {
        #[arg(long, default_value_t = 16)]
        nodes: usize,
        #[arg(long, default_value_t = 200)]
        files: usize,
    },
    /// The chain follower through a real ElectrumX (installed into
    /// target/electrumx-venv on first use).
    Follower {
        #[arg(long, default_value_t = 10_000)]
        ops: usize,
    },
    /// A node's store with this many zone files, and the node started on it.
    Footprint {
        #[arg(long, default_value_t = 1_000_000)]
        files: usize,
        /// Build the store here and keep it (reused by the next run).
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Hashes announced on a one-node devnet in one POST, per count.
    Announce {
        #[arg(long, value_delimiter = ',', default_value = "2000,8000,100000")]
        hashes: Vec<usize>,
    },
    All,
}

fn load_corpus(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading corpus {} (pass --corpus)", path.display()))?;
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok(hex::decode(
                v["zonefile_hex"].as_str().context("zonefile_hex")?,
            )?)
        })
        .collect()
}

/// `n` distinct files whose sizes follow the corpus: a real file drawn at
/// random plus a short unique comment line.
fn synth(corpus: &[Vec<u8>], n: usize, seed: u64) -> Vec<(Hash160, Bytes)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let mut b = corpus[rng.random_range(0..corpus.len())].clone();
            b.truncate(atlas_core::zonefile::MAX_ZONEFILE_BYTES - 16);
            b.extend_from_slice(format!("\n;{i}\n").as_bytes());
            (Hash160::of(&b), Bytes::from(b))
        })
        .collect()
}

fn fill_store(path: &Path, files: &[(Hash160, Bytes)], batch: usize) -> anyhow::Result<Duration> {
    let store = Store::open(path, 16)?;
    let hashes: Vec<Hash160> = files.iter().map(|(h, _)| *h).collect();
    store.set_announcements(0, &hashes)?;
    let t = Instant::now();
    for chunk in files.chunks(batch) {
        store.put_zonefiles(chunk)?;
    }
    Ok(t.elapsed())
}

async fn wait_present(h: &NodeHandle, n: u64, limit: Duration) -> anyhow::Result<()> {
    tokio::time::timeout(limit, h.wait_for(|s| s.present >= n))
        .await
        .context("timed out")??;
    Ok(())
}

async fn bootstrap(corpus: &[Vec<u8>], n: usize, peers: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let files = synth(corpus, n, 1);
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let mut sizes: Vec<usize> = files.iter().map(|(_, b)| b.len()).collect();
    sizes.sort_unstable();
    eprintln!(
        "{n} files, {:.1} MB, median {} B, max {} B; preparing {peers} peers",
        bytes as f64 / 1e6,
        sizes[n / 2],
        sizes[n - 1]
    );
    let ceiling = fill_store(&dir.path().join("ceiling.redb"), &files, 100)?;
    for i in 0..peers {
        let d = dir.path().join(format!("peer-{i}"));
        std::fs::create_dir_all(&d)?;
        fill_store(&d.join("atlas.redb"), &files, 5_000)?;
    }
    let whitelist = MemoryWhitelist::new();
    whitelist.announce(&files.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    let mut nodes = Vec::new();
    let mut seeds = Vec::new();
    for i in 0..peers {
        let mut cfg = NodeConfig::new(dir.path().join(format!("peer-{i}")));
        cfg.seeds = seeds.clone();
        let node = net::spawn(cfg, Box::new(whitelist.clone())).await?;
        wait_present(&node.handle, n as u64, Duration::from_secs(60)).await?;
        let s = node.handle.wait_for(|s| !s.listen_addrs.is_empty()).await?;
        if i == 0 {
            seeds.push((node.handle.peer_id, s.listen_addrs[0].parse()?));
        }
        nodes.push(node);
    }
    // Let the seeders find each other so the newcomer can walk to all of them.
    for node in &nodes {
        tokio::time::timeout(
            Duration::from_secs(30),
            node.handle.wait_for(|s| s.neighbors + 1 >= peers),
        )
        .await
        .context("seeders meshing")??;
    }
    let mut cfg = NodeConfig::new(dir.path().join("fresh"));
    cfg.seeds = seeds;
    let t = Instant::now();
    let fresh = net::spawn(cfg, Box::new(whitelist.clone())).await?;
    wait_present(&fresh.handle, n as u64, Duration::from_secs(1800)).await?;
    let took = t.elapsed();
    let neighbours = fresh.handle.status.borrow().neighbors;
    let node_rate = n as f64 / took.as_secs_f64();
    let ceil_rate = n as f64 / ceiling.as_secs_f64();
    println!(
        "\n### Bootstrap: a fresh node syncs {n} zone files ({:.1} MB) from {peers} loopback peers\n",
        bytes as f64 / 1e6
    );
    println!("| what | seconds | files/s | MB/s |");
    println!("|---|---:|---:|---:|");
    println!(
        "| atlas node, {neighbours} neighbours, TCP+Noise+Yamux | {:.2} | {:.0} | {:.2} |",
        took.as_secs_f64(),
        node_rate,
        bytes as f64 / 1e6 / took.as_secs_f64()
    );
    println!(
        "| ceiling: same files into redb, one process, commits of 100 | {:.2} | {:.0} | {:.2} |",
        ceiling.as_secs_f64(),
        ceil_rate,
        bytes as f64 / 1e6 / ceiling.as_secs_f64()
    );
    println!(
        "| **node / ceiling** | | **{:.2}** | |",
        node_rate / ceil_rate
    );
    fresh.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

fn scrape(h: &NodeHandle) -> HashMap<String, f64> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &h.registry.lock().expect("registry"))
        .expect("encode");
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn propagation(corpus: &[Vec<u8>], nodes: usize, n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let net = Devnet::start(DevnetConfig {
        nodes,
        base_port: 0,
        data_dir: dir.path().to_path_buf(),
        core: CoreConfig::default(),
        block_interval: None,
    })
    .await?;
    let files = synth(corpus, n, 2);
    net.whitelist
        .announce(&files.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    let want_neighbors = 8.min(nodes - 1);
    for node in &net.nodes {
        tokio::time::timeout(
            Duration::from_secs(60),
            node.node
                .handle
                .wait_for(|s| s.announced == n as u64 && s.outbound_neighbors >= want_neighbors),
        )
        .await
        .context("overlay forming")??;
    }
    let mut lat = Vec::with_capacity(n);
    for (k, (_, bytes)) in files.iter().enumerate() {
        let origin = &net.nodes[k % nodes];
        let t = Instant::now();
        let r = client::post(&format!("{}/v1/zonefiles", origin.api_url()), bytes).await?;
        if r.status != 201 {
            bail!("POST answered {}: {}", r.status, r.text());
        }
        for node in &net.nodes {
            wait_present(&node.node.handle, k as u64 + 1, Duration::from_secs(60)).await?;
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    let mut copies = 0.0;
    let mut dups = 0.0;
    for node in &net.nodes {
        let m = scrape(&node.node.handle);
        let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
        copies += get("atlas_zonefiles_stored_total{origin=\"fetched\"}")
            + get("atlas_zonefiles_stored_total{origin=\"pushed\"}")
            + get("atlas_duplicate_zonefiles_total");
        dups += get("atlas_duplicate_zonefiles_total");
    }
    let receivers = (n * (nodes - 1)) as f64;
    println!("\n### Propagation: {nodes} loopback nodes, {n} files, each POSTed at one node\n");
    println!("| metric | value |");
    println!("|---|---:|");
    println!(
        "| POST -> all {nodes} nodes hold it, p50 | {:.1} ms |",
        percentile(&lat, 0.5)
    );
    println!(
        "| POST -> all {nodes} nodes hold it, p99 | {:.1} ms |",
        percentile(&lat, 0.99)
    );
    println!("| max | {:.1} ms |", lat[lat.len() - 1]);
    println!(
        "| payload copies received per node per file | {:.2} |",
        copies / receivers
    );
    println!("| of which duplicates | {:.2} |", dups / receivers);
    net.shutdown().await;
    Ok(())
}

use atlas_testkit::electrumx;

/// BNS operations verified per second through ElectrumX: `ops` NAME_IMPORTs in
/// blocks of 500, served by our RPC to ElectrumX, followed from scratch.
async fn follower(ops: usize) -> anyhow::Result<()> {
    use atlas_chain::electrum::ElectrumBackend;
    use atlas_chain::follower::Follower;
    use atlas_testkit::regtest::RegtestChain;
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir()?;
    let mut chain = RegtestChain::new();
    chain.setup_import_namespace("id");
    for start in (0..ops).step_by(500) {
        let txs = (start..(start + 500).min(ops))
            .map(|i| chain.name_import(&format!("n{i}.id"), Hash160::of(format!("{i}").as_bytes())))
            .collect();
        chain.mine(txs);
    }
    chain.mine_empty(10);
    let genesis = chain.block(0).expect("genesis").header;
    let blocks = chain.height();
    let chain = Arc::new(Mutex::new(chain));
    let (addr, _rpc) =
        atlas_testkit::rpc::serve("127.0.0.1:0".parse()?, chain, "atlas", "atlas").await?;
    let db = dir.path().join("electrumx");
    let url = format!("http://atlas:atlas@{addr}/");
    let (took, found) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Duration, usize)> {
            let ex = electrumx::ElectrumX::start(&url, &db);
            let mut backend = ElectrumBackend::connect(&ex.url, Duration::from_secs(60))?;
            let mut f = Follower::new(bitcoin::Network::Regtest, genesis, 1, 10, []);
            let t = Instant::now();
            f.poll(&mut backend)?;
            Ok((t.elapsed(), f.announcements().len()))
        })
        .await??;
    if found != ops {
        bail!("the follower found {found} of {ops} announcements");
    }
    // Each import costs three verified fetches: the transaction, its merkle
    // branch, and the transaction funding its first input (the sender).
    println!(
        "\n### Chain follower: {ops} BNS operations in {blocks} blocks, through a local ElectrumX\n"
    );
    println!("| what | value |");
    println!("|---|---:|");
    println!(
        "| follow from scratch (headers, discovery, proofs, name rules) | {:.2} s |",
        took.as_secs_f64()
    );
    println!(
        "| operations verified per second | {:.0} |",
        ops as f64 / took.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let corpus = load_corpus(&cli.corpus)?;
    match cli.cmd {
        Bench::Bootstrap { files, peers } => bootstrap(&corpus, files, peers).await,
        Bench::Propagation { nodes, files } => propagation(&corpus, nodes, files).await,
        Bench::Follower { ops } => follower(ops).await,
        Bench::Announce { hashes } => announce::announce(&hashes).await,
        Bench::Footprint { files, keep } => {
            footprint::footprint(&corpus, files, keep.as_deref()).await
        }
        Bench::All => {
            bootstrap(&corpus, 100_000, 8).await?;
            propagation(&corpus, 16, 200).await?;
            follower(10_000).await
        }
    }
}
