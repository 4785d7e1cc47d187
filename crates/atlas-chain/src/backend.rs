//! Where chain data comes from, and the verification every answer goes
//! through before it is believed. A `ChainBackend` is a server we do not
//! trust (an Electrum server; the test kit has an in-process regtest chain); a
//! `VerifiedChain` keeps the headers it has checked and accepts a transaction
//! only with a merkle proof against one of them.

use bitcoin::block::Header;
use bitcoin::{Network, Script, ScriptBuf, Transaction, Txid};

use super::verify::{VerifyError, verify_headers, verify_merkle_branch};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    #[error("{server}: {message}")]
    Server { server: String, message: String },
    #[error("{server} lied: {source}")]
    Lied {
        server: String,
        #[source]
        source: VerifyError,
    },
    #[error("{server} sent transaction bytes that hash to {got}, not {want}")]
    WrongTx {
        server: String,
        want: Txid,
        got: Txid,
    },
    #[error("{server} has no block at height {height}")]
    NoBlock { server: String, height: u64 },
}

/// What a follower asks of a chain server. Blocking: Electrum clients are.
pub trait ChainBackend: Send {
    fn name(&self) -> String;
    fn tip_height(&mut self) -> Result<u64, BackendError>;
    fn headers(&mut self, from: u64, count: usize) -> Result<Vec<Header>, BackendError>;
    /// Confirmed transactions touching `script`: (txid, height), oldest first.
    fn script_history(&mut self, script: &Script) -> Result<Vec<(Txid, u64)>, BackendError>;
    fn transaction(&mut self, txid: &Txid) -> Result<Transaction, BackendError>;
    /// The merkle branch of `txid` in the block at `height`, and its position.
    fn merkle_proof(
        &mut self,
        txid: &Txid,
        height: u64,
    ) -> Result<(Vec<[u8; 32]>, usize), BackendError>;

    /// Many histories at once; servers that batch requests override these
    /// to save round trips.
    fn script_histories(
        &mut self,
        scripts: &[ScriptBuf],
    ) -> Result<Vec<Vec<(Txid, u64)>>, BackendError> {
        scripts.iter().map(|s| self.script_history(s)).collect()
    }

    fn transactions(&mut self, txids: &[Txid]) -> Result<Vec<Transaction>, BackendError> {
        txids.iter().map(|t| self.transaction(t)).collect()
    }

    fn merkle_proofs(&mut self, items: &[(Txid, u64)]) -> Result<Vec<MerkleProof>, BackendError> {
        items
            .iter()
            .map(|(t, h)| self.merkle_proof(t, *h))
            .collect()
    }
}

/// A merkle branch (internal byte order) and the transaction's position.
pub type MerkleProof = (Vec<[u8; 32]>, usize);

/// Headers checked so far, and transactions accepted only with a proof.
#[derive(Clone)]
pub struct VerifiedChain {
    network: Network,
    headers: Vec<Header>,
}

impl VerifiedChain {
    /// Starts from a trusted header (a checkpoint, or genesis) at `height`.
    pub fn new(network: Network, checkpoint: Header, height: u64) -> Self {
        let mut headers = Vec::with_capacity(height as usize + 1);
        // Heights below the checkpoint are never consulted; keep indices simple.
        headers.resize(height as usize, checkpoint);
        headers.push(checkpoint);
        VerifiedChain { network, headers }
    }

    pub fn height(&self) -> u64 {
        self.headers.len() as u64 - 1
    }

    pub fn header(&self, height: u64) -> Option<&Header> {
        self.headers.get(height as usize)
    }

    /// Fetches and checks headers up to the server's tip. A server whose
    /// chain does not link to ours (a reorg below our tip, or a lie) makes
    /// this fail; the caller resolves it by walking back.
    pub fn sync(&mut self, backend: &mut dyn ChainBackend) -> Result<u64, BackendError> {
        let tip = backend.tip_height()?;
        if tip < self.height() {
            // A server behind us: nothing new to learn from it.
            return Ok(self.height());
        }
        // Our tip must still be on the server's chain, or a replacement of
        // equal length would go unnoticed.
        let ours = self.height();
        let theirs = backend.headers(ours, 1)?;
        if theirs.first().map(|h| h.block_hash()) != self.header(ours).map(|h| h.block_hash()) {
            return Err(BackendError::Lied {
                server: backend.name(),
                source: VerifyError::Link { height: ours },
            });
        }
        while self.height() < tip {
            let from = self.height() + 1;
            let batch = backend.headers(from, 2016.min((tip - from + 1) as usize))?;
            if batch.is_empty() {
                return Err(BackendError::NoBlock {
                    server: backend.name(),
                    height: from,
                });
            }
            verify_headers(self.headers.last(), &batch, from, self.network).map_err(|source| {
                BackendError::Lied {
                    server: backend.name(),
                    source,
                }
            })?;
            self.headers.extend(batch);
        }
        Ok(self.height())
    }

    /// Appends headers read back from our own store, checked as if a server
    /// had sent them (the file may be damaged).
    pub fn extend_checked(&mut self, headers: Vec<Header>) -> Result<(), VerifyError> {
        verify_headers(
            self.headers.last(),
            &headers,
            self.height() + 1,
            self.network,
        )?;
        self.headers.extend(headers);
        Ok(())
    }

    /// Drops verified headers above `height` (after a reorg).
    pub fn truncate(&mut self, height: u64) {
        self.headers.truncate(height as usize + 1);
    }

    /// A transaction at `height`, believed only if its bytes hash to `txid`
    /// and its merkle branch leads to the verified header's merkle root.
    pub fn verified_tx(
        &self,
        backend: &mut dyn ChainBackend,
        txid: &Txid,
        height: u64,
    ) -> Result<(Transaction, usize), BackendError> {
        let mut v = self.verified_txs(backend, &[(*txid, height)])?;
        Ok(v.pop().expect("one answer per question"))
    }

    /// `verified_tx` for many, in two batched requests.
    pub fn verified_txs(
        &self,
        backend: &mut dyn ChainBackend,
        wanted: &[(Txid, u64)],
    ) -> Result<Vec<(Transaction, usize)>, BackendError> {
        let mut headers = Vec::with_capacity(wanted.len());
        for (_, height) in wanted {
            headers.push(self.header(*height).ok_or(BackendError::NoBlock {
                server: backend.name(),
                height: *height,
            })?);
        }
        let ids: Vec<Txid> = wanted.iter().map(|(t, _)| *t).collect();
        let txs = backend.transactions(&ids)?;
        let proofs = backend.merkle_proofs(wanted)?;
        if txs.len() != wanted.len() || proofs.len() != wanted.len() {
            return Err(BackendError::Server {
                server: backend.name(),
                message: format!(
                    "asked for {} transactions and proofs, got {} and {}",
                    wanted.len(),
                    txs.len(),
                    proofs.len()
                ),
            });
        }
        let mut out = Vec::with_capacity(wanted.len());
        for (((txid, _), tx), ((branch, pos), header)) in
            wanted.iter().zip(txs).zip(proofs.into_iter().zip(headers))
        {
            let got = tx.compute_txid();
            if got != *txid {
                return Err(BackendError::WrongTx {
                    server: backend.name(),
                    want: *txid,
                    got,
                });
            }
            verify_merkle_branch(*txid, &branch, pos, header.merkle_root).map_err(|source| {
                BackendError::Lied {
                    server: backend.name(),
                    source,
                }
            })?;
            out.push((tx, pos));
        }
        Ok(out)
    }
}
