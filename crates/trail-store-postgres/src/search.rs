//! Search on PostgreSQL: keyset pages over a fixed snapshot, in one repeatable-read transaction,
//! with the block index (`index.rs`) as a prefilter and [`Filter::matches`] as the only judge.
//!
//! - The newest events, not yet indexed, are read directly, newest first, in slices.
//! - Below them, when action, name or message patterns hold literal runs of 3+ characters, the
//!   index's chunks are visited newest first, a group at a time: one query fetches the group's
//!   postings for the pattern's rarest keys, and one query per batch of candidate blocks
//!   fetches their events. A chunk outside the time window is skipped (its zone map).
//! - Without such a run, rows are read in slices newest first, the user through its index and
//!   times through the BRIN index; the search's time budget bounds it.
//!
//! User and time filters are SQL conditions, and so is the message, as `LIKE` over the folded
//! text (exact, see [`trail_core::Pattern::like_on_folded`]); ASCII action and name patterns
//! are prefilters in SQL too (see `conditions`), so fewer rows cross the wire.
//!
//! Ids commit in order (the sequencer, see `writer.rs`), so every id up to the head is committed
//! and a snapshot never changes under a cursor.

use crate::rows::{COLUMNS, event_from_row};
use crate::{index, pg, read_head};
use deadpool_postgres::Transaction;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;
use trail_core::query::{Budget, NEWER_COUNT_CAP, UserFilter};
use trail_core::{Cursor, Event, EventId, Filter, SearchPage, SearchQuery};
use trail_store::StoreError;
use trail_store::block_index::{self, Candidates, geometry};

type Param = Box<dyn ToSql + Sync + Send>;

/// Most trigram keys looked up per chunk: enough to be selective, few enough to stay cheap.
const MAX_KEYS: usize = 8;
/// Chunks whose postings the first query fetches; each further query fetches twice as many, up
/// to [`MOST_CHUNKS`]: a common filter fills its page from the first chunk, one matching nothing
/// reads the whole index in a few queries.
const FIRST_CHUNKS: usize = 4;
const MOST_CHUNKS: usize = 64;
/// Ids the first slice of a direct read spans, the most any spans, and the fewest a slice
/// sized to the time left spans (see [`next_span`]).
const FIRST_SLICE: i64 = 4096;
const MOST_SLICE: i64 = 65_536;
const LEAST_SLICE: i64 = 256;
/// Candidate ids the first query of a chunk reads (in block ranges); each further query reads
/// four times as many, up to [`MOST_IDS`]: a common filter fills its page from the first.
const FIRST_IDS: i64 = 512;
const MOST_IDS: i64 = 8192;
/// Above this many candidate ranges in a chunk, a user's search reads the user's index instead.
const MANY_RANGES: usize = 64;

/// The SQL conditions every match meets, with their parameters numbered from `$3` (`$1` and
/// `$2` are the id range, or the candidate ranges).
fn conditions(filter: &Filter) -> (String, Vec<Param>) {
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
        next(&mut sql, " AND coalesce(message_folded, message) LIKE ?", Box::new(pattern.like_on_folded()));
    }
    for (pattern, column) in [(&filter.action, "action"), (&filter.name, "name")] {
        if let Some(pattern) = pattern.as_ref().filter(|p| !p.matches_all() && p.source().is_ascii()) {
            // A prefilter never narrower than the matcher: ASCII text compared ignoring ASCII
            // case, as the matcher folds it (the C collation, whatever the database's), and
            // any text with other characters (a Kelvin sign folds to `k`) left to the matcher.
            let condition =
                format!(" AND ({column} COLLATE \"C\" ILIKE ? OR octet_length({column}) <> char_length({column}))");
            next(&mut sql, &condition, Box::new(pattern.like_on_folded()));
        }
    }
    (sql, params)
}

/// A statement's parameters: `$1` and `$2` (the ids), then the [`conditions`]' own, then `last`
/// when the statement has one more.
fn bind<'a>(
    ids: [&'a (dyn ToSql + Sync); 2],
    params: &'a [Param],
    last: Option<&'a (dyn ToSql + Sync)>,
) -> Vec<&'a (dyn ToSql + Sync)> {
    let conditions = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync));
    ids.into_iter().chain(conditions).chain(last).collect()
}

/// Whether every filter holds in SQL alone, so counting needs no rows.
fn decided_in_sql(filter: &Filter) -> bool {
    filter.action.as_ref().is_none_or(|p| p.matches_all())
        && filter.name.as_ref().is_none_or(|p| p.matches_all())
        && filter.searches_whole_messages()
}

