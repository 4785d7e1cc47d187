//! Scripting BNS on the regtest chain: real, signed transactions for each
//! operation, sent by the miner key (which also owns what it registers),
//! laid out, priced and dated as the original indexer accepts them under the
//! oracle's test rules (mainnet epochs, so a short chain is all epoch 1).
//! Consensus hashes and prices come from the rules run over the chain so far.
//! `bnsgen` builds richer histories (many keys, invalid variants).

use bitcoin::hashes::Hash;
use bitcoin::{Amount, Network, ScriptBuf, Transaction, TxOut};

use super::regtest::{COINBASE_MATURITY, RegtestChain};
use atlas_chain::follower::burn_script;
use atlas_core::zonefile::Hash160;
use bns_rules::engine::Engine;
use bns_rules::hashing::hash_name_hex;
use bns_rules::hashing::hash128;
use bns_rules::params::{Feature, RuleSet, Units};
use bns_rules::payment::name_price;
use bns_rules::price::{Price, price_namespace};
use bns_rules::replay::replay;

/// What the builder pays above a price, so float rounding never underpays.
const MARGIN: u64 = 1_000;

fn sats(price: &Price) -> u64 {
    price.to_f64().ceil() as u64 + MARGIN
}

impl RegtestChain {
    fn miner_addr(&self) -> String {
        bitcoin::Address::from_script(&self.miner_script(), Network::Regtest)
            .expect("p2pkh has an address")
            .to_string()
    }

    /// The rules the builder writes for.
    pub fn bns_rules(&self) -> RuleSet {
        RuleSet::test(None)
    }

    /// The rules' state after the whole chain, as the oracle would have it.
    pub fn bns_state(&self) -> Engine {
        let blocks: Vec<_> = (0..=self.height())
            .filter_map(|h| self.block(h).cloned())
            .collect();
        replay(self.bns_rules(), &[], &blocks).0
    }

    /// The consensus hash of the tip: valid in operations mined in the next
    /// 24 blocks.
    pub fn tip_consensus_hash(&self) -> [u8; 16] {
        let engine = self.bns_state();
        engine
            .consensus_hash(self.height() as u64)
            .and_then(|c| hex::decode(c).ok()?.try_into().ok())
            .unwrap_or([0; 16])
    }

    fn op(&mut self, payload: Vec<u8>, outputs: Vec<ScriptBuf>) -> Transaction {
        let outs = outputs.into_iter().map(RegtestChain::dust_to).collect();
        self.bns_tx(&payload, outs)
            .expect("the miner has coins: mine COINBASE_MATURITY blocks first")
    }

    /// A preorder-shaped transaction: the fee burnt at output 2, change at 1.
    fn burning_op(&mut self, payload: Vec<u8>, fee: u64) -> Transaction {
        let burn = TxOut {
            value: Amount::from_sat(fee),
            script_pubkey: burn_script(),
        };
        self.bns_tx_change_at(&payload, vec![burn], 1)
            .expect("the miner has a mature coinbase worth the fee")
    }

    pub fn namespace_preorder(&mut self, ns: &str) -> Transaction {
        let rules = self.bns_rules();
        let next = self.height() as u64 + 1;
        let mut p = b"id*".to_vec();
        let hash = hash_name_hex(ns, &hex::encode(self.miner_script()), &self.miner_addr())
            .expect("valid id");
        p.extend_from_slice(&hex::decode(hash).expect("hex"));
        p.extend_from_slice(&self.tip_consensus_hash());
        let btc = price_namespace(&rules, ns, next, Units::Btc).map_or(0, |p| sats(&p));
        if rules.has_feature(next, Feature::StacksBuyNamespaces) {
            let stx = price_namespace(&rules, ns, next, Units::Stacks).map_or(0, |p| sats(&p));
            p.extend_from_slice(&stx.to_be_bytes());
        }
        self.burning_op(p, btc.max(5_500))
    }

    pub fn namespace_reveal(&mut self, ns: &str) -> Transaction {
        let mut p = b"id&".to_vec();
        p.extend_from_slice(&52595u32.to_be_bytes());
        p.extend_from_slice(&[
            250, 4, 0x65, 0x43, 0x21, 0x11, 0x11, 0x11, 0x11, 0x11, 0xa2, 0, 1,
        ]);
        p.extend_from_slice(ns.as_bytes());
        let m = self.miner_script();
        self.op(p, vec![m])
    }

    pub fn namespace_ready(&mut self, ns: &str) -> Transaction {
        self.op([b"id!.".as_slice(), ns.as_bytes()].concat(), vec![])
    }

