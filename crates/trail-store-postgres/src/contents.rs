//! E4's storage: each device's latest content per kind, contents stored once per hash.

use crate::pg;
use deadpool_postgres::GenericClient;
use trail_core::content::{ContentKind, StoredContent};
use trail_core::time;
use trail_store::StoreError;

pub async fn latest(
    client: &impl GenericClient,
    device: &str,
    kind: ContentKind,
) -> Result<Option<StoredContent>, StoreError> {
    let row = client
        .query_opt(
            "SELECT d.hash, c.body, d.changed_at, d.seen_at FROM device_contents d JOIN contents c ON c.hash = d.hash \
             WHERE d.device = $1 AND d.kind = $2",
            &[&device, &kind.as_str()],
        )
        .await
        .map_err(pg)?;
    Ok(row.map(|r| StoredContent {
        hash: r.get(0),
        content: r.get(1),
        changed_at: time::from_micros(r.get(2)),
        seen_at: time::from_micros(r.get(3)),
    }))
}

/// The same content was recorded again: only the time it was last seen moves.
pub async fn touch(client: &impl GenericClient, device: &str, kind: ContentKind, at: i64) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE device_contents SET seen_at = greatest(seen_at, $3) WHERE device = $1 AND kind = $2",
            &[&device, &kind.as_str(), &at],
        )
        .await
        .map_err(pg)?;
    Ok(())
}

/// New content becomes the latest; its body is stored unless that hash is already there.
pub async fn replace(
    client: &impl GenericClient,
    device: &str,
    kind: ContentKind,
    hash: &str,
    body: &str,
    at: i64,
) -> Result<(), StoreError> {
    client
        .execute("INSERT INTO contents (hash, body) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&hash, &body])
        .await
        .map_err(pg)?;
    client
        .execute(
            "INSERT INTO device_contents (device, kind, hash, changed_at, seen_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (device, kind) DO UPDATE SET hash = $3, changed_at = $4, seen_at = $4",
            &[&device, &kind.as_str(), &hash, &at],
        )
        .await
        .map_err(pg)?;
    Ok(())
}
