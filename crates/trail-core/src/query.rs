//! Search requests (V1-V5): filters, pages and keyset cursors.

use crate::event::{Event, EventBody, EventId};
use crate::identity::{Right, RightSet};
use crate::pattern::Pattern;
use crate::time::{self, DateFilter, TimeWindow, parse_time_zone};
use serde::{Deserialize, Serialize};

/// V1: pages of 100 by default; the API may ask for other sizes within this bound.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// Whose entries to show (V2). "Own" is resolved at the edge into `Only(viewer)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    All,
    Only(String),
}

/// Whose entries' details (V6) a reader may see, and so how much of a message a filter may look
/// into: the whole message where the reader may see the details, line 1 elsewhere. A filter that
/// looked further would tell a reader, one search at a time, what the details hide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailsReach {
    /// Every entry's details: `details_all`, or a local trail with no reader.
    Everyone,
    /// The details of this user's own entries only (`details_own`).
    Own(String),
    /// No entry's details: line 1 only.
    Nobody,
}

impl DetailsReach {
    /// The reach of a reader with `rights`, named `reader` (none for the automation token).
    pub fn of(rights: &RightSet, reader: Option<&str>) -> DetailsReach {
        match reader {
            _ if rights.contains(&Right::DetailsAll) => DetailsReach::Everyone,
            Some(name) if rights.contains(&Right::DetailsOwn) => DetailsReach::Own(name.to_owned()),
            _ => DetailsReach::Nobody,
        }
    }

    /// Whether the details of an entry by `author` are within reach.
    pub fn covers(&self, author: &str) -> bool {
        match self {
            DetailsReach::Everyone => true,
            DetailsReach::Own(reader) => reader == author,
            DetailsReach::Nobody => false,
        }
    }

    /// The part of an entry's message by `author` that a reader may see, and so search.
    pub fn visible<'a>(&self, author: &str, message: &'a str) -> &'a str {
        if self.covers(author) { message } else { crate::event::summary_of(message) }
    }
}

/// All filters of one search; every one must hold (V3).
#[derive(Debug, Clone)]
pub struct Filter {
    pub user: UserFilter,
    pub action: Option<Pattern>,
    pub name: Option<Pattern>,
    pub message: Option<Pattern>,
    pub window: Option<TimeWindow>,
    /// How much of each message `message` may look into.
    pub details: DetailsReach,
}

impl Filter {
    /// Every event, with every detail in reach (a local trail, a backend's own tests).
    pub fn all() -> Filter {
        Filter {
            user: UserFilter::All,
            action: None,
            name: None,
            message: None,
            window: None,
            details: DetailsReach::Everyone,
        }
    }

    /// The exact decision, applied by every backend to whatever its indexes propose.
    pub fn matches(&self, event: &EventBody) -> bool {
        let pattern_holds = |pattern: &Option<Pattern>, text: &str| pattern.as_ref().is_none_or(|p| p.is_match(text));
        (match &self.user {
            UserFilter::All => true,
            UserFilter::Only(user) => &event.user == user,
        }) && self.window.is_none_or(|w| w.contains(event.time))
            && pattern_holds(&self.action, &event.action)
            && pattern_holds(&self.name, &event.name)
            && self.message_matches(&event.user, &event.message)
    }

    /// The trigram keys (see [`crate::trigram`]) every match must contain, over the action, name
    /// and message filters: what an index may look up. Empty when no filter has a literal run of
    /// three characters.
    pub fn trigram_keys(&self) -> Vec<u32> {
        use crate::trigram::Field;
        [(&self.action, Field::Action), (&self.name, Field::Name), (&self.message, Field::Message)]
            .into_iter()
            .filter_map(|(pattern, field)| pattern.as_ref().map(|p| p.field_keys(field)))
            .flatten()
            .collect()
    }

    /// Whether some text filter must be decided entry by entry because no text filter has three
    /// literal characters in a row for an index to look up (`name=e_`, `action=%`, `message=ab`).
    pub fn reads_row_by_row(&self) -> bool {
        let filters_text =
            [&self.action, &self.name, &self.message].iter().any(|p| p.as_ref().is_some_and(|p| !p.matches_all()));
        filters_text && self.trigram_keys().is_empty()
    }

