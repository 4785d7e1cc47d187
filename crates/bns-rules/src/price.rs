//! Name and namespace prices (`bs/scripts.py:213-324`), bit for bit.
//!
//! Epochs 1-3 price names in Python floats, and those floats reach consensus
//! records (`op_fee` of imports) and fee checks, so the float operations are
//! done in the original's order. From epoch 4 prices are Python longs, which
//! can exceed 128 bits for extreme namespaces, hence [`Long`].

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::params::{
    Feature, NAMESPACE_VERSION_PAY_WITH_STACKS, NamespacePrices, PriceScale, RuleSet, Units,
};

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

/// The namespace fields a name's price depends on (its reveal's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespacePrice {
    pub version: u16,
    pub coeff: u8,
    pub base: u8,
    pub buckets: [u8; 16],
    pub nonalpha_discount: u8,
    pub no_vowel_discount: u8,
}

impl NamespacePrice {
    /// The units its name prices are in: STACKs for version 3, else BTC.
    pub fn units(&self) -> Units {
        if self.version == NAMESPACE_VERSION_PAY_WITH_STACKS {
            Units::Stacks
        } else {
            Units::Btc
        }
    }
}

/// `price_name` (scripts.py:213): the price of `name` (without its
/// namespace ID) in `namespace_id`, at `height`, in the namespace's units
/// ([`NamespacePrice::units`]). A [`Price::Float`] before epoch 4, a
/// [`Price::Int`] from it.
pub fn price_name(
    rules: &RuleSet,
    namespace_id: &str,
    ns: &NamespacePrice,
    name: &[u8],
    height: u64,
) -> Price {
    let units = ns.units();
    let cost_unit = rules.name_cost_unit(units);

    // an empty name takes the last bucket, like Python's buckets[-1]
    let bucket = if (1..16).contains(&name.len()) {
        name.len() - 1
    } else {
        15
    };
    let exponent = u32::from(ns.buckets[bucket]);

    // the larger discount applies, never their product; 'y' is a vowel
    let mut discount = 1u64;
    if !name
        .iter()
        .any(|c| b"aeiouy".contains(&c.to_ascii_lowercase()))
    {
        discount = discount.max(u64::from(ns.no_vowel_discount));
    }
    if name
        .iter()
        .any(|c| c.is_ascii_digit() || *c == b'-' || *c == b'_')
    {
        discount = discount.max(u64::from(ns.nonalpha_discount));
    }

    // 255 * 255^15 < 2^128
    let raw = u128::from(ns.coeff) * u128::from(ns.base).pow(exponent);

    let int_division = rules.has_feature(height, Feature::IntDivision);
    match (int_division, rules.price_scale(height, namespace_id)) {
        (false, PriceScale::Multiplier { btc, stacks }) => {
            let multiplier = if units == Units::Btc { btc } else { stacks };
            let mut price = (raw as f64 / discount as f64) * cost_unit as f64;
            if price < cost_unit as f64 {
                price = cost_unit as f64;
            }
            Price::Float(price * multiplier)
        }
        (true, PriceScale::Divisor { btc, stacks }) => {
            let divisor = if units == Units::Btc { btc } else { stacks };
            let mut price = Long::from(raw).mul_small(cost_unit).div_small(discount);
            if price < Long::from(cost_unit) {
                price = Long::from(cost_unit);
            }
            Price::Int(price.div_small(divisor))
        }
        // the original aborts here; no rule set built by params.rs has it
        (_, scale) => panic!("epoch at {height} has int_division={int_division} but {scale:?}"),
    }
}

/// `price_name_stacks` (scripts.py:288): a name's price in µSTX. Version-3
/// namespaces are priced in STACKs already (a float before epoch 4, as
/// `price_name`); the others convert `int(price_name)` satoshis at 650/15.
pub fn price_name_stacks(
    rules: &RuleSet,
    namespace_id: &str,
    ns: &NamespacePrice,
    name: &[u8],
    height: u64,
) -> Price {
    let price = price_name(rules, namespace_id, ns, name, height);
    if ns.version == NAMESPACE_VERSION_PAY_WITH_STACKS {
        price
    } else {
        Price::Int(satoshis_to_microstacks(rules, price.to_long()))
    }
}

