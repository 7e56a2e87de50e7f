//! Syslog over UDP, TCP (octet-counted and LF-framed) and TLS into a real rsyslog, checked
//! field by field as rsyslog parsed them, for every catalog kind.

use crate::support::*;
use std::time::Duration;
use trail_core::EventId;
use trail_core::catalog::BUILT_IN;

const WAIT: Duration = Duration::from_secs(30);

/// One event of every built-in kind, with a multi-line message and an attribute that needs
/// escaping.
fn every_kind() -> Vec<trail_core::EventBody> {
    BUILT_IN
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            event(serde_json::json!({
                "time": format!("2026-11-21T10:00:{:02}.{:06}Z", i % 60, 100_000 + i),
                "user": "alice",
                "kind": spec.kind,
                "name": format!("edge{i}"),
                "message": format!("{} line one\nline two ✓", spec.kind),
                "attributes": {"detail": "quote\" bracket] backslash\\"},
            }))
        })
        .collect()
}

/// The line rsyslog's `parsed` template writes for the event stored under `id`.
fn expected_line(id: EventId, body: &trail_core::EventBody) -> String {
    let spec = trail_core::catalog::lookup(&body.kind).unwrap();
    let facility = if body.kind.starts_with("AUTH_") { 10 } else { 16 };
    format!(
        "pri={} app={} procid={} msgid={} time={} sd=[trail@32473 id=\"{id}\" user=\"alice\" action=\"{}\" name=\"{}\" \
         detail=\"quote\\\" bracket\\] backslash\\\\\"] msg=\u{feff}{}",
        facility * 8 + u32::from(spec.severity.code()),
        spec.process,
        std::process::id(),
        body.kind,
        trail_forward::syslog::encoder::timestamp_5424(body.time),
        spec.action,
        body.name,
        body.message.replace('\n', "#012"),
    )
}

