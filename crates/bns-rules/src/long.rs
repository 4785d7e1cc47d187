//! The numbers of the original's price arithmetic: Python 2 `long`s (here
//! 256 bits wide, [`Long`]) and prices that are either a float or a long
//! ([`Price`]), as its name and namespace prices are.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A non-negative Python 2 `long`, 256 bits wide: the largest price the
/// original can compute is 255 * 255^15 * 1733 * 650 < 2^150.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Long([u64; 4]);

impl Long {
    pub const ZERO: Long = Long([0; 4]);

    pub fn to_u128(self) -> Option<u128> {
        let [a, b, c, d] = self.0;
        (c == 0 && d == 0).then_some(u128::from(a) | (u128::from(b) << 64))
    }

    pub fn to_u64(self) -> Option<u64> {
        self.to_u128().and_then(|v| u64::try_from(v).ok())
    }

    fn bit_len(self) -> u32 {
        for i in (0..4).rev() {
            if self.0[i] != 0 {
                return 64 * i as u32 + 64 - self.0[i].leading_zeros();
            }
        }
        0
    }

    fn checked_mul_small(self, m: u64) -> Option<Long> {
        let mut out = [0u64; 4];
        let mut carry = 0u128;
        for (o, &limb) in out.iter_mut().zip(&self.0) {
            let v = u128::from(limb) * u128::from(m) + carry;
            *o = v as u64;
            carry = v >> 64;
        }
        (carry == 0).then_some(Long(out))
    }

    fn checked_add_small(self, a: u64) -> Option<Long> {
        let mut out = self.0;
        let mut carry = a;
        for o in &mut out {
            let (v, overflow) = o.overflowing_add(carry);
            *o = v;
            carry = u64::from(overflow);
        }
        (carry == 0).then_some(Long(out))
    }

    /// `self * m`. Panics past 256 bits, which no price reaches.
    pub fn mul_small(self, m: u64) -> Long {
        self.checked_mul_small(m).expect("price exceeds 256 bits")
    }

    /// Floor division and remainder. Panics when `d == 0`.
    pub fn div_rem_small(self, d: u64) -> (Long, u64) {
        let mut out = [0u64; 4];
        let mut rem = 0u128;
        for i in (0..4).rev() {
            let cur = (rem << 64) | u128::from(self.0[i]);
            out[i] = (cur / u128::from(d)) as u64;
            rem = cur % u128::from(d);
        }
        (Long(out), rem as u64)
    }

    /// Python's `self / d` (floor division) on longs.
    pub fn div_small(self, d: u64) -> Long {
        self.div_rem_small(d).0
    }

    fn shr(self, s: u32) -> Long {
        let (limbs, bits) = ((s / 64) as usize, s % 64);
        let mut out = [0u64; 4];
        for (i, o) in out.iter_mut().enumerate() {
            let lo = self.0.get(i + limbs).copied().unwrap_or(0);
            let hi = self.0.get(i + limbs + 1).copied().unwrap_or(0);
            *o = if bits == 0 {
                lo
            } else {
                (lo >> bits) | (hi << (64 - bits))
            };
        }
        Long(out)
    }

    fn shl(self, s: u32) -> Long {
        let (limbs, bits) = ((s / 64) as usize, s % 64);
        let mut out = [0u64; 4];
        for (i, o) in out.iter_mut().enumerate() {
            let lo = i.checked_sub(limbs + 1).map_or(0, |j| self.0[j]);
            let hi = i.checked_sub(limbs).map_or(0, |j| self.0[j]);
            *o = if bits == 0 {
                hi
            } else {
                (hi << bits) | (lo >> (64 - bits))
            };
        }
        Long(out)
    }

    /// Python's `float(long)`: correctly rounded, ties to even.
    pub fn to_f64(self) -> f64 {
        let n = self.bit_len();
        if n <= 64 {
            return self.0[0] as f64;
        }
        let shift = n - 64;
        let top = self.shr(shift).0[0];
        // a sticky bit below the 64 kept keeps u64 -> f64 rounding exact
        let lost = self.shl(256 - shift) != Long::ZERO;
        ((top | u64::from(lost)) as f64) * 2f64.powi(shift as i32)
    }

    /// Python's `long(f)` for a finite, non-negative float (truncation).
    pub fn from_f64_trunc(f: f64) -> Long {
        assert!(f.is_finite() && f >= 0.0, "no long for {f}");
        if f < 18_446_744_073_709_551_616.0 {
            return Long::from(f as u64);
        }
        let bits = f.to_bits();
        let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
        let exp = ((bits >> 52) & 0x7ff) as u32 - 1075;
        Long::from(mantissa).shl(exp)
    }
}

impl From<u64> for Long {
    fn from(v: u64) -> Long {
        Long([v, 0, 0, 0])
    }
}

impl From<u128> for Long {
    fn from(v: u128) -> Long {
        Long([v as u64, (v >> 64) as u64, 0, 0])
    }
}

impl Ord for Long {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

impl PartialOrd for Long {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Decimal, as Python's `str(long)` (no `L`).
impl fmt::Display for Long {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CHUNK: u64 = 10_000_000_000_000_000_000;
        let mut chunks = Vec::new();
        let mut v = *self;
        loop {
            let (q, r) = v.div_rem_small(CHUNK);
            chunks.push(r);
            v = q;
            if v == Long::ZERO {
                break;
            }
        }
        let mut s = chunks.pop().map(|c| c.to_string()).unwrap_or_default();
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:019}"));
        }
        f.pad(&s)
    }
}

/// Decimal digits only.
impl FromStr for Long {
    type Err = String;

    fn from_str(s: &str) -> Result<Long, String> {
        if s.is_empty() {
            return Err("empty number".into());
        }
        let mut v = Long::ZERO;
        for c in s.bytes() {
            let digit = match c {
                b'0'..=b'9' => u64::from(c - b'0'),
                _ => return Err(format!("not a decimal number: {s:?}")),
            };
            let next = v
                .checked_mul_small(10)
                .and_then(|m| m.checked_add_small(digit));
            v = next.ok_or_else(|| format!("number exceeds 256 bits: {s}"))?;
        }
        Ok(v)
    }
}

impl fmt::Debug for Long {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Long({self})")
    }
}

/// A price as the original holds it: a float (name prices in epochs 1-3,
/// mainnet's BTC namespace prices) or an int.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Price {
    Float(f64),
    Int(Long),
}

impl Price {
    /// Python's `paid < price`, exact across int and float as Python 2.7
    /// compares them: true means the payment falls short.
    pub fn exceeds(&self, paid: u64) -> bool {
        match *self {
            Price::Int(p) => Long::from(paid) < p,
            Price::Float(p) => {
                if p.is_nan() || p <= 0.0 {
                    false
                } else if p >= 18_446_744_073_709_551_616.0 {
                    true
                } else {
                    // an integer is below p exactly when it is below ceil(p)
                    let c = p.ceil();
                    c >= 18_446_744_073_709_551_616.0 || paid < c as u64
                }
            }
        }
    }

    /// Python's `float(price)` (e.g. an import's `op_fee`).
    pub fn to_f64(&self) -> f64 {
        match *self {
            Price::Float(f) => f,
            Price::Int(l) => l.to_f64(),
        }
    }

    /// Python's `int(price)`: floats truncate.
    pub fn to_long(&self) -> Long {
        match *self {
            Price::Float(f) => Long::from_f64_trunc(f),
            Price::Int(l) => l,
        }
    }
}