/// The BTC -> STX conversion of `price_name_stacks`: `sat * 650 / 15`, floored.
pub fn satoshis_to_microstacks(rules: &RuleSet, satoshis: Long) -> Long {
    satoshis
        .mul_small(rules.microstacks_per_satoshi_num)
        .div_small(rules.microstacks_per_satoshi_den)
}

/// `price_namespace` (scripts.py:311): the price of a namespace ID in
/// `units` at `height`. None for an empty or 20+-character ID, or when the
/// epoch has no table in these units.
///
/// Callers comparing a BTC fee must keep Python 2's `fee < None == False`:
/// `namespacereveal.py:232` accepts any BTC fee when this is None.
pub fn price_namespace(
    rules: &RuleSet,
    namespace_id: &str,
    height: u64,
    units: Units,
) -> Option<Price> {
    rules
        .namespace_prices(height, units)?
        .get(namespace_id.len())
}

/// The BTC namespace prices (config.py:96-100, tables at 652-673 and
/// 754-775). The mainnet constants are floats (`400.0 * 10**8`); test mode
/// replaces the 1-character price by the int `41 * 10**8` (config.py:166),
/// and epoch 3's `/ 10` keeps each entry's type (float or floor-divided int).
pub(super) fn btc_namespace_prices(epoch: u8, one_char: Price) -> Option<NamespacePrices> {
    // `0.4 * SATOSHIS_PER_BTC` and friends, in floats
    let [two, four, eight] = [40.0, 4.0, 0.4].map(|btc: f64| Price::Float(btc * 100_000_000.0));
    let mut prices = [one_char, two, four, eight];
    match epoch {
        1 | 2 => {}
        3 => {
            for p in &mut prices {
                *p = match *p {
                    Price::Float(f) => Price::Float(f / 10.0),
                    Price::Int(i) => Price::Int(i.div_small(10)),
                };
            }
        }
        _ => return None,
    }
    Some(NamespacePrices {
        by_length_class: prices,
    })
}

