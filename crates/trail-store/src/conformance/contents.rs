//! E4: device contents recorded only when new or changed.

use super::*;
use crate::Store;
use std::sync::Arc;
use trail_core::chain::{self, Verifier};
use trail_core::content::{ContentKind, ContentRecord, StoredContent};

/// A content record whose event says what it was built from.
fn content(device: &str, kind: ContentKind, body: &str, time: &str) -> ContentRecord {
    let device_name = device.to_owned();
    ContentRecord {
        device: device.to_owned(),
        kind,
        content: body.to_owned(),
        time: at(time),
        on_change: Box::new(move |previous: Option<&StoredContent>| {
            let before = previous.map_or("nothing".to_owned(), |p| p.content.clone());
            simple("archiver", &device_name, &format!("Archive of {device_name} changed\nbefore: {before}"))
        }),
    }
}

pub async fn content_changes_make_events_and_repeats_do_not<S: Store>(store: Arc<S>) {
    let first = store
        .record_content(content("edge1", ContentKind::Archive, "config v1", "2026-06-01T00:00:00Z"))
        .await
        .unwrap();
    let first_id = first.event_id.expect("a first archive is an event");
    assert_eq!(store.get(first_id).await.unwrap().unwrap().body.message, "Archive of edge1 changed\nbefore: nothing");
    let same = store
        .record_content(content("edge1", ContentKind::Archive, "config v1", "2026-06-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(same.event_id, None, "an unchanged archive is no event");
    assert_eq!(same.hash, first.hash);
    let state = store.content_state("edge1", ContentKind::Archive).await.unwrap().unwrap();
    assert_eq!(
        (state.content.as_str(), state.changed_at, state.seen_at),
        ("config v1", at("2026-06-01T00:00:00Z"), at("2026-06-02T00:00:00Z"))
    );
    let changed = store
        .record_content(content("edge1", ContentKind::Archive, "config v2", "2026-06-03T00:00:00Z"))
        .await
        .unwrap();
    let event = store.get(changed.event_id.expect("a changed archive is an event")).await.unwrap().unwrap();
    assert_eq!(
        event.body.message, "Archive of edge1 changed\nbefore: config v1",
        "the event sees the previous content"
    );
    assert_ne!(changed.hash, first.hash);
    let back = store
        .record_content(content("edge1", ContentKind::Archive, "config v1", "2026-06-04T00:00:00Z"))
        .await
        .unwrap();
    assert!(back.event_id.is_some(), "going back to an older content is a change too");
    assert_eq!(back.hash, first.hash, "contents are identified by hash");
    let events = store.read_after(EventId::ZERO, 100).await.unwrap();
    assert_eq!(events.len(), 3);
    let mut verifier = Verifier::new();
    for e in &events {
        verifier.check(e.id, &e.body, &chain::from_hex(&e.hash).unwrap()).unwrap();
    }
}

pub async fn content_kinds_and_devices_are_apart<S: Store>(store: Arc<S>) {
    assert!(store.content_state("edge1", ContentKind::Archive).await.unwrap().is_none());
    for (device, kind) in
        [("edge1", ContentKind::Archive), ("edge1", ContentKind::Inventory), ("edge2", ContentKind::Archive)]
    {
        let outcome = store.record_content(content(device, kind, "same text", "2026-06-01T00:00:00Z")).await.unwrap();
        assert!(outcome.event_id.is_some(), "{device} {kind:?} starts its own history");
    }
    assert_eq!(store.content_state("edge2", ContentKind::Archive).await.unwrap().unwrap().content, "same text");
    assert!(store.content_state("edge2", ContentKind::Inventory).await.unwrap().is_none());
}

/// Requests that fail (a change event whose builder panics) while others write at the same
/// time, so that they share group commits: each failure is rolled back alone, with the chain's
/// position, and everything else lands, chained without a gap.
pub async fn a_failing_request_is_rolled_back_alone<S: Store>(store: Arc<S>) {
    let tasks: Vec<_> = (0..24)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                if t % 3 == 0 {
                    let mut broken = content(&format!("broken{t}"), ContentKind::Archive, "v1", "2026-06-01T00:00:00Z");
                    broken.on_change = Box::new(|_| panic!("a builder that fails"));
                    let refused = store.record_content(broken).await;
                    assert!(refused.is_err(), "a failing builder fails its request: {:?}", refused.map(|o| o.hash));
                    Vec::new()
                } else if t % 3 == 1 {
                    let device = format!("edge{t}");
                    let recorded = store
                        .record_content(content(&device, ContentKind::Archive, "v1", "2026-06-01T00:00:00Z"))
                        .await
                        .unwrap();
                    recorded.event_id.into_iter().collect()
                } else {
                    store.append((0..5).map(|i| simple("a", "n", &format!("t{t} e{i}"))).collect()).await.unwrap()
                }
            })
        })
        .collect();
    let acknowledged = stored_exactly(&*store, tasks).await;
    assert_eq!(
        acknowledged,
        (1..=acknowledged.len() as i64).map(EventId::new).collect::<Vec<_>>(),
        "no gap where a request failed"
    );
    for t in (0..24).step_by(3) {
        let state = store.content_state(&format!("broken{t}"), ContentKind::Archive).await.unwrap();
        assert!(state.is_none(), "a failed content record leaves no content behind");
    }
    // A baseline that exists never moves without its event: a new version whose event fails
    // leaves the old one in place, and the next good record is compared with it.
    let mut changed = content("edge1", ContentKind::Archive, "v2", "2026-06-02T00:00:00Z");
    changed.on_change = Box::new(|_| panic!("a builder that fails"));
    let head = store.stats().await.unwrap().head;
    assert!(store.record_content(changed).await.is_err());
    assert_eq!(store.stats().await.unwrap().head, head, "no event");
    let kept = store.content_state("edge1", ContentKind::Archive).await.unwrap().unwrap();
    assert_eq!(kept.content, "v1", "the baseline did not move without its event");
    let recorded =
        store.record_content(content("edge1", ContentKind::Archive, "v2", "2026-06-03T00:00:00Z")).await.unwrap();
    let event = store.get(recorded.event_id.expect("v2 differs from v1")).await.unwrap().unwrap();
    assert!(event.body.message.ends_with("before: v1"), "{}", event.body.message);
}
