//! `footprint`: a node's store holding N whitelisted zone files (sizes drawn
//! like the real corpus), then the `atlas` binary started on it as an
//! operator would (a config file, the whitelist from a file of hashes):
//! disk size, time from exec to a serving API and to the whole whitelist
//! loaded, resident memory at rest, `GET /v1/zonefiles/{hash}` latency over
//! random hashes, and peak resident memory while a fresh peer with the same
//! whitelist asks for its inventory and fetches from it.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atlas_core::zonefile::Hash160;
use atlas_node::api::client;
use atlas_node::net::{self, NodeConfig};
use atlas_node::store::Store;
use atlas_node::whitelist::MemoryWhitelist;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{percentile, synth};

/// Files written per redb commit while building the store.
const BUILD_BATCH: usize = 10_000;
/// Random reads timed through the API.
const READS: usize = 2_000;
/// How long the fresh peer fetches while the node's peak memory is watched.
const PEER_LOAD: Duration = Duration::from_secs(30);

struct NodeProcess(Child);

impl Drop for NodeProcess {
    /// SIGINT, the clean stop, so a kept store opens without recovery next
    /// time; SIGKILL if the node has not exited within 30 s.
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (VmRSS, VmHWM) of a process, in bytes.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} in /proc/{pid}/status"))?;
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .context("a number")?
            .parse()?;
        Ok(kb * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The hashes and zone-file bytes of a store built earlier in `dir` with `n` files.
fn reuse(dir: &Path, n: usize) -> anyhow::Result<Option<(Vec<Hash160>, u64)>> {
    let Ok(list) = std::fs::read_to_string(dir.join("whitelist.txt")) else {
        return Ok(None);
    };
    let hashes: Vec<Hash160> = list.lines().map(str::parse).collect::<Result<_, _>>()?;
    if hashes.len() != n {
        return Ok(None);
    }
    let bytes = std::fs::read_to_string(dir.join("bytes.txt"))?
        .trim()
        .parse()?;
    Ok(Some((hashes, bytes)))
}

/// Writes the store and the whitelist file; returns every hash, in order.
fn build(corpus: &[Vec<u8>], n: usize, dir: &Path) -> anyhow::Result<(Vec<Hash160>, u64)> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let store = Store::open(&data.join("atlas.redb"), 16)?;
    let mut list = std::io::BufWriter::new(std::fs::File::create(dir.join("whitelist.txt"))?);
    let mut hashes = Vec::with_capacity(n);
    let mut bytes = 0u64;
    let started = Instant::now();
    for (b, first) in (0..n).step_by(BUILD_BATCH).enumerate() {
        let count = BUILD_BATCH.min(n - first);
        // Each batch draws its own sizes; the comment line keeps hashes unique.
        let files: Vec<_> = synth(corpus, count, 1_000 + b as u64)
            .into_iter()
            .enumerate()
            .map(|(i, (_, body))| {
                let mut v = body.to_vec();
                v.extend_from_slice(format!(";{}\n", first + i).as_bytes());
                let v = bytes::Bytes::from(v);
                (Hash160::of(&v), v)
            })
            .collect();
        let batch: Vec<Hash160> = files.iter().map(|(h, _)| *h).collect();
        store.set_announcements(first as u64, &batch)?;
        store.put_zonefiles(&files)?;
        for h in &batch {
            writeln!(list, "{h}")?;
        }
        bytes += files.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
        hashes.extend(batch);
        if b % 10 == 9 {
            eprintln!(
                "built {} of {n} files in {:.0} s",
                hashes.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    list.flush()?;
    std::fs::write(dir.join("bytes.txt"), bytes.to_string())?;
    Ok((hashes, bytes))
}

/// Starts the `atlas` binary on the config; returns it once it serves its API
/// with the whole whitelist loaded, with the time to each.
async fn start(
    dir: &Path,
    config: &Path,
    api_port: u16,
    n: usize,
) -> anyhow::Result<(NodeProcess, Duration, Duration)> {
    let exe = std::env::current_exe()?
        .parent()
        .context("the bench's directory")?
        .join("atlas");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))?;
    let started = Instant::now();
    let node = NodeProcess(
        Command::new(&exe)
            .args(["node", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn,atlas_node::net::node=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (cargo build --release -p atlas-node)",
                    exe.display()
                )
            })?,
    );
    let status_url = format!("http://127.0.0.1:{api_port}/v1/status");
    loop {
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the node did not serve its API within 300 s");
        }
        if let Ok(r) = client::get(&status_url).await
            && r.status == 200
        {
            let serving = started.elapsed();
            // The first answer may come before the whitelist is in.
            loop {
                let s: serde_json::Value =
                    serde_json::from_slice(&client::get(&status_url).await?.body)?;
                if s["announced"].as_u64() == Some(n as u64)
                    && s["present"].as_u64() == Some(n as u64)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            return Ok((node, serving, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Drops a file's pages from the page cache, as after a reboot or after other
/// work has pushed them out: what a node restarted on a busy host reads.
fn evict_from_page_cache(path: &Path) -> anyhow::Result<()> {
    // Only clean pages can be dropped.
    std::fs::File::open(path)?.sync_all()?;
    // GNU dd with `iflag=nocache count=0` advises the kernel to drop the
    // whole file's pages (posix_fadvise DONTNEED); no privilege needed.
    let status = Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status()
        .context("running dd")?;
    if !status.success() {
        bail!("dd could not evict {} from the page cache", path.display());
    }
    Ok(())
}

pub async fn footprint(corpus: &[Vec<u8>], n: usize, keep: Option<&Path>) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = keep.unwrap_or(temp.path());
    // A kept directory holding a store of this size is reused as it is.
    let (hashes, bytes) = match reuse(dir, n)? {
        Some(found) => {
            // A store kept from an older version is brought up to date here,
            // not in the timed start.
            let opened = Instant::now();
            drop(Store::open(&dir.join("data/atlas.redb"), 16)?);
            eprintln!(
                "kept store opened in {:.2} s",
                opened.elapsed().as_secs_f64()
            );
            found
        }
        None => build(corpus, n, dir)?,
    };
    let disk = std::fs::metadata(dir.join("data/atlas.redb"))?.len();
    let _ = std::fs::remove_file(dir.join("node.log"));

    let (api_port, p2p_port) = (free_port()?, free_port()?);
    let config = dir.join("atlas.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{data}\"\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/{p2p_port}\"]\n[whitelist]\nfile = \"{list}\"\n",
            data = dir.join("data").display(),
            list = dir.join("whitelist.txt").display()
        ),
    )?;
    let (node, serving, loaded) = start(dir, &config, api_port, n).await?;
    let pid = node.0.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rest_rss, _) = memory(pid)?;

    let mut rng = StdRng::seed_from_u64(7);
    let mut reads = Vec::with_capacity(READS);
    for _ in 0..READS {
        let h = hashes[rng.random_range(0..hashes.len())];
        let url = format!("http://127.0.0.1:{api_port}/v1/zonefiles/{h}");
        let t = Instant::now();
        let r = client::get(&url).await?;
        reads.push(t.elapsed().as_secs_f64() * 1e3);
        if r.status != 200 {
            bail!("GET {url} answered {}", r.status);
        }
    }
    reads.sort_by(f64::total_cmp);

    // A fresh peer with the whole whitelist: it asks for the inventory and
    // fetches as fast as the node serves.
    let whitelist = MemoryWhitelist::new();
    atlas_node::whitelist::Announcer::announce(&whitelist, &hashes);
    let mut cfg = NodeConfig::new(dir.join("peer"));
    cfg.bare_seeds = vec![format!("/ip4/127.0.0.1/tcp/{p2p_port}").parse()?];
    let peer = net::spawn(cfg, Box::new(whitelist)).await?;
    let load_started = Instant::now();
    let mut peak = 0;
    while load_started.elapsed() < PEER_LOAD {
        peak = peak.max(memory(pid)?.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fetched = peer.handle.status.borrow().present;
    let (_, hwm) = memory(pid)?;
    peer.shutdown().await;

    // Again with a cold page cache: the store and the whitelist file evicted.
    drop(node);
    evict_from_page_cache(&dir.join("data/atlas.redb"))?;
    evict_from_page_cache(&dir.join("whitelist.txt"))?;
    let (node, cold_serving, cold_loaded) = start(dir, &config, api_port, n).await?;

    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "\n### Footprint: a node holding {n} zone files ({:.0} MB of zone files)\n",
        bytes as f64 / 1e6
    );
    println!("| what | value | target |");
    println!("|---|---:|---:|");
    println!("| store on disk (atlas.redb) | {:.0} MiB | |", mb(disk));
    println!(
        "| exec -> API answers | {:.2} s | < 3 s |",
        serving.as_secs_f64()
    );
    println!(
        "| exec -> whole whitelist loaded (announced = present = {n}) | {:.2} s | |",
        loaded.as_secs_f64()
    );
    println!(
        "| resident memory at rest | {:.0} MiB | < 300 MB |",
        mb(rest_rss)
    );
    println!(
        "| GET /v1/zonefiles/{{hash}}, {READS} random, p50 / p99 | {:.2} / {:.2} ms | p99 < 5 ms |",
        percentile(&reads, 0.5),
        percentile(&reads, 0.99)
    );
    println!(
        "| resident memory while a fresh peer syncs from it ({} s, {fetched} files fetched), peak | {:.0} MiB (high-water mark {:.0} MiB) | < 300 MB |",
        PEER_LOAD.as_secs(),
        mb(peak),
        mb(hwm)
    );
    println!(
        "| the same, store and whitelist file evicted from the page cache first | {:.2} s / {:.2} s | < 3 s |",
        cold_serving.as_secs_f64(),
        cold_loaded.as_secs_f64()
    );
    drop(node);
    Ok(())
}