    /// The deadline of a search with this filter that starts now: [`ROW_BY_ROW_BUDGET`] for one
    /// read entry by entry, [`SEARCH_BUDGET`] otherwise.
    pub fn search_deadline(&self) -> Option<std::time::Instant> {
        let budget = if self.reads_row_by_row() { ROW_BY_ROW_BUDGET } else { SEARCH_BUDGET };
        Some(std::time::Instant::now() + budget)
    }

    /// Whether the message filter holds for a message by `author`, on what the reader may see
    /// of it. Indexes over whole messages still only propose: line 1 is part of the message.
    pub fn message_matches(&self, author: &str, message: &str) -> bool {
        self.message.as_ref().is_none_or(|p| p.is_match(self.details.visible(author, message)))
    }

    /// Whether the message filter looks into every whole message, so that a backend may decide
    /// it on the whole stored message alone.
    pub fn searches_whole_messages(&self) -> bool {
        self.details == DetailsReach::Everyone || self.message.as_ref().is_none_or(|p| p.matches_all())
    }

    /// The window in microseconds, for backends that filter on the stored form.
    pub fn window_micros(&self) -> Option<(i64, i64)> {
        self.window.map(|w| (time::to_micros(w.start), time::to_micros(w.end)))
    }
}

/// Where a browsing is (V5): the newest id it may show (fixed when the first page was read) and
/// the id the next page starts below. Opaque to clients: `"<snapshot>.<before>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub snapshot: EventId,
    pub before: EventId,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.snapshot, self.before)
    }

    pub fn decode(text: &str) -> Result<Cursor, String> {
        let bad = || format!("{text:?} is not a cursor from this server: pass back next_cursor as it was given");
        let (snapshot, before) = text.split_once('.').ok_or_else(bad)?;
        let snapshot: EventId = snapshot.parse().map_err(|_| bad())?;
        let before: EventId = before.parse().map_err(|_| bad())?;
        // `before - 1`, not `snapshot + 1`: the largest snapshot must not overflow (fuzzing).
        if snapshot < EventId::ZERO || before < EventId::new(1) || before.get() - 1 > snapshot.get() {
            return Err(bad());
        }
        Ok(Cursor { snapshot, before })
    }
}

/// How long one search may look before it answers with what it has found, marked incomplete,
/// with a cursor that goes on from where it stopped. Matching costs the text's length times the
/// pattern's; this bounds what one request can cost, whatever the trail holds.
pub const SEARCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a search may look when it must read the trail entry by entry: its action, name and
/// message filters give an index nothing to look up (see [`Filter::reads_row_by_row`]). Reading
/// runs at about 1.5 million entries a second, so such a search answers within P2's 50 ms with
/// the matches among the newest entries read and a cursor that reads on, rather than seconds
/// later; every other filter is answered through an index well within it.
pub const ROW_BY_ROW_BUDGET: std::time::Duration = std::time::Duration::from_millis(40);

/// The deadline of a search that starts now.
pub fn search_deadline() -> Option<std::time::Instant> {
    Some(std::time::Instant::now() + SEARCH_BUDGET)
}

/// One search request.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub filter: Filter,
    pub limit: usize,
    /// `None` for the first page: the backend takes a new snapshot.
    pub cursor: Option<Cursor>,
    /// When the backend stops looking and answers with what it has (see
    /// [`SearchPage::incomplete`]); `None`: no limit (local trails, tests).
    pub deadline: Option<std::time::Instant>,
}

impl SearchQuery {
    /// A query without a deadline.
    pub fn new(filter: Filter, limit: usize, cursor: Option<Cursor>) -> SearchQuery {
        SearchQuery { filter, limit, cursor, deadline: None }
    }

    /// The budget of counting newer entries, which runs after the page: a time of its own, so
    /// a page that used up its deadline still counts (none when the query has no deadline).
    pub fn newer_count_budget(&self) -> Budget {
        Budget::until(self.deadline.map(|_| std::time::Instant::now() + NEWER_COUNT_BUDGET))
    }
}

