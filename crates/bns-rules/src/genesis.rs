//! The STX token ledger's genesis: the initial allocations and the patches
//! the original merges into the ledger at set heights (mainnet's, from the
//! genesis block inside the PyPI `blockstack` 22.0.0.0 package), and how the
//! ledger takes them in.
//!
//! `data/stx-genesis-mainnet.bin` is derived by `tools/derive_stx_genesis.py`,
//! whose docstring specifies the format. It is embedded rather than read from
//! the crate directory: an installed binary has no crate directory, and a
//! mainnet follower without its ledger would decide token operations wrongly
//! instead of failing. Its checksum is still checked on first use, because a
//! checkout can mangle a binary file (line endings, an LFS pointer) without
//! breaking the build.
//!
//! Timing follows `virtualchain_hooks.db_save` (:483-493): after block `h`,
//! the patch for `h + 1` is merged, then `h + 1` vests, so both are visible
//! to block `h + 1`'s operations. Mainnet engines load the genesis only at
//! the first block with token features (547,922), replaying every patch and
//! vesting from the genesis block up to it: before then no check reads an
//! account, so the ledger's state cannot show.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::params::{Feature, RuleSet};
use super::state::{Account, Db};

/// A genesis token allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub address: String,
    pub token_type: String,
    pub value: i128,
    pub lock_send: u64,
    pub receive_whitelisted: bool,
    /// block -> amount vested then
    pub vesting: Vec<(u64, i128)>,
}

const MAINNET_DATA: &[u8] = include_bytes!("../data/stx-genesis-mainnet.bin");
const MAINNET_SHA256: &str = include_str!("../data/stx-genesis-mainnet.sha256");
const MAGIC: &[u8; 8] = b"STXGEN01";
/// Address kind of a verbatim string (an unspendable placeholder account).
const RAW_KIND: u8 = 0xff;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenesisError {
    #[error("token genesis checksum mismatch: expected {expected}, found {found}")]
    Checksum { expected: String, found: String },
    #[error("not a token genesis file")]
    Magic,
    #[error("malformed token genesis at byte {0}: {1}")]
    Malformed(usize, &'static str),
}

/// What the original merges into the ledger at one height: rows added, then
/// accounts deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// An added row's `receive_whitelisted` is what the merge writes
    /// (`namedb_account_info_normalize`: true for every valid address,
    /// whatever the row said), not the row's own flag.
    pub add: Vec<Allocation>,
    /// Unspendable placeholder addresses (the original refuses others).
    pub delete: Vec<String>,
}

/// A parsed token genesis. Patches stay encoded until asked for: mainnet's
/// hold 326,695 rows, needed once each.
pub struct StxGenesis {
    /// The block the allocations exist at (`FIRST_BLOCK_MAINNET`); the
    /// first vesting or patch the ledger applies is at the block after.
    pub origin_block: u64,
    pub allocations: Vec<Allocation>,
    data: Cow<'static, [u8]>,
    types: Vec<String>,
    schedules: Vec<Vec<(u64, i128)>>,
    /// Height -> offset of the patch's rows in `data`.
    patches: BTreeMap<u64, usize>,
    /// Addresses stored verbatim: the unspendable placeholder accounts.
    placeholders: BTreeSet<String>,
}

impl std::fmt::Debug for StxGenesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StxGenesis")
            .field("origin_block", &self.origin_block)
            .field("allocations", &self.allocations.len())
            .field("patches", &self.patches.len())
            .finish()
    }
}

/// The embedded mainnet genesis, checked and parsed on first call.
///
/// Panics if the embedded file is corrupt: that is a broken build, which
/// the tests catch.
pub fn mainnet() -> &'static StxGenesis {
    static MAINNET: OnceLock<StxGenesis> = OnceLock::new();
    MAINNET.get_or_init(|| {
        verify_checksum(MAINNET_DATA, MAINNET_SHA256)
            .and_then(|()| StxGenesis::parse(Cow::Borrowed(MAINNET_DATA)))
            .unwrap_or_else(|e| panic!("embedded mainnet token genesis: {e}"))
    })
}

