//! The search index across its chunk boundaries: many events, every kind of filter, checked
//! against the matcher while the index lags and once it has caught up. Backends add their own
//! restarts (see SQLite's `tests/index.rs` and PostgreSQL's `tests/pg/index.rs`).

use super::*;
use crate::Store;
use std::sync::Arc;
use trail_core::query::{Filter, UserFilter};
use trail_core::time::{DateFilter, parse_time_zone};
use trail_core::{Event, EventBody, EventId, Pattern, SearchQuery};

/// The `n`th event of a varied trail: device names of three shapes, a rare name, actions common
/// and rare, messages with rare and common words and Unicode, and times wandering over three
/// months (as an import of older events would).
pub fn varied_event(n: u64) -> EventBody {
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

/// Filters of every kind over [`varied_event`]s: rare, common, absent, short, Unicode, wildcards,
/// months, and combinations.
pub fn varied_filters() -> Vec<(&'static str, Filter)> {
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
async fn every_event<S: Store + ?Sized>(store: &S) -> Vec<Event> {
    let mut all: Vec<Event> = Vec::new();
    loop {
        let after = all.last().map_or(EventId::ZERO, |e| e.id);
        let batch = store.read_after(after, 10_000).await.unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

async fn searched<S: Store + ?Sized>(store: &S, filter: &Filter, pages: usize) -> Vec<EventId> {
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

/// Every [`varied_filters`] search, four pages of 50, equals the matcher over every event.
pub async fn check_varied_filters<S: Store + ?Sized>(store: &S, stage: &str) {
    check_varied_filters_over(store, stage, 4).await;
}

/// Every [`varied_filters`] search, `pages` pages of 50, equals the matcher over every event.
pub async fn check_varied_filters_over<S: Store + ?Sized>(store: &S, stage: &str, pages: usize) {
    let all = every_event(store).await;
    for (name, filter) in varied_filters() {
        let wanted: Vec<EventId> =
            all.iter().rev().filter(|e| filter.matches(&e.body)).map(|e| e.id).take(pages * 50).collect();
        assert_eq!(searched(store, &filter, pages).await, wanted, "{stage}: {name} ({pages} pages of 50)");
    }
}

/// Appends [`varied_event`]s `range`, in requests of 5,000.
pub async fn append_varied<S: Store + ?Sized>(store: &S, range: std::ops::Range<u64>) {
    let mut start = range.start;
    while start < range.end {
        let end = (start + 5000).min(range.end);
        store.append((start..end).map(varied_event).collect()).await.unwrap();
        start = end;
    }
}

/// 70,000 events span a complete big chunk of the index and minis of the next: every filter
/// agrees with the matcher while the index lags and once it has caught up.
pub async fn the_index_agrees_with_the_matcher_across_chunks<S: Store>(store: Arc<S>) {
    append_varied(&*store, 0..70_000).await;
    check_varied_filters(&*store, "while indexing").await;
    store.catch_up_indexes().await.unwrap();
    assert_eq!(store.stats().await.unwrap().unindexed, 0);
    check_varied_filters(&*store, "indexed").await;
    append_varied(&*store, 70_000..73_000).await;
    check_varied_filters(&*store, "with a new unindexed tail").await;
}
