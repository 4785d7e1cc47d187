//! The Electrum backend: a `ChainBackend` over one Electrum server (crate
//! `electrum-client`, `tcp://` or `ssl://`). Nothing it returns is trusted:
//! `VerifiedChain` checks headers and merkle proofs.

use bitcoin::block::Header;
use bitcoin::{Script, ScriptBuf, Transaction, Txid};
use electrum_client::{Client, ConfigBuilder, ElectrumApi};

use super::backend::{BackendError, ChainBackend, MerkleProof};

/// Requests per batch: one round trip each, and small enough that a
/// server's response-size limit (ElectrumX: 1 MB by default) is not hit by
/// a batch of typical BNS transactions.
const BATCH: usize = 100;

/// Connects lazily and reconnects after any error, so a server that was down
/// at start-up or restarted is picked up again.
pub struct ElectrumBackend {
    url: String,
    timeout: std::time::Duration,
    client: Option<Client>,
}

impl ElectrumBackend {
    pub fn new(url: &str, timeout: std::time::Duration) -> Self {
        ElectrumBackend {
            url: url.to_string(),
            timeout,
            client: None,
        }
    }

    /// Connects now, to report an unreachable server at once.
    pub fn connect(url: &str, timeout: std::time::Duration) -> Result<Self, BackendError> {
        let mut b = Self::new(url, timeout);
        b.client()?;
        Ok(b)
    }

    fn client(&mut self) -> Result<&Client, BackendError> {
        if self.client.is_none() {
            let config = ConfigBuilder::new().timeout(Some(self.timeout)).build();
            let c = Client::from_config(&self.url, config).map_err(|e| BackendError::Server {
                server: self.url.clone(),
                message: e.to_string(),
            })?;
            self.client = Some(c);
        }
        Ok(self.client.as_ref().expect("just connected"))
    }

    /// Runs one call; any error drops the connection for the next try.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&Client) -> Result<T, electrum_client::Error>,
    ) -> Result<T, BackendError> {
        let result = f(self.client()?);
        result.map_err(|e| {
            self.client = None;
            BackendError::Server {
                server: self.url.clone(),
                message: e.to_string(),
            }
        })
    }
}

impl ChainBackend for ElectrumBackend {
    fn name(&self) -> String {
        self.url.clone()
    }

    fn tip_height(&mut self) -> Result<u64, BackendError> {
        Ok(self.call(|c| c.block_headers_subscribe())?.height as u64)
    }

    fn headers(&mut self, from: u64, count: usize) -> Result<Vec<Header>, BackendError> {
        Ok(self
            .call(|c| c.block_headers(from as usize, count))?
            .headers)
    }

    fn script_history(&mut self, script: &Script) -> Result<Vec<(Txid, u64)>, BackendError> {
        let hist = self.call(|c| c.script_get_history(script))?;
        Ok(hist
            .into_iter()
            .filter(|h| h.height > 0)
            .map(|h| (h.tx_hash, h.height as u64))
            .collect())
    }

    fn transaction(&mut self, txid: &Txid) -> Result<Transaction, BackendError> {
        self.call(|c| c.transaction_get(txid))
    }

    fn merkle_proof(
        &mut self,
        txid: &Txid,
        height: u64,
    ) -> Result<(Vec<[u8; 32]>, usize), BackendError> {
        let res = self.call(|c| c.transaction_get_merkle(txid, height as usize))?;
        Ok((reversed(res.merkle), res.pos))
    }

    fn script_histories(
        &mut self,
        scripts: &[ScriptBuf],
    ) -> Result<Vec<Vec<(Txid, u64)>>, BackendError> {
        let mut out = Vec::with_capacity(scripts.len());
        for chunk in scripts.chunks(BATCH) {
            let refs: Vec<&Script> = chunk.iter().map(|s| s.as_script()).collect();
            for hist in self.call(|c| c.batch_script_get_history(refs.iter().copied()))? {
                out.push(
                    hist.into_iter()
                        .filter(|h| h.height > 0)
                        .map(|h| (h.tx_hash, h.height as u64))
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    fn transactions(&mut self, txids: &[Txid]) -> Result<Vec<Transaction>, BackendError> {
        let mut out = Vec::with_capacity(txids.len());
        for chunk in txids.chunks(BATCH) {
            match self.call(|c| c.batch_transaction_get(chunk)) {
                Ok(txs) => out.extend(txs),
                // Large transactions can push a batch's answer past the
                // server's size limit: ask one by one instead.
                Err(e) => {
                    tracing::debug!("batch of transactions failed, asking singly: {e}");
                    for txid in chunk {
                        out.push(self.transaction(txid)?);
                    }
                }
            }
        }
        Ok(out)
    }

    fn merkle_proofs(&mut self, items: &[(Txid, u64)]) -> Result<Vec<MerkleProof>, BackendError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(BATCH) {
            let args: Vec<(Txid, usize)> = chunk.iter().map(|(t, h)| (*t, *h as usize)).collect();
            for res in self.call(|c| c.batch_transaction_get_merkle(&args))? {
                out.push((reversed(res.merkle), res.pos));
            }
        }
        Ok(out)
    }
}

/// Electrum sends merkle branches in display (byte-reversed) order.
fn reversed(branch: Vec<[u8; 32]>) -> Vec<[u8; 32]> {
    branch
        .into_iter()
        .map(|mut h| {
            h.reverse();
            h
        })
        .collect()
}
