//! `atlas`: the node binary. Its commands are `atlas_node::cli`; the devnet and
//! the simulator are the developer's `atlas-dev`, not linked here.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "atlas",
    version,
    about = "A node of the Atlas zone-file network"
)]
struct Cli {
    #[command(subcommand)]
    command: atlas_node::cli::Command,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    atlas_node::cli::run(Cli::parse().command).await
}
