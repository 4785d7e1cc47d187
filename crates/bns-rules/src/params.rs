//! The rule parameters the original indexer reads (`bs/config.py`), as one
//! value, so that mainnet and the oracle's test mode run the same code.
//!
//! Epochs are numbered 1..=6 here; the original's `get_epoch_number` counts
//! from 0 (`epoch() == get_epoch_number() + 1`).

use super::long::{Long, Price};

/// `NAMESPACE_VERSION_PAY_TO_BURN` (config.py:55): fees go to the burn
/// address; from epoch 4 they may also be paid in STACKs.
pub const NAMESPACE_VERSION_PAY_TO_BURN: u16 = 1;
/// `NAMESPACE_VERSION_PAY_TO_CREATOR` (config.py:56).
pub const NAMESPACE_VERSION_PAY_TO_CREATOR: u16 = 2;
/// `NAMESPACE_VERSION_PAY_WITH_STACKS` (config.py:57).
pub const NAMESPACE_VERSION_PAY_WITH_STACKS: u16 = 3;
/// `TOKEN_TYPE_STACKS` (config.py:1236), the only token type there is.
pub const TOKEN_TYPE_STACKS: &str = "STACKS";

/// The currency a price is quoted in (the original's `'BTC'` / `'STACKS'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Units {
    /// Satoshis.
    Btc,
    /// µSTX.
    Stacks,
}

/// `virtualchain.btc_script_classify`'s names for output scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScriptType {
    Nulldata,
    P2pkh,
    P2sh,
    /// Never produced from a scriptPubKey alone (classify needs key info),
    /// but listed as allowed from epoch 3.
    P2shP2wpkh,
    P2shP2wsh,
    P2wpkh,
    P2wsh,
    Multisig,
    P2pk,
}

impl ScriptType {
    /// The original's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptType::Nulldata => "nulldata",
            ScriptType::P2pkh => "p2pkh",
            ScriptType::P2sh => "p2sh",
            ScriptType::P2shP2wpkh => "p2sh-p2wpkh",
            ScriptType::P2shP2wsh => "p2sh-p2wsh",
            ScriptType::P2wpkh => "p2wpkh",
            ScriptType::P2wsh => "p2wsh",
            ScriptType::Multisig => "multisig",
            ScriptType::P2pk => "p2pk",
        }
    }
}

/// The original's `EPOCH_FEATURE_*` flags (config.py:492-503), by their names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// p2sh recipients and senders.
    Multisig,
    Segwit,
    /// A registration may carry a value hash.
    OpRegisterUpdate,
    /// A renewal may carry a value hash and a new owner.
    OpRenewTransferUpdate,
    /// Version-2 (pay-to-creator) namespaces.
    NamespaceBurnToCreator,
    /// Version-3 (STACKs-priced) namespaces.
    NamespacePayWithStacks,
    /// Namespaces are paid in STACKs.
    StacksBuyNamespaces,
    /// Name operations may pay in STACKs.
    NameopsCostTokens,
    /// Name preorders really expire after `NAME_PREORDER_EXPIRE` blocks.
    FixPreorderExpire,
    TokenTransfer,
    /// Integer name prices with a divisor instead of a float multiplier.
    IntDivision,
    /// An all-zero consensus hash is accepted in token transfers.
    TokenTransferConsensusHashOptional,
}

impl Feature {
    /// The original's string for it (`EPOCH_FEATURE_*`'s value).
    pub fn original_name(self) -> &'static str {
        match self {
            Feature::Multisig => "BLOCKSTACK_MULTISIG",
            Feature::Segwit => "BLOCKSTACK_SEGWIT",
            Feature::OpRegisterUpdate => "BLOCKSTACK_OP_REGISTER_UPDATE",
            Feature::OpRenewTransferUpdate => "BLOCKSTACK_OP_RENEW_TRANSFER_UPDATE",
            Feature::NamespaceBurnToCreator => "BLOCKSTACK_NAMESPACE_BURN_TO_CREATOR",
            Feature::NamespacePayWithStacks => "BLOCKSTACK_NAMESPACE_PAY_WITH_STACKS",
            Feature::StacksBuyNamespaces => "BLOCKSTACK_STACKS_BUY_NAMESPACES",
            Feature::NameopsCostTokens => "BLOCKSTACK_NAMEOPS_COST_TOKENS",
            Feature::FixPreorderExpire => "BLOCKSTACK_PREORDER_EXPIRE",
            Feature::TokenTransfer => "BLOCKSTACK_TOKEN_TRANSFER",
            Feature::IntDivision => "BLOCKSTACK_INT_DIVISION",
            Feature::TokenTransferConsensusHashOptional => {
                "BLOCKSTACK_TOKEN_TRANSFER_CONSENSUS_HASH_OPTIONAL"
            }
        }
    }
}

