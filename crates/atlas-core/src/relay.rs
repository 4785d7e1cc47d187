//! Relaying new files at the speed of their announcements.
//!
//! A node that stores a file before telling anyone of it adds one store and
//! one announce-request-answer round trip per hop, and a new file then takes
//! three link delays per hop to cross the overlay. Pushing bodies instead
//! costs a copy per link. A relaying node announces a new file as soon as it
//! knows where to get it (it was pushed the file, or the neighbour that
//! announced it to us first is being asked for it), so announcements cross
//! the overlay by its fastest paths; a neighbour that then asks for the file
//! before it has arrived gets its answer when it does. Each node asks one
//! neighbour, the first that announced the file to it, so each node receives
//! about one copy, over the fastest path the announcements found.
//!
//! A promise lapses after `RELAY_WAIT`: a request still waiting then is
//! answered with what we hold, so a relay whose own source failed delays
//! its askers by at most that long before they ask elsewhere.
//!
//! With one path per node, one lost packet on it (a retransmission timeout,
//! 200 ms or more) delays the node and everyone who asked it. So a fetch of
//! a new file still unanswered after `hedge_ms` is also sent to another
//! neighbour that announced the file; whichever answers first is stored.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use libp2p_identity::PeerId;

use super::messages::Request;
use super::time::Instant;
use super::{
    Action, Core, CoreConfig, InboundId, Outstanding, Pending, RequestId, SERVE_BUDGET_BYTES,
};
use crate::zonefile::Hash160;

/// How long an announcement made before the file arrived stays good (at
/// most half the request timeout, so a held request is answered before its
/// asker gives up on it).
pub const RELAY_WAIT: Duration = Duration::from_secs(5);

/// A request for files we announced before holding them.
#[derive(Debug)]
struct Waiting {
    peer: PeerId,
    id: InboundId,
    hashes: Vec<Hash160>,
    until: Instant,
}

#[derive(Debug, Default)]
pub(super) struct Relay {
    /// Positions announced before we held them, and when each promise lapses.
    promised: HashMap<u64, Instant>,
    waiting: Vec<Waiting>,
    /// Fetches of new files, and when each is hedged if still unanswered.
    hedges: BTreeSet<(Instant, RequestId)>,
}

impl Relay {
    pub(super) fn next_hedge(&self) -> Option<Instant> {
        self.hedges.first().map(|(t, _)| *t)
    }
}

impl Core {
    /// We will have the file at `position` shortly: tell the neighbours now.
    pub(super) fn promise(&mut self, now: Instant, position: u64) {
        if !(self.cfg.relay && self.cfg.deltas) || self.present.contains(position) {
            return;
        }
        let Some(hash) = self.whitelist.get(position) else {
            return;
        };
        if self.relay.promised.contains_key(&position) {
            return;
        }
        let wait = RELAY_WAIT.min(CoreConfig::ms(self.cfg.request_timeout_ms) / 2);
        self.relay.promised.insert(position, now + wait);
        for i in self.whitelist.positions(&hash) {
            self.delta.insert(i);
        }
        // Not batched: every hop's batching delay would add up along the path.
        self.delta_due = Some(now);
    }

    /// Whether `position` was announced by us and has not yet arrived.
    /// Its promise is then kept: the caller must not announce it again.
    pub(super) fn promised(&self, position: u64) -> bool {
        self.relay.promised.contains_key(&position)
    }

    /// The file at `position` arrived (or can no longer arrive): answer
    /// whoever waited for it.
    pub(super) fn settle_promise(&mut self, now: Instant, position: u64) {
        if self.relay.promised.remove(&position).is_some() {
            self.answer_waiting(now);
        }
    }

    /// Holds back a request for files we promised and do not hold yet;
    /// false if it can be answered now.
    pub(super) fn wait_for_promised(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: InboundId,
        hashes: &[Hash160],
    ) -> bool {
        if !hashes.iter().any(|h| self.awaited(h)) {
            return false;
        }
        let until = hashes
            .iter()
            .filter_map(|h| self.whitelist.first(h))
            .filter_map(|p| self.relay.promised.get(&p).copied())
            .max()
            .unwrap_or(now);
        self.stats.relay_waits += 1;
        self.relay.waiting.push(Waiting {
            peer,
            id,
            hashes: hashes.to_vec(),
            until,
        });
        true
    }

