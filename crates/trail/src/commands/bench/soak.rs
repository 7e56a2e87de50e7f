//! `trail bench --soak MINUTES` (`scripts/soak`): a long run at a steady 2,000 events/s with
//! everything else a server does meanwhile: searches, password logins and logouts, NDJSON
//! exports, forwarding to a real rsyslog and a real FreeRADIUS, and a purge every five minutes.
//! Every minute it prints the server's resident memory, its open files, the forwarding backlog
//! and the p99 of each kind of request in that minute; at the end, whether memory stayed under
//! 200 MB and flat after the warm-up.
//!
//! The trail starts with 500,000 events of last year, written before the server starts, so that
//! the first purge (of what is older than a day: a purge takes a prefix of the chain) has them to
//! remove while the load goes on; the trail grows by 120,000 events a minute meanwhile.

use super::report::ms;
use super::{Server, TOKEN, client, tempfile_dir, workload};
use crate::demo::Rng;
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trail_forward::peers::{FreeRadius, Rsyslog};

const EVENTS_PER_SECOND: u64 = 2000;
/// Requests of 100 events, 20 a second.
const BATCH: u64 = 100;
const WARM_UP_MINUTES: usize = 5;
const MEMORY_TARGET_MIB: f64 = 200.0;
const PASSWORD: &str = "soak-password-1234";
/// Events of last year in the trail before the server starts, for the purge.
const PRELOADED: u64 = 500_000;

/// The searches the run cycles through: every filter, selective and common.
const SEARCHES: [&str; 6] = [
    "all_users=true",
    "all_users=true&message=ntp%20server",
    "user=operator07",
    "all_users=true&name=edge12&message=ticket",
    "all_users=true&message=INC-4711",
    "all_users=true&action=update&name=edge3%25",
];

/// Latencies of the current minute, by kind of request, and the failures.
#[derive(Default)]
struct Minute {
    latencies: HashMap<&'static str, Vec<Duration>>,
    failures: Vec<String>,
    purged: u64,
}

type Shared = Arc<Mutex<Minute>>;

fn record(minute: &Shared, kind: &'static str, started: Instant, outcome: anyhow::Result<()>) {
    let mut minute = minute.lock().expect("the minute's samples");
    match outcome {
        Ok(()) => minute.latencies.entry(kind).or_default().push(started.elapsed()),
        Err(error) => minute.failures.push(format!("{kind}: {error:#}")),
    }
}

/// An rsyslog that takes every message over TCP and keeps none: 30 minutes at 2,000/s would
/// fill gigabytes, and Trail's own backlog figure says what was delivered.
fn discarding(dir: &std::path::Path, port: u16) -> String {
    format!(
        "global(workDirectory=\"{}\" maxMessageSize=\"64k\")\nmodule(load=\"imtcp\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"drop\")\n\
         ruleset(name=\"drop\") {{ action(type=\"omfile\" file=\"/dev/null\") }}\n",
        dir.display()
    )
}

