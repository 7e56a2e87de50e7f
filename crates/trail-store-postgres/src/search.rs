//! Search on PostgreSQL: keyset pages over a fixed snapshot, in one repeatable-read transaction.
//!
//! User, time and message filters go into SQL: the user through its index, times through the
//! BRIN index, and the message as `LIKE` over the folded text, prefiltered by the trigram index.
//! That `LIKE` is exact (see [`trail_core::Pattern::like_on_folded`]), but [`Filter::matches`]
//! stays the only judge, as on every backend; action and name are decided by it alone. Rows are
//! read newest first in slices, each continuing below the last, until the page is full.
//!
//! Ids commit in order (the sequencer, see `writer.rs`), so every id up to the head is committed
//! and a snapshot never changes under a cursor.

use crate::rows::{COLUMNS, event_from_row};
use crate::{pg, read_head};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;
use trail_core::query::{Budget, NEWER_COUNT_CAP, UserFilter};
use trail_core::{Cursor, Event, EventId, Filter, SearchPage, SearchQuery};
use trail_store::StoreError;

type Param = Box<dyn ToSql + Sync + Send>;

/// The newest ids a message filter scans row by row before it asks the trigram index: a
/// common word fills the page from them at once, where the index would gather every match
/// first (measured: 64 ms instead of 4 for a word in one event of five, at 100,000 events).
const RECENT_SCAN: i64 = 4096;

/// How the message filter is written: over the trigram index, or as a plain condition the
/// planner can only check row by row (the expression differs from the index's).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Index,
    Scan,
}

/// The SQL conditions every match meets, with their parameters numbered from `$3` (`$1` and
/// `$2` are the id range).
fn conditions(filter: &Filter, form: Form) -> (String, Vec<Param>) {
    let mut sql = String::new();
    let mut params: Vec<Param> = Vec::new();
    let mut next = |sql: &mut String, text: &str, value: Param| {
        params.push(value);
        sql.push_str(&text.replace('?', &format!("${}", params.len() + 2)));
    };
    if let UserFilter::Only(user) = &filter.user {
        next(&mut sql, " AND username = ?", Box::new(user.clone()));
    }
    if let Some((start, end)) = filter.window_micros() {
        next(&mut sql, " AND time >= ?", Box::new(start));
        next(&mut sql, " AND time < ?", Box::new(end));
    }
    if let Some(pattern) = filter.message.as_ref().filter(|p| !p.matches_all()) {
        let condition = match form {
            Form::Index => " AND coalesce(message_folded, message) LIKE ?",
            Form::Scan => " AND (coalesce(message_folded, message) || '') LIKE ?",
        };
        next(&mut sql, condition, Box::new(pattern.like_on_folded()));
    }
    (sql, params)
}

/// Whether every filter holds in SQL alone, so counting needs no rows.
fn decided_in_sql(filter: &Filter) -> bool {
    filter.action.as_ref().is_none_or(|p| p.matches_all())
        && filter.name.as_ref().is_none_or(|p| p.matches_all())
        && filter.searches_whole_messages()
}

fn filters_message(filter: &Filter) -> bool {
    filter.message.as_ref().is_some_and(|p| !p.matches_all())
}

/// The matching events with ids in `[low, high]`, newest first, `want` of them at most.
async fn matching(
    tx: &Transaction<'_>,
    filter: &Filter,
    (low, high): (i64, i64),
    want: usize,
    budget: &mut Budget,
) -> Result<Vec<Event>, StoreError> {
    if !filters_message(filter) {
        return matching_as(tx, filter, (low, high), want, Form::Index, budget).await;
    }
    let split = high.saturating_sub(RECENT_SCAN).max(low - 1);
    let mut found = matching_as(tx, filter, (split + 1, high), want, Form::Scan, budget).await?;
    if found.len() < want && split >= low && budget.stopped_at.is_none() {
        found.extend(matching_as(tx, filter, (low, split), want - found.len(), Form::Index, budget).await?);
    }
    Ok(found)
}

async fn matching_as(
    tx: &Transaction<'_>,
    filter: &Filter,
    (low, mut high): (i64, i64),
    want: usize,
    form: Form,
    budget: &mut Budget,
) -> Result<Vec<Event>, StoreError> {
    let (conditions, params) = conditions(filter, form);
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE id >= $1 AND id <= $2{conditions} ORDER BY id DESC LIMIT ${}",
        params.len() + 3
    );
    let statement = tx.prepare(&sql).await.map_err(pg)?;
    let mut found = Vec::with_capacity(want.min(1024));
    // Most filters are decided in SQL, so the first slice is the page; when action or name
    // filters reject rows, the slices grow.
    let mut slice = want as i64;
    while low <= high && found.len() < want {
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![&low, &high];
        values.extend(params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)));
        values.push(&slice);
        let rows = tx.query(&statement, &values).await.map_err(pg)?;
        for row in &rows {
            let event = event_from_row(row)?;
            if budget.exhausted_at(event.id.get()) {
                return Ok(found);
            }
            high = event.id.get() - 1;
            if filter.matches(&event.body) && found.len() < want {
                found.push(event);
            }
        }
        if (rows.len() as i64) < slice {
            break;
        }
        slice = (slice * 4).min(10_000);
    }
    Ok(found)
}

/// How many events with ids in `[low, high]` match, counting up to `cap`.
async fn count(
    tx: &Transaction<'_>,
    filter: &Filter,
    (low, high): (i64, i64),
    cap: usize,
    budget: &mut Budget,
) -> Result<u64, StoreError> {
    if low > high {
        return Ok(0);
    }
    if !decided_in_sql(filter) {
        return Ok(matching(tx, filter, (low, high), cap, budget).await?.len() as u64);
    }
    let (conditions, params) = conditions(filter, Form::Index);
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE id >= $1 AND id <= $2{conditions} LIMIT ${}) AS capped",
        params.len() + 3
    );
    let cap = cap as i64;
    let mut values: Vec<&(dyn ToSql + Sync)> = vec![&low, &high];
    values.extend(params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)));
    values.push(&cap);
    let counted: i64 = tx.query_one(&sql, &values).await.map_err(pg)?.get(0);
    Ok(counted as u64)
}

/// One page of a search, read in one transaction so that head and rows agree.
pub async fn search(
    client: &mut deadpool_postgres::Object,
    query: &SearchQuery,
) -> Result<SearchPage<Event>, StoreError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)?;
    let head = read_head(&tx).await?;
    let snapshot = query.cursor.map_or(head, |c| c.snapshot);
    let before = query.cursor.map_or(snapshot + 1, |c| c.before);
    let limit = query.limit.max(1);
    // One more than a page, to know whether a next page exists.
    let mut budget = Budget::until(query.deadline);
    let mut events = matching(&tx, &query.filter, (1, before.get() - 1), limit + 1, &mut budget).await?;
    let incomplete = budget.stopped_at.is_some();
    let next_cursor = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|last| Cursor { snapshot, before: last.id })
    } else {
        budget.stopped_at.map(|stopped| Cursor { snapshot, before: EventId::new(stopped + 1) })
    };
    let mut counting = query.newer_count_budget();
    let newer =
        count(&tx, &query.filter, (snapshot.get() + 1, head.get()), NEWER_COUNT_CAP as usize, &mut counting).await?;
    tx.commit().await.map_err(pg)?;
    Ok(SearchPage { events, next_cursor, newer, incomplete })
}
