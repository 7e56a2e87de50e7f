//! The search index against brute force: many events across mini and big chunk boundaries, times
//! out of order, and a restart in the middle. Every search must equal the exact filter applied
//! to every event.

use trail_core::EventId;
use trail_core::query::{Filter, UserFilter};
use trail_core::time::{DateFilter, parse_time_zone};
use trail_core::{Cursor, Event, EventBody, Pattern, SearchQuery};
use trail_store::prelude::*;
use trail_store_sqlite::SqliteStore;

fn body(n: u64) -> EventBody {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut message = format!("Device edge{} edited\nticket CHG{:05}", next(300), next(100_000));
    if next(1000) == 0 {
        message.push_str("\nincident ZULU-9931 raised");
    }
    if next(7) == 0 {
        message.push_str("\nset system ntp server 192.0.2.2");
    }
    if next(50) == 0 {
        message.push_str("\nStandort Zürich Süd, Σύνδεση");
    }
    // Times wander back and forth over three months, like an import of older events would.
    let day = 1 + next(90) as i64;
    let time =
        trail_core::time::from_micros(1_767_225_600_000_000 + day * 86_400_000_000 + next(86_400) as i64 * 1_000_000);
    let name = match next(2000) {
        0 => "rtr-ZULU-17".to_owned(),
        n => format!("{}{}", ["edge", "Zürich-", "core-"][n as usize % 3], next(300)),
    };
    let input = serde_json::json!({"time": trail_core::time::format_rfc3339(time), "user": format!("user{}", next(5)),
        "kind": "DEVICE_EDITED", "name": name, "message": message});
    let mut body = serde_json::from_value::<trail_core::EventInput>(input).unwrap().validate(time).unwrap();
    body.action = ["edit", "commit", "archive", "restore", "edit", "edit"][next(6) as usize].into();
    if next(3000) == 0 {
        body.action = "reboot".into();
    }
    body
}

fn filters() -> Vec<(&'static str, Filter)> {
    let utc = parse_time_zone("Europe/Amsterdam").unwrap();
    let month = |m: &str| Some(DateFilter::parse_month(m).unwrap().window(&utc).unwrap());
    let message = |p: &str| Some(Pattern::new(p));
    vec![
        ("rare", Filter { message: message("zulu-9931"), ..Filter::all() }),
        ("common", Filter { message: message("NTP server"), ..Filter::all() }),
        ("unicode", Filter { message: message("zürich süd"), ..Filter::all() }),
        ("greek folded", Filter { message: message("ΣΎΝΔΕΣΗ"), ..Filter::all() }),
        ("wildcards", Filter { message: message("edge12_%CHG0"), ..Filter::all() }),
        ("short", Filter { message: message("e2"), ..Filter::all() }),
        ("absent", Filter { message: message("no such text"), ..Filter::all() }),
        ("month", Filter { window: month("2026-02"), ..Filter::all() }),
        ("rare name", Filter { name: message("zulu-17"), ..Filter::all() }),
        ("one device", Filter { name: message("edge217"), ..Filter::all() }),
        ("unicode name", Filter { name: message("zürich-12_"), ..Filter::all() }),
        ("short name", Filter { name: message("e2"), ..Filter::all() }),
        ("absent name", Filter { name: message("edge9999"), ..Filter::all() }),
        ("rare action", Filter { action: message("REBOOT"), ..Filter::all() }),
        ("common action", Filter { action: message("restore"), ..Filter::all() }),
        ("absent action", Filter { action: message("delete"), ..Filter::all() }),
        ("name and action", Filter { name: message("core-4"), action: message("arch"), ..Filter::all() }),
        (
            "user month name",
            Filter {
                user: UserFilter::Only("user1".into()),
                window: month("2026-01"),
                name: message("core-2"),
                ..Filter::all()
            },
        ),
        (
            "user month text",
            Filter {
                user: UserFilter::Only("user3".into()),
                window: month("2026-03"),
                message: message("edge7"),
                ..Filter::all()
            },
        ),
    ]
}

