//! Dispatch of inbound requests, responses and failures.

use bytes::Bytes;
use libp2p_identity::PeerId;

use super::messages::{Request, Response};
use super::time::Instant;
use super::{Action, Core, Failure, InboundId, Outstanding, Penalty, Pending, RequestId};
use crate::zonefile::Hash160;

/// Zone-file bytes one answer carries at most: a batch larger than this is
/// answered in part, and the asker asks again for the rest.
pub const SERVE_BUDGET_BYTES: usize = 1 << 20;

/// What an answer to `GetZonefiles` carries: the files we hold, in the order
/// asked, leaving out any that would take it past `budget` (the first file
/// always fits), and the hashes we do not hold. `read` is the driver's store.
pub fn serve_within_budget<E>(
    hashes: &[Hash160],
    budget: usize,
    mut read: impl FnMut(&Hash160) -> Result<Option<Bytes>, E>,
) -> Result<(Vec<Bytes>, Vec<Hash160>), E> {
    let (mut found, mut missing, mut used) = (Vec::new(), Vec::new(), 0usize);
    for h in hashes {
        match read(h)? {
            Some(b) => {
                if used + b.len() > budget && !found.is_empty() {
                    continue;
                }
                used += b.len();
                found.push(b);
            }
            None => missing.push(*h),
        }
    }
    Ok((found, missing))
}

/// How long a peer that said it has no room for us is left out of our walks.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

