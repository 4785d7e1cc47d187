//! The in-process regtest chain as a [`ChainBackend`] (tests, devnet).

use std::sync::{Arc, Mutex};

use atlas_chain::backend::{BackendError, ChainBackend};
use bitcoin::block::Header;
use bitcoin::{Script, Transaction, Txid};

use crate::regtest::RegtestChain;

/// The in-process regtest chain as a backend (tests, devnet).
#[derive(Clone)]
pub struct RegtestBackend {
    pub chain: Arc<Mutex<RegtestChain>>,
}

impl RegtestBackend {
    fn err(&self, message: impl ToString) -> BackendError {
        BackendError::Server {
            server: self.name(),
            message: message.to_string(),
        }
    }
}

impl ChainBackend for RegtestBackend {
    fn name(&self) -> String {
        "regtest".into()
    }

    fn tip_height(&mut self) -> Result<u64, BackendError> {
        Ok(self.chain.lock().expect("chain lock").height() as u64)
    }

    fn headers(&mut self, from: u64, count: usize) -> Result<Vec<Header>, BackendError> {
        let chain = self.chain.lock().expect("chain lock");
        Ok(chain
            .headers()
            .into_iter()
            .skip(from as usize)
            .take(count)
            .collect())
    }

    fn script_history(&mut self, script: &Script) -> Result<Vec<(Txid, u64)>, BackendError> {
        Ok(self
            .chain
            .lock()
            .expect("chain lock")
            .script_history(script))
    }

    fn transaction(&mut self, txid: &Txid) -> Result<Transaction, BackendError> {
        let chain = self.chain.lock().expect("chain lock");
        chain
            .find_tx(txid)
            .map(|(tx, _, _)| tx.clone())
            .ok_or_else(|| self.err(format!("no transaction {txid}")))
    }

    fn merkle_proof(
        &mut self,
        txid: &Txid,
        height: u64,
    ) -> Result<(Vec<[u8; 32]>, usize), BackendError> {
        let chain = self.chain.lock().expect("chain lock");
        if chain.block(height as usize).is_none() {
            return Err(BackendError::NoBlock {
                server: "regtest".into(),
                height,
            });
        }
        chain
            .merkle_proof(txid, height as usize)
            .ok_or_else(|| self.err(format!("{txid} is not in block {height}")))
    }
}
