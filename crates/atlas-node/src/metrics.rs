//! Prometheus metrics of one node, on the same registry as libp2p's own.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use atlas_core::{Failure, Penalty, Stats};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WireLabels {
    pub direction: &'static str,
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OriginLabel {
    pub origin: &'static str,
}

pub struct Metrics {
    pub peers_known: Gauge,
    pub neighbors: Gauge,
    pub neighbors_diverged: Gauge,
    pub connected: Gauge,
    pub announced: Gauge,
    pub present: Gauge,
    pub missing: Gauge,
    pub pending: Gauge,
    pub wire_bytes: Family<WireLabels, Counter>,
    pub wire_messages: Family<WireLabels, Counter>,
    pub fetch_latency: Histogram,
    pub push_fanout: Histogram,
    pub store_commit: Histogram,
    /// The core's counters, in `Stats::counted` order.
    core: Vec<Counter>,
    pub penalties: Family<ReasonLabel, Counter>,
    pub request_failures: Family<ReasonLabel, Counter>,
    pub stored: Family<OriginLabel, Counter>,
    pub bans: Family<ReasonLabel, Counter>,
    pub chain_height: Gauge,
    pub chain_confirmed_height: Gauge,
    pub chain_halted: Gauge,
    pub chain_available: Gauge,
    pub chain_last_success: Gauge,
    pub chain_failovers: Counter,
    pub chain_servers_dropped: Counter,
    last_chain_failovers: AtomicU64,
    last_chain_dropped: AtomicU64,
    pub store_healthy: Gauge,
    pub store_errors: Counter,
    pub store_corrupt: Counter,
    last_store_errors: AtomicU64,
    last_store_corrupt: AtomicU64,
    last_stats: std::sync::Mutex<Stats>,
}

