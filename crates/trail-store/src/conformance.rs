//! The conformance suite: behaviour every backend must show, run by each backend's tests with
//! [`conformance_suite!`](crate::conformance_suite). A backend passes when every case passes.

use crate::{Store, StoreError};
use std::sync::Arc;
use trail_core::chain::{self, Verifier};
use trail_core::content::{ContentKind, ContentRecord, StoredContent};
use trail_core::identity::{Account, AccountState, AccountWrite, LockedBy, PasswordHash, Username};
use trail_core::query::{Filter, UserFilter};
use trail_core::time::{self, DateFilter};
use trail_core::{Cursor, Event, EventBody, EventId, EventInput, Pattern, SearchQuery};

/// Generates one `#[tokio::test]` per case. `$make` is an async function returning
/// `(store, guard)`; the guard keeps whatever the store needs (a temporary directory, a
/// database) alive for the test.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make;
            round_trip_keeps_every_field, ids_increase_and_chain_links, batches_keep_their_order,
            concurrent_appends_all_land_chained, pages_are_newest_first_and_complete,
            snapshot_hides_newer_entries_and_counts_them, user_filter, action_name_and_message_filters,
            message_filter_agrees_before_and_after_indexing, short_patterns_scan, month_and_day_filters,
            all_filters_hold_at_once, read_after_is_ascending, known_users_are_listed, missing_event_is_none,
            content_changes_make_events_and_repeats_do_not, content_kinds_and_devices_are_apart,
            accounts_are_created_changed_and_listed, refused_account_changes_store_nothing,
            lock_states_round_trip, forward_cursors_move_and_stay_apart, head_watch_follows_commits,
            jobs_follow_their_leaves_and_record_finals, refused_reports_store_nothing, job_logs_page_and_search,
            correlated_events_walk_from_request_to_results,
            purges_remove_the_old_prefix_and_the_rest_verifies, purges_wait_for_forwarding);
    };
    (@cases $make:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $make().await;
                $crate::conformance::$case(std::sync::Arc::new(store)).await;
            }
        )*
    };
}

fn at(text: &str) -> jiff::Timestamp {
    time::parse_rfc3339(text).unwrap()
}

/// A valid event from a JSON object, validated as the API would.
pub fn event(json: serde_json::Value) -> EventBody {
    let input: EventInput = serde_json::from_value(json).unwrap();
    input.validate(at("2026-06-15T12:00:00Z")).unwrap()
}

fn simple(user: &str, name: &str, message: &str) -> EventBody {
    event(serde_json::json!({"user": user, "kind": "DEVICE_EDITED", "name": name, "message": message}))
}

fn query(filter: Filter, limit: usize, cursor: Option<Cursor>) -> SearchQuery {
    SearchQuery { filter, limit, cursor }
}

fn ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

fn message_filter(pattern: &str) -> Filter {
    Filter { message: Some(Pattern::new(pattern)), ..Filter::all() }
}

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

pub async fn round_trip_keeps_every_field<S: Store>(store: Arc<S>) {
    let body = event(serde_json::json!({
        "time": "2026-03-29T01:30:00.123456Z", "user": "jürgen", "client": "2001:db8::7",
        "kind": "ACME.SYNC_DONE", "process": "acme-sync", "action": "sync", "name": "edge1, edge2",
        "severity": "notice", "outcome": "success", "message": "Synced 2 devices\n\tdetail ✓",
        "attributes": {"zeta": "last", "alpha": 1, "flag": true},
        "request_id": "req-1", "session_id": "sess-1", "job_id": "42", "parent_id": "41",
    }));
    let ids = store.append(vec![body.clone()]).await.unwrap();
    let stored = store.get(ids[0]).await.unwrap().expect("stored event is found");
    assert_eq!(stored.body, body);
    let keys: Vec<&String> = stored.body.attributes.keys().collect();
    assert_eq!(keys, ["zeta", "alpha", "flag"], "attribute order is kept");
    assert_eq!(stored.hash, chain::to_hex(&chain::link(&chain::GENESIS, stored.id, &body)));
}

