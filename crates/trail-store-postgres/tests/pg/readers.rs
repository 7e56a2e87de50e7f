//! Light readers: the commands that only read (`trail search`, `show`, `tail`, `export`,
//! `verify`) connect without migrating, writing, listening or indexing.

use std::time::{Duration, Instant};
use trail_core::{EventId, Filter, SearchQuery};
use trail_store::StoreError;
use trail_store::conformance::varied_event;
use trail_store::prelude::*;
use trail_store_postgres::PgStore;
use trail_store_postgres::testing::{TestSchema, database_url};

async fn reader(schema: &TestSchema) -> Result<PgStore, StoreError> {
    PgStore::connect_read_only(&database_url(), Some(&schema.name)).await
}

async fn schema_version(schema: &TestSchema) -> i32 {
    schema.client().await.query_one("SELECT version FROM trail_schema", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_reader_finds_no_trail_where_none_was_made_and_makes_none() {
    let schema = TestSchema::new().await;
    let refused = reader(&schema).await.err().expect("there is no trail to read");
    assert!(matches!(refused, StoreError::NoTrail(_)), "{refused}");
    let tables: i64 = schema
        .client()
        .await
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = $1", &[&schema.name])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "the reader made tables");
}

#[tokio::test]
async fn a_reader_never_migrates_a_trail() {
    let schema = TestSchema::new().await;
    drop(schema.store().await);
    let current = schema_version(&schema).await;
    schema.execute("UPDATE trail_schema SET version = version - 1").await;
    let refused = reader(&schema).await.err().expect("an older schema is refused");
    assert!(refused.to_string().contains("older than this trail's") && refused.to_string().contains("trail serve"));
    assert_eq!(schema_version(&schema).await, current - 1, "the reader migrated");
}

#[tokio::test]
async fn a_reader_reads_what_writers_stored_and_neither_listens_nor_writes() {
    let schema = TestSchema::new().await;
    let writer = schema.store().await;
    let ids = writer.append((0..5).map(varied_event).collect()).await.unwrap();
    let reader = reader(&schema).await.unwrap();
    assert_eq!(*reader.watch_head().borrow(), ids[4], "the reader read the head");

    // A writing node hears another's commits; the reader does not listen, so its head stays.
    let listening = schema.store().await;
    let mut heard = listening.watch_head();
    let later = writer.append(vec![varied_event(5)]).await.unwrap()[0];
    let deadline = Instant::now() + Duration::from_secs(10);
    while *heard.borrow_and_update() < later {
        assert!(Instant::now() < deadline, "a writing node never heard another's commit");
        let _ = tokio::time::timeout(Duration::from_millis(100), heard.changed()).await;
    }
    assert_eq!(*reader.watch_head().borrow(), ids[4], "the reader listens");
    drop((writer, listening));

    assert_eq!(reader.read_after(EventId::ZERO, 10).await.unwrap().len(), 6);
    assert_eq!(reader.get(ids[2]).await.unwrap().map(|e| e.id), Some(ids[2]));
    let page = reader.search(SearchQuery::new(Filter::all(), 100, None)).await.unwrap();
    assert_eq!(page.events.len(), 6);

    let refused = reader.append(vec![varied_event(9)]).await.unwrap_err();
    assert!(refused.to_string().contains("read-only"), "{refused}");
    let refused = reader.purge(jiff::Timestamp::now(), 10, "tester").await.unwrap_err();
    assert!(refused.to_string().contains("read-only"), "{refused}");
    assert_eq!(reader.read_after(EventId::ZERO, 10).await.unwrap().len(), 6, "a refused write stored something");
}
