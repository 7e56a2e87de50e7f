//! The indexed part of a search: the index's chunks are visited newest first, a group at a
//! time. One query fetches the group's postings for the pattern's rarest keys, and one query
//! per batch of the group's candidate blocks fetches their events. A chunk outside the time
//! window is skipped (its zone map).

use super::{Reader, query_cached};
use crate::pg;
use deadpool_postgres::Transaction;
use std::collections::HashMap;
use trail_core::Event;
use trail_core::query::Budget;
use trail_store::StoreError;
use trail_store::block_index::{self, Candidates, geometry};

/// Most trigram keys looked up per chunk: enough to be selective, few enough to stay cheap.
const MAX_KEYS: usize = 8;
/// Chunks whose postings the first query fetches at least; each further query fetches twice as
/// many, up to [`MOST_CHUNKS`]: a common filter fills its page from the first chunk.
const FIRST_CHUNKS: usize = 4;
const MOST_CHUNKS: usize = 64;
/// The first query takes as many chunks as are expected to hold this many candidate blocks of
/// the rarest key (by its share of the sample chunk's blocks): a rare key's postings are small,
/// and a selective filter (or one matching nothing) must read every chunk anyway, so it reads
/// them all in one query rather than in six (at 10,000,000 events, 153 chunks).
const FIRST_CANDIDATE_BLOCKS: f64 = 1024.0;
/// Keys looked up when the first query takes every chunk (its rarest key is rare): the rarest
/// few leave few candidates already, and each key costs an index probe in every chunk (at
/// 10,000,000 events, 4 ms for eight keys' postings in 153 chunks, about half that for four).
const RARE_KEYS: usize = 4;
/// Candidate ids the first query of a group reads (in block ranges); each further query reads
/// four times as many, up to [`MOST_IDS`]: a common filter fills its page from the first.
const FIRST_IDS: i64 = 512;
const MOST_IDS: i64 = 8192;

