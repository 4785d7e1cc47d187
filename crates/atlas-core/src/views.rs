//! Chain views: how far a neighbour's whitelist agrees with ours.
//!
//! An inventory is a set of whitelist positions, so it means what we think
//! only where the two whitelists agree. Every message carries the sender's
//! view (its whitelist's length and the digest of the list); an inventory
//! answer to a request whose view differs from ours also carries the
//! digests of a few of our list's prefixes (`ancestry`: the last 16 lengths,
//! then `len - 2^i`). From these we learn a length `common` below which the two
//! lists are known to be the same, and count a neighbour's holdings only
//! there; the rest waits in `held_back` until a later view confirms it.
//!
//! A view that is a prefix of ours is confirmed exactly (we can compute the
//! digest of any prefix of our list). A neighbour ahead of us cannot be
//! checked until we catch up; until then the last confirmed `common` stands.
//! A neighbour whose list is not a prefix of ours is `diverged`: what it
//! holds beyond `common` is ignored, what we hold beyond it is not sent to
//! it, and we ask it for its inventory again (its answer carries ancestry)
//! to learn where the lists part.
//!
//! Deltas between neighbours that agree carry only "the same as yours"
//! (`DeltaView::Matching`: the length and 4 bytes of the tip), checked
//! against our own list's prefix of that length.

use libp2p_identity::PeerId;

use super::inventory::RangeSet;
use super::messages::{ChainView, DeltaView, Request};
use super::time::Instant;
use super::{Core, Pending};

/// Prefix digests kept per neighbour: an ancestry's worth.
const MAX_POINTS: usize = 80;

/// How a neighbour's whitelist relates to ours, for `/v1/peers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Agreement {
    /// The same list.
    Same,
    /// A prefix of ours (its follower lags).
    Behind,
    /// Longer than ours and agreeing as far as we know.
    Ahead,
    /// Not a prefix of ours: the chains differ from `common` on.
    Diverged,
}

impl Agreement {
    pub fn label(self) -> &'static str {
        match self {
            Agreement::Same => "same",
            Agreement::Behind => "behind",
            Agreement::Ahead => "ahead",
            Agreement::Diverged => "diverged",
        }
    }
}

/// What we know of one neighbour's whitelist.
#[derive(Debug, Default)]
pub(super) struct PeerChain {
    /// Positions below this are the same in both lists.
    pub common: u64,
    pub diverged: bool,
    /// Prefixes of its list we know the digest of, longest first: its last
    /// view, then the ancestry of its last inventory answer.
    points: Vec<(u64, [u8; 20])>,
    /// Its inventory at positions `>= common`, not counted until confirmed.
    pub held_back: RangeSet,
}

impl PeerChain {
    pub fn view(&self) -> Option<(u64, [u8; 20])> {
        self.points.first().copied()
    }
}

/// Lengths whose digests an ancestry lists, for a list of `len` entries:
/// every one of the last 16 (a reorg replaces a block or two, so the fork is
/// usually found exactly), then `len - 32`, `len - 64`, ... to the start.
fn ancestry_lengths(len: u64) -> impl Iterator<Item = u64> {
    (1..=16u64)
        .chain((5..64).map(|i| 1u64 << i))
        .take_while(move |step| *step <= len)
        .map(move |step| len - step)
}

impl Core {
    /// Our view as a delta to `peer` names it: abbreviated when its last view was ours.
    pub(super) fn delta_view(&self, peer: &PeerId) -> DeltaView {
        let theirs = self.neighbors.get(peer).and_then(|n| n.chain.view());
        DeltaView::to(self.view(), theirs)
    }

    /// The sender's full view, if the delta names one we can tell: an
    /// abbreviated view must be a prefix of our list.
    pub(super) fn resolve_delta_view(&self, view: &DeltaView) -> Option<ChainView> {
        match *view {
            DeltaView::Full(v) => Some(v),
            DeltaView::Matching { length, tip_prefix } => {
                let tip = self.whitelist.digest_at(length)?;
                (tip[..4] == tip_prefix).then_some(ChainView { length, tip })
            }
        }
    }

    /// Digests of our list's prefixes at `len - 1, len - 2, len - 4, ...`.
    pub(super) fn ancestry(&self) -> Vec<[u8; 20]> {
        ancestry_lengths(self.whitelist.len())
            .filter_map(|l| self.whitelist.digest_at(l))
            .collect()
    }

    /// Whether an inventory answer to a request carrying `their` view should
    /// carry our ancestry: only when the views differ.
    pub(super) fn ancestry_for(&self, their: &ChainView) -> Vec<[u8; 20]> {
        if *their == self.view() {
            Vec::new()
        } else {
            self.ancestry()
        }
    }

    pub fn agreement(&self, peer: &PeerId) -> Option<Agreement> {
        let n = self.neighbors.get(peer)?;
        let (len, _) = n.chain.view()?;
        let ours = self.whitelist.len();
        Some(if n.chain.diverged {
            Agreement::Diverged
        } else if len > ours {
            Agreement::Ahead
        } else if len == ours && n.chain.common == ours {
            Agreement::Same
        } else {
            Agreement::Behind
        })
    }

    /// A neighbour told us its view (and, in an inventory answer, its ancestry).
    pub(super) fn observe_view(
        &mut self,
        now: Instant,
        peer: PeerId,
        view: &ChainView,
        ancestry: Option<&[[u8; 20]]>,
    ) {
        let Some(n) = self.neighbors.get_mut(&peer) else {
            return;
        };
        let same_view = n.chain.view() == Some((view.length, view.tip));
        if same_view && ancestry.is_none() {
            return;
        }
        let mut points = vec![(view.length, view.tip)];
        match ancestry {
            Some(a) => points.extend(ancestry_lengths(view.length).zip(a.iter().copied())),
            // A new view without ancestry: the older points still describe
            // its list unless it rolled back below them.
            None => points.extend(
                n.chain
                    .points
                    .iter()
                    .filter(|(l, _)| *l < view.length)
                    .copied(),
            ),
        }
        // Longest first; a neighbour that keeps growing adds a point per
        // view, and the oldest (shortest) are the least useful.
        points.truncate(MAX_POINTS);
        n.chain.points = points;
        self.recheck_view(now, peer);
    }