/// How an epoch scales name prices: a float multiplier (epochs 1-3) or an
/// integer divisor (epochs 4-6), per unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PriceScale {
    /// `PRICE_MULTIPLIER` / `PRICE_MULTIPLIER_STACKS`.
    Multiplier { btc: f64, stacks: f64 },
    /// `PRICE_DIVISOR` / `PRICE_DIVISOR_STACKS`.
    Divisor { btc: u64, stacks: u64 },
}

/// One row of an epoch's `namespaces` table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NamespaceRules {
    /// `NAMESPACE_LIFETIME_MULTIPLIER`.
    pub lifetime_multiplier: u64,
    /// `NAMESPACE_LIFETIME_GRACE_PERIOD`, in blocks.
    pub grace_period: u64,
    pub price_scale: PriceScale,
    /// `NAMESPACE_RECEIVE_FEES_PERIOD`: how long after its reveal a
    /// version-2 namespace's creator is paid the name fees.
    pub receive_fees_period: u64,
}

/// Test mode's shorter timers, so a few hundred regtest blocks reach what
/// takes a year on mainnet: `BLOCKSTACK_NAMESPACE_REVEAL_EXPIRE` and, for
/// epochs 3-6 (the ones whose mainnet values are not 0),
/// `BLOCKSTACK_EPOCH_n_NAMESPACE_LIFETIME_GRACE_PERIOD` and
/// `BLOCKSTACK_EPOCH_n_NAMESPACE_RECEIVE_FEES_PERIOD` (config.py:158, 615-621).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestTimers {
    pub namespace_reveal_expire: u64,
    pub grace_period: u64,
    pub receive_fees_period: u64,
}

impl TestTimers {
    /// The epochs (1-based) whose grace and receive-fees periods the
    /// override replaces.
    pub const EPOCHS: std::ops::RangeInclusive<u8> = 3..=6;
}

/// A namespace price table (`namespace_prices[_stacks]`), by ID length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NamespacePrices {
    /// Prices for IDs of 1, 2-3, 4-7 and 8-19 characters.
    pub by_length_class: [Price; 4],
}

impl NamespacePrices {
    /// `price_table[len]`, or None where the original returns None
    /// (length 0, or at least the table's 20 entries).
    pub fn get(&self, id_len: usize) -> Option<Price> {
        let class = match id_len {
            1 => 0,
            2..=3 => 1,
            4..=7 => 2,
            8..=19 => 3,
            _ => return None,
        };
        Some(self.by_length_class[class])
    }
}

/// One entry of the original's `EPOCHS` list (config.py:628-935).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Epoch {
    pub features: &'static [Feature],
    /// The row for `id` (and, in test mode, `test`).
    pub id_rules: NamespaceRules,
    /// The `*` row, for every other namespace. It equals `id_rules` in every
    /// epoch of this release; both are kept so lookups follow the original.
    pub default_rules: NamespaceRules,
    pub namespace_prices_btc: Option<NamespacePrices>,
    pub namespace_prices_stacks: Option<NamespacePrices>,
    pub namespace_price_units: Units,
    pub output_types: &'static [ScriptType],
    pub sender_types: &'static [ScriptType],
}