pub async fn ids_increase_and_chain_links<S: Store>(store: Arc<S>) {
    let mut all = Vec::new();
    for i in 0..5 {
        all.extend(store.append(vec![simple("a", "n", &format!("m{i}")); 3]).await.unwrap());
    }
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    let events = store.read_after(0, 100).await.unwrap();
    assert_eq!(ids(&events), all);
    let mut verifier = Verifier::new();
    for e in &events {
        verifier.check(e.id, &e.body, &chain::from_hex(&e.hash).unwrap()).unwrap();
    }
    assert_eq!(store.stats().await.unwrap().head, *all.last().unwrap());
}

pub async fn batches_keep_their_order<S: Store>(store: Arc<S>) {
    let batch: Vec<EventBody> = (0..50).map(|i| simple("a", "n", &format!("event {i}"))).collect();
    let ids = store.append(batch).await.unwrap();
    assert_eq!(ids.len(), 50);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(store.get(*id).await.unwrap().unwrap().body.message, format!("event {i}"));
    }
}

pub async fn concurrent_appends_all_land_chained<S: Store>(store: Arc<S>) {
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..10 {
                    mine.extend(store.append(vec![simple("a", "n", &format!("t{t} e{i}"))]).await.unwrap());
                }
                mine
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    acknowledged.sort();
    let events = store.read_after(0, 1000).await.unwrap();
    assert_eq!(ids(&events), acknowledged, "every acknowledged event is stored once");
    let mut verifier = Verifier::new();
    for e in &events {
        verifier.check(e.id, &e.body, &chain::from_hex(&e.hash).unwrap()).unwrap();
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
    let expected: Vec<EventId> = ids.iter().rev().copied().filter(|id| (id - ids[0]) % 3 == 1).collect();
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

pub async fn message_filter_agrees_before_and_after_indexing<S: Store>(store: Arc<S>) {
    let ids = filter_fixture(&*store).await;
    let patterns = ["edge", "ntp server", "jürgen", "percent; '", "Updated%sites", "xyz-none"];
    let mut before = Vec::new();
    for p in patterns {
        before.push(search_all(&*store, message_filter(p), 3).await);
    }
    store.catch_up_indexes().await.unwrap();
    assert_eq!(store.stats().await.unwrap().unindexed, 0);
    for (p, expected) in patterns.iter().zip(&before) {
        assert_eq!(&search_all(&*store, message_filter(p), 3).await, expected, "{p}");
    }
    assert_eq!(before[0], vec![ids[1], ids[0]]);
    // New events after indexing are found through the unindexed tail, newest first.
    let newest = store.append(vec![simple("a", "edge9", "Device edge9 edited")]).await.unwrap();
    assert_eq!(search_all(&*store, message_filter("EDGE"), 2).await, vec![newest[0], ids[1], ids[0]]);
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

pub async fn read_after_is_ascending<S: Store>(store: Arc<S>) {
    let ids = store.append((0..20).map(|i| simple("a", "n", &format!("m{i}"))).collect()).await.unwrap();
    let part = store.read_after(ids[4], 5).await.unwrap();
    assert_eq!(self::ids(&part), ids[5..10].to_vec());
    assert!(store.read_after(ids[19], 5).await.unwrap().is_empty());
}

pub async fn known_users_are_listed<S: Store>(store: Arc<S>) {
    assert!(store.known_users().await.unwrap().is_empty());
    store.append(vec![simple("bob", "n", "m"), simple("alice", "n", "m"), simple("bob", "n", "m")]).await.unwrap();
    assert_eq!(store.known_users().await.unwrap(), vec!["alice".to_owned(), "bob".to_owned()]);
}

pub async fn missing_event_is_none<S: Store>(store: Arc<S>) {
    assert!(store.get(1).await.unwrap().is_none());
    assert_eq!(store.stats().await.unwrap().head, 0);
    let page = store.search(query(Filter::all(), 100, None)).await.unwrap();
    assert!(page.events.is_empty() && page.next_cursor.is_none());
}

/// A content record whose event says what it was built from.
fn content(device: &str, kind: ContentKind, body: &str, time: &str) -> ContentRecord {
    let device_name = device.to_owned();
    ContentRecord {
        device: device.to_owned(),
        kind,
        content: body.to_owned(),
        time: at(time),
        on_change: Box::new(move |previous: Option<&StoredContent>| {
            let before = previous.map_or("nothing".to_owned(), |p| p.content.clone());
            simple("archiver", &device_name, &format!("Archive of {device_name} changed\nbefore: {before}"))
        }),
    }
}

pub async fn content_changes_make_events_and_repeats_do_not<S: Store>(store: Arc<S>) {
    let first = store
        .record_content(content("edge1", ContentKind::Archive, "config v1", "2026-06-01T00:00:00Z"))
        .await
        .unwrap();
    let first_id = first.event_id.expect("a first archive is an event");
    assert_eq!(store.get(first_id).await.unwrap().unwrap().body.message, "Archive of edge1 changed\nbefore: nothing");
    let same = store
        .record_content(content("edge1", ContentKind::Archive, "config v1", "2026-06-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(same.event_id, None, "an unchanged archive is no event");
    assert_eq!(same.hash, first.hash);
    let state = store.content_state("edge1", ContentKind::Archive).await.unwrap().unwrap();
    assert_eq!(
        (state.content.as_str(), state.changed_at, state.seen_at),
        ("config v1", at("2026-06-01T00:00:00Z"), at("2026-06-02T00:00:00Z"))
    );
    let changed = store
        .record_content(content("edge1", ContentKind::Archive, "config v2", "2026-06-03T00:00:00Z"))
        .await
        .unwrap();
    let event = store.get(changed.event_id.expect("a changed archive is an event")).await.unwrap().unwrap();
    assert_eq!(
        event.body.message, "Archive of edge1 changed\nbefore: config v1",
        "the event sees the previous content"
    );
    assert_ne!(changed.hash, first.hash);
    let back = store
        .record_content(content("edge1", ContentKind::Archive, "config v1", "2026-06-04T00:00:00Z"))
        .await
        .unwrap();
    assert!(back.event_id.is_some(), "going back to an older content is a change too");
    assert_eq!(back.hash, first.hash, "contents are identified by hash");
    let events = store.read_after(0, 100).await.unwrap();
    assert_eq!(events.len(), 3);
    let mut verifier = Verifier::new();
    for e in &events {
        verifier.check(e.id, &e.body, &chain::from_hex(&e.hash).unwrap()).unwrap();
    }
}

pub async fn content_kinds_and_devices_are_apart<S: Store>(store: Arc<S>) {
    assert!(store.content_state("edge1", ContentKind::Archive).await.unwrap().is_none());
    for (device, kind) in
        [("edge1", ContentKind::Archive), ("edge1", ContentKind::Inventory), ("edge2", ContentKind::Archive)]
    {
        let outcome = store.record_content(content(device, kind, "same text", "2026-06-01T00:00:00Z")).await.unwrap();
        assert!(outcome.event_id.is_some(), "{device} {kind:?} starts its own history");
    }
    assert_eq!(store.content_state("edge2", ContentKind::Archive).await.unwrap().unwrap().content, "same text");
    assert!(store.content_state("edge2", ContentKind::Inventory).await.unwrap().is_none());
}

fn account(name: &str, roles: &[&str]) -> Account {
    Account {
        username: Username::parse(name).unwrap(),
        display_name: format!("{name} (display)"),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        // A stored hash is opaque to the store; a real one is not needed here.
        password: PasswordHash::from_stored(format!("$argon2id$stand-in-for-{name}")),
        state: AccountState::default(),
        created_at: at("2026-06-01T00:00:00Z"),
    }
}

fn user_event(kind: &str, name: &str) -> EventBody {
    event(serde_json::json!({"user": "admin", "kind": kind, "name": name, "message": format!("{kind} {name}")}))
}

pub async fn accounts_are_created_changed_and_listed<S: Store>(store: Arc<S>) {
    let alice = account("Alice", &["operator"]);
    let ids = store
        .write_account(AccountWrite::Create(alice.clone()), vec![user_event("USER_ADDED", "alice")])
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    let name = Username::parse("alice").unwrap();
    assert_eq!(store.account(&name).await.unwrap(), Some(alice.clone()));
    store.write_account(AccountWrite::Create(account("bob", &["viewer"])), vec![]).await.unwrap();
    let names: Vec<String> = store.accounts().await.unwrap().iter().map(|a| a.username.to_string()).collect();
    assert_eq!(names, ["alice", "bob"]);
    let new_hash = PasswordHash::from_stored("$argon2id$changed".into());
    store
        .write_account(
            AccountWrite::Password(name.clone(), new_hash.clone()),
            vec![user_event("USER_PASSWORD_CHANGED", "alice")],
        )
        .await
        .unwrap();
    store.write_account(AccountWrite::Roles(name.clone(), vec!["auditor".into()]), vec![]).await.unwrap();
    let changed = store.account(&name).await.unwrap().unwrap();
    assert_eq!((changed.password, changed.roles), (new_hash, vec!["auditor".to_owned()]));
    store.write_account(AccountWrite::Delete(name.clone()), vec![user_event("USER_DELETED", "alice")]).await.unwrap();
    assert_eq!(store.account(&name).await.unwrap(), None);
    let kinds: Vec<String> = store.read_after(0, 10).await.unwrap().into_iter().map(|e| e.body.kind).collect();
    assert_eq!(kinds, ["USER_ADDED", "USER_PASSWORD_CHANGED", "USER_DELETED"]);
}

pub async fn refused_account_changes_store_nothing<S: Store>(store: Arc<S>) {
    store
        .write_account(AccountWrite::Create(account("carol", &[])), vec![user_event("USER_ADDED", "carol")])
        .await
        .unwrap();
    let taken =
        store.write_account(AccountWrite::Create(account("CAROL", &[])), vec![user_event("USER_ADDED", "carol")]).await;
    assert!(matches!(&taken, Err(crate::StoreError::Conflict(m)) if m.contains("carol is taken")), "{taken:?}");
    let ghost = Username::parse("ghost").unwrap();
    for write in [
        AccountWrite::Delete(ghost.clone()),
        AccountWrite::Password(ghost.clone(), PasswordHash::from_stored("x".into())),
        AccountWrite::State(ghost.clone(), AccountState::default()),
        AccountWrite::Roles(ghost.clone(), vec![]),
    ] {
        let refused = store.write_account(write, vec![user_event("USER_DELETED", "ghost")]).await;
        assert!(
            matches!(&refused, Err(crate::StoreError::Conflict(m)) if m.contains("no account ghost")),
            "{refused:?}"
        );
    }
    assert_eq!(store.read_after(0, 10).await.unwrap().len(), 1, "only the first creation's event is stored");
}

pub async fn lock_states_round_trip<S: Store>(store: Arc<S>) {
    let name = Username::parse("dave").unwrap();
    store.write_account(AccountWrite::Create(account("dave", &["operator"])), vec![]).await.unwrap();
    let states = [
        AccountState {
            recent_failures: vec![at("2026-06-01T10:00:00.000001Z"), at("2026-06-01T10:01:00Z")],
            locked: None,
        },
        AccountState { recent_failures: vec![], locked: Some((at("2026-06-01T10:05:00Z"), LockedBy::Policy)) },
        AccountState {
            recent_failures: vec![],
            locked: Some((at("2026-06-02T00:00:00Z"), LockedBy::Administrator("root".into()))),
        },
        AccountState::default(),
    ];
    for state in states {
        store.write_account(AccountWrite::State(name.clone(), state.clone()), vec![]).await.unwrap();
        assert_eq!(store.account(&name).await.unwrap().unwrap().state, state);
    }
}

pub async fn forward_cursors_move_and_stay_apart(store: Arc<dyn Store>) {
    assert_eq!(store.forward_cursor("siem").await.unwrap(), None, "a new destination has no cursor");
    store.save_forward_cursor("siem", 0).await.unwrap();
    assert_eq!(store.forward_cursor("siem").await.unwrap(), Some(0));
    store.save_forward_cursor("siem", 41).await.unwrap();
    store.save_forward_cursor("aaa", 7).await.unwrap();
    assert_eq!(store.forward_cursor("siem").await.unwrap(), Some(41));
    assert_eq!(store.forward_cursor("aaa").await.unwrap(), Some(7));
}

pub async fn head_watch_follows_commits(store: Arc<dyn Store>) {
    let mut head = store.watch_head();
    let before = *head.borrow_and_update();
    let ids = store.append(vec![simple("alice", "edge1", "one"), simple("alice", "edge2", "two")]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), head.changed()).await.unwrap().unwrap();
    assert_eq!(*head.borrow(), ids[1]);
    assert!(ids[1] > before);
}

fn new_job(name: &str, targets: &[&str]) -> trail_core::operations::NewJob {
    trail_core::operations::NewJob {
        name: name.into(),
        targets: targets.iter().map(|t| (*t).to_string()).collect(),
        submitter: "alice".into(),
        submitted_at: at("2026-06-15T12:00:00Z"),
        request_id: Some("req-9".into()),
        session_id: None,
        client: None,
    }
}

pub async fn jobs_follow_their_leaves_and_record_finals(store: Arc<dyn Store>) {
    use trail_core::operations::Status::*;
    let job = store.create_job(new_job("archive edge routers", &["edge1", "edge2", "edge3"])).await.unwrap();
    assert_eq!(job.leaves.len(), 3);
    let submitted = store.get(job.submit_event_id).await.unwrap().unwrap();
    assert_eq!(
        (submitted.body.kind.as_str(), submitted.body.job_id.clone()),
        ("JOB_SUBMITTED", Some(job.id.to_string()))
    );
    let now = at("2026-06-15T12:01:00Z");
    let started = store.report_leaf(job.id, "edge1", Running, "", now).await.unwrap();
    assert_eq!(started.event_ids.len(), 1, "the job's start is recorded once");
    assert!(store.report_leaf(job.id, "edge2", Running, "", now).await.unwrap().event_ids.is_empty());
    let done = store.report_leaf(job.id, "edge1", Succeeded, "archived", now).await.unwrap();
    assert_eq!(done.event_ids.len(), 1);
    store.report_leaf(job.id, "edge2", Failed, "timeout", now).await.unwrap();
    let last = store.report_leaf(job.id, "edge3", Cancelled, "", now).await.unwrap();
    assert_eq!(last.event_ids.len(), 2, "the last leaf and the whole operation");
    let stored = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), Failed);
    assert_eq!(stored.completed_event_id, Some(last.event_ids[1]));
    assert_eq!(stored.leaf("edge2").unwrap().message, "timeout");
    let failed = store.get(stored.leaf("edge2").unwrap().event_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (failed.body.kind.as_str(), failed.body.severity),
        ("LEAF_OPERATION_COMPLETED", trail_core::Severity::Err)
    );
    assert_eq!(failed.body.parent_id, Some(job.submit_event_id.to_string()));
    let completed = store.get(last.event_ids[1]).await.unwrap().unwrap();
    assert_eq!(completed.body.kind, "OPERATION_COMPLETED");
    assert_eq!(completed.body.severity, trail_core::Severity::Err, "a failed operation is an error (E3)");
    let listed = store.jobs(None, 10).await.unwrap();
    assert_eq!((listed[0].id, listed[0].counts, listed[0].status()), (job.id, [0, 0, 1, 1, 1], Failed));
}

pub async fn refused_reports_store_nothing(store: Arc<dyn Store>) {
    use trail_core::operations::Status::*;
    let job = store.create_job(new_job("restore", &["edge1"])).await.unwrap();
    let now = at("2026-06-15T12:01:00Z");
    store.report_leaf(job.id, "edge1", Succeeded, "", now).await.unwrap();
    let head = store.stats().await.unwrap().head;
    let finished = store.report_leaf(job.id, "edge1", Running, "", now).await.unwrap_err();
    assert!(matches!(&finished, StoreError::Conflict(m) if m.contains("already finished")), "{finished}");
    assert!(matches!(store.report_leaf(job.id, "edge9", Running, "", now).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.report_leaf(job.id + 100, "edge1", Running, "", now).await, Err(StoreError::NotFound(_))));
    let entry = trail_core::operations::LogEntry { time: now, target: Some("edge9".into()), text: "x".into() };
    assert!(matches!(store.append_job_log(job.id, vec![entry]).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.stats().await.unwrap().head, head);
    assert_eq!(store.job(job.id).await.unwrap().unwrap().leaf("edge1").unwrap().status, Succeeded);
}

pub async fn job_logs_page_and_search(store: Arc<dyn Store>) {
    use trail_core::operations::{LogEntry, LogQuery};
    let job = store.create_job(new_job("scan", &["edge1", "edge2"])).await.unwrap();
    let now = at("2026-06-15T12:01:00Z");
    let entries: Vec<LogEntry> = (0..250)
        .map(|i| LogEntry {
            time: now,
            target: Some(if i % 2 == 0 { "edge1" } else { "edge2" }.into()),
            text: format!("line {i}\ncontinued"),
        })
        .collect();
    let numbers = store.append_job_log(job.id, entries).await.unwrap();
    assert_eq!((numbers[0], numbers[249]), (1, 250));
    let query = |after, target: Option<&str>, contains: Option<&str>| LogQuery {
        job: job.id,
        target: target.map(str::to_owned),
        contains: contains.map(Pattern::new),
        after,
        limit: 100,
    };
    let first = store.job_log(query(0, None, None)).await.unwrap();
    assert_eq!((first.len(), first[0].seq, first[99].seq), (100, 1, 100));
    let last = store.job_log(query(200, None, None)).await.unwrap();
    assert_eq!(last.len(), 50);
    let edge2 = store.job_log(query(0, Some("edge2"), None)).await.unwrap();
    assert!(edge2.iter().all(|e| e.entry.target.as_deref() == Some("edge2")) && edge2[0].seq == 2);
    let found = store.job_log(query(0, None, Some("LINE 24_\nCONT"))).await.unwrap();
    assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), (241..=250).collect::<Vec<_>>());
    assert_eq!(found[0].entry.text, "line 240\ncontinued");
}

pub async fn correlated_events_walk_from_request_to_results(store: Arc<dyn Store>) {
    let job = store.create_job(new_job("archive", &["edge1"])).await.unwrap();
    let request =
        event(serde_json::json!({"user": "alice", "kind": "DEVICE_EDITED", "request_id": "req-9", "message": "asked"}));
    let result = event(serde_json::json!({"user": "alice", "kind": "ARCHIVE_COMPLETED", "name": "edge1",
        "job_id": job.id.to_string(), "message": "archived"}));
    let unrelated = simple("bob", "edge2", "elsewhere");
    let stored = store.append(vec![request, result, unrelated]).await.unwrap();
    let from_job = store.correlated(Some(job.id.to_string()), Some("req-9".into()), 100).await.unwrap();
    assert_eq!(ids(&from_job), vec![job.submit_event_id, stored[0], stored[1]]);
    let only_job = store.correlated(Some(job.id.to_string()), None, 100).await.unwrap();
    assert_eq!(ids(&only_job), vec![job.submit_event_id, stored[1]]);
}

pub async fn purges_remove_the_old_prefix_and_the_rest_verifies(store: Arc<dyn Store>) {
    let dated = |time: &str, message: &str| {
        event(serde_json::json!({"user": "alice", "kind": "DEVICE_EDITED", "message": message, "time": time}))
    };
    let stored = store
        .append(vec![
            dated("2024-01-01T00:00:00Z", "old 1"),
            dated("2024-02-01T00:00:00Z", "old 2"),
            dated("2026-01-01T00:00:00Z", "new 3"),
            dated("2024-03-01T00:00:00Z", "old but after a new one"),
            dated("2026-02-01T00:00:00Z", "new 5"),
        ])
        .await
        .unwrap();
    let second = store.get(stored[1]).await.unwrap().unwrap();
    assert_eq!(store.prune_marker().await.unwrap(), None);
    let report = store.purge(at("2025-01-01T00:00:00Z"), 1, "retention").await.unwrap();
    assert_eq!(report.purged, 2, "the prefix only: event 4 waits behind event 3");
    let marker = report.marker.unwrap();
    assert_eq!((marker.through, marker.hash), (stored[1], chain::from_hex(&second.hash).unwrap()));
    assert_eq!(store.prune_marker().await.unwrap(), Some(marker));
    assert!(store.get(stored[0]).await.unwrap().is_none() && store.get(stored[2]).await.unwrap().is_some());
    let purge = store.get(report.event_id.unwrap()).await.unwrap().unwrap();
    assert_eq!((purge.body.kind.as_str(), purge.body.user.as_str()), ("RETENTION_PURGED", "retention"));
    assert_eq!(purge.body.attributes["through"], stored[1].to_string());

    let verify = |marker| {
        let store = store.clone();
        async move {
            let mut verifier = Verifier::after(&marker);
            for event in store.read_after(0, 1000).await.unwrap() {
                verifier.check(event.id, &event.body, &chain::from_hex(&event.hash).unwrap()).unwrap();
            }
            verifier.checked()
        }
    };
    assert_eq!(verify(marker).await, 4, "events 3-5 and the purge event");
    store.catch_up_indexes().await.unwrap();
    let found = store.search(query(message_filter("old "), 100, None)).await.unwrap();
    assert_eq!(ids(&found.events), vec![stored[3]], "purged events are gone from searches too");
    let again = store.purge(at("2025-01-01T00:00:00Z"), 100, "retention").await.unwrap();
    assert_eq!((again.purged, again.event_id), (0, None), "nothing more to purge, nothing recorded");

    let everything = store.purge(at("2100-01-01T00:00:00Z"), 2, "retention").await.unwrap();
    assert_eq!(everything.purged, 4);
    assert_eq!(verify(everything.marker.unwrap()).await, 1, "only the new purge event is left, and it links");
    let after = store.append(vec![simple("bob", "edge1", "after the purge")]).await.unwrap();
    assert!(after[0] > everything.event_id.unwrap(), "ids are never reused");
}

pub async fn purges_wait_for_forwarding(store: Arc<dyn Store>) {
    let old = || {
        event(serde_json::json!({"user": "a", "kind": "DEVICE_EDITED", "message": "m", "time": "2020-01-01T00:00:00Z"}))
    };
    let ids = store.append(vec![old(), old(), old()]).await.unwrap();
    store.save_forward_cursor("siem", ids[0]).await.unwrap();
    let report = store.purge(at("2100-01-01T00:00:00Z"), 10, "retention").await.unwrap();
    assert_eq!(report.purged, 1, "only what every destination has delivered");
    assert!(store.get(ids[1]).await.unwrap().is_some());
    store.save_forward_cursor("siem", ids[2]).await.unwrap();
    assert_eq!(store.purge(at("2100-01-01T00:00:00Z"), 10, "retention").await.unwrap().purged, 2);
}