/// The STACKs namespace prices (config.py:107-110): USD prices at
/// $0.15/STX, computed in floats and truncated.
pub(super) fn stacks_namespace_prices(epoch: u8) -> Option<NamespacePrices> {
    if epoch < 4 {
        return None;
    }
    let by_length_class = [96000.0f64, 9600.0, 960.0, 96.0]
        .map(|usd| Price::Int(Long::from_f64_trunc((usd * 1e6) / 0.15)));
    Some(NamespacePrices { by_length_class })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The generator's number encoding: `f:<bits>`, `i:<decimal>`, null.
    pub(crate) fn decode(v: &Value) -> Option<Price> {
        let s = v.as_str()?;
        Some(match s.split_at(2) {
            ("f:", bits) => Price::Float(f64::from_bits(u64::from_str_radix(bits, 16).unwrap())),
            ("i:", dec) => Price::Int(dec.parse().unwrap()),
            _ => panic!("bad number {s}"),
        })
    }

    /// The generator's encoding of a price: type, value and bits.
    pub(crate) fn encode(p: &Price) -> String {
        match p {
            Price::Float(f) => format!("f:{:016x}", f.to_bits()),
            Price::Int(l) => format!("i:{l}"),
        }
    }

    pub(crate) fn rules_for(mode: &str) -> RuleSet {
        match mode {
            "mainnet" => RuleSet::mainnet(),
            "test" => RuleSet::test(None),
            "test_epochs_12345" => RuleSet::test(Some([1, 2, 3, 4, 5])),
            _ => panic!("unknown mode {mode}"),
        }
    }

    fn namespace(v: &Value) -> (String, NamespacePrice) {
        let num = |k: &str| v[k].as_u64().unwrap();
        let mut buckets = [0u8; 16];
        for (b, x) in buckets.iter_mut().zip(v["buckets"].as_array().unwrap()) {
            *b = x.as_u64().unwrap() as u8;
        }
        let ns = NamespacePrice {
            version: num("version") as u16,
            coeff: num("coeff") as u8,
            base: num("base") as u8,
            buckets,
            nonalpha_discount: num("nonalpha_discount") as u8,
            no_vowel_discount: num("no_vowel_discount") as u8,
        };
        (v["namespace_id"].as_str().unwrap().to_string(), ns)
    }

    #[test]
    fn name_prices_match_the_original() {
        let all: Value = serde_json::from_str(include_str!("testdata/price_vectors.json")).unwrap();
        let mut checked = 0;
        for (mode, data) in all.as_object().unwrap() {
            let rules = rules_for(mode);
            let namespaces: Vec<_> = data["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(namespace)
                .collect();
            for case in data["cases"].as_array().unwrap() {
                let name = case[0].as_str().unwrap();
                let (ns_id, ns) = &namespaces[case[1].as_u64().unwrap() as usize];
                let height = case[2].as_u64().unwrap();
                let got = price_name(&rules, ns_id, ns, name.as_bytes(), height);
                let got_stx = price_name_stacks(&rules, ns_id, ns, name.as_bytes(), height);
                let at = format!("{mode} {ns_id} {name:?} @{height}");
                assert_eq!(
                    json!([encode(&got), encode(&got_stx)]),
                    json!([case[3], case[4]]),
                    "{at}"
                );
                checked += 1;
            }
        }
        assert!(checked > 5000, "only {checked} cases");
    }

    #[test]
    fn fee_comparisons_match_the_original() {
        let all: Value = serde_json::from_str(include_str!("testdata/price_vectors.json")).unwrap();
        let mut checked = 0;
        for (mode, data) in all.as_object().unwrap() {
            for case in data["comparisons"].as_array().unwrap() {
                let paid: u64 = case[0].as_str().unwrap().parse().unwrap();
                let price = decode(&case[1]).unwrap();
                let want = case[2].as_bool().unwrap();
                assert_eq!(price.exceeds(paid), want, "{mode}: {paid} < {price:?}");
                checked += 1;
            }
        }
        assert!(checked > 1500, "{checked}");
    }

    #[test]
    fn namespace_prices_match_the_original() {
        let all: Value =
            serde_json::from_str(include_str!("testdata/params_vectors.json")).unwrap();
        let mut checked = 0;
        for (mode, data) in all.as_object().unwrap() {
            let rules = rules_for(mode);
            for case in data["namespace_prices"].as_array().unwrap() {
                let height = case[0].as_u64().unwrap();
                let units = match case[1].as_str().unwrap() {
                    "BTC" => Units::Btc,
                    _ => Units::Stacks,
                };
                let id = case[2].as_str().unwrap();
                let got = price_namespace(&rules, id, height, units);
                let at = format!("{mode} {id:?} {units:?} @{height}");
                assert_eq!(json!(got.as_ref().map(encode)), case[3], "{at}");
                checked += 1;
            }
        }
        assert_eq!(checked, 3 * 6 * 2 * 21);
    }

    #[test]
    fn long_round_trips_and_converts_like_python() {
        let big: Long = "545166004478138040117837452004063151318476"
            .parse()
            .unwrap();
        assert_eq!(
            big.to_string(),
            "545166004478138040117837452004063151318476"
        );
        assert_eq!(big.to_u128(), None);
        // 2^64 + 1 is a tie between 2^64 and 2^64 + 2^12: round to even
        let tie = Long::from(u128::from(u64::MAX) + 2);
        assert_eq!(tie.to_f64(), 18_446_744_073_709_551_616.0);
        assert_eq!(Long::from_f64_trunc(1e40).to_f64(), 1e40);
        assert_eq!(Long::from_f64_trunc(12.9), Long::from(12u64));
        assert!("12a".parse::<Long>().is_err());
    }

    #[test]
    fn fee_comparison_is_exact_across_int_and_float() {
        let p = Price::Float(10_240_000.000_000_002);
        assert!(p.exceeds(10_240_000));
        assert!(!p.exceeds(10_240_001));
        let huge = Price::Float(2f64.powi(64));
        assert!(huge.exceeds(u64::MAX));
        let near = Price::Float(9_007_199_254_740_993f64); // rounds to 2^53
        assert!(!near.exceeds(9_007_199_254_740_992));
        assert!(near.exceeds(9_007_199_254_740_991));
        assert!(Price::Int(Long::from(5u64)).exceeds(4));
        assert!(!Price::Int(Long::from(5u64)).exceeds(5));
    }
}