    fn awaited(&self, hash: &Hash160) -> bool {
        self.whitelist
            .first(hash)
            .is_some_and(|p| !self.present.contains(p) && self.relay.promised.contains_key(&p))
    }

    /// Lapses promises past their time and answers the requests they held.
    pub(super) fn expire_promises(&mut self, now: Instant) {
        let before = self.relay.promised.len();
        self.relay.promised.retain(|_, until| *until > now);
        if before != self.relay.promised.len() || !self.relay.waiting.is_empty() {
            self.answer_waiting(now);
        }
    }

    /// Promises beyond a rolled-back whitelist cannot be kept.
    pub(super) fn truncate_promises(&mut self, now: Instant, to: u64) {
        self.relay.promised.retain(|p, _| *p < to);
        self.answer_waiting(now);
    }

    /// A closed connection's waiting requests will never be read.
    pub(super) fn forget_waiting(&mut self, peer: &PeerId) {
        self.relay.waiting.retain(|w| w.peer != *peer);
    }

    fn answer_waiting(&mut self, now: Instant) {
        let waiting = std::mem::take(&mut self.relay.waiting);
        for w in waiting {
            if w.until > now && w.hashes.iter().any(|h| self.awaited(h)) {
                self.relay.waiting.push(w);
                continue;
            }
            self.actions.push_back(Action::ServeZonefiles {
                peer: w.peer,
                id: w.id,
                hashes: w.hashes,
                budget: SERVE_BUDGET_BYTES,
            });
        }
    }

    /// Fetch `id` was sent: if it asks for a file we promised (a new one), hedge it later.
    pub(super) fn arm_hedge(&mut self, now: Instant, id: RequestId) {
        if self.cfg.hedge_ms == 0 || !self.cfg.relay {
            return;
        }
        let Some(Outstanding {
            what: Pending::Fetch(hashes),
            ..
        }) = self.outstanding.get(&id)
        else {
            return;
        };
        let fresh = hashes.iter().any(|h| {
            self.whitelist
                .first(h)
                .is_some_and(|p| self.relay.promised.contains_key(&p))
        });
        if fresh {
            let at = now + CoreConfig::ms(self.cfg.hedge_ms);
            self.relay.hedges.insert((at, id));
        }
    }

    /// Sends the hedges that are due: the files of a fetch still unanswered,
    /// asked of another neighbour that announced them.
    pub(super) fn send_hedges(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.relay.hedges.first() {
            if at > now {
                break;
            }
            self.relay.hedges.remove(&(at, id));
            let Some(o) = self.outstanding.get(&id) else {
                continue; // Answered or failed already.
            };
            let Pending::Fetch(hashes) = &o.what else {
                continue;
            };
            let first = o.peer;
            let lacking: Vec<Hash160> = hashes
                .iter()
                .filter(|h| !self.has(h) && !self.storing.contains(h))
                .copied()
                .collect();
            if lacking.is_empty() {
                continue;
            }
            let Some((&other, _)) = self
                .neighbors
                .iter()
                .filter(|(p, n)| {
                    **p != first
                        && n.inflight_fetches < n.window
                        && n.inventory.as_ref().is_some_and(|inv| {
                            lacking
                                .iter()
                                .all(|h| self.whitelist.first(h).is_some_and(|i| inv.contains(i)))
                        })
                })
                .min_by_key(|(p, _)| **p)
            else {
                continue;
            };
            if let Some(n) = self.neighbors.get_mut(&other) {
                n.inflight_fetches += 1;
            }
            self.stats.fetch_requests += 1;
            self.stats.hedges += 1;
            let request = Request::GetZonefiles {
                hashes: lacking.clone(),
                graft: false,
            };
            self.send(now, other, request, Pending::Fetch(lacking));
        }
    }
}
