//! P3: forwarding, measured against a real rsyslog and a real FreeRADIUS, each beside a baseline
//! run on the same machine in the same run:
//!
//! - throughput: a trail of N events forwarded to rsyslog over TCP, beside rsyslog itself
//!   relaying the same N messages (imtcp to omfwd into a second rsyslog);
//! - latency at 1,000 events/s: from each POST until rsyslog has the message, beside the same
//!   rate through the rsyslog relay. Sending starts after the commit and ends before rsyslog has
//!   the message, so this bounds commit-to-send from above;
//! - RADIUS: accounting requests per second into FreeRADIUS, beside radclient sending the same
//!   number with the same parallelism;
//! - S4: from an event's commit until rsyslog's file holds a checkpoint that covers it (the
//!   target is `every_seconds` + 2 s).

use super::report::{Percentiles, Report, ms, rate, thousands};
use super::{BenchArgs, Server, TOKEN, client, tempfile_dir, workload};
use crate::demo::Rng;
use anyhow::{Context, bail};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use trail_core::EventId;
use trail_core::{Event, EventBody, EventInput};
use trail_forward::peers::{FreeRadius, Rsyslog, program};
use trail_store::prelude::*;
use trail_store_sqlite::SqliteStore;

/// An rsyslog that writes, per message, the time it arrived and its structured data.
fn sink(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        "global(workDirectory=\"{dir}\" maxMessageSize=\"64k\")\nmodule(load=\"imtcp\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"sink\")\n\
         template(name=\"arrival\" type=\"string\" string=\"%timegenerated:::date-rfc3339% %structured-data%\\n\")\n\
         ruleset(name=\"sink\") {{ action(type=\"omfile\" file=\"{dir}/arrived.log\" template=\"arrival\") }}\n"
    )
}

/// An rsyslog relaying everything it receives over TCP to `to`, unchanged (RFC 5424 out).
fn relay(dir: &Path, port: u16, to: u16) -> String {
    let dir = dir.display();
    format!(
        "global(workDirectory=\"{dir}\" maxMessageSize=\"64k\")\nmodule(load=\"imtcp\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"relay\")\n\
         ruleset(name=\"relay\") {{ action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{to}\" protocol=\"tcp\" \
         TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\") }}\n"
    )
}

fn arrived(rsyslog: &Rsyslog) -> Vec<u8> {
    std::fs::read(rsyslog.dir.path().join("arrived.log")).unwrap_or_default()
}

fn lines_arrived(rsyslog: &Rsyslog) -> usize {
    arrived(rsyslog).iter().filter(|b| **b == b'\n').count()
}

