//! The checkpointer against a real store: what it signs, when, and what it records.

use std::sync::Arc;
use std::time::Duration;
use trail_checkpoints::{Checkpointer, CheckpointsConfig};
use trail_core::checkpoint::SignedCheckpoint;
use trail_core::{EventBody, EventInput};
use trail_store::Store;
use trail_store_sqlite::SqliteStore;

fn edit(message: &str) -> EventBody {
    let input = EventInput {
        user: Some("alice".into()),
        kind: Some("DEVICE_EDITED".into()),
        name: Some("edge1".into()),
        message: Some(message.into()),
        ..EventInput::default()
    };
    input.validate(jiff::Timestamp::now()).unwrap()
}

fn checkpointer(dir: &std::path::Path) -> (Arc<dyn Store>, Arc<Checkpointer>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("trail.db")).unwrap());
    let (checkpointer, made) = CheckpointsConfig::default().build(store.clone(), dir, &[]).unwrap();
    assert!(made, "the key is made at first start");
    (store, Arc::new(checkpointer))
}

#[tokio::test]
async fn a_checkpoint_signs_the_stored_root_and_is_recorded_as_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let (store, checkpointer) = checkpointer(dir.path());
    assert!(!checkpointer.due().await.unwrap(), "an empty trail needs no checkpoint");
    store.append((0..5).map(|i| edit(&format!("m{i}"))).collect()).await.unwrap();
    assert!(checkpointer.due().await.unwrap());

    let recorded = checkpointer.make("alice").await.unwrap();
    assert_eq!(recorded.size, 5);
    assert_eq!(recorded.root, trail_store::tree::root(&*store, 5).await.unwrap());
    let opened = SignedCheckpoint::open(&recorded.note, checkpointer.verifier_key()).unwrap();
    assert_eq!((opened.checkpoint.size, opened.checkpoint.root), (5, recorded.root));
    let event = store.get(recorded.event_id).await.unwrap().unwrap();
    assert_eq!(event.body.kind, "CHECKPOINT");
    assert_eq!(event.body.user, "alice", "the event names who asked for it");
    assert_eq!(event.body.message, recorded.note);

    assert!(!checkpointer.due().await.unwrap(), "its own event does not make another due");
    let again = checkpointer.make("alice").await.unwrap();
    assert_eq!(again.size, 6, "asked for anyway, it covers the previous checkpoint's event");
}

#[tokio::test]
async fn the_runner_signs_while_events_arrive_and_once_more_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (store, checkpointer) = checkpointer(dir.path());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(checkpointer.clone().run(Duration::from_millis(50), stopping));
    store.append(vec![edit("first")]).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.latest_checkpoint().await.unwrap().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint was signed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(first.size, 1);
    // What each tick asks before it signs: with nothing new, no checkpoint is due.
    assert!(!checkpointer.due().await.unwrap(), "nothing new, nothing signed");

    // Ticks are far apart now in effect: the last event is covered by the shutdown's checkpoint.
    store.append(vec![edit("last")]).await.unwrap();
    stop.send(true).unwrap();
    runner.await.unwrap();
    let last = store.latest_checkpoint().await.unwrap().unwrap();
    let head = store.stats().await.unwrap().head;
    assert_eq!(last.event_id, head, "the shutdown's checkpoint is the last event");
    assert_eq!(last.size, trail_core::tree::size_through(head) - 1, "and it covers everything before it");
}

#[tokio::test]
async fn a_node_with_another_key_is_refused_once_the_trail_has_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (store, checkpointer) = checkpointer(dir.path());
    checkpointer.check_key().await.unwrap();
    store.append(vec![edit("first")]).await.unwrap();
    checkpointer.make("alice").await.unwrap();
    checkpointer.check_key().await.unwrap();

    let elsewhere = tempfile::tempdir().unwrap();
    let (stranger, _) = CheckpointsConfig::default().build(store.clone(), elsewhere.path(), &[]).unwrap();
    let refused = stranger.check_key().await.unwrap_err().to_string();
    assert!(refused.contains("give this node the trail's key file"), "{refused}");
}

#[tokio::test]
async fn a_rotation_hands_the_trail_over_in_a_checkpoint_both_keys_sign() {
    let dir = tempfile::tempdir().unwrap();
    let (store, checkpointer) = checkpointer(dir.path());
    store.append(vec![edit("before")]).await.unwrap();
    let before = checkpointer.make("alice").await.unwrap();
    let old = checkpointer.verifier_key().clone();
    drop(checkpointer);

    let key_file = dir.path().join(trail_checkpoints::DEFAULT_KEY_FILE);
    let (new, retired) = trail_checkpoints::key::rotate(&key_file).unwrap();
    assert_eq!(retired.verifier_key().encoded(), old.encoded());
    assert_eq!(new.name(), old.name(), "a rotation keeps the trail's name");
    let retiring_file = trail_checkpoints::key::retiring_file(&key_file);
    let pending = trail_checkpoints::key::rotate(&key_file).unwrap_err().to_string();
    assert!(pending.contains("already under way"), "{pending}");

    let (handing_over, made) = CheckpointsConfig::default().build(store.clone(), dir.path(), &[]).unwrap();
    assert!(!made);
    handing_over.check_key().await.unwrap();
    assert!(handing_over.due().await.unwrap(), "the hand-over is due even with no new event");
    let handed = handing_over.make("trail").await.unwrap();
    assert!(handed.size > before.size);
    let opened = SignedCheckpoint::open(&handed.note, &old).expect("the old key signs the hand-over");
    assert_eq!(opened.checkpoint.next_key.as_deref(), Some(new.verifier_key().encoded()));
    SignedCheckpoint::open(&handed.note, new.verifier_key()).expect("and so does the new one");
    assert!(!retiring_file.exists(), "the retired key's file is removed once the hand-over is recorded");
    assert!(!handing_over.due().await.unwrap());

    store.append(vec![edit("after")]).await.unwrap();
    let after = handing_over.make("alice").await.unwrap();
    assert!(SignedCheckpoint::open(&after.note, &old).is_err(), "the old key signs nothing more");
    let rotations = store.key_rotations().await.unwrap();
    assert_eq!(rotations.iter().map(|c| c.size).collect::<Vec<_>>(), vec![handed.size]);

    // A node still holding only the old key is refused, as any other key is.
    let stale = tempfile::tempdir().unwrap();
    let stale_key = stale.path().join(trail_checkpoints::DEFAULT_KEY_FILE);
    std::fs::write(&stale_key, format!("{}\n", retired.encoded())).unwrap();
    std::fs::set_permissions(&stale_key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (stale, _) = CheckpointsConfig::default().build(store.clone(), stale.path(), &[]).unwrap();
    assert!(stale.check_key().await.is_err(), "the retired key cannot sign for the trail again");
}
