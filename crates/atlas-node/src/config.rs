//! The node's configuration: one typed TOML document where every field has a
//! default. `Config::load` rejects unknown keys and bad values with a message
//! that names the field and says what to fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libp2p::multiaddr::Protocol as AddrPart;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::net::NodeConfig;
use atlas_core::CoreConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid TOML for atlas: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config field `{field}`: {message}")]
    Invalid { field: String, message: String },
}

/// `api.listen` as an address to bind: an IP with a port, or a host name
/// (`localhost:7600`) that resolves to one.
fn api_listen_addr(text: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let bad = |why: String| invalid("api.listen", why);
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad(format!(
            "`{text}` has no port; write host:port, e.g. 127.0.0.1:7600"
        )));
    };
    if port.parse::<u16>().is_err() {
        return Err(bad(format!(
            "`{port}` in `{text}` is not a port number (0-65535)"
        )));
    }
    let mut addrs = text.to_socket_addrs().map_err(|e| {
        bad(format!(
            "`{host}` does not resolve ({e}); use an IP address"
        ))
    })?;
    addrs.next().ok_or_else(|| {
        bad(format!(
            "`{host}` resolves to no address; use an IP address"
        ))
    })
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A well-known entry point: accepts many inbound neighbours.
    Seed,
    /// An ordinary replica.
    #[default]
    Mirror,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub role: Role,
    pub api: ApiConfig,
    pub p2p: P2pConfig,
    pub atlas: CoreConfig,
    pub store: StoreConfig,
    pub whitelist: WhitelistConfig,
    pub chain: ChainConfig,
}

/// Following Bitcoin through Electrum servers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// `tcp://host:port` or `ssl://host:port`; empty = no chain follower.
    pub electrum: Vec<String>,
    /// mainnet, testnet, signet or regtest.
    pub network: String,
    pub confirmations: u64,
    /// First block to read; default: 373601 on mainnet (the first BNS block), 1 elsewhere.
    pub start_height: Option<u64>,
    /// Namespace addresses to watch besides the burn address.
    pub namespaces: Vec<String>,
    pub poll_secs: u64,
    /// Test networks only: the heights at which BNS epochs 1-5 end, as the
    /// original indexer's test mode takes them (`EPOCH_ENDS`); default:
    /// mainnet's heights, so a short chain is all epoch 1.
    pub epoch_ends: Option<Vec<u64>>,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            electrum: Vec::new(),
            network: "mainnet".into(),
            confirmations: 10,
            start_height: None,
            namespaces: Vec::new(),
            poll_secs: 30,
            epoch_ends: None,
        }
    }
}

/// The checked chain settings.
#[derive(Clone, Debug)]
pub struct ValidatedChain {
    pub electrum: Vec<String>,
    pub network: bitcoin::Network,
    pub confirmations: u64,
    pub start_height: u64,
    pub watch: Vec<bitcoin::ScriptBuf>,
    pub poll: std::time::Duration,
    /// The BNS rules: mainnet's, or the original's test mode elsewhere.
    pub rules: bns_rules::params::RuleSet,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: String,
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// A connection must send a request's headers within this (idle ones too).
    pub header_timeout_secs: u64,
    /// A request, body included, must complete within this (else 408).
    pub request_timeout_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    pub listen: Vec<String>,
    /// Seeds as full multiaddrs ending in `/p2p/<peer id>`.
    pub seeds: Vec<String>,
    /// Outbound neighbours to keep (K); overrides `atlas.neighbors`.
    pub neighbors: usize,
    /// Addresses to advertise instead of the listen addresses (behind NAT).
    pub external: Vec<String>,
    pub max_connections: u32,
    /// Requests one connection may have open at once per protocol; more are
    /// dropped (the sender sees a refusal and slows down, never bans).
    pub max_inbound_streams: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Uploads kept while waiting for their hash to be announced.
    pub pending_capacity: usize,
    /// Bytes those uploads may take in all.
    pub pending_bytes: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WhitelistConfig {
    /// A file of announced hashes, one per line, in chain order.
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./atlas-data"),
            role: Role::Mirror,
            api: ApiConfig::default(),
            p2p: P2pConfig::default(),
            atlas: CoreConfig::default(),
            store: StoreConfig::default(),
            whitelist: WhitelistConfig::default(),
            chain: ChainConfig::default(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:7600".into(),
            max_connections: 1024,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: vec![
                "/ip4/0.0.0.0/tcp/6264".into(),
                "/ip4/0.0.0.0/udp/6264/quic-v1".into(),
            ],
            seeds: Vec::new(),
            neighbors: 8,
            external: Vec::new(),
            max_connections: 256,
            max_inbound_streams: 256,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            pending_capacity: 10_000,
            pending_bytes: 64 << 20,
        }
    }
}

