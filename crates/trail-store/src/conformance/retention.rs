//! F4 and S3: forwarding cursors, and purges that keep the chain verifiable.

use super::*;
use crate::Store;
use std::sync::Arc;
use trail_core::chain::{self, Verifier};

pub async fn forward_cursors_move_and_stay_apart<S: Store>(store: Arc<S>) {
    assert_eq!(store.forward_cursor("siem").await.unwrap(), None, "a new destination has no cursor");
    store.save_forward_cursor("siem", EventId::ZERO).await.unwrap();
    assert_eq!(store.forward_cursor("siem").await.unwrap(), Some(EventId::ZERO));
    store.save_forward_cursor("siem", EventId::new(41)).await.unwrap();
    store.save_forward_cursor("aaa", EventId::new(7)).await.unwrap();
    assert_eq!(store.forward_cursor("siem").await.unwrap(), Some(EventId::new(41)));
    assert_eq!(store.forward_cursor("aaa").await.unwrap(), Some(EventId::new(7)));
}

pub async fn purges_remove_the_old_prefix_and_the_rest_verifies<S: Store>(store: Arc<S>) {
    let dated = |time: &str, message: &str| {
        event(serde_json::json!({"user": "alice", "kind": "DEVICE_EDITED", "message": message, "time": time}))
    };
    let stored = store
        .append(vec![
            dated("2024-01-01T00:00:00Z", "old 1"),
            dated("2024-02-01T00:00:00Z", "old 2"),
            dated("2026-01-01T00:00:00Z", "new 3"),
            dated("2024-03-01T00:00:00Z", "old but after a new one"),
            dated("2026-02-01T00:00:00Z", "new 5"),
        ])
        .await
        .unwrap();
    let second = store.get(stored[1]).await.unwrap().unwrap();
    assert_eq!(store.prune_marker().await.unwrap(), None);
    let report = store.purge(at("2025-01-01T00:00:00Z"), 1, "retention").await.unwrap();
    assert_eq!(report.purged, 2, "the prefix only: event 4 waits behind event 3");
    let marker = report.marker.unwrap();
    assert_eq!((marker.through, marker.hash), (stored[1], chain::from_hex(&second.hash).unwrap()));
    assert_eq!(store.prune_marker().await.unwrap(), Some(marker));
    assert!(store.get(stored[0]).await.unwrap().is_none() && store.get(stored[2]).await.unwrap().is_some());
    let purge = store.get(report.event_id.unwrap()).await.unwrap().unwrap();
    assert_eq!((purge.body.kind.as_str(), purge.body.user.as_str()), ("RETENTION_PURGED", "retention"));
    assert_eq!(purge.body.attributes["through"], stored[1].to_string());

    let verify = |marker| {
        let store = store.clone();
        async move {
            let mut verifier = Verifier::after(&marker);
            for event in store.read_after(EventId::ZERO, 1000).await.unwrap() {
                verifier.check(event.id, &event.body, &chain::from_hex(&event.hash).unwrap()).unwrap();
            }
            verifier.checked()
        }
    };
    assert_eq!(verify(marker).await, 4, "events 3-5 and the purge event");
    store.catch_up_indexes().await.unwrap();
    let found = store.search(query(message_filter("old "), 100, None)).await.unwrap();
    assert_eq!(ids(&found.events), vec![stored[3]], "purged events are gone from searches too");
    let again = store.purge(at("2025-01-01T00:00:00Z"), 100, "retention").await.unwrap();
    assert_eq!((again.purged, again.event_id), (0, None), "nothing more to purge, nothing recorded");

    let everything = store.purge(at("2100-01-01T00:00:00Z"), 2, "retention").await.unwrap();
    assert_eq!(everything.purged, 4);
    assert_eq!(verify(everything.marker.unwrap()).await, 1, "only the new purge event is left, and it links");
    let after = store.append(vec![simple("bob", "edge1", "after the purge")]).await.unwrap();
    assert!(after[0] > everything.event_id.unwrap(), "ids are never reused");
}

pub async fn purges_wait_for_forwarding<S: Store>(store: Arc<S>) {
    let old = || {
        event(serde_json::json!({"user": "a", "kind": "DEVICE_EDITED", "message": "m", "time": "2020-01-01T00:00:00Z"}))
    };
    let ids = store.append(vec![old(), old(), old()]).await.unwrap();
    store.save_forward_cursor("siem", ids[0]).await.unwrap();
    let report = store.purge(at("2100-01-01T00:00:00Z"), 10, "retention").await.unwrap();
    assert_eq!(report.purged, 1, "only what every destination has delivered");
    assert!(store.get(ids[1]).await.unwrap().is_some());
    store.save_forward_cursor("siem", ids[2]).await.unwrap();
    assert_eq!(store.purge(at("2100-01-01T00:00:00Z"), 10, "retention").await.unwrap().purged, 2);
}
