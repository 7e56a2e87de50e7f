//! Search: pages, snapshots, and every filter with the exact V3 semantics.

use super::*;
use crate::Store;
use std::sync::Arc;
use trail_core::query::{DetailsReach, Filter, UserFilter};
use trail_core::time::{self, DateFilter};
use trail_core::{Cursor, EventId, Pattern};

async fn search_all<S: Store>(store: &S, filter: Filter, page: usize) -> Vec<EventId> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let result = store.search(query(filter.clone(), page, cursor)).await.unwrap();
        assert!(result.events.len() <= page);
        out.extend(ids(&result.events));
        match result.next_cursor {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

pub async fn pages_are_newest_first_and_complete<S: Store>(store: Arc<S>) {
    let appended = store.append((0..250).map(|i| simple("a", "n", &format!("m{i}"))).collect()).await.unwrap();
    let first = store.search(query(Filter::all(), 100, None)).await.unwrap();
    assert_eq!(first.events.len(), 100);
    assert_eq!(first.events[0].id, *appended.last().unwrap());
    let mut expected = appended.clone();
    expected.reverse();
    assert_eq!(search_all(&*store, Filter::all(), 100).await, expected);
    assert_eq!(search_all(&*store, Filter::all(), 7).await, expected);
    let exact = search_all(&*store, Filter::all(), 250).await;
    assert_eq!(exact, expected, "a last page that is exactly full has no next cursor after it");
}

pub async fn snapshot_hides_newer_entries_and_counts_them<S: Store>(store: Arc<S>) {
    store.append((0..30).map(|i| simple("a", "n", &format!("old {i}"))).collect()).await.unwrap();
    let first = store.search(query(Filter::all(), 10, None)).await.unwrap();
    assert_eq!(first.newer, 0);
    let newer_ids = store.append((0..4).map(|i| simple("a", "n", &format!("new {i}"))).collect()).await.unwrap();
    store.append(vec![simple("b", "n", "new for b")]).await.unwrap();
    let mut cursor = first.next_cursor;
    let mut seen = ids(&first.events);
    while let Some(c) = cursor {
        let page = store.search(query(Filter::all(), 10, Some(c))).await.unwrap();
        assert_eq!(page.newer, 5, "five entries arrived after the snapshot");
        seen.extend(ids(&page.events));
        cursor = page.next_cursor;
    }
    assert_eq!(seen.len(), 30);
    assert!(newer_ids.iter().all(|id| !seen.contains(id)), "newer entries never appear on later pages");
    let only_a = Filter { user: UserFilter::Only("a".into()), ..Filter::all() };
    let page = store.search(query(only_a, 10, first.next_cursor)).await.unwrap();
    assert_eq!(page.newer, 4, "the count of newer entries follows the filters");
}

pub async fn user_filter<S: Store>(store: Arc<S>) {
    let mut batch = Vec::new();
    for i in 0..30 {
        batch.push(simple(["alice", "bob", "carol"][i % 3], "n", "m"));
    }
    let ids = store.append(batch).await.unwrap();
    let bob = Filter { user: UserFilter::Only("bob".into()), ..Filter::all() };
    let found = search_all(&*store, bob, 4).await;
    let expected: Vec<EventId> = ids.iter().rev().copied().filter(|id| (*id - ids[0]) % 3 == 1).collect();
    assert_eq!(found, expected);
    let nobody = Filter { user: UserFilter::Only("Bob".into()), ..Filter::all() };
    assert!(search_all(&*store, nobody, 10).await.is_empty(), "user names are exact");
}

async fn filter_fixture<S: Store>(store: &S) -> Vec<EventId> {
    let events = vec![
        event(
            serde_json::json!({"user": "alice", "kind": "DEVICE_EDITED", "name": "edge1", "message": "Device edge1 edited\nmtu 1500 => 9000"}),
        ),
        event(
            serde_json::json!({"user": "alice", "kind": "DEVICE_DELETED", "name": "EDGE2", "message": "Device EDGE2 deleted"}),
        ),
        event(
            serde_json::json!({"user": "bob", "kind": "CONFIG_COMMITTED", "name": "core1", "message": "Commit to core1\nset system ntp server 192.0.2.2\ncomment: 100% done"}),
        ),
        event(
            serde_json::json!({"user": "bob", "kind": "USER_ADDED", "name": "Jürgen", "message": "User JÜRGEN added\nrole: operator"}),
        ),
        event(
            serde_json::json!({"user": "carol", "kind": "OBJECT_UPDATED", "name": "site_a", "message": "Updated site (sites)\nKeys: code = A_1\n\nname:\n    x => y"}),
        ),
        event(
            serde_json::json!({"user": "carol", "kind": "OBJECT_UPDATED", "name": "siteXa", "message": "path C:\\temp\\x and 100 percent; ' OR 1=1 --"}),
        ),
    ];
    store.append(events).await.unwrap()
}

async fn assert_matches<S: Store>(store: &S, filter: Filter, expected: &[usize], ids: &[EventId], what: &str) {
    let mut wanted: Vec<EventId> = expected.iter().map(|&i| ids[i]).collect();
    wanted.sort_by(|a, b| b.cmp(a));
    assert_eq!(search_all(store, filter, 2).await, wanted, "{what}");
}

pub async fn action_name_and_message_filters<S: Store>(store: Arc<S>) {
    let ids = filter_fixture(&*store).await;
    let action = |p: &str| Filter { action: Some(Pattern::new(p)), ..Filter::all() };
    let name = |p: &str| Filter { name: Some(Pattern::new(p)), ..Filter::all() };
    assert_matches(&*store, action("UPDATE"), &[0, 4, 5], &ids, "action is a case-insensitive substring").await;
    assert_matches(&*store, action("del%"), &[1], &ids, "% wildcard").await;
    assert_matches(&*store, name("edge"), &[0, 1], &ids, "name ignores case").await;
    assert_matches(&*store, name("site_a"), &[4, 5], &ids, "_ matches one character").await;
    assert_matches(&*store, name(r"site\_a"), &[4], &ids, "backslash makes _ literal").await;
    assert_matches(&*store, name("jürgen"), &[3], &ids, "unicode case folding").await;
    assert_matches(&*store, message_filter("jürgen"), &[3], &ids, "unicode in messages").await;
    assert_matches(&*store, message_filter("9000"), &[0], &ids, "lines after line 1 are searched").await;
    assert_matches(&*store, message_filter("ntp server 192"), &[2], &ids, "the whole message").await;
    assert_matches(&*store, message_filter(r"100\%"), &[2], &ids, "escaped %").await;
    assert_matches(&*store, message_filter("100%done"), &[2], &ids, "% spans characters").await;
    assert_matches(&*store, message_filter(r"C:\temp"), &[5], &ids, "a lone backslash is literal").await;
    assert_matches(&*store, message_filter("' OR 1=1 --"), &[5], &ids, "SQL look-alikes are text").await;
    assert_matches(&*store, message_filter(".*"), &[], &ids, "regex look-alikes are text").await;
    assert_matches(&*store, message_filter("code = A_1%x => y"), &[4], &ids, "wildcards across lines").await;
}

/// Each search is compared with the matcher run over the stored events, before the index has
/// the events (a backend that indexes in the background reports them unindexed then) and after:
/// message, name and action filters, alone and together.
pub async fn text_filters_agree_before_and_after_indexing<S: Store>(store: Arc<S>) {
    let ids = filter_fixture(&*store).await;
    let stored = store.read_after(EventId::ZERO, 100).await.unwrap();
    let pattern = |p: &str| Some(Pattern::new(p));
    let mut filters: Vec<Filter> = ["edge", "ntp server", "jürgen", "percent; '", "Updated%sites", "xyz-none"]
        .into_iter()
        .map(message_filter)
        .collect();
    for p in ["edge", "EDGE2", "jürgen", "site_a", "ite%a", "core1", "xyz-none"] {
        filters.push(Filter { name: pattern(p), ..Filter::all() });
    }
    for p in ["update", "DELETE", "comm%", "xyz-none"] {
        filters.push(Filter { action: pattern(p), ..Filter::all() });
    }
    filters.push(Filter { name: pattern("site"), action: pattern("update"), ..Filter::all() });
    filters.push(Filter { name: pattern("edge"), message: pattern("deleted"), ..Filter::all() });
    // A name's text in another field proposes nothing: "edge1" is also in a message.
    filters.push(Filter { action: pattern("edge1"), ..Filter::all() });
    let matcher = |filter: &Filter| -> Vec<EventId> {
        stored.iter().rev().filter(|e| filter.matches(&e.body)).map(|e| e.id).collect()
    };
    let lag = store.stats().await.unwrap().unindexed;
    for filter in &filters {
        let found = search_all(&*store, filter.clone(), 3).await;
        assert_eq!(found, matcher(filter), "{filter:?}, with {lag} events unindexed");
    }
    store.catch_up_indexes().await.unwrap();
    assert_eq!(store.stats().await.unwrap().unindexed, 0);
    for filter in &filters {
        assert_eq!(search_all(&*store, filter.clone(), 3).await, matcher(filter), "{filter:?}, indexed");
    }
    assert_eq!(matcher(&message_filter("edge")), vec![ids[1], ids[0]]);
    assert_eq!(matcher(&Filter { name: pattern("site"), ..Filter::all() }), vec![ids[5], ids[4]]);
    // New events after indexing are found through the unindexed tail, newest first.
    let newest = store.append(vec![simple("a", "edge9", "Device edge9 edited")]).await.unwrap();
    assert_eq!(search_all(&*store, message_filter("EDGE"), 2).await, vec![newest[0], ids[1], ids[0]]);
    let by_name = Filter { name: pattern("EDGE"), ..Filter::all() };
    assert_eq!(search_all(&*store, by_name, 2).await, vec![newest[0], ids[1], ids[0]]);
}

pub async fn short_patterns_scan<S: Store>(store: Arc<S>) {
    let ids = filter_fixture(&*store).await;
    store.catch_up_indexes().await.unwrap();
    assert_matches(&*store, message_filter("ü"), &[3], &ids, "one character").await;
    assert_matches(&*store, message_filter("1="), &[5], &ids, "two characters").await;
    assert_matches(&*store, message_filter("ed%9"), &[0], &ids, "two-character runs").await;
}

pub async fn month_and_day_filters<S: Store>(store: Arc<S>) {
    // Europe/Amsterdam: 2026-03-29 is 23 hours long, from 2026-03-28T23:00Z to 2026-03-29T22:00Z.
    let times = [
        "2026-03-28T22:59:59.999999Z",
        "2026-03-28T23:00:00Z",
        "2026-03-29T21:59:59Z",
        "2026-03-29T22:00:00Z",
        "2026-02-28T23:30:00Z",
    ];
    let events = times
        .iter()
        .map(|t| event(serde_json::json!({"time": t, "user": "a", "kind": "DEVICE_EDITED", "message": "m"})))
        .collect();
    let ids = store.append(events).await.unwrap();
    let tz = time::parse_time_zone("Europe/Amsterdam").unwrap();
    let window = |f: DateFilter| Filter { window: Some(f.window(&tz).unwrap()), ..Filter::all() };
    assert_matches(&*store, window(DateFilter::parse_day("2026-03-29").unwrap()), &[1, 2], &ids, "a DST day").await;
    assert_matches(
        &*store,
        window(DateFilter::parse_month("2026-03").unwrap()),
        &[0, 1, 2, 3, 4],
        &ids,
        "March in Amsterdam",
    )
    .await;
    let utc = time::parse_time_zone("UTC").unwrap();
    let march_utc =
        Filter { window: Some(DateFilter::parse_month("2026-03").unwrap().window(&utc).unwrap()), ..Filter::all() };
    assert_matches(&*store, march_utc, &[0, 1, 2, 3], &ids, "March in UTC").await;
}

pub async fn all_filters_hold_at_once<S: Store>(store: Arc<S>) {
    let ids = filter_fixture(&*store).await;
    let filter = Filter {
        user: UserFilter::Only("alice".into()),
        action: Some(Pattern::new("update")),
        name: Some(Pattern::new("edge")),
        message: Some(Pattern::new("mtu")),
        window: Some(
            DateFilter::parse_month("2026-06").unwrap().window(&time::parse_time_zone("UTC").unwrap()).unwrap(),
        ),
        details: DetailsReach::Everyone,
    };
    assert_matches(&*store, filter.clone(), &[0], &ids, "everything holds").await;
    let other_month = Filter {
        window: Some(
            DateFilter::parse_month("2026-05").unwrap().window(&time::parse_time_zone("UTC").unwrap()).unwrap(),
        ),
        ..filter.clone()
    };
    assert_matches(&*store, other_month, &[], &ids, "one filter fails").await;
    let other_user = Filter { user: UserFilter::Only("bob".into()), ..filter };
    assert_matches(&*store, other_user, &[], &ids, "user fails").await;
}

/// Many more events than any backend scans row by row before it turns to its index: every
/// filter, paged to the end, finds exactly what the matcher finds in every event.
pub async fn searches_agree_with_the_matcher_over_many_events<S: Store>(store: Arc<S>) {
    let words = ["Uplink", "peering", "ΣΎΝΔΕΣΗ", "Zürich", "ntp server", "50% off", "a_b", "C:\\temp", "ꝏ"];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    let mut events = Vec::new();
    for n in 0..12_000u64 {
        let mut message = format!("change {n} on edge{}", next(300));
        for _ in 0..next(3) {
            message.push_str(&format!(" {}", words[next(words.len() as u64) as usize]));
        }
        if n % 5_000 == 17 {
            message.push_str(" INC-4711-QX");
        }
        let day = 1 + next(28);
        // A Kelvin sign folds to `k`, a long s to `s`: ASCII patterns match them.
        let name =
            format!("{}{}", ["edge", "Zürich-core", "ΣΎΝΔΕΣΗ-", "pe_", "\u{212a}ore-"][next(5) as usize], next(50));
        let mut body = event(serde_json::json!({
            "user": format!("u{}", next(4)), "kind": "DEVICE_EDITED", "name": name,
            "message": message, "time": format!("2026-0{}-{day:02}T10:00:00Z", 1 + next(3)),
        }));
        body.action = ["edit", "Commit", "archive", "restore", "reſtore"][next(5) as usize].into();
        if n % 4_000 == 99 {
            body.action = "reboot".into();
            body.name = "core-4711".into();
        }
        events.push(body);
    }
    let mut stored = Vec::new();
    for chunk in events.chunks(3_000) {
        let ids = store.append(chunk.to_vec()).await.unwrap();
        stored.extend(ids.into_iter().zip(chunk.iter().cloned()));
    }
    store.catch_up_indexes().await.unwrap();
    let message = |p: &str| Some(Pattern::new(p));
    let march = DateFilter::parse_month("2026-03").unwrap().window(&time::parse_time_zone("UTC").unwrap()).unwrap();
    let filters = [
        Filter { message: message("uplink"), ..Filter::all() },
        Filter { message: message("inc-4711-qx"), ..Filter::all() },
        Filter { message: message("σύνδεση"), ..Filter::all() },
        Filter { message: message("zÜrich"), ..Filter::all() },
        Filter { message: message("50\\% off"), ..Filter::all() },
        Filter { message: message("a\\_b"), ..Filter::all() },
        Filter { message: message("c:\\temp"), ..Filter::all() },
        Filter { message: message("edge1_ %ntp"), ..Filter::all() },
        Filter { message: message("change 11%peering"), ..Filter::all() },
        Filter { message: message("ꝏ"), ..Filter::all() },
        Filter { message: message("peer"), user: UserFilter::Only("u2".into()), window: Some(march), ..Filter::all() },
        Filter { message: message("uplink"), action: message("COMMIT"), name: message("edge4"), ..Filter::all() },
        Filter { name: message("core-4711"), ..Filter::all() },
        Filter { name: message("edge17"), ..Filter::all() },
        Filter { name: message("zürich-CORE1"), ..Filter::all() },
        Filter { name: message("σύνδεση-4"), ..Filter::all() },
        Filter { name: message(r"pe\_3"), ..Filter::all() },
        Filter { name: message("edge1_%"), ..Filter::all() },
        Filter { name: message("e_"), ..Filter::all() },
        Filter { action: message("reboot"), ..Filter::all() },
        Filter { action: message("RESTORE"), ..Filter::all() },
        Filter { name: message("kore-1"), ..Filter::all() },
        Filter { action: message("commit"), name: message("edge2"), ..Filter::all() },
        Filter { name: message("rich"), user: UserFilter::Only("u1".into()), window: Some(march), ..Filter::all() },
        Filter { name: message("edge"), action: message("arch"), message: message("peering"), ..Filter::all() },
    ];
    for filter in filters {
        let expected: Vec<EventId> =
            stored.iter().rev().filter(|(_, body)| filter.matches(body)).map(|(id, _)| *id).collect();
        assert!(!expected.is_empty(), "the events hold matches for {filter:?}");
        assert_eq!(search_all(&*store, filter.clone(), 100).await, expected, "{filter:?}");
        let first = store.search(query(filter.clone(), 100, None)).await.unwrap();
        assert_eq!(ids(&first.events), expected[..expected.len().min(100)], "{filter:?}");
    }
}

/// V6 through filters: where a reader may not see an entry's details, the message filter looks
/// at line 1 only, so a search cannot tell what the details hide (one character at a time).
/// The same before and after indexing, and in the count of newer entries.
pub async fn message_filters_reach_only_visible_details<S: Store>(store: Arc<S>) {
    let secret = |user: &str| simple(user, "edge1", "Updated node (nodes)\ncommunity: s3cret-value");
    let mut stored = Vec::new();
    for round in 0..2 {
        stored.extend(store.append(vec![secret("alice"), secret("bob")]).await.unwrap());
        if round == 0 {
            store.catch_up_indexes().await.unwrap();
        }
    }
    let reach = |details: DetailsReach, pattern: &str| Filter { details, ..message_filter(pattern) };
    let found = |filter: Filter| async { search_all(&*store, filter, 10).await };
    let mut newest_first = stored.clone();
    newest_first.reverse();
    let alices: Vec<EventId> = newest_first.iter().copied().filter(|id| (*id - stored[0]) % 2 == 0).collect();
    assert_eq!(found(reach(DetailsReach::Everyone, "s3cret")).await, newest_first);
    assert_eq!(found(reach(DetailsReach::Nobody, "s3cret")).await, Vec::<EventId>::new(), "line 2 is out of reach");
    assert_eq!(found(reach(DetailsReach::Nobody, "s3c%")).await, Vec::<EventId>::new());
    assert_eq!(found(reach(DetailsReach::Nobody, "nodes)%value")).await, Vec::<EventId>::new());
    assert_eq!(found(reach(DetailsReach::Nobody, "updated node")).await, newest_first, "line 1 is in reach");
    assert_eq!(found(reach(DetailsReach::Own("alice".into()), "s3cret")).await, alices, "one's own details");
    store.append(vec![secret("bob"), secret("alice")]).await.unwrap();
    let head = *stored.last().unwrap();
    let cursor = trail_core::Cursor { snapshot: head, before: head + 1 };
    let counted = store.search(query(reach(DetailsReach::Own("alice".into()), "s3cret"), 10, Some(cursor))).await;
    assert_eq!(counted.unwrap().newer, 1, "only alice's newer entry matches within her reach");
    let counted = store.search(query(reach(DetailsReach::Nobody, "s3cret"), 10, Some(cursor))).await;
    assert_eq!(counted.unwrap().newer, 0, "nobody's details: nothing newer matches");
}

/// A search whose time is up answers with what it found, says so, and its cursor goes on from
/// where it stopped: together the pages hold every match once.
pub async fn a_spent_budget_answers_what_it_found_and_goes_on<S: Store>(store: Arc<S>) {
    let appended = store.append((0..300).map(|i| simple("a", "n", &format!("m{i}"))).collect()).await.unwrap();
    let mut spent = query(Filter::all(), 200, None);
    spent.deadline = Some(std::time::Instant::now());
    let first = store.search(spent).await.unwrap();
    assert!(first.incomplete, "the deadline had passed");
    assert!(first.events.len() < 200, "{} events", first.events.len());
    let cursor = first.next_cursor.expect("an incomplete page goes on");
    let mut seen = ids(&first.events);
    seen.extend(search_all_from(&*store, Filter::all(), cursor).await);
    let mut expected = appended;
    expected.reverse();
    assert_eq!(seen, expected, "every event once, newest first");
    let whole = store.search(query(Filter::all(), 200, None)).await.unwrap();
    assert!(!whole.incomplete && whole.events.len() == 200, "no deadline, no stop");
    // Counting what came after the snapshot has a time of its own: a spent page still counts.
    store.append((0..100).map(|i| simple("a", "n", &format!("later {i}"))).collect()).await.unwrap();
    let mut spent = query(Filter::all(), 200, Some(cursor));
    spent.deadline = Some(std::time::Instant::now());
    assert_eq!(store.search(spent).await.unwrap().newer, 100, "the newer entries are all counted");
}

async fn search_all_from<S: Store>(store: &S, filter: Filter, mut cursor: Cursor) -> Vec<EventId> {
    let mut out = Vec::new();
    loop {
        let page = store.search(query(filter.clone(), 100, Some(cursor))).await.unwrap();
        out.extend(ids(&page.events));
        match page.next_cursor {
            Some(next) => cursor = next,
            None => return out,
        }
    }
}