/// The checked, parsed form the node runs on.
#[derive(Clone, Debug)]
pub struct Validated {
    pub api_listen: SocketAddr,
    pub api_limits: crate::api::ApiLimits,
    pub whitelist_file: Option<PathBuf>,
    pub chain: Option<ValidatedChain>,
    pub node: NodeConfig,
}

fn parse_multiaddr(field: String, s: &str) -> Result<Multiaddr, ConfigError> {
    s.parse().map_err(|e| {
        invalid(
            field,
            format!("`{s}` is not a multiaddr ({e}); e.g. /ip4/0.0.0.0/tcp/6264"),
        )
    })
}

/// Splits `/ip4/.../tcp/.../p2p/<id>` into the peer id and the address; a
/// seed without `/p2p/` comes back with no id.
pub fn parse_seed(s: &str) -> Result<(Option<PeerId>, Multiaddr), String> {
    let mut addr: Multiaddr = s.parse().map_err(|e| {
        format!("`{s}` is not a multiaddr ({e}), e.g. /dns4/seed.example/tcp/6264/p2p/12D3KooW...")
    })?;
    match addr.iter().last() {
        Some(AddrPart::P2p(peer)) => {
            addr.pop();
            Ok((Some(peer), addr))
        }
        _ if addr
            .iter()
            .any(|p| matches!(p, AddrPart::Tcp(_) | AddrPart::QuicV1)) =>
        {
            Ok((None, addr))
        }
        _ => Err(format!("`{s}` names no TCP or QUIC port")),
    }
}

