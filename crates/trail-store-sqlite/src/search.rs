//! Search on SQLite: keyset pages over a fixed snapshot, with the block index (`index.rs`) as a
//! prefilter and [`Filter::matches`] semantics as the only judge.
//!
//! - The newest events, not yet indexed, are scanned directly.
//! - Below them, the index's chunks are visited newest first. A chunk outside the time window is
//!   skipped (its zone map). With action, name or message patterns holding literal runs of 3+
//!   characters, only the chunk's blocks holding every trigram of them are scanned; otherwise the
//!   chunk's whole id range is.
//! - Every scan runs newest first and stops as soon as the page is full.
//!
//! User and time filters go into SQL (the user through its index); action, name and message are
//! decided in Rust on borrowed column text, so rows that do not match are never decoded.

use crate::index::{self, Chunk};
use crate::rows::event_from_row;
use crate::schema::EVENT_COLUMNS;
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use trail_core::query::{Budget, NEWER_COUNT_CAP, UserFilter};
use trail_core::{Event, EventId, Filter, SearchPage, SearchQuery};
use trail_store::block_index;

/// Most trigram keys looked up per chunk: enough to be selective, few enough to stay cheap.
const MAX_KEYS: usize = 8;

/// Called with each matching row, newest first; answers whether to go on.
type Visit<'a> = dyn FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<bool> + 'a;

/// The SQL conditions for the user and time filters, with their parameters.
fn sql_conditions(filter: &Filter) -> (String, Vec<Value>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    if let UserFilter::Only(user) = &filter.user {
        sql.push_str(" AND user = ?");
        values.push(Value::Text(user.clone()));
    }
    if let Some((start, end)) = filter.window_micros() {
        sql.push_str(" AND time >= ? AND time < ?");
        values.push(Value::Integer(start));
        values.push(Value::Integer(end));
    }
    (sql, values)
}

/// Whether action, name and message match, read straight from the row (the message as far as
/// the reader's details reach, see [`Filter::message_matches`]).
fn text_matches(filter: &Filter, row: &rusqlite::Row<'_>) -> rusqlite::Result<bool> {
    for (pattern, column) in [(&filter.action, 6), (&filter.name, 7)] {
        if let Some(pattern) = pattern
            && !pattern.is_match(row.get_ref(column)?.as_str()?)
        {
            return Ok(false);
        }
    }
    if filter.message.is_none() {
        return Ok(true);
    }
    // The author matters only when the reader's reach into details depends on it.
    let author = if filter.searches_whole_messages() { "" } else { row.get_ref(2)?.as_str()? };
    Ok(filter.message_matches(author, row.get_ref(10)?.as_str()?))
}

/// Visits matching events with ids in `[low, high]` (as stored: the index's terms), newest
/// first. Returns false when `visit` asked to stop.
fn scan(
    conn: &Connection,
    filter: &Filter,
    (low, high): (i64, i64),
    budget: &mut Budget,
    visit: &mut Visit<'_>,
) -> rusqlite::Result<bool> {
    if low > high {
        return Ok(true);
    }
    let (conditions, mut values) = sql_conditions(filter);
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id >= ? AND id <= ?{conditions} ORDER BY id DESC");
    values.splice(0..0, [Value::Integer(low), Value::Integer(high)]);
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(values))?;
    while let Some(row) = rows.next()? {
        if budget.spent() {
            budget.stop_at(row.get(0)?);
            return Ok(false);
        }
        if text_matches(filter, row)? && !visit(row)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn overlaps_window(filter: &Filter, chunk: &Chunk) -> bool {
    filter.window_micros().is_none_or(|(start, end)| chunk.max_time >= start && chunk.min_time < end)
}

/// Visits matching events in an indexed chunk, within `[low, high]`, newest first.
fn visit_chunk(
    conn: &Connection,
    filter: &Filter,
    keys: &[u32],
    chunk: &Chunk,
    (low, high): (i64, i64),
    budget: &mut Budget,
    visit: &mut Visit<'_>,
) -> rusqlite::Result<bool> {
    let (low, high) = (low.max(chunk.first_id), high.min(chunk.last_id));
    if keys.is_empty() {
        return scan(conn, filter, (low, high), budget, visit);
    }
    let Some(words) = index::candidate_blocks(conn, chunk, keys)? else { return Ok(true) };
    for range in block_index::candidate_ranges(chunk.level, chunk.number, &words, (low, high)) {
        if !scan(conn, filter, range, budget, visit)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Visits every matching event with ids in `[low, high]`, newest first.
fn matching(
    conn: &Connection,
    filter: &Filter,
    (low, high): (i64, i64),
    budget: &mut Budget,
    visit: &mut Visit<'_>,
) -> rusqlite::Result<()> {
    let keys = filter.trigram_keys();
    if keys.is_empty() && filter.window.is_none() {
        scan(conn, filter, (low, high), budget, visit)?;
        return Ok(());
    }
    let indexed_through = index::indexed_through_attached(conn)?;
    if !scan(conn, filter, (low.max(indexed_through + 1), high), budget, visit)? {
        return Ok(());
    }
    let high = high.min(indexed_through);
    let chunks = index::chunks(conn, low, high)?;
    let keys = index::rarest_keys(conn, &chunks, keys, MAX_KEYS)?;
    for chunk in chunks {
        if overlaps_window(filter, &chunk) && !visit_chunk(conn, filter, &keys, &chunk, (low, high), budget, visit)? {
            return Ok(());
        }
    }
    Ok(())
}

pub fn head(conn: &Connection) -> rusqlite::Result<EventId> {
    conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0).map(EventId::new))
}

/// One page of a search, read in one transaction so head, index and rows agree.
pub fn search(conn: &mut Connection, query: &SearchQuery) -> rusqlite::Result<SearchPage<Event>> {
    let tx = conn.transaction()?;
    let snapshot = match query.cursor {
        Some(cursor) => cursor.snapshot,
        None => head(&tx)?,
    };
    let before = query.cursor.map_or(snapshot + 1, |c| c.before);
    let limit = query.limit.max(1);
    let mut events = Vec::with_capacity(limit + 1);
    let mut budget = Budget::until(query.deadline);
    // One more than a page, to know whether a next page exists.
    matching(&tx, &query.filter, (1, before.get() - 1), &mut budget, &mut |row| {
        events.push(event_from_row(row)?);
        Ok(events.len() <= limit)
    })?;
    let mut newer = 0;
    let newest = head(&tx)?;
    matching(&tx, &query.filter, (snapshot.get() + 1, newest.get()), &mut query.newer_count_budget(), &mut |_| {
        newer += 1;
        Ok(newer < NEWER_COUNT_CAP)
    })?;
    Ok(SearchPage::cut(events, limit, snapshot, budget.stopped_at, newer))
}
