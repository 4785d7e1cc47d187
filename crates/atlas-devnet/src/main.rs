//! `atlas-dev`: the developer's atlas. `devnet` runs N nodes in one process
//! on an embedded regtest chain, `simulate` runs a scenario on the simulator,
//! and every command of the `atlas` binary is here too, so one
//! `cargo run --release -- <command>` reaches them all. The deployed `atlas`
//! binary links none of this.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use atlas_core::CoreConfig;
use atlas_devnet::{Devnet, DevnetConfig};
use atlas_node::cli::init_logging;

#[derive(Parser)]
#[command(
    name = "atlas-dev",
    version,
    about = "The Atlas node for developers: devnet, simulator, and every `atlas` command"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
    #[command(flatten)]
    Node(atlas_node::cli::Command),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
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
        Cmd::Simulate {
            scenario,
            seed,
            out,
            nodes,
            files,
            no_plots,
        } => {
            let sc = atlas_sim::Scenario::load(&scenario)?;
            let out = out.unwrap_or_else(|| atlas_sim::default_out(&sc));
            let opts = atlas_sim::Overrides {
                seed,
                nodes,
                files,
                progress: true,
                no_plots,
            };
            let summary = tokio::task::spawn_blocking(move || {
                let s = atlas_sim::run(sc, &opts, &out);
                (s, out)
            })
            .await?;
            let (summary, out) = summary;
            let summary = summary?;
            print_summary(&summary);
            println!("results in {}", out.display());
            Ok(())
        }
        Cmd::Node(command) => atlas_node::cli::run(command).await,
    }
}

fn print_summary(s: &atlas_sim::Summary) {
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
            let (addr, task) = atlas_testkit::rpc::serve(
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
