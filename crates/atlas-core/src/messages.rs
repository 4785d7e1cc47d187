//! The protocol's messages as the core sees them. `atlas_wire` maps them to
//! the protobuf schema (`crates/atlas-wire/proto/atlas.proto`); the simulator
//! passes them as they are.

use bytes::Bytes;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

use super::inventory::RangeSet;
use crate::zonefile::Hash160;

/// What a node believes the whitelist is: its length and a digest of its
/// entries. Peers whose views differ exchange only the indices both know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChainView {
    pub length: u64,
    pub tip: [u8; 20],
}

/// The sender's whitelist as a delta names it. Deltas are the most frequent
/// message, and between neighbours that agree the full view is most of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaView {
    Full(ChainView),
    /// "Ours is yours, or a prefix of it": the length and the first bytes
    /// of the tip, sent to a neighbour whose last view was the sender's.
    Matching {
        length: u64,
        tip_prefix: [u8; 4],
    },
}

impl DeltaView {
    /// As short as the receiver allows: `theirs` is its last known view.
    pub fn to(ours: ChainView, theirs: Option<(u64, [u8; 20])>) -> Self {
        if theirs == Some((ours.length, ours.tip)) {
            let mut tip_prefix = [0; 4];
            tip_prefix.copy_from_slice(&ours.tip[..4]);
            DeltaView::Matching {
                length: ours.length,
                tip_prefix,
            }
        } else {
            DeltaView::Full(ours)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    pub peer: PeerId,
    pub addrs: Vec<Multiaddr>,
}

/// Which libp2p protocol carries a request; also a metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Peers,
    Inventory,
    Zonefiles,
    Push,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [
        Protocol::Peers,
        Protocol::Inventory,
        Protocol::Zonefiles,
        Protocol::Push,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Protocol::Peers => "peers",
            Protocol::Inventory => "inv",
            Protocol::Zonefiles => "zonefiles",
            Protocol::Push => "push",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// One step of the neighbour walk; also tells the callee how to reach us.
    PeerExchange {
        view: ChainView,
        listen_addrs: Vec<Multiaddr>,
    },
    /// "Send me your whole inventory." Asking it also makes the caller the
    /// callee's neighbour.
    Inventory {
        view: ChainView,
        /// Sent by a node whose whitelist just rolled back, so its neighbours
        /// learn where its list now parts from theirs (as in `Response::Inventory`);
        /// empty otherwise.
        ancestry: Vec<[u8; 20]>,
    },
    /// Indices the sender gained since it last said.
    InventoryDelta { view: DeltaView, added: RangeSet },
    GetZonefiles {
        hashes: Vec<Hash160>,
        /// The caller learned of these files from our announcement after the
        /// push tree failed to bring them: from now on push to it eagerly.
        graft: bool,
    },
    /// Newly received zone files, sent unasked to neighbours that lack them.
    Push {
        view: ChainView,
        zonefiles: Vec<Bytes>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A random sample of the callee's neighbours and how many it has: the
    /// walk needs the degree and one or two uniform picks, not the whole list.
    Peers {
        view: ChainView,
        peers: Vec<PeerRecord>,
        degree: u32,
    },
    Inventory {
        view: ChainView,
        inventory: RangeSet,
        /// Digests of the callee's list at lengths `len - 1 ..= len - 16`,
        /// then `len - 32, len - 64, ...`, when the caller's view differs from
        /// the callee's (empty otherwise): they tell the caller how far the
        /// two lists agree.
        ancestry: Vec<[u8; 20]>,
    },
    Ack,
    /// `missing` lists requested hashes the server does not hold; requested
    /// hashes in neither list were left out to keep the reply small.
    Zonefiles {
        zonefiles: Vec<Bytes>,
        missing: Vec<Hash160>,
    },
    /// `prune`: every file was one the callee already had, so this link
    /// is redundant in the push tree; both sides announce on it instead.
    PushAck {
        accepted: u32,
        prune: bool,
    },
    /// "Not from me": the callee has no room for another neighbour, or the
    /// caller is not one of its neighbours. Only neighbours fetch, so a seed
    /// that thousands of new nodes know serves its own neighbours and points
    /// the rest elsewhere (through peer exchange) instead of timing them all out.
    Busy,
}

impl Request {
    pub fn protocol(&self) -> Protocol {
        match self {
            Request::PeerExchange { .. } => Protocol::Peers,
            Request::Inventory { .. } | Request::InventoryDelta { .. } => Protocol::Inventory,
            Request::GetZonefiles { .. } => Protocol::Zonefiles,
            Request::Push { .. } => Protocol::Push,
        }
    }
}
