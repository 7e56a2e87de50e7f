//! Search on SQLite: keyset pages over a fixed snapshot, with the trigram index as a prefilter
//! and [`Filter::matches`] as the only judge.
//!
//! - A message pattern with a literal run of 3+ characters: the newest, not yet indexed events
//!   are scanned directly, then the index proposes candidates newest first.
//! - Otherwise: a newest-first scan that stops as soon as the page is full.
//!
//! User and time filters go into SQL (indexed); action, name and message are decided in Rust on
//! borrowed column text, so rows that do not match are never decoded.

use crate::rows::event_from_row;
use crate::schema::EVENT_COLUMNS;
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use trail_core::query::{NEWER_COUNT_CAP, UserFilter};
use trail_core::{Cursor, Event, EventId, Filter, SearchPage, SearchQuery};

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

/// Whether action, name and message match, read straight from the row.
fn text_matches(filter: &Filter, row: &rusqlite::Row<'_>) -> rusqlite::Result<bool> {
    for (pattern, column) in [(&filter.action, 6), (&filter.name, 7), (&filter.message, 10)] {
        if let Some(pattern) = pattern
            && !pattern.is_match(row.get_ref(column)?.as_str()?)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Visits matching events with ids in `[low, high]`, newest first, until `visit` says stop.
fn scan(
    conn: &Connection,
    filter: &Filter,
    low: EventId,
    high: EventId,
    visit: &mut dyn FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<bool>,
) -> rusqlite::Result<()> {
    if low > high {
        return Ok(());
    }
    let (conditions, mut values) = sql_conditions(filter);
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id >= ? AND id <= ?{conditions} ORDER BY id DESC");
    values.splice(0..0, [Value::Integer(low), Value::Integer(high)]);
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(values))?;
    while let Some(row) = rows.next()? {
        if text_matches(filter, row)? && !visit(row)? {
            break;
        }
    }
    Ok(())
}

/// Builds the FTS5 query: every trigram, quoted, all required.
fn trigram_query(trigrams: &[String]) -> String {
    trigrams.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect::<Vec<_>>().join(" AND ")
}

/// Visits matching events among the index's candidates with ids in `[low, high]`, newest first.
fn candidates(
    conn: &Connection,
    filter: &Filter,
    trigrams: &[String],
    low: EventId,
    high: EventId,
    visit: &mut dyn FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<bool>,
) -> rusqlite::Result<()> {
    let mut ids = conn.prepare_cached(
        "SELECT rowid FROM message_trigrams WHERE message_trigrams MATCH ?1 AND rowid >= ?2 AND rowid <= ?3 ORDER BY rowid DESC",
    )?;
    let (conditions, values) = sql_conditions(filter);
    let mut fetch = conn.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?{conditions}"))?;
    let mut candidate_ids = ids.query(rusqlite::params![trigram_query(trigrams), low, high])?;
    while let Some(candidate) = candidate_ids.next()? {
        let id: EventId = candidate.get(0)?;
        let params = std::iter::once(Value::Integer(id)).chain(values.iter().cloned());
        let mut rows = fetch.query(params_from_iter(params))?;
        if let Some(row) = rows.next()?
            && text_matches(filter, row)?
            && !visit(row)?
        {
            break;
        }
    }
    Ok(())
}

/// Visits every matching event with ids in `[low, high]`, newest first, using the index where
/// the message pattern allows it.
fn matching(
    conn: &Connection,
    filter: &Filter,
    low: EventId,
    high: EventId,
    visit: &mut dyn FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<bool>,
) -> rusqlite::Result<()> {
    let trigrams = filter.message.as_ref().map(|p| p.trigrams()).unwrap_or_default();
    if trigrams.is_empty() {
        return scan(conn, filter, low, high, visit);
    }
    let indexed_through: EventId =
        conn.query_row("SELECT value FROM meta WHERE key = 'indexed_through'", [], |r| r.get(0))?;
    let mut stopped = false;
    let mut tail_visit = |row: &rusqlite::Row<'_>| {
        let go_on = visit(row)?;
        stopped = !go_on;
        Ok(go_on)
    };
    scan(conn, filter, low.max(indexed_through + 1), high, &mut tail_visit)?;
    if stopped || low > indexed_through {
        return Ok(());
    }
    candidates(conn, filter, &trigrams, low, high.min(indexed_through), visit)
}

pub fn head(conn: &Connection) -> rusqlite::Result<EventId> {
    conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))
}

/// One page of a search, read in one transaction so head, index mark and rows agree.
pub fn search(conn: &mut Connection, query: &SearchQuery) -> rusqlite::Result<SearchPage<Event>> {
    let tx = conn.transaction()?;
    let snapshot = match query.cursor {
        Some(cursor) => cursor.snapshot,
        None => head(&tx)?,
    };
    let before = query.cursor.map_or(snapshot + 1, |c| c.before);
    let limit = query.limit.max(1);
    let mut events = Vec::with_capacity(limit + 1);
    // One more than a page, to know whether a next page exists.
    matching(&tx, &query.filter, 1, before - 1, &mut |row| {
        events.push(event_from_row(row)?);
        Ok(events.len() <= limit)
    })?;
    let next_cursor = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|last| Cursor { snapshot, before: last.id })
    } else {
        None
    };
    let mut newer = 0;
    let newest = head(&tx)?;
    matching(&tx, &query.filter, snapshot + 1, newest, &mut |_| {
        newer += 1;
        Ok(newer < NEWER_COUNT_CAP)
    })?;
    Ok(SearchPage { events, next_cursor, newer })
}
