//! Crash safety (S2): many clients ingest while the server is SIGKILLed at random moments, over
//! several rounds. Afterwards every acknowledged event is present with its content, every batch
//! is there whole or not at all, and the chain verifies.

mod common;

use common::load::{self, WhenCutOff};
use common::{TOKEN, Trail, ok, spawn_server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 5;
const CLIENTS: usize = 16;

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
            .map(|c| {
                let label = format!("round {round} client {c}");
                tokio::spawn(load::ingest(server.base.clone(), label, stop.clone(), log.clone(), WhenCutOff::Stop))
            })
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
    let summary = load::check(&exported, &log.lock().unwrap());
    eprintln!("{summary:?}");
    assert!(summary.acknowledged > 100, "the clients got work done between kills");
}
