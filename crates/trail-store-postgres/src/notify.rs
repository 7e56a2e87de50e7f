//! Every node hears every commit: each commit sends `pg_notify` on the schema's channel (see
//! `writer.rs`), and each node listens on a connection of its own and moves its head. Account
//! changes that can stop a credential are announced on a second channel, and move every node's
//! credentials count, so that no node trusts a revoked token it resolved earlier.

use crate::pg;
use tokio::sync::{oneshot, watch};
use tokio_postgres::NoTls;
use trail_core::EventId;
use trail_store::StoreError;

/// The channel on which commits announce the new head: one per schema, since notifications
/// cross the whole database.
pub async fn head_channel(client: &tokio_postgres::Client) -> Result<String, StoreError> {
    let schema: String = client.query_one("SELECT current_schema()", &[]).await.map_err(pg)?.get(0);
    Ok(format!("trail_head.{schema}"))
}

/// The channel of another kind of announcement beside the head's, for the same schema:
/// `trail_credentials` (account changes that can stop a credential) or `trail_jobs` (job
/// changes: created, a leaf reported).
fn beside(head_channel: &str, kind: &str) -> String {
    head_channel.replacen("trail_head.", &format!("{kind}."), 1)
}

/// Run in a transaction that changes a job: announces the change at the commit on
/// `trail_jobs` [beside](beside) the head's channel, naming the node that made it, `$1` (a JSON [`JobAnnouncement`]).
pub const ANNOUNCE_JOB: &str = "SELECT pg_notify('trail_jobs.' || current_schema(), $1)";

/// A job change as announced: which node made it, the job, and the leaf reported.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct JobAnnouncement {
    pub node: String,
    pub job: i64,
    pub target: Option<String>,
    pub status: Option<trail_core::operations::Status>,
}

impl JobAnnouncement {
    /// The change, unless this node made it itself (its live views had it already).
    fn from_elsewhere(payload: &str, node: &str) -> Option<trail_store::JobChange> {
        let announced: JobAnnouncement = serde_json::from_str(payload).ok()?;
        (announced.node != node).then(|| trail_store::JobChange {
            job: trail_core::operations::JobId::new(announced.job),
            leaf: announced.target.zip(announced.status),
        })
    }
}

/// Run in a transaction that changes what a credential may do: announces it at the commit on
/// `trail_credentials` [beside](beside) the head's channel, and never if it rolls back.
pub const ANNOUNCE_CREDENTIALS: &str = "SELECT pg_notify('trail_credentials.' || current_schema(), '')";

/// What the listener moves: the head, the count of credential changes, and the other nodes'
/// job changes (this node is `node`).
pub struct Heard {
    pub head: watch::Sender<EventId>,
    pub credentials: trail_store::CredentialsCount,
    pub jobs: tokio::sync::broadcast::Sender<trail_store::JobChange>,
    pub node: String,
}

/// Listens on a connection of its own for every node's commits and credential changes, and
/// moves `heard`. When the connection breaks, it connects again; meanwhile the head stands
/// still (forwarders still poll on their idle tick), and once back the credentials count
/// moves, for what it may have missed.
/// Answers a guard: the listening stops when it is dropped (with the store).
pub async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    heard: Heard,
) -> Result<oneshot::Sender<()>, StoreError> {
    let (ready, listening) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(keep_listening(config.clone(), channel.to_owned(), heard, Some(ready)));
    tokio::spawn(async move {
        let _ = stopped.await;
        task.abort();
    });
    listening.await.map_err(|_| StoreError::Closed)??;
    Ok(stop)
}

async fn keep_listening(
    config: tokio_postgres::Config,
    channel: String,
    heard: Heard,
    mut ready: Option<oneshot::Sender<Result<(), StoreError>>>,
) {
    loop {
        let outcome = listen_once(&config, &channel, &heard, &mut ready).await;
        if let Some(ready) = ready.take() {
            // The first connection failed: the caller reports it.
            let _ = ready.send(outcome);
            return;
        }
        if let Err(error) = outcome {
            tracing::warn!(%error, "lost the PostgreSQL connection that hears other nodes' commits; reconnecting");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// One listening connection, until it breaks.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    heard: &Heard,
    ready: &mut Option<oneshot::Sender<Result<(), StoreError>>>,
) -> Result<(), StoreError> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg)?;
    let (forward, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                    let _ = forward.send((note.channel().to_owned(), note.payload().to_owned()));
                }
                Ok(_) => {}
                Err(error) => return Err(pg(error)),
            }
        }
        Ok(())
    });
    let (credentials, jobs) = (beside(channel, "trail_credentials"), beside(channel, "trail_jobs"));
    for listened in [channel, credentials.as_str(), jobs.as_str()] {
        let quoted = listened.replace('"', "\"\"");
        client.batch_execute(&format!("LISTEN \"{quoted}\"")).await.map_err(pg)?;
    }
    // Listening now: whatever committed before (at start, or while disconnected) is in the head.
    let committed: EventId =
        EventId::new(client.query_one("SELECT last_id FROM chain_head", &[]).await.map_err(pg)?.get(0));
    advance(&heard.head, committed);
    match ready.take() {
        Some(ready) => {
            let _ = ready.send(Ok(()));
        }
        // Back after a break: a credential may have changed meanwhile, unheard.
        None => heard.credentials.moved(),
    }
    while let Some((on, payload)) = notes.recv().await {
        if on == credentials {
            heard.credentials.moved();
        } else if on == jobs {
            if let Some(change) = JobAnnouncement::from_elsewhere(&payload, &heard.node) {
                let _ = heard.jobs.send(change);
            }
        } else if let Ok(id) = payload.parse::<EventId>() {
            advance(&heard.head, id);
        }
    }
    driver.await.map_err(crate::backend)?
}

/// Moves the head forward to `id`, never back (notifications may arrive out of order).
fn advance(head: &watch::Sender<EventId>, id: EventId) {
    head.send_if_modified(|seen| {
        let newer = id > *seen;
        *seen = (*seen).max(id);
        newer
    });
}
