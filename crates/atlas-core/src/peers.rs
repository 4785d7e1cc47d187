//! The peer table: every peer we know, its addresses, health and standing.
//!
//! Bounded, and bucketed by network group (/16 for IPv4, /32 for IPv6) so that
//! one operator with one address block cannot fill it (the eclipse attack of
//! stacks-core#769). Seeds are pinned and never evicted.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use multiaddr::Protocol as AddrPart;

use super::time::Instant;

/// Most addresses remembered per peer: enough for TCP + QUIC on v4 and v6.
const MAX_ADDRS: usize = 8;
/// How many recent request outcomes make up a peer's health.
const HEALTH_WINDOW: usize = 32;
/// Score at or below which a peer is banned.
pub const BAN_SCORE: f64 = -100.0;
/// Scores decay toward zero with this half-life, so old sins are forgiven.
const SCORE_HALF_LIFE: Duration = Duration::from_secs(600);
/// First wait before dialing a peer that could not be reached; it doubles
/// with each failure in a row, up to the cap (a shorter one for seeds, which
/// an isolated node needs back soon).
const DIAL_BACKOFF_BASE: Duration = Duration::from_secs(2);
const DIAL_BACKOFF_CAP: Duration = Duration::from_secs(600);
const SEED_BACKOFF_CAP: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Penalty {
    /// Served bytes whose hash was not the one asked for: never honest.
    WrongHash,
    /// Sent a message that does not decode or breaks the protocol.
    Malformed,
    /// Advertised a zone file, then said it does not have it.
    NotFound,
}

impl Penalty {
    pub const ALL: [Penalty; 3] = [Penalty::WrongHash, Penalty::Malformed, Penalty::NotFound];

    pub fn label(self) -> &'static str {
        match self {
            Penalty::WrongHash => "wrong_hash",
            Penalty::Malformed => "malformed",
            Penalty::NotFound => "not_found",
        }
    }

    fn cost(self) -> f64 {
        match self {
            Penalty::WrongHash => 100.0,
            Penalty::Malformed => 50.0,
            Penalty::NotFound => 5.0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PeerEntry {
    pub addrs: Vec<Multiaddr>,
    pub group: u64,
    pub pinned: bool,
    pub last_seen: Option<Instant>,
    score: f64,
    score_at: Instant,
    pub banned_until: Option<Instant>,
    /// It said it had no room for us as a neighbour; not asked again before this.
    full_until: Option<Instant>,
    outcomes: VecDeque<bool>,
    /// Dial failures in a row, and when the next dial may be tried.
    dial_failures: u32,
    retry_at: Option<Instant>,
}

impl PeerEntry {
    /// Fraction of recent requests that succeeded; unknown peers count as healthy.
    pub fn health(&self) -> f64 {
        if self.outcomes.is_empty() {
            return 1.0;
        }
        self.outcomes.iter().filter(|ok| **ok).count() as f64 / self.outcomes.len() as f64
    }

    pub fn score(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.score_at).as_secs_f64();
        self.score * 0.5f64.powf(elapsed / SCORE_HALF_LIFE.as_secs_f64())
    }

    pub fn is_banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|t| t > now)
    }

    /// Whether a dial may be tried now (unreachable peers back off).
    pub fn dialable(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| t <= now)
    }
}

#[derive(Debug)]
pub struct PeerTable {
    local: PeerId,
    entries: HashMap<PeerId, PeerEntry>,
    /// Entries per network group, kept up to date so admission is O(1).
    group_sizes: HashMap<u64, usize>,
    capacity: usize,
    per_group: usize,
    ban_duration: Duration,
}

impl PeerTable {
    pub fn new(local: PeerId, capacity: usize, per_group: usize, ban_duration: Duration) -> Self {
        PeerTable {
            local,
            entries: HashMap::new(),
            group_sizes: HashMap::new(),
            capacity,
            per_group,
            ban_duration,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, peer: &PeerId) -> Option<&PeerEntry> {
        self.entries.get(peer)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &PeerEntry)> {
        self.entries.iter()
    }

    pub fn addrs(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.entries
            .get(peer)
            .map(|e| e.addrs.clone())
            .unwrap_or_default()
    }

    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.entries.get(peer).is_some_and(|e| e.is_banned(now))
    }

    /// The peer had no room for us as a neighbour: leave it be until `until`.
    pub fn mark_full(&mut self, peer: &PeerId, until: Instant) {
        if let Some(e) = self.entries.get_mut(peer) {
            e.full_until = Some(until);
        }
    }