/// The matching events with ids in `[low, high]`, newest first, `want` of them at most.
async fn matching(
    tx: &Transaction<'_>,
    filter: &Filter,
    (low, high): (i64, i64),
    want: usize,
    budget: &mut Budget,
) -> Result<Vec<Event>, StoreError> {
    let mut found = Vec::with_capacity(want.min(1024));
    let keys = filter.trigram_keys();
    if keys.is_empty() {
        read_slices(tx, filter, (low, high), want, budget, &mut found).await?;
        return Ok(found);
    }
    let through = index::indexed_through(tx).await?;
    read_slices(tx, filter, (low.max(through + 1), high), want, budget, &mut found).await?;
    let high = high.min(through);
    if found.len() >= want || budget.stopped_at.is_some() || low > high {
        return Ok(found);
    }
    let chunks = chunks(tx, filter, (low, high)).await?;
    let keys = rarest_keys(tx, &chunks, keys).await?;
    let (mut start, mut group) = (0, FIRST_CHUNKS);
    while start < chunks.len() && found.len() < want && budget.stopped_at.is_none() {
        let end = (start + group).min(chunks.len());
        for ranges in candidate_ranges(tx, &chunks[start..end], &keys, (low, high)).await? {
            read_candidates(tx, filter, &ranges, want, budget, &mut found).await?;
            if found.len() >= want || budget.stopped_at.is_some() {
                break;
            }
        }
        (start, group) = (end, (group * 2).min(MOST_CHUNKS));
    }
    Ok(found)
}

/// Reads the matching events with ids in `[low, high]` into `found`, newest first, in slices of
/// ids that each continue below the last and grow fourfold. A slice bounds what the database
/// examines per request, so a filter decided in SQL that matches nothing still meets the
/// search's time budget, asked between slices.
async fn read_slices(
    tx: &Transaction<'_>,
    filter: &Filter,
    (low, mut high): (i64, i64),
    want: usize,
    budget: &mut Budget,
    found: &mut Vec<Event>,
) -> Result<(), StoreError> {
    let (conditions, params) = conditions(filter);
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE id >= $1 AND id <= $2{conditions} ORDER BY id DESC LIMIT ${}",
        params.len() + 3
    );
    let statement = tx.prepare(&sql).await.map_err(pg)?;
    let mut span = FIRST_SLICE;
    while low <= high && found.len() < want {
        if budget.exhausted_before(high) {
            return Ok(());
        }
        let slice_low = low.max(high - span + 1);
        let limit = (want - found.len()) as i64;
        let values = bind([&slice_low, &high], &params, Some(&limit));
        let started = Instant::now();
        let rows = tx.query(&statement, &values).await.map_err(pg)?;
        let full = rows.len() as i64 == limit;
        for row in &rows {
            let event = event_from_row(row)?;
            if budget.exhausted_at(event.id.get()) {
                return Ok(());
            }
            high = event.id.get() - 1;
            if filter.matches(&event.body) {
                found.push(event);
            }
        }
        if !full {
            // The slice is read to its end: the next one begins below it.
            high = slice_low - 1;
            span = next_span(span, started.elapsed(), budget.remaining());
        }
    }
    Ok(())
}

/// The span of the slice after one of `span` ids that took `took`: four times wider, up to
/// [`MOST_SLICE`], but no wider than that pace fits in the time left, so that a search stops
/// near its deadline rather than one long slice after it.
fn next_span(span: i64, took: Duration, remaining: Option<Duration>) -> i64 {
    let wider = (span * 4).min(MOST_SLICE);
    let Some(remaining) = remaining else { return wider };
    let fitting = span as u128 * remaining.as_micros() / took.as_micros().max(1);
    wider.min(i64::try_from(fitting).unwrap_or(i64::MAX)).max(LEAST_SLICE)
}