async fn every_catalog_kind_arrives(rsyslog: &Rsyslog, destination: &str, ordered: bool) {
    let trail =
        Trail::new(&format!("[[destinations]]\nname = \"siem\"\ntype = \"syslog\"\nstart = \"oldest\"\n{destination}"))
            .await;
    let events = every_kind();
    let ids = trail.append(events.clone()).await;
    let mut lines =
        eventually(WAIT, "every kind at rsyslog", || Some(rsyslog.parsed()).filter(|l| l.len() >= events.len())).await;
    let mut expected: Vec<String> = ids.iter().zip(&events).map(|(id, body)| expected_line(*id, body)).collect();
    if !ordered {
        lines.sort();
        expected.sort();
    }
    assert_eq!(lines.len(), expected.len(), "no duplicates on a healthy connection");
    for (line, expected) in lines.iter().zip(&expected) {
        assert_eq!(line, expected);
    }
    let report = &trail.forwarding().reports()[0];
    assert_eq!(report.last_error, None);
    trail.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_over_udp() {
    let rsyslog = Rsyslog::start(SyslogKind::Plain);
    every_catalog_kind_arrives(&rsyslog, &format!("url = \"{}\"", rsyslog.url("udp")), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_over_tcp_octet_counted() {
    let rsyslog = Rsyslog::start(SyslogKind::Plain);
    every_catalog_kind_arrives(&rsyslog, &format!("url = \"{}\"", rsyslog.url("tcp")), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_over_tcp_lf_framed() {
    let rsyslog = Rsyslog::start(SyslogKind::Plain);
    every_catalog_kind_arrives(&rsyslog, &format!("url = \"{}\"\nframing = \"lf\"", rsyslog.url("tcp")), true).await;
    let raw = std::fs::read_to_string(rsyslog.dir.path().join("out.log")).unwrap();
    assert!(raw.contains("line one#012line two"), "line feeds inside a message travel as #012");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_over_tls() {
    let rsyslog = Rsyslog::start(SyslogKind::Tls);
    let destination = format!("url = \"{}\"\nca_file = {:?}", rsyslog.url("tls"), rsyslog.ca_file());
    every_catalog_kind_arrives(&rsyslog, &destination, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_server_with_the_wrong_name() {
    let rsyslog = Rsyslog::start(SyslogKind::Tls);
    let trail = Trail::new(&format!(
        "[[destinations]]\nname = \"siem\"\ntype = \"syslog\"\nstart = \"oldest\"\nurl = \"{}\"\nca_file = {:?}\n\
         server_name = \"siem.example.net\"\nretry_max_ms = 200",
        rsyslog.url("tls"),
        rsyslog.ca_file()
    ))
    .await;
    trail.append(every_kind()).await;
    let error = eventually(WAIT, "a certificate error", || trail.forwarding().reports()[0].last_error.clone()).await;
    assert!(error.message.contains("certificate"), "{}", error.message);
    assert_eq!(trail.forwarding().reports()[0].delivered_through, EventId::ZERO);
    assert!(rsyslog.parsed().is_empty(), "nothing goes to a server that fails the check");
    trail.shut_down().await;
}

/// The ids in the `id="N"` of each line, in arrival order.
pub fn arrived_ids(rsyslog: &Rsyslog) -> Vec<EventId> {
    rsyslog.parsed().iter().filter_map(|line| line.split("id=\"").nth(1)?.split('"').next()?.parse().ok()).collect()
}

/// Every id in `1..=last` arrived, and first arrivals are in id order (resends may repeat a
/// few, never reorder).
pub fn all_in_order(ids: &[EventId], last: i64) -> bool {
    let mut first_seen = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if seen.insert(*id) {
            first_seen.push(*id);
        }
    }
    first_seen == (1..=last).map(EventId::new).collect::<Vec<_>>()
}

fn numbered(n: usize, from: usize) -> Vec<trail_core::EventBody> {
    (from..from + n)
        .map(|i| event(serde_json::json!({"user": "bob", "kind": "DEVICE_EDITED", "name": format!("d{i}"), "message": format!("change {i}")})))
        .collect()
}

fn tcp_destination(rsyslog: &Rsyslog) -> String {
    format!(
        "[[destinations]]\nname = \"siem\"\ntype = \"syslog\"\nstart = \"oldest\"\nurl = \"{}\"\nretry_max_ms = 200",
        rsyslog.url("tcp")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_built_while_the_peer_is_down_arrives_in_order() {
    let mut rsyslog = Rsyslog::start(SyslogKind::Plain);
    rsyslog.stop();
    let trail = Trail::new(&tcp_destination(&rsyslog)).await;
    trail.append(numbered(300, 0)).await;
    let error = eventually(WAIT, "a connection error", || trail.forwarding().reports()[0].last_error.clone()).await;
    assert!(error.message.contains("cannot connect"), "{}", error.message);
    let report = &trail.forwarding().reports()[0];
    assert_eq!((report.backlog, report.state.as_str()), (300, "retrying"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    rsyslog.restart();
    eventually(WAIT, "the backlog, in order", || all_in_order(&arrived_ids(&rsyslog), 300).then_some(())).await;
    eventually(WAIT, "the backlog at zero", || (trail.forwarding().reports()[0].backlog == 0).then_some(())).await;
    trail.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_hangs_and_restarts_mid_stream_misses_nothing() {
    let mut rsyslog = Rsyslog::start(SyslogKind::Plain);
    let trail = Trail::new(&tcp_destination(&rsyslog)).await;
    for batch in 0..40 {
        trail.append(numbered(25, batch * 25)).await;
        tokio::time::sleep(Duration::from_millis(25)).await;
        // Hung, then crashed: the writes of the hung time succeeded, and were lost.
        if batch == 15 {
            rsyslog.freeze();
        }
        if batch == 20 {
            rsyslog.kill();
        }
        if batch == 25 {
            rsyslog.restart();
        }
    }
    eventually(WAIT, "all 1000 events", || all_in_order(&arrived_ids(&rsyslog), 1000).then_some(())).await;
    assert!(trail.forwarding().reports()[0].last_error.is_some(), "the outage was noticed");
    trail.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trail_restarted_with_a_backlog_loses_nothing() {
    let mut rsyslog = Rsyslog::start(SyslogKind::Plain);
    rsyslog.stop();
    let trail = Trail::new(&tcp_destination(&rsyslog)).await;
    trail.append(numbered(150, 0)).await;
    let path = trail.path.clone();
    let dir = trail.shut_down().await;
    let trail = Trail::open(&path, &tcp_destination(&rsyslog)).await;
    trail.append(numbered(150, 150)).await;
    rsyslog.restart();
    eventually(WAIT, "both halves of the backlog", || all_in_order(&arrived_ids(&rsyslog), 300).then_some(())).await;
    trail.shut_down().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_offers_the_client_certificate() {
    let rsyslog = Rsyslog::start(SyslogKind::MutualTls);
    let dir = rsyslog.dir.path();
    let tls = format!("url = \"{}\"\nca_file = {:?}\nretry_max_ms = 200", rsyslog.url("tls"), rsyslog.ca_file());
    let without =
        Trail::new(&format!("[[destinations]]\nname = \"siem\"\ntype = \"syslog\"\nstart = \"oldest\"\n{tls}")).await;
    without.append(numbered(5, 100)).await;
    eventually(WAIT, "a refusal", || without.forwarding().reports()[0].last_error.clone()).await;
    without.shut_down().await;

    let with = Trail::new(&format!(
        "[[destinations]]\nname = \"siem\"\ntype = \"syslog\"\nstart = \"oldest\"\n{tls}\nclient_cert = {:?}\nclient_key = {:?}",
        dir.join("client.pem"),
        dir.join("client.key")
    ))
    .await;
    with.append(numbered(5, 0)).await;
    eventually(WAIT, "five events", || all_in_order(&arrived_ids(&rsyslog), 5).then_some(())).await;
    // Checked once something did arrive, not after a pause: nothing sent without the
    // certificate ("change 100" to "change 104") was taken.
    let parsed = rsyslog.parsed();
    assert!(!parsed.iter().any(|line| line.contains("change 10")), "taken without a certificate: {parsed:?}");
    with.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3164_is_parsed_by_rsyslog() {
    let rsyslog = Rsyslog::start(SyslogKind::Plain);
    let trail = Trail::new(&format!(
        "[[destinations]]\nname = \"old\"\ntype = \"syslog\"\nstart = \"oldest\"\nurl = \"{}\"\nformat = \"rfc3164\"\nfacility = \"daemon\"",
        rsyslog.url("tcp")
    ))
    .await;
    trail
        .append(vec![event(serde_json::json!({"user": "alice", "kind": "TFTP_REFUSED", "name": "edge1.conf",
            "client": "192.0.2.9", "message": "TFTP request for edge1.conf from 192.0.2.9 refused"}))])
        .await;
    let lines = eventually(WAIT, "one message", || Some(rsyslog.parsed()).filter(|l| !l.is_empty())).await;
    let expected = format!("pri={} app=tftpd procid={} msgid=- time=", 3 * 8 + 4, std::process::id());
    assert!(lines[0].starts_with(&expected), "{}", lines[0]);
    assert!(
        lines[0].ends_with(" sd=- msg= TFTP_REFUSED: TFTP request for edge1.conf from 192.0.2.9 refused"),
        "{}",
        lines[0]
    );
    trail.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_forwards_only_its_selection_and_passes_the_rest() {
    let rsyslog = Rsyslog::start(SyslogKind::Plain);
    let trail = Trail::new(&format!(
        "[[destinations]]\nname = \"security\"\ntype = \"syslog\"\nstart = \"oldest\"\nurl = \"{}\"\n\
         min_severity = \"warning\"\nkinds = [\"AUTH_*\", \"TFTP_REFUSED\"]",
        rsyslog.url("tcp")
    ))
    .await;
    let event_of = |kind: &str| event(serde_json::json!({"user": "u", "kind": kind, "name": "n", "message": "m"}));
    let ids = trail
        .append(vec![
            event_of("AUTH_LOGIN_FAILURE"),  // warning: sent
            event_of("AUTH_LOGOUT"),         // info: below the minimum
            event_of("DEVICE_EDITED"),       // another kind
            event_of("TFTP_REFUSED"),        // warning: sent
            event_of("AUTH_ACCOUNT_LOCKED"), // warning: sent
        ])
        .await;
    // A selected event after the batch: once it has arrived, so has everything sent before it
    // (one connection, in order), so what is missing was not sent, with no pause to guess by.
    let marker = trail.append(vec![event_of("AUTH_LOGIN_FAILURE")]).await[0];
    eventually(WAIT, "the marker", || arrived_ids(&rsyslog).contains(&marker).then_some(())).await;
    assert_eq!(arrived_ids(&rsyslog), vec![ids[0], ids[3], ids[4], marker]);
    eventually(WAIT, "the whole batch passed", || (trail.forwarding().reports()[0].backlog == 0).then_some(())).await;
    trail.shut_down().await;
}

/// A message cut inside its structured data (a name of 1,000 `"` signs, 2,000 bytes escaped, over
/// UDP's 2,048) is still RFC 5424: rsyslog's parser reads its MSGID and a closed SD element
/// marked truncated, where a message cut inside an escaped value falls back to RFC 3164.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_cut_inside_its_fields_is_still_parsed_as_rfc5424() {
    let rsyslog = Rsyslog::start(SyslogKind::Plain);
    let trail = Trail::new(&format!(
        "[[destinations]]\nname = \"udp\"\ntype = \"syslog\"\nstart = \"oldest\"\nurl = \"{}\"",
        rsyslog.url("udp")
    ))
    .await;
    let name = "\"".repeat(1000);
    trail
        .append(vec![event(serde_json::json!({"user": "alice", "kind": "DEVICE_EDITED", "name": name,
        "client": "192.0.2.9", "message": "Device edited"}))])
        .await;
    let lines = eventually(WAIT, "the cut message", || Some(rsyslog.parsed()).filter(|l| !l.is_empty())).await;
    let line = &lines[0];
    assert!(line.contains(" msgid=DEVICE_EDITED "), "parsed as RFC 5424: {line}");
    let sd = line.split(" sd=").nth(1).and_then(|rest| rest.split(" msg=").next()).unwrap();
    assert!(sd.starts_with("[trail@32473 id=") && sd.ends_with(" truncated=\"true\"]"), "{sd}");
    assert!(sd.contains(r#"name="\"\"\""#) && !sd.contains("client="), "{sd}");
    trail.shut_down().await;
}