impl Metrics {
    /// Registers every metric under the `atlas_` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            peers_known: Gauge::default(),
            neighbors: Gauge::default(),
            neighbors_diverged: Gauge::default(),
            connected: Gauge::default(),
            announced: Gauge::default(),
            present: Gauge::default(),
            missing: Gauge::default(),
            pending: Gauge::default(),
            wire_bytes: Family::default(),
            wire_messages: Family::default(),
            fetch_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 18)),
            push_fanout: Histogram::new([0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
            store_commit: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            core: Stats::default()
                .counted()
                .iter()
                .map(|_| Counter::default())
                .collect(),
            penalties: Family::default(),
            request_failures: Family::default(),
            stored: Family::default(),
            bans: Family::default(),
            chain_height: Gauge::default(),
            chain_confirmed_height: Gauge::default(),
            chain_halted: Gauge::default(),
            chain_available: Gauge::default(),
            chain_last_success: Gauge::default(),
            chain_failovers: Counter::default(),
            chain_servers_dropped: Counter::default(),
            last_chain_failovers: AtomicU64::new(0),
            last_chain_dropped: AtomicU64::new(0),
            store_healthy: Gauge::default(),
            store_errors: Counter::default(),
            store_corrupt: Counter::default(),
            last_store_errors: AtomicU64::new(0),
            last_store_corrupt: AtomicU64::new(0),
            last_stats: Default::default(),
        };
        let r = registry.sub_registry_with_prefix("atlas");
        for (c, counter) in Stats::default().counted().iter().zip(&m.core) {
            r.register(c.metric, c.help, counter.clone());
        }
        r.register(
            "peers_known",
            "Peers in the peer table",
            m.peers_known.clone(),
        );
        r.register(
            "neighbors",
            "Current overlay neighbours",
            m.neighbors.clone(),
        );
        r.register(
            "neighbors_diverged",
            "Neighbours whose whitelist parts from ours (another chain, or a follower on a reorg): used only below the fork",
            m.neighbors_diverged.clone(),
        );
        r.register(
            "connected_peers",
            "Peers with an open connection",
            m.connected.clone(),
        );
        r.register(
            "announced",
            "Whitelist length (announced zone-file hashes)",
            m.announced.clone(),
        );
        r.register(
            "present",
            "Whitelist entries whose zone file this node holds",
            m.present.clone(),
        );
        r.register(
            "missing",
            "Distinct announced zone files this node lacks",
            m.missing.clone(),
        );
        r.register(
            "pending",
            "Uploads waiting in the inbox for their announcement",
            m.pending.clone(),
        );
        r.register(
            "chain_confirmed_height",
            "Height of the last confirmed block the chain follower read",
            m.chain_confirmed_height.clone(),
        );
        r.register(
            "chain_halted",
            "1 when the chain holds an operation at which the original BNS indexer stops for good (the whitelist ends at the block before)",
            m.chain_halted.clone(),
        );
        r.register_with_unit(
            "wire",
            "Bytes of protocol frames",
            Unit::Bytes,
            m.wire_bytes.clone(),
        );
        r.register("wire_messages", "Protocol frames", m.wire_messages.clone());
        r.register_with_unit(
            "fetch_latency",
            "Time from a zone-file request to its response",
            Unit::Seconds,
            m.fetch_latency.clone(),
        );
        r.register(
            "push_fanout",
            "Neighbours a newly stored zone file was pushed to",
            m.push_fanout.clone(),
        );
        r.register_with_unit(
            "store_commit",
            "Duration of one store commit",
            Unit::Seconds,
            m.store_commit.clone(),
        );
        r.register(
            "penalties",
            "Penalties given to peers, by reason",
            m.penalties.clone(),
        );
        r.register(
            "request_failures",
            "Requests to peers that got no answer, by reason (none of them a penalty but malformed)",
            m.request_failures.clone(),
        );
        r.register(
            "store_healthy",
            "1 while the store's writes go through, 0 from a failed operation until a write succeeds",
            m.store_healthy.clone(),
        );
        r.register(
            "store_errors",
            "Store operations that failed (disk full, I/O errors, corruption)",
            m.store_errors.clone(),
        );
        r.register(
            "store_corrupt_zonefiles",
            "Zone files found corrupt on disk (dropped and fetched again)",
            m.store_corrupt.clone(),
        );
        r.register(
            "zonefiles_stored",
            "Zone files stored, by origin",
            m.stored.clone(),
        );
        r.register(
            "bans",
            "Peers banned (score exhausted), by the penalty that did it",
            m.bans.clone(),
        );
        r.register(
            "chain_height",
            "Height of the chain tip the follower last verified",
            m.chain_height.clone(),
        );
        r.register(
            "chain_available",
            "1 while the chain servers answer, 0 while none does",
            m.chain_available.clone(),
        );
        r.register_with_unit(
            "chain_last_success_timestamp",
            "When a round against the chain servers last succeeded (Unix time)",
            Unit::Seconds,
            m.chain_last_success.clone(),
        );
        r.register(
            "chain_failovers",
            "Times the follower moved to another chain server",
            m.chain_failovers.clone(),
        );
        r.register(
            "chain_servers_dropped",
            "Chain servers dropped for serving data that did not verify",
            m.chain_servers_dropped.clone(),
        );
        // Every reason has a series from the start, at 0: a panel or an
        // alert on a labelled counter then has data before the first event.
        for reason in Penalty::ALL {
            let label = ReasonLabel {
                reason: reason.label(),
            };
            let _ = m.penalties.get_or_create(&label);
            let _ = m.bans.get_or_create(&label);
        }
        for reason in Failure::ALL {
            let _ = m.request_failures.get_or_create(&ReasonLabel {
                reason: reason.label(),
            });
        }
        m
    }

    pub fn set_chain(&self, status: &crate::whitelist::ChainStatus) {
        self.chain_height.set(status.height as i64);
        self.chain_confirmed_height
            .set(status.confirmed_height as i64);
        self.chain_halted.set(i64::from(status.halted.is_some()));
        self.chain_available.set(i64::from(
            status.state == crate::whitelist::ChainState::Following,
        ));
        self.chain_last_success.set(status.last_success_unix as i64);
        advance(
            &self.chain_failovers,
            &self.last_chain_failovers,
            status.failovers,
        );
        advance(
            &self.chain_servers_dropped,
            &self.last_chain_dropped,
            status.servers_dropped,
        );
    }

    pub fn count_frame(&self, direction: &'static str, protocol: &'static str, bytes: usize) {
        let labels = WireLabels {
            direction,
            protocol,
        };
        self.wire_bytes.get_or_create(&labels).inc_by(bytes as u64);
        self.wire_messages.get_or_create(&labels).inc();
    }

    pub fn set_store(&self, health: &crate::store::StoreHealth) {
        self.store_healthy
            .set(i64::from(health.state == crate::store::StoreState::Ok));
        advance(&self.store_errors, &self.last_store_errors, health.errors);
        advance(
            &self.store_corrupt,
            &self.last_store_corrupt,
            health.corrupt_files,
        );
    }

    /// Moves the core's cumulative counters into the Prometheus counters.
    pub fn absorb(&self, stats: &Stats) {
        let mut last = self.last_stats.lock().expect("metrics lock");
        let bump = |c: &Counter<u64, AtomicU64>, new: u64, old: u64| {
            c.inc_by(new.saturating_sub(old));
        };
        for ((counter, new), old) in self.core.iter().zip(stats.counted()).zip(last.counted()) {
            bump(counter, new.value, old.value);
        }
        for reason in Failure::ALL {
            let c = self.request_failures.get_or_create(&ReasonLabel {
                reason: reason.label(),
            });
            bump(&c, stats.failures(reason), last.failures(reason));
        }
        *last = stats.clone();
    }
}

/// Moves a Prometheus counter up to `total`, a running count kept elsewhere
/// (the store's, the chain follower's); `last` is the total it last saw.
fn advance(counter: &Counter, last: &AtomicU64, total: u64) {
    let before = last.swap(total, std::sync::atomic::Ordering::Relaxed);
    counter.inc_by(total.saturating_sub(before));
}
