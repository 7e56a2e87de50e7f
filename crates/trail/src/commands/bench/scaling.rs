//! `trail bench --postgres URL --scaling`: what bounds one sequencer (docs/scaling.md). Through
//! 1, 2 and 3 `trail serve` nodes on one database, clients spread over the nodes send requests
//! of 1, 10, 100 and 1,000 events for a few seconds each; the nodes' own counters (`/metrics`)
//! say how many group commits carried them, and the database's how many transactions it
//! committed in all.

use super::postgres::BenchSchema;
use super::report::thousands;
use super::{Server, TOKEN, client};
use anyhow::{Context, bail};
use std::time::{Duration, Instant};

const NODE_COUNTS: [usize; 3] = [1, 2, 3];
const BATCHES: [usize; 4] = [1, 10, 100, 1000];
const CLIENTS: usize = 32;
const SECONDS: u64 = 5;

/// One cell of the table.
struct Cell {
    nodes: usize,
    batch: usize,
    events_per_second: f64,
    commits_per_second: f64,
    server_cpu: f64,
}

pub async fn run(url: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    println!(
        "trail bench --postgres --scaling: {CLIENTS} clients for {SECONDS} s per cell, in {}",
        trail_store_postgres::redact(url)
    );
    let mut cells = Vec::new();
    for nodes in NODE_COUNTS {
        let schema = BenchSchema::create(url, format!("trail_bench_{}_scaling_{nodes}", std::process::id())).await?;
        let servers: Vec<Server> = (0..nodes)
            .map(|n| {
                Server::start_with(&dir.join(format!("scaling{nodes}-{n}")), &["--database", &schema.database_url])
            })
            .collect::<anyhow::Result<_>>()?;
        for batch in BATCHES {
            let cell = measure(&servers, batch).await?;
            println!(
                "  {nodes} node(s), batches of {batch:>4}: {} events/s in {} commits/s",
                thousands(cell.events_per_second),
                thousands(cell.commits_per_second)
            );
            cells.push(cell);
        }
        drop(servers);
        schema.drop_now().await?;
    }
    print_table(&cells);
    Ok(())
}

async fn measure(servers: &[Server], batch: usize) -> anyhow::Result<Cell> {
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let commits_before = commits(&bases).await?;
    let cpu_before: f64 = servers.iter().filter_map(Server::cpu_seconds).sum();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECONDS);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let base = bases[c % bases.len()].clone();
        let events: Vec<serde_json::Value> = (0..batch)
            .map(|n| {
                serde_json::json!({"user": format!("client{c}"), "kind": "DEVICE_EDITED", "name": "edge1",
                    "message": format!("scaling event {n} from client {c}")})
            })
            .collect();
        let body = serde_json::to_vec(&events)?;
        tasks.spawn(async move {
            let http = client();
            let mut sent = 0u64;
            while Instant::now() < deadline {
                let response = http
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("ingest answered {}", response.status());
                }
                sent += batch as u64;
            }
            anyhow::Ok(sent)
        });
    }
    let mut events = 0;
    while let Some(sent) = tasks.join_next().await {
        events += sent.context("a client")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let commits = commits(&bases).await? - commits_before;
    let cpu: f64 = servers.iter().filter_map(Server::cpu_seconds).sum::<f64>() - cpu_before;
    Ok(Cell {
        nodes: servers.len(),
        batch,
        events_per_second: events as f64 / elapsed,
        commits_per_second: commits / elapsed,
        server_cpu: cpu / elapsed,
    })
}

/// The group commits the nodes have made, from their `/metrics`.
async fn commits(bases: &[String]) -> anyhow::Result<f64> {
    let http = client();
    let mut total = 0.0;
    for base in bases {
        let text = http.get(format!("{base}/metrics")).send().await?.text().await?;
        let line = text.lines().find(|l| l.starts_with("trail_store_commits_total"));
        total += line.and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok()).unwrap_or(0.0);
    }
    Ok(total)
}

fn print_table(cells: &[Cell]) {
    println!();
    println!("| nodes | events per request | events/s | group commits/s | events per commit | nodes' CPU (cores) |");
    println!("|---|---|---|---|---|---|");
    for cell in cells {
        let per_commit =
            if cell.commits_per_second > 0.0 { cell.events_per_second / cell.commits_per_second } else { 0.0 };
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.2} |",
            cell.nodes,
            cell.batch,
            thousands(cell.events_per_second),
            thousands(cell.commits_per_second),
            per_commit,
            cell.server_cpu
        );
    }
}
