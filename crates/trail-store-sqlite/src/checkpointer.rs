//! WAL checkpoints off the writer's path.
//!
//! By default SQLite has the connection that commits copy the WAL into the database file once
//! it holds 1,000 pages, inside that commit: under batch ingest, a tenth of the writer's time,
//! with an fsync of the database file each time. The writer's connection turns that off
//! (`wal_autocheckpoint = 0`) and wakes this thread after its commits instead. It runs PASSIVE
//! checkpoints on a connection of its own: they copy what no reader still needs without waiting
//! for the writer or readers. Once a checkpoint has copied the whole WAL, the writer's next
//! transaction starts it again from the beginning; under steady ingest the writer has always
//! added frames since, so when the WAL passes [`RESTART_FRAMES`] a RESTART checkpoint waits
//! briefly for a pause between commits, copies the little that is left and has the WAL begin
//! again.

use rusqlite::Connection;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Duration;

/// At most one checkpoint per this time: each costs an fsync of the database file, and under
/// ingest the writer commits far more often.
const PAUSE: Duration = Duration::from_millis(200);
/// WAL pages (4 KiB) beyond which a checkpoint has the WAL start again: 64 MiB.
const RESTART_FRAMES: i64 = 16_384;
/// How long a RESTART checkpoint waits for the writer's commit or a reader to finish before it
/// gives up until the next round: the writer waits on it meanwhile.
const RESTART_WAIT: Duration = Duration::from_millis(250);

pub struct Checkpointer {
    conn: Connection,
    wakes: Receiver<()>,
}

/// Wakes the checkpointer after a commit; a wake-up already waiting covers this one.
#[derive(Clone)]
pub struct Wake(SyncSender<()>);

impl Wake {
    pub fn after_commit(&self) {
        let _ = self.0.try_send(());
    }
}

impl Checkpointer {
    /// The checkpointer on `conn` (the events database), and how to wake it.
    pub fn new(conn: Connection) -> rusqlite::Result<(Checkpointer, Wake)> {
        conn.busy_timeout(RESTART_WAIT)?;
        let (wake, wakes) = std::sync::mpsc::sync_channel(1);
        Ok((Checkpointer { conn, wakes }, Wake(wake)))
    }

    /// Runs until the writer is gone.
    pub fn run(self) {
        while self.wakes.recv().is_ok() {
            if let Err(error) = self.checkpoint() {
                tracing::warn!(%error, "a WAL checkpoint failed; the next commit tries again");
            }
            std::thread::sleep(PAUSE);
        }
    }

    fn checkpoint(&self) -> rusqlite::Result<()> {
        let frames = self.in_mode("PASSIVE")?;
        if frames >= RESTART_FRAMES {
            self.in_mode("RESTART")?;
        }
        Ok(())
    }

    /// Runs a checkpoint of `mode`; returns the frames the WAL held.
    fn in_mode(&self, mode: &str) -> rusqlite::Result<i64> {
        let (busy, frames, copied): (i64, i64, i64) =
            self.conn
                .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        metrics::gauge!("trail_sqlite_wal_frames").set(frames as f64);
        tracing::trace!(mode, busy, frames, copied, "WAL checkpoint");
        Ok(frames)
    }
}
