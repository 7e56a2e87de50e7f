//! Live status is every node's: a node's live views hear the jobs created and the leaves
//! reported through the others, once each, and their own changes once.

use std::sync::Arc;
use std::time::Duration;
use trail_core::operations::Status;
use trail_core::operations::results::Origin;
use trail_operations::{JobUpdate, Operations};
use trail_store_postgres::testing::TestSchema;

async fn node(schema: &TestSchema) -> Operations {
    let store = Arc::new(schema.store().await);
    Operations::new(store.clone(), store)
}

fn origin() -> Origin {
    Origin {
        user: "ops".into(),
        client: None,
        request_id: None,
        session_id: None,
        job: None,
        submitted_by: "token ci of ops".into(),
    }
}

/// The next update a live view hears, within 10 s.
async fn next(updates: &mut tokio::sync::broadcast::Receiver<JobUpdate>) -> JobUpdate {
    tokio::time::timeout(Duration::from_secs(10), updates.recv())
        .await
        .expect("an update within 10 s")
        .expect("the channel stays open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_views_hear_every_nodes_jobs() {
    let schema = TestSchema::new().await;
    let (one, other) = (node(&schema).await, node(&schema).await);
    let mut watching_other = other.subscribe();

    let job = one.submit("backup".into(), vec!["r1".into(), "r2".into()], &origin()).await.unwrap();
    let created = next(&mut watching_other).await;
    assert_eq!((created.job, created.target.clone(), created.queued), (job.id, None, 2), "{created:?}");
    one.report(job.id, "r1", Status::Running, "started", "token ci of ops").await.unwrap();
    let reported = next(&mut watching_other).await;
    assert_eq!(
        (reported.job, reported.target.as_deref(), reported.target_status),
        (job.id, Some("r1"), Some(Status::Running))
    );
    assert_eq!((reported.queued, reported.running), (1, 1), "the job as it now stands");

    // The other node's own report reaches its views once, not again when its announcement
    // comes back to it.
    other.report(job.id, "r2", Status::Succeeded, "done", "token ci of ops").await.unwrap();
    let own = next(&mut watching_other).await;
    assert_eq!((own.target.as_deref(), own.target_status), (Some("r2"), Some(Status::Succeeded)));
    one.report(job.id, "r1", Status::Failed, "unreachable", "token ci of ops").await.unwrap();
    let last = next(&mut watching_other).await;
    assert_eq!((last.target.as_deref(), last.target_status), (Some("r1"), Some(Status::Failed)), "no repeat between");
}
