//! The Merkle tree against RFC 6962's published vectors and against `ct-merkle`, an independent
//! implementation: roots, inclusion proofs and consistency proofs agree both ways, and a proof
//! fails for any other event.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::Sha256;
use trail_core::tree::{self, Frontier, Growth, Hash, MemoryHashes};
use trail_core::{EventBody, EventId, EventInput};

/// The leaves of RFC 6962's test tree (certificate-transparency's `merkle_tree_test`), and the
/// roots of its first 1..=8 leaves.
const RFC_LEAVES: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
const RFC_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn hex(hash: &Hash) -> String {
    hash.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn their_root(theirs: &MemoryBackedTree<Sha256, Vec<u8>>) -> [u8; 32] {
    theirs.root().as_bytes().as_slice().try_into().unwrap()
}

#[test]
fn the_rfc_vectors_hold() {
    let (mut stored, mut frontier) = (MemoryHashes::default(), Frontier::new());
    assert_eq!(frontier.root(), tree::EMPTY_ROOT);
    assert_eq!(
        hex(&tree::EMPTY_ROOT),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "the empty tree hashes nothing"
    );
    for (size, (leaf, expected)) in RFC_LEAVES.iter().zip(RFC_ROOTS).enumerate() {
        let leaf = tree::leaf_hash_of_bytes(&hex::decode(leaf).unwrap());
        stored.push(leaf).unwrap();
        let _ = frontier.push(leaf);
        let size = size as u64 + 1;
        assert_eq!(hex(&tree::root(size, &stored).unwrap()), expected, "stored root at {size}");
        assert_eq!(hex(&frontier.root()), expected, "frontier root at {size}");
    }
}

fn event(i: usize) -> EventBody {
    let input: EventInput = serde_json::from_value(serde_json::json!({
        "user": format!("user{}", i % 7), "kind": "DEVICE_EDITED", "name": format!("edge{i}"),
        "message": format!("change {i}\nline two"), "attributes": {"n": i}
    }))
    .unwrap();
    input.validate(jiff::Timestamp::UNIX_EPOCH).unwrap()
}

/// Events as leaves, on both sides: every root, every inclusion proof and every consistency
/// proof of the first 70 sizes agrees with ct-merkle's, each checked by the other side.
#[test]
fn roots_and_proofs_agree_with_an_independent_implementation() {
    let (mut stored, mut frontier) = (MemoryHashes::default(), Frontier::new());
    let mut theirs = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let mut roots = Vec::new();
    for i in 0..70 {
        let id = EventId::new(i as i64 + 1);
        let body = event(i);
        let leaf = tree::leaf_hash(id, &body);
        assert_eq!(leaf, tree::leaf_hash_of_bytes(&tree::canonical_bytes(id, &body)), "streamed and whole agree");
        let previous = [i as u8; 32];
        let both = tree::link_and_leaf(&previous, id, &body);
        assert_eq!(both, (trail_core::chain::link(&previous, id, &body), leaf), "encoded once, the same hashes");
        stored.push(leaf).unwrap();
        let _ = frontier.push(leaf);
        theirs.push(tree::canonical_bytes(id, &body));
        let size = i as u64 + 1;
        let root = tree::root(size, &stored).unwrap();
        assert_eq!(root.0, their_root(&theirs), "root at {size}");
        assert_eq!(frontier.root(), root, "frontier at {size}");
        roots.push(root);
    }
    let size = theirs.len();
    let their_root_hash = theirs.root();
    for index in 0..size {
        let id = EventId::new(index as i64 + 1);
        let ours = tree::inclusion_proof(size, index, &stored).unwrap();
        let bytes: Vec<u8> = ours.iter().flat_map(|h| h.0).collect();
        their_root_hash
            .verify_inclusion(
                &tree::canonical_bytes(id, &event(index as usize)),
                index,
                &InclusionProof::from_bytes(bytes),
            )
            .unwrap_or_else(|e| panic!("ct-merkle rejects our proof for leaf {index}: {e:?}"));
        let their_proof = theirs.prove_inclusion(index as usize);
        let theirs_as_ours: Vec<Hash> = their_proof.as_bytes().chunks(32).map(tlog_tiles_hash).collect();
        let leaf = tree::leaf_hash(id, &event(index as usize));
        tree::check_inclusion(&theirs_as_ours, size, roots[size as usize - 1], index, leaf).unwrap();
        let other = tree::leaf_hash(id, &event(index as usize + 1));
        assert!(
            tree::check_inclusion(&ours, size, roots[size as usize - 1], index, other).is_err(),
            "another event fails"
        );
    }
    for old_size in 1..size {
        let ours = tree::consistency_proof(size, old_size, &stored).unwrap();
        let bytes: Vec<u8> = ours.iter().flat_map(|h| h.0).collect();
        let old_root = RootHash::<Sha256>::new(roots[old_size as usize - 1].0.into(), old_size);
        their_root_hash
            .verify_consistency(&old_root, &ConsistencyProof::try_from_bytes(bytes).unwrap())
            .unwrap_or_else(|e| panic!("ct-merkle rejects our consistency proof from {old_size}: {e:?}"));
        let their_proof = theirs.prove_consistency((size - old_size) as usize);
        let theirs_as_ours: Vec<Hash> = their_proof.as_bytes().chunks(32).map(tlog_tiles_hash).collect();
        let (root, old) = (roots[size as usize - 1], roots[old_size as usize - 1]);
        tree::check_consistency(&theirs_as_ours, size, root, old_size, old).unwrap();
        let forged = roots[(old_size as usize) % (size as usize - 1)];
        if forged != old {
            assert!(tree::check_consistency(&ours, size, root, old_size, forged).is_err(), "another history fails");
        }
    }
}

fn tlog_tiles_hash(bytes: &[u8]) -> Hash {
    let mut hash = tree::EMPTY_ROOT;
    hash.0.copy_from_slice(bytes);
    hash
}

/// A writer keeps only the frontier: the hashes it stores are those the layout expects, and it
/// resumes from what is stored at any size.
#[test]
fn the_frontier_stores_what_the_layout_expects_and_resumes_from_it() {
    let (mut stored, mut frontier) = (MemoryHashes::default(), Frontier::new());
    for i in 0..300u64 {
        let leaf = tree::leaf_hash(EventId::new(i as i64 + 1), &event(i as usize));
        let expected = tree::hashes_to_store(i, leaf, &stored).unwrap();
        assert_eq!(frontier.push(leaf), expected, "the hashes stored with leaf {i}");
        stored.push(leaf).unwrap();
        assert_eq!(tree::first_stored_index(i + 1), tree::stored_count(i + 1), "leaf {i}'s hashes end the layout");
        assert_eq!(Frontier::resume(i + 1, &stored).unwrap(), frontier, "resumed at {}", i + 1);
    }
}

/// Rows as a writer writes them (16 leaves each, rewritten while filling, written at each
/// commit) make up the stored layout exactly; a rolled-back request leaves no trace in them; a
/// writer resumes from the rows at any size.
#[test]
fn rows_written_by_a_growing_tree_make_up_the_layout() {
    let mut stored = MemoryHashes::default();
    let mut growth = Growth::default();
    let mut rows: std::collections::BTreeMap<u64, Vec<Hash>> = Default::default();
    let leaf = |i: u64| tree::leaf_hash(EventId::new(i as i64 + 1), &event(i as usize));
    let mut next = 0u64;
    for request in 0..60u64 {
        let mark = growth.mark();
        let count = request % 7 + 1;
        for i in 0..count {
            growth.push(leaf(next + i));
        }
        if request % 5 == 3 {
            growth.roll_back_to(mark);
            assert_eq!(growth.size(), next, "the rolled-back leaves are gone");
            continue;
        }
        for i in 0..count {
            stored.push(leaf(next + i)).unwrap();
        }
        next += count;
        if request % 3 == 0 {
            rows.extend(growth.rows_to_write());
            growth.written();
            let flat: Vec<Hash> = rows.values().flatten().copied().collect();
            assert_eq!(flat, stored.hashes(), "the rows after {next} leaves");
            let (row, position) = tree::row_of(flat.len() as u64 - 1);
            assert_eq!((row, position + 1), (*rows.keys().last().unwrap(), rows.values().last().unwrap().len()));
            assert_eq!(tree::leaves_stored(row, position as u64 + 1), Some(next));
            let resumed = Growth::resume(next, &stored).unwrap();
            assert_eq!(resumed.root(), growth.root(), "resumed at {next}");
        }
    }
}