pub async fn run(dir: Option<&std::path::Path>, minutes: u64) -> anyhow::Result<()> {
    if minutes < 2 {
        bail!("--soak needs at least 2 minutes");
    }
    let temporary = tempfile_dir(dir)?;
    let rsyslog = Rsyslog::with_config(discarding);
    let radius = FreeRadius::start_quiet();
    let config = temporary.join("soak.toml");
    std::fs::write(
        &config,
        format!(
            "[[destinations]]\nname = \"siem\"\ntype = \"syslog\"\nurl = \"{}\"\n\
             [[destinations]]\nname = \"aaa\"\ntype = \"radius\"\nservers = [\"{}\"]\nsecret = \"testing123\"\n",
            rsyslog.url("tcp"),
            radius.address()
        ),
    )?;
    let data = temporary.join("data");
    preload(&data).await?;
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap_or_default()])?;
    let base = server.base.clone();
    let http = client();
    let created = http
        .post(format!("{base}/api/v1/accounts"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"username": "soak", "roles": ["viewer"], "password": PASSWORD}))
        .send()
        .await?;
    succeeded(created, "creating the soak account")?;
    println!(
        "soak: {minutes} minutes at {EVENTS_PER_SECOND} events/s, with searches, logins, exports, forwarding to \
         rsyslog and FreeRADIUS, and a purge every 5 minutes (server {base}, pid {})",
        server.child.id()
    );
    println!(
        "{:>6} {:>9} {:>8} {:>5} {:>8} {:>11} {:>11} {:>11} {:>11} {:>8}  failures",
        "minute",
        "events",
        "RSS MiB",
        "fds",
        "backlog",
        "ingest p99",
        "search p99",
        "login p99",
        "export p99",
        "purged"
    );

    let minute: Shared = Arc::default();
    let stop = Instant::now() + Duration::from_secs(minutes * 60);
    let mut load = tokio::task::JoinSet::new();
    load.spawn(ingest(base.clone(), minute.clone(), stop));
    load.spawn(search(base.clone(), minute.clone(), stop));
    load.spawn(logins(base.clone(), minute.clone(), stop));
    load.spawn(exports(base.clone(), minute.clone(), stop));
    load.spawn(purges(base.clone(), minute.clone(), stop));

    let mut memory = Vec::new();
    for number in 1..=minutes as usize {
        tokio::time::sleep_until((stop - Duration::from_secs((minutes - number as u64) * 60)).into()).await;
        let taken = std::mem::take(&mut *minute.lock().expect("the minute's samples"));
        let rss = resident_mib(server.child.id()).context("the server's memory")?;
        memory.push(rss);
        let metrics = http.get(format!("{base}/metrics")).send().await?.text().await?;
        println!(
            "{number:>6} {:>9} {rss:>8.1} {:>5} {:>8} {:>11} {:>11} {:>11} {:>11} {:>8}  {}",
            metric_sum(&metrics, "trail_head_event_id"),
            open_files(server.child.id()),
            metric_sum(&metrics, "trail_forward_backlog"),
            p99(&taken, "ingest"),
            p99(&taken, "search"),
            p99(&taken, "login"),
            p99(&taken, "export"),
            taken.purged,
            failures(&taken.failures),
        );
    }
    while load.join_next().await.is_some() {}
    drop(server);
    if dir.is_none() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    verdict(&memory)
}

fn p99(minute: &Minute, kind: &str) -> String {
    match minute.latencies.get(kind) {
        Some(samples) if !samples.is_empty() => ms(super::report::Percentiles::of(samples.clone()).p99),
        _ => "-".to_owned(),
    }
}

fn failures(failures: &[String]) -> String {
    match failures.first() {
        None => "0".to_owned(),
        Some(first) => format!("{} (first: {first})", failures.len()),
    }
}

/// Memory under the target throughout, and flat after the warm-up: the mean of the last five
/// minutes no more than 10% (or 10 MiB) above the mean of the five after the warm-up. Means,
/// not peaks: resident memory swings by tens of MiB within a minute as exports and purges come
/// and go, and a trend is what would show a leak.
fn verdict(memory: &[f64]) -> anyhow::Result<()> {
    let peak = memory.iter().copied().fold(0.0, f64::max);
    let mean = |window: &[f64]| window.iter().sum::<f64>() / window.len().max(1) as f64;
    let settled = memory.get(WARM_UP_MINUTES..(2 * WARM_UP_MINUTES).min(memory.len())).unwrap_or_default();
    let last = &memory[memory.len().saturating_sub(WARM_UP_MINUTES)..];
    let (early, late) = (mean(settled), mean(last));
    let flat = settled.is_empty() || late <= (early * 1.1).max(early + 10.0);
    println!(
        "memory: peak {peak:.1} MiB (target {MEMORY_TARGET_MIB} MiB); mean of minutes {}-{} {early:.1} MiB, of the \
         last {} {late:.1} MiB: {}",
        WARM_UP_MINUTES + 1,
        2 * WARM_UP_MINUTES,
        last.len(),
        if flat { "flat" } else { "GROWING" }
    );
    if peak > MEMORY_TARGET_MIB || !flat {
        bail!("MISSES: memory must stay under {MEMORY_TARGET_MIB} MiB and flat after the warm-up");
    }
    Ok(())
}