impl Config {
    fn validate_chain(&self) -> Result<Option<ValidatedChain>, ConfigError> {
        let c = &self.chain;
        if c.electrum.is_empty() {
            return Ok(None);
        }
        for (i, url) in c.electrum.iter().enumerate() {
            let ok = ["tcp://", "ssl://"].iter().any(|p| {
                url.strip_prefix(p).is_some_and(|rest| {
                    rest.rsplit_once(':')
                        .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok())
                })
            });
            if !ok {
                return Err(invalid(
                    format!("chain.electrum[{i}]"),
                    format!("`{url}` must be tcp://host:port or ssl://host:port"),
                ));
            }
        }
        let network = match c.network.as_str() {
            "mainnet" | "bitcoin" => bitcoin::Network::Bitcoin,
            "testnet" => bitcoin::Network::Testnet,
            "signet" => bitcoin::Network::Signet,
            "regtest" => bitcoin::Network::Regtest,
            other => {
                return Err(invalid(
                    "chain.network",
                    format!("`{other}` is not mainnet, testnet, signet or regtest"),
                ));
            }
        };
        if !(1..=1000).contains(&c.confirmations) {
            return Err(invalid(
                "chain.confirmations",
                "must be between 1 and 1000 (10 is typical)",
            ));
        }
        let default_start = if network == bitcoin::Network::Bitcoin {
            373_601
        } else {
            1
        };
        let start_height = c.start_height.unwrap_or(default_start);
        if start_height == 0 {
            return Err(invalid("chain.start_height", "must be at least 1"));
        }
        let mainnet = network == bitcoin::Network::Bitcoin;
        if mainnet && start_height != default_start {
            return Err(invalid(
                "chain.start_height",
                "on mainnet the BNS rules start at block 373601 (every decision depends on \
                 the state before it): leave it unset",
            ));
        }
        let rules = match (&c.epoch_ends, mainnet) {
            (None, true) => bns_rules::params::RuleSet::mainnet(),
            (None, false) => bns_rules::params::RuleSet::test(None),
            (Some(_), true) => {
                return Err(invalid(
                    "chain.epoch_ends",
                    "mainnet's epochs are fixed: remove it, or use a test network",
                ));
            }
            (Some(ends), false) => {
                let ends: [u64; 5] = ends.as_slice().try_into().map_err(|_| {
                    invalid(
                        "chain.epoch_ends",
                        "must list 5 heights (where epochs 1-5 end)",
                    )
                })?;
                if ends[0] == 0 || ends.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(invalid(
                        "chain.epoch_ends",
                        "heights must be at least 1 and strictly increasing",
                    ));
                }
                bns_rules::params::RuleSet::test(Some(ends))
            }
        };
        let watch = c
            .namespaces
            .iter()
            .enumerate()
            .map(|(i, a)| {
                a.parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
                    .ok()
                    .and_then(|a| a.require_network(network).ok())
                    .map(|a| a.script_pubkey())
                    .ok_or_else(|| {
                        invalid(
                            format!("chain.namespaces[{i}]"),
                            format!("`{a}` is not a {network} address"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        if c.poll_secs == 0 {
            return Err(invalid("chain.poll_secs", "must be at least 1"));
        }
        Ok(Some(ValidatedChain {
            electrum: c.electrum.clone(),
            network,
            confirmations: c.confirmations,
            start_height,
            watch,
            poll: std::time::Duration::from_secs(c.poll_secs),
            rules,
        }))
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Applies a role preset: seeds accept many more inbound neighbours.
    pub fn apply_role(&mut self, role: Role) {
        self.role = role;
        if role == Role::Seed {
            self.atlas.max_inbound = self.atlas.max_inbound.max(128);
            self.p2p.max_connections = self.p2p.max_connections.max(1024);
            self.atlas.peer_table_capacity = self.atlas.peer_table_capacity.max(8192);
        }
    }

    pub fn validate(&self) -> Result<Validated, ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let api_listen = api_listen_addr(&self.api.listen)?;
        if self.api.max_connections == 0 {
            return Err(invalid("api.max_connections", "must be at least 1"));
        }
        if self.api.header_timeout_secs == 0 || self.api.request_timeout_secs == 0 {
            return Err(invalid(
                "api.header_timeout_secs",
                "api.header_timeout_secs and api.request_timeout_secs must be at least 1",
            ));
        }
        let api_limits = crate::api::ApiLimits {
            max_connections: self.api.max_connections,
            header_timeout: std::time::Duration::from_secs(self.api.header_timeout_secs),
            request_timeout: std::time::Duration::from_secs(self.api.request_timeout_secs),
        };
        if self.p2p.listen.is_empty() {
            return Err(invalid("p2p.listen", "needs at least one address"));
        }
        let listen = self
            .p2p
            .listen
            .iter()
            .enumerate()
            .map(|(i, s)| parse_multiaddr(format!("p2p.listen[{i}]"), s))
            .collect::<Result<_, _>>()?;
        let external = self
            .p2p
            .external
            .iter()
            .enumerate()
            .map(|(i, s)| parse_multiaddr(format!("p2p.external[{i}]"), s))
            .collect::<Result<_, _>>()?;
        let mut seeds = Vec::new();
        let mut bare_seeds = Vec::new();
        for (i, text) in self.p2p.seeds.iter().enumerate() {
            match parse_seed(text).map_err(|m| invalid(format!("p2p.seeds[{i}]"), m))? {
                (Some(peer), addr) => seeds.push((peer, addr)),
                (None, addr) => bare_seeds.push(addr),
            }
        }
        let mut core = self.atlas.clone();
        core.neighbors = self.p2p.neighbors;
        if !(1..=64).contains(&core.neighbors) {
            return Err(invalid(
                "p2p.neighbors",
                "must be between 1 and 64 (8 is typical)",
            ));
        }
        core.validate().map_err(|m| invalid("atlas", m))?;
        if self.p2p.max_connections < (core.neighbors + core.max_inbound) as u32 {
            return Err(invalid(
                "p2p.max_connections",
                "must be at least p2p.neighbors + atlas.max_inbound",
            ));
        }
        if self.p2p.max_inbound_streams == 0 {
            return Err(invalid("p2p.max_inbound_streams", "must be at least 1"));
        }
        if self.store.pending_capacity == 0 {
            return Err(invalid("store.pending_capacity", "must be at least 1"));
        }
        if self.store.pending_bytes < atlas_core::zonefile::MAX_ZONEFILE_BYTES as u64 {
            return Err(invalid(
                "store.pending_bytes",
                "must hold at least one zone file (40960 bytes)",
            ));
        }
        let chain = self.validate_chain()?;
        if chain.is_some() && self.whitelist.file.is_some() {
            return Err(invalid(
                "whitelist.file",
                "choose one whitelist source: [chain] electrum or [whitelist] file",
            ));
        }
        Ok(Validated {
            api_listen,
            api_limits,
            whitelist_file: self.whitelist.file.clone(),
            chain,
            node: NodeConfig {
                data_dir: self.data_dir.clone(),
                listen,
                external,
                seeds,
                bare_seeds,
                core,
                max_connections: self.p2p.max_connections,
                max_inbound_streams: self.p2p.max_inbound_streams,
                pending_capacity: self.store.pending_capacity,
                pending_bytes: self.store.pending_bytes,
                rng_seed: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Validated, String> {
        let c: Config = toml::from_str(s).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn empty_config_is_valid() {
        let v = parse("").unwrap();
        assert_eq!(v.node.core.neighbors, 8);
        assert_eq!(v.api_listen.port(), 7600);
    }

    #[test]
    fn example_config_is_valid() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/atlas.example.toml"
        ))
        .unwrap();
        parse(&text).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("[p2p]\nneighbors = 0\n").unwrap_err();
        assert!(e.contains("p2p.neighbors"), "{e}");
        let e = parse("[p2p]\nseeds = [\"/ip4/1.2.3.4\"]\n").unwrap_err();
        assert!(e.contains("p2p.seeds[0]") && e.contains("port"), "{e}");
        let v = parse("[p2p]\nseeds = [\"/dns4/seed.example/tcp/6264\"]\n").unwrap();
        assert_eq!(
            v.node.bare_seeds.len(),
            1,
            "a seed without /p2p/ is dialed by address"
        );
        let e = parse("[api]\nlisten = \"nope\"\n").unwrap_err();
        assert!(e.contains("api.listen") && e.contains("no port"), "{e}");
        let e = parse("[api]\nlisten = \"localhost:http\"\n").unwrap_err();
        assert!(e.contains("not a port number"), "{e}");
        let v = parse("[api]\nlisten = \"localhost:17977\"\n").unwrap();
        assert!(v.api_listen.ip().is_loopback() && v.api_listen.port() == 17977);
        let e = parse("[p2p]\nlisten = [\"tcp/1\"]\n").unwrap_err();
        assert!(e.contains("p2p.listen[0]"), "{e}");
        let e = parse("[p2p]\nneighbours = 3\n").unwrap_err();
        assert!(e.contains("neighbours"), "unknown keys are refused: {e}");
        let e = parse("[chain]\nelectrum = [\"electrum.example:50001\"]\n").unwrap_err();
        assert!(e.contains("chain.electrum[0]"), "{e}");
        let e = parse("[chain]\nelectrum = [\"tcp://e.example:50001\"]\nnetwork = \"moon\"\n")
            .unwrap_err();
        assert!(e.contains("chain.network"), "{e}");
        let v =
            parse("[chain]\nelectrum = [\"ssl://e.example:50002\", \"tcp://f.example:50001\"]\n")
                .unwrap();
        let c = v.chain.unwrap();
        assert_eq!(
            (c.start_height, c.confirmations),
            (373_601, 10),
            "mainnet defaults"
        );
        let e = parse("[chain]\nelectrum = [\"tcp://e.example:50001\"]\nstart_height = 400000\n")
            .unwrap_err();
        assert!(
            e.contains("chain.start_height") && e.contains("373601"),
            "{e}"
        );
        let e = parse(
            "[chain]\nelectrum = [\"tcp://e.example:50001\"]\nepoch_ends = [1, 2, 3, 4, 5]\n",
        )
        .unwrap_err();
        assert!(e.contains("chain.epoch_ends"), "{e}");
        let regtest = "[chain]\nelectrum = [\"tcp://e.example:50001\"]\nnetwork = \"regtest\"\n";
        let e = parse(&format!("{regtest}epoch_ends = [1, 2, 2, 4, 5]\n")).unwrap_err();
        assert!(e.contains("strictly increasing"), "{e}");
        let c = parse(&format!("{regtest}epoch_ends = [1, 2, 3, 4, 5]\n"))
            .unwrap()
            .chain
            .unwrap();
        assert_eq!(c.rules.epoch(6), 6, "epoch 6 from block 6");
        let e = parse("[atlas]\nbatch_max_hashes = 0\n").unwrap_err();
        assert!(e.contains("batch_max_hashes"), "{e}");
    }
}
