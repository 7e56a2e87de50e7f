//! `trail serve` forwards to the destinations of its configuration file, and `trail
//! destinations`, the API and `/metrics` show their backlog and last error. (The protocols
//! themselves are tested against real rsyslog and FreeRADIUS in trail-forward's tests.)

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Datagrams until `wanted` of them contain "forwarded" (or a timeout).
fn receive(socket: &std::net::UdpSocket, wanted: usize) -> Vec<String> {
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut messages = Vec::new();
    let mut buffer = [0u8; 65536];
    while messages.iter().filter(|m: &&String| m.contains("forwarded")).count() < wanted {
        let (length, _) = socket.recv_from(&mut buffer).expect("a datagram within 20 s");
        messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
    }
    messages
}

#[test]
fn serve_forwards_and_every_view_shows_backlog_and_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = format!(
        "[[destinations]]\nname = \"siem\"\ntype = \"syslog\"\nurl = \"udp://127.0.0.1:{}\"\n\
         [[destinations]]\nname = \"down\"\ntype = \"syslog\"\nurl = \"tcp://127.0.0.1:{}\"\nretry_max_ms = 200\n",
        receiver.local_addr().unwrap().port(),
        closed_port()
    );
    std::fs::write(d.join("trail.toml"), &config).unwrap();
    let server = spawn_server(d, &["--listen", "127.0.0.1:0", "--config", "trail.toml"], &[("TRAIL_TOKEN", TOKEN)]);
    let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    for n in 1..=3 {
        let message = format!("forwarded {n}");
        ok(d, &["emit", "--user", "alice", "--kind", "DEVICE_EDITED", "--name", "edge1", "--message", &message], &env);
    }
    let datagrams = receive(&receiver, 3);
    assert!(datagrams.iter().any(|m| m.contains("USER_ADDED")), "the first run's admin creation is forwarded too");
    let edits: Vec<&String> = datagrams.iter().filter(|m| m.contains("DEVICE_EDITED")).collect();
    assert_eq!(edits.len(), 3);
    assert!(edits[2].starts_with("<133>1 ") && edits[2].ends_with("\u{feff}forwarded 3"), "{}", edits[2]);

    let listed: Value = {
        let mut tries = 0;
        loop {
            let listed: Value = serde_json::from_str(&ok(d, &["destinations", "--json"], &env)).unwrap();
            if listed[1]["last_error"].is_object() || tries > 100 {
                break listed;
            }
            tries += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!((listed[0]["name"].as_str(), listed[0]["backlog"].as_u64()), (Some("siem"), Some(0)));
    assert_eq!((listed[1]["name"].as_str(), listed[1]["backlog"].as_u64()), (Some("down"), Some(4)));
    assert_eq!(listed[1]["state"], "retrying");
    assert!(listed[1]["last_error"]["message"].as_str().unwrap().contains("cannot connect"), "{listed}");
    let table = ok(d, &["destinations"], &env);
    assert!(table.contains("siem") && table.contains("cannot connect"), "{table}");
    let metrics = reqwest_get(&format!("{}/metrics", server.base));
    assert!(metrics.contains("trail_forward_backlog{destination=\"down\"} 4"), "{metrics}");

    drop(server);
    let saved = ok(d, &["destinations", "--config", "trail.toml", "--json"], &[]);
    let saved: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved[0]["delivered_through"], 4, "the cursor survives the server");
    assert_eq!(saved[1]["delivered_through"], 0);
    assert!(ok(d, &["destinations", "dictionary"], &[]).contains("VENDOR\t\tTrail\t\t\t\t32473"));
}

fn reqwest_get(url: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

#[test]
fn bad_destinations_stop_the_server_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        ("[[destinations]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"tcp://x:1\"\nfromat = \"rfc5424\"\n", "fromat"),
        ("[[destinations]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"http://x\"\n", "udp://"),
        ("[[destinations]]\nname = \"s\"\ntype = \"carrier-pigeon\"\n", "carrier-pigeon"),
        ("[[destinations]]\nname = \"r\"\ntype = \"radius\"\nservers = []\nsecret = \"x\"\n", "at least one"),
        (
            "[[destinations]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"tls://127.0.0.1:1\"\nca_file = \"missing.pem\"\n",
            "missing.pem",
        ),
    ];
    for (config, expected) in cases {
        std::fs::write(d.join("bad.toml"), config).unwrap();
        let output = run(d, &["serve", "--listen", "127.0.0.1:0", "--config", "bad.toml"], &[("TRAIL_TOKEN", TOKEN)]);
        assert!(!output.status.success());
        assert!(stderr(&output).contains(expected), "{config}: {}", stderr(&output));
    }
}
