//! Work one node does at a time (F4: forwarding a destination; S4: signing checkpoints), held as
//! a session-level advisory lock on a connection of its own. When that node dies, its connection closes, the
//! server releases the lock, and the next node to ask takes over from the saved cursor.

use crate::pg;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::NoTls;
use trail_store::{Lease, StoreError};

/// How often a node without the lease asks again, and how often the holder checks that its
/// connection is alive.
const ASK_EVERY: Duration = Duration::from_millis(500);
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Waits for the lock named `work` in this schema (a key of the leases' kind), on a connection
/// of its own, and answers that connection: dropping it closes the connection, which releases
/// the lock. Not a pooled connection: what the lock guards needs the pool (through the
/// writer), and waiters holding every pooled connection would leave none.
pub async fn hold(config: &tokio_postgres::Config, work: &str) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(pg)?;
    tokio::spawn(connection);
    let lock = "SELECT pg_advisory_lock(hashtextextended(current_schema() || '/' || $1, 0))";
    client.execute(lock, &[&work]).await.map_err(pg)?;
    Ok(client)
}

/// Waits for the lease named `work` in this schema.
pub async fn acquire(config: &tokio_postgres::Config, work: &str) -> Result<Lease, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(pg)?;
    let (lost_sender, lost) = watch::channel(false);
    let connection_lost = lost_sender.clone();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "the connection holding a forwarding lease broke");
        }
        connection_lost.send_replace(true);
    });
    let key = "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || '/' || $1, 0))";
    loop {
        let taken: bool = client.query_one(key, &[&work]).await.map_err(pg)?.get(0);
        if taken {
            break;
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
    // The holder checks its connection, so that a silent network failure is noticed too. The
    // checker holds it weakly: dropping the lease closes the connection, and frees the lock, at
    // once.
    let client = std::sync::Arc::new(client);
    let checker = std::sync::Arc::downgrade(&client);
    tokio::spawn(async move {
        while !*lost_sender.borrow() {
            tokio::time::sleep(CHECK_EVERY).await;
            let Some(client) = checker.upgrade() else { return };
            if client.simple_query("SELECT 1").await.is_err() {
                lost_sender.send_replace(true);
            }
        }
    });
    Ok(Lease::new(lost, Box::new(client)))
}
