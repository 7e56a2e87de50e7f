//! Search requests (V1-V5): filters, pages and keyset cursors.

use crate::event::{EventBody, EventId};
use crate::pattern::Pattern;
use crate::time::{self, TimeWindow};

/// V1: pages of 100 by default; the API may ask for other sizes within this bound.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// Whose entries to show (V2). "Own" is resolved at the edge into `Only(viewer)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    All,
    Only(String),
}

/// All filters of one search; every one must hold (V3).
#[derive(Debug, Clone)]
pub struct Filter {
    pub user: UserFilter,
    pub action: Option<Pattern>,
    pub name: Option<Pattern>,
    pub message: Option<Pattern>,
    pub window: Option<TimeWindow>,
}

impl Filter {
    pub fn all() -> Filter {
        Filter { user: UserFilter::All, action: None, name: None, message: None, window: None }
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
            && pattern_holds(&self.message, &event.message)
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
        if snapshot < 0 || before < 1 || before > snapshot + 1 {
            return Err(bad());
        }
        Ok(Cursor { snapshot, before })
    }
}

/// One search request.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub filter: Filter,
    pub limit: usize,
    /// `None` for the first page: the backend takes a new snapshot.
    pub cursor: Option<Cursor>,
}

/// One page, newest first.
#[derive(Debug, Clone)]
pub struct SearchPage<E> {
    pub events: Vec<E>,
    pub next_cursor: Option<Cursor>,
    /// How many matching entries were added after the snapshot (V5), counted up to
    /// [`NEWER_COUNT_CAP`].
    pub newer: u64,
}

/// Counting newer entries stops here; the UI shows "10000+".
pub const NEWER_COUNT_CAP: u64 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor { snapshot: 500, before: 401 };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "1", "a.b", "5.9", "-1.0", "1;DROP TABLE events"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
