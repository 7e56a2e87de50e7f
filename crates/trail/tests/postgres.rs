//! What only PostgreSQL has: two `trail serve` nodes sharing one database, forwarding moving to
//! the other node when the forwarding one dies, and `trail migrate` from SQLite. (Every command on
//! a PostgreSQL trail is checked by `cli.rs`, which the test command runs on both backends.)

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use trail_forward::peers::{Rsyslog, SyslogKind};
use trail_store_postgres::testing::TestSchema;

fn schema() -> TestSchema {
    block_on(TestSchema::new())
}

fn http(method: &str, url: &str, body: Option<String>) -> (u16, Value) {
    block_on(async {
        let client = ::reqwest::Client::new();
        let request = match body {
            Some(body) => client.request(method.parse().unwrap(), url).body(body),
            None => client.request(method.parse().unwrap(), url),
        };
        let response = request.bearer_auth(TOKEN).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

fn post_events(base: &str, messages: &[String]) {
    let events: Vec<Value> = messages
        .iter()
        .map(|m| serde_json::json!({"user": "alice", "kind": "DEVICE_EDITED", "name": "edge1", "message": m}))
        .collect();
    let (status, body) = http("POST", &format!("{base}/api/v1/events"), Some(Value::Array(events).to_string()));
    assert_eq!(status, 201, "{body}");
}

#[test]
fn two_nodes_take_ingest_side_by_side() {
    let schema = schema();
    let url = schema.url();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = ["--listen", "127.0.0.1:0", "--database", url.as_str()];
    let nodes = [
        spawn_server(one.path(), &args, &[("TRAIL_TOKEN", TOKEN)]),
        spawn_server(two.path(), &args, &[("TRAIL_TOKEN", TOKEN)]),
    ];
    assert!(nodes[0].banner.join("\n").contains("(PostgreSQL)"), "{:?}", nodes[0].banner);
    let (writers, batches, per_batch) = (4, 25, 8);
    std::thread::scope(|scope| {
        for writer in 0..writers {
            let base = nodes[writer % 2].base.clone();
            scope.spawn(move || {
                for batch in 0..batches {
                    let messages: Vec<String> = (0..per_batch).map(|n| format!("w{writer} b{batch} n{n}")).collect();
                    post_events(&base, &messages);
                }
            });
        }
    });
    let posted = writers * batches * per_batch;
    let search = |node: &Server| {
        let (_, page) =
            http("GET", &format!("{}/api/v1/events?all_users=true&message=w%25b&limit=1000", node.base), None);
        page["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect::<Vec<_>>()
    };
    let (seen_by_one, seen_by_two) = (search(&nodes[0]), search(&nodes[1]));
    assert_eq!(seen_by_one.len(), posted, "every event, whichever node took it");
    assert_eq!(seen_by_one, seen_by_two, "both nodes see the same trail");
    let verified = ok(one.path(), &["verify", "--database", &url], &[]);
    assert!(verified.starts_with("OK: "), "one chain across both nodes: {verified}");
}

/// Waits until rsyslog has every message in `wanted`.
fn wait_for_all(rsyslog: &Rsyslog, wanted: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let parsed = rsyslog.parsed();
        let missing: Vec<&String> =
            wanted.iter().filter(|m| !parsed.iter().any(|line| line.ends_with(&format!("\u{feff}{m}")))).collect();
        if missing.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{} messages never arrived, such as {:?}", missing.len(), missing[0]);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The node's report of its one destination.
fn destination(node: &Server) -> Value {
    let (_, listed) = http("GET", &format!("{}/api/v1/destinations", node.base), None);
    listed["destinations"][0].clone()
}

fn destination_state(node: &Server) -> String {
    destination(node)["state"].as_str().unwrap_or_default().to_owned()
}

/// How many times rsyslog received each of `messages`.
fn deliveries(rsyslog: &Rsyslog, messages: &[String]) -> HashMap<String, usize> {
    let parsed = rsyslog.parsed();
    messages
        .iter()
        .map(|m| (m.clone(), parsed.iter().filter(|line| line.ends_with(&format!("\u{feff}{m}"))).count()))
        .collect()
}

fn assert_delivered_once(rsyslog: &Rsyslog, messages: &[String], when: &str) {
    let counted = deliveries(rsyslog, messages);
    let wrong: Vec<(&String, &usize)> = counted.iter().filter(|(_, n)| **n != 1).collect();
    assert!(wrong.is_empty(), "{when}: each message once, but {} were not, such as {:?}", wrong.len(), wrong.first());
}

/// The events this node's forwarder sent, from its own `/metrics`.
fn sent_by(node: &Server) -> u64 {
    metric(node, "trail_forward_sent_total{destination=\"siem\"}")
}

/// Waits until `node` has saved its cursor through `id` (what a takeover resumes after).
fn wait_saved_through(node: &Server, id: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while destination(node)["delivered_through"].as_i64().unwrap_or(0) < id {
        assert!(Instant::now() < deadline, "the cursor was never saved through {id}: {}", destination(node));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_other_node_takes_over_forwarding_when_the_forwarder_dies() {
    let schema = schema();
    let url = schema.url();
    let rsyslog = Rsyslog::start(SyslogKind::Plain);
    let config = format!(
        "database = \"{url}\"\n[[destinations]]\nname = \"siem\"\ntype = \"syslog\"\nurl = \"{}\"\nstart = \"oldest\"\n",
        rsyslog.url("tcp")
    );
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&one, &two] {
        std::fs::write(dir.path().join("trail.toml"), &config).unwrap();
    }
    let args = ["--listen", "127.0.0.1:0", "--config", "trail.toml"];
    let first = spawn_server(one.path(), &args, &[("TRAIL_TOKEN", TOKEN)]);
    // The first node takes the lease before the second starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while destination_state(&first) != "delivering" {
        assert!(Instant::now() < deadline, "the first node never took the lease");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = spawn_server(two.path(), &args, &[("TRAIL_TOKEN", TOKEN)]);
    assert_eq!(destination_state(&second), "standby", "one node forwards a destination at a time");

    // Steady state: events sent to the standby node are forwarded by the other, each once.
    let before: Vec<String> = (0..200).map(|n| format!("lease {n}")).collect();
    post_events(&second.base, &before);
    wait_for_all(&rsyslog, &before);
    let (_, newest) = http("GET", &format!("{}/api/v1/events?all_users=true&limit=1", second.base), None);
    wait_saved_through(&first, newest["events"][0]["id"].as_i64().unwrap());
    assert_delivered_once(&rsyslog, &before, "with two nodes");
    assert_eq!(sent_by(&second), 0, "the standby node sent nothing");
    assert_eq!(destination_state(&second), "standby");

    drop(first); // SIGKILL: no clean shutdown, the lease goes with its connection.
    let after: Vec<String> = (200..400).map(|n| format!("lease {n}")).collect();
    for chunk in after.chunks(20) {
        post_events(&second.base, chunk);
    }
    wait_for_all(&rsyslog, &after);
    assert_eq!(destination_state(&second), "delivering", "the second node holds the lease now");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut backlog = destination(&second)["backlog"].as_u64();
    while backlog != Some(0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        backlog = destination(&second)["backlog"].as_u64();
    }
    assert_eq!(backlog, Some(0), "nothing is left behind");
    // The takeover resumed after the saved cursor, which covered every earlier event: nothing
    // was sent twice (duplicates may only be what the dead node sent after its last save).
    assert_delivered_once(&rsyslog, &[before, after].concat(), "across the takeover");
    assert!(sent_by(&second) >= 200, "the second node forwarded what came after");
}

/// A counter from this node's own `/metrics` (0 when it was never counted).
fn metric(node: &Server, name: &str) -> u64 {
    let metrics = block_on(async {
        let response = ::reqwest::Client::new().get(format!("{}/metrics", node.base)).bearer_auth(TOKEN).send();
        response.await.unwrap().text().await.unwrap()
    });
    let line = metrics.lines().find(|l| l.starts_with(&format!("{name} ")));
    line.map_or(0, |l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

/// How many checkpoints this node signed.
fn signed_by(node: &Server) -> u64 {
    metric(node, "trail_checkpoints_signed_total")
}

/// Posts an event to each node every 100 ms for `how_long`.
fn keep_writing(nodes: &[&Server], how_long: Duration) {
    let until = Instant::now() + how_long;
    let mut n = 0;
    while Instant::now() < until {
        for node in nodes {
            post_events(&node.base, &[format!("signed {n}")]);
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_node_signs_checkpoints_at_a_time_and_the_other_takes_over_when_it_dies() {
    let schema = schema();
    let url = schema.url();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = ["--listen", "127.0.0.1:0", "--database", url.as_str()];
    let env = [("TRAIL_TOKEN", TOKEN), ("TRAIL_CHECKPOINT_EVERY", "1")];
    let first = spawn_server(one.path(), &args, &env);
    // Every node of a trail shares its key.
    std::fs::create_dir_all(two.path().join("trail-data")).unwrap();
    let key = "trail-data/checkpoint.key";
    std::fs::copy(one.path().join(key), two.path().join(key)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while signed_by(&first) == 0 {
        assert!(Instant::now() < deadline, "the first node never signed");
        keep_writing(&[&first], Duration::from_millis(300));
    }
    let second = spawn_server(two.path(), &args, &env);
    let before = signed_by(&first);
    keep_writing(&[&first, &second], Duration::from_secs(4));
    assert!(signed_by(&first) >= before + 2, "the signer kept signing every second");
    assert_eq!(signed_by(&second), 0, "the other node signs nothing while the first holds the lease");

    drop(first); // SIGKILL: the lease goes with its connection.
    let deadline = Instant::now() + Duration::from_secs(20);
    while signed_by(&second) == 0 {
        assert!(Instant::now() < deadline, "the second node never took over signing");
        keep_writing(&[&second], Duration::from_millis(300));
    }
    let (_, newest) = http("GET", &format!("{}/api/v1/checkpoint", second.base), None);
    drop(second);
    let held = one.path().join("held.txt");
    std::fs::write(&held, newest["note"].as_str().unwrap()).unwrap();
    std::fs::write(one.path().join("trail.vkey"), ok(one.path(), &["key", "show"], &[])).unwrap();
    let verify = ["verify", "--database", &url, "--key", "trail.vkey", "--checkpoints", "held.txt"];
    let verified = ok(one.path(), &verify, &[]);
    assert!(verified.contains("1 held outside confirm every event"), "both nodes signed one trail: {verified}");
}

#[test]
fn migrate_moves_a_sqlite_trail_into_postgresql_and_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (n, time) in ["2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"].iter().enumerate() {
        let message = format!("old {n}");
        ok(d, &["emit", "--user", "alice", "--kind", "DEVICE_EDITED", "--message", &message, "--time", time], &[]);
    }
    {
        let server = spawn_server(d, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
        let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
        ok(d, &["jobs", "submit", "archive edge routers", "--target", "edge1", "--target", "edge2"], &env);
        std::fs::write(d.join("edge1.conf"), "hostname edge1\nntp server 192.0.2.1\n").unwrap();
        ok(d, &["device", "archive", "edge1", "--config", "edge1.conf", "--job", "1"], &env);
        let lines: Vec<String> = (1..=30).map(|n| format!("step {n}")).collect();
        let body = serde_json::json!({"target": "edge1", "lines": lines}).to_string();
        assert_eq!(http("POST", &format!("{}/api/v1/jobs/1/log", server.base), Some(body)).0, 201);
        let (status, checkpoint) = http("POST", &format!("{}/api/v1/checkpoints", server.base), None);
        assert_eq!(status, 201, "{checkpoint}");
        std::fs::write(d.join("held.txt"), checkpoint["note"].as_str().unwrap()).unwrap();
    }
    std::fs::write(d.join("trail.vkey"), ok(d, &["key", "show"], &[])).unwrap();
    assert!(ok(d, &["purge", "--older-than-days", "365"], &[]).starts_with("purged 2 events"));
    let sqlite_head = ok(d, &["verify"], &[]);

    let schema = schema();
    let url = schema.url();
    let migrated = ok(d, &["migrate", "--to", &url, "--batch", "2"], &[]);
    assert!(migrated.contains("1 jobs with 30 log entries"), "{migrated}");
    let head = sqlite_head.lines().next().unwrap().split("; head ").nth(1).unwrap().trim();
    assert!(migrated.contains(&format!("in PostgreSQL; head {head} as in SQLite")), "{migrated}");
    let verified = ok(d, &["verify", "--database", &url], &[]);
    assert!(verified.starts_with("OK: ") && verified.contains("after the purge through id 2"), "{verified}");
    let held = ["--key", "trail.vkey", "--checkpoints", "held.txt"];
    let verified = ok(d, &[&["verify", "--database", &url][..], &held].concat(), &[]);
    assert!(verified.contains("checkpoints: 1 held outside confirm"), "the tree came along: {verified}");
    let again = ok(d, &["migrate", "--to", &url], &[]);
    assert!(again.starts_with("migrated 0 events"), "run again, it resumes with nothing left: {again}");

    let other = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        ok(other.path(), &["emit", "--user", "bob", "--kind", "DEVICE_EDITED", "--message", "another trail"], &[]);
    }
    let refused = run(other.path(), &["migrate", "--to", &url], &[]);
    assert!(stderr(&refused).contains("already holds another trail"), "{}", stderr(&refused));

    // A server on the migrated trail carries on where SQLite left off, with the trail's key.
    let refused =
        run(other.path(), &["serve", "--listen", "127.0.0.1:0", "--database", &url], &[("TRAIL_TOKEN", TOKEN)]);
    assert!(stderr(&refused).contains("give this node the trail's key"), "{}", stderr(&refused));
    std::fs::copy(d.join("trail-data/checkpoint.key"), other.path().join("trail-data/checkpoint.key")).unwrap();
    let server =
        spawn_server(other.path(), &["--listen", "127.0.0.1:0", "--database", &url], &[("TRAIL_TOKEN", TOKEN)]);
    let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    std::fs::write(other.path().join("edge1.conf"), "hostname edge1\nntp server 192.0.2.1\n").unwrap();
    let unchanged = ok(other.path(), &["device", "archive", "edge1", "--config", "edge1.conf"], &env);
    assert!(unchanged.starts_with("unchanged"), "the device's baseline came along: {unchanged}");
    assert_eq!(ok(other.path(), &["jobs", "log", "1"], &env).lines().count(), 30);
    assert!(ok(other.path(), &["jobs", "show", "1"], &env).contains("edge2"));
    assert_eq!(ok(other.path(), &["jobs", "submit", "next", "--target", "edge1"], &env).trim(), "job 2");
    assert!(ok(other.path(), &["users", "list"], &env).contains("admin"), "accounts came along");
    let (status, newest) = http("GET", &format!("{}/api/v1/checkpoint", server.base), None);
    assert_eq!(status, 200);
    assert_eq!(newest["note"].as_str(), Some(std::fs::read_to_string(d.join("held.txt")).unwrap().as_str()));
}

/// `trail serve --replica`: searches through the API are answered by the streaming replica (a
/// real one, made with `pg_basebackup -R`), so they go on while the primary is down; writes,
/// the audit events of exports and of viewing others' details included, need the primary, and
/// are refused meanwhile as unavailable, with `Retry-After`.
#[test]
fn a_node_reads_from_its_replica() {
    use trail_store_postgres::testing::Cluster;
    let primary = Cluster::start();
    let standby = primary.standby();
    let dir = tempfile::tempdir().unwrap();
    let (primary_url, standby_url) = (primary.url(), standby.url());
    let args = ["--listen", "127.0.0.1:0", "--database", primary_url.as_str(), "--replica", standby_url.as_str()];
    let node = spawn_server(dir.path(), &args, &[("TRAIL_TOKEN", TOKEN)]);
    assert!(node.banner.join("\n").contains("reads also on postgres://postgres@127.0.0.1"), "{:?}", node.banner);
    post_events(&node.base, &(0..20).map(|n| format!("replicated {n}")).collect::<Vec<_>>());
    let (_, newest) = http("GET", &format!("{}/api/v1/events?limit=1", node.base), None);
    let head = newest["events"][0]["id"].as_i64().unwrap();
    // Wait until the replica holds the head, and a second more, so that a first page may come
    // from it.
    block_on(standby.holds_through(head));
    std::thread::sleep(Duration::from_millis(1100));
    primary.stop();

    let (status, page) = http("GET", &format!("{}/api/v1/events?message=replicated&limit=5", node.base), None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 5, "{page}");
    // Another user's details are read on the replica, but viewing them is recorded, and a
    // record needs the primary: refused as unavailable, to be retried.
    let (status, retry_after) = block_on(async {
        let url = format!("{}/api/v1/events/{head}", node.base);
        let response = ::reqwest::Client::new().get(url).bearer_auth(TOKEN).send().await.unwrap();
        (response.status().as_u16(), response.headers().get("retry-after").cloned())
    });
    assert_eq!((status, retry_after.is_some()), (503, true), "details of another user's event");
    let write = serde_json::json!([{"user": "alice", "kind": "DEVICE_EDITED", "name": "edge1", "message": "x"}]);
    let (status, answer) = http("POST", &format!("{}/api/v1/events", node.base), Some(write.to_string()));
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("unavailable")), "a write needs the primary");
}

/// Faults with a real PostgreSQL (a cluster of the test's own): one of two nodes SIGKILLed
/// while both group-commit, then PostgreSQL restarted (`pg_ctl restart -m fast`) under load.
/// Meanwhile requests are answered `503 unavailable` with `Retry-After` (or, on the killed node,
/// not at all); the surviving node reconnects by itself; and no acknowledged event is lost or
/// doubled.
#[test]
fn a_killed_node_and_a_restarted_postgres_lose_and_double_nothing() {
    use common::load::{self, Answer, WhenCutOff};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use trail_store_postgres::testing::Cluster;

    let cluster = Cluster::start();
    let url = cluster.url();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = ["--listen", "127.0.0.1:0", "--database", url.as_str()];
    let mut killed = Some(spawn_server(one.path(), &args, &[("TRAIL_TOKEN", TOKEN)]));
    let survivor = spawn_server(two.path(), &args, &[("TRAIL_TOKEN", TOKEN)]);
    let log: load::Log = Arc::new(Mutex::new(Vec::new()));
    let restarted_at = Arc::new(Mutex::new(None));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let _cluster = runtime.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..8 {
            let (base, cut_off) = match c % 2 {
                0 => (killed.as_ref().unwrap().base.clone(), WhenCutOff::Stop),
                _ => (survivor.base.clone(), WhenCutOff::Retry),
            };
            clients.push(tokio::spawn(load::ingest(base, format!("client {c}"), stop.clone(), log.clone(), cut_off)));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        drop(killed.take()); // SIGKILL, mid-stream
        tokio::time::sleep(Duration::from_millis(700)).await;
        let restart = tokio::task::spawn_blocking(move || {
            cluster.restart_fast();
            cluster
        });
        let cluster = restart.await.unwrap();
        *restarted_at.lock().unwrap() = Some(Instant::now());
        // The survivor takes events again, by itself.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let since = restarted_at.lock().unwrap().unwrap();
            let acknowledged = log
                .lock()
                .unwrap()
                .iter()
                .filter(|sent| sent.at > since && matches!(sent.answer, Answer::Acknowledged(_)))
                .count();
            if acknowledged >= 20 {
                break;
            }
            assert!(Instant::now() < deadline, "the surviving node took no events within 30 s of the restart");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.await.unwrap();
        }
        cluster
    });

    let check = tempfile::tempdir().unwrap();
    let verified = ok(check.path(), &["verify", "--database", &url], &[]);
    assert!(verified.starts_with("OK:"), "{verified}");
    let exported = ok(check.path(), &["export", "--database", &url], &[]);
    let summary = load::check(&exported, &log.lock().unwrap());
    eprintln!("{summary:?}");
    assert!(summary.acknowledged > 100, "the clients got work done: {summary:?}");
    assert!(summary.unavailable > 0, "requests during the restart are answered unavailable: {summary:?}");
}
