//! The writer's group commits: a request that PostgreSQL refuses among others that it takes.

use std::sync::Arc;
use trail_core::EventId;
use trail_store::conformance::varied_event;
use trail_store::prelude::*;
use trail_store_postgres::testing::TestSchema;

/// Appends sent at once commit together; one that PostgreSQL refuses (a NUL in its text, which
/// validation at the API refuses first, so it is made here behind the API's back) fails alone,
/// whether the group's insert was guarded by a savepoint or the transaction started over: the
/// others are stored, with no gap in the ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_refused_by_postgresql_fails_alone_and_leaves_no_gap() {
    let schema = TestSchema::new().await;
    let store = Arc::new(schema.store().await);
    for round in 0..3u64 {
        let tasks: Vec<_> = (0..16u64)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut event = varied_event(round * 100 + n);
                    if n == 7 {
                        event.message.push('\0');
                    }
                    (n, store.append(vec![event]).await)
                })
            })
            .collect();
        for task in tasks {
            let (n, answer) = task.await.unwrap();
            assert_eq!(answer.is_err(), n == 7, "request {n}: {answer:?}");
        }
    }
    let stored = store.read_after(EventId::ZERO, 1000).await.unwrap();
    let ids: Vec<i64> = stored.iter().map(|e| e.id.get()).collect();
    assert_eq!(ids, (1..=45).collect::<Vec<_>>(), "every other append stored, no gap");
}
