//! Scripting BNS on the regtest chain: real, signed transactions for each
//! operation, sent by the miner key (which also owns what it registers).

use bitcoin::hashes::Hash;
use bitcoin::{Network, ScriptBuf, Transaction};

use super::bns::{hash_name, hash128};
use super::follower::burn_script;
use super::regtest::{COINBASE_MATURITY, RegtestChain};
use crate::zonefile::Hash160;

/// `:` with the name zero-padded to 37 bytes and the value hash: the layout
/// registrations and renewals share.
fn registration_payload(name: &str, zonefile: Hash160) -> Vec<u8> {
    let mut p = b"id:".to_vec();
    let mut padded = name.as_bytes().to_vec();
    padded.resize(37, 0);
    p.extend_from_slice(&padded);
    p.extend_from_slice(&zonefile.0);
    p
}

impl RegtestChain {
    fn miner_addr(&self) -> String {
        bitcoin::Address::from_script(&self.miner_script(), Network::Regtest)
            .expect("p2pkh has an address")
            .to_string()
    }

    fn op(&mut self, payload: Vec<u8>, outputs: Vec<ScriptBuf>) -> Transaction {
        let outs = outputs.into_iter().map(RegtestChain::dust_to).collect();
        self.bns_tx(&payload, outs)
            .expect("the miner has coins: mine COINBASE_MATURITY blocks first")
    }

    pub fn namespace_preorder(&mut self, ns: &str) -> Transaction {
        let mut p = b"id*".to_vec();
        p.extend_from_slice(
            &hash_name(ns, self.miner_script().as_bytes(), &self.miner_addr())
                .expect("valid id")
                .0,
        );
        p.extend_from_slice(&[0; 16]);
        self.op(p, vec![burn_script()])
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
        let mut p = b"id?".to_vec();
        p.extend_from_slice(
            &hash_name(name, self.miner_script().as_bytes(), &self.miner_addr())
                .expect("valid name")
                .0,
        );
        p.extend_from_slice(&[0; 16]);
        self.op(p, vec![burn_script()])
    }

    pub fn name_register(&mut self, name: &str, zonefile: Hash160) -> Transaction {
        let m = self.miner_script();
        self.op(registration_payload(name, zonefile), vec![m])
    }

    /// A renewal: a registration-coded transaction with a burn output (four
    /// outputs in all), optionally carrying a new zone-file hash.
    pub fn name_renew(&mut self, name: &str, zonefile: Hash160) -> Transaction {
        let m = self.miner_script();
        self.op(registration_payload(name, zonefile), vec![m, burn_script()])
    }

    /// Gives `name` to `to`; `keep_data` keeps its zone-file hash.
    pub fn name_transfer(
        &mut self,
        name: &str,
        keep_data: bool,
        consensus: [u8; 16],
        to: ScriptBuf,
    ) -> Transaction {
        let mut p = b"id>".to_vec();
        p.push(if keep_data { b'>' } else { b'~' });
        p.extend_from_slice(&hash128(name.as_bytes()));
        p.extend_from_slice(&consensus);
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

    pub fn name_update(
        &mut self,
        name: &str,
        consensus: [u8; 16],
        zonefile: Hash160,
    ) -> Transaction {
        let mut p = b"id+".to_vec();
        p.extend_from_slice(&hash128(
            format!("{name}{}", hex::encode(consensus)).as_bytes(),
        ));
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
