//! Reading the Merkle tree (S4) from any store: roots and proofs computed by the core's rules
//! (`trail_core::tree`) over the hashes the writers stored, each fetched in one read.

use crate::{CheckpointStore, StoreError, TreeStore};
use trail_core::Event;
use trail_core::proof::ProofFile;
use trail_core::tree::{self, ConsistencyProof, Fetched, Hash, InclusionProof, TreeError};

fn unanswerable(error: TreeError) -> StoreError {
    StoreError::NotFound(error.to_string())
}

/// Fetches the stored hashes at `indexes`.
async fn fetch<S: TreeStore + ?Sized>(store: &S, indexes: Vec<u64>) -> Result<Fetched, StoreError> {
    let hashes = store.tree_hashes(indexes.clone()).await?;
    Ok(Fetched(indexes.into_iter().zip(hashes).collect()))
}

/// How many leaves the tree has: one per event ever appended, purged or not.
async fn size<S: TreeStore + ?Sized>(store: &S) -> Result<u64, StoreError> {
    Ok(tree::size_through(store.stats().await?.head))
}

/// Refuses a size the tree has not reached.
async fn within<S: TreeStore + ?Sized>(store: &S, wanted: u64) -> Result<(), StoreError> {
    let size = size(store).await?;
    if wanted > size {
        return Err(StoreError::NotFound(format!("the tree has {size} leaves, not {wanted}")));
    }
    Ok(())
}

/// The root of the tree of `size` leaves.
pub async fn root<S: TreeStore + ?Sized>(store: &S, size: u64) -> Result<Hash, StoreError> {
    within(store, size).await?;
    let stored = fetch(store, tree::indexes_read_by(|r| tree::root(size, r))).await?;
    tree::root(size, &stored).map_err(unanswerable)
}

/// The proof that leaf `index` is in the tree of `size` leaves.
pub async fn inclusion_proof<S: TreeStore + ?Sized>(
    store: &S,
    size: u64,
    index: u64,
) -> Result<InclusionProof, StoreError> {
    within(store, size).await?;
    let stored = fetch(store, tree::indexes_read_by(|r| tree::inclusion_proof(size, index, r))).await?;
    tree::inclusion_proof(size, index, &stored).map_err(unanswerable)
}

/// The proof that the tree of `old_size` leaves is a prefix of the tree of `size`.
pub async fn consistency_proof<S: TreeStore + ?Sized>(
    store: &S,
    size: u64,
    old_size: u64,
) -> Result<ConsistencyProof, StoreError> {
    within(store, size).await?;
    let stored = fetch(store, tree::indexes_read_by(|r| tree::consistency_proof(size, old_size, r))).await?;
    tree::consistency_proof(size, old_size, &stored).map_err(unanswerable)
}

/// The offline proof for `event`: its inclusion in the tree of the newest checkpoint, which
/// carries its cosignatures. [`StoreError::NotFound`] when no checkpoint covers it yet.
pub async fn event_proof<S: CheckpointStore + ?Sized>(store: &S, event: Event) -> Result<ProofFile, StoreError> {
    let index = tree::leaf_index(event.id);
    let latest = store.latest_checkpoint().await?.filter(|c| c.size > index).ok_or_else(|| {
        StoreError::NotFound(format!(
            "no checkpoint covers event {} yet: one is signed within [checkpoints] every_seconds",
            event.id
        ))
    })?;
    let inclusion = inclusion_proof(store, latest.size, index).await?;
    let key_rotations = store.key_rotations().await?.into_iter().map(|c| c.note).collect();
    Ok(ProofFile::new(event, &inclusion, &latest.note, key_rotations))
}
