//! Search on PostgreSQL: keyset pages over a fixed snapshot, in one repeatable-read transaction,
//! with the block index (`index.rs`) as a prefilter and [`Filter::matches`] as the only judge.
//!
//! - The newest events, not yet indexed, are read directly, newest first, in slices.
//! - Below them, when action, name or message patterns hold literal runs of 3+ characters, the
//!   index's chunks are visited newest first (`indexed.rs`).
//! - Without such a run, rows are read in slices newest first, the user through its index; with
//!   a time window, only in the chunks whose zone maps meet it (`read_window`). The search's
//!   time budget bounds it.
//!
//! User and time filters are SQL conditions, and so is the message, as `LIKE` over the folded
//! text (exact, see [`trail_core::Pattern::like_on_folded`]); ASCII action and name patterns
//! are prefilters in SQL too (see [`Conditions`]), so fewer rows cross the wire.
//!
//! Ids commit in order (the sequencer, see `writer.rs`), so every id up to the head is committed
//! and a snapshot never changes under a cursor.

mod indexed;

use crate::rows::{COLUMNS, event_from_row};
use crate::{index, pg, read_head};
use deadpool_postgres::Transaction;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;
use trail_core::query::{Budget, NEWER_COUNT_CAP, UserFilter};
use trail_core::{Event, Filter, SearchPage, SearchQuery};
use trail_store::StoreError;

type Param = Box<dyn ToSql + Sync + Send>;

/// Ids the first slice of a direct read spans, the most any spans, and the fewest a slice
/// sized to the time left spans (see [`next_span`]).
const FIRST_SLICE: i64 = 4096;
const MOST_SLICE: i64 = 65_536;
const LEAST_SLICE: i64 = 256;

/// What the reads of one search share: its transaction and filter, the SQL conditions made of
/// the filter, and where the partitions' ids begin (loaded when a read first needs them).
struct Reader<'a> {
    tx: &'a Transaction<'a>,
    filter: &'a Filter,
    /// For reads of id slices.
    direct: Conditions,
    /// For reads of candidate blocks, whose time is left to the matcher: their chunks already
    /// meet the time window (their zone maps), and in a probe of 16 ids the planner ANDed the
    /// time index's bitmap of the whole window into each (4 ms a probe at 10,000,000 events,
    /// where the probe itself takes 0.02 ms).
    candidates: Conditions,
    partitions: OnceLock<Partitions>,
}