    pub fn is_full(&self, peer: &PeerId, now: Instant) -> bool {
        self.entries
            .get(peer)
            .is_some_and(|e| e.full_until.is_some_and(|t| t > now))
    }

    /// Peers the walk may start from, in a stable order so that a seeded RNG
    /// picks the same one every run.
    pub fn walkable(&self, now: Instant) -> Vec<PeerId> {
        let mut v: Vec<PeerId> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.is_banned(now) && !e.addrs.is_empty() && e.dialable(now))
            .map(|(p, _)| *p)
            .collect();
        v.sort();
        v
    }

    /// A dial to the peer failed: not a fault, but wait before the next try.
    pub fn unreachable(&mut self, peer: &PeerId, now: Instant) {
        if let Some(e) = self.entries.get_mut(peer) {
            e.dial_failures = e.dial_failures.saturating_add(1);
            let cap = if e.pinned {
                SEED_BACKOFF_CAP
            } else {
                DIAL_BACKOFF_CAP
            };
            let wait = DIAL_BACKOFF_BASE
                .saturating_mul(1 << e.dial_failures.saturating_sub(1).min(16))
                .min(cap);
            e.retry_at = Some(now + wait);
            if e.outcomes.len() >= HEALTH_WINDOW {
                e.outcomes.pop_front();
            }
            e.outcomes.push_back(false);
        }
    }

    pub fn pin(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) {
        self.learn(peer, addrs, now);
        if let Some(e) = self.entries.get_mut(&peer) {
            e.pinned = true;
        }
    }

    /// Records addresses for a peer, admitting it if the table and its network
    /// group have room (or room can be made by evicting a worse, unpinned peer).
    /// Returns whether the peer is in the table afterwards.
    pub fn learn(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) -> bool {
        if peer == self.local {
            return false;
        }
        if let Some(e) = self.entries.get_mut(&peer) {
            for a in addrs {
                if !e.addrs.contains(&a) {
                    if e.addrs.len() >= MAX_ADDRS {
                        e.addrs.remove(0);
                    }
                    e.addrs.push(a);
                }
            }
            return true;
        }
        let group = addrs.first().map(net_group).unwrap_or(0);
        let in_group = self.group_sizes.get(&group).copied().unwrap_or(0);
        if in_group >= self.per_group && !self.evict_one(now, Some(group)) {
            return false;
        }
        if self.entries.len() >= self.capacity && !self.evict_one(now, None) {
            return false;
        }
        let mut addrs = addrs;
        addrs.truncate(MAX_ADDRS);
        *self.group_sizes.entry(group).or_default() += 1;
        self.entries.insert(
            peer,
            PeerEntry {
                addrs,
                group,
                pinned: false,
                last_seen: None,
                score: 0.0,
                score_at: now,
                banned_until: None,
                full_until: None,
                outcomes: VecDeque::new(),
                dial_failures: 0,
                retry_at: None,
            },
        );
        true
    }

    /// Makes room by evicting the unpinned peers with the worst standing,
    /// preferring the most crowded groups so that diversity grows; never-seen
    /// peers go first. A sixteenth of the candidates go at once, so a flood of
    /// new addresses costs one scan per sixteen admissions, not one each.
    fn evict_one(&mut self, now: Instant, group: Option<u64>) -> bool {
        let group_sizes = &self.group_sizes;
        type Key = (std::cmp::Reverse<usize>, bool, i64, Option<Instant>, PeerId);
        let mut candidates: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.pinned && group.is_none_or(|g| e.group == g))
            .map(|(p, e)| {
                (
                    std::cmp::Reverse(group_sizes[&e.group]),
                    e.last_seen.is_some(),
                    (e.score(now) * 1000.0) as i64,
                    e.last_seen,
                    *p,
                )
            })
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let batch = (candidates.len() / 16).max(1);
        if batch < candidates.len() {
            candidates.select_nth_unstable(batch - 1);
        }
        for key in &candidates[..batch] {
            if let Some(e) = self.entries.remove(&key.4)
                && let Some(n) = self.group_sizes.get_mut(&e.group)
            {
                *n -= 1;
                if *n == 0 {
                    self.group_sizes.remove(&e.group);
                }
            }
        }
        true
    }

    /// We are talking with the peer: it is reachable.
    pub fn seen(&mut self, peer: &PeerId, now: Instant) {
        if let Some(e) = self.entries.get_mut(peer) {
            e.last_seen = Some(now);
            e.dial_failures = 0;
            e.retry_at = None;
        }
    }

    pub fn record(&mut self, peer: &PeerId, ok: bool, now: Instant) {
        if let Some(e) = self.entries.get_mut(peer) {
            if e.outcomes.len() >= HEALTH_WINDOW {
                e.outcomes.pop_front();
            }
            e.outcomes.push_back(ok);
            if ok {
                e.last_seen = Some(now);
                e.dial_failures = 0;
                e.retry_at = None;
            }
        }
    }

    /// Lowers a peer's score; returns true if this penalty banned it.
    pub fn penalize(&mut self, peer: &PeerId, penalty: Penalty, now: Instant) -> bool {
        // A peer that only ever dialed us has no entry yet; it must still be bannable.
        if !self.entries.contains_key(peer) {
            self.learn(*peer, Vec::new(), now);
        }
        let Some(e) = self.entries.get_mut(peer) else {
            return false;
        };
        e.outcomes.push_back(false);
        if e.outcomes.len() > HEALTH_WINDOW {
            e.outcomes.pop_front();
        }
        e.score = e.score(now) - penalty.cost();
        e.score_at = now;
        if e.score <= BAN_SCORE && !e.is_banned(now) {
            e.banned_until = Some(now + self.ban_duration);
            return true;
        }
        false
    }

    /// Peers to remember across restarts: those we have reached, or seeds.
    pub fn snapshot(&self, now: Instant) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.is_banned(now) && (e.pinned || e.last_seen.is_some()))
            .map(|(p, e)| (*p, e.addrs.clone()))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }
}

