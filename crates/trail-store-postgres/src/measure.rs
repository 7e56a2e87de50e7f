//! For `trail bench --postgres`: the two ways of inserting events, measured on the same events
//! in fresh schemas, so the writer's choice rests on a figure.

use crate::rows::Rows;
use crate::schema::{create_partition, month_of};
use crate::{PgStore, pg};
use std::time::{Duration, Instant};
use trail_core::chain;
use trail_core::{EventBody, EventId};
use trail_store::StoreError;

/// How long inserting `events` took, in transactions of `batch`: by `UNNEST` and by
/// `COPY BINARY`. Each method writes into a schema of its own (`{schema}_unnest`,
/// `{schema}_copy`), created and dropped here.
pub async fn insert_methods(
    url: &str,
    schema: &str,
    events: &[EventBody],
    batch: usize,
) -> Result<(Duration, Duration), StoreError> {
    let mut timings = Vec::new();
    for method in ["unnest", "copy"] {
        let name = format!("{schema}_{method}");
        let (admin, connection) = crate::pg_config(url, None)?.connect(tokio_postgres::NoTls).await.map_err(pg)?;
        tokio::spawn(connection);
        admin.batch_execute(&format!("CREATE SCHEMA {name}")).await.map_err(pg)?;
        let store = PgStore::connect(url, Some(&name)).await?;
        let mut client = store.client().await?;
        // The month's partition, as the writer would have made it.
        let month = month_of(jiff::Timestamp::now());
        client.batch_execute(&create_partition(month)).await.map_err(pg)?;
        let (mut id, mut hash): (EventId, chain::Hash) = (EventId::ZERO, chain::GENESIS);
        let started = Instant::now();
        for chunk in events.chunks(batch.max(1)) {
            let mut rows = Rows::default();
            for body in chunk {
                id += 1;
                hash = chain::link(&hash, id, body);
                rows.push(id, month, body, &hash);
            }
            let tx = client.transaction().await.map_err(pg)?;
            match method {
                "unnest" => rows.insert(&tx).await?,
                _ => {
                    let copy = tx.prepare(&crate::rows::copy_sql()).await.map_err(pg)?;
                    rows.copy_in(tx.client(), &copy).await?
                }
            }
            tx.commit().await.map_err(pg)?;
        }
        timings.push(started.elapsed());
        drop(client);
        drop(store);
        admin.batch_execute(&format!("DROP SCHEMA {name} CASCADE")).await.map_err(pg)?;
    }
    Ok((timings[0], timings[1]))
}
