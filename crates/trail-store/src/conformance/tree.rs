//! S4: the Merkle tree over the events, stored by the writer with each event and kept by a purge;
//! signed checkpoints kept beside their events.

use super::*;
use crate::Store;
use crate::tree as stored_tree;
use std::sync::Arc;
use trail_core::checkpoint::{SigningKey, checkpoint_event};
use trail_core::tree::{self, Frontier};

/// The tree's roots, walked from the events as an auditor would.
async fn roots_from_events<S: Store>(store: &S) -> Vec<tree::Hash> {
    let mut frontier = Frontier::new();
    let mut roots = Vec::new();
    for event in store.read_after(EventId::ZERO, 1000).await.unwrap() {
        let _ = frontier.push(tree::leaf_hash(event.id, &event.body));
        roots.push(frontier.root());
    }
    roots
}

pub async fn the_tree_covers_every_event_and_a_purge_keeps_it<S: Store>(store: Arc<S>) {
    let dated = |time: &str, i: usize| {
        event(serde_json::json!({"user": "alice", "kind": "DEVICE_EDITED", "message": format!("m{i}"), "time": time}))
    };
    let old: Vec<_> = (0..21).map(|i| dated("2024-01-01T00:00:00Z", i)).collect();
    store.append(old).await.unwrap();
    for i in 0..4 {
        store.append((0..4).map(|j| dated("2026-01-01T00:00:00Z", 100 + i * 4 + j)).collect()).await.unwrap();
    }
    let roots = roots_from_events(&*store).await;
    let size = roots.len() as u64;
    assert_eq!(size, 37);
    for (i, expected) in roots.iter().enumerate() {
        assert_eq!(stored_tree::root(&*store, i as u64 + 1).await.unwrap(), *expected, "root at {}", i + 1);
    }
    let events = store.read_after(EventId::ZERO, 1000).await.unwrap();
    for event in events.iter().step_by(5) {
        let index = tree::leaf_index(event.id);
        let proof = stored_tree::inclusion_proof(&*store, size, index).await.unwrap();
        let leaf = tree::leaf_hash(event.id, &event.body);
        tree::check_inclusion(&proof, size, roots[36], index, leaf).unwrap();
        let mut changed = event.body.clone();
        changed.message.push('!');
        let forged = tree::leaf_hash(event.id, &changed);
        assert!(tree::check_inclusion(&proof, size, roots[36], index, forged).is_err(), "a changed event fails");
    }
    for old_size in [1, 7, 21, 30] {
        let proof = stored_tree::consistency_proof(&*store, size, old_size).await.unwrap();
        tree::check_consistency(&proof, size, roots[36], old_size, roots[old_size as usize - 1]).unwrap();
    }
    assert!(stored_tree::root(&*store, size + 1).await.is_err(), "no root past the head");

    let report = store.purge(at("2025-01-01T00:00:00Z"), 5, "retention").await.unwrap();
    assert_eq!(report.purged, 21);
    for (i, expected) in roots.iter().enumerate() {
        assert_eq!(stored_tree::root(&*store, i as u64 + 1).await.unwrap(), *expected, "after the purge, at {}", i + 1);
    }
    let grown = size + 1;
    let purge_event = store.get(report.event_id.unwrap()).await.unwrap().unwrap();
    let mut frontier = Frontier::new();
    for root_leaf in events.iter().map(|e| tree::leaf_hash(e.id, &e.body)) {
        let _ = frontier.push(root_leaf);
    }
    let _ = frontier.push(tree::leaf_hash(purge_event.id, &purge_event.body));
    assert_eq!(stored_tree::root(&*store, grown).await.unwrap(), frontier.root(), "the tree grows on after a purge");
    let proof = stored_tree::consistency_proof(&*store, grown, 7).await.unwrap();
    tree::check_consistency(&proof, grown, frontier.root(), 7, roots[6]).unwrap();
}

/// A signing key for tests (the example key of Go's `sumdb/note`).
fn test_key() -> SigningKey {
    SigningKey::parse("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap()
}

pub async fn checkpoints_are_kept_beside_their_events<S: Store>(store: Arc<S>) {
    let key = test_key();
    assert!(store.latest_checkpoint().await.unwrap().is_none());
    store.append((0..5).map(|i| simple("alice", "edge1", &format!("m{i}"))).collect()).await.unwrap();
    let sign = |size: u64, root| {
        let signed = key.sign(size, root);
        let event = checkpoint_event(&signed, key.verifier_key(), "trail", at("2026-06-15T12:00:00Z"));
        (signed, event)
    };
    let (signed, event) = sign(5, stored_tree::root(&*store, 5).await.unwrap());
    let first = store.record_checkpoint(signed.clone(), event).await.unwrap();
    assert_eq!((first.size, first.root, first.event_id), (5, signed.checkpoint.root, EventId::new(6)));
    let recorded = store.get(first.event_id).await.unwrap().unwrap();
    assert_eq!((recorded.body.kind.as_str(), recorded.body.message.as_str()), ("CHECKPOINT", signed.note.as_str()));

    store.append((0..3).map(|i| simple("alice", "edge1", &format!("n{i}"))).collect()).await.unwrap();
    let (signed, event) = sign(9, stored_tree::root(&*store, 9).await.unwrap());
    let second = store.record_checkpoint(signed, event).await.unwrap();
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(second.clone()));
    for (size, expected) in [(1, Some(&first)), (5, Some(&first)), (6, Some(&second)), (9, Some(&second)), (10, None)] {
        assert_eq!(store.checkpoint_covering(size).await.unwrap().as_ref(), expected, "covering {size}");
    }

    // A checkpoint that cannot be kept (its size is taken) leaves no CHECKPOINT event behind.
    let head = store.stats().await.unwrap().head;
    let (signed, event) = sign(9, second.root);
    assert!(store.record_checkpoint(signed, event).await.is_err());
    assert_eq!(store.stats().await.unwrap().head, head, "nothing was half written");
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(second));

    // A rotation: the checkpoint that announces the next key is found again among the others.
    assert!(store.key_rotations().await.unwrap().is_empty());
    let next = SigningKey::from_seed(key.name(), [9; 32]).unwrap();
    let handed_over = key.hand_over(&next, 10, stored_tree::root(&*store, 10).await.unwrap());
    let event = checkpoint_event(&handed_over, next.verifier_key(), "trail", at("2026-06-15T12:00:00Z"));
    let rotation = store.record_checkpoint(handed_over.clone(), event).await.unwrap();
    let (signed, event) = sign(11, stored_tree::root(&*store, 11).await.unwrap());
    store.record_checkpoint(signed, event).await.unwrap();
    assert_eq!(store.key_rotations().await.unwrap(), vec![rotation]);
}