/// How long counting the entries newer than a browsing's snapshot may take.
pub const NEWER_COUNT_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);

/// How long a search may look (see [`SEARCH_BUDGET`]), and where it stopped when the time ran
/// out. Backends ask it before examining each row, in the order they examine rows.
#[derive(Debug)]
pub struct Budget {
    deadline: Option<std::time::Instant>,
    rows: u32,
    /// The position (an event id, a log entry's number) of the first row left unexamined.
    pub stopped_at: Option<i64>,
}

impl Budget {
    pub fn until(deadline: Option<std::time::Instant>) -> Budget {
        Budget { deadline, rows: 0, stopped_at: None }
    }

    /// Whether the time is up before the row at `position` is examined. The clock is read every
    /// 64 rows; once up, it stays up.
    pub fn exhausted_at(&mut self, position: i64) -> bool {
        if self.spent() {
            self.stop_at(position);
        }
        self.stopped_at.is_some()
    }

    /// Whether the time is up before the rows from `position` on are examined, reading the
    /// clock now: for backends that have the database examine many rows per request, and ask
    /// between requests.
    pub fn exhausted_before(&mut self, position: i64) -> bool {
        if self.stopped_at.is_none() && self.deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline) {
            self.stop_at(position);
        }
        self.stopped_at.is_some()
    }

    /// The time left before the deadline, when there is one.
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.deadline.map(|deadline| deadline.saturating_duration_since(std::time::Instant::now()))
    }

    /// Counts a row about to be examined and answers whether the time is up; the caller then
    /// says where it stopped ([`Budget::stop_at`]). For backends that would otherwise decode
    /// every row's position just in case.
    pub fn spent(&mut self) -> bool {
        self.rows = self.rows.wrapping_add(1);
        self.stopped_at.is_some()
            || (self.rows.is_multiple_of(64)
                && self.deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline))
    }

    /// Where the search stopped: the first row left unexamined (the first stop stands).
    pub fn stop_at(&mut self, position: i64) {
        self.stopped_at.get_or_insert(position);
    }
}

/// One page, newest first.
#[derive(Debug, Clone)]
pub struct SearchPage<E> {
    pub events: Vec<E>,
    pub next_cursor: Option<Cursor>,
    /// How many matching entries were added after the snapshot (V5), counted up to
    /// [`NEWER_COUNT_CAP`], and for at most [`NEWER_COUNT_BUDGET`] (a lower bound when that
    /// ran out).
    pub newer: u64,
    /// The deadline came before the page was full: `events` is what was found, and
    /// `next_cursor` goes on from where the search stopped.
    pub incomplete: bool,
}

impl SearchPage<Event> {
    /// The page of what a search over the `snapshot` found, newest first: `found` holds up to
    /// one more than `limit`, and that one says a next page exists, below the page's last
    /// event; a search its budget stopped at `stopped_at` goes on from there.
    pub fn cut(mut found: Vec<Event>, limit: usize, snapshot: EventId, stopped_at: Option<i64>, newer: u64) -> Self {
        let next_cursor = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|last| Cursor { snapshot, before: last.id })
        } else {
            stopped_at.map(|stopped| Cursor { snapshot, before: EventId::new(stopped + 1) })
        };
        SearchPage { events: found, next_cursor, newer, incomplete: stopped_at.is_some() }
    }
}

/// Counting newer entries stops here; the UI shows "10000+".
pub const NEWER_COUNT_CAP: u64 = 10_000;

/// Search parameters exactly as the contract names them: the API's query string, and the CLI's
/// flags.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct SearchParams {
    /// One user's entries; without it (and without all_users) the viewer's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every user's entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_users: Option<bool>,
    /// Case-insensitive substring of the action; `%` any run, `_` one character, `\` escapes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Like `action`, on the object name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Like `action`, on the whole multi-line message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `YYYY-MM`, in `tz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(pattern = "^[0-9]{4}-[0-9]{2}$"))]
    pub month: Option<String>,
    /// `YYYY-MM-DD`, in `tz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub day: Option<String>,
    /// IANA time zone for month and day (default UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000))]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Why search parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Cursor(String),
}

