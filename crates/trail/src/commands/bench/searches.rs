//! The searches every backend is timed on, and what each is held to: P2's 5 ms for an
//! unfiltered page at any depth, 50 ms for the first page of any filter or combination
//! (issue 19), and for a selective filter 100 times less than `rg -i` over the export.

use super::{time_command, workload};
use std::path::Path;
use std::time::Duration;

const PAGE: Duration = Duration::from_millis(5);
const FILTERED: Duration = Duration::from_millis(50);

/// What `rg -i` looks for in the export, beside a selective search.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Grep {
    /// The message marker one event in `SELECTIVE_EVERY` carries.
    Marker,
    /// The device those events happen on.
    Device,
}

impl Grep {
    pub const ALL: [Grep; 2] = [Grep::Marker, Grep::Device];

    pub fn text(self) -> String {
        match self {
            Grep::Marker => workload::SELECTIVE_MARKER.to_lowercase(),
            Grep::Device => workload::SELECTIVE_DEVICE.to_owned(),
        }
    }
}

/// One timed search.
#[derive(Clone, Debug)]
pub struct Search {
    pub figure: &'static str,
    pub query: String,
    pub target: Duration,
    /// For a selective search, what `rg -i` looks for: the search should be 100 times faster.
    pub grep: Option<Grep>,
}

impl Search {
    /// Searches timed again on a server just started, against ten times their warm p50.
    pub fn checked_cold(&self) -> bool {
        self.grep.is_some() || self.figure == FIRST_PAGE
    }
}

const FIRST_PAGE: &str = "search: unfiltered first page";

/// Every search, on a trail whose newest id is `head`: pages at three depths, then filters on
/// each field alone and combined (V3), selective or common, matching or matching nothing.
pub fn searches(head: u64) -> Vec<Search> {
    let search = |figure, query: String, target, grep| Search { figure, query, target, grep };
    let filter = |figure, query: &str| search(figure, query.to_owned(), FILTERED, None);
    let (marker, device) = (Grep::Marker.text(), Grep::Device.text());
    let user = workload::user(7);
    vec![
        search(FIRST_PAGE, "all_users=true".into(), PAGE, None),
        search(
            "search: unfiltered page at 50% depth",
            format!("all_users=true&cursor={head}.{}", head / 2),
            PAGE,
            None,
        ),
        search(
            "search: unfiltered page at 99% depth",
            format!("all_users=true&cursor={head}.{}", head / 100),
            PAGE,
            None,
        ),
        search(
            "search: selective message filter",
            format!("all_users=true&message={marker}"),
            FILTERED,
            Some(Grep::Marker),
        ),
        filter(
            "search: common message filter",
            &format!("all_users=true&message={}", workload::COMMON_FILTER.replace(' ', "%20")),
        ),
        filter("search: user + month + substring", &format!("user={user}&month=2025-06&message=edge377")),
        search("search: name, selective", format!("all_users=true&name={device}"), FILTERED, Some(Grep::Device)),
        filter("search: name, common", "all_users=true&name=edge17"),
        filter("search: action alone", "all_users=true&action=restore"),
        filter("search: name + action", "all_users=true&name=edge17&action=commit"),
        filter("search: user + month + name", &format!("user={user}&month=2025-06&name=edge17")),
        filter("search: name with % and _", "all_users=true&name=edge1_7%25"),
        filter("search: name matching nothing", "all_users=true&name=zzzz"),
        filter("search: action matching nothing", "all_users=true&action=zzzz"),
        filter("search: name without 3 in a row, common", "all_users=true&name=e_"),
        filter("search: name without 3 in a row, matching nothing", "all_users=true&name=z_"),
    ]
}

/// `rg -i` over the export for each [`Grep`], timed once per run.
pub struct Greps(Vec<(Grep, Result<Duration, String>)>);

impl Greps {
    pub fn time(export: &Path) -> Greps {
        let path = export.to_str().unwrap_or_default();
        Greps(Grep::ALL.iter().map(|&grep| (grep, time_command("rg", &["-i", "-c", &grep.text(), path], 5))).collect())
    }

    pub fn of(&self, grep: Grep) -> Result<Duration, String> {
        self.0.iter().find(|(g, _)| *g == grep).map_or_else(|| Err("not timed".into()), |(_, time)| time.clone())
    }

    /// The baseline a search is held to: 100 times faster than `rg -i` for a selective one.
    pub fn baseline(&self, grep: Option<Grep>) -> Option<(&'static str, Duration, f64)> {
        grep.and_then(|grep| self.of(grep).ok()).map(|time| ("rg -i", time, 100.0))
    }

    /// Why `rg` could not be timed, if it could not.
    pub fn failure(&self) -> Option<String> {
        self.0.iter().find_map(|(_, time)| time.as_ref().err().cloned())
    }
}
