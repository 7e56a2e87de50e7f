//! S4: the Merkle tree over the events, stored by the writer with each event and kept by a purge.

use super::*;
use crate::Store;
use crate::tree as stored_tree;
use std::sync::Arc;
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