/// Waits until `rsyslog` has `count` messages; fails after `limit`.
async fn wait_for_lines(rsyslog: &Rsyslog, count: usize, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while lines_arrived(rsyslog) < count {
        if started.elapsed() > limit {
            bail!("rsyslog has {} of {count} messages after {limit:?}", lines_arrived(rsyslog));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn bench_events(count: u64, seed: u64) -> anyhow::Result<Vec<EventBody>> {
    let mut rng = Rng::new(seed);
    let start = trail_core::time::to_micros(workload::YEAR_START.parse()?);
    (0..count)
        .map(|n| {
            let input: EventInput =
                serde_json::from_value(serde_json::to_value(workload::event(&mut rng, n, count, start))?)?;
            Ok(input.validate(jiff::Timestamp::now())?)
        })
        .collect()
}

/// A trail holding `count` events, written directly, and its events as stored.
async fn preloaded(data: &Path, count: u64) -> anyhow::Result<Vec<Event>> {
    let store = SqliteStore::open(data.join(crate::config::DATABASE_FILE))?;
    let events = bench_events(count, 7)?;
    for chunk in events.chunks(5000) {
        store.append(chunk.to_vec()).await?;
    }
    let mut stored = Vec::with_capacity(count as usize);
    while stored.len() < count as usize {
        let after = stored.last().map_or(EventId::ZERO, |e: &Event| e.id);
        stored.extend(store.read_after(after, 10_000).await?);
    }
    Ok(stored)
}

fn write_config(dir: &Path, destination: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("trail.toml");
    std::fs::write(&path, format!("[[destinations]]\nname = \"bench\"\n{destination}"))?;
    Ok(path)
}

/// Trail forwarding a preloaded backlog to rsyslog, and rsyslog relaying the same messages.
async fn throughput(report: &mut Report, root: &Path, count: u64) -> anyhow::Result<()> {
    let data = root.join("throughput");
    let events = preloaded(&data, count).await?;
    let target = Rsyslog::with_config(sink);
    let config = write_config(
        &data,
        &format!("type = \"syslog\"\nurl = \"tcp://127.0.0.1:{}\"\nstart = \"oldest\"\n", target.port),
    )?;
    let started = Instant::now();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap_or_default()])?;
    // The backlog, and the administrator account the first start creates.
    wait_for_lines(&target, count as usize + 1, Duration::from_secs(600)).await?;
    let trail_time = started.elapsed();
    let server_cpu = server.cpu_seconds().unwrap_or(0.0);
    let peak_mib = server.peak_memory_mib().unwrap_or(0.0);
    drop(server);

    let final_sink = Rsyslog::with_config(sink);
    let to = final_sink.port;
    let relaying = Rsyslog::with_config(|dir, port| relay(dir, port, to));
    let encoder_config: trail_forward::syslog::SyslogConfig =
        toml::from_str(&format!("url = \"tcp://127.0.0.1:{}\"", relaying.port))?;
    let encoder = trail_forward::syslog::Encoder::new(&encoder_config, trail_forward::syslog::config::Transport::Tcp)
        .map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let mut stream = std::io::BufWriter::new(std::net::TcpStream::connect(("127.0.0.1", relaying.port))?);
    for event in &events {
        let message = encoder.encode(event);
        write!(stream, "{} ", message.len())?;
        stream.write_all(&message)?;
    }
    stream.flush()?;
    wait_for_lines(&final_sink, count as usize, Duration::from_secs(600)).await?;
    let relay_time = started.elapsed();

    let (trail_rate, relay_rate) = (rate(count, trail_time), rate(count, relay_time));
    report.throughput("forward: to rsyslog over TCP", trail_rate, "messages", 100_000.0);
    report.note(
        "  baseline: rsyslog relaying the same messages",
        format!(
            "{} messages/s ({:.2}x Trail's time)",
            thousands(relay_rate),
            relay_time.as_secs_f64() / trail_time.as_secs_f64()
        ),
        "",
        None,
    );
    report.note(
        "  Trail's CPU",
        format!("{server_cpu:.1} s for {} messages in {:.1} s", thousands(count as f64), trail_time.as_secs_f64()),
        "",
        None,
    );
    report.note(
        "  Trail's peak resident memory",
        format!("{peak_mib:.0} MiB (the backlog is read 512 at a time)"),
        "<= 200 MiB (P4)",
        Some(peak_mib <= 200.0),
    );
    Ok(())
}

/// Arrival times by the value of `field` in each line's structured data (`seq` for the probes,
/// `size` for CHECKPOINT events); lines without it are left out.
fn arrivals_by(rsyslog: &Rsyslog, field: &str) -> std::collections::HashMap<u64, jiff::Timestamp> {
    let text = String::from_utf8_lossy(&arrived(rsyslog)).into_owned();
    let prefix = format!(" {field}=\"");
    text.lines()
        .filter_map(|line| {
            let (time, rest) = line.split_once(' ')?;
            let value = rest.split(prefix.as_str()).nth(1)?.split('"').next()?.parse().ok()?;
            Some((value, time.parse().ok()?))
        })
        .collect()
}

fn arrivals(rsyslog: &Rsyslog) -> std::collections::HashMap<u64, jiff::Timestamp> {
    arrivals_by(rsyslog, "seq")
}

/// Waits until `rsyslog` has a line for every `seq` below `count` (other events, such as the
/// administrator's creation or checkpoints, arrive too, and are not counted).
async fn wait_for_probes(rsyslog: &Rsyslog, count: u64, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let arrived = arrivals(rsyslog);
        if (0..count).all(|seq| arrived.contains_key(&seq)) {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("rsyslog has {} of {count} probes after {limit:?}", arrived.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn since(start: jiff::Timestamp, end: jiff::Timestamp) -> Duration {
    Duration::try_from(end.duration_since(start)).unwrap_or(Duration::ZERO)
}

/// Events at 1,000 per second, each timed from its POST to its arrival at rsyslog.
async fn latency(report: &mut Report, root: &Path, seconds: u64) -> anyhow::Result<()> {
    let data = root.join("latency");
    std::fs::create_dir_all(&data)?;
    let target = Rsyslog::with_config(sink);
    let config = write_config(&data, &format!("type = \"syslog\"\nurl = \"tcp://127.0.0.1:{}\"\n", target.port))?;
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap_or_default()])?;
    let total = seconds * 1000;
    let http = client();
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    let mut posts = tokio::task::JoinSet::new();
    for seq in 0..total {
        ticks.tick().await;
        let (http, base) = (http.clone(), server.base.clone());
        posts.spawn(async move {
            let body = format!(
                r#"{{"user":"operator01","kind":"DEVICE_EDITED","name":"edge1","message":"latency probe","attributes":{{"seq":"{seq}"}}}}"#
            );
            let sent = jiff::Timestamp::now();
            let response = http.post(format!("{base}/api/v1/events")).bearer_auth(TOKEN).body(body).send().await;
            let acknowledged = jiff::Timestamp::now();
            (seq, sent, acknowledged, response.map(|r| r.status().as_u16()))
        });
    }
    let mut sends = Vec::new();
    while let Some(joined) = posts.join_next().await {
        let (seq, sent, acknowledged, status) = joined?;
        if status.as_ref().ok() != Some(&201) {
            bail!("a latency probe was refused: {status:?}");
        }
        sends.push((seq, sent, acknowledged));
    }
    wait_for_probes(&target, total, Duration::from_secs(60)).await?;
    let arrived = arrivals(&target);
    let to_rsyslog: Vec<Duration> = sends.iter().map(|(seq, sent, _)| since(*sent, arrived[seq])).collect();
    let acknowledged: Vec<Duration> = sends.iter().map(|(_, sent, ack)| since(*sent, *ack)).collect();
    drop(server);

    let final_sink = Rsyslog::with_config(sink);
    let to = final_sink.port;
    let relaying = Rsyslog::with_config(|dir, port| relay(dir, port, to));
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", relaying.port)).await?;
    stream.set_nodelay(true)?;
    let mut sent_at = Vec::with_capacity(total as usize);
    for seq in 0..total {
        ticks.tick().await;
        let time = jiff::Timestamp::now();
        let message = format!(
            "<133>1 {} bench devices 1 DEVICE_EDITED [trail@32473 seq=\"{seq}\"] \u{feff}latency probe",
            trail_forward::syslog::encoder::timestamp_5424(time)
        );
        tokio::io::AsyncWriteExt::write_all(&mut stream, format!("{} {message}", message.len()).as_bytes()).await?;
        sent_at.push(time);
    }
    wait_for_probes(&final_sink, total, Duration::from_secs(60)).await?;
    let relayed = arrivals(&final_sink);
    let through_relay: Vec<Duration> =
        sent_at.iter().enumerate().map(|(seq, sent)| since(*sent, relayed[&(seq as u64)])).collect();

    let trail = Percentiles::of(to_rsyslog);
    let baseline = Percentiles::of(through_relay);
    report.note(
        "forward: POST to rsyslog at 1,000/s (bounds commit-to-send)",
        format!("p50 {} p99 {}", ms(trail.p50), ms(trail.p99)),
        "p99 <= 50.00 ms",
        Some(trail.p99 <= Duration::from_millis(50)),
    );
    report.note(
        "  baseline: send to rsyslog relay to rsyslog, same rate",
        format!("p50 {} p99 {}", ms(baseline.p50), ms(baseline.p99)),
        "",
        None,
    );
    let acknowledged = Percentiles::of(acknowledged);
    report.note(
        "  of which POST to acknowledged (the commit)",
        format!("p50 {} p99 {}", ms(acknowledged.p50), ms(acknowledged.p99)),
        "",
        None,
    );
    Ok(())
}

/// Events posted every 250 ms for a few checkpoint periods, each timed from its acknowledgement
/// (the commit) until rsyslog's file holds a CHECKPOINT of a tree that contains it.
async fn checkpoint_latency(report: &mut Report, root: &Path, every: u64) -> anyhow::Result<()> {
    let data = root.join("checkpoints");
    std::fs::create_dir_all(&data)?;
    let target = Rsyslog::with_config(sink);
    let config = write_config(
        &data,
        &format!(
            "type = \"syslog\"\nurl = \"tcp://127.0.0.1:{}\"\n[checkpoints]\nevery_seconds = {every}\n",
            target.port
        ),
    )?;
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap_or_default()])?;
    let http = client();
    let mut committed = Vec::new();
    let until = Instant::now() + Duration::from_secs(every * 4 + 2);
    while Instant::now() < until {
        let body = r#"{"user":"operator01","kind":"DEVICE_EDITED","name":"edge1","message":"checkpoint probe"}"#;
        let response = http.post(format!("{}/api/v1/events", server.base)).bearer_auth(TOKEN).body(body).send().await?;
        let acknowledged = jiff::Timestamp::now();
        let answer: serde_json::Value = response.error_for_status()?.json().await?;
        let id = answer["ids"][0].as_u64().or(answer["id"].as_u64()).context("an acknowledged event's id")?;
        committed.push((id, acknowledged));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The last probe is covered within a period (and the shutdown's checkpoint covers it too).
    let last = committed.last().map_or(0, |(id, _)| *id);
    let started = Instant::now();
    let covered = loop {
        let held = arrivals_by(&target, "size");
        if held.keys().any(|size| *size >= last) {
            break held;
        }
        if started.elapsed() > Duration::from_secs(every + 30) {
            bail!("no checkpoint covering event {last} reached rsyslog");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(server);
    let mut held: Vec<(u64, jiff::Timestamp)> = covered.into_iter().collect();
    held.sort();
    let delays: Vec<Duration> = committed
        .iter()
        .filter_map(|(id, at)| held.iter().find(|(size, _)| size >= id).map(|(_, arrived)| since(*at, *arrived)))
        .collect();
    let longest = delays.iter().max().copied().context("no probe was covered")?;
    let delays = Percentiles::of(delays);
    let target = Duration::from_secs(every + 2);
    report.note(
        &format!("integrity: commit to a covering checkpoint in rsyslog's file (every {every} s)"),
        format!("p50 {} p99 {} max {}", ms(delays.p50), ms(delays.p99), ms(longest)),
        &format!("max <= {}", ms(target)),
        Some(longest <= target),
    );
    Ok(())
}

/// Accounting requests per second into FreeRADIUS, beside radclient.
async fn radius(report: &mut Report, root: &Path, count: u64) -> anyhow::Result<()> {
    let data = root.join("radius");
    let events = preloaded(&data, count).await?;
    let freeradius = FreeRadius::start_quiet();
    let config = write_config(
        &data,
        &format!(
            "type = \"radius\"\nservers = [\"{}\"]\nsecret = \"testing123\"\nstart = \"oldest\"\n",
            freeradius.address()
        ),
    )?;
    let started = Instant::now();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap_or_default()])?;
    let http = client();
    let head = count as i64 + 1;
    loop {
        let listed: serde_json::Value =
            http.get(format!("{}/api/v1/destinations", server.base)).bearer_auth(TOKEN).send().await?.json().await?;
        if listed["destinations"][0]["delivered_through"].as_i64() >= Some(head) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("RADIUS delivery stalled: {listed}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let trail_time = started.elapsed();
    drop(server);

    // radclient: the same records (without the vendor attributes' dictionary work) in a file.
    let requests = root.join("radclient.txt");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&requests)?);
    for event in &events {
        writeln!(
            file,
            "User-Name = \"{}\"\nNAS-Identifier = \"trail\"\nAcct-Status-Type = Interim-Update\nAcct-Session-Id = \"event-{}\"\n\
             Event-Timestamp = {}\nAcct-Delay-Time = 0\n",
            event.body.user,
            event.id,
            event.body.time.as_second()
        )?;
    }
    file.flush()?;
    let started = Instant::now();
    let output = std::process::Command::new(program("radclient"))
        .args(["-q", "-p", "32", "-r", "3", "-t", "2", "-f"])
        .arg(&requests)
        .arg(freeradius.address())
        .args(["acct", "testing123"])
        .output()
        .context("cannot run radclient")?;
    let radclient_time = started.elapsed();
    if !output.status.success() {
        bail!("radclient failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    report.note(
        "forward: RADIUS accounting into FreeRADIUS",
        format!("{} requests/s", thousands(rate(count, trail_time))),
        "",
        None,
    );
    report.note(
        "  baseline: radclient, 32 in parallel",
        format!("{} requests/s", thousands(rate(count, radclient_time))),
        "",
        None,
    );
    Ok(())
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let root = tempfile_dir(args.dir.as_deref())?;
    println!(
        "trail bench --forwarding: {} events to rsyslog, {} s at 1,000/s, {} RADIUS requests; in {}",
        thousands(args.forward_events as f64),
        args.latency_seconds,
        thousands(args.radius_requests as f64),
        root.display()
    );
    let mut report = Report::default();
    throughput(&mut report, &root, args.forward_events).await?;
    latency(&mut report, &root, args.latency_seconds).await?;
    radius(&mut report, &root, args.radius_requests).await?;
    checkpoint_latency(&mut report, &root, args.checkpoint_every).await?;
    report.print();
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}