/// The network group used for diversity: /16 of an IPv4 address, /32 of an
/// IPv6 one, and a hash of the name for DNS addresses.
pub fn net_group(addr: &Multiaddr) -> u64 {
    for part in addr.iter() {
        match part {
            AddrPart::Ip4(ip) => return group_of(IpAddr::V4(ip)),
            AddrPart::Ip6(ip) => return group_of(IpAddr::V6(ip)),
            AddrPart::Dns(name) | AddrPart::Dns4(name) | AddrPart::Dns6(name) => {
                return name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                }) | (1 << 63);
            }
            _ => {}
        }
    }
    0
}

fn group_of(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (4 << 32) | (u64::from(o[0]) << 8) | u64::from(o[1])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (6 << 32) | (u64::from(s[0]) << 16) | u64::from(s[1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_group_cannot_fill_the_table() {
        let local = PeerId::random();
        let mut t = PeerTable::new(local, 100, 10, Duration::from_secs(60));
        for i in 0..50u8 {
            t.learn(
                PeerId::random(),
                vec![addr(&format!("/ip4/10.1.0.{i}/tcp/1"))],
                Instant::ZERO,
            );
        }
        assert_eq!(t.len(), 10, "a /16 gets at most per_group slots");
        for i in 0..50u8 {
            t.learn(
                PeerId::random(),
                vec![addr(&format!("/ip4/10.{i}.0.1/tcp/1"))],
                Instant::ZERO,
            );
        }
        assert!(t.len() <= 100);
        let groups: std::collections::HashSet<_> = t.iter().map(|(_, e)| e.group).collect();
        assert!(groups.len() >= 50, "other groups still get in");
    }

    #[test]
    fn wrong_hash_bans_and_score_decays() {
        let local = PeerId::random();
        let mut t = PeerTable::new(local, 100, 100, Duration::from_secs(3600));
        let p = PeerId::random();
        t.learn(p, vec![addr("/ip4/1.2.3.4/tcp/1")], Instant::ZERO);
        assert!(!t.penalize(&p, Penalty::NotFound, Instant::ZERO));
        assert!(!t.is_banned(&p, Instant::ZERO));
        assert!(t.penalize(&p, Penalty::WrongHash, Instant::ZERO));
        assert!(t.is_banned(&p, Instant::ZERO + Duration::from_secs(10)));
        assert!(!t.is_banned(&p, Instant::ZERO + Duration::from_secs(3601)));
        let later = Instant::ZERO + SCORE_HALF_LIFE;
        let s = t.get(&p).unwrap().score(later);
        assert!(
            (s - (-105.0 / 2.0)).abs() < 1e-6,
            "score halves per half-life: {s}"
        );
    }

    #[test]
    fn pinned_seeds_survive_eviction() {
        let local = PeerId::random();
        let mut t = PeerTable::new(local, 2, 2, Duration::from_secs(60));
        let seed = PeerId::random();
        t.pin(seed, vec![addr("/ip4/10.0.0.1/tcp/1")], Instant::ZERO);
        for i in 0..5u8 {
            t.learn(
                PeerId::random(),
                vec![addr(&format!("/ip4/10.0.0.{i}/tcp/2"))],
                Instant::ZERO,
            );
        }
        assert!(t.get(&seed).is_some());
        assert_eq!(t.len(), 2);
    }
}
