//! The `atlas` command line: the node's subcommands, also mounted by the
//! developer's `atlas-dev` beside `devnet` and `simulate`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::api::{self, ApiState, client};
use crate::config::{Config, Role};
use crate::net;
use crate::whitelist::{FileWhitelist, MemoryWhitelist, WhitelistSource};
use atlas_chain::connect::{ChainConnector, FollowerParams};

#[derive(Subcommand)]
pub enum Command {
    /// Run one node from a TOML config (every field has a default).
    Node {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Preset for the node's role; overrides `role` in the config.
        #[arg(long, value_enum)]
        role: Option<Role>,
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
pub enum ZonefileOp {
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

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,libp2p_swarm=warn,libp2p_tcp=warn,libp2p_quic=warn".into());
    // Logs go to stderr; stdout carries command output (devnet lines, status JSON).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs one command to its end (a node: until Ctrl-C).
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Node { config, role } => {
            init_logging();
            run_node(config, role).await
        }
        Command::CheckConfig { config, role } => check_config(config, role),
        Command::Reindex { config } => {
            init_logging();
            reindex(config).await
        }
        Command::Status { api } => {
            let r = client::get(&format!("{}/v1/status", api.trim_end_matches('/'))).await?;
            if r.status != 200 {
                bail!("{} answered {}: {}", api, r.status, r.text());
            }
            let v: serde_json::Value =
                serde_json::from_slice(&r.body).context("status is not JSON")?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Command::Zonefile { op } => match op {
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

async fn reindex(config: Option<PathBuf>) -> anyhow::Result<()> {
    let v = load_config(config, None)?;
    let Some(chain) = &v.chain else {
        bail!("reindex needs a [chain] section with electrum servers in the config");
    };
    let path = v.node.data_dir.join("atlas.redb");
    let store = crate::store::Store::open(&path, v.node.pending_capacity)
        .with_context(|| format!("opening {} (is the node still running?)", path.display()))?;
    let connector = chain_connector(chain);
    let attempts = 3 * chain.electrum.len();
    let (hashes, height, store) = tokio::task::spawn_blocking(move || {
        let (hashes, height) = connector.connect(3)?.reindex(&store, attempts)?;
        Ok::<_, String>((hashes, height, store))
    })
    .await?
    .map_err(|e| anyhow::anyhow!("reindex failed: {e}"))?;
    store
        .set_announcements(0, &hashes)
        .context("writing the whitelist")?;
    println!(
        "reindexed: {} announcements, confirmed to block {height}",
        hashes.len()
    );
    Ok(())
}

fn load_config(
    config: Option<PathBuf>,
    role: Option<Role>,
) -> anyhow::Result<crate::config::Validated> {
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
                "network": atlas_chain::network_name(c.network),
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
pub fn chain_connector(c: &crate::config::ValidatedChain) -> ChainConnector {
    use atlas_chain::backend::ChainBackend;
    use atlas_chain::electrum::ElectrumBackend;
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
