//! A deterministic, realistic dataset: a few thousand events over several months, from several
//! users, across every built-in kind, with change records holding multi-line configuration
//! diffs. `trail serve --demo` loads it into an empty trail; the benchmark reuses the generator.

use serde_json::{Value, json};
use trail_core::EventId;
use trail_core::catalog::BUILT_IN;
use trail_core::{Change, ChangeOp, EventBody, EventInput, VariableChange};
use trail_store::Store;

pub const DEMO_EVENTS: usize = 3000;

/// What the demonstration's events record as sent them.
const DEMO: &str = "trail demo";

const OPERATORS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
const DEVICES: [&str; 10] =
    ["edge1", "edge2", "edge3", "core1", "core2", "ams-pe1", "fra-pe2", "lon-rr1", "nyc-edge7", "zrh-süd1"];
const SITES: [&str; 4] = ["AMS", "FRA", "LON", "ZRH"];
const CLIENTS: [&str; 4] = ["192.0.2.10", "192.0.2.23", "198.51.100.7", "2001:db8::42"];

/// SplitMix64: small, fast and the same everywhere, so the demo is identical on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn config(device: &str, revision: usize) -> String {
    format!(
        "hostname {device}\ninterface ge-0/0/0\n description uplink to core (rev {revision})\n mtu {}\n\
         interface ge-0/0/1\n description customer {}\nntp server 192.0.2.{}\nsnmp location rack {}\n\
         logging host 192.0.2.9\n",
        1500 + (revision % 3) * 3856,
        revision % 40,
        1 + revision % 4,
        revision % 12
    )
}

fn change_event(rng: &mut Rng, user: &str, device: &str, revision: usize) -> Value {
    let change = Change {
        op: ChangeOp::Update,
        object: "node".into(),
        table: "nodes".into(),
        keys: serde_json::from_value(json!({"hostname": device, "site": SITES[revision % SITES.len()]}))
            .unwrap_or_default(),
        changes: vec![
            VariableChange {
                variable: "config".into(),
                old: Some(config(device, revision)),
                new: Some(config(device, revision + 1)),
                secret: false,
            },
            VariableChange {
                variable: "snmp_community".into(),
                old: Some("public".into()),
                new: Some(format!("c{}", rng.next() % 1000)),
                secret: true,
            },
        ],
    }
    .masked();
    json!({"user": user, "kind": "DEVICE_EDITED", "name": device, "message": change.render(), "change": change})
}

/// The `index`-th event at `time`, chosen and worded deterministically from `rng`.
pub fn event(rng: &mut Rng, index: usize, time: jiff::Timestamp) -> EventBody {
    let user = *rng.pick(&OPERATORS);
    let device = *rng.pick(&DEVICES);
    let client = *rng.pick(&CLIENTS);
    let failed = rng.below(10) == 0;
    let spec = rng.pick(BUILT_IN);
    let mut value = if spec.kind == "DEVICE_EDITED" && rng.below(2) == 0 {
        change_event(rng, user, device, index)
    } else {
        let (actor, name) = match spec.process {
            "tftpd" => ("tftpd", format!("{device}.conf")),
            "trail-auth" | "trail-users" => (user, (*rng.pick(&OPERATORS)).to_owned()),
            "jobs" => (user, format!("archive {device}")),
            _ => (user, device.to_owned()),
        };
        let summary = trail_core::catalog::render_summary(spec.summary, actor, &name, client, |key| {
            (key == "status").then(|| if failed { "failed" } else { "succeeded" }.to_owned())
        });
        let detail = match spec.kind {
            "AUTH_LOGIN_FAILURE" => "\nreason: bad password".to_owned(),
            "CONFIG_COMMITTED" => format!(
                "\ncomment: change ticket CHG{:05}\n[edit system]\n-  ntp server 192.0.2.1;\n+  ntp server 192.0.2.2;",
                index
            ),
            "INVENTORY_SCAN_COMPLETED" => format!("\nchassis MX204, serial JN{:08X}", rng.next() as u32),
            _ => String::new(),
        };
        let failure = if failed { " (failed)" } else { "" };
        json!({"user": actor, "kind": spec.kind, "name": name, "message": format!("{summary}{failure}{detail}"),
               "attributes": {"device": device, "ticket": format!("CHG{:05}", index % 997)}})
    };
    let object = value.as_object_mut().expect("an object");
    object.insert("time".into(), json!(trail_core::time::format_rfc3339(time)));
    object.insert("client".into(), json!(client));
    if failed {
        object.insert("outcome".into(), json!("failure"));
    }
    if spec.process == "jobs" {
        object.insert("job_id".into(), json!(format!("{}", 1000 + index / 7)));
    }
    let input: EventInput = serde_json::from_value(value).expect("demo events are well formed");
    let mut body = input.validate(time).expect("demo events are valid");
    body.submitted_by = Some(DEMO.to_owned());
    body
}