/// Every parameter the BNS rules read. Build with [`RuleSet::mainnet`] or
/// [`RuleSet::test`].
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSet {
    /// `FIRST_BLOCK_MAINNET` (config.py:234), the first block indexed.
    pub first_block: u64,
    /// Last block of epochs 1-5 (config.py:507-511); epoch 6 never ends.
    pub epoch_ends: [u64; 5],
    pub epochs: [Epoch; 6],
    /// Namespaces that use the epochs' `id` row (config.py:938-940 adds
    /// `test` in test mode).
    pub namespaces_with_id_rules: &'static [&'static str],
    /// `BLOCKS_PER_YEAR` (config.py:76), from 365.2424 days of 10-minute blocks.
    pub blocks_per_year: u64,
    /// `BLOCKS_PER_DAY` (config.py:77).
    pub blocks_per_day: u64,
    /// `NAME_PREORDER_EXPIRE` (config.py:79).
    pub name_preorder_expire: u64,
    /// `NAMESPACE_PREORDER_EXPIRE` (config.py:120).
    pub namespace_preorder_expire: u64,
    /// `NAMESPACE_REVEAL_EXPIRE` (config.py:121): an unreadied reveal lapses.
    pub namespace_reveal_expire: u64,
    /// `MAX_NAMES_PER_SENDER` (config.py:150).
    pub max_names_per_sender: u64,
    /// `NAME_IMPORT_KEYRING_SIZE` (config.py:169; 5 in test mode, :156).
    pub name_import_keyring_size: u32,
    /// `NAME_COST_UNIT` (config.py:91), satoshis.
    pub name_cost_unit_btc: u64,
    /// `NAME_COST_UNIT_STACKS` (config.py:92), µSTX.
    pub name_cost_unit_stacks: u64,
    /// `MICROSTACKS_PER_SATOSHI_NUM` / `_DEN` (config.py:117-118).
    pub microstacks_per_satoshi_num: u64,
    pub microstacks_per_satoshi_den: u64,
    /// `BLOCKSTACK_BURN_PUBKEY_HASH` (config.py:1201).
    pub burn_hash160: [u8; 20],
    /// `NAMESPACE_LIFE_INFINITE` (config.py:1198).
    pub namespace_life_infinite: u64,
    /// `BLOCKSTACK_TESTNET` (config.py:131): addresses in testnet encoding.
    pub testnet: bool,
    /// virtualchain `version_byte` / `multisig_version_byte` (keys.py:94-110).
    pub p2pkh_version: u8,
    pub p2sh_version: u8,
    /// virtualchain `bech32_prefix` (bech32.py:29-33).
    pub bech32_hrp: &'static str,
    /// `SUBDOMAIN_ADDRESS_VERSION_BYTE` / `_MULTISIG_` (config.py:1226-1231).
    pub subdomain_p2pkh_version: u8,
    pub subdomain_p2sh_version: u8,
    /// `SUBDOMAINS_FIRST_BLOCK` (config.py:244; 256 in test mode).
    pub subdomains_first_block: u64,
    /// `NUM_CONFIRMATIONS` (config.py:172; 0 in test mode).
    pub num_confirmations: u64,
    /// `get_valid_transaction_window` (virtualchain_hooks.py:101-107): how
    /// many past consensus hashes an op may quote.
    pub valid_transaction_window: u64,
    /// `GENESIS_SNAPSHOT` (config.py:252-257): the consensus hash of the
    /// four blocks before `first_block`.
    pub genesis_consensus_hash: [u8; 16],
    /// `MAGIC_BYTES` (config.py:972).
    pub magic_bytes: [u8; 2],
    /// Shortened test timers, if any (`with_timers`).
    pub timers: Option<TestTimers>,
}

const OUTPUT_TYPES_BASE: &[ScriptType] =
    &[ScriptType::Nulldata, ScriptType::P2pkh, ScriptType::P2sh];
const OUTPUT_TYPES_SEGWIT: &[ScriptType] = &[
    ScriptType::Nulldata,
    ScriptType::P2pkh,
    ScriptType::P2sh,
    ScriptType::P2shP2wpkh,
    ScriptType::P2shP2wsh,
];
const SENDER_TYPES: &[ScriptType] = &[ScriptType::P2pkh, ScriptType::P2sh];

