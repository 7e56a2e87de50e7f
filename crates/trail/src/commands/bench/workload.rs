//! The benchmark's events: ~300-byte messages with realistic words, spread over a year, from 20
//! users, with markers of known frequency for the search figures.

use crate::demo::Rng;
use serde::Serialize;
use trail_core::{EventBody, EventInput};

/// The seed of the events' random parts: every measurement draws the same events.
pub const SEED: u64 = 42;

pub const USERS: usize = 20;
/// One event in this many carries the selective marker.
pub const SELECTIVE_EVERY: u64 = 100_000;
pub const SELECTIVE_MARKER: &str = "INC-4711-QX";
/// The device the selective events happen on: one name in every `SELECTIVE_EVERY` events.
pub const SELECTIVE_DEVICE: &str = "core-4711";
/// About one event in five says "ntp server".
pub const COMMON_FILTER: &str = "ntp server";
/// The year the events span.
pub const YEAR_START: &str = "2025-01-01T00:00:00Z";
pub const YEAR_MICROS: i64 = 365 * 86_400 * 1_000_000;

const WORDS: [&str; 24] = [
    "uplink",
    "customer",
    "peering",
    "transit",
    "backup",
    "primary",
    "loopback",
    "management",
    "access",
    "core",
    "aggregation",
    "vlan",
    "bgp",
    "ospf",
    "isis",
    "mpls",
    "lag",
    "qos",
    "policer",
    "firewall",
    "filter",
    "route",
    "prefix",
    "community",
];
const KINDS: [(&str, &str); 6] = [
    ("CONFIG_COMMITTED", "Configuration committed to"),
    ("DEVICE_EDITED", "Device edited:"),
    ("ARCHIVE_COMPLETED", "Archive completed for"),
    ("RESTORE_COMPLETED", "Configuration restored on"),
    ("OBJECT_UPDATED", "Updated node"),
    ("INVENTORY_SCAN_COMPLETED", "Inventory scan of"),
];

pub fn user(index: usize) -> String {
    format!("operator{:02}", index % USERS)
}

pub fn device(rng: &mut Rng) -> String {
    format!("edge{}", rng.below(400))
}

/// One event as the API takes it (a plain struct: cheaper to serialize than a JSON map, and the
/// client shares the machine with the server).
#[derive(Serialize)]
pub struct BenchEvent {
    time: String,
    user: String,
    kind: &'static str,
    name: String,
    client: &'static str,
    message: String,
}

/// Event number `n` of `total`.
pub fn event(rng: &mut Rng, n: u64, total: u64, start_micros: i64) -> BenchEvent {
    let selective = n % SELECTIVE_EVERY == SELECTIVE_EVERY / 2;
    let device = if selective { SELECTIVE_DEVICE.to_owned() } else { device(rng) };
    let (kind, verb) = *rng.pick(&KINDS);
    let mut message = format!("{verb} {device}\ncomment: change ticket CHG{:06}", rng.below(1_000_000));
    if rng.below(5) == 0 {
        message.push_str(&format!("\nset system ntp server 192.0.2.{}", rng.below(250)));
    }
    if selective {
        message.push_str(&format!("\nincident {SELECTIVE_MARKER} opened"));
    }
    while message.len() < 280 {
        message.push_str(&format!(
            "\ninterface ge-0/0/{} description {} {}",
            rng.below(48),
            rng.pick(&WORDS),
            rng.pick(&WORDS)
        ));
    }
    let time = start_micros + (n as i128 * YEAR_MICROS as i128 / total.max(1) as i128) as i64;
    BenchEvent {
        time: trail_core::time::format_rfc3339(trail_core::time::from_micros(time)),
        user: user(rng.below(USERS)),
        kind,
        name: device,
        client: "192.0.2.10",
        message,
    }
}

/// The first `count` of `total` events as the server stores them (validated now), the same
/// events `ingest_batches` sends first: for measurements that bypass the server.
pub fn bodies(count: u64, total: u64) -> anyhow::Result<Vec<EventBody>> {
    let mut rng = Rng::new(SEED);
    let start = trail_core::time::to_micros(YEAR_START.parse()?);
    let now = jiff::Timestamp::now();
    (0..count)
        .map(|n| {
            let input: EventInput = serde_json::from_value(serde_json::to_value(event(&mut rng, n, total, start))?)?;
            input.validate(now).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect()
}