    pub fn name_preorder(&mut self, name: &str) -> Transaction {
        let next = self.height() as u64 + 1;
        let mut p = b"id?".to_vec();
        let hash = hash_name_hex(name, &hex::encode(self.miner_script()), &self.miner_addr())
            .expect("valid name");
        p.extend_from_slice(&hex::decode(hash).expect("hex"));
        p.extend_from_slice(&self.tip_consensus_hash());
        let engine = self.bns_state();
        let (label, ns) = name.rsplit_once('.').expect("a name has a namespace");
        let fee = engine
            .db
            .namespaces
            .get(ns)
            .map_or(5_500, |n| sats(&name_price(&engine.rules, n, label, next)));
        self.burning_op(p, fee)
    }

    /// The registration payload: the bare name until registrations may carry
    /// a zone-file hash (epoch 3), then the padded name and the hash.
    fn registration_payload(&self, name: &str, zonefile: Option<Hash160>) -> Vec<u8> {
        let next = self.height() as u64 + 1;
        let mut p = b"id:".to_vec();
        match zonefile {
            Some(z)
                if self
                    .bns_rules()
                    .has_feature(next, Feature::OpRegisterUpdate) =>
            {
                let mut padded = name.as_bytes().to_vec();
                padded.resize(37, 0);
                p.extend_from_slice(&padded);
                p.extend_from_slice(&z.0);
            }
            _ => p.extend_from_slice(name.as_bytes()),
        }
        p
    }

    /// Registers a preordered name to the miner. The zone-file hash is
    /// carried only where the epoch allows it.
    pub fn name_register(&mut self, name: &str, zonefile: Option<Hash160>) -> Transaction {
        let m = self.miner_script();
        let p = self.registration_payload(name, zonefile);
        self.op(p, vec![m])
    }

    /// A renewal: a registration-coded transaction with its fee burnt at
    /// output 3 (four outputs in all). It re-announces the current zone-file
    /// hash, or a new one where the epoch allows it.
    pub fn name_renew(&mut self, name: &str, zonefile: Option<Hash160>) -> Transaction {
        let next = self.height() as u64 + 1;
        let engine = self.bns_state();
        let (label, ns) = name.rsplit_once('.').expect("a name has a namespace");
        let fee = engine
            .db
            .namespaces
            .get(ns)
            .map_or(5_500, |n| sats(&name_price(&engine.rules, n, label, next)));
        let p = self.registration_payload(name, zonefile);
        let outs = vec![
            RegtestChain::dust_to(self.miner_script()),
            TxOut {
                value: Amount::from_sat(fee),
                script_pubkey: burn_script(),
            },
        ];
        // [OP_RETURN, owner, change, burn]: the burn must be output 3.
        self.bns_tx_change_at(&p, outs, 2)
            .expect("the miner has coins for the renewal fee")
    }

    /// Gives `name` to `to`; `keep_data` keeps its zone-file hash.
    pub fn name_transfer(&mut self, name: &str, keep_data: bool, to: ScriptBuf) -> Transaction {
        let mut p = b"id>".to_vec();
        p.push(if keep_data { b'>' } else { b'~' });
        p.extend_from_slice(&hash128(name.as_bytes()));
        p.extend_from_slice(&self.tip_consensus_hash());
        self.op(p, vec![to])
    }

    pub fn name_import(&mut self, name: &str, zonefile: Hash160) -> Transaction {
        let carrier = ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_raw_hash(
            bitcoin::hashes::hash160::Hash::from_byte_array(zonefile.0),
        ));
        let m = self.miner_script();
        self.op(
            [b"id;".as_slice(), name.as_bytes()].concat(),
            vec![m, carrier],
        )
    }

    /// Sets `name`'s zone-file hash, naming it through the tip's consensus hash.
    pub fn name_update(&mut self, name: &str, zonefile: Hash160) -> Transaction {
        let consensus = self.tip_consensus_hash();
        self.name_update_quoting(name, consensus, zonefile)
    }

    /// An update naming `name` through `consensus` (any 16 bytes: tests
    /// quote stale or unknown ones on purpose).
    pub fn name_update_quoting(
        &mut self,
        name: &str,
        consensus: [u8; 16],
        zonefile: Hash160,
    ) -> Transaction {
        let consensus = hex::encode(consensus);
        let mut p = b"id+".to_vec();
        p.extend_from_slice(&hash128(format!("{name}{consensus}").as_bytes()));
        p.extend_from_slice(&zonefile.0);
        self.op(p, vec![])
    }

    /// Matures coinbases and reveals namespace `ns` (not readied), so the
    /// miner can import names into it.
    pub fn setup_import_namespace(&mut self, ns: &str) {
        if self.height() < COINBASE_MATURITY + 1 {
            self.mine_empty(COINBASE_MATURITY + 1 - self.height());
        }
        let tx = self.namespace_preorder(ns);
        self.mine(vec![tx]);
        let tx = self.namespace_reveal(ns);
        self.mine(vec![tx]);
    }
}