const GENESIS_CONSENSUS_HASH: [u8; 16] = [
    0x17, 0xac, 0x43, 0xc1, 0xd8, 0x54, 0x9c, 0x31, 0x81, 0xb2, 0x00, 0xf1, 0xbf, 0x97, 0xeb, 0x7d,
];

/// `EPOCH_n_FEATURES` (config.py:551-595): each epoch adds to the last.
fn features(epoch: u8) -> &'static [Feature] {
    use Feature::*;
    const ALL: &[Feature] = &[
        Multisig,
        Segwit,
        OpRegisterUpdate,
        OpRenewTransferUpdate,
        NamespaceBurnToCreator,
        NamespacePayWithStacks,
        StacksBuyNamespaces,
        FixPreorderExpire,
        NameopsCostTokens,
        TokenTransfer,
        IntDivision,
        TokenTransferConsensusHashOptional,
    ];
    let count = match epoch {
        1 => 0,
        2 => 1,
        3 => 5,
        4 => 11,
        _ => 12,
    };
    &ALL[..count]
}

/// The `id` / `*` row of an epoch (config.py:514-549).
fn namespace_rules(epoch: u8, blocks_per_year: u64) -> NamespaceRules {
    NamespaceRules {
        lifetime_multiplier: if epoch == 1 { 1 } else { 2 },
        grace_period: if epoch >= 3 { 5000 } else { 0 },
        price_scale: match epoch {
            1 | 2 => PriceScale::Multiplier {
                btc: 1.0,
                stacks: 1.0,
            },
            3 => PriceScale::Multiplier {
                btc: 0.1,
                stacks: 1.0,
            },
            _ => PriceScale::Divisor { btc: 10, stacks: 1 },
        },
        receive_fees_period: if epoch >= 3 { blocks_per_year } else { 0 },
    }
}

impl RuleSet {
    /// Bitcoin mainnet, as blockstack-core 22.0.0.0 ran it.
    pub fn mainnet() -> Self {
        Self::build(false, [436_650, 488_500, 547_921, 599_866, 613_249])
    }

    /// The oracle's test mode (`BLOCKSTACK_TEST=1 BLOCKSTACK_TESTNET=1`, as
    /// `oracle/run.sh` sets it): first block 1, a 5-key import
    /// keyring, a 41 BTC 1-character namespace, testnet address versions,
    /// no confirmations, `test` priced and timed like `id`, and
    /// `NAMESPACE_REVEAL_EXPIRE` back at 52595. `epoch_ends` is
    /// `EPOCH_ENDS` (`BLOCKSTACK_EPOCH_n_END_BLOCK`); None keeps mainnet's.
    ///
    /// Panics on end heights the original refuses (config.py:957-962).
    pub fn test(epoch_ends: Option<[u64; 5]>) -> Self {
        let ends = epoch_ends.unwrap_or(Self::mainnet().epoch_ends);
        for i in 0..4 {
            assert!(
                !(ends[i] >= ends[i + 1] && ends[i + 1] > 0),
                "invalid epoch block range at epoch {}",
                i + 1
            );
        }
        Self::build(true, ends)
    }

    /// This test rule set with `timers` in place of mainnet's.
    pub fn with_timers(mut self, timers: TestTimers) -> Self {
        assert!(self.testnet, "the original only takes timers in test mode");
        self.namespace_reveal_expire = timers.namespace_reveal_expire;
        for e in TestTimers::EPOCHS {
            let epoch = &mut self.epochs[usize::from(e) - 1];
            for rules in [&mut epoch.id_rules, &mut epoch.default_rules] {
                rules.grace_period = timers.grace_period;
                rules.receive_fees_period = timers.receive_fees_period;
            }
        }
        self.timers = Some(timers);
        self
    }

