//! The conformance suite: behaviour every backend must show, run by each backend's tests with
//! [`conformance_suite!`](crate::conformance_suite). A backend passes when every case passes.
//!
//! The cases are grouped by what they cover, a module each; the helpers here serve them all.

mod accounts;
mod contents;
mod events;
mod index;
mod operations;
mod retention;
mod search;
mod tree;

pub use accounts::*;
pub use contents::*;
pub use events::*;
pub use index::*;
pub use operations::*;
pub use retention::*;
pub use search::*;
pub use tree::*;

use trail_core::query::Filter;
use trail_core::time;
use trail_core::{Cursor, Event, EventBody, EventId, EventInput, JobId, Pattern, SearchQuery};

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
            text_filters_agree_before_and_after_indexing, short_patterns_scan, month_and_day_filters,
            all_filters_hold_at_once, message_filters_reach_only_visible_details, a_spent_budget_answers_what_it_found_and_goes_on,
            searches_agree_with_the_matcher_over_many_events, the_index_agrees_with_the_matcher_across_chunks,
            read_after_is_ascending, known_users_are_listed, missing_event_is_none,
            content_changes_make_events_and_repeats_do_not, content_kinds_and_devices_are_apart,
            a_failing_request_is_rolled_back_alone,
            accounts_are_created_changed_and_listed, refused_account_changes_store_nothing,
            a_password_change_ends_other_sessions_and_may_revoke_tokens,
            lock_states_round_trip, credential_changes_move_the_credentials_count,
            login_limits_are_kept_per_key_and_listed_once_settled,
            forward_cursors_move_and_stay_apart, head_watch_follows_commits,
            jobs_follow_their_leaves_and_record_finals, refused_reports_store_nothing, job_logs_page_and_search,
            correlated_events_walk_from_request_to_results,
            purges_remove_the_old_prefix_and_the_rest_verifies, purges_wait_for_forwarding,
            the_tree_covers_every_event_and_a_purge_keeps_it, checkpoints_are_kept_beside_their_events);
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

pub(crate) fn at(text: &str) -> jiff::Timestamp {
    time::parse_rfc3339(text).unwrap()
}

/// A valid event from a JSON object, validated as the API would.
pub fn event(json: serde_json::Value) -> EventBody {
    let input: EventInput = serde_json::from_value(json).unwrap();
    input.validate(at("2026-06-15T12:00:00Z")).unwrap()
}

pub(crate) fn simple(user: &str, name: &str, message: &str) -> EventBody {
    event(serde_json::json!({"user": user, "kind": "DEVICE_EDITED", "name": name, "message": message}))
}

pub(crate) fn query(filter: Filter, limit: usize, cursor: Option<Cursor>) -> SearchQuery {
    SearchQuery::new(filter, limit, cursor)
}

pub(crate) fn ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

/// Waits for every task's acknowledged ids, checks that exactly those events are stored and that
/// they chain, and answers them in order.
pub(crate) async fn stored_exactly<S: crate::Store>(
    store: &S,
    tasks: Vec<tokio::task::JoinHandle<Vec<EventId>>>,
) -> Vec<EventId> {
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    acknowledged.sort();
    let events = store.read_after(EventId::ZERO, 1000).await.unwrap();
    assert_eq!(ids(&events), acknowledged, "every acknowledged event is stored once, and nothing else");
    let mut verifier = trail_core::chain::Verifier::new();
    let mut frontier = trail_core::tree::Frontier::new();
    for e in &events {
        verifier.check(e.id, &e.body, &trail_core::chain::from_hex(&e.hash).unwrap()).unwrap();
        let _ = frontier.push(trail_core::tree::leaf_hash(e.id, &e.body));
    }
    let root = crate::tree::root(store, frontier.size()).await.unwrap();
    assert_eq!(root, frontier.root(), "the stored tree covers exactly these events");
    acknowledged
}

pub(crate) fn message_filter(pattern: &str) -> Filter {
    Filter { message: Some(Pattern::new(pattern)), ..Filter::all() }
}
