//! `VerifiedChain` against backends that lie, one way each.

use std::sync::{Arc, Mutex};

use atlas_chain::backend::*;
use atlas_chain::verify::VerifyError;
use atlas_testkit::backend::RegtestBackend;
use atlas_testkit::regtest::{COINBASE_MATURITY, RegtestChain, announced_hash};
use bitcoin::block::Header;
use bitcoin::{Network, Script, Transaction, Txid};

/// Wraps a backend and lies in one chosen way.
struct Liar {
    inner: RegtestBackend,
    lie: Lie,
}

#[derive(Clone, Copy)]
enum Lie {
    TamperedTx,
    WrongBranch,
    ForkedHeader,
}

impl ChainBackend for Liar {
    fn name(&self) -> String {
        "liar".into()
    }
    fn tip_height(&mut self) -> Result<u64, BackendError> {
        self.inner.tip_height()
    }
    fn headers(&mut self, from: u64, count: usize) -> Result<Vec<Header>, BackendError> {
        let mut h = self.inner.headers(from, count)?;
        if let (Lie::ForkedHeader, Some(first)) = (self.lie, h.first_mut()) {
            first.prev_blockhash = bitcoin::BlockHash::from_byte_array([7; 32]);
        }
        Ok(h)
    }
    fn script_history(&mut self, script: &Script) -> Result<Vec<(Txid, u64)>, BackendError> {
        self.inner.script_history(script)
    }
    fn transaction(&mut self, txid: &Txid) -> Result<Transaction, BackendError> {
        let mut tx = self.inner.transaction(txid)?;
        if let Lie::TamperedTx = self.lie {
            tx.output[0].value = bitcoin::Amount::from_sat(1);
        }
        Ok(tx)
    }
    fn merkle_proof(
        &mut self,
        txid: &Txid,
        height: u64,
    ) -> Result<(Vec<[u8; 32]>, usize), BackendError> {
        let (mut branch, pos) = self.inner.merkle_proof(txid, height)?;
        if let Lie::WrongBranch = self.lie {
            branch[0][0] ^= 1;
        }
        Ok((branch, pos))
    }
}

use bitcoin::hashes::Hash;

fn chain_with_update() -> (RegtestBackend, Txid, u64) {
    let mut chain = RegtestChain::new();
    chain.mine_empty(COINBASE_MATURITY + 1);
    let mut payload = b"id+".to_vec();
    payload.extend_from_slice(&[1; 16]);
    payload.extend_from_slice(&[2; 20]);
    let tx = chain.bns_tx(&payload, vec![]).unwrap();
    let txid = tx.compute_txid();
    chain.mine(vec![tx]);
    let height = chain.height() as u64;
    chain.mine_empty(5);
    (
        RegtestBackend {
            chain: Arc::new(Mutex::new(chain)),
        },
        txid,
        height,
    )
}

fn genesis() -> Header {
    bitcoin::constants::genesis_block(Network::Regtest).header
}

#[test]
fn an_honest_server_is_believed() {
    let (mut backend, txid, height) = chain_with_update();
    let mut v = VerifiedChain::new(Network::Regtest, genesis(), 0);
    assert_eq!(v.sync(&mut backend).unwrap(), height + 5);
    let miner = backend.chain.lock().unwrap().miner_script();
    let history = backend.script_history(&miner).unwrap();
    assert!(
        history.contains(&(txid, height)),
        "found through the sender's history"
    );
    let (tx, _) = v.verified_tx(&mut backend, &txid, height).unwrap();
    let chain = backend.chain.lock().unwrap();
    assert_eq!(announced_hash(&chain, &tx).unwrap().0, [2; 20]);
}

#[test]
fn lying_servers_are_caught() {
    let (backend, txid, height) = chain_with_update();
    for lie in [Lie::TamperedTx, Lie::WrongBranch] {
        let mut liar = Liar {
            inner: backend.clone(),
            lie,
        };
        let mut v = VerifiedChain::new(Network::Regtest, genesis(), 0);
        v.sync(&mut liar).unwrap();
        let err = v.verified_tx(&mut liar, &txid, height).unwrap_err();
        match lie {
            Lie::TamperedTx => assert!(matches!(err, BackendError::WrongTx { .. }), "{err}"),
            _ => assert!(
                matches!(
                    err,
                    BackendError::Lied {
                        source: VerifyError::Merkle { .. },
                        ..
                    }
                ),
                "{err}"
            ),
        }
    }
    let mut liar = Liar {
        inner: backend.clone(),
        lie: Lie::ForkedHeader,
    };
    let mut v = VerifiedChain::new(Network::Regtest, genesis(), 0);
    let err = v.sync(&mut liar).unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::Lied {
                source: VerifyError::Link { .. },
                ..
            }
        ),
        "{err}"
    );
    // After the liar, an honest server is used and believed.
    let mut honest = backend;
    v.sync(&mut honest).unwrap();
    assert!(v.verified_tx(&mut honest, &txid, height).is_ok());
}
