//! Searches on replicas: a real streaming replica, made by the test from a cluster of its own
//! (`pg_basebackup -R`), takes the reads it holds enough for; pages, cursors, details and
//! exports stay whole while it lags, is stopped, or is all there is.

use std::time::Duration;
use trail_core::{Event, EventId, Filter, Pattern, SearchQuery};
use trail_store::conformance::varied_event;
use trail_store::prelude::*;
use trail_store_postgres::PgStore;
use trail_store_postgres::testing::Cluster;

async fn sql(cluster: &Cluster, statement: &str) {
    let (client, connection) = tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

async fn append(store: &PgStore, from: usize, count: usize) {
    store.append((from as u64..(from + count) as u64).map(varied_event).collect()).await.unwrap();
}

fn ids(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.id.get()).collect()
}

async fn first_page(store: &PgStore, limit: usize) -> trail_core::SearchPage<Event> {
    store.search(SearchQuery::new(Filter::all(), limit, None)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_a_replica_only_when_it_holds_what_they_need() {
    let primary = Cluster::start();
    let store = PgStore::connect(&primary.url(), None).await.unwrap();
    append(&store, 0, 200).await;
    let standby = primary.standby();
    let store = store.with_replicas(&[standby.url()], None).await.unwrap();
    standby.holds_through(200).await;

    // A replica that stops answering leaves the reads to the primary.
    standby.stop();
    assert_eq!(ids(&first_page(&store, 3).await.events), [200, 199, 198]);
    assert_eq!(store.get(EventId::new(7)).await.unwrap().map(|e| e.id.get()), Some(7));
    standby.start_again();

    // While the replica lags, every read that needs more than it holds goes to the primary.
    sql(&standby, "SELECT pg_wal_replay_pause()").await;
    append(&store, 200, 10).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(standby.chain_head().await, Some(200), "the replica is held back");
    assert!(store.get(EventId::new(205)).await.unwrap().is_some(), "details of an event the replica lacks");
    let page = first_page(&store, 5).await;
    assert_eq!(ids(&page.events), [210, 209, 208, 207, 206], "committed over a second ago, so on every page");
    let next = store.search(SearchQuery::new(Filter::all(), 5, page.next_cursor)).await.unwrap();
    assert_eq!(ids(&next.events), [205, 204, 203, 202, 201], "the cursor's page holds what the first counted");
    let after = store.read_after(EventId::new(195), 100).await.unwrap();
    assert_eq!(ids(&after), (196..=210).collect::<Vec<_>>(), "an export reads through the head it heard of");

    // Once it has caught up, the replica answers them alone: the primary is stopped.
    sql(&standby, "SELECT pg_wal_replay_resume()").await;
    standby.holds_through(210).await;
    primary.stop();
    let page = first_page(&store, 5).await;
    assert_eq!(ids(&page.events), [210, 209, 208, 207, 206]);
    let next = store.search(SearchQuery::new(Filter::all(), 5, page.next_cursor)).await.unwrap();
    assert_eq!(ids(&next.events), [205, 204, 203, 202, 201]);
    assert_eq!(store.get(EventId::new(42)).await.unwrap().map(|e| e.id.get()), Some(42));
    assert_eq!(store.read_after(EventId::new(205), 100).await.unwrap().len(), 5);
    let message = Filter { message: Some(Pattern::new("edited")), ..Filter::all() };
    let found = store.search(SearchQuery::new(message, 10, None)).await.unwrap();
    assert!(!found.events.is_empty(), "a filtered search on the replica alone");
    assert!(store.append(vec![varied_event(1)]).await.is_err(), "writes go to the primary only");
}
