//! Scenario files: one TOML struct with defaults, validated before a run,
//! with messages that name the field to fix.

use std::path::Path;

use serde::Deserialize;

use atlas_core::CoreConfig;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("scenario field {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// Which protocol timing the nodes run.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// This project's defaults: deltas, push, fast walk while short of neighbours.
    #[default]
    Atlas,
    /// The original Python Atlas's timing (`CoreConfig::original_atlas`).
    Original,
}

/// How the network looks when the clock starts.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Only the seeds hold the initial files; the other nodes join empty,
    /// knowing the seeds, spread over `join_spread_s`.
    #[default]
    Fresh,
    /// Every node holds the initial files and knows a few random peers: an
    /// established network, to watch what happens to it.
    Converged,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub profile: Profile,
    /// Overrides on top of the profile's `CoreConfig` (any of its fields).
    pub core: toml::Table,
    pub nodes: usize,
    pub seeds: usize,
    /// Zone files announced before the start.
    pub files: usize,
    pub start: Start,
    pub join_spread_s: f64,
    /// Random peers each node knows at a converged start.
    pub known_peers: usize,
    /// Simulated time limit.
    pub duration_s: f64,
    /// End as soon as every live node holds every announced file and no
    /// scripted event is still to come.
    pub stop_when_covered: bool,
    pub sample_s: f64,
    pub network: Network,
    pub publish: Publish,
    pub churn: Churn,
    pub partition: Partition,
    pub data_loss: DataLoss,
    pub fork: Fork,
    pub adversary: Adversary,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "unnamed".into(),
            description: String::new(),
            profile: Profile::Atlas,
            core: toml::Table::new(),
            nodes: 100,
            seeds: 1,
            files: 100,
            start: Start::Fresh,
            join_spread_s: 60.0,
            known_peers: 16,
            duration_s: 3_600.0,
            stop_when_covered: false,
            sample_s: 5.0,
            network: Network::default(),
            publish: Publish::default(),
            churn: Churn::default(),
            partition: Partition::default(),
            data_loss: DataLoss::default(),
            fork: Fork::default(),
            adversary: Adversary::default(),
        }
    }
}

/// Links: one-way latency drawn once per pair of nodes from a log-normal
/// (median, sigma) clipped to [min, max]; per-node bandwidth in each
/// direction; loss as TCP sees it (a lost segment costs a retransmission
/// timeout, not the message).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    pub latency_median_ms: f64,
    pub latency_sigma: f64,
    pub latency_min_ms: f64,
    pub latency_max_ms: f64,
    pub bandwidth_mbps: f64,
    pub loss: f64,
    /// How long a dial to an address where nobody answers takes to fail.
    pub dial_timeout_s: f64,
    /// Connections without traffic for this long are closed (libp2p's idle timeout).
    pub idle_timeout_s: f64,
}

impl Default for Network {
    fn default() -> Self {
        // A WAN spread: median 60 ms one way, a long tail to intercontinental links.
        Network {
            latency_median_ms: 60.0,
            latency_sigma: 0.6,
            latency_min_ms: 5.0,
            latency_max_ms: 400.0,
            bandwidth_mbps: 20.0,
            loss: 0.001,
            dial_timeout_s: 10.0,
            idle_timeout_s: 180.0,
        }
    }
}

/// New announcements after the start: a block every `block_interval_s`
/// carrying `files_per_block` new hashes; each zone file is uploaded to a
/// random live node when its block arrives.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Publish {
    pub files_per_block: usize,
    pub block_interval_s: f64,
    pub first_block_s: f64,
    /// No blocks after this time (0 = until the end).
    pub until_s: f64,
    /// Nodes hear of a block up to this long after it (follower polling).
    pub follower_lag_s: f64,
}

impl Default for Publish {
    fn default() -> Self {
        Publish {
            files_per_block: 0,
            block_interval_s: 600.0,
            first_block_s: 600.0,
            until_s: 0.0,
            follower_lag_s: 5.0,
        }
    }
}

/// Nodes leave at `rate_per_hour` (fraction of the live population per
/// hour) between `from_s` and `until_s`; as many new, empty nodes join.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Churn {
    pub rate_per_hour: f64,
    pub from_s: f64,
    pub until_s: f64,
}

/// The overlay splits into `groups` at `at_s` and heals at `heal_s`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Partition {
    pub groups: usize,
    pub at_s: f64,
    pub heal_s: f64,
}

/// A `fraction` of the non-seed nodes lose their disk at `at_s` and restart empty.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DataLoss {
    pub fraction: f64,
    pub at_s: f64,
}