impl<'a> Reader<'a> {
    fn new(tx: &'a Transaction<'a>, filter: &'a Filter) -> Reader<'a> {
        Reader {
            tx,
            filter,
            direct: Conditions::of(filter, true),
            candidates: Conditions::of(filter, false),
            partitions: OnceLock::new(),
        }
    }

    /// The first and last months of the partitions holding ids in `[low, high]`.
    async fn months(&self, span: (i64, i64)) -> Result<[i32; 2], StoreError> {
        if self.partitions.get().is_none() {
            let _ = self.partitions.set(Partitions::load(self.tx).await?);
        }
        Ok(self.partitions.get().map_or([i32::MIN, i32::MAX], |partitions| partitions.months(span)))
    }

    /// The matching events with ids in `[low, high]`, newest first, `want` of them at most.
    async fn matching(
        &self,
        (low, high): (i64, i64),
        want: usize,
        budget: &mut Budget,
    ) -> Result<Vec<Event>, StoreError> {
        let mut found = Vec::with_capacity(want.min(1024));
        let keys = self.filter.trigram_keys();
        if keys.is_empty() && self.filter.window.is_none() {
            self.read_slices((low, high), want, budget, &mut found).await?;
            return Ok(found);
        }
        // Where the index reaches, its chunks' postings and zone maps tell where matches may be.
        let through = index::indexed_through(self.tx).await?;
        self.read_slices((low.max(through + 1), high), want, budget, &mut found).await?;
        let high = high.min(through);
        if found.len() < want && budget.stopped_at.is_none() && low <= high {
            if keys.is_empty() {
                self.read_window((low, high), want, budget, &mut found).await?;
            } else {
                self.read_indexed((low, high), keys, want, budget, &mut found).await?;
            }
        }
        Ok(found)
    }

    /// Reads the matching events with ids in `[low, high]` into `found`, newest first, in slices
    /// of ids that each continue below the last and grow. A slice bounds what the database
    /// examines per request, so a filter decided in SQL that matches nothing still meets the
    /// search's time budget, asked between slices.
    pub(super) async fn read_slices(
        &self,
        (low, mut high): (i64, i64),
        want: usize,
        budget: &mut Budget,
        found: &mut Vec<Event>,
    ) -> Result<(), StoreError> {
        if low > high {
            return Ok(());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE id >= $1 AND id <= $2{} ORDER BY id DESC LIMIT ${}",
            self.direct.sql,
            self.direct.after()
        );
        let statement = self.tx.prepare_cached(&sql).await.map_err(pg)?;
        let mut span = FIRST_SLICE;
        while low <= high && found.len() < want {
            if budget.exhausted_before(high) {
                return Ok(());
            }
            let slice_low = low.max(high - span + 1);
            let limit = (want - found.len()) as i64;
            let values = self.direct.bind([&slice_low, &high], &[&limit]);
            let started = Instant::now();
            let rows = self.tx.query(&statement, &values).await.map_err(pg)?;
            let full = rows.len() as i64 == limit;
            for row in &rows {
                let event = event_from_row(row)?;
                if budget.exhausted_at(event.id.get()) {
                    return Ok(());
                }
                high = event.id.get() - 1;
                if self.filter.matches(&event.body) {
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

    /// Takes the rows that match into `found`, newest first; answers whether the search is done
    /// (the page is full, or the budget is spent).
    fn take_matches(
        &self,
        rows: Vec<tokio_postgres::Row>,
        want: usize,
        budget: &mut Budget,
        found: &mut Vec<Event>,
    ) -> Result<bool, StoreError> {
        for row in rows {
            let event = event_from_row(&row)?;
            if budget.exhausted_at(event.id.get()) {
                return Ok(true);
            }
            if self.filter.matches(&event.body) {
                found.push(event);
                if found.len() >= want {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// How many events with ids in `[low, high]` match, counting up to `cap`.
    async fn count(&self, (low, high): (i64, i64), cap: usize, budget: &mut Budget) -> Result<u64, StoreError> {
        if low > high {
            return Ok(0);
        }
        if !decided_in_sql(self.filter) {
            return Ok(self.matching((low, high), cap, budget).await?.len() as u64);
        }
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE id >= $1 AND id <= $2{} LIMIT ${}) AS capped",
            self.direct.sql,
            self.direct.after()
        );
        let cap = cap as i64;
        let values = self.direct.bind([&low, &high], &[&cap]);
        let statement = self.tx.prepare_cached(&sql).await.map_err(pg)?;
        let counted: i64 = self.tx.query_one(&statement, &values).await.map_err(pg)?.get(0);
        Ok(counted as u64)
    }
}

/// SQL conditions every match meets, with their parameters numbered from `$3` (`$1` and `$2`
/// are the ids, or the candidate ranges).
struct Conditions {
    sql: String,
    params: Vec<Param>,
}

impl Conditions {
    /// The filter's conditions, the time window's among them when `with_time`.
    fn of(filter: &Filter, with_time: bool) -> Conditions {
        let mut conditions = Conditions { sql: String::new(), params: Vec::new() };
        if let UserFilter::Only(user) = &filter.user {
            conditions.add(" AND username = ?", Box::new(user.clone()));
        }
        if let Some((start, end)) = filter.window_micros().filter(|_| with_time) {
            // `time + 0`: a filter, never a reason to read the time index. Its bitmap of the
            // whole window, ANDed into a slice's, made the planner recheck every row of each
            // page, and the chunks' zone maps already skip what lies outside the window.
            conditions.add(" AND time + 0 >= ?", Box::new(start));
            conditions.add(" AND time + 0 < ?", Box::new(end));
        }
        if let Some(pattern) = filter.message.as_ref().filter(|p| !p.matches_all()) {
            // The fold is stored only where lower-casing ASCII letters would not give it
            // (`rows.rs`); the C collation lower-cases nothing else, whatever the database's.
            let folded = " AND coalesce(message_folded, lower(message COLLATE \"C\")) LIKE ?";
            conditions.add(folded, Box::new(pattern.like_on_folded()));
        }
        for (pattern, column) in [(&filter.action, "action"), (&filter.name, "name")] {
            if let Some(pattern) = pattern.as_ref().filter(|p| !p.matches_all() && p.source().is_ascii()) {
                // A prefilter never narrower than the matcher: ASCII text compared ignoring
                // ASCII case, as the matcher folds it (the C collation, whatever the
                // database's), and any text with other characters (a Kelvin sign folds to `k`)
                // left to the matcher.
                let condition =
                    format!(" AND ({column} COLLATE \"C\" ILIKE ? OR octet_length({column}) <> char_length({column}))");
                conditions.add(&condition, Box::new(pattern.like_on_folded()));
            }
        }
        conditions
    }

    /// Adds a condition whose `?` is the next parameter, `value`.
    fn add(&mut self, condition: &str, value: Param) {
        self.params.push(value);
        self.sql.push_str(&condition.replace('?', &format!("${}", self.params.len() + 2)));
    }

    /// A statement's parameters: `$1` and `$2`, the conditions' own, then `more` from
    /// [`Conditions::after`] on.
    fn bind<'b>(
        &'b self,
        ids: [&'b (dyn ToSql + Sync); 2],
        more: &[&'b (dyn ToSql + Sync)],
    ) -> Vec<&'b (dyn ToSql + Sync)> {
        let conditions = self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync));
        ids.into_iter().chain(conditions).chain(more.iter().copied()).collect()
    }

    /// The number of the first parameter after the conditions' own.
    fn after(&self) -> usize {
        self.params.len() + 3
    }
}

/// Whether every filter holds in SQL alone, so counting needs no rows.
fn decided_in_sql(filter: &Filter) -> bool {
    filter.action.as_ref().is_none_or(|p| p.matches_all())
        && filter.name.as_ref().is_none_or(|p| p.matches_all())
        && filter.searches_whole_messages()
}

/// The span of the slice after one of `span` ids that took `took`: four times wider, up to
/// [`MOST_SLICE`], but no wider than that pace fits in half the time left (a pace varies), so
/// that a search stops near its deadline rather than one long slice after it.
fn next_span(span: i64, took: Duration, remaining: Option<Duration>) -> i64 {
    let wider = (span * 4).min(MOST_SLICE);
    let Some(remaining) = remaining else { return wider };
    let fitting = span as u128 * remaining.as_micros() / 2 / took.as_micros().max(1);
    wider.min(i64::try_from(fitting).unwrap_or(i64::MAX)).max(LEAST_SLICE)
}

/// Where each partition's ids begin. A partition's month never goes back as ids grow (see
/// `schema.rs`), so the ids of a range lie in the partitions from the one holding its lowest
/// id to the one holding its highest, and a read naming their months makes PostgreSQL look in
/// those alone: otherwise each of a read's range probes descends every month's index (500
/// probes over 12 partitions: 12 ms, against 5.4 ms naming the two that hold them).
struct Partitions {
    /// (first id, month), ascending; partitions without events are left out.
    starts: Vec<(i64, i32)>,
}

impl Partitions {
    /// The starts as the search's snapshot sees them, so they agree with the rows it reads:
    /// each month from the oldest event's to the newest's, and its first id.
    async fn load(tx: &Transaction<'_>) -> Result<Partitions, StoreError> {
        let statement = tx
            .prepare_cached(
                "SELECT (SELECT min(id) FROM events e WHERE e.month = m), m FROM generate_series(\
                 (SELECT month FROM events ORDER BY id LIMIT 1), (SELECT last_month FROM chain_head)) AS m",
            )
            .await
            .map_err(pg)?;
        let rows = tx.query(&statement, &[]).await.map_err(pg)?;
        let starts = rows.iter().filter_map(|row| Some((row.get::<_, Option<i64>>(0)?, row.get(1)))).collect();
        Ok(Partitions { starts })
    }

    /// The first and last months of the partitions holding ids in `[low, high]`.
    fn months(&self, (low, high): (i64, i64)) -> [i32; 2] {
        let holding = |id: i64| match self.starts.partition_point(|&(first, _)| first <= id) {
            // Below the oldest event: no partition holds it.
            0 => i32::MIN,
            after => self.starts[after - 1].1,
        };
        [holding(low), holding(high)]
    }
}

/// Runs a statement prepared once per connection: a search runs a dozen, and preparing each
/// anew cost a round trip apiece.
async fn query_cached(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = tx.prepare_cached(sql).await.map_err(pg)?;
    tx.query(&statement, params).await.map_err(pg)
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
    let reader = Reader::new(&tx, &query.filter);
    let snapshot = query.cursor.map_or(head, |c| c.snapshot);
    let before = query.cursor.map_or(snapshot + 1, |c| c.before);
    let limit = query.limit.max(1);
    // One more than a page, to know whether a next page exists.
    let mut budget = Budget::until(query.deadline);
    let found = reader.matching((1, before.get() - 1), limit + 1, &mut budget).await?;
    let mut counting = query.newer_count_budget();
    let newer = reader.count((snapshot.get() + 1, head.get()), NEWER_COUNT_CAP as usize, &mut counting).await?;
    drop(reader);
    tx.commit().await.map_err(pg)?;
    Ok(SearchPage::cut(found, limit, snapshot, budget.stopped_at, newer))
}

#[cfg(test)]
mod tests {
    use super::{FIRST_SLICE, LEAST_SLICE, MOST_SLICE, Partitions, next_span};
    use std::time::Duration;

    #[test]
    fn slices_widen_as_far_as_the_time_left_allows() {
        let ms = Duration::from_millis;
        assert_eq!(next_span(FIRST_SLICE, ms(1), None), 4 * FIRST_SLICE);
        assert_eq!(next_span(FIRST_SLICE, ms(1), Some(ms(1000))), 4 * FIRST_SLICE);
        assert_eq!(next_span(MOST_SLICE, ms(1), Some(ms(1000))), MOST_SLICE);
        // 4,096 ids took 2 ms and 3 ms are left: 3,072 ids fit in half of them.
        assert_eq!(next_span(FIRST_SLICE, ms(2), Some(ms(3))), 3072);
        assert_eq!(next_span(FIRST_SLICE, ms(20), Some(ms(0))), LEAST_SLICE);
    }

    #[test]
    fn a_range_lies_in_the_partitions_from_its_lowest_id_to_its_highest() {
        let partitions = Partitions { starts: vec![(5, 24_300), (100, 24_301), (250, 24_303)] };
        assert_eq!(partitions.months((1, 4)), [i32::MIN, i32::MIN], "below the oldest event");
        assert_eq!(partitions.months((1, 5)), [i32::MIN, 24_300]);
        assert_eq!(partitions.months((5, 99)), [24_300, 24_300]);
        assert_eq!(partitions.months((99, 100)), [24_300, 24_301]);
        assert_eq!(partitions.months((120, 900)), [24_301, 24_303]);
        assert_eq!(Partitions { starts: Vec::new() }.months((1, 9)), [i32::MIN, i32::MIN]);
    }
}
