//! The event log on a real PostgreSQL: appends, reads, the chain, and two nodes writing at once.
//! The database is `TRAIL_TEST_POSTGRES` (the test command sets it, starting a throwaway
//! cluster when no server is running), or the local server; each test works in a schema of
//! its own, dropped afterwards.

use std::sync::Arc;
use trail_core::chain::{self, Verifier};
use trail_core::{EventBody, EventInput};
use trail_store_postgres::PgLog;

fn url() -> String {
    std::env::var("TRAIL_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own, dropped when the test ends.
struct Schema {
    name: String,
}

impl Schema {
    async fn new() -> Schema {
        let name = format!("t{}_{}", std::process::id(), rand_suffix());
        let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is not reachable ({e}); ./scripts/test starts one", url()));
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await.unwrap();
        Schema { name }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside the test's runtime: a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok((client, connection)) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await {
                    tokio::spawn(connection);
                    let _ = client.batch_execute(&format!("DROP SCHEMA {name} CASCADE")).await;
                }
            });
        })
        .join();
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    hasher.finish() % 1_000_000_000
}

fn event(message: &str) -> EventBody {
    let input: EventInput = serde_json::from_value(serde_json::json!({
        "user": "alice", "kind": "DEVICE_EDITED", "name": "edge1", "message": message,
        "attributes": {"ticket": "CHG1"}, "outcome": "success", "request_id": "r1"
    }))
    .unwrap();
    input.validate(jiff::Timestamp::now()).unwrap()
}

async fn verify(log: &PgLog) -> u64 {
    let (mut verifier, mut after) = (Verifier::new(), 0);
    loop {
        let events = log.read_after(after, 1000).await.unwrap();
        let Some(last) = events.last() else { return verifier.checked() };
        after = last.id;
        for event in &events {
            verifier.check(event.id, &event.body, &chain::from_hex(&event.hash).unwrap()).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_round_trip_and_chain() {
    let schema = Schema::new().await;
    let log = PgLog::connect(&url(), Some(&schema.name)).await.unwrap();
    let ids = log.append(vec![event("one"), event("two\nlines")]).await.unwrap();
    assert_eq!(ids, vec![1, 2]);
    let stored = log.get(2).await.unwrap().unwrap();
    assert_eq!(stored.body, event("two\nlines").clone_with_time(stored.body.time));
    assert_eq!(log.head().await.unwrap(), 2);
    assert!(log.get(3).await.unwrap().is_none());
    assert_eq!(verify(&log).await, 2);
    // A second node on the same database continues the same chain.
    let other = PgLog::connect(&url(), Some(&schema.name)).await.unwrap();
    assert_eq!(other.append(vec![event("three")]).await.unwrap(), vec![3]);
    assert_eq!(verify(&log).await, 3);
}

trait WithTime {
    fn clone_with_time(self, time: jiff::Timestamp) -> EventBody;
}

impl WithTime for EventBody {
    fn clone_with_time(mut self, time: jiff::Timestamp) -> EventBody {
        self.time = time;
        self
    }
}

/// Two nodes append concurrently while a reader follows by id, as a forwarding cursor or a
/// snapshot does: ids come out contiguous, the chain verifies, and the reader never passes an
/// id it has not seen (no event commits behind a higher id already visible).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_writing_at_once_never_let_a_reader_skip() {
    let schema = Schema::new().await;
    let nodes = [
        Arc::new(PgLog::connect(&url(), Some(&schema.name)).await.unwrap()),
        Arc::new(PgLog::connect(&url(), Some(&schema.name)).await.unwrap()),
    ];
    let (writers, batches, per_batch) = (8, 40, 25);
    let reader = {
        let log = nodes[0].clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let total = (writers * batches * per_batch) as i64;
            while seen.len() < total as usize {
                let after = seen.last().copied().unwrap_or(0);
                for event in log.read_after(after, 500).await.unwrap() {
                    seen.push(event.id);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let log = nodes[writer % 2].clone();
        tasks.push(tokio::spawn(async move {
            for batch in 0..batches {
                let events = (0..per_batch).map(|n| event(&format!("w{writer} b{batch} e{n}"))).collect();
                let ids = log.append(events).await.unwrap();
                assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "a batch's ids are contiguous");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), reader).await.unwrap().unwrap();
    let total = (writers * batches * per_batch) as i64;
    assert_eq!(seen, (1..=total).collect::<Vec<_>>(), "the reader saw every id, in order, none skipped");
    assert_eq!(verify(&nodes[1]).await, total as u64);
}

/// Every node's head follows every node's commits (for forwarders and live views); users and
/// forwarding cursors are shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_see_each_others_commits_users_and_cursors() {
    let schema = Schema::new().await;
    let first = PgLog::connect(&url(), Some(&schema.name)).await.unwrap();
    let second = PgLog::connect(&url(), Some(&schema.name)).await.unwrap();
    let mut head = second.watch_head();
    assert_eq!(*head.borrow_and_update(), 0);
    let ids = first.append(vec![event("from the first node")]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), head.changed()).await.unwrap().unwrap();
    assert_eq!(*head.borrow(), ids[0], "the second node heard the first one's commit");
    let mut bob = event("bob's");
    bob.user = "bob".into();
    second.append(vec![bob]).await.unwrap();
    assert_eq!(first.known_users().await.unwrap(), ["alice", "bob"]);
    assert_eq!(first.forward_cursor("siem").await.unwrap(), None);
    first.save_forward_cursor("siem", 1).await.unwrap();
    second.save_forward_cursor("siem", 2).await.unwrap();
    assert_eq!(first.forward_cursor("siem").await.unwrap(), Some(2));
}
