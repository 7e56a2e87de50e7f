//! The Merkle tree over the trail (S4), as RFC 6962 and RFC 9162 define it: the events in id
//! order are its leaves, a leaf's hash is SHA-256(0x00 ‖ the event's canonical bytes, every
//! stored field as the chain covers them), a node's SHA-256(0x01 ‖ left ‖ right). Where the chain
//! only says "this event follows that one", the tree gives a root per size that a checkpoint can
//! sign, and proofs of O(log n) hashes: that an event is in the tree of a given size
//! (inclusion), and that a tree of one size is a prefix of a larger one (consistency).
//!
//! Stored hashes follow the layout of Crosby and Wallach that Go's `sumdb/tlog` uses (two per
//! event on average; see [`first_stored_index`]), kept by the backends in rows of
//! [`LEAVES_PER_ROW`] leaves ([`row_of`]). They are derived from the events (a trail written
//! before the tree gets them from its events), but a purge keeps them: purged events cannot give
//! them again. The hashing, the layout and the proofs are `tlog_tiles`' (a port of
//! `sumdb/tlog`); the tests check them against `ct-merkle`, an independent implementation, and
//! against RFC 6962's published vectors. [`Frontier`] keeps only a tree's right edge, for roots
//! computed while walking events (verification, imports) without any storage; [`Growth`] adds
//! the row being filled, for writers, which never read the tree back.

use crate::chain;
use crate::event::{EventBody, EventId};
use sha2::{Digest, Sha256};

pub use tlog_tiles::{Error as ReaderError, HashReader, RecordProof as InclusionProof, TreeProof as ConsistencyProof};

/// A node's hash: a leaf's, an inner node's or a root's.
pub type Hash = tlog_tiles::Hash;

/// A hash from its 32 bytes, as stored.
pub fn hash_from(bytes: [u8; 32]) -> Hash {
    tlog_tiles::Hash(bytes)
}

/// A hash in base64, as checkpoints and proofs spell it.
pub fn to_base64(hash: &Hash) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hash.0)
}

/// The root of the empty tree: the hash of nothing.
pub const EMPTY_ROOT: Hash = tlog_tiles::EMPTY_HASH;

/// Why the tree could not answer, or a proof does not hold.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("the proof does not hold: the event or the tree differs from what it proves")]
    ProofFails,
    #[error("the tree cannot answer: {0}")]
    Unanswerable(String),
}

impl From<tlog_tiles::Error> for TreeError {
    fn from(error: tlog_tiles::Error) -> TreeError {
        match error {
            tlog_tiles::Error::InvalidProof => TreeError::ProofFails,
            other => TreeError::Unanswerable(other.to_string()),
        }
    }
}

/// Event `id`'s place among the leaves: ids start at 1 and leave no gaps, so it is `id - 1`.
pub fn leaf_index(id: EventId) -> u64 {
    (id.get() - 1) as u64
}

/// The size of the tree whose newest leaf is event `id`.
pub fn size_through(id: EventId) -> u64 {
    id.get() as u64
}

/// The event's canonical bytes: what its leaf hashes, and what an offline proof recomputes.
pub fn canonical_bytes(id: EventId, body: &EventBody) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(256);
    chain::canonical(id, body, &mut bytes);
    bytes
}

/// The leaf hash of any bytes (RFC 6962: SHA-256 of 0x00 and the bytes).
pub fn leaf_hash_of_bytes(bytes: &[u8]) -> Hash {
    tlog_tiles::record_hash(bytes)
}

/// The leaf hash of event `id`: [`leaf_hash_of_bytes`] of its [`canonical_bytes`], streamed.
pub fn leaf_hash(id: EventId, body: &EventBody) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    chain::canonical(id, body, &mut hasher);
    tlog_tiles::Hash(hasher.finalize().into())
}

/// Event `id`'s chain link after `previous` and its leaf hash, encoding the event once.
pub fn link_and_leaf(previous: &chain::Hash, id: EventId, body: &EventBody) -> (chain::Hash, Hash) {
    thread_local! {
        static CANONICAL: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(1024));
    }
    CANONICAL.with_borrow_mut(|bytes| {
        bytes.clear();
        chain::canonical(id, body, bytes);
        (chain::link_canonical(previous, bytes), leaf_hash_of_bytes(bytes))
    })
}

/// Where the hashes written with leaf `index` begin in the stored layout; they follow one
/// another from there.
pub fn first_stored_index(index: u64) -> u64 {
    tlog_tiles::stored_hash_index(0, index)
}

/// How many hashes a tree of `size` leaves has stored.
pub fn stored_count(size: u64) -> u64 {
    tlog_tiles::stored_hash_count(size)
}