/// Reads the matching events among one chunk's candidate id ranges (newest first, disjoint)
/// into `found`, a batch of ids at a time. Measured on PostgreSQL 15 with 500 ranges of 16
/// ids: a lateral index range scan per range, 21 ms; `id = ANY` of their 8,000 ids, 64 ms; a
/// plain join of the ranges with `events`, planned as a sequential scan, seconds.
async fn read_candidates(
    tx: &Transaction<'_>,
    filter: &Filter,
    ranges: &[(i64, i64)],
    want: usize,
    budget: &mut Budget,
    found: &mut Vec<Event>,
) -> Result<(), StoreError> {
    if matches!(filter.user, UserFilter::Only(_)) && ranges.len() > MANY_RANGES {
        // Many candidate blocks, one user: the user's index over the chunk's span, keeping the
        // candidate blocks, reads fewer rows than a range scan per block.
        return read_blocks_of_user(tx, filter, ranges, want, budget, found).await;
    }
    let mut batches = IdBatches { ranges: ranges.iter(), rest: None };
    let mut ids = FIRST_IDS;
    loop {
        let batch = batches.next(ids);
        if batch.is_empty() {
            return Ok(());
        }
        ids = (ids * 4).min(MOST_IDS);
        let (conditions, params) = conditions(filter);
        // The LIMIT keeps the subquery whole, so it runs once per range as an index range scan.
        let sql = format!(
            "SELECT e.* FROM unnest($1::bigint[], $2::bigint[]) AS r(low, high) CROSS JOIN LATERAL \
             (SELECT {COLUMNS} FROM events WHERE id >= r.low AND id <= r.high{conditions} \
             ORDER BY id DESC LIMIT {}) AS e ORDER BY e.id DESC",
            geometry::MINI_EVENTS * geometry::MINIS_PER_BIG
        );
        let (lows, highs): (Vec<i64>, Vec<i64>) = batch.iter().copied().unzip();
        let values = bind([&lows, &highs], &params, None);
        let rows = tx.query(&sql, &values).await.map_err(pg)?;
        if take_matches(rows, filter, want, budget, found)? {
            return Ok(());
        }
    }
}

/// Candidate ranges (newest first) taken a number of ids at a time: a long range is cut, and
/// the rest of it comes first in the next batch.
struct IdBatches<'a> {
    ranges: std::slice::Iter<'a, (i64, i64)>,
    rest: Option<(i64, i64)>,
}

impl IdBatches<'_> {
    /// The next ranges, holding at most `count` ids in all.
    fn next(&mut self, count: i64) -> Vec<(i64, i64)> {
        let mut batch = Vec::new();
        let mut left = count;
        while left > 0 {
            let Some((low, high)) = self.rest.take().or_else(|| self.ranges.next().copied()) else { break };
            let piece_low = low.max(high - left + 1);
            batch.push((piece_low, high));
            left -= high - piece_low + 1;
            if piece_low > low {
                self.rest = Some((low, piece_low - 1));
            }
        }
        batch
    }
}

/// [`read_candidates`] for one user's events: the candidate blocks among the user's events in
/// the ranges' span, read through `events_by_user`.
async fn read_blocks_of_user(
    tx: &Transaction<'_>,
    filter: &Filter,
    ranges: &[(i64, i64)],
    want: usize,
    budget: &mut Budget,
    found: &mut Vec<Event>,
) -> Result<(), StoreError> {
    let (Some(&(_, high)), Some(&(low, _))) = (ranges.first(), ranges.last()) else { return Ok(()) };
    let blocks: Vec<i64> =
        ranges.iter().flat_map(|&(low, high)| geometry::block_of(low)..=geometry::block_of(high)).collect();
    let (conditions, params) = conditions(filter);
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE id >= $1 AND id <= $2{conditions} \
         AND (id - 1) / {} = ANY(${}::bigint[]) ORDER BY id DESC",
        geometry::BLOCK_EVENTS,
        params.len() + 3
    );
    let values = bind([&low, &high], &params, Some(&blocks));
    let rows = tx.query(&sql, &values).await.map_err(pg)?;
    take_matches(rows, filter, want, budget, found).map(|_| ())
}

