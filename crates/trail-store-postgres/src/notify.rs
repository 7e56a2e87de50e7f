//! Every node hears every commit: each commit sends `pg_notify` on the schema's channel (see
//! `writer.rs`), and each node listens on a connection of its own and moves its head.

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

/// Listens on a connection of its own for every node's commits and moves `head`. When the
/// connection breaks, it connects again; meanwhile the head stands still (forwarders still
/// poll on their idle tick).
/// Answers a guard: the listening stops when it is dropped (with the store).
pub async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    head: watch::Sender<EventId>,
) -> Result<oneshot::Sender<()>, StoreError> {
    let (ready, listening) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(keep_listening(config.clone(), channel.to_owned(), head, Some(ready)));
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
    head: watch::Sender<EventId>,
    mut ready: Option<oneshot::Sender<Result<(), StoreError>>>,
) {
    loop {
        let outcome = listen_once(&config, &channel, &head, &mut ready).await;
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
    head: &watch::Sender<EventId>,
    ready: &mut Option<oneshot::Sender<Result<(), StoreError>>>,
) -> Result<(), StoreError> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg)?;
    let (notes, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                    let _ = notes.send(note.payload().to_owned());
                }
                Ok(_) => {}
                Err(error) => return Err(pg(error)),
            }
        }
        Ok(())
    });
    let quoted = channel.replace('"', "\"\"");
    client.batch_execute(&format!("LISTEN \"{quoted}\"")).await.map_err(pg)?;
    // Listening now: whatever committed before (at start, or while disconnected) is in the head.
    let committed: EventId =
        EventId::new(client.query_one("SELECT last_id FROM chain_head", &[]).await.map_err(pg)?.get(0));
    advance(head, committed);
    if let Some(ready) = ready.take() {
        let _ = ready.send(Ok(()));
    }
    while let Some(payload) = heard.recv().await {
        if let Ok(id) = payload.parse::<EventId>() {
            advance(head, id);
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