    fn build(test: bool, epoch_ends: [u64; 5]) -> Self {
        let blocks_per_year = 52_595;
        let blocks_per_day = 144;
        let one_char_btc = if test {
            Price::Int(Long::from(41 * 100_000_000u64))
        } else {
            Price::Float(400.0 * 100_000_000.0)
        };
        let epochs = [1u8, 2, 3, 4, 5, 6].map(|e| Epoch {
            features: features(e),
            id_rules: namespace_rules(e, blocks_per_year),
            default_rules: namespace_rules(e, blocks_per_year),
            namespace_prices_btc: btc_namespace_prices(e, one_char_btc),
            namespace_prices_stacks: stacks_namespace_prices(e),
            namespace_price_units: if e >= 4 { Units::Stacks } else { Units::Btc },
            output_types: if e >= 3 {
                OUTPUT_TYPES_SEGWIT
            } else {
                OUTPUT_TYPES_BASE
            },
            sender_types: SENDER_TYPES,
        });
        RuleSet {
            first_block: if test { 1 } else { 373_601 },
            epoch_ends,
            epochs,
            namespaces_with_id_rules: if test { &["id", "test"] } else { &["id"] },
            blocks_per_year,
            blocks_per_day,
            name_preorder_expire: blocks_per_day,
            namespace_preorder_expire: blocks_per_day,
            namespace_reveal_expire: blocks_per_year,
            max_names_per_sender: 25,
            name_import_keyring_size: if test { 5 } else { 300 },
            name_cost_unit_btc: 100,
            name_cost_unit_stacks: 1733,
            microstacks_per_satoshi_num: 650,
            microstacks_per_satoshi_den: 15,
            burn_hash160: [0; 20],
            namespace_life_infinite: 0xffff_ffff,
            testnet: test,
            p2pkh_version: if test { 111 } else { 0 },
            p2sh_version: if test { 196 } else { 5 },
            bech32_hrp: if test { "tb" } else { "bc" },
            subdomain_p2pkh_version: if test { 127 } else { 63 },
            subdomain_p2sh_version: if test { 142 } else { 50 },
            subdomains_first_block: if test { 256 } else { 478_872 },
            num_confirmations: if test { 0 } else { 6 },
            valid_transaction_window: 24,
            genesis_consensus_hash: GENESIS_CONSENSUS_HASH,
            magic_bytes: *b"id",
            timers: None,
        }
    }

    /// The epoch (1..=6) of a block, as `get_epoch_number` (config.py:1244)
    /// + 1. Heights before the first block count as epoch 1.
    pub fn epoch(&self, height: u64) -> u8 {
        let ends = &self.epoch_ends;
        if height <= ends[0] {
            return 1;
        }
        // the original's scan: the first epoch whose end is at or after the
        // height, given the previous one ended before it
        for i in 1..5 {
            if ends[i - 1] < height && height <= ends[i] {
                return i as u8 + 1;
            }
        }
        6
    }

    /// The epoch's whole row (`get_epoch_config`).
    pub fn epoch_config(&self, height: u64) -> &Epoch {
        &self.epochs[usize::from(self.epoch(height)) - 1]
    }