impl Reader<'_> {
    /// Reads the matching events with ids in `[low, high]`, all of them indexed, into `found`,
    /// newest first, proposed by the index for `keys`.
    pub(super) async fn read_indexed(
        &self,
        (low, high): (i64, i64),
        keys: Vec<u32>,
        want: usize,
        budget: &mut Budget,
        found: &mut Vec<Event>,
    ) -> Result<(), StoreError> {
        let chunks = chunks(self.tx, self.filter.window_micros(), (low, high)).await?;
        let (mut keys, share) = rarest_keys(self.tx, &chunks, keys).await?;
        let (mut start, mut group) = (0, first_group(&chunks, share));
        if group >= chunks.len() {
            keys.truncate(RARE_KEYS);
        }
        while start < chunks.len() && found.len() < want && budget.stopped_at.is_none() {
            let end = (start + group).min(chunks.len());
            // Chunks are newest first, and so are their ranges: together, they stay in order.
            let ranges = candidate_ranges(self.tx, &chunks[start..end], &keys, (low, high)).await?;
            self.read_candidates(&ranges.concat(), want, budget, found).await?;
            (start, group) = (end, (group * 2).min(MOST_CHUNKS.max(group)));
        }
        Ok(())
    }

    /// Reads the matching events with ids in `[low, high]`, all of them indexed, into `found`,
    /// newest first, when only a time window narrows them: the spans of the chunks whose zone
    /// maps meet the window, in slices.
    pub(super) async fn read_window(
        &self,
        (low, high): (i64, i64),
        want: usize,
        budget: &mut Budget,
        found: &mut Vec<Event>,
    ) -> Result<(), StoreError> {
        let chunks = chunks(self.tx, self.filter.window_micros(), (low, high)).await?;
        for span in spans(&chunks, (low, high)) {
            self.read_slices(span, want, budget, found).await?;
            if found.len() >= want || budget.stopped_at.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Reads the matching events among candidate id ranges (newest first, disjoint) into
    /// `found`, a batch of ids at a time. Measured on PostgreSQL 15 with 500 ranges of 16 ids:
    /// a lateral index range scan per range, 21 ms; `id = ANY` of their 8,000 ids, 64 ms; a
    /// plain join of the ranges with `events`, planned as a sequential scan, seconds. With a
    /// user filter, each range is a range of the user's index (`events_by_user`).
    async fn read_candidates(
        &self,
        ranges: &[(i64, i64)],
        want: usize,
        budget: &mut Budget,
        found: &mut Vec<Event>,
    ) -> Result<(), StoreError> {
        // The LIMIT keeps the subquery whole, so it runs once per range as an index range scan.
        let months = self.candidates.after();
        let sql = format!(
            "SELECT e.* FROM unnest($1::bigint[], $2::bigint[]) AS r(low, high) CROSS JOIN LATERAL \
             (SELECT {} FROM events WHERE id >= r.low AND id <= r.high{} AND month >= ${months} AND month <= ${} \
             ORDER BY id DESC LIMIT {}) AS e ORDER BY e.id DESC",
            crate::rows::COLUMNS,
            self.candidates.sql,
            months + 1,
            geometry::MINI_EVENTS * geometry::MINIS_PER_BIG
        );
        let statement = self.tx.prepare_cached(&sql).await.map_err(pg)?;
        let mut batches = IdBatches { ranges: ranges.iter(), rest: None };
        let mut ids = FIRST_IDS;
        loop {
            let batch = batches.next(ids);
            let (Some(&(_, high)), Some(&(low, _))) = (batch.first(), batch.last()) else { return Ok(()) };
            ids = (ids * 4).min(MOST_IDS);
            let (lows, highs): (Vec<i64>, Vec<i64>) = batch.iter().copied().unzip();
            let [first_month, last_month] = self.months((low, high)).await?;
            let values = self.candidates.bind([&lows, &highs], &[&first_month, &last_month]);
            let rows = self.tx.query(&statement, &values).await.map_err(pg)?;
            if self.take_matches(rows, want, budget, found)? {
                return Ok(());
            }
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

/// The id spans of `chunks` (newest first) within `[low, high]`, newest first, adjacent chunks
/// joined.
fn spans(chunks: &[Chunk], (low, high): (i64, i64)) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for chunk in chunks {
        let span = (low.max(chunk.first_id), high.min(chunk.last_id));
        match spans.last_mut() {
            Some(last) if last.0 == span.1 + 1 => last.0 = span.0,
            _ => spans.push(span),
        }
    }
    spans
}

/// A chunk of the index as searches see it.
struct Chunk {
    level: i16,
    number: i64,
    first_id: i64,
    last_id: i64,
}

/// The index's chunks overlapping `[low, high]` and the time `window`, newest first.
async fn chunks(
    tx: &Transaction<'_>,
    window: Option<(i64, i64)>,
    (low, high): (i64, i64),
) -> Result<Vec<Chunk>, StoreError> {
    let (start, end) = window.unwrap_or((i64::MIN, i64::MAX));
    let rows = query_cached(
        tx,
        "SELECT level, number, first_id, last_id FROM search_chunks \
         WHERE last_id >= $1 AND first_id <= $2 AND max_time >= $3 AND min_time < $4 ORDER BY first_id DESC",
        &[&low, &high, &start, &end],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Chunk { level: r.get(0), number: r.get(1), first_id: r.get(2), last_id: r.get(3) })
        .collect())
}

/// Postings of `keys` in `chunks`, by (level, number, key). Each chunk is looked up by its own
/// key: given `level = ANY(..) AND number = ANY(..)` over 153 chunks, the planner estimated a
/// quarter of the table and scanned all of it (112 ms, against 2 ms this way).
async fn postings(
    tx: &Transaction<'_>,
    chunks: &[Chunk],
    keys: &[i64],
) -> Result<HashMap<(i16, i64, i64), Vec<u8>>, StoreError> {
    let levels: Vec<i16> = chunks.iter().map(|c| c.level).collect();
    let numbers: Vec<i64> = chunks.iter().map(|c| c.number).collect();
    let rows = query_cached(
        tx,
        "SELECT p.level, p.number, p.key, p.bits FROM unnest($1::smallint[], $2::bigint[]) AS c(level, number) \
         CROSS JOIN LATERAL (SELECT level, number, key, bits FROM search_postings \
         WHERE level = c.level AND number = c.number AND key = ANY($3)) AS p",
        &[&levels, &numbers, &keys],
    )
    .await?;
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

/// How many chunks (newest first) the first postings query takes: as many as hold about
/// [`FIRST_CANDIDATE_BLOCKS`] blocks with the rarest key, given the `share` of a chunk's blocks
/// that hold it, and at least [`FIRST_CHUNKS`].
fn first_group(chunks: &[Chunk], share: f64) -> usize {
    let mut expected = 0.0;
    let within = chunks.iter().take_while(|chunk| {
        expected += share * blocks(chunk.level) as f64;
        expected <= FIRST_CANDIDATE_BLOCKS
    });
    within.count().max(FIRST_CHUNKS)
}

/// The blocks a chunk of `level` covers.
fn blocks(level: i16) -> usize {
    geometry::word_count(i64::from(level)) * 64
}

/// The keys ordered rarest first by how many blocks of a sample chunk (the newest big chunk,
/// else the newest) hold each, at most [`MAX_KEYS`] of them (see SQLite's `rarest_keys`), and
/// the share of the sample's blocks holding the rarest (1 without a sample: assume common).
async fn rarest_keys(tx: &Transaction<'_>, chunks: &[Chunk], keys: Vec<u32>) -> Result<(Vec<i64>, f64), StoreError> {
    let mut keys: Vec<i64> = keys.into_iter().map(i64::from).collect();
    let Some(sample) = chunks.iter().find(|c| c.level == 1).or(chunks.first()) else {
        keys.truncate(MAX_KEYS);
        return Ok((keys, 1.0));
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
    let share = weighed.first().map_or(1.0, |&(weight, _)| f64::from(weight) / blocks(sample.level) as f64);
    Ok((weighed.into_iter().take(MAX_KEYS).map(|(_, key)| key).collect(), share.min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::{Chunk, FIRST_CHUNKS, IdBatches, first_group, spans};

    #[test]
    fn a_rare_key_reads_every_chunks_postings_at_once_and_a_common_one_a_few() {
        let big = |number| Chunk { level: 1, number, first_id: 0, last_id: 0 };
        let chunks: Vec<Chunk> = (0..153).rev().map(big).collect();
        assert_eq!(first_group(&chunks, 0.0), 153, "a key the sample lacks");
        assert_eq!(first_group(&chunks, 1.0 / 4096.0), 153, "one block in a big chunk");
        assert_eq!(first_group(&chunks, 1.0 / 64.0), 16, "64 blocks a chunk: 1024 in sixteen");
        assert_eq!(first_group(&chunks, 0.5), FIRST_CHUNKS);
        assert_eq!(first_group(&[], 0.0), FIRST_CHUNKS);
    }

    #[test]
    fn adjacent_chunks_make_one_span() {
        let chunk = |first_id, last_id| Chunk { level: 0, number: 0, first_id, last_id };
        let chunks = [chunk(200, 299), chunk(100, 199), chunk(1, 50)];
        assert_eq!(spans(&chunks, (20, 250)), vec![(100, 250), (20, 50)]);
        assert_eq!(spans(&chunks[..1], (1, 1000)), vec![(200, 299)]);
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
