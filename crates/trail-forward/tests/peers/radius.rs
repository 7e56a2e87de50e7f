//! RADIUS accounting into a real FreeRADIUS, read back from its detail file with the
//! vendor-specific attributes named through the shipped `dictionary.trail`.

use crate::support::*;
use std::time::Duration;
use trail_core::EventId;

const WAIT: Duration = Duration::from_secs(30);

fn destination(servers: &[String], extra: &str) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[[destinations]]\nname = \"aaa\"\ntype = \"radius\"\nstart = \"oldest\"\nsecret = \"testing123\"\n\
         servers = [{}]\nretry_max_ms = 200\n{extra}",
        servers.join(", ")
    )
}

fn value<'a>(record: &'a [(String, String)], name: &str) -> Option<&'a str> {
    record.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn records_of(radius: &FreeRadius, event_id: EventId) -> Vec<Vec<(String, String)>> {
    let id = event_id.to_string();
    radius.records().into_iter().filter(|r| value(r, "Trail-Event-Id") == Some(&id)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_jobs_are_start_interim_and_stop_with_named_vendor_attributes() {
    let radius = FreeRadius::start();
    let trail = Trail::new(&destination(&[radius.address()], "")).await;
    let events = vec![
        event(
            serde_json::json!({"user": "alice", "kind": "AUTH_LOGIN_SUCCESS", "name": "alice", "client": "192.0.2.7",
            "outcome": "success", "session_id": "5e5510a", "message": "User alice logged in"}),
        ),
        event(serde_json::json!({"user": "alice", "kind": "DEVICE_EDITED", "name": "edge1", "session_id": "5e5510a",
            "message": "Device edge1 edited\nhostname: old -> new"})),
        event(serde_json::json!({"user": "alice", "kind": "JOB_SUBMITTED", "name": "archive edge routers",
            "job_id": "77", "session_id": "5e5510a", "message": "Job archive edge routers submitted"})),
        event(serde_json::json!({"user": "alice", "kind": "LEAF_OPERATION_COMPLETED", "name": "edge1", "job_id": "77",
            "outcome": "failure", "attributes": {"status": "failed"}, "message": "Operation edge1 finished: failed"})),
        event(serde_json::json!({"user": "alice", "kind": "OPERATION_COMPLETED", "name": "archive edge routers",
            "job_id": "77", "attributes": {"status": "succeeded"}, "message": "Operation finished"})),
        event(serde_json::json!({"user": "alice", "kind": "AUTH_LOGOUT", "name": "alice", "session_id": "5e5510a",
            "message": "User alice logged out"})),
        event(serde_json::json!({"user": "mallory", "kind": "AUTH_LOGIN_FAILURE", "name": "mallory",
            "outcome": "failure", "message": "Login failed for mallory"})),
    ];
    let at_ten = |mut body: trail_core::EventBody| {
        body.time = trail_core::time::parse_rfc3339("2026-11-21T10:00:00Z").unwrap();
        body
    };
    let ids = trail.append(events.into_iter().map(at_ten).collect()).await;
    eventually(WAIT, "seven accounting records", || (radius.records().len() >= 7).then_some(())).await;
    let expected = [
        ("Start", "5e5510a", "AUTH_LOGIN_SUCCESS", "alice"),
        ("Interim-Update", "5e5510a", "DEVICE_EDITED", "edge1"),
        ("Start", "job-77", "JOB_SUBMITTED", "archive edge routers"),
        ("Interim-Update", "job-77", "LEAF_OPERATION_COMPLETED", "edge1"),
        ("Stop", "job-77", "OPERATION_COMPLETED", "archive edge routers"),
        ("Stop", "5e5510a", "AUTH_LOGOUT", "alice"),
        ("Interim-Update", "event-7", "AUTH_LOGIN_FAILURE", "mallory"),
    ];
    for (id, (status, session, kind, object)) in ids.iter().zip(expected) {
        let records = records_of(&radius, *id);
        assert_eq!(records.len(), 1, "event {id} was recorded once");
        let record = &records[0];
        assert_eq!(value(record, "Acct-Status-Type"), Some(status), "{record:?}");
        assert_eq!(value(record, "Acct-Session-Id"), Some(session));
        assert_eq!(value(record, "Trail-Kind"), Some(kind), "vendor attributes are named: {record:?}");
        assert_eq!(value(record, "Trail-Object"), Some(object));
        assert_eq!(value(record, "NAS-Identifier"), Some("trail"));
        assert_eq!(value(record, "Event-Timestamp"), Some("Nov 21 2026 10:00:00 UTC"), "the event's own time");
        assert!(value(record, "Acct-Delay-Time").is_some());
    }
    let login = &records_of(&radius, ids[0])[0];
    assert_eq!(value(login, "User-Name"), Some("alice"));
    assert_eq!(value(login, "Calling-Station-Id"), Some("192.0.2.7"));
    assert_eq!(value(login, "Trail-Process"), Some("trail-auth"));
    assert_eq!(value(login, "Trail-Outcome"), Some("success"));
    let edit = &records_of(&radius, ids[1])[0];
    assert_eq!(value(edit, "Trail-Message"), Some("Device edge1 edited"), "line 1 only");
    assert_eq!(value(&records_of(&radius, ids[3])[0], "Trail-Severity"), Some("err"));
    assert_eq!(value(&records_of(&radius, ids[3])[0], "Trail-Job-Id"), Some("77"));
    assert_eq!(value(&records_of(&radius, ids[5])[0], "Acct-Terminate-Cause"), Some("User-Request"));
    trail.shut_down().await;
}

/// The bytes waiting in the receive queue of the UDP socket bound to `port` on 127.0.0.1, as
/// the kernel reports them (`/proc/net/udp`): what a stopped server has not read.
fn queued_bytes(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&local.as_str())).then(|| fields.get(4)?.split(':').nth(1)).flatten()
        })
        .filter_map(|rx| u64::from_str_radix(rx, 16).ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_sees_retransmissions_then_the_record_is_delivered() {
    let radius = FreeRadius::start();
    let timing = "initial_timeout_ms = 200\nmax_timeout_ms = 400\nmax_retransmits = 50\nmax_duration_ms = 20000";
    let trail = Trail::new(&destination(&[radius.address()], timing)).await;
    radius.pause();
    let ids = trail
        .append(vec![event(serde_json::json!({"user": "alice", "kind": "DEVICE_ADDED", "name": "edge9",
            "time": "2026-11-21T10:00:00Z", "message": "Device edge9 added"}))])
        .await;
    // Three transmissions wait in the stopped server's socket: the record was sent, and sent
    // again, and still counts as undelivered.
    let port: u16 = radius.address().rsplit(':').next().unwrap().parse().unwrap();
    let mut sizes = Vec::new();
    eventually(WAIT, "three transmissions queued at the silent server", || {
        let queued = queued_bytes(port);
        if queued > sizes.last().copied().unwrap_or(0) {
            sizes.push(queued);
        }
        (sizes.len() >= 3).then_some(())
    })
    .await;
    assert_eq!(
        trail.forwarding().reports()[0].delivered_through,
        EventId::ZERO,
        "not delivered while the server is silent"
    );
    radius.resume();
    eventually(WAIT, "delivery", || (trail.forwarding().reports()[0].delivered_through == ids[0]).then_some(())).await;
    // Each retransmission was a new packet (new identifier, updated Acct-Delay-Time), so the
    // server, once awake, recorded several.
    let records =
        eventually(WAIT, "the retransmissions", || Some(records_of(&radius, ids[0])).filter(|r| r.len() >= 3)).await;
    let delays: Vec<u64> = records.iter().map(|r| value(r, "Acct-Delay-Time").unwrap().parse().unwrap()).collect();
    assert!(delays.iter().all(|d| *d > 1000), "the delay counts from the event's own time: {delays:?}");
    trail.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswering_server_fails_over_to_the_next() {
    let radius = FreeRadius::start();
    let dead = format!("127.0.0.1:{}", free_port());
    let timing = "initial_timeout_ms = 100\nmax_timeout_ms = 200\nmax_retransmits = 1\nmax_duration_ms = 1000";
    let trail = Trail::new(&destination(&[dead, radius.address()], timing)).await;
    let ids = trail
        .append(
            (0..20)
                .map(|i| {
                    event(serde_json::json!({"user": "bob", "kind": "DEVICE_EDITED",
            "name": format!("d{i}"), "message": "edited"}))
                })
                .collect(),
        )
        .await;
    eventually(WAIT, "every record at the second server", || {
        ids.iter().all(|id| records_of(&radius, *id).len() == 1).then_some(())
    })
    .await;
    trail.shut_down().await;
}

/// Servers are tried in their order: while the first answers, the second receives nothing; when
/// the first falls silent, records go to the second. (A client that always used the last server,
/// or spread records over both, fails the first half.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_are_used_in_order_and_a_silent_first_fails_over_to_the_second() {
    let (first, second) = (FreeRadius::start(), FreeRadius::start());
    let timing = "initial_timeout_ms = 100\nmax_timeout_ms = 200\nmax_retransmits = 1\nmax_duration_ms = 1000";
    let trail = Trail::new(&destination(&[first.address(), second.address()], timing)).await;
    let edits = |from: usize| {
        (from..from + 10)
            .map(|i| event(serde_json::json!({"user": "bob", "kind": "DEVICE_EDITED", "name": format!("d{i}"), "message": "m"})))
            .collect::<Vec<_>>()
    };
    let early = trail.append(edits(0)).await;
    eventually(WAIT, "every record at the first server", || {
        early.iter().all(|id| records_of(&first, *id).len() == 1).then_some(())
    })
    .await;
    assert!(
        early.iter().all(|id| records_of(&second, *id).is_empty()),
        "the second server is not used while the first answers"
    );

    first.pause();
    let late = trail.append(edits(10)).await;
    eventually(WAIT, "every later record at the second server", || {
        late.iter().all(|id| records_of(&second, *id).len() == 1).then_some(())
    })
    .await;
    first.resume();
    trail.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_and_more_in_flight_share_the_identifier_space() {
    let radius = FreeRadius::start();
    let trail = Trail::new(&destination(&[radius.address()], "max_in_flight = 128")).await;
    let events = (0..1200)
        .map(|i| {
            event(serde_json::json!({"user": "bob", "kind": "AUTH_LOGIN_FAILURE", "name": format!("u{i}"),
            "message": "Login failed"}))
        })
        .collect();
    let ids = trail.append(events).await;
    eventually(WAIT, "1200 records", || (radius.records().len() >= 1200).then_some(())).await;
    let mut recorded: Vec<EventId> =
        radius.records().iter().filter_map(|r| value(r, "Trail-Event-Id")?.parse().ok()).collect();
    recorded.sort();
    recorded.dedup();
    assert_eq!(recorded, ids, "every event once at least, none missing");
    trail.shut_down().await;
}