    /// `get_epoch_features`.
    pub fn features(&self, height: u64) -> &'static [Feature] {
        self.epoch_config(height).features
    }

    /// `feature in get_epoch_features(height)`.
    pub fn has_feature(&self, height: u64, feature: Feature) -> bool {
        self.features(height).contains(&feature)
    }

    /// `epoch_has_multisig`.
    pub fn has_multisig(&self, height: u64) -> bool {
        self.has_feature(height, Feature::Multisig)
    }

    /// `epoch_has_segwit`.
    pub fn has_segwit(&self, height: u64) -> bool {
        self.has_feature(height, Feature::Segwit)
    }

    /// The `namespaces` row for `namespace_id`, or the `*` row.
    pub fn namespace_rules(&self, height: u64, namespace_id: &str) -> &NamespaceRules {
        let epoch = self.epoch_config(height);
        if self.namespaces_with_id_rules.contains(&namespace_id) {
            &epoch.id_rules
        } else {
            &epoch.default_rules
        }
    }

    /// `get_epoch_namespace_lifetime_multiplier`.
    pub fn lifetime_multiplier(&self, height: u64, namespace_id: &str) -> u64 {
        self.namespace_rules(height, namespace_id)
            .lifetime_multiplier
    }

    /// `get_epoch_namespace_lifetime_grace_period`.
    pub fn grace_period(&self, height: u64, namespace_id: &str) -> u64 {
        self.namespace_rules(height, namespace_id).grace_period
    }

    /// `get_epoch_namespace_receive_fees_period`.
    pub fn receive_fees_period(&self, height: u64, namespace_id: &str) -> u64 {
        self.namespace_rules(height, namespace_id)
            .receive_fees_period
    }

    /// `get_epoch_price_multiplier` / `get_epoch_price_divisor`, both units.
    pub fn price_scale(&self, height: u64, namespace_id: &str) -> PriceScale {
        self.namespace_rules(height, namespace_id).price_scale
    }

    /// `get_epoch_namespace_prices`: None where the epoch has no table in
    /// these units (BTC from epoch 4, STACKs before it).
    pub fn namespace_prices(&self, height: u64, units: Units) -> Option<&NamespacePrices> {
        let epoch = self.epoch_config(height);
        match units {
            Units::Btc => epoch.namespace_prices_btc.as_ref(),
            Units::Stacks => epoch.namespace_prices_stacks.as_ref(),
        }
    }

    /// `get_epoch_namespace_price_units`: what namespace preorders pay in.
    pub fn namespace_price_units(&self, height: u64) -> Units {
        self.epoch_config(height).namespace_price_units
    }

    /// `get_epoch_btc_script_types`: allowed output types.
    pub fn output_types(&self, height: u64) -> &'static [ScriptType] {
        self.epoch_config(height).output_types
    }

    /// `get_epoch_btc_sender_types`: allowed types of every input's funding script.
    pub fn sender_types(&self, height: u64) -> &'static [ScriptType] {
        self.epoch_config(height).sender_types
    }

    /// The cost unit of a name price in `units` (the price floor).
    pub fn name_cost_unit(&self, units: Units) -> u64 {
        match units {
            Units::Btc => self.name_cost_unit_btc,
            Units::Stacks => self.name_cost_unit_stacks,
        }
    }

    /// `GENESIS_SNAPSHOT`: the consensus hash the original has for the four
    /// blocks before the first, None elsewhere.
    pub fn genesis_snapshot(&self, height: u64) -> Option<[u8; 16]> {
        let lo = self.first_block.saturating_sub(4);
        (height >= lo && height < self.first_block).then_some(self.genesis_consensus_hash)
    }

    /// `BLOCKSTACK_BURN_ADDRESS` (config.py:1202) in this rule set's encoding.
    pub fn burn_address(&self) -> String {
        let mut payload = [0u8; 21];
        payload[0] = self.p2pkh_version;
        payload[1..].copy_from_slice(&self.burn_hash160);
        bitcoin::base58::encode_check(&payload)
    }

    /// What saved follower progress was computed under: state built under
    /// other rules must not be reused.
    pub fn identity(&self) -> String {
        let ends: Vec<String> = self.epoch_ends.iter().map(u64::to_string).collect();
        let mut id = format!(
            "{}:{}:{}",
            if self.testnet { "test" } else { "mainnet" },
            self.first_block,
            ends.join(",")
        );
        if let Some(t) = self.timers {
            id += &format!(
                ":timers={},{},{}",
                t.namespace_reveal_expire, t.grace_period, t.receive_fees_period
            );
        }
        id
    }
}

/// The BTC namespace prices (config.py:96-100, tables at 652-673 and
/// 754-775). The mainnet constants are floats (`400.0 * 10**8`); test mode
/// replaces the 1-character price by the int `41 * 10**8` (config.py:166),
/// and epoch 3's `/ 10` keeps each entry's type (float or floor-divided int).
fn btc_namespace_prices(epoch: u8, one_char: Price) -> Option<NamespacePrices> {
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
fn stacks_namespace_prices(epoch: u8) -> Option<NamespacePrices> {
    if epoch < 4 {
        return None;
    }
    let by_length_class = [96000.0f64, 9600.0, 960.0, 96.0]
        .map(|usd| Price::Int(Long::from_f64_trunc((usd * 1e6) / 0.15)));
    Some(NamespacePrices { by_length_class })
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