/// Checks `data` against a `sha256sum`-style line.
pub fn verify_checksum(data: &[u8], sha256_line: &str) -> Result<(), GenesisError> {
    let expected = sha256_line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let found = hex::encode(Sha256::digest(data));
    if expected == found {
        Ok(())
    } else {
        Err(GenesisError::Checksum { expected, found })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn malformed(&self, what: &'static str) -> GenesisError {
        GenesisError::Malformed(self.pos, what)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], GenesisError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| self.malformed("truncated"))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, GenesisError> {
        Ok(self.bytes(1)?[0])
    }

    /// Unsigned LEB128.
    fn varint(&mut self) -> Result<u64, GenesisError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.malformed("varint overflow"));
            }
            out |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(self.malformed("varint overflow"))
    }

    /// A count or length, bounded by what is left so a bad file cannot make
    /// us allocate much.
    fn count(&mut self) -> Result<usize, GenesisError> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.data.len() - self.pos)
            .ok_or_else(|| self.malformed("count exceeds the file"))
    }

    fn string(&mut self) -> Result<String, GenesisError> {
        let n = self.count()?;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.malformed("string is not UTF-8"))
    }
}

/// The fields a group of rows shares.
struct GroupHead {
    token_type: String,
    value: i128,
    lock_send: u64,
    receive_whitelisted: bool,
    schedule: usize,
    kind: u8,
    count: usize,
}

impl StxGenesis {
    /// Parses a genesis file (checksum not included: see [`verify_checksum`]).
    pub fn parse(data: Cow<'static, [u8]>) -> Result<Self, GenesisError> {
        let mut placeholders = BTreeSet::new();
        let (origin_block, types, schedules, allocations, patches) = {
            let mut r = Reader {
                data: &data,
                pos: 0,
            };
            if r.bytes(MAGIC.len()).ok() != Some(&MAGIC[..]) {
                return Err(GenesisError::Magic);
            }
            let origin_block = r.varint()?;
            let types = (0..r.count()?)
                .map(|_| r.string())
                .collect::<Result<Vec<_>, _>>()?;
            let schedules = (0..r.count()?)
                .map(|_| read_schedule(&mut r))
                .collect::<Result<Vec<_>, _>>()?;
            let mut allocations = Vec::new();
            let mut raw = |a: &str| placeholders.insert(a.to_string());
            read_groups(&mut r, &types, &schedules, Some(&mut allocations), &mut raw)?;
            let mut patches = BTreeMap::new();
            for _ in 0..r.count()? {
                let height = r.varint()?;
                if height <= origin_block || patches.keys().next_back() >= Some(&height) {
                    return Err(r.malformed("patch heights out of order"));
                }
                patches.insert(height, r.pos);
                read_groups(&mut r, &types, &schedules, None, &mut raw)?;
                for _ in 0..r.count()? {
                    raw(&r.string()?);
                }
            }
            if r.pos != data.len() {
                return Err(r.malformed("trailing bytes"));
            }
            (origin_block, types, schedules, allocations, patches)
        };
        Ok(StxGenesis {
            origin_block,
            allocations,
            data,
            types,
            schedules,
            patches,
            placeholders,
        })
    }

