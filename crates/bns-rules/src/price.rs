//! Name and namespace prices (`bs/scripts.py:213-324`), bit for bit.
//!
//! Epochs 1-3 price names in Python floats, and those floats reach consensus
//! records (`op_fee` of imports) and fee checks, so the float operations are
//! done in the original's order. From epoch 4 prices are Python longs, which
//! can exceed 128 bits for extreme namespaces, hence [`Long`].

pub use super::long::{Long, Price};
use super::params::{Feature, NAMESPACE_VERSION_PAY_WITH_STACKS, PriceScale, RuleSet, Units};

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