impl Core {
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: InboundId,
        request: Request,
    ) {
        self.peers.seen(&peer, now);
        match request {
            Request::PeerExchange { listen_addrs, view } => {
                self.observe_view(now, peer, &view, None);
                self.peers.learn(peer, listen_addrs, now);
                let (peers, degree) = self.exchange_list(now);
                self.respond(
                    peer,
                    id,
                    Response::Peers {
                        view: self.view(),
                        peers,
                        degree,
                    },
                );
            }
            Request::Inventory { view, ancestry } => {
                if !self.accept_inbound(now, peer) && self.cfg.neighbors_only {
                    self.respond(peer, id, Response::Busy);
                    return;
                }
                let ancestry = (!ancestry.is_empty()).then_some(ancestry.as_slice());
                self.observe_view(now, peer, &view, ancestry);
                self.respond(
                    peer,
                    id,
                    Response::Inventory {
                        view: self.view(),
                        inventory: self.shareable(&peer, &self.present),
                        ancestry: self.ancestry_for(&view),
                    },
                );
            }
            Request::InventoryDelta { added, view } => {
                match self.resolve_delta_view(&view) {
                    Some(view) => {
                        self.observe_view(now, peer, &view, None);
                        let added = self.admit_delta(&peer, &added);
                        self.apply_delta(peer, &added, Some(now));
                    }
                    // Its list moved on in a way the delta does not name
                    // (a race with a view change): learn it afresh, once.
                    None if self.neighbors.contains_key(&peer)
                        && !self
                            .outstanding
                            .values()
                            .any(|o| o.peer == peer && matches!(o.what, Pending::Inventory)) =>
                    {
                        self.ask_inventory(now, peer, Vec::new());
                    }
                    None => {}
                }
                self.respond(peer, id, Response::Ack);
            }
            Request::GetZonefiles { mut hashes, graft } => {
                if hashes.len() > self.cfg.batch_max_hashes.max(100) {
                    self.penalize(now, peer, Penalty::Malformed);
                    hashes.truncate(100);
                }
                if self.cfg.neighbors_only && !self.neighbors.contains_key(&peer) {
                    self.respond(peer, id, Response::Busy);
                    return;
                }
                if graft {
                    self.set_eager(peer, true);
                }
                if self.wait_for_promised(now, peer, id, &hashes) {
                    return;
                }
                self.actions.push_back(Action::ServeZonefiles {
                    peer,
                    id,
                    hashes,
                    budget: SERVE_BUDGET_BYTES,
                });
            }
            Request::Push { zonefiles, view } => {
                self.observe_view(now, peer, &view, None);
                let (accepted, duplicates) = self.on_push(now, peer, zonefiles);
                // Only copies we already had: this link closes a cycle of the
                // push tree. Both ends stop pushing on it and announce instead.
                let prune = self.cfg.push_tree && accepted == 0 && duplicates > 0;
                if prune && self.set_eager(peer, false) {
                    self.stats.prunes += 1;
                }
                self.respond(peer, id, Response::PushAck { accepted, prune });
            }
        }
    }

    /// Puts a neighbour on the push tree or takes it off; true if that changed anything.
    pub(super) fn set_eager(&mut self, peer: PeerId, eager: bool) -> bool {
        match self.neighbors.get_mut(&peer) {
            Some(n) if n.eager != eager => {
                n.eager = eager;
                true
            }
            _ => false,
        }
    }

    fn respond(&mut self, peer: PeerId, id: InboundId, response: Response) {
        self.actions
            .push_back(Action::Respond { peer, id, response });
    }

    pub(super) fn on_response(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: RequestId,
        response: Response,
    ) {
        let Some(o) = self.take_outstanding(id) else {
            return; // Late: we already gave up on it.
        };
        if o.peer != peer {
            // The driver routes by request id; a mismatch is a driver bug, not the peer's.
            debug_assert_eq!(o.peer, peer, "response routed to the wrong peer");
            self.on_lost(now, o);
            return;
        }
        self.peers.record(&peer, true, now);
        match (o.what, response) {
            (
                Pending::Walk,
                Response::Peers {
                    peers,
                    degree,
                    view,
                },
            ) => {
                self.observe_view(now, peer, &view, None);
                let ids = peers.iter().map(|r| r.peer).collect();
                for r in peers {
                    self.peers.learn(r.peer, r.addrs, now);
                }
                self.on_walk_reply(now, peer, ids, degree);
            }
            (
                Pending::Inventory,
                Response::Inventory {
                    inventory,
                    view,
                    ancestry,
                },
            ) => {
                let ancestry = (!ancestry.is_empty()).then_some(ancestry.as_slice());
                self.observe_view(now, peer, &view, ancestry);
                let inventory = self.admit_inventory(&peer, inventory);
                self.set_inventory(peer, inventory);
            }
            (Pending::Fetch(hashes), Response::Zonefiles { zonefiles, missing }) => {
                let latency = now.saturating_duration_since(o.sent);
                self.on_fetched(now, peer, hashes, zonefiles, missing, latency);
            }
            (Pending::Other, Response::PushAck { prune: true, .. }) => {
                self.set_eager(peer, false);
            }
            (Pending::Other, Response::Ack | Response::PushAck { .. }) => {}
            (what @ (Pending::Inventory | Pending::Fetch(_)), Response::Busy) => {
                // Not a fault: it has no room for us. Look elsewhere for a while.
                self.stats.refused_busy += 1;
                self.peers.mark_full(&peer, now + BUSY_RETRY);
                self.drop_neighbor(now, peer);
                if let Pending::Fetch(hashes) = what {
                    for h in hashes {
                        if let Some(p) = self.whitelist.first(&h) {
                            self.sched.release(p);
                        }
                    }
                    self.sched_dirty = true;
                }
            }
            (what, _) => {
                self.penalize(now, peer, Penalty::Malformed);
                self.on_lost(
                    now,
                    Outstanding {
                        peer,
                        what,
                        sent: o.sent,
                        deadline: o.deadline,
                    },
                );
            }
        }
    }

    pub(super) fn on_failed(&mut self, now: Instant, o: Outstanding, reason: Failure) {
        self.stats.request_failures[reason as usize] += 1;
        if matches!(reason, Failure::Refused | Failure::Timeout)
            && let Some(n) = self.neighbors.get_mut(&o.peer)
        {
            n.window = (n.window / 2).max(1);
        }
        match reason {
            Failure::Malformed => self.penalize(now, o.peer, Penalty::Malformed),
            Failure::Unreachable => self.peers.unreachable(&o.peer, now),
            Failure::Refused => {
                self.stats.refused_busy += 1;
                self.peers.record(&o.peer, false, now);
            }
            Failure::Closed | Failure::Timeout => self.peers.record(&o.peer, false, now),
        }
        self.on_lost(now, o);
    }

    /// Cleans up after a request that will not be answered.
    pub(super) fn on_lost(&mut self, now: Instant, o: Outstanding) {
        match o.what {
            Pending::Walk => self.on_walk_failed(o.peer),
            Pending::Inventory => {
                let never_answered = self
                    .neighbors
                    .get(&o.peer)
                    .is_some_and(|n| n.inventory.is_none());
                if never_answered {
                    self.drop_neighbor(now, o.peer);
                }
            }
            Pending::Fetch(hashes) => {
                let left = match self.neighbors.get_mut(&o.peer) {
                    Some(n) => {
                        n.inflight_fetches = n.inflight_fetches.saturating_sub(1);
                        false
                    }
                    None => true,
                };
                self.stats.fetch_failures += 1;
                for h in hashes {
                    // A neighbour that left says nothing about the file.
                    if left {
                        self.fetch_elsewhere(h, now);
                    } else {
                        self.fetch_failed(h, now);
                    }
                }
                self.sched_dirty = true;
            }
            Pending::Other => {}
        }
    }
}