    /// The heights with a patch, in order.
    pub fn patch_heights(&self) -> impl Iterator<Item = u64> + '_ {
        self.patches.keys().copied()
    }

    /// The patch the original merges at `height`, if any.
    pub fn patch(&self, height: u64) -> Option<Patch> {
        let at = *self.patches.get(&height)?;
        let mut r = Reader {
            data: &self.data,
            pos: at,
        };
        let patch = read_patch(&mut r, &self.types, &self.schedules);
        Some(patch.expect("patches are validated by parse"))
    }

    /// Every distinct spendable address the genesis credits (allocations and
    /// patch additions), sorted: the token accounts whose owners can send
    /// TOKEN_TRANSFERs. Unspendable placeholders are left out.
    pub fn watch_addresses(&self) -> Vec<String> {
        let rows = self
            .patch_heights()
            .flat_map(|h| self.patch(h).unwrap_or_default().add);
        let mut out: Vec<String> = (self.allocations.iter().cloned().chain(rows))
            .map(|a| a.address)
            .filter(|a| !self.placeholders.contains(a))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn read_patch(
    r: &mut Reader,
    types: &[String],
    schedules: &[Vec<(u64, i128)>],
) -> Result<Patch, GenesisError> {
    let mut patch = Patch::default();
    read_groups(r, types, schedules, Some(&mut patch.add), &mut |_| true)?;
    for _ in 0..r.count()? {
        patch.delete.push(r.string()?);
    }
    Ok(patch)
}

fn read_schedule(r: &mut Reader) -> Result<Vec<(u64, i128)>, GenesisError> {
    let mut out = Vec::new();
    let mut last: Option<u64> = None;
    for _ in 0..r.count()? {
        let gap = r.varint()?;
        let step = r.varint()?;
        let count = r.count()?;
        let amount = i128::from(r.varint()?);
        let start = match last {
            Some(l) if gap > 0 => l.checked_add(gap),
            Some(_) => None,
            None => Some(gap),
        };
        let start = start.ok_or_else(|| r.malformed("vesting heights out of order"))?;
        if count == 0 || (count > 1 && step == 0) {
            return Err(r.malformed("empty or degenerate vesting run"));
        }
        for j in 0..count as u64 {
            let h = step
                .checked_mul(j)
                .and_then(|d| start.checked_add(d))
                .ok_or_else(|| r.malformed("vesting height overflow"))?;
            out.push((h, amount));
            last = Some(h);
        }
    }
    Ok(out)
}

fn read_group_head(r: &mut Reader, types: &[String]) -> Result<GroupHead, GenesisError> {
    let ty = r.varint()?;
    let token_type = usize::try_from(ty)
        .ok()
        .and_then(|t| types.get(t))
        .ok_or_else(|| r.malformed("unknown token type"))?
        .clone();
    Ok(GroupHead {
        token_type,
        value: i128::from(r.varint()?),
        lock_send: r.varint()?,
        receive_whitelisted: match r.byte()? {
            0 => false,
            1 => true,
            _ => return Err(r.malformed("bad flags")),
        },
        schedule: usize::try_from(r.varint()?).unwrap_or(usize::MAX),
        kind: r.byte()?,
        count: r.count()?,
    })
}

/// Reads a group list, into `out` if given (else only validating), telling
/// `raw` every address stored verbatim.
fn read_groups(
    r: &mut Reader,
    types: &[String],
    schedules: &[Vec<(u64, i128)>],
    mut out: Option<&mut Vec<Allocation>>,
    raw: &mut dyn FnMut(&str) -> bool,
) -> Result<(), GenesisError> {
    for _ in 0..r.count()? {
        let head = read_group_head(r, types)?;
        let vesting = schedules
            .get(head.schedule)
            .ok_or_else(|| r.malformed("unknown vesting schedule"))?;
        for _ in 0..head.count {
            let address = if head.kind == RAW_KIND {
                let a = r.string()?;
                raw(&a);
                a
            } else {
                let hash = r.bytes(20)?;
                if out.is_none() {
                    continue;
                }
                let mut payload = [0u8; 21];
                payload[0] = head.kind;
                payload[1..].copy_from_slice(hash);
                bitcoin::base58::encode_check(&payload)
            };
            if let Some(out) = out.as_deref_mut() {
                out.push(Allocation {
                    address,
                    token_type: head.token_type.clone(),
                    value: head.value,
                    lock_send: head.lock_send,
                    receive_whitelisted: head.receive_whitelisted,
                    vesting: vesting.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Creates the genesis accounts and their vesting schedules, as
/// `namedb_create_token_genesis` (db.py:301-402) inserts them. Its
/// `GENESIS` (and the patches' `PATCH`) marker rows for the burn address are
/// left out: a check would only read them for a transfer of those token
/// types, whose sender would have to be the burn address.
pub fn allocate(db: &mut Db, allocations: &[Allocation]) {
    for a in allocations {
        db.accounts.insert(
            (a.address.clone(), a.token_type.clone()),
            Account {
                credit_value: a.value,
                debit_value: 0,
                lock_transfer_block_id: a.lock_send,
                receive_whitelisted: a.receive_whitelisted,
            },
        );
        for (block, amount) in &a.vesting {
            db.vesting.entry(*block).or_default().push((
                a.address.clone(),
                a.token_type.clone(),
                *amount,
            ));
        }
    }
}

/// Merges a patch into the ledger at `height` (before `height` vests), as
/// `namedb_patch_genesis` (db.py:982-1013) does: every added row is merged
/// into its account (created if new), then the deleted accounts go.
///
/// The original rewrites the account's whole history as if the row had been
/// in the genesis (`namedb_merge_account_at`, db.py:711-788); its latest
/// state, the only one the rules read, comes out as:
/// - credit: + the row's value + its vesting at heights below `height`:
///   each unlock before `height` gets a history row (db.py:634) and every
///   row gains the value and the unlocks up to it (db.py:751-762);
/// - debit: unchanged;
/// - lock: the larger of the account's and the row's (db.py:731-733);
/// - receive_whitelisted: the normalised flag, true for any valid address
///   (db.py:568-596, 769-779);
/// - vesting at `height` and later: added to the account's schedule
///   (db.py:782-788), to vest as usual.
pub fn apply_patch(db: &mut Db, height: u64, patch: &Patch) {
    for a in &patch.add {
        let past: i128 = a
            .vesting
            .iter()
            .filter(|(h, _)| *h < height)
            .map(|(_, v)| v)
            .sum();
        let account = db
            .accounts
            .entry((a.address.clone(), a.token_type.clone()))
            .or_insert(Account {
                credit_value: 0,
                debit_value: 0,
                lock_transfer_block_id: 0,
                receive_whitelisted: a.receive_whitelisted,
            });
        account.credit_value += a.value + past;
        account.lock_transfer_block_id = account.lock_transfer_block_id.max(a.lock_send);
        account.receive_whitelisted = a.receive_whitelisted;
        for (h, v) in a.vesting.iter().filter(|(h, _)| *h >= height) {
            db.vesting
                .entry(*h)
                .or_default()
                .push((a.address.clone(), a.token_type.clone(), *v));
        }
    }
    // `namedb_remove_account` (db.py:791-817): every token type, and the schedule.
    for gone in &patch.delete {
        db.accounts.retain(|(address, _), _| address != gone);
        for rows in db.vesting.values_mut() {
            rows.retain(|(address, _, _)| address != gone);
        }
    }
}

/// Whether a block's rules read token accounts at all.
pub fn has_token_features(rules: &RuleSet, block: u64) -> bool {
    [
        Feature::NamespacePayWithStacks,
        Feature::StacksBuyNamespaces,
        Feature::NameopsCostTokens,
        Feature::TokenTransfer,
    ]
    .into_iter()
    .any(|f| rules.has_feature(block, f))
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Mainnet,
    Given(&'static StxGenesis),
}

/// An engine's token genesis: not loaded yet, loaded (its later patches
/// still to apply), or none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokens {
    pending: Option<Source>,
    loaded: Option<&'static StxGenesis>,
}

impl Tokens {
    /// Mainnet rules carry mainnet's genesis, as the original always loads
    /// its built-in one; test rule sets bring theirs as allocations.
    pub fn for_rules(rules: &RuleSet) -> Self {
        Tokens {
            pending: (!rules.testnet).then_some(Source::Mainnet),
            loaded: None,
        }
    }

    /// A given genesis, loaded at the first block with token features.
    pub fn given(genesis: &'static StxGenesis) -> Self {
        Tokens {
            pending: Some(Source::Given(genesis)),
            loaded: None,
        }
    }

    /// The genesis in force, once loaded.
    pub fn loaded(&self) -> Option<&'static StxGenesis> {
        self.loaded
    }

    /// Before block `block`'s operations: loads the genesis if this is the
    /// first block whose rules read token accounts.
    pub fn reach(&mut self, rules: &RuleSet, db: &mut Db, block: u64) {
        if self.pending.is_some() && has_token_features(rules, block) {
            self.load(db, block);
        }
    }

    /// Loads the genesis into `db` as the original's ledger stands when block
    /// `block`'s operations run: every patch and vesting after the origin
    /// block, up to and including `block`, applied in height order.
    pub fn load(&mut self, db: &mut Db, block: u64) {
        let Some(source) = self.pending.take() else {
            return;
        };
        let genesis = match source {
            Source::Mainnet => mainnet(),
            Source::Given(g) => g,
        };
        self.loaded = Some(genesis);
        // Rows already scheduled (allocations given to the engine) have
        // vested block by block; keep them out of the catch-up.
        let scheduled = std::mem::take(&mut db.vesting);
        allocate(db, &genesis.allocations);
        let mut done = genesis.origin_block;
        while done < block {
            let next_vest = db.vesting.range(done + 1..=block).next().map(|(h, _)| *h);
            let next_patch = genesis
                .patches
                .range(done + 1..=block)
                .next()
                .map(|(h, _)| *h);
            let Some(next) = next_vest.into_iter().chain(next_patch).min() else {
                break;
            };
            self.advance(db, next);
            done = next;
        }
        for (h, rows) in scheduled {
            db.vesting.entry(h).or_default().extend(rows);
        }
    }

    /// Between blocks: `next`'s patch, then `next`'s vesting.
    pub fn advance(&self, db: &mut Db, next: u64) {
        if let Some(patch) = self.loaded.and_then(|g| g.patch(next)) {
            apply_patch(db, next, &patch);
        }
        db.vest(next);
    }
}

#[cfg(test)]
#[path = "genesis_tests.rs"]
mod tests;
