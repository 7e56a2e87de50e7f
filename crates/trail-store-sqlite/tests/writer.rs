//! The writer's group commit. Plain appends run without a savepoint of their own (they cannot
//! refuse), so one that fails all the same takes its group with it: every request is still
//! stored whole or not at all, and the chain goes on from the last committed event.

use std::sync::Arc;
use trail_core::EventId;
use trail_store::conformance::varied_event;
use trail_store::prelude::*;
use trail_store_sqlite::SqliteStore;

const REQUESTS: u64 = 40;
const EVENTS: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_that_fails_stores_nothing_of_its_group_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    store.append(vec![varied_event(0)]).await.unwrap();
    // A failure no validation foresees, as a full disk would be: the database refuses a row.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.message = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        )
        .unwrap();

    // Sent together, so that the writer gathers them into groups.
    let sent = (0..REQUESTS).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut events: Vec<_> = (0..EVENTS).map(|i| varied_event(1 + n * EVENTS + i)).collect();
            if n % 10 == 3 {
                events[25].message = "poison".into();
            }
            (n, store.append(events).await)
        })
    });
    let mut stored = 1;
    for answer in sent.collect::<Vec<_>>() {
        let (n, answer) = answer.await.unwrap();
        match answer {
            Ok(ids) => {
                assert_ne!(n % 10, 3, "a poisoned request was stored");
                assert_eq!(ids.len() as u64, EVENTS);
                stored += EVENTS;
            }
            Err(error) => assert!(error.to_string().contains("nothing was stored"), "{error}"),
        }
    }

    // Whatever the groups were, the next request goes on from the last committed event.
    store.append(vec![varied_event(10_000)]).await.unwrap();
    stored += 1;

    let events = store.read_after(EventId::ZERO, 10_000).await.unwrap();
    assert_eq!(events.len() as u64, stored, "the stored events are those of the requests answered Ok");
    assert!(events.iter().all(|e| e.body.message != "poison"));
    let mut previous = trail_core::chain::GENESIS;
    for (event, expected_id) in events.iter().zip(1..) {
        assert_eq!(event.id.get(), expected_id, "ids run on without a gap");
        previous = trail_core::chain::link(&previous, event.id, &event.body);
        assert_eq!(event.hash, trail_core::chain::to_hex(&previous), "event {} is chained", event.id);
    }
}

/// The writer leaves checkpoints to a thread of its own: the WAL still reaches the database
/// file, without anyone else checkpointing (this test only looks at the file's size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_reaches_the_database_file_off_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = SqliteStore::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    for batch in 0..20u64 {
        store.append((0..1000).map(|i| varied_event(batch * 1000 + i)).collect()).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::metadata(&path).unwrap().len() < before + 4 * 1024 * 1024 {
        assert!(std::time::Instant::now() < deadline, "20,000 events never reached the database file");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The indexer and the checkpointer run below the writer, so that on few cores they take CPU
/// only when the writer and the HTTP workers leave it (Linux: a thread's nice value is its own).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_threads_yield_to_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let _store = SqliteStore::open(dir.path().join("trail.db")).unwrap();
    // Thread names as the kernel keeps them: the first 15 bytes.
    let nice = |name: &str| -> Option<i32> {
        std::fs::read_dir("/proc/self/task").unwrap().flatten().find_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            (comm.trim() == name).then_some(())?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // After the name in parentheses: state is field 3, nice field 19.
            stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok()
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let writer = nice("trail-sqlite-wr").expect("the writer thread");
        let background = [nice("trail-sqlite-in"), nice("trail-sqlite-ch")];
        if background.iter().all(|n| n.is_some_and(|n| n >= (writer + 10).min(19))) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "writer at {writer}, indexer and checkpointer at {background:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
