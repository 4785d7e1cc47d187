//! The Electrum backend: a `ChainBackend` over one Electrum server (crate
//! `electrum-client`, `tcp://` or `ssl://`). Nothing it returns is trusted:
//! `VerifiedChain` checks headers and merkle proofs.

use bitcoin::block::Header;
use bitcoin::{Script, Transaction, Txid};
use electrum_client::{Client, ConfigBuilder, ElectrumApi};

use super::backend::{BackendError, ChainBackend};

pub struct ElectrumBackend {
    url: String,
    client: Client,
}

impl ElectrumBackend {
    pub fn connect(url: &str, timeout: std::time::Duration) -> Result<Self, BackendError> {
        let config = ConfigBuilder::new().timeout(Some(timeout)).build();
        let client = Client::from_config(url, config).map_err(|e| BackendError::Server {
            server: url.to_string(),
            message: e.to_string(),
        })?;
        Ok(ElectrumBackend {
            url: url.to_string(),
            client,
        })
    }

    fn err(&self, e: electrum_client::Error) -> BackendError {
        BackendError::Server {
            server: self.url.clone(),
            message: e.to_string(),
        }
    }
}

impl ChainBackend for ElectrumBackend {
    fn name(&self) -> String {
        self.url.clone()
    }

    fn tip_height(&mut self) -> Result<u64, BackendError> {
        let tip = self
            .client
            .block_headers_subscribe()
            .map_err(|e| self.err(e))?;
        Ok(tip.height as u64)
    }

    fn headers(&mut self, from: u64, count: usize) -> Result<Vec<Header>, BackendError> {
        let res = self
            .client
            .block_headers(from as usize, count)
            .map_err(|e| self.err(e))?;
        Ok(res.headers)
    }

    fn script_history(&mut self, script: &Script) -> Result<Vec<(Txid, u64)>, BackendError> {
        let hist = self
            .client
            .script_get_history(script)
            .map_err(|e| self.err(e))?;
        Ok(hist
            .into_iter()
            .filter(|h| h.height > 0)
            .map(|h| (h.tx_hash, h.height as u64))
            .collect())
    }

    fn transaction(&mut self, txid: &Txid) -> Result<Transaction, BackendError> {
        self.client.transaction_get(txid).map_err(|e| self.err(e))
    }

    fn merkle_proof(
        &mut self,
        txid: &Txid,
        height: u64,
    ) -> Result<(Vec<[u8; 32]>, usize), BackendError> {
        let res = self
            .client
            .transaction_get_merkle(txid, height as usize)
            .map_err(|e| self.err(e))?;
        // Electrum sends the branch in display (byte-reversed) order.
        let branch = res
            .merkle
            .into_iter()
            .map(|mut h| {
                h.reverse();
                h
            })
            .collect();
        Ok((branch, res.pos))
    }
}