/// Takes the rows that match into `found`, newest first; answers whether the search is done
/// (the page is full, or the budget is spent).
fn take_matches(
    rows: Vec<tokio_postgres::Row>,
    filter: &Filter,
    want: usize,
    budget: &mut Budget,
    found: &mut Vec<Event>,
) -> Result<bool, StoreError> {
    for row in rows {
        let event = event_from_row(&row)?;
        if budget.exhausted_at(event.id.get()) {
            return Ok(true);
        }
        if filter.matches(&event.body) {
            found.push(event);
            if found.len() >= want {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A chunk of the index as searches see it.
struct Chunk {
    level: i16,
    number: i64,
    first_id: i64,
    last_id: i64,
}

/// The index's chunks overlapping `[low, high]` and the filter's time window, newest first.
async fn chunks(tx: &Transaction<'_>, filter: &Filter, (low, high): (i64, i64)) -> Result<Vec<Chunk>, StoreError> {
    let (start, end) = filter.window_micros().unwrap_or((i64::MIN, i64::MAX));
    let rows = tx
        .query(
            "SELECT level, number, first_id, last_id FROM search_chunks \
             WHERE last_id >= $1 AND first_id <= $2 AND max_time >= $3 AND min_time < $4 ORDER BY first_id DESC",
            &[&low, &high, &start, &end],
        )
        .await
        .map_err(pg)?;
    Ok(rows
        .iter()
        .map(|r| Chunk { level: r.get(0), number: r.get(1), first_id: r.get(2), last_id: r.get(3) })
        .collect())
}

/// Postings of `keys` in `chunks`, by (level, number, key).
async fn postings(
    tx: &Transaction<'_>,
    chunks: &[Chunk],
    keys: &[i64],
) -> Result<HashMap<(i16, i64, i64), Vec<u8>>, StoreError> {
    let levels: Vec<i16> = chunks.iter().map(|c| c.level).collect();
    let numbers: Vec<i64> = chunks.iter().map(|c| c.number).collect();
    let rows = tx
        .query(
            "SELECT level, number, key, bits FROM search_postings \
             WHERE level = ANY($1) AND number = ANY($2) AND key = ANY($3)",
            &[&levels, &numbers, &keys],
        )
        .await
        .map_err(pg)?;
    Ok(rows.into_iter().map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3))).collect())
}

/// For each chunk that may hold a match, newest first: the id ranges of its blocks that may hold
/// every key, within `[low, high]`, newest first.
async fn candidate_ranges(
    tx: &Transaction<'_>,
    chunks: &[Chunk],
    keys: &[i64],
    (low, high): (i64, i64),
) -> Result<Vec<Vec<(i64, i64)>>, StoreError> {
    let postings = postings(tx, chunks, keys).await?;
    let mut ranges = Vec::new();
    for chunk in chunks {
        let mut candidates = Candidates::of(i64::from(chunk.level));
        let posting = |key: &i64| postings.get(&(chunk.level, chunk.number, *key)).map(Vec::as_slice);
        if keys.iter().all(|key| candidates.narrow(posting(key))) {
            let within = (low.max(chunk.first_id), high.min(chunk.last_id));
            let words = candidates.into_words();
            ranges.push(block_index::candidate_ranges(i64::from(chunk.level), chunk.number, &words, within));
        }
    }
    Ok(ranges)
}

/// The keys ordered rarest first by how many blocks of a sample chunk (the newest big chunk,
/// else the newest) hold each, at most [`MAX_KEYS`] of them (see SQLite's `rarest_keys`).
async fn rarest_keys(tx: &Transaction<'_>, chunks: &[Chunk], keys: Vec<u32>) -> Result<Vec<i64>, StoreError> {
    let mut keys: Vec<i64> = keys.into_iter().map(i64::from).collect();
    let Some(sample) = chunks.iter().find(|c| c.level == 1).or(chunks.first()) else {
        keys.truncate(MAX_KEYS);
        return Ok(keys);
    };
    let postings = postings(tx, std::slice::from_ref(sample), &keys).await?;
    let level = i64::from(sample.level);
    let mut weighed: Vec<(u32, i64)> = keys
        .into_iter()
        .map(|key| {
            let posting = postings.get(&(sample.level, sample.number, key)).map(Vec::as_slice);
            (block_index::weight(level, posting), key)
        })
        .collect();
    weighed.sort_unstable();
    Ok(weighed.into_iter().take(MAX_KEYS).map(|(_, key)| key).collect())
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
    let (conditions, params) = conditions(filter);
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE id >= $1 AND id <= $2{conditions} LIMIT ${}) AS capped",
        params.len() + 3
    );
    let cap = cap as i64;
    let values = bind([&low, &high], &params, Some(&cap));
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

#[cfg(test)]
mod tests {
    use super::{FIRST_SLICE, IdBatches, LEAST_SLICE, MOST_SLICE, next_span};
    use std::time::Duration;

    #[test]
    fn slices_widen_as_far_as_the_time_left_allows() {
        let ms = Duration::from_millis;
        assert_eq!(next_span(FIRST_SLICE, ms(1), None), 4 * FIRST_SLICE);
        assert_eq!(next_span(FIRST_SLICE, ms(1), Some(ms(1000))), 4 * FIRST_SLICE);
        assert_eq!(next_span(MOST_SLICE, ms(1), Some(ms(1000))), MOST_SLICE);
        // 4,096 ids took 2 ms and 3 ms are left: 6,144 ids fit.
        assert_eq!(next_span(FIRST_SLICE, ms(2), Some(ms(3))), 6144);
        assert_eq!(next_span(FIRST_SLICE, ms(20), Some(ms(0))), LEAST_SLICE);
    }

    #[test]
    fn id_batches_cut_long_ranges_and_go_on_from_the_cut() {
        let ranges = [(90, 100), (40, 79), (1, 16)];
        let mut batches = IdBatches { ranges: ranges.iter(), rest: None };
        assert_eq!(batches.next(5), vec![(96, 100)]);
        assert_eq!(batches.next(20), vec![(90, 95), (66, 79)]);
        assert_eq!(batches.next(100), vec![(40, 65), (1, 16)]);
        assert_eq!(batches.next(100), Vec::<(i64, i64)>::new());
    }
}