/// The hashes to store with leaf `index` (its own, then the subtrees it completes), reading
/// at most log₂ n earlier ones from `stored`.
pub fn hashes_to_store(index: u64, leaf: Hash, stored: &impl HashReader) -> Result<Vec<Hash>, TreeError> {
    Ok(tlog_tiles::stored_hashes_for_record_hash(index, leaf, stored)?)
}

/// The root of the tree of `size` leaves.
pub fn root(size: u64, stored: &impl HashReader) -> Result<Hash, TreeError> {
    Ok(tlog_tiles::tree_hash(size, stored)?)
}

/// The proof that leaf `index` is in the tree of `size` leaves.
pub fn inclusion_proof(size: u64, index: u64, stored: &impl HashReader) -> Result<InclusionProof, TreeError> {
    Ok(tlog_tiles::prove_record(size, index, stored)?)
}

/// Whether `proof` shows the leaf `leaf` at `index` in the tree of `size` leaves with `root`.
pub fn check_inclusion(proof: &InclusionProof, size: u64, root: Hash, index: u64, leaf: Hash) -> Result<(), TreeError> {
    Ok(tlog_tiles::check_record(proof, size, root, index, leaf)?)
}

/// The proof that the tree of `old_size` leaves is a prefix of the tree of `size`.
pub fn consistency_proof(size: u64, old_size: u64, stored: &impl HashReader) -> Result<ConsistencyProof, TreeError> {
    Ok(tlog_tiles::prove_tree(size, old_size, stored)?)
}

/// Whether `proof` shows the tree of `old_size` with `old_root` to be a prefix of the tree of
/// `size` with `root`.
pub fn check_consistency(
    proof: &ConsistencyProof,
    size: u64,
    root: Hash,
    old_size: u64,
    old_root: Hash,
) -> Result<(), TreeError> {
    Ok(tlog_tiles::check_tree(proof, size, root, old_size, old_root)?)
}

fn node(left: Hash, right: Hash) -> Hash {
    tlog_tiles::node_hash(left, right)
}

/// A tree's right edge: the roots of its perfect subtrees, largest first, one per bit set in its
/// size. Enough to add leaves and to know the root at every size, in O(log n) memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frontier {
    size: u64,
    subtrees: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The right edge of the tree of `size` leaves whose hashes are `stored`: how a writer
    /// resumes without reading more than log₂ n hashes.
    pub fn resume(size: u64, stored: &impl HashReader) -> Result<Frontier, TreeError> {
        let mut indexes = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1 << level) != 0 {
                indexes.push(tlog_tiles::stored_hash_index(level, start >> level));
                start += 1 << level;
            }
        }
        let subtrees = stored.read_hashes(&indexes)?;
        Ok(Frontier { size, subtrees })
    }

    /// Adds the next leaf: every subtree it completes merges into one. Answers the hashes to
    /// store with it, in the stored layout's order ([`hashes_to_store`] without reading).
    pub fn push(&mut self, leaf: Hash) -> Vec<Hash> {
        let mut hash = leaf;
        let mut made = vec![leaf];
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.subtrees.pop().expect("a set bit has its subtree");
            hash = node(left, hash);
            made.push(hash);
            size >>= 1;
        }
        self.subtrees.push(hash);
        self.size += 1;
        made
    }

    /// The root at the current size: the subtrees folded from the smallest.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&smallest) = subtrees.next() else { return EMPTY_ROOT };
        subtrees.fold(smallest, |right, &left| node(left, right))
    }
}

/// Stored hashes held in memory, by stored index: for tests, and for small trees built whole.
#[derive(Debug, Clone, Default)]
pub struct MemoryHashes {
    hashes: Vec<Hash>,
    leaves: u64,
}

impl MemoryHashes {
    /// Adds the next leaf, storing what it completes.
    pub fn push(&mut self, leaf: Hash) -> Result<(), TreeError> {
        let hashes = hashes_to_store(self.leaves, leaf, self)?;
        self.hashes.extend(hashes);
        self.leaves += 1;
        Ok(())
    }

    pub fn leaves(&self) -> u64 {
        self.leaves
    }

    /// Every stored hash, in the layout's order.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }
}

impl HashReader for MemoryHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| self.hashes.get(i as usize).copied().ok_or(tlog_tiles::Error::IndexesNotInTree))
            .collect()
    }
}

/// Leaves whose stored hashes the backends keep in one row: a contiguous run of the stored
/// layout, so that a writer adds a row per 16 events rather than one per event.
pub const LEAVES_PER_ROW: u64 = 16;

/// Where stored hash `index` lives: its row, and its position in the row.
pub fn row_of(index: u64) -> (u64, usize) {
    let (level, n) = tlog_tiles::split_stored_hash_index(index);
    let leaf = ((n + 1) << level) - 1;
    let row = leaf / LEAVES_PER_ROW;
    (row, (index - first_stored_index(row * LEAVES_PER_ROW)) as usize)
}

