//! The `atlas` command line.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use atlas::api::{self, ApiState, client};
use atlas::atlas::CoreConfig;
use atlas::chain::connect::{ChainConnector, FollowerParams};
use atlas::config::{Config, Role};
use atlas::devnet::{Devnet, DevnetConfig};
use atlas::net;
use atlas::whitelist::{FileWhitelist, MemoryWhitelist, WhitelistSource};

#[derive(Parser)]
#[command(
    name = "atlas",
    version,
    about = "A node of the Atlas zone-file network"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node from a TOML config (every field has a default).
    Node {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Preset for the node's role; overrides `role` in the config.
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Run N nodes on 127.0.0.1 in this process, following an embedded regtest chain.
    Devnet {
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Node i's API is on base-port + i; its p2p port is base-port + 1000 + i.
        #[arg(long, default_value_t = 7600)]
        base_port: u16,
        #[arg(long, default_value = "./devnet-data")]
        data_dir: PathBuf,
        /// Also serve the devnet's chain over bitcoind's JSON-RPC on this port
        /// (basic auth atlas:atlas), so an ElectrumX can index it.
        #[arg(long)]
        bitcoind_rpc_port: Option<u16>,
        /// Mine an empty block every this many seconds (0: only when hashes
        /// are announced), so followers that wait for more confirmations than
        /// an announcement mines (an `atlas node` defaults to 10) get them.
        #[arg(long, default_value_t = 2.0)]
        block_interval: f64,
    },
    /// Check a config as `atlas node` would at start-up, without starting:
    /// exits non-zero with what to fix, else prints what it resolves to
    /// (data directory, API and p2p addresses, whitelist source) as JSON.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Forget the chain follower's saved progress and rebuild the whitelist
    /// from the chain (the node must be stopped; zone files are kept).
    Reindex {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a simulation scenario (simulations/scenarios/*.toml) on the
    /// production core under a virtual clock; writes CSVs, plots and summary.json.
    Simulate {
        scenario: PathBuf,
        #[arg(long)]
        seed: Option<u64>,
        /// Results directory (default: sim-out/<scenario name>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        nodes: Option<usize>,
        #[arg(long)]
        files: Option<usize>,
        /// Skip the PNG/SVG plots.
        #[arg(long)]
        no_plots: bool,
    },
    /// Print a node's status.
    Status {
        #[arg(long, default_value = "http://127.0.0.1:7600")]
        api: String,
    },
    /// Read or publish a zone file through a node's API.
    Zonefile {
        #[command(subcommand)]
        op: ZonefileOp,
    },
}

#[derive(Subcommand)]
enum ZonefileOp {
    /// Write the zone file with this hash to stdout.
    Get {
        hash: String,
        #[arg(long, default_value = "http://127.0.0.1:7600")]
        api: String,
    },
    /// Publish the zone file in FILE.
    Put {
        file: PathBuf,
        #[arg(long, default_value = "http://127.0.0.1:7600")]
        api: String,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,libp2p_swarm=warn,libp2p_tcp=warn,libp2p_quic=warn".into());
    // Logs go to stderr; stdout carries command output (devnet lines, status JSON).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Node { config, role } => {
            init_logging();
            run_node(config, role).await
        }
        Cmd::Devnet {
            nodes,
            base_port,
            data_dir,
            bitcoind_rpc_port,
            block_interval,
        } => {
            init_logging();
            run_devnet(
                nodes,
                base_port,
                data_dir,
                bitcoind_rpc_port,
                block_interval,
            )
            .await
        }
        Cmd::CheckConfig { config, role } => check_config(config, role),
        Cmd::Reindex { config } => {
            init_logging();
            reindex(config).await
        }
        Cmd::Simulate {
            scenario,
            seed,
            out,
            nodes,
            files,
            no_plots,
        } => {
            let sc = atlas::sim::Scenario::load(&scenario)?;
            let out = out.unwrap_or_else(|| atlas::sim::default_out(&sc));
            let opts = atlas::sim::Overrides {
                seed,
                nodes,
                files,
                progress: true,
                no_plots,
            };
            let summary = tokio::task::spawn_blocking(move || {
                let s = atlas::sim::run(sc, &opts, &out);
                (s, out)
            })
            .await?;
            let (summary, out) = summary;
            let summary = summary?;
            print_summary(&summary);
            println!("results in {}", out.display());
            Ok(())
        }
        Cmd::Status { api } => {
            let r = client::get(&format!("{}/v1/status", api.trim_end_matches('/'))).await?;
            if r.status != 200 {
                bail!("{} answered {}: {}", api, r.status, r.text());
            }
            let v: serde_json::Value =
                serde_json::from_slice(&r.body).context("status is not JSON")?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Cmd::Zonefile { op } => match op {
            ZonefileOp::Get { hash, api } => {
                let r = client::get(&format!(
                    "{}/v1/zonefiles/{hash}",
                    api.trim_end_matches('/')
                ))
                .await?;
                if r.status != 200 {
                    bail!("{} answered {}: {}", api, r.status, r.text());
                }
                use std::io::Write;
                std::io::stdout().write_all(&r.body)?;
                Ok(())
            }
            ZonefileOp::Put { file, api } => {
                let bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let r = client::post(
                    &format!("{}/v1/zonefiles", api.trim_end_matches('/')),
                    &bytes,
                )
                .await?;
                println!("{} {}", r.status, r.text());
                if r.status >= 300 && r.status != 202 {
                    bail!("upload refused");
                }
                Ok(())
            }
        },
    }
}

fn print_summary(s: &atlas::sim::Summary) {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    println!(
        "| {} ({}, seed {}) | value |",
        s.scenario, s.profile, s.seed
    );
    println!("|---|---:|");
    println!(
        "| nodes (live at end) | {} ({}) |",
        s.nodes, s.live_nodes_end
    );
    println!("| files announced | {} |", s.files_announced);
    println!("| final coverage | {:.4} |", s.final_coverage);
    println!(
        "| full coverage since (s) | {} |",
        opt(s.time_to_full_coverage_s)
    );
    println!(
        "| propagation p50 / p99 (s) | {} / {} |",
        opt(s.propagation_p50_s),
        opt(s.propagation_p99_s)
    );
    println!(
        "| published -> all nodes p50 / p99 (s) | {} / {} |",
        opt(s.publish_to_all_p50_s),
        opt(s.publish_to_all_p99_s)
    );
    println!(
        "| payload copies per stored file | {} |",
        s.copies_per_stored_file
            .map_or("-".to_string(), |c| format!("{c:.2}"))
    );
    println!("| bytes per node | {:.0} |", s.bytes_per_node);
    if let Some(h) = s.honest_neighbor_fraction {
        println!("| honest neighbour fraction | {h:.3} |");
    }
    if let Some(u) = &s.walk_uniformity {
        println!("| walk uniformity z ({} nodes) | {:.2} |", u.nodes, u.z);
    }
    if s.data_loss_nodes > 0 {
        println!(
            "| data-loss nodes recovered | {}/{} (max {} s) |",
            s.data_loss_recovered,
            s.data_loss_nodes,
            opt(s.data_loss_recovery_max_s)
        );
    }
    // Big runs are slower than real time: keep two significant digits there.
    let digits = if s.sim_to_wall < 10.0 { 2 } else { 0 };
    println!(
        "| simulated s / wall s | {:.1} / {:.1} ({:.*}x) |",
        s.sim_s, s.wall_s, digits, s.sim_to_wall
    );
    println!(
        "| events (per wall s) | {} ({:.0}) |",
        s.events, s.events_per_s
    );
}

async fn reindex(config: Option<PathBuf>) -> anyhow::Result<()> {
    let v = load_config(config, None)?;
    let Some(chain) = &v.chain else {
        bail!("reindex needs a [chain] section with electrum servers in the config");
    };
    let path = v.node.data_dir.join("atlas.redb");
    let store = atlas::store::Store::open(&path, v.node.pending_capacity)
        .with_context(|| format!("opening {} (is the node still running?)", path.display()))?;
    let connector = chain_connector(chain);
    let attempts = 3 * chain.electrum.len();
    let (count, height) =
        tokio::task::spawn_blocking(move || connector.connect(3)?.reindex(&store, attempts))
            .await?
            .map_err(|e| anyhow::anyhow!("reindex failed: {e}"))?;
    println!("reindexed: {count} announcements, confirmed to block {height}");
    Ok(())
}

fn load_config(
    config: Option<PathBuf>,
    role: Option<Role>,
) -> anyhow::Result<atlas::config::Validated> {
    let mut cfg = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(role) = role {
        cfg.apply_role(role);
    } else {
        let r = cfg.role;
        cfg.apply_role(r);
    }
    Ok(cfg.validate()?)
}

fn check_config(config: PathBuf, role: Option<Role>) -> anyhow::Result<()> {
    let v = load_config(Some(config), role)?;
    let whitelist = match (&v.chain, &v.whitelist_file) {
        (Some(c), _) => serde_json::json!({
            "chain": {
                "electrum": c.electrum,
                "network": atlas::chain::network_name(c.network),
                "confirmations": c.confirmations,
                "start_height": c.start_height,
            }
        }),
        (None, Some(path)) => serde_json::json!({ "file": path }),
        (None, None) => serde_json::json!("none"),
    };
    let summary = serde_json::json!({
        "data_dir": v.node.data_dir,
        "api_listen": v.api_listen.to_string(),
        "p2p_listen": v.node.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "seeds": v.node.seeds.len() + v.node.bare_seeds.len(),
        "whitelist": whitelist,
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

async fn run_node(config: Option<PathBuf>, role: Option<Role>) -> anyhow::Result<()> {
    let v = load_config(config, role)?;
    let whitelist: Box<dyn WhitelistSource> = match (&v.chain, &v.whitelist_file) {
        (Some(chain), _) => Box::new(chain_connector(chain)),
        (None, Some(path)) => {
            let source = FileWhitelist {
                path: path.clone(),
                poll: std::time::Duration::from_secs(5),
            };
            source.read().context("whitelist.file")?;
            Box::new(source)
        }
        (None, None) => {
            tracing::warn!(
                "no whitelist source configured ([chain] electrum or [whitelist] file): this node can relay peers but will store no zone files"
            );
            Box::new(MemoryWhitelist::new())
        }
    };
    let api_listen = v.api_listen;
    let node = net::spawn(v.node, whitelist).await?;
    let (addr, api_task) = api::serve(
        api_listen,
        ApiState {
            node: node.handle.clone(),
            devnet: None,
        },
        v.api_limits,
    )
    .await
    .with_context(|| format!("api.listen {api_listen}"))?;
    tracing::info!(peer_id = %node.handle.peer_id, "node started; API on http://{addr}");
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    api_task.abort();
    node.shutdown().await;
    Ok(())
}

/// The chain source of a config: Electrum servers, not contacted yet (the
/// follower anchors itself on the header before `start_height` once one answers).
fn chain_connector(c: &atlas::config::ValidatedChain) -> ChainConnector {
    use atlas::chain::backend::ChainBackend;
    use atlas::chain::electrum::ElectrumBackend;
    let timeout = std::time::Duration::from_secs(20);
    let backends: Vec<Box<dyn ChainBackend>> = c
        .electrum
        .iter()
        .map(|url| Box::new(ElectrumBackend::new(url, timeout)) as Box<dyn ChainBackend>)
        .collect();
    ChainConnector::new(
        backends,
        FollowerParams {
            network: c.network,
            rules: c.rules.clone(),
            genesis: Vec::new(),
            start_height: c.start_height,
            confirmations: c.confirmations,
            watch: c.watch.clone(),
            poll: c.poll,
        },
    )
}

async fn run_devnet(
    nodes: usize,
    base_port: u16,
    data_dir: PathBuf,
    rpc_port: Option<u16>,
    block_interval: f64,
) -> anyhow::Result<()> {
    if nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if !(block_interval.is_finite() && block_interval >= 0.0) {
        bail!("--block-interval must be a number of seconds, 0 or more (0: no timer)");
    }
    let devnet = Devnet::start(DevnetConfig {
        nodes,
        base_port,
        data_dir,
        core: CoreConfig::default(),
        block_interval: (block_interval > 0.0)
            .then(|| std::time::Duration::from_secs_f64(block_interval)),
    })
    .await?;
    for (i, n) in devnet.nodes.iter().enumerate() {
        println!(
            "node {i} api {} peer {}",
            n.api_url(),
            n.node.handle.peer_id
        );
    }
    let _rpc = match rpc_port {
        Some(port) => {
            let (addr, task) = atlas::chain::rpc::serve(
                ([127, 0, 0, 1], port).into(),
                devnet.whitelist.chain.clone(),
                "atlas",
                "atlas",
            )
            .await
            .with_context(|| format!("--bitcoind-rpc-port {port}"))?;
            println!("bitcoind rpc http://atlas:atlas@{addr}/");
            Some(task)
        }
        None => None,
    };
    println!("devnet ready");
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    devnet.shutdown().await;
    Ok(())
}
