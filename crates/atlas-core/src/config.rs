//! The protocol's tunables: one struct with defaults, the original Atlas
//! preset for comparisons, and validation that names what to fix.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Tunables of the protocol. Every field has a default; `validate` says what is wrong.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CoreConfig {
    /// Outbound neighbours to keep (K).
    pub neighbors: usize,
    /// Inbound neighbours accepted on top of K.
    pub max_inbound: usize,
    /// Most hashes in one fetch request.
    pub batch_max_hashes: usize,
    /// Fetch requests in flight to one neighbour at once.
    pub max_inflight_per_peer: usize,
    pub request_timeout_ms: u64,
    /// Walk step period while short of neighbours, and once the set is full.
    pub walk_fast_ms: u64,
    pub walk_slow_ms: u64,
    /// Full inventory re-download from each neighbour, as a safety net for deltas.
    pub inventory_resync_ms: u64,
    /// A neighbour that heard nothing from us this long gets an empty delta.
    pub heartbeat_ms: u64,
    /// How long new inventory is gathered before a delta goes out.
    pub delta_flush_ms: u64,
    /// Send inventory deltas (off = the original's poll-only behaviour).
    pub deltas: bool,
    /// Push newly received zone files to neighbours that lack them.
    pub push: bool,
    /// A file we were pushed is pushed on to at most this many neighbours
    /// that lack it (uploads go to all of them); the rest learn of it from
    /// our inventory delta and pull it. Ignored with `push_tree`. 0 with
    /// `relay`: a relayed announcement brings each node one copy, and a
    /// push forwarded on top of it is mostly a duplicate.
    pub push_fanout: usize,
    /// Announce a new file as soon as it is on its way to us (pushed, or
    /// asked of the neighbour that announced it first), and answer requests
    /// for it once it arrives: files then spread at the speed of their
    /// announcements, one copy per node. Ignored with `push_tree`.
    pub relay: bool,
    /// A fetch of a new file still unanswered after this long is also sent
    /// to another neighbour that announced it (0: never). Shorter cuts the
    /// tail a lost packet causes and costs duplicate copies.
    pub hedge_ms: u64,
    /// Experimental (off): push along a spanning tree of the overlay kept
    /// by pruning links that bring duplicates and grafting links whose
    /// announcements beat the tree (epidemic broadcast trees); other links
    /// carry announcements only.
    pub push_tree: bool,
    /// A file announced by a neighbour's delta is first awaited this long
    /// from the push tree; then it is pulled from the announcer, whose link
    /// joins the tree (a graft). Shorter repairs faster and costs copies.
    pub graft_delay_ms: u64,
    /// Neighbours named in one peer-exchange answer: a uniform sample of
    /// this many (with the degree) is all the walk needs.
    pub exchange_sample: usize,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub peer_table_capacity: usize,
    pub peer_table_per_group: usize,
    pub ban_secs: u64,
    /// Every so often one outbound neighbour is replaced by a fresh walk
    /// sample (the walk restarting from a random known peer), so the overlay
    /// stays a random graph: it heals after a partition and cannot be
    /// frozen by whoever we met first. 0 turns it off.
    pub neighbor_rotation_ms: u64,
    /// Serve inventories and zone files to neighbours only, and answer Busy
    /// when there is no room for a new one, so that thousands of nodes that
    /// know the same seed do not all fetch from it at once. Off = the
    /// original's open service: anyone may fetch from anyone.
    pub neighbors_only: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            neighbors: 8,
            max_inbound: 24,
            batch_max_hashes: 100,
            max_inflight_per_peer: 4,
            request_timeout_ms: 30_000,
            walk_fast_ms: 200,
            walk_slow_ms: 30_000,
            inventory_resync_ms: 600_000,
            heartbeat_ms: 120_000,
            delta_flush_ms: 50,
            deltas: true,
            push: true,
            push_fanout: 0,
            relay: true,
            hedge_ms: 120,
            push_tree: false,
            graft_delay_ms: 250,
            exchange_sample: 4,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 120_000,
            peer_table_capacity: 4096,
            peer_table_per_group: 256,
            ban_secs: 3_600,
            neighbor_rotation_ms: 600_000,
            neighbors_only: true,
        }
    }
}

impl CoreConfig {
    /// The original Python Atlas's timing: full inventories every 600 s, a walk
    /// step every 300 s, no deltas, no push. For side-by-side comparisons.
    pub fn original_atlas() -> Self {
        CoreConfig {
            walk_fast_ms: 300_000,
            walk_slow_ms: 300_000,
            inventory_resync_ms: 600_000,
            deltas: false,
            push: false,
            relay: false,
            neighbors_only: false,
            // The original answered a peer exchange with its whole list.
            exchange_sample: 128,
            ..CoreConfig::default()
        }
    }

    /// Checks the values; the error names the field and what to do.
    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, msg: &str| if ok { Ok(()) } else { Err(msg.to_string()) };
        check(
            (1..=64).contains(&self.neighbors),
            "neighbors must be between 1 and 64",
        )?;
        check(
            (1..=100).contains(&self.batch_max_hashes),
            "batch_max_hashes must be between 1 and 100",
        )?;
        check(
            self.max_inflight_per_peer >= 1,
            "max_inflight_per_peer must be at least 1",
        )?;
        check(
            self.request_timeout_ms >= 100,
            "request_timeout_ms must be at least 100",
        )?;
        check(
            self.walk_fast_ms >= 10 && self.walk_slow_ms >= self.walk_fast_ms,
            "walk_fast_ms must be >= 10 and walk_slow_ms >= walk_fast_ms",
        )?;
        check(
            self.backoff_base_ms >= 1 && self.backoff_cap_ms >= self.backoff_base_ms,
            "backoff_base_ms must be >= 1 and backoff_cap_ms >= backoff_base_ms",
        )?;
        check(
            self.peer_table_capacity >= self.neighbors + self.max_inbound,
            "peer_table_capacity must hold at least neighbors + max_inbound peers",
        )?;
        check(
            self.peer_table_per_group >= 1,
            "peer_table_per_group must be at least 1",
        )?;
        check(
            self.inventory_resync_ms >= 1_000 && self.heartbeat_ms >= 1_000,
            "inventory_resync_ms and heartbeat_ms must be at least 1000",
        )?;
        check(
            (2..=128).contains(&self.exchange_sample),
            "exchange_sample must be between 2 and 128",
        )?;
        check(
            self.neighbor_rotation_ms == 0 || self.neighbor_rotation_ms >= 1_000,
            "neighbor_rotation_ms must be 0 (off) or at least 1000",
        )?;
        Ok(())
    }

    pub(super) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}
