//! Appends, the chain, reads by id, and the head watch.

use super::*;
use crate::Store;
use std::sync::Arc;
use trail_core::EventBody;
use trail_core::chain::{self, Verifier};
use trail_core::query::Filter;

pub async fn round_trip_keeps_every_field<S: Store>(store: Arc<S>) {
    let body = event(serde_json::json!({
        "time": "2026-03-29T01:30:00.123456Z", "user": "jürgen", "client": "2001:db8::7",
        "kind": "ACME.SYNC_DONE", "process": "acme-sync", "action": "sync", "name": "edge1, edge2",
        "severity": "notice", "outcome": "success", "message": "Synced 2 devices\n\tdetail ✓",
        "attributes": {"zeta": "last", "alpha": 1, "flag": true},
        "request_id": "req-1", "session_id": "sess-1", "job_id": "42", "parent_id": "41",
    }));
    let body = EventBody { submitted_by: Some("token 7 (sync) of jürgen".into()), ..body };
    let ids = store.append(vec![body.clone()]).await.unwrap();
    let stored = store.get(ids[0]).await.unwrap().expect("stored event is found");
    assert_eq!(stored.body, body);
    let keys: Vec<&String> = stored.body.attributes.keys().collect();
    assert_eq!(keys, ["zeta", "alpha", "flag"], "attribute order is kept");
    assert_eq!(stored.hash, chain::to_hex(&chain::link(&chain::GENESIS, stored.id, &body)));
}

pub async fn ids_increase_and_chain_links<S: Store>(store: Arc<S>) {
    let mut all = Vec::new();
    for i in 0..5 {
        all.extend(store.append(vec![simple("a", "n", &format!("m{i}")); 3]).await.unwrap());
    }
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    let events = store.read_after(EventId::ZERO, 100).await.unwrap();
    assert_eq!(ids(&events), all);
    let mut verifier = Verifier::new();
    for e in &events {
        verifier.check(e.id, &e.body, &chain::from_hex(&e.hash).unwrap()).unwrap();
    }
    assert_eq!(store.stats().await.unwrap().head, *all.last().unwrap());
}

pub async fn batches_keep_their_order<S: Store>(store: Arc<S>) {
    let batch: Vec<EventBody> = (0..50).map(|i| simple("a", "n", &format!("event {i}"))).collect();
    let ids = store.append(batch).await.unwrap();
    assert_eq!(ids.len(), 50);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(store.get(*id).await.unwrap().unwrap().body.message, format!("event {i}"));
    }
}

pub async fn concurrent_appends_all_land_chained<S: Store>(store: Arc<S>) {
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..10 {
                    mine.extend(store.append(vec![simple("a", "n", &format!("t{t} e{i}"))]).await.unwrap());
                }
                mine
            })
        })
        .collect();
    stored_exactly(&*store, tasks).await;
}

pub async fn read_after_is_ascending<S: Store>(store: Arc<S>) {
    let ids = store.append((0..20).map(|i| simple("a", "n", &format!("m{i}"))).collect()).await.unwrap();
    let part = store.read_after(ids[4], 5).await.unwrap();
    assert_eq!(self::ids(&part), ids[5..10].to_vec());
    assert!(store.read_after(ids[19], 5).await.unwrap().is_empty());
}

pub async fn known_users_are_listed<S: Store>(store: Arc<S>) {
    assert!(store.known_users().await.unwrap().is_empty());
    store.append(vec![simple("bob", "n", "m"), simple("alice", "n", "m"), simple("bob", "n", "m")]).await.unwrap();
    assert_eq!(store.known_users().await.unwrap(), vec!["alice".to_owned(), "bob".to_owned()]);
}

pub async fn missing_event_is_none<S: Store>(store: Arc<S>) {
    assert!(store.get(EventId::new(1)).await.unwrap().is_none());
    assert_eq!(store.stats().await.unwrap().head, EventId::ZERO);
    let page = store.search(query(Filter::all(), 100, None)).await.unwrap();
    assert!(page.events.is_empty() && page.next_cursor.is_none());
}

pub async fn head_watch_follows_commits<S: Store>(store: Arc<S>) {
    let mut head = store.watch_head();
    let before = *head.borrow_and_update();
    let ids = store.append(vec![simple("alice", "edge1", "one"), simple("alice", "edge2", "two")]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), head.changed()).await.unwrap().unwrap();
    assert_eq!(*head.borrow(), ids[1]);
    assert!(ids[1] > before);
}
