//! WAL checkpoints off the writer's path, and a WAL that begins again instead of growing.
//!
//! By default SQLite has the connection that commits copy the WAL into the database file once
//! it holds 1,000 pages, inside that commit: under batch ingest, a tenth of the writer's time,
//! with an fsync of the database file each time. The writer's connection turns that off
//! (`wal_autocheckpoint = 0`) and wakes this thread after its commits instead. It runs PASSIVE
//! checkpoints on a connection of its own: they copy what no reader still needs without waiting
//! for the writer or readers.
//!
//! A WAL begins again from its first frame only once a checkpoint has copied all of it and no
//! reader still reads from it. Under steady ingest that moment never comes by itself (the
//! writer has always added frames since), and a RESTART checkpoint from this thread seldom won
//! the write lock between two commits: a 2,000,000-event ingest left a WAL of 300 MB, and a
//! WAL that grows costs the writer dearly, since the file system zeroes every new block it
//! appends to (a fifth of the writer's time on ext4). So the writer counts the WAL's pages at
//! each commit (SQLite's WAL hook, set in [`Checkpointer::new`]), and once they pass [`RESTART_FRAMES`]
//! it has the WAL begin again itself between two groups, where it holds the write lock anyway:
//! it copies the little the last PASSIVE checkpoint left and waits briefly for readers. (The
//! count is the writer's own: when this thread said when, a busy machine that starved it, as it
//! runs below the writer, let the WAL grow unchecked.)

use rusqlite::Connection;
use std::cell::Cell;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// At most one checkpoint per this time: each costs an fsync of the database file, and under
/// ingest the writer commits far more often.
const PAUSE: Duration = Duration::from_millis(200);
/// WAL pages (4 KiB) beyond which the writer has the WAL begin again: 64 MiB.
const RESTART_FRAMES: i64 = 16_384;
/// What SQLite truncates a WAL to when it begins again, should a long reader have let it grow
/// past [`RESTART_FRAMES`] (pages and their frame headers).
const WAL_SIZE_LIMIT: i64 = 2 * RESTART_FRAMES * (4096 + 24);
/// How long the writer waits for readers still reading from the WAL before it gives up until
/// [`RETRY_AFTER`]: new requests wait meanwhile.
const RESTART_WAIT: Duration = Duration::from_millis(20);
/// After a restart that readers held off (a long export, say), the next try waits this long,
/// so that a long reader costs the writer at most 2 % of its time.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct Checkpointer {
    conn: Connection,
    wakes: Receiver<()>,
}

thread_local! {
    /// The pages in the WAL after the last commit of the writer's connection (see
    /// [`Checkpointer::new`]), in the thread that committed: each store's writer has a thread
    /// of its own.
    static WAL_PAGES: Cell<i64> = const { Cell::new(0) };
}

/// SQLite's WAL hook: called in the committing thread with the pages the WAL holds.
fn count_pages(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(i64::from(pages));
    Ok(())
}

/// The writer's side: wakes the checkpointer after a commit, and has the WAL begin again once
/// it is past its mark.
pub struct WalSize {
    wake: SyncSender<()>,
    next_try: Instant,
}

impl WalSize {
    /// After a commit on the writer's connection `conn`, in its thread: wakes the checkpointer
    /// (a wake-up already waiting covers this one), and has the WAL begin again if it is past
    /// its mark.
    pub fn after_commit(&mut self, conn: &Connection) {
        let _ = self.wake.try_send(());
        if WAL_PAGES.get() < RESTART_FRAMES || Instant::now() < self.next_try {
            return;
        }
        match restart(conn) {
            Ok(Restart::Done) => WAL_PAGES.set(0),
            // The checkpointer is copying: the next commit tries again.
            Ok(Restart::NotStarted) => {}
            Ok(Restart::HeldOff) => self.next_try = Instant::now() + RETRY_AFTER,
            Err(error) => {
                self.next_try = Instant::now() + RETRY_AFTER;
                tracing::warn!(%error, "the WAL could not begin again; the writer tries again later");
            }
        }
    }
}

/// What a RESTART checkpoint came to.
enum Restart {
    Done,
    /// Another checkpoint was running (the checkpointer's PASSIVE one): it did not start.
    NotStarted,
    /// Readers still reading from the WAL held it off past [`RESTART_WAIT`].
    HeldOff,
}

/// A RESTART checkpoint on the writer's connection: whether the WAL begins again. Readers can
/// hold it off, for [`RESTART_WAIT`] at most; a checkpoint already running keeps it from
/// starting.
fn restart(conn: &Connection) -> rusqlite::Result<Restart> {
    conn.busy_timeout(RESTART_WAIT)?;
    let outcome = checkpoint(conn, "RESTART");
    conn.busy_timeout(crate::BUSY_TIMEOUT)?;
    // SQLite leaves the frame counts at -1 when it could not take the checkpoint lock.
    let outcome = match outcome? {
        (false, ..) => Restart::Done,
        (true, frames, _) if frames < 0 => Restart::NotStarted,
        (true, ..) => Restart::HeldOff,
    };
    let label = match outcome {
        Restart::Done => "done",
        Restart::NotStarted => "not started",
        Restart::HeldOff => "held off",
    };
    metrics::counter!("trail_sqlite_wal_restarts_total", "outcome" => label).increment(1);
    Ok(outcome)
}

/// Runs a checkpoint of `mode`: whether a reader or writer held it off, the frames the WAL held
/// and how many of them are now in the database file.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(bool, i64, i64)> {
    let (busy, frames, copied): (i64, i64, i64) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    metrics::gauge!("trail_sqlite_wal_frames").set(frames as f64);
    tracing::trace!(mode, busy, frames, copied, "WAL checkpoint");
    Ok((busy != 0, frames, copied))
}

impl Checkpointer {
    /// The checkpointer on `own` (a connection to the events database), and the writer's side
    /// of it. The writer's connection stops checkpointing in its commits, counts the WAL's pages
    /// at each instead (SQLite's WAL hook, which the automatic checkpoint used and its pragma
    /// would replace, hence this order), and truncates a WAL that grew past
    /// [`WAL_SIZE_LIMIT`] when it begins again.
    pub fn new(writer: &Connection, own: Connection) -> rusqlite::Result<(Checkpointer, WalSize)> {
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        writer.wal_hook(Some(count_pages));
        let (wake, wakes) = std::sync::mpsc::sync_channel(1);
        Ok((Checkpointer { conn: own, wakes }, WalSize { wake, next_try: Instant::now() }))
    }

    /// Runs until the writer is gone: a checkpoint after commits, and again after a pause while
    /// a reader kept part of the WAL from the database file, so that the last commits before a
    /// quiet spell reach it too.
    pub fn run(self) {
        let mut behind = false;
        loop {
            let woken = if behind { self.wakes.recv_timeout(PAUSE) } else { self.wakes.recv().map_err(Into::into) };
            if let Err(RecvTimeoutError::Disconnected) = woken {
                return;
            }
            behind = self.passive();
            std::thread::sleep(PAUSE);
        }
    }

    /// A PASSIVE checkpoint: whether it left frames behind.
    fn passive(&self) -> bool {
        match checkpoint(&self.conn, "PASSIVE") {
            Ok((_, frames, copied)) => copied < frames,
            Err(error) => {
                tracing::warn!(%error, "a WAL checkpoint failed; it is tried again");
                true
            }
        }
    }
}
