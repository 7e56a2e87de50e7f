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