/// Every stored event, oldest first.
async fn every_event(store: &SqliteStore) -> Vec<Event> {
    let mut all: Vec<Event> = Vec::new();
    loop {
        let after = all.last().map_or(EventId::ZERO, |e| e.id);
        let batch = store.read_after(after, 10_000).await.unwrap();
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    all
}

async fn searched(store: &SqliteStore, filter: &Filter, pages: usize) -> Vec<EventId> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..pages {
        let page = store.search(SearchQuery::new(filter.clone(), 50, cursor)).await.unwrap();
        out.extend(page.events.iter().map(|e| e.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out
}

async fn check_all(store: &SqliteStore, stage: &str) {
    let all = every_event(store).await;
    for (name, filter) in filters() {
        let wanted: Vec<EventId> =
            all.iter().rev().filter(|e| filter.matches(&e.body)).map(|e| e.id).take(200).collect();
        assert_eq!(searched(store, &filter, 4).await, wanted, "{stage}: {name} (four pages of 50)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_agrees_with_brute_force_across_chunks_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = SqliteStore::open(&path).unwrap();
    let first = 70_000u64;
    for start in (0..first).step_by(5000) {
        store.append((start..start + 5000).map(body).collect()).await.unwrap();
    }
    check_all(&store, "while indexing").await;
    store.catch_up_indexes().await.unwrap();
    assert_eq!(store.stats().await.unwrap().unindexed, 0);
    check_all(&store, "indexed").await;
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    store.append((first..first + 3000).map(body).collect()).await.unwrap();
    store.catch_up_indexes().await.unwrap();
    check_all(&store, "after a restart").await;
    assert!(dir.path().join("trail.search.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = SqliteStore::open(&path).unwrap();
    store.append((0..9000).map(body).collect()).await.unwrap();
    store.catch_up_indexes().await.unwrap();
    drop(store);
    for suffix in ["search.db", "search.db-wal", "search.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("trail.{suffix}")));
    }
    let store = SqliteStore::open(&path).unwrap();
    store.catch_up_indexes().await.unwrap();
    check_all(&store, "rebuilt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_exactly_at_a_big_chunk_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = SqliteStore::open(&path).unwrap();
    for start in (0..65_536u64).step_by(4096) {
        store.append((start..start + 4096).map(body).collect()).await.unwrap();
    }
    store.catch_up_indexes().await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    for start in (65_536..65_536 + 70_000u64).step_by(5000) {
        store.append((start..start + 5000).map(body).collect()).await.unwrap();
    }
    store.catch_up_indexes().await.unwrap();
    check_all(&store, "restarted at 65,536").await;
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    store.catch_up_indexes().await.unwrap();
    check_all(&store, "restarted again").await;
}

/// An index from before names and actions were keyed lacks their keys, and a missing key hides
/// events: a reader treats it as empty, and the server rebuilds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_of_another_version_is_not_trusted_and_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = SqliteStore::open(&path).unwrap();
    store.append((0..9000).map(body).collect()).await.unwrap();
    store.catch_up_indexes().await.unwrap();
    drop(store);
    // What version 1 held: message keys only (untagged, below 2^24 or hashed), no version row.
    let index = rusqlite::Connection::open(dir.path().join("trail.search.db")).unwrap();
    index.execute("DELETE FROM postings WHERE key >= 16777216 AND key < 2147483648", []).unwrap();
    index.execute("DELETE FROM meta WHERE name = 'version'", []).unwrap();
    drop(index);

    let reader = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(reader.stats().await.unwrap().unindexed, 9000, "the old index counts for nothing");
    check_all(&reader, "beside an old index").await;
    drop(reader);
    let store = SqliteStore::open(&path).unwrap();
    store.catch_up_indexes().await.unwrap();
    assert_eq!(store.stats().await.unwrap().unindexed, 0);
    check_all(&store, "rebuilt from an old index").await;
    drop(store);
    let index = rusqlite::Connection::open(dir.path().join("trail.search.db")).unwrap();
    let (version, name_keys): (i64, i64) = index
        .query_row(
            "SELECT (SELECT value FROM meta WHERE name = 'version'), \
             (SELECT count(*) FROM postings WHERE key >= 16777216 AND key < 2147483648)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(version, 2, "the rebuilt index says what it keys, so searches use it again");
    assert!(name_keys > 0, "the rebuilt index keys names and actions");
}
