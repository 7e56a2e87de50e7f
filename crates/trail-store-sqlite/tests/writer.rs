//! The writer's group commit. Plain appends run without a savepoint of their own (they cannot
//! refuse), so one that fails all the same takes its group with it: every request is still
//! stored whole or not at all, and the chain goes on from the last committed event.

use futures_util::StreamExt;
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
        // A new thread names itself when it first runs, which on a busy machine can be later.
        let writer = nice("trail-sqlite-wr");
        let background = [nice("trail-sqlite-in"), nice("trail-sqlite-ch")];
        if let Some(writer) = writer
            && background.iter().all(|n| n.is_some_and(|n| n >= (writer + 10).min(19)))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "writer at {writer:?}, indexer and checkpointer at {background:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Under steady ingest, with readers reading all the while, the WAL begins again instead of
/// growing: 600,000 events write about 195 MB of it, and it stays near its 64 MiB mark (with
/// what a checkpointer's round adds, about 90 MB here). A WAL that grows costs the writer: the
/// file system zeroes every block it appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_begins_again_under_steady_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let ingesting = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (store, ingesting) = (store.clone(), ingesting.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while ingesting.load(std::sync::atomic::Ordering::Relaxed) {
                store.read_after(EventId::ZERO, 100).await.unwrap();
                reads += 1;
            }
            reads
        })
    };
    let batches = (0..600u64).map(|batch| (0..1000).map(|i| varied_event(batch * 1000 + i)).collect::<Vec<_>>());
    let mut in_flight = futures_util::stream::iter(batches.map(|events| {
        let store = store.clone();
        async move { store.append(events).await.unwrap() }
    }))
    .buffer_unordered(4);
    while in_flight.next().await.is_some() {}
    ingesting.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0, "the reader read while the writer wrote");

    let wal = std::fs::metadata(path.with_extension("db-wal")).unwrap().len();
    assert!(wal < 128 * 1024 * 1024, "the WAL grew to {} MB", wal / 1_000_000);
}

/// The bundled SQLite is built as `.cargo/config.toml` asks: each connection with a page cache
/// of its own and no global count of memory. Built with SQLite's defaults for this crate, every
/// page fetch of every connection took one process-wide mutex, and every allocation another:
/// under batch ingest the writer spent a quarter of its time waiting for them, often behind the
/// indexer that runs below it.
#[test]
fn sqlite_is_built_without_process_wide_locks_on_pages_and_memory() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let options: Vec<String> = conn
        .prepare("PRAGMA compile_options")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
    assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
}
