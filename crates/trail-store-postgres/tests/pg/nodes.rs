//! Several nodes on one database: appends from both continue one chain, a reader following by
//! id never skips an event that commits late, and every node hears every commit.

use std::sync::Arc;
use trail_core::EventId;
use trail_core::chain::{self, Verifier};
use trail_core::{EventBody, EventInput};
use trail_store::prelude::*;
use trail_store_postgres::PgStore;
use trail_store_postgres::testing::TestSchema;

fn event(message: &str) -> EventBody {
    let input: EventInput = serde_json::from_value(serde_json::json!({
        "user": "alice", "kind": "DEVICE_EDITED", "name": "edge1", "message": message,
        "attributes": {"ticket": "CHG1"}, "outcome": "success", "request_id": "r1"
    }))
    .unwrap();
    input.validate(jiff::Timestamp::now()).unwrap()
}

async fn verify(log: &PgStore) -> u64 {
    let (mut verifier, mut after) = (Verifier::new(), 0);
    loop {
        let events = log.read_after(EventId::new(after), 1000).await.unwrap();
        let Some(last) = events.last() else { return verifier.checked() };
        after = last.id.get();
        for event in &events {
            verifier.check(event.id, &event.body, &chain::from_hex(&event.hash).unwrap()).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_round_trip_and_chain() {
    let schema = TestSchema::new().await;
    let log = schema.store().await;
    let ids = log.append(vec![event("one"), event("two\nlines")]).await.unwrap();
    assert_eq!(ids, vec![EventId::new(1), EventId::new(2)]);
    let stored = log.get(EventId::new(2)).await.unwrap().unwrap();
    assert_eq!(stored.body, event("two\nlines").clone_with_time(stored.body.time));
    assert_eq!(log.stats().await.unwrap().head, EventId::new(2));
    assert!(log.get(EventId::new(3)).await.unwrap().is_none());
    assert_eq!(verify(&log).await, 2);
    // A second node on the same database continues the same chain.
    let other = schema.store().await;
    assert_eq!(other.append(vec![event("three")]).await.unwrap(), vec![EventId::new(3)]);
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
    let schema = TestSchema::new().await;
    let nodes = [Arc::new(schema.store().await), Arc::new(schema.store().await)];
    let (writers, batches, per_batch) = (8, 40, 25);
    let reader = {
        let log = nodes[0].clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let total = (writers * batches * per_batch) as i64;
            while seen.len() < total as usize {
                let after = seen.last().copied().unwrap_or(0);
                for event in log.read_after(EventId::new(after), 500).await.unwrap() {
                    seen.push(event.id.get());
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
    // Each node carries its tree from one commit to the next only while the other has not
    // appended: the stored tree is still exactly the events'.
    let mut frontier = trail_core::tree::Frontier::new();
    for event in nodes[0].read_after(EventId::ZERO, 10_000).await.unwrap() {
        let _ = frontier.push(trail_core::tree::leaf_hash(event.id, &event.body));
    }
    for node in &nodes {
        let root = trail_store::tree::root(&**node, total as u64).await.unwrap();
        assert_eq!(root, frontier.root(), "the stored tree covers both nodes' events");
    }
}

/// Every node's head follows every node's commits (for forwarders and live views); users and
/// forwarding cursors are shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_see_each_others_commits_users_and_cursors() {
    let schema = TestSchema::new().await;
    let first = schema.store().await;
    let second = schema.store().await;
    let mut head = second.watch_head();
    assert_eq!(*head.borrow_and_update(), EventId::ZERO);
    let ids = first.append(vec![event("from the first node")]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), head.changed()).await.unwrap().unwrap();
    assert_eq!(*head.borrow(), ids[0], "the second node heard the first one's commit");
    let mut bob = event("bob's");
    bob.user = "bob".into();
    second.append(vec![bob]).await.unwrap();
    assert_eq!(first.known_users().await.unwrap(), ["alice", "bob"]);
    assert_eq!(first.forward_cursor("siem").await.unwrap(), None);
    first.save_forward_cursor("siem", EventId::new(1)).await.unwrap();
    second.save_forward_cursor("siem", EventId::new(2)).await.unwrap();
    assert_eq!(first.forward_cursor("siem").await.unwrap(), Some(EventId::new(2)));
}

/// Plain appends are inserted together; one that PostgreSQL refuses (a NUL in its text, which
/// only a caller bypassing validation could send) is refused alone, and the rest of its group
/// lands, chained without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_the_database_refuses_fails_alone() {
    let schema = TestSchema::new().await;
    let log = Arc::new(schema.store().await);
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut body = event(&format!("t{t}"));
                if t % 4 == 0 {
                    body.message = "nul \0 inside".to_owned();
                    assert!(log.append(vec![body]).await.is_err(), "PostgreSQL refuses a NUL in text");
                    return Vec::new();
                }
                log.append(vec![body]).await.unwrap()
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    acknowledged.sort();
    assert_eq!(acknowledged, (1..=12).map(EventId::new).collect::<Vec<_>>(), "the refused ones leave no gap");
    assert_eq!(verify(&log).await, 12);
}

/// An account never changes without its event: when the event is refused (PostgreSQL refuses a
/// NUL in text), the change it records is rolled back with it.
#[tokio::test]
async fn an_account_change_whose_event_is_refused_is_rolled_back() {
    use trail_core::identity::{Account, AccountState, AccountWrite, PasswordHash, Username};
    let schema = TestSchema::new().await;
    let store = schema.store().await;
    let name = Username::parse("dora").unwrap();
    let dora = Account {
        username: name.clone(),
        display_name: "dora".into(),
        roles: vec!["viewer".into()],
        password: PasswordHash::from_stored("$argon2id$stand-in".into()),
        state: AccountState::default(),
        created_at: jiff::Timestamp::now(),
    };
    let mut recorded = event("dora added");
    recorded.message = "dora \0 added".to_owned();
    let refused = store.write_account(AccountWrite::Create(dora.clone()), vec![recorded]).await;
    assert!(refused.is_err(), "the event is refused");
    assert!(store.account(&name).await.unwrap().is_none(), "and the account was not created without it");
    assert_eq!(store.stats().await.unwrap().head, EventId::ZERO, "nothing was stored");
    store.write_account(AccountWrite::Create(dora), vec![event("dora added")]).await.unwrap();
    assert!(store.account(&name).await.unwrap().is_some());
}