/// Loads the demo into an empty store; returns how many events were loaded (0 if not empty).
pub async fn load_if_empty(store: &dyn Store) -> anyhow::Result<usize> {
    if store.stats().await?.head > EventId::ZERO {
        return Ok(0);
    }
    let start: jiff::Timestamp = "2026-06-01T06:00:00Z".parse()?;
    let step_micros = 150 * 86_400 * 1_000_000 / DEMO_EVENTS as i64;
    let mut rng = Rng::new(0x7261_696c);
    let events: Vec<EventBody> = (0..DEMO_EVENTS)
        .map(|i| {
            let jitter = (rng.next() % 3_600_000_000) as i64;
            let time = jiff::Timestamp::from_microsecond(start.as_microsecond() + i as i64 * step_micros + jitter)
                .unwrap_or(start);
            event(&mut rng, i, time)
        })
        .collect();
    for batch in events.chunks(1000) {
        store.append(batch.to_vec()).await?;
    }
    Ok(DEMO_EVENTS + load_jobs(store).await?)
}

/// Three jobs: one finished with mixed results, one succeeded, one still running (for the
/// status view), each with a log. Answers how many events they recorded.
async fn load_jobs(store: &dyn Store) -> anyhow::Result<usize> {
    use trail_core::operations::{LogEntry, NewJob, Status, StatusReport};
    let at = |minutes: i64| -> anyhow::Result<jiff::Timestamp> {
        Ok("2026-10-30T08:00:00Z".parse::<jiff::Timestamp>()? + jiff::SignedDuration::from_mins(minutes))
    };
    // (target, final status, message)
    type Leaves = &'static [(&'static str, Status, &'static str)];
    let plans: [(&str, &str, Leaves); 3] = [
        (
            "archive edge routers",
            "maria",
            &[
                ("edge1", Status::Succeeded, "archived 412 lines"),
                ("edge2", Status::Succeeded, "archived 398 lines"),
                ("edge3", Status::Failed, "ssh: connection timed out after 30 s"),
                ("edge4", Status::Succeeded, "archived 405 lines"),
                ("edge5", Status::Cancelled, "cancelled by maria"),
            ],
        ),
        (
            "inventory core",
            "jonas",
            &[("core1", Status::Succeeded, "12 modules"), ("core2", Status::Succeeded, "14 modules")],
        ),
        ("restore edge3", "maria", &[("edge3", Status::Running, "loading archive of 2026-10-29")]),
    ];
    let mut recorded = 0;
    for (n, (name, submitter, leaves)) in plans.iter().enumerate() {
        let start = n as i64 * 90;
        let job = store
            .create_job(NewJob {
                name: (*name).to_owned(),
                targets: leaves.iter().map(|(t, _, _)| (*t).to_owned()).collect(),
                submitter: (*submitter).to_owned(),
                submitted_at: at(start)?,
                request_id: Some(format!("demo-request-{}", n + 1)),
                session_id: None,
                client: Some("192.0.2.10".into()),
                submitted_by: DEMO.to_owned(),
            })
            .await?;
        recorded += 1;
        let mut log = Vec::new();
        for (i, (target, status, message)) in leaves.iter().enumerate() {
            let minute = start + 1 + i as i64;
            let report = StatusReport::new(job.id, target, Status::Running, "", at(minute)?, DEMO);
            recorded += store.report_leaf(report).await?.event_ids.len();
            log.push(LogEntry {
                time: at(minute)?,
                target: Some((*target).to_owned()),
                text: format!("connecting to {target}"),
            });
            log.push(LogEntry {
                time: at(minute)?,
                target: Some((*target).to_owned()),
                text: format!("{target}> show configuration | display set\n{message}"),
            });
            if *status != Status::Running {
                let report = StatusReport::new(job.id, target, *status, message, at(minute + 1)?, DEMO);
                recorded += store.report_leaf(report).await?.event_ids.len();
            }
        }
        store.append_job_log(job.id, log).await?;
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_deterministic_and_covers_every_kind() {
        let time: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let make = || {
            let mut rng = Rng::new(1);
            (0..DEMO_EVENTS).map(|i| event(&mut rng, i, time)).collect::<Vec<_>>()
        };
        let events = make();
        assert_eq!(events, make());
        for spec in BUILT_IN {
            assert!(events.iter().any(|e| e.kind == spec.kind), "{} is in the demo", spec.kind);
        }
        assert!(events.iter().any(|e| e.message.contains("---------- diff ----------")));
        assert!(events.iter().all(|e| !e.message.contains("public")), "secrets are masked");
    }
}
