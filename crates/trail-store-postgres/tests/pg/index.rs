//! The search index on PostgreSQL across nodes: one node indexes at a time, another takes over
//! when it goes, and an index moved or outdated under a node is resumed from, never overwritten.
//! Searches agree with the matcher throughout (the events and filters are the conformance
//! suite's).

use trail_core::query::Filter;
use trail_core::{Pattern, SearchQuery};
use trail_store::conformance::{append_varied, check_varied_filters, check_varied_filters_over, varied_event};
use trail_store::prelude::*;
use trail_store_postgres::testing::TestSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_takes_the_index_over_and_resumes_it() {
    let schema = TestSchema::new().await;
    let first = schema.store().await;
    let second = schema.store().await;
    append_varied(&first, 0..70_000).await;
    first.catch_up_indexes().await.unwrap();
    assert_eq!(second.stats().await.unwrap().unindexed, 0, "every node sees one index");
    drop(first);
    append_varied(&second, 70_000..75_000).await;
    second.catch_up_indexes().await.unwrap();
    check_varied_filters(&second, "after the indexing node went").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_moved_or_outdated_under_the_indexer_is_resumed_from() {
    let schema = TestSchema::new().await;
    let store = schema.store().await;
    append_varied(&store, 0..20_000).await;
    store.catch_up_indexes().await.unwrap();
    // Someone else (a node that had the lease before, say) wrote an index reaching less far:
    // writing on from memory would claim chunks that are not there.
    schema
        .execute(
            "DELETE FROM search_postings WHERE level = 0 AND number > 0; \
             DELETE FROM search_chunks WHERE level = 0 AND number > 0; \
             UPDATE search_state SET indexed_through = 4096",
        )
        .await;
    append_varied(&store, 20_000..30_000).await;
    store.catch_up_indexes().await.unwrap();
    check_varied_filters(&store, "resumed after being moved back").await;
    // An index of an older version is not trusted, and is rebuilt.
    schema.execute("UPDATE search_state SET version = 1").await;
    assert_eq!(store.stats().await.unwrap().unindexed, 30_000, "an outdated index counts for nothing");
    check_varied_filters(&store, "beside an outdated index").await;
    append_varied(&store, 30_000..31_000).await;
    store.catch_up_indexes().await.unwrap();
    check_varied_filters(&store, "rebuilt").await;
}

/// The time index (BRIN) answers queries by time, as a purge's, only over summarized page
/// ranges, which inserts leave unsummarized: the indexer summarizes them as it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexer_summarizes_the_time_index_as_it_goes() {
    let schema = TestSchema::new().await;
    let store = schema.store().await;
    append_varied(&store, 0..20_000).await;
    store.catch_up_indexes().await.unwrap();
    let left: i64 = schema
        .client()
        .await
        .query_one(
            "SELECT coalesce(sum(brin_summarize_new_values(inhrelid)), 0)::bigint FROM pg_inherits \
             WHERE inhparent = 'events_by_time'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "page ranges of the time index were left unsummarized");
}

/// Four months in partitions of their own: every read names the partitions its ids lie in, and
/// each search finds, to its last page, what the matcher finds, while the index lags and once
/// it has caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_over_several_partitions_find_every_match() {
    let schema = TestSchema::new().await;
    let store = schema.store().await;
    for month in 1..=4u64 {
        let start = trail_core::time::parse_rfc3339(&format!("2026-0{month}-02T00:00:00Z")).unwrap().as_microsecond();
        let events = (0..1500)
            .map(|n| {
                let mut body = varied_event(month * 10_000 + n);
                body.time = trail_core::time::from_micros(start + n as i64 * 60_000_000);
                body
            })
            .collect();
        store.append(events).await.unwrap();
    }
    let partitions: i64 = schema
        .client()
        .await
        .query_one("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(partitions, 4, "a partition a month");
    check_varied_filters_over(&store, "while indexing", 130).await;
    store.catch_up_indexes().await.unwrap();
    check_varied_filters_over(&store, "indexed", 130).await;
}

/// A trail whose first ids are gone (purged, or imported after a marker) has a gap the indexer
/// reads past: rebuilt from nothing, the index covers every event after it, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_rebuilt_over_a_trail_whose_first_ids_are_gone() {
    let schema = TestSchema::new().await;
    let store = schema.store().await;
    append_varied(&store, 0..30_000).await;
    store.catch_up_indexes().await.unwrap();
    // The first event after the gap says what no other does, so that only the index's entry
    // for it can find it.
    schema
        .execute(
            "DELETE FROM events WHERE id <= 20000; \
             UPDATE events SET message = 'first after qzxv', message_folded = NULL WHERE id = 20001; \
             UPDATE search_state SET version = 1",
        )
        .await;
    append_varied(&store, 30_000..31_000).await;
    store.catch_up_indexes().await.unwrap();
    assert_eq!(store.stats().await.unwrap().unindexed, 0);
    let edge = Filter { message: Some(Pattern::new("qzxv")), ..Filter::all() };
    let found = store.search(SearchQuery::new(edge, 50, None)).await.unwrap();
    assert_eq!(found.events.iter().map(|e| e.id.get()).collect::<Vec<_>>(), [20_001]);
    check_varied_filters(&store, "rebuilt past a gap").await;
}
