//! `trail bench --postgres URL`: the PostgreSQL backend measured beside SQLite on the same
//! events in the same run, beside a plain `ILIKE` scan of the same table and `rg -i` over the
//! export, with its first searches after a restart, with two nodes against one, and its two
//! insert methods against each other. Everything it makes lives in
//! schemas of its own (`trail_bench_<pid>...`), dropped at the end unless `--dir` keeps them.

use super::report::{Percentiles, Report, ms, rate, thousands};
use super::searches::{Grep, Greps, Search, searches};
use super::{
    Server, client, cpu_now, cpu_since, export_ndjson, get, ingest_batches, ingest_singles, time_cold_searches,
    time_search, wait_for_index, workload,
};
use anyhow::Context;
use std::time::{Duration, Instant};

/// A schema for the benchmark: dropped by [`BenchSchema::drop_now`] at the end of a run, kept
/// when the run fails (or `--dir` asks to keep it), for a look at what went wrong.
pub(super) struct BenchSchema {
    url: String,
    name: String,
    /// The URL that puts this schema first on the search path.
    pub(super) database_url: String,
}

impl BenchSchema {
    pub(super) async fn create(url: &str, name: String) -> anyhow::Result<BenchSchema> {
        let client = connect(url).await?;
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await?;
        let database_url = trail_store_postgres::with_search_path(url, &name);
        Ok(BenchSchema { url: url.to_owned(), name, database_url })
    }

    pub(super) async fn drop_now(self) -> anyhow::Result<()> {
        connect(&self.url).await?.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name)).await?;
        Ok(())
    }
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to {}", trail_store_postgres::redact(url)))?;
    tokio::spawn(connection);
    Ok(client)
}

/// What one backend did with the workload.
struct Measured {
    ingest: f64,
    singles: f64,
    /// How long the trigram index took to catch up after the batches.
    index_lag: Duration,
    searches: Vec<Timed>,
    peak_mib: Option<f64>,
}

/// One search's figures.
struct Timed {
    search: Search,
    timings: Percentiles,
    found: String,
}

/// Ingests, then times the searches. With `analyze`, the PostgreSQL database's statistics are
/// brought up to date first, as autovacuum does within a minute of a bulk load on a live
/// system: the planner chooses how to read candidate blocks and slices by them.
async fn measure(
    server: &Server,
    args: &super::BenchArgs,
    (total, singles): (u64, u64),
    analyze: Option<&str>,
) -> anyhow::Result<Measured> {
    let base = &server.base;
    let before = cpu_now(server);
    let elapsed = ingest_batches(base, total).await?;
    println!("  ingest: {}", cpu_since(server, before).show(elapsed));
    let ingest = rate(total, elapsed);
    let index_lag = wait_for_index(base).await?;
    let single_elapsed = ingest_singles(base, args.clients, singles).await?;
    if let Some(url) = analyze {
        connect(url).await?.batch_execute("ANALYZE events").await?;
    }
    // Both backends' trigram indexes catch up off the commit path.
    wait_for_index(base).await?;
    let head = get(&client(), base, "all_users=true&limit=1").await?["events"][0]["id"].as_u64().unwrap_or(0);
    let mut timed = Vec::new();
    for search in searches(head) {
        let (timings, found) = time_search(base, &search.query, args.repeat).await?;
        timed.push(Timed { search, timings, found });
    }
    Ok(Measured {
        ingest,
        singles: rate(singles, single_elapsed),
        index_lag,
        searches: timed,
        peak_mib: server.peak_memory_mib(),
    })
}

/// The plain scan a PostgreSQL user would write without Trail's index.
async fn ilike_scan(url: &str, repeat: usize) -> anyhow::Result<(Duration, i64)> {
    let client = connect(url).await?;
    let pattern = format!("%{}%", workload::SELECTIVE_MARKER.to_lowercase());
    let sql = "SELECT id FROM events WHERE message ILIKE $1 ORDER BY id DESC LIMIT 100";
    let found = client.query(sql, &[&pattern]).await?.len() as i64;
    let mut samples = Vec::new();
    for _ in 0..repeat.clamp(1, 5) {
        let started = Instant::now();
        client.query(sql, &[&pattern]).await?;
        samples.push(started.elapsed());
    }
    Ok((Percentiles::of(samples).p50, found))
}

/// Two `trail serve` nodes on one database, each sent half the events at once.
async fn two_nodes(url: &str, total: u64, dir: &std::path::Path) -> anyhow::Result<f64> {
    let nodes = [
        Server::start_with(&dir.join("node1"), &["--database", url])?,
        Server::start_with(&dir.join("node2"), &["--database", url])?,
    ];
    let started = Instant::now();
    let (first, second) =
        tokio::join!(ingest_batches(&nodes[0].base, total / 2), ingest_batches(&nodes[1].base, total / 2));
    first?;
    second?;
    Ok(rate(total / 2 * 2, started.elapsed()))
}