/// A chain reorganisation at `at_s`: the last `depth` announcements are
/// replaced by as many new ones (new zone files, uploaded like a block's).
/// Most followers see it within `publish.follower_lag_s`; a `late_fraction`
/// of the nodes only `late_s` later, and meanwhile disagree with the rest.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Fork {
    pub depth: usize,
    pub at_s: f64,
    pub late_fraction: f64,
    pub late_s: f64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Adversary {
    /// Fraction of non-seed nodes that advertise files but never serve them.
    pub withholding: f64,
    /// Nodes that answer every peer exchange with fake identities.
    pub sybil_nodes: usize,
    /// Size of the fake identity pool the Sybil nodes draw from.
    pub sybil_identities: usize,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ScenarioError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The nodes' protocol settings: the profile, then the `[core]` overrides.
    pub fn core_config(&self) -> Result<CoreConfig, ScenarioError> {
        let base = match self.profile {
            Profile::Atlas => CoreConfig::default(),
            Profile::Original => CoreConfig::original_atlas(),
        };
        let mut table = toml::Table::try_from(&base).map_err(|e| ScenarioError::Invalid {
            field: "core",
            message: e.to_string(),
        })?;
        for (k, v) in &self.core {
            table.insert(k.clone(), v.clone());
        }
        let cfg: CoreConfig =
            table
                .try_into()
                .map_err(|e: toml::de::Error| ScenarioError::Invalid {
                    field: "core",
                    message: e.to_string(),
                })?;
        cfg.validate().map_err(|message| ScenarioError::Invalid {
            field: "core",
            message,
        })?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let check = |ok: bool, field: &'static str, message: &str| {
            if ok {
                Ok(())
            } else {
                Err(ScenarioError::Invalid {
                    field,
                    message: message.to_string(),
                })
            }
        };
        check(self.nodes >= 2, "nodes", "at least 2 nodes")?;
        check(
            self.seeds >= 1 && self.seeds < self.nodes,
            "seeds",
            "at least 1 seed, and fewer seeds than nodes",
        )?;
        check(self.duration_s > 0.0, "duration_s", "must be positive")?;
        check(self.sample_s > 0.0, "sample_s", "must be positive")?;
        check(
            self.join_spread_s >= 0.0,
            "join_spread_s",
            "must not be negative",
        )?;
        let n = &self.network;
        check(
            n.latency_min_ms > 0.0
                && n.latency_min_ms <= n.latency_median_ms
                && n.latency_median_ms <= n.latency_max_ms,
            "network.latency_*",
            "need 0 < latency_min_ms <= latency_median_ms <= latency_max_ms",
        )?;
        check(
            n.latency_sigma >= 0.0,
            "network.latency_sigma",
            "must not be negative",
        )?;
        check(
            n.bandwidth_mbps > 0.0,
            "network.bandwidth_mbps",
            "must be positive",
        )?;
        check(
            (0.0..0.5).contains(&n.loss),
            "network.loss",
            "must be in [0, 0.5)",
        )?;
        let f = &self.fork;
        check(
            f.depth == 0
                || (f.at_s > 0.0 && f.late_s >= 0.0 && (0.0..=1.0).contains(&f.late_fraction)),
            "fork",
            "with depth > 0, at_s must be positive, late_s not negative, late_fraction in [0, 1]",
        )?;
        check(
            n.dial_timeout_s > 0.0,
            "network.dial_timeout_s",
            "must be positive",
        )?;
        check(
            n.idle_timeout_s > 0.0,
            "network.idle_timeout_s",
            "must be positive",
        )?;
        let p = &self.publish;
        check(
            p.files_per_block == 0 || p.block_interval_s > 0.0,
            "publish.block_interval_s",
            "must be positive when files_per_block > 0",
        )?;
        check(
            p.follower_lag_s >= 0.0,
            "publish.follower_lag_s",
            "must not be negative",
        )?;
        check(
            (0.0..=100.0).contains(&self.churn.rate_per_hour),
            "churn.rate_per_hour",
            "a fraction of the population per hour, 0..=100",
        )?;
        check(
            self.partition.groups == 0
                || (self.partition.groups >= 2 && self.partition.heal_s > self.partition.at_s),
            "partition",
            "groups must be 0 (off) or >= 2, with heal_s after at_s",
        )?;
        check(
            (0.0..=1.0).contains(&self.data_loss.fraction),
            "data_loss.fraction",
            "must be in [0, 1]",
        )?;
        check(
            (0.0..1.0).contains(&self.adversary.withholding),
            "adversary.withholding",
            "must be in [0, 1)",
        )?;
        check(
            self.adversary.sybil_nodes + self.seeds < self.nodes,
            "adversary.sybil_nodes",
            "must leave honest non-seed nodes",
        )?;
        check(
            self.adversary.sybil_nodes == 0 || self.adversary.sybil_identities > 0,
            "adversary.sybil_identities",
            "Sybil nodes need a pool of fake identities",
        )?;
        self.core_config().map(|_| ())
    }
}