/// A row's hashes as stored: 32 bytes each, in order.
pub fn row_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|hash| hash.0).collect()
}

/// The hash at `position` of a stored row, if the row reaches it.
pub fn hash_in_row(row: &[u8], position: usize) -> Option<Hash> {
    let bytes = row.get(position * 32..(position + 1) * 32)?;
    Some(tlog_tiles::Hash(bytes.try_into().ok()?))
}

/// How many leaves the rows hold when the last row, `row`, holds `hashes` hashes.
pub fn leaves_stored(row: u64, hashes: u64) -> Option<u64> {
    let total = first_stored_index(row * LEAVES_PER_ROW) + hashes;
    (row * LEAVES_PER_ROW..=(row + 1) * LEAVES_PER_ROW).find(|&leaves| stored_count(leaves) == total)
}

/// What a writer keeps of the tree: the right edge, the row being filled (with the hashes it
/// already holds), and the rows grown since they were last written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Growth {
    frontier: Frontier,
    row_hashes: Vec<Hash>,
    written: Vec<(u64, Vec<Hash>)>,
    dirty: bool,
}

/// Where a [`Growth`] stood, to go back to when what followed is rolled back.
#[derive(Debug, Clone)]
pub struct GrowthMark {
    frontier: Frontier,
    row_hashes: usize,
    written: usize,
    dirty: bool,
}

impl Growth {
    /// The tree of `size` leaves whose hashes are `stored`.
    pub fn resume(size: u64, stored: &impl HashReader) -> Result<Growth, TreeError> {
        let frontier = Frontier::resume(size, stored)?;
        let first = first_stored_index(size / LEAVES_PER_ROW * LEAVES_PER_ROW);
        let indexes: Vec<u64> = (first..stored_count(size)).collect();
        let row_hashes = if indexes.is_empty() { Vec::new() } else { stored.read_hashes(&indexes)? };
        Ok(Growth { frontier, row_hashes, written: Vec::new(), dirty: false })
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Adds the next leaf.
    pub fn push(&mut self, leaf: Hash) {
        let row = self.frontier.size() / LEAVES_PER_ROW;
        self.row_hashes.extend(self.frontier.push(leaf));
        self.dirty = true;
        if self.frontier.size().is_multiple_of(LEAVES_PER_ROW) {
            self.written.push((row, std::mem::take(&mut self.row_hashes)));
            self.dirty = false;
        }
    }

    /// The rows to write since the last [`Growth::written`], each whole: those completed, then
    /// the one being filled if it changed. Rows are written over (the one being filled grows in
    /// place).
    pub fn rows_to_write(&self) -> Vec<(u64, Vec<Hash>)> {
        let mut rows = self.written.clone();
        if self.dirty {
            rows.push((self.frontier.size() / LEAVES_PER_ROW, self.row_hashes.clone()));
        }
        rows
    }

    /// The rows to write are durable: they need not be written again.
    pub fn written(&mut self) {
        self.written.clear();
        self.dirty = false;
    }

    pub fn mark(&self) -> GrowthMark {
        GrowthMark {
            frontier: self.frontier.clone(),
            row_hashes: self.row_hashes.len(),
            written: self.written.len(),
            dirty: self.dirty,
        }
    }

    /// Goes back to `mark`, forgetting the leaves added since (with no [`Growth::written`] in
    /// between).
    pub fn roll_back_to(&mut self, mark: GrowthMark) {
        if self.written.len() > mark.written {
            // A row completed since: the one filled then is its first.
            self.row_hashes = std::mem::take(&mut self.written[mark.written].1);
            self.written.truncate(mark.written);
        }
        self.row_hashes.truncate(mark.row_hashes);
        self.frontier = mark.frontier;
        self.dirty = mark.dirty;
    }
}

/// Learns which stored hashes a computation reads, so that a store can fetch them first (its
/// reads may be asynchronous): `compute` runs on placeholders, and only the indexes count.
pub fn indexes_read_by<T>(compute: impl FnOnce(&Recorder) -> Result<T, TreeError>) -> Vec<u64> {
    let recorder = Recorder::default();
    let _ = compute(&recorder);
    recorder.indexes.into_inner()
}

/// Answers placeholders, and remembers what was asked.
#[derive(Default)]
pub struct Recorder {
    indexes: std::cell::RefCell<Vec<u64>>,
}

impl HashReader for Recorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.indexes.borrow_mut().extend_from_slice(indexes);
        Ok(vec![EMPTY_ROOT; indexes.len()])
    }
}

/// Stored hashes fetched ahead, by index.
pub struct Fetched(pub std::collections::HashMap<u64, Hash>);

impl HashReader for Fetched {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes.iter().map(|i| self.0.get(i).copied().ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
    }
}
