//! The rule sets against the original's own constants and tables.
use super::super::price::tests::{encode, rules_for};
use super::*;
use serde_json::{Value, json};

/// The rule set in the generator's `constants` layout.
fn constants(r: &RuleSet) -> Value {
    let snapshot: serde_json::Map<_, _> = (1..=4)
        .map(|k| {
            (
                (r.first_block as i64 - k).to_string(),
                json!(hex::encode(r.genesis_consensus_hash)),
            )
        })
        .collect();
    json!({
        "first_block": r.first_block,
        "epoch_end_blocks": r.epoch_ends.iter().map(|&e| e as i64).chain([-1]).collect::<Vec<_>>(),
        "blocks_per_year": r.blocks_per_year,
        "blocks_per_day": r.blocks_per_day,
        "name_preorder_expire": r.name_preorder_expire,
        "namespace_preorder_expire": r.namespace_preorder_expire,
        "namespace_reveal_expire": r.namespace_reveal_expire,
        "max_names_per_sender": r.max_names_per_sender,
        "name_import_keyring_size": r.name_import_keyring_size,
        "name_cost_unit": r.name_cost_unit_btc,
        "name_cost_unit_stacks": r.name_cost_unit_stacks,
        "microstacks_per_satoshi_num": r.microstacks_per_satoshi_num,
        "microstacks_per_satoshi_den": r.microstacks_per_satoshi_den,
        "burn_pubkey_hash": hex::encode(r.burn_hash160),
        "burn_address": r.burn_address(),
        "token_type_stacks": TOKEN_TYPE_STACKS,
        "namespace_life_infinite": r.namespace_life_infinite,
        "p2pkh_version_byte": r.p2pkh_version,
        "p2sh_version_byte": r.p2sh_version,
        "bech32_hrp": r.bech32_hrp,
        "subdomain_address_version_bytes": [r.subdomain_p2pkh_version, r.subdomain_p2sh_version],
        "subdomains_first_block": r.subdomains_first_block,
        "num_confirmations": r.num_confirmations,
        "valid_transaction_window": r.valid_transaction_window,
        "genesis_snapshot": snapshot,
        "magic_bytes": std::str::from_utf8(&r.magic_bytes).unwrap(),
        "namespace_versions_supported": [
            NAMESPACE_VERSION_PAY_TO_BURN,
            NAMESPACE_VERSION_PAY_TO_CREATOR,
            NAMESPACE_VERSION_PAY_WITH_STACKS,
        ],
    })
}

/// One epoch row in the generator's `epochs` layout.
fn epoch_row(r: &RuleSet, h: u64) -> Value {
    let btc = r.namespace_price_units(h) == Units::Btc;
    let mut features: Vec<_> = r.features(h).iter().map(|f| f.original_name()).collect();
    features.sort_unstable();
    let types = |ts: &[ScriptType]| ts.iter().map(|t| t.as_str()).collect::<Vec<_>>();
    let namespaces: serde_json::Map<_, _> = ["id", "test", "foo", "*"]
        .into_iter()
        .map(|ns| {
            let f = |x: f64| Some(encode(&Price::Float(x)));
            let i = |x: u64| Some(encode(&Price::Int(Long::from(x))));
            let (mb, ms, db, ds) = match r.price_scale(h, ns) {
                PriceScale::Multiplier { btc, stacks } => (f(btc), f(stacks), None, None),
                PriceScale::Divisor { btc, stacks } => (None, None, i(btc), i(stacks)),
            };
            let row = json!({
                "has_own_rules": ns == "*" || r.namespaces_with_id_rules.contains(&ns),
                "lifetime_multiplier": r.lifetime_multiplier(h, ns),
                "grace_period": r.grace_period(h, ns),
                "receive_fees_period": r.receive_fees_period(h, ns),
                "price_multiplier_btc": mb,
                "price_multiplier_stacks": ms,
                "price_divisor_btc": db,
                "price_divisor_stacks": ds,
            });
            (ns.to_string(), row)
        })
        .collect();
    json!({
        "height": h,
        "epoch_number": r.epoch(h) - 1,
        "features": features,
        "has_multisig": r.has_multisig(h),
        "has_segwit": r.has_segwit(h),
        "script_types": types(r.output_types(h)),
        "sender_types": types(r.sender_types(h)),
        "namespace_price_units": if btc { "BTC" } else { TOKEN_TYPE_STACKS },
        "namespaces": namespaces,
    })
}

#[test]
fn rule_sets_match_the_original() {
    let all: Value = serde_json::from_str(include_str!("testdata/params_vectors.json")).unwrap();
    let (mut epochs, mut heights) = (0, 0);
    for (mode, data) in all.as_object().unwrap() {
        let r = rules_for(mode);
        assert_eq!(constants(&r), data["constants"], "{mode}");
        for row in data["epochs"].as_array().unwrap() {
            assert_eq!(
                epoch_row(&r, row["height"].as_u64().unwrap()),
                *row,
                "{mode}"
            );
            epochs += 1;
        }
        for pair in data["epoch_numbers"].as_array().unwrap() {
            let h = pair[0].as_u64().unwrap();
            assert_eq!(
                u64::from(r.epoch(h)),
                pair[1].as_u64().unwrap() + 1,
                "{mode} @{h}"
            );
            heights += 1;
        }
        assert_eq!(r.genesis_snapshot(r.first_block), None);
        assert_eq!(
            r.genesis_snapshot(r.first_block - 1),
            Some(r.genesis_consensus_hash)
        );
    }
    assert_eq!((epochs, heights), (18, 66));
}

#[test]
#[should_panic(expected = "invalid epoch block range")]
fn test_mode_refuses_unordered_epoch_ends() {
    RuleSet::test(Some([5, 4, 6, 7, 8]));
}

#[test]
fn test_timers_replace_the_year_long_ones_where_the_original_lets_them() {
    let t = TestTimers {
        namespace_reveal_expire: 15,
        grace_period: 6,
        receive_fees_period: 40,
    };
    let plain = RuleSet::test(Some([10, 20, 30, 40, 50]));
    let short = plain.clone().with_timers(t);
    assert_eq!(short.namespace_reveal_expire, 15);
    for (height, epoch) in [(5, 1), (15, 2), (25, 3), (35, 4), (45, 5), (55, 6)] {
        for ns in ["id", "foo"] {
            let (grace, fees) = if epoch >= 3 {
                (6, 40)
            } else {
                (
                    plain.grace_period(height, ns),
                    plain.receive_fees_period(height, ns),
                )
            };
            assert_eq!(short.grace_period(height, ns), grace, "epoch {epoch} {ns}");
            assert_eq!(
                short.receive_fees_period(height, ns),
                fees,
                "epoch {epoch} {ns}"
            );
        }
    }
    assert_ne!(
        short.identity(),
        plain.identity(),
        "saved progress is not shared"
    );
}

#[test]
#[should_panic(expected = "test mode")]
fn mainnet_takes_no_test_timers() {
    let _ = RuleSet::mainnet().with_timers(TestTimers {
        namespace_reveal_expire: 1,
        grace_period: 1,
        receive_fees_period: 1,
    });
}
