//! What this trail keeps beside its events, read whole for `trail migrate`.

use crate::{accounts, jobs};
use rusqlite::Connection;
use trail_core::EventId;
use trail_core::JobId;
use trail_core::content::{ContentKind, StoredContent};
use trail_core::time;
use trail_store::state::{DeviceContent, JobRecord, TrailState};

fn damaged(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, what.into())
}

pub fn state(conn: &Connection) -> rusqlite::Result<TrailState> {
    let mut tokens =
        conn.prepare(&format!("SELECT {}, digest FROM api_tokens ORDER BY id", accounts::TOKEN_COLUMNS))?;
    let tokens = tokens
        .query_map([], |row| {
            let digest: Vec<u8> = row.get(7)?;
            let digest = digest.try_into().map_err(|_| damaged(7, "a token digest is not 32 bytes".into()))?;
            Ok((accounts::token_from_row(row)?, digest))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut contents = conn.prepare(
        "SELECT d.device, d.kind, d.hash, c.body, d.changed_at, d.seen_at \
         FROM device_contents d JOIN contents c ON c.hash = d.hash ORDER BY d.device, d.kind",
    )?;
    let contents = contents
        .query_map([], |row| {
            let kind: String = row.get(1)?;
            Ok(DeviceContent {
                device: row.get(0)?,
                kind: ContentKind::parse(&kind).ok_or_else(|| damaged(1, format!("content kind {kind:?}")))?,
                content: StoredContent {
                    hash: row.get(2)?,
                    content: row.get(3)?,
                    changed_at: time::from_micros(row.get(4)?),
                    seen_at: time::from_micros(row.get(5)?),
                },
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut job_rows = conn.prepare("SELECT id, client FROM jobs ORDER BY id")?;
    let job_rows: Vec<(i64, Option<String>)> =
        job_rows.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut records = Vec::with_capacity(job_rows.len());
    for (id, client) in job_rows {
        let job = jobs::get(conn, JobId::new(id))?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        records.push(JobRecord { job, client });
    }
    let mut cursors =
        conn.prepare("SELECT destination, delivered_through FROM forward_cursors ORDER BY destination")?;
    let cursors = cursors
        .query_map([], |row| Ok((row.get(0)?, row.get(1).map(EventId::new)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(TrailState {
        accounts: accounts::all(conn)?,
        tokens,
        sessions: accounts::sessions(conn)?,
        contents,
        jobs: records,
        cursors,
        checkpoints: crate::checkpoints::all(conn)?,
    })
}
