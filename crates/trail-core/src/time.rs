//! Times: RFC 3339 with microseconds on the wire, and month/day windows in a viewer's time zone
//! (V4).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Microseconds since the Unix epoch, the stored form of a time.
pub fn to_micros(time: Timestamp) -> i64 {
    time.as_microsecond()
}

pub fn from_micros(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Events keep microseconds (E1); finer precision is dropped so a time round-trips exactly.
pub fn truncate_to_micros(time: Timestamp) -> Timestamp {
    from_micros(to_micros(time))
}

/// `2026-11-21T21:06:01.123456Z`: always UTC, always six fractional digits.
pub fn format_rfc3339(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>()
        .map_err(|error| format!("{text:?} is not an RFC 3339 time such as 2026-11-21T21:06:01.123456Z ({error})"))
}

/// Serde adapter for RFC 3339 timestamps.
pub mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_rfc3339(*time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// A half-open UTC window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl TimeWindow {
    pub fn contains(&self, time: Timestamp) -> bool {
        self.start <= time && time < self.end
    }
}

/// A calendar filter as a viewer gives it (V4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFilter {
    Month { year: i16, month: i8 },
    Day(Date),
}

impl DateFilter {
    /// Parses `YYYY-MM`.
    pub fn parse_month(text: &str) -> Result<DateFilter, String> {
        let bad = || format!("{text:?} is not a month: use YYYY-MM, such as 2026-03");
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year: i16 = year.parse().map_err(|_| bad())?;
        let month: i8 = month.parse().map_err(|_| bad())?;
        Date::new(year, month, 1).map_err(|_| bad())?;
        Ok(DateFilter::Month { year, month })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse_day(text: &str) -> Result<DateFilter, String> {
        let date: Date =
            text.parse().map_err(|_| format!("{text:?} is not a day: use YYYY-MM-DD, such as 2026-03-29"))?;
        if text.len() != 10 {
            return Err(format!("{text:?} is not a day: use YYYY-MM-DD, such as 2026-03-29"));
        }
        Ok(DateFilter::Day(date))
    }

    /// The UTC window covering the month or day in `tz`, from local midnight to local midnight,
    /// so a day across a DST change is 23 or 25 hours long.
    pub fn window(&self, tz: &TimeZone) -> Result<TimeWindow, String> {
        let (first, next) = match *self {
            DateFilter::Month { year, month } => {
                let first = Date::new(year, month, 1).map_err(|e| e.to_string())?;
                (first, first.checked_add(1.month()).map_err(|e| e.to_string())?)
            }
            DateFilter::Day(day) => (day, day.checked_add(1.day()).map_err(|e| e.to_string())?),
        };
        let start_of = |date: Date| {
            date.to_zoned(tz.clone())
                .and_then(|zoned| zoned.start_of_day())
                .map(|zoned| zoned.timestamp())
                .map_err(|e| e.to_string())
        };
        Ok(TimeWindow { start: start_of(first)?, end: start_of(next)? })
    }
}

/// Looks up an IANA time zone name (`Europe/Amsterdam`); `UTC` always works.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| format!("{name:?} is not a known IANA time zone, such as Europe/Amsterdam or UTC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(filter: DateFilter, tz: &str) -> (String, String) {
        let w = filter.window(&parse_time_zone(tz).unwrap()).unwrap();
        (format_rfc3339(w.start), format_rfc3339(w.end))
    }

    #[test]
    fn days_across_dst_are_23_and_25_hours() {
        let spring = window(DateFilter::parse_day("2026-03-29").unwrap(), "Europe/Amsterdam");
        assert_eq!(spring, ("2026-03-28T23:00:00.000000Z".into(), "2026-03-29T22:00:00.000000Z".into()));
        let autumn = window(DateFilter::parse_day("2026-10-25").unwrap(), "Europe/Amsterdam");
        assert_eq!(autumn, ("2026-10-24T22:00:00.000000Z".into(), "2026-10-25T23:00:00.000000Z".into()));
    }

    #[test]
    fn month_window_follows_the_zone() {
        let march = window(DateFilter::parse_month("2026-03").unwrap(), "America/New_York");
        assert_eq!(march, ("2026-03-01T05:00:00.000000Z".into(), "2026-04-01T04:00:00.000000Z".into()));
        let utc = window(DateFilter::parse_month("2026-12").unwrap(), "UTC");
        assert_eq!(utc, ("2026-12-01T00:00:00.000000Z".into(), "2027-01-01T00:00:00.000000Z".into()));
    }

    #[test]
    fn bad_dates_and_zones_are_explained() {
        assert!(DateFilter::parse_month("2026-13").unwrap_err().contains("YYYY-MM"));
        assert!(DateFilter::parse_month("26-01").is_err());
        assert!(DateFilter::parse_day("2026-02-30").unwrap_err().contains("YYYY-MM-DD"));
        assert!(parse_time_zone("Mars/Olympus").unwrap_err().contains("IANA"));
    }

    #[test]
    fn times_round_trip_with_microseconds() {
        let t = parse_rfc3339("2026-11-21T21:06:01.1234567+01:00").unwrap();
        let t = truncate_to_micros(t);
        assert_eq!(format_rfc3339(t), "2026-11-21T20:06:01.123456Z");
        assert_eq!(from_micros(to_micros(t)), t);
    }
}