impl SearchParams {
    /// Turns the parameters into a query. Without `user` or `all_users`, a viewer sees their own
    /// entries (V2); with no viewer (the automation token, or the CLI on a local trail) every
    /// user's. `details` is how far the viewer's rights reach into messages; every read path
    /// passes it, so no filter searches what its reader may not see.
    pub fn into_query(self, viewer: Option<&str>, details: DetailsReach) -> Result<SearchQuery, QueryError> {
        let invalid = QueryError::Invalid;
        let user = match (self.all_users.unwrap_or(false), self.user.filter(|u| !u.is_empty()), viewer) {
            (true, _, _) | (false, None, None) => UserFilter::All,
            (false, Some(user), _) => UserFilter::Only(user),
            (false, None, Some(viewer)) => UserFilter::Only(viewer.to_owned()),
        };
        let date = match (self.month, self.day) {
            (Some(_), Some(_)) => return Err(invalid("give month or day, not both".into())),
            (Some(month), None) => Some(DateFilter::parse_month(&month).map_err(invalid)?),
            (None, Some(day)) => Some(DateFilter::parse_day(&day).map_err(invalid)?),
            (None, None) => None,
        };
        let tz = parse_time_zone(self.tz.as_deref().unwrap_or("UTC")).map_err(invalid)?;
        let window = date.map(|d| d.window(&tz)).transpose().map_err(invalid)?;
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid(format!("limit must be 1-{MAX_PAGE}, got {limit}")));
        }
        let cursor = self.cursor.map(|c| Cursor::decode(&c)).transpose().map_err(QueryError::Cursor)?;
        let pattern = |field: &str, text: Option<String>| {
            text.filter(|t| !t.is_empty())
                .map(|t| Pattern::parse(&t).map_err(|e| QueryError::Invalid(format!("{field}: {e}"))))
                .transpose()
        };
        let filter = Filter {
            user,
            action: pattern("action", self.action)?,
            name: pattern("name", self.name)?,
            message: pattern("message", self.message)?,
            window,
            details,
        };
        Ok(SearchQuery { deadline: filter.search_deadline(), filter, limit, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_without_three_literal_characters_reads_row_by_row() {
        let filter = |action: &str, name: &str, message: &str| {
            let pattern = |p: &str| (!p.is_empty()).then(|| Pattern::new(p));
            Filter { action: pattern(action), name: pattern(name), message: pattern(message), ..Filter::all() }
        };
        for (row_by_row, f) in [
            (true, filter("", "e_", "")),
            (true, filter("%", "", "ab%cd")),
            (true, filter("up", "e_", "")),
            (false, filter("", "edge", "")),
            (false, filter("", "e_", "zulu")),
            (false, filter("upd", "", "")),
            (false, filter("%", "", "")),
            (false, Filter::all()),
        ] {
            assert_eq!(f.reads_row_by_row(), row_by_row, "{f:?}");
        }
        let budget = |f: &Filter| f.search_deadline().unwrap() - std::time::Instant::now();
        assert!(budget(&filter("", "e_", "")) <= ROW_BY_ROW_BUDGET);
        assert!(budget(&filter("", "edge", "")) > ROW_BY_ROW_BUDGET);
        let asked = |name: &str| SearchParams { name: Some(name.into()), ..SearchParams::default() };
        let deadline = |params: SearchParams| {
            params.into_query(None, DetailsReach::Everyone).unwrap().deadline.unwrap() - std::time::Instant::now()
        };
        assert!(deadline(asked("e_")) <= ROW_BY_ROW_BUDGET, "requests get the budget of their filter");
        assert!(deadline(asked("edge")) > ROW_BY_ROW_BUDGET);
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor { snapshot: EventId::new(500), before: EventId::new(401) };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "1", "a.b", "5.9", "-1.0", "1;DROP TABLE events", "9223372036854775807.0"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
        let last = format!("{}.{}", i64::MAX, i64::MAX);
        assert_eq!(Cursor::decode(&last).unwrap().before, EventId::new(i64::MAX), "the largest snapshot");
    }
}
