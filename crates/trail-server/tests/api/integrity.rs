//! S4 through the API: signed checkpoints, on demand and the newest.

use crate::helpers::*;
use serde_json::json;
use std::sync::Arc;
use trail_core::checkpoint::{SignedCheckpoint, VerifierKey};

/// A server that signs with a key made in `dir`; answers the key's verifier.
async fn signing_app(dir: &std::path::Path) -> (TestApp, VerifierKey) {
    let mut verifier = None;
    let app = spawn_app_adjusted(trail_server::ServerConfig::default(), |state| {
        let config = trail_checkpoints::CheckpointsConfig::default();
        let (checkpointer, _) = config.build(state.store.clone(), dir, &[]).unwrap();
        verifier = Some(checkpointer.verifier_key().clone());
        state.checkpointer = Some(Arc::new(checkpointer));
    })
    .await;
    (app, verifier.unwrap())
}

#[tokio::test]
async fn a_checkpoint_is_made_on_demand_and_served_to_readers() {
    let dir = tempfile::tempdir().unwrap();
    let (app, key) = signing_app(dir.path()).await;
    let (status, body) = app.get_as(VIEWER, "/api/v1/checkpoint").await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    let events: Vec<_> = (0..3).map(|i| edited("alice", "edge1", &format!("m{i}"))).collect();
    assert_eq!(app.post("/api/v1/events", json!(events)).await.0, 201);

    let refused = app.post_raw("/api/v1/checkpoints", VIEWER, "").await;
    assert_eq!((refused.0, error_code(&refused.1)), (403, "forbidden"), "only administrators ask for one");
    let (status, made) = app.post_raw("/api/v1/checkpoints", ALICE, "").await;
    assert_eq!(status, 201, "{made}");
    assert_eq!((made["size"].as_u64(), made["event_id"].as_i64()), (Some(3), Some(4)));
    assert_eq!(made["origin"].as_str(), Some(key.name()));
    let opened = SignedCheckpoint::open(made["note"].as_str().unwrap(), &key).expect("the note verifies");
    assert_eq!((opened.checkpoint.size, opened.checkpoint.root_base64().as_str()), (3, made["root"].as_str().unwrap()));

    let (status, newest) = app.get_as(VIEWER, "/api/v1/checkpoint").await;
    assert_eq!((status, &newest), (200, &made), "a viewer reads the newest checkpoint");
    let (_, event) = app.get("/api/v1/events/4").await;
    assert_eq!((event["kind"].as_str(), event["user"].as_str()), (Some("CHECKPOINT"), Some("alice")));
    assert_eq!(event["message"], made["note"], "the event carries the note, for every destination");
}

#[tokio::test]
async fn nobody_forges_a_checkpoint_and_a_server_without_a_key_says_so() {
    let app = spawn_app().await;
    let forged = json!({"kind": "CHECKPOINT", "user": "mallory", "name": "trail/x", "message": "trail/x\n1\nAAAA\n"});
    let (status, body) = app.post("/api/v1/events", forged).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_event"), "{body}");
    let (status, body) = app.post_raw("/api/v1/checkpoints", ALICE, "").await;
    assert_eq!((status, error_code(&body)), (503, "unavailable"), "{body}");
}

#[tokio::test]
async fn proofs_follow_the_details_rules_and_hold_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (app, key) = signing_app(dir.path()).await;
    let events: Vec<_> = (0..3).map(|i| edited("alice", "edge1", &format!("m{i}"))).collect();
    assert_eq!(app.post("/api/v1/events", json!(events)).await.0, 201);
    let (status, body) = app.get("/api/v1/events/2/proof").await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "no checkpoint covers it yet: {body}");
    assert_eq!(app.post_raw("/api/v1/checkpoints", ALICE, "").await.0, 201);

    let (status, proof) = app.get("/api/v1/events/2/proof").await;
    assert_eq!(status, 200, "{proof}");
    let file: trail_core::proof::ProofFile = serde_json::from_value(proof).unwrap();
    assert_eq!(file.verify(&key, &[]).unwrap().size, 3);
    let (status, body) = app.get_as(VIEWER, "/api/v1/events/2/proof").await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "a proof carries the details: {body}");
    let (status, _) = app.get("/api/v1/events/4/proof").await;
    assert_eq!(status, 404, "the checkpoint's own event is covered by the next one");

    let (status, consistency) = app.get_as(VIEWER, "/api/v1/proofs/consistency?from=1&to=3").await;
    assert_eq!(status, 200, "{consistency}");
    let proof: Vec<trail_core::tree::Hash> = consistency["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let bytes = base64_decode(h.as_str().unwrap());
            trail_core::tree::hash_from(bytes.try_into().unwrap())
        })
        .collect();
    let (old, new) = (
        trail_store::tree::root(&*app.store, 1).await.unwrap(),
        trail_store::tree::root(&*app.store, 3).await.unwrap(),
    );
    trail_core::tree::check_consistency(&proof, 3, new, 1, old).unwrap();
    for bad in ["from=0&to=3", "from=3&to=1"] {
        let (status, body) = app.get(&format!("/api/v1/proofs/consistency?{bad}")).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_query"), "{bad}: {body}");
    }
    assert_eq!(app.get("/api/v1/proofs/consistency?from=1&to=99").await.0, 404);
}

/// A base64 hash decoded by the parser that reads one in every checkpoint body.
fn base64_decode(text: &str) -> Vec<u8> {
    let checkpoint = format!("o\n1\n{text}\n");
    trail_core::checkpoint::Checkpoint::parse_body(checkpoint.as_bytes()).unwrap().root.0.to_vec()
}
