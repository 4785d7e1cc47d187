//! The network model: per-link latency, per-node bandwidth, TCP-style loss,
//! and the identities and addresses nodes appear under.

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use rand::Rng;

use super::scenario;

/// SplitMix64: a stateless mix, so a link's latency is a pure function of
/// the seed and the pair, whatever order links are first used in.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn unit(z: u64) -> f64 {
    // 53 random bits in (0, 1).
    ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

pub struct NetModel {
    seed: u64,
    median_us: f64,
    sigma: f64,
    min_us: u64,
    max_us: u64,
    /// Bytes per microsecond, each direction.
    bytes_per_us: f64,
    pub loss: f64,
    pub dial_timeout_us: u64,
    pub idle_timeout_us: u64,
}

impl NetModel {
    pub fn new(n: &scenario::Network, seed: u64) -> Self {
        NetModel {
            seed,
            median_us: n.latency_median_ms * 1e3,
            sigma: n.latency_sigma,
            min_us: (n.latency_min_ms * 1e3) as u64,
            max_us: (n.latency_max_ms * 1e3) as u64,
            bytes_per_us: n.bandwidth_mbps * 1e6 / 8.0 / 1e6,
            loss: n.loss,
            dial_timeout_us: (n.dial_timeout_s * 1e6) as u64,
            idle_timeout_us: (n.idle_timeout_s * 1e6) as u64,
        }
    }

    /// One-way latency between two nodes: log-normal, fixed per pair.
    pub fn latency_us(&self, a: u32, b: u32) -> u64 {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let h = mix(self.seed ^ mix(((lo as u64) << 32) | hi as u64));
        let (u1, u2) = (unit(h), unit(mix(h)));
        // Box-Muller: one standard normal from two uniforms.
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let l = self.median_us * (self.sigma * z).exp();
        (l as u64).clamp(self.min_us, self.max_us)
    }

    /// Time to put `bytes` on a node's link.
    pub fn serialize_us(&self, bytes: usize) -> u64 {
        (bytes as f64 / self.bytes_per_us).ceil() as u64
    }

    /// Extra delay a message suffers from lost segments: each loss costs a
    /// retransmission timeout (at least 200 ms, or two round trips).
    pub fn loss_delay_us(&self, rng: &mut impl Rng, latency_us: u64) -> u64 {
        let mut extra = 0;
        let rto = (4 * latency_us).max(200_000);
        while self.loss > 0.0 && rng.random_bool(self.loss) {
            extra += rto;
        }
        extra
    }
}

/// A well-formed peer id (an inlined Ed25519 public key) from random
/// bytes: as good as a real key for routing, without generating one.
pub fn peer_id(rng: &mut impl Rng) -> PeerId {
    let mut bytes = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    let key: [u8; 32] = rng.random();
    bytes.extend_from_slice(&key);
    PeerId::from_bytes(&bytes).expect("an identity multihash of 36 bytes")
}

/// A public-looking IPv4 address, spread over many /16s as real nodes are.
pub fn address(rng: &mut impl Rng) -> Multiaddr {
    let a = rng.random_range(11u8..=223);
    let ip = std::net::Ipv4Addr::new(
        if a == 127 { 128 } else { a },
        rng.random(),
        rng.random(),
        rng.random_range(1..=254),
    );
    format!("/ip4/{ip}/tcp/6264")
        .parse()
        .expect("a valid multiaddr")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_per_pair_stable_and_spread_like_the_config() {
        let m = NetModel::new(&scenario::Network::default(), 7);
        assert_eq!(m.latency_us(3, 9), m.latency_us(9, 3));
        let mut v: Vec<u64> = (0..2000).map(|i| m.latency_us(i, i + 1)).collect();
        v.sort_unstable();
        let median = v[v.len() / 2] as f64;
        assert!((45_000.0..80_000.0).contains(&median), "median {median}");
        assert!(v[0] >= 5_000 && v[v.len() - 1] <= 400_000);
        assert!(v[v.len() * 99 / 100] > 150_000, "a long tail");
    }
}
