//! Crash safety (S2): many clients ingest while the server is SIGKILLed at random moments, over
//! several rounds. Afterwards every acknowledged event is present with its content, every batch
//! is there whole or not at all, and the chain verifies.

mod common;

use common::{TOKEN, Trail, ok, spawn_server};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 5;
const CLIENTS: usize = 16;

/// One request: its messages, and the ids the server acknowledged (if it did).
struct Sent {
    messages: Vec<String>,
    acknowledged: Option<Vec<i64>>,
}

async fn client(base: String, round: usize, client: usize, stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<Sent>>>) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut sequence = 0;
    while !stop.load(Ordering::SeqCst) {
        sequence += 1;
        // Alternate single events with batches of up to 20.
        let size = if sequence % 2 == 0 { 1 } else { 1 + (sequence * 7 + client) % 20 };
        let messages: Vec<String> =
            (0..size).map(|i| format!("round {round} client {client} request {sequence} event {i}")).collect();
        let body: Vec<Value> =
            messages.iter().map(|m| json!({"user": "crash", "kind": "DEVICE_EDITED", "message": m})).collect();
        let answer = http.post(format!("{base}/api/v1/events")).bearer_auth(TOKEN).json(&body).send().await;
        let acknowledged = match answer {
            Ok(response) if response.status() == 201 => {
                let ids: Value = response.json().await.unwrap();
                Some(ids["ids"].as_array().unwrap().iter().map(|id| id.as_i64().unwrap()).collect())
            }
            Ok(response) => panic!("unexpected answer {}", response.status()),
            Err(_) => None,
        };
        let failed = acknowledged.is_none();
        log.lock().unwrap().push(Sent { messages, acknowledged });
        if failed {
            return; // The server is gone; this round is over for this client.
        }
    }
}

#[test]
fn acknowledged_events_survive_sigkill() {
    // SQLite, or PostgreSQL in the test command's second pass (`TRAIL_TEST_BACKEND`).
    let trail = Trail::fresh();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    runtime.block_on(kill_and_check(&trail));
}

/// Rounds of clients ingesting into a server killed mid-stream, then the trail checked.
async fn kill_and_check(trail: &Trail) {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut random = seed;
    let log = Arc::new(Mutex::new(Vec::new()));
    for round in 0..ROUNDS {
        let server = spawn_server(trail, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| tokio::spawn(client(server.base.clone(), round, c, stop.clone(), log.clone())))
            .collect();
        random = random.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(150 + (random >> 33) % 600)).await;
        drop(server); // SIGKILL, mid-stream
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.unwrap();
        }
    }

    let verified = ok(trail, &["verify"], &[]);
    assert!(verified.starts_with("OK:"), "{verified}");
    let exported = ok(trail, &["export"], &[]);
    let stored: HashMap<String, i64> = exported
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            (event["message"].as_str().unwrap().to_owned(), event["id"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(stored.len(), exported.lines().count(), "no event is stored twice");

    let log = log.lock().unwrap();
    let acknowledged: usize = log.iter().filter_map(|s| s.acknowledged.as_ref()).map(Vec::len).sum();
    let lost_requests = log.iter().filter(|s| s.acknowledged.is_none()).count();
    eprintln!("{acknowledged} events acknowledged, {} stored, {lost_requests} requests cut off", stored.len());
    assert!(acknowledged > 100, "the clients got work done between kills");
    let mut ids_seen = HashSet::new();
    for sent in log.iter() {
        let present: Vec<Option<&i64>> = sent.messages.iter().map(|m| stored.get(m)).collect();
        match &sent.acknowledged {
            Some(ids) => {
                for (message, (id, found)) in sent.messages.iter().zip(ids.iter().zip(&present)) {
                    assert_eq!(*found, Some(id), "acknowledged event {id} ({message}) is stored under its id");
                    assert!(ids_seen.insert(*id), "id {id} acknowledged twice");
                }
            }
            None => {
                let stored_count = present.iter().filter(|p| p.is_some()).count();
                assert!(stored_count == 0 || stored_count == sent.messages.len(), "a cut-off batch is whole or absent");
            }
        }
    }
}
