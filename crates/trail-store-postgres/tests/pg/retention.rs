//! S3 on PostgreSQL: a purge drops whole monthly partitions, deletes the rest of the prefix in
//! batches, and leaves a trail that verifies from the marker.

use trail_core::EventId;
use trail_core::chain::{self, Verifier};
use trail_core::{EventBody, EventInput};
use trail_store::prelude::*;
use trail_store_postgres::testing::TestSchema;

fn dated(time: &str, n: usize) -> EventBody {
    let input: EventInput = serde_json::from_value(serde_json::json!({
        "user": "alice", "kind": "DEVICE_EDITED", "name": "edge1", "message": format!("change {n}"), "time": time
    }))
    .unwrap();
    input.validate(jiff::Timestamp::now()).unwrap()
}

async fn partitions(schema: &TestSchema) -> Vec<String> {
    let (client, connection) =
        tokio_postgres::connect(&trail_store_postgres::testing::database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace \
             WHERE p.relname = 'events' AND n.nspname = $1 ORDER BY 1",
            &[&schema.name],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_drops_whole_months_then_deletes_in_batches() {
    let schema = TestSchema::new().await;
    let store = schema.store().await;
    let mut events = Vec::new();
    for (time, count) in [("2024-01-10", 300), ("2024-02-10", 300), ("2024-03-05", 150), ("2024-03-15", 150)] {
        events.extend((0..count).map(|n| dated(&format!("{time}T12:00:00Z"), n)));
    }
    // A late event from January lands in March's partition: months never go back.
    events.push(dated("2024-01-20T00:00:00Z", 900));
    events.extend((0..50).map(|n| dated("2024-04-02T00:00:00Z", 1000 + n)));
    let ids = store.append(events).await.unwrap();
    let months = ["events_2024_01", "events_2024_02", "events_2024_03", "events_2024_04"];
    assert_eq!(partitions(&schema).await, months, "one partition per month");

    // Before 2024-03-10: January and February whole, and half of March.
    let march_10 = jiff::Timestamp::from_second(1_710_028_800).unwrap();
    let report = store.purge(march_10, 64, "retention").await.unwrap();
    assert_eq!(report.purged, 750);
    let marker = report.marker.unwrap();
    let last_purged = &ids[749];
    assert_eq!(marker.through, *last_purged);
    let now = partitions(&schema).await;
    assert_eq!(&now[..2], &months[2..], "January and February were dropped whole; March was cut by rows");
    assert_eq!(now.len(), 3, "and this month's partition holds the purge's own event: {now:?}");
    assert!(store.get(*last_purged).await.unwrap().is_none() && store.get(*last_purged + 1).await.unwrap().is_some());
    let mut verifier = Verifier::after(&marker);
    for event in store.read_after(EventId::ZERO, 10_000).await.unwrap() {
        verifier.check(event.id, &event.body, &chain::from_hex(&event.hash).unwrap()).unwrap();
    }
    assert_eq!(verifier.checked(), 202, "the rest of March, the late event, April and the purge event verify");

    // Before 2024-04-03: the rest of March and all of April go as partitions.
    let april_3 = jiff::Timestamp::from_second(1_712_102_400).unwrap();
    let report = store.purge(april_3, 64, "retention").await.unwrap();
    assert_eq!(report.purged, 201);
    assert_eq!(partitions(&schema).await, now[2..], "only this month's partition is left");
    assert_eq!(store.read_after(EventId::ZERO, 10).await.unwrap().len(), 2, "the two purge events");
}