/// UNNEST against COPY BINARY on the same events, straight into PostgreSQL.
async fn insert_methods(url: &str, name: &str, count: u64) -> anyhow::Result<(f64, f64)> {
    let events = workload::bodies(count, count)?;
    let (unnest, copy) =
        trail_store_postgres::measure::insert_methods(url, name, &events, super::BATCH as usize).await?;
    Ok((rate(count, unnest), rate(count, copy)))
}

pub async fn run(args: &super::BenchArgs, url: &str) -> anyhow::Result<()> {
    let total = if args.full { 10_000_000 } else { args.events };
    let singles = args.single_requests;
    let dir = super::tempfile_dir(args.dir.as_deref())?;
    let prefix = format!("trail_bench_{}", std::process::id());
    println!(
        "trail bench --postgres: {} events, {} single requests, in {}",
        thousands(total as f64),
        thousands(singles as f64),
        trail_store_postgres::redact(url)
    );

    println!("SQLite:");
    let sqlite_server = Server::start(&dir.join("data"))?;
    let sqlite = measure(&sqlite_server, args, (total, singles), None).await?;
    drop(sqlite_server);
    // Both backends hold the same events: `rg` reads them once, exported from SQLite.
    let export = dir.join("export.ndjson");
    export_ndjson(&dir.join("data").join(crate::config::DATABASE_FILE), &export).await?;
    let greps = Greps::time(&export);
    let _ = std::fs::remove_file(&export);

    println!("PostgreSQL:");
    let one = BenchSchema::create(url, format!("{prefix}_one")).await?;
    let pg_args = ["--database", one.database_url.as_str()];
    let pg_server = Server::start_with(&dir.join("pg"), &pg_args)?;
    let postgres = measure(&pg_server, args, (total, singles), Some(&one.database_url)).await?;
    drop(pg_server);
    let mut cold = Report::default();
    let warm: Vec<(String, Duration)> = postgres
        .searches
        .iter()
        .filter(|t| t.search.checked_cold())
        .map(|t| (t.search.query.clone(), t.timings.p50))
        .collect();
    time_cold_searches(&mut cold, Server::start_with(&dir.join("pg"), &pg_args)?, &warm).await?;
    let (ilike, ilike_found) = ilike_scan(&one.database_url, args.repeat).await?;

    println!("PostgreSQL, two nodes:");
    let two = BenchSchema::create(url, format!("{prefix}_two")).await?;
    let both = two_nodes(&two.database_url, total, &dir).await?;

    println!("PostgreSQL, insert methods:");
    let methods_count = total.min(200_000);
    let (unnest, copy) = insert_methods(url, &format!("{prefix}_insert"), methods_count).await?;

    let mut report = Report::default();
    let per_second = |value: f64, unit: &str| format!("{} {unit}/s", thousands(value));
    report.beside(
        "ingest: HTTP batches of 1000",
        per_second(postgres.ingest, "events"),
        format!("SQLite {}", per_second(sqlite.ingest, "events")),
    );
    report.beside(
        "ingest: trigram index caught up after",
        ms(postgres.index_lag),
        format!("SQLite {} (both off the commit path)", ms(sqlite.index_lag)),
    );
    report.beside(
        &format!("ingest: {} clients, single events", args.clients),
        per_second(postgres.singles, "requests"),
        format!("SQLite {}", per_second(sqlite.singles, "requests")),
    );
    report.beside(
        "ingest: two nodes, half each",
        per_second(both, "events"),
        format!("one node {}", per_second(postgres.ingest, "events")),
    );
    report.beside(
        &format!("insert {} events in 1000s: UNNEST", thousands(methods_count as f64)),
        per_second(unnest, "events"),
        format!("COPY BINARY {}", per_second(copy, "events")),
    );
    for (pg, sqlite) in postgres.searches.into_iter().zip(&sqlite.searches) {
        let mut beside = format!("SQLite {} ({})", sqlite.timings.show(), sqlite.found);
        if pg.search.grep == Some(Grep::Marker) {
            beside.push_str(&format!("; plain ILIKE {} ({ilike_found} found)", ms(ilike)));
        }
        let figure = format!("{} ({})", pg.search.figure, pg.found);
        let baseline = greps.baseline(pg.search.grep);
        report.latency_beside(&figure, pg.timings, Some(pg.search.target), beside, baseline);
    }
    let peak = |mib: Option<f64>| mib.map_or("?".to_owned(), |m| format!("{m:.0} MiB"));
    report.beside("server peak resident memory", peak(postgres.peak_mib), format!("SQLite {}", peak(sqlite.peak_mib)));
    if let Some(why) = greps.failure() {
        report.note("baseline: rg -i over the export", why, "", Some(false));
    }
    report.print();
    cold.print();

    if args.dir.is_none() {
        one.drop_now().await?;
        two.drop_now().await?;
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("kept for inspection: schemas {} and {}, and {}", one.name, two.name, dir.display());
    }
    Ok(())
}