/// 2,000 events a second, in requests of 100 sent on a fixed schedule (a slow answer does not
/// delay the next request: up to 16 are in flight).
async fn ingest(base: String, minute: Shared, stop: Instant) {
    let http = client();
    let mut rng = Rng::new(workload::SEED);
    let mut every = tokio::time::interval(Duration::from_millis(1000 * BATCH / EVENTS_PER_SECOND));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(16));
    let mut n = 0u64;
    while Instant::now() < stop {
        every.tick().await;
        let now = serde_json::Value::String(jiff::Timestamp::now().to_string());
        let events: Vec<serde_json::Value> = (0..BATCH)
            .map(|i| {
                let mut event = serde_json::to_value(workload::event(&mut rng, n + i, u64::MAX, 0)).unwrap_or_default();
                event["time"] = now.clone();
                event
            })
            .collect();
        n += BATCH;
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let (http, base, minute) = (http.clone(), base.clone(), minute.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = super::post(&http, &base, serde_json::to_vec(&events).unwrap_or_default()).await;
            record(&minute, "ingest", started, outcome);
            drop(permit);
        });
    }
}

/// Five searches a second, each a first page.
async fn search(base: String, minute: Shared, stop: Instant) {
    let http = client();
    let mut turn = 0;
    while Instant::now() < stop {
        let started = Instant::now();
        let outcome = super::get(&http, &base, SEARCHES[turn % SEARCHES.len()]).await.map(drop);
        record(&minute, "search", started, outcome);
        turn += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A password login and its logout every two seconds (each a RADIUS session).
async fn logins(base: String, minute: Shared, stop: Instant) {
    let http = client();
    while Instant::now() < stop {
        let started = Instant::now();
        let outcome = login_and_out(&http, &base).await;
        record(&minute, "login", started, outcome);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn login_and_out(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let answer = http
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"username": "soak", "password": PASSWORD}))
        .send()
        .await?;
    let answer = succeeded(answer, "login")?;
    let cookie = answer
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok()?.split(';').next().map(str::to_owned))
        .context("no session cookie")?;
    let body: serde_json::Value = answer.json().await?;
    let csrf = body["csrf"].as_str().context("no csrf token")?;
    let out =
        http.post(format!("{base}/api/v1/logout")).header("cookie", cookie).header("x-csrf-token", csrf).send().await?;
    succeeded(out, "logout").map(drop)
}

/// An NDJSON export of a selective search every 30 seconds, read to its end.
async fn exports(base: String, minute: Shared, stop: Instant) {
    let http = client();
    while Instant::now() < stop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let started = Instant::now();
        let outcome = async {
            let answer = http
                .get(format!("{base}/api/v1/export?format=ndjson&all_users=true&name=edge12"))
                .bearer_auth(TOKEN)
                .send()
                .await?;
            succeeded(answer, "export")?.bytes().await?;
            Ok(())
        }
        .await;
        record(&minute, "export", started, outcome);
    }
}

/// Purges what is older than a day, every five minutes.
async fn purges(base: String, minute: Shared, stop: Instant) {
    let http = client();
    while Instant::now() + Duration::from_secs(300) < stop {
        tokio::time::sleep(Duration::from_secs(300)).await;
        let started = Instant::now();
        let outcome = async {
            let answer = http
                .post(format!("{base}/api/v1/retention/purge"))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({"older_than_days": 1}))
                .send()
                .await?;
            let purged: serde_json::Value = succeeded(answer, "purge")?.json().await?;
            minute.lock().expect("the minute's samples").purged += purged["purged"].as_u64().unwrap_or(0);
            Ok(())
        }
        .await;
        record(&minute, "purge", started, outcome);
    }
}

/// Writes [`PRELOADED`] events of last year straight into the trail at `data`.
async fn preload(data: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data)?;
    let store = trail_store_sqlite::SqliteStore::open(data.join(crate::config::DATABASE_FILE))?;
    for chunk in workload::bodies(PRELOADED, PRELOADED)?.chunks(5000) {
        trail_store::prelude::EventLog::append(&store, chunk.to_vec()).await?;
    }
    Ok(())
}

/// `answer`, when its status says it succeeded.
fn succeeded(answer: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
    if !answer.status().is_success() {
        bail!("{what} answered {}", answer.status());
    }
    Ok(answer)
}

/// Resident memory (VmRSS) in MiB.
fn resident_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// The sum of a metric's series (every destination's backlog, say), as a whole number.
fn metric_sum(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
