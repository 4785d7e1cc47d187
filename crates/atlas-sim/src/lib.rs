//! The simulator: thousands of real `atlas_core::Core`s (the code a node runs,
//! not a model of it) under one virtual clock, joined by a seeded network
//! model, scripted by a scenario file (churn, partitions, data loss,
//! withholders, Sybil floods). Same scenario and seed, same result, bit for
//! bit: every random draw comes from seeded generators and nothing iterates
//! a hash map in an order that matters.
//!
//! The engine plays libp2p's part for each node: connections (dial time,
//! idle timeout, closes seen after a delay), request/response routing,
//! bandwidth and latency, and the store (zone files held, the pending inbox).

mod adapter;
mod engine;
mod fork;
mod network;
mod node;
#[cfg(test)]
mod parity;
#[cfg(feature = "plots")]
mod plot;
mod record;
pub mod scenario;
mod sizes;
mod world;

use std::path::{Path, PathBuf};

pub use record::Summary;
pub use scenario::{Scenario, ScenarioError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("writing results to {path}: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "this build of the simulator draws no plots (feature `plots` is off): pass --no-plots, \
         or build with `--features plots` (atlas-dev has it)"
    )]
    NoPlots,
    #[error("plotting {path}: {message}")]
    Plot { path: String, message: String },
}

/// Command-line overrides of a scenario.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub seed: Option<u64>,
    pub nodes: Option<usize>,
    pub files: Option<usize>,
    /// Print a progress line to stderr every few seconds of wall time.
    pub progress: bool,
    /// Skip the PNG/SVG plots (tests).
    pub no_plots: bool,
}

/// Runs `scenario` and writes CSVs, plots and `summary.json` into `out`.
pub fn run(mut scenario: Scenario, opts: &Overrides, out: &Path) -> Result<Summary, SimError> {
    if let Some(n) = opts.nodes {
        scenario.nodes = n;
    }
    if let Some(f) = opts.files {
        scenario.files = f;
    }
    scenario.validate()?;
    let seed = opts.seed.unwrap_or(1);
    let started = std::time::Instant::now();
    let mut sim = engine::Sim::new(&scenario, seed)?;
    sim.run(opts.progress);
    let wall = started.elapsed();
    let summary = sim
        .record
        .summary(&scenario, seed, sim.events, sim.now_s(), wall);
    std::fs::create_dir_all(out).map_err(|source| SimError::Output {
        path: out.display().to_string(),
        source,
    })?;
    sim.record.write(out, &summary)?;
    if !opts.no_plots {
        #[cfg(feature = "plots")]
        plot::all(&sim.record, out)?;
        #[cfg(not(feature = "plots"))]
        return Err(SimError::NoPlots);
    }
    Ok(summary)
}

/// Where a scenario's results go by default: `sim-out/<name>`.
pub fn default_out(scenario: &Scenario) -> PathBuf {
    PathBuf::from("sim-out").join(&scenario.name)
}