    /// Recomputes `common` for one neighbour from what we know of its list.
    fn recheck_view(&mut self, now: Instant, peer: PeerId) {
        let Some(n) = self.neighbors.get(&peer) else {
            return;
        };
        let ours = self.whitelist.len();
        let was_diverged = n.chain.diverged;
        let mut checked = false;
        let mut diverged = false;
        let mut common = 0;
        for (len, digest) in &n.chain.points {
            if *len > ours {
                continue;
            }
            checked = true;
            if self.whitelist.digest_at(*len) == Some(*digest) {
                common = *len;
                break;
            }
            diverged = true;
        }
        if !checked {
            // Ahead of us with nothing we can check: keep what was confirmed.
            common = n.chain.common.min(ours);
            diverged = was_diverged;
        }
        self.set_common(now, peer, common, diverged);
    }

    /// Our whitelist rolled back: our neighbours' picture of it is wrong past
    /// the fork, and a view alone (in a delta) cannot tell them where that
    /// is. An inventory request carrying our ancestry does, and refreshes
    /// what we know of theirs.
    pub(super) fn announce_rollback(&mut self, now: Instant) {
        let ancestry = self.ancestry();
        let mut peers: Vec<PeerId> = self.neighbors.keys().copied().collect();
        peers.sort();
        for peer in peers {
            self.ask_inventory(now, peer, ancestry.clone());
        }
    }

    /// Our whitelist changed: every neighbour's agreement is checked again.
    pub(super) fn recheck_views(&mut self, now: Instant) {
        let mut peers: Vec<PeerId> = self.neighbors.keys().copied().collect();
        peers.sort();
        for p in peers {
            self.recheck_view(now, p);
        }
    }

    /// Moves a neighbour's holdings between counted and held back as
    /// `common` moves, keeping the holder counts right; and tells it what of
    /// ours it may now hear of (the shared prefix grew, or the lists agree).
    ///
    /// When the lists start or stop disagreeing, one of them changed under
    /// the inventory we keep: its holdings past the shared prefix are stale
    /// (they were positions of the other chain), so they are dropped and its
    /// inventory is asked for again. Its answer carries ancestry when the
    /// views still differ.
    fn set_common(&mut self, now: Instant, peer: PeerId, common: u64, diverged: bool) {
        let Some(n) = self.neighbors.get_mut(&peer) else {
            return;
        };
        let limit = |c: &PeerChain| if c.diverged { c.common } else { u64::MAX };
        let told_below = limit(&n.chain);
        let flipped = n.chain.diverged != diverged;
        n.chain.diverged = diverged;
        let old_common = std::mem::replace(&mut n.chain.common, common);
        let may_tell_below = limit(&n.chain);
        if flipped {
            n.chain.held_back = RangeSet::new();
            if let Some(old) = n.inventory.take() {
                let below = split_at(&old, common).0;
                n.inventory = Some(below.clone());
                self.shift_holders(Some(&old), Some(&below));
            }
        } else if old_common != common
            && let Some(old) = n.inventory.take()
        {
            let mut all = old.clone();
            all.union_with(&n.chain.held_back);
            let (below, above) = split_at(&all, common);
            n.chain.held_back = above;
            n.inventory = Some(below.clone());
            self.shift_holders(Some(&old), Some(&below));
        }
        if may_tell_below > told_below {
            let mut news = split_at(&self.present, may_tell_below).0;
            news = news.difference(&split_at(&news, told_below).0);
            if !news.is_empty() {
                let request = Request::InventoryDelta {
                    view: self.delta_view(&peer),
                    added: news,
                };
                self.send(now, peer, request, Pending::Other);
            }
        }
        if flipped {
            tracing::debug!(%peer, common, diverged, "neighbour's whitelist agreement changed");
            self.ask_inventory(now, peer, Vec::new());
        }
    }

    /// Splits an inventory from a neighbour into what counts and what waits.
    pub(super) fn admit_inventory(&mut self, peer: &PeerId, inventory: RangeSet) -> RangeSet {
        let Some(n) = self.neighbors.get_mut(peer) else {
            return inventory;
        };
        let (below, above) = split_at(&inventory, n.chain.common);
        n.chain.held_back = above;
        below
    }

    /// The part of a delta that counts now; the rest is held back.
    pub(super) fn admit_delta(&mut self, peer: &PeerId, added: &RangeSet) -> RangeSet {
        let Some(n) = self.neighbors.get_mut(peer) else {
            return added.clone();
        };
        let (below, above) = split_at(added, n.chain.common);
        n.chain.held_back.union_with(&above);
        below
    }

    /// What of ours a neighbour may be told: all of it, unless its list
    /// differs from ours, then only the shared prefix.
    pub(super) fn shareable(&self, peer: &PeerId, ours: &RangeSet) -> RangeSet {
        match self.neighbors.get(peer) {
            Some(n) if n.chain.diverged => split_at(ours, n.chain.common).0,
            _ => ours.clone(),
        }
    }
}

fn split_at(set: &RangeSet, at: u64) -> (RangeSet, RangeSet) {
    let mut below = set.clone();
    below.truncate(at);
    let above = set.difference(&below);
    (below, above)
}
