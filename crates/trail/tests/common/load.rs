//! Clients that ingest until told to stop while a test breaks things (a server killed, the
//! database restarted), and the check that what each client was told holds in the trail.

use super::TOKEN;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a request was answered.
#[derive(Debug)]
pub enum Answer {
    /// 201, with the ids the events were stored under.
    Acknowledged(Vec<i64>),
    /// 503 `unavailable`, with `Retry-After`: nothing is promised.
    Unavailable,
    /// No answer: the connection broke (its server was killed).
    CutOff,
}

/// One request: its messages, what it was answered, and when.
pub struct Sent {
    pub messages: Vec<String>,
    pub answer: Answer,
    pub at: Instant,
}

pub type Log = Arc<Mutex<Vec<Sent>>>;

/// What to do when a request gets no answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum WhenCutOff {
    /// Stop: the server is gone for good.
    Stop,
    /// Try again after a pause.
    Retry,
}

/// Ingests into `base` until `stop`: single events and batches of up to 20, every message
/// unique (it starts with `label`). A 503 must say when to retry, and is waited out; any other
/// refusal fails the test.
pub async fn ingest(base: String, label: String, stop: Arc<AtomicBool>, log: Log, cut_off: WhenCutOff) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut sequence = 0;
    while !stop.load(Ordering::SeqCst) {
        sequence += 1;
        let size = if sequence % 2 == 0 { 1 } else { 1 + (sequence * 7 + label.len()) % 20 };
        let messages: Vec<String> = (0..size).map(|i| format!("{label} request {sequence} event {i}")).collect();
        let body: Vec<Value> =
            messages.iter().map(|m| json!({"user": "load", "kind": "DEVICE_EDITED", "message": m})).collect();
        let (answer, pause) =
            match http.post(format!("{base}/api/v1/events")).bearer_auth(TOKEN).json(&body).send().await {
                Ok(response) if response.status() == 201 => {
                    let ids: Value = response.json().await.unwrap();
                    let ids = ids["ids"].as_array().unwrap().iter().map(|id| id.as_i64().unwrap()).collect();
                    (Answer::Acknowledged(ids), None)
                }
                Ok(response) if response.status() == 503 => {
                    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
                    let Some(seconds) = retry_after else {
                        panic!("a 503 without Retry-After: {:?}", response.headers())
                    };
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["error"]["code"], "unavailable", "{body}");
                    (Answer::Unavailable, Some(Duration::from_secs(seconds)))
                }
                Ok(response) => panic!("unexpected answer {}: {}", response.status(), response.text().await.unwrap()),
                Err(_) if cut_off == WhenCutOff::Stop => (Answer::CutOff, None),
                Err(_) => (Answer::CutOff, Some(Duration::from_millis(200))),
            };
        let stops = matches!(answer, Answer::CutOff) && cut_off == WhenCutOff::Stop;
        log.lock().unwrap().push(Sent { messages, answer, at: Instant::now() });
        if stops {
            return;
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
}

/// What the clients were told, in sum.
#[derive(Debug)]
pub struct Summary {
    pub acknowledged: usize,
    pub unavailable: usize,
    pub cut_off: usize,
    pub stored: usize,
}

/// Checks an NDJSON export of the trail against the log: every acknowledged event is stored
/// once, under the id it was acknowledged with; every other request is stored whole or not at
/// all; no event is stored twice.
pub fn check(exported: &str, log: &[Sent]) -> Summary {
    let stored: HashMap<String, i64> = exported
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            (event["message"].as_str().unwrap().to_owned(), event["id"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(stored.len(), exported.lines().count(), "no event is stored twice");
    let mut ids_seen = HashSet::new();
    let mut summary = Summary { acknowledged: 0, unavailable: 0, cut_off: 0, stored: stored.len() };
    for sent in log {
        let present: Vec<Option<&i64>> = sent.messages.iter().map(|m| stored.get(m)).collect();
        match &sent.answer {
            Answer::Acknowledged(ids) => {
                summary.acknowledged += ids.len();
                for (message, (id, found)) in sent.messages.iter().zip(ids.iter().zip(&present)) {
                    assert_eq!(*found, Some(id), "acknowledged event {id} ({message}) is stored under its id");
                    assert!(ids_seen.insert(*id), "id {id} acknowledged twice");
                }
            }
            other => {
                match other {
                    Answer::Unavailable => summary.unavailable += 1,
                    _ => summary.cut_off += 1,
                }
                let stored_count = present.iter().filter(|p| p.is_some()).count();
                assert!(
                    stored_count == 0 || stored_count == sent.messages.len(),
                    "an unanswered batch is whole or absent"
                );
            }
        }
    }
    summary
}
