//! Connections between simulated nodes: dialing, the uplink each message
//! queues on, closes seen one latency later, partitions, idle timeouts.

use super::*;

impl Sim {
    /// When the connection a->b can carry data, dialing if there is none.
    pub(super) fn ensure_connection(&mut self, a: NodeId, b: NodeId) -> u64 {
        let now = self.now;
        if let Some(c) = self.nodes[a as usize].conns.get_mut(&b) {
            c.last_active = c.last_active.max(now);
            return c.last_active;
        }
        // TCP, Noise and Yamux negotiation: about one and a half round trips.
        let ready = now + 3 * self.net.latency_us(a, b);
        self.next_gen += 1;
        let conn = Conn {
            epoch: self.next_gen,
            last_active: ready,
        };
        self.nodes[a as usize].conns.insert(b, conn);
        self.nodes[b as usize].conns.insert(a, conn);
        self.schedule(
            ready,
            Ev::Connected {
                dialer: a,
                listener: b,
                epoch: conn.epoch,
            },
        );
        ready
    }

    pub(super) fn connected(&mut self, a: NodeId, b: NodeId, epoch: u64) {
        let live = |s: &Sim, x: NodeId, y: NodeId| {
            s.nodes[x as usize].alive
                && s.nodes[x as usize]
                    .conns
                    .get(&y)
                    .is_some_and(|c| c.epoch == epoch)
        };
        if !(live(self, a, b) && live(self, b, a)) {
            return;
        }
        let (pa, pb) = (self.nodes[a as usize].peer, self.nodes[b as usize].peer);
        let (addr_a, addr_b) = (
            self.nodes[a as usize].addr.clone(),
            self.nodes[b as usize].addr.clone(),
        );
        let now = Instant::from_micros(self.now);
        for (at, peer, addr, dialer) in [(b, pa, addr_a, false), (a, pb, addr_b, true)] {
            self.nodes[at as usize].on_connected(now, peer, addr, dialer);
            self.drain(at);
        }
    }

    /// `a` closes its connection to `b`; `b` notices a one-way delay later.
    pub fn close(&mut self, a: NodeId, b: NodeId) {
        let Some(c) = self.nodes[a as usize].conns.get(&b).copied() else {
            return;
        };
        let delay = self.net.latency_us(a, b);
        self.closed(a, b, c.epoch);
        self.schedule(
            self.now + delay,
            Ev::Closed {
                to: b,
                from: a,
                epoch: c.epoch,
            },
        );
    }

    /// `to` learns its connection to `from` is gone: what it had in flight
    /// there fails, then the core hears of the disconnect.
    pub fn closed(&mut self, to: NodeId, from: NodeId, epoch: u64) {
        let node = &mut self.nodes[to as usize];
        if node.conns.get(&from).is_none_or(|c| c.epoch != epoch) {
            return;
        }
        node.conns.remove(&from);
        if !node.alive {
            return;
        }
        let peer = self.nodes[from as usize].peer;
        let now = Instant::from_micros(self.now);
        let failed = self.nodes[to as usize].on_closed(now, from, peer);
        for _ in 0..failed {
            self.record.count("requests_failed_connection_closed");
        }
        self.drain(to);
    }

    /// When a message of `size` bytes sent by `a` at `start` is in `b`'s
    /// hands. Bandwidth is modelled where it binds in replication, at the
    /// sender's uplink: messages leave one after another. (Downlinks are not
    /// modelled: reserving them out of time order would let one late message
    /// block a receiver that is in fact idle.)
    pub(super) fn transmit(&mut self, a: NodeId, b: NodeId, start: u64, size: usize) -> u64 {
        let ser = self.net.serialize_us(size);
        let lat = self.net.latency_us(a, b);
        let loss = self.net.loss_delay_us(&mut self.rng, lat);
        // A message that waits for its connection's handshake takes its turn
        // on the uplink now; reserving the uplink from when the handshake
        // ends would hold up every message to every other peer until then.
        let sender = &mut self.nodes[a as usize];
        let sent = sender.up_free.max(self.now) + ser;
        sender.up_free = sent;
        sent.max(start + ser) + lat + loss
    }

    /// Whether the partition separates two nodes.
    pub fn cut(&self, a: NodeId, b: NodeId) -> bool {
        self.partitioned && self.nodes[a as usize].group != self.nodes[b as usize].group
    }

    pub(super) fn idle_sweep(&mut self) {
        let idle = self.net.idle_timeout_us;
        let mut to_close = Vec::new();
        for &n in &self.alive {
            let node = &self.nodes[n as usize];
            for (&b, c) in &node.conns {
                let busy = node.inflight.values().any(|(t, _)| *t == Some(b));
                if n < b && c.last_active + idle < self.now && !busy {
                    to_close.push((n, b));
                }
            }
        }
        to_close.sort_unstable();
        for (a, b) in to_close {
            self.close(a, b);
        }
        self.schedule(self.now + idle / 4, Ev::IdleSweep);
    }
}
