//! The delivery loop every destination runs (F4): read committed events after the durable
//! cursor, in id order and in bounded batches; hand the selected ones to the sink; move the
//! cursor only past what the sink confirms. After a failure it resends from the cursor, so
//! delivery is at least once and in order, and memory stays bounded however long the backlog.

use crate::config::Selection;
use crate::sink::Sink;
use crate::status::DestinationStatus;
use crate::{DestinationConfig, StartAt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use trail_core::{Event, EventId};
use trail_store::ForwardingStore;

/// Events read per batch: the bound on what a destination holds in memory.
const BATCH: usize = 512;
/// How often an idle destination looks at what has settled.
const IDLE_TICK: Duration = Duration::from_millis(200);
const RETRY_MIN: Duration = Duration::from_millis(100);

/// The saved cursor, or for a destination seen the first time its starting point, saved at
/// once (so "newest" means newest when it was first configured, not at every restart).
pub(crate) async fn initial_cursor(
    store: &dyn ForwardingStore,
    config: &DestinationConfig,
) -> Result<EventId, trail_store::StoreError> {
    if let Some(cursor) = store.forward_cursor(config.name()).await? {
        return Ok(cursor);
    }
    let start = match config.start {
        StartAt::Oldest => EventId::ZERO,
        StartAt::Newest => store.stats().await?.head,
    };
    store.save_forward_cursor(config.name(), start).await?;
    Ok(start)
}

pub(crate) struct Runner {
    store: Arc<dyn ForwardingStore>,
    name: String,
    durable: EventId,
    selection: Selection,
    retry_max: Duration,
    sink: Box<dyn Sink>,
    status: Arc<DestinationStatus>,
    shutdown: watch::Receiver<bool>,
}

impl Runner {
    pub fn new(
        store: Arc<dyn ForwardingStore>,
        config: DestinationConfig,
        durable: EventId,
        sink: Box<dyn Sink>,
        status: Arc<DestinationStatus>,
        shutdown: watch::Receiver<bool>,
    ) -> Runner {
        Runner {
            store,
            name: config.name().to_owned(),
            durable,
            selection: config.selection.clone(),
            retry_max: config.retry_max(),
            sink,
            status,
            shutdown,
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Waits `delay`; true when shutdown came first.
    async fn pause(&mut self, delay: Duration) -> bool {
        let stopped = tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            _ = self.shutdown.wait_for(|stop| *stop) => true,
        };
        stopped || self.stopping()
    }

    /// Forwards whenever this node holds the destination's lease (F4: one node at a time),
    /// until shutdown. After losing the lease, it drops what the sink had not confirmed, without
    /// saving the cursor (another node may be moving it already), and waits to take the lease
    /// again; whoever takes it resumes from the saved cursor.
    pub async fn run_leased(mut self) {
        loop {
            // What a node waiting for the lease shows: the cursor as it last knew it.
            self.status.delivered(self.durable, *self.store.watch_head().borrow());
            self.status.standby(true);
            let lease = tokio::select! {
                lease = self.store.forwarding_lease(&self.name) => lease,
                _ = until_true(self.shutdown.clone()) => return,
            };
            let lease = match lease {
                Ok(lease) => lease,
                Err(error) => {
                    self.status.failed(format!("cannot take the forwarding lease: {error}"));
                    if self.pause(self.retry_max).await {
                        return;
                    }
                    continue;
                }
            };
            // Another node may have delivered meanwhile (the first time, this is the cursor
            // `initial_cursor` just read or set).
            match self.store.forward_cursor(&self.name).await {
                Ok(saved) => self.durable = saved.unwrap_or(self.durable),
                Err(error) => {
                    self.status.failed(format!("cannot read the cursor: {error}"));
                    if self.pause(self.retry_max).await {
                        return;
                    }
                    continue;
                }
            }
            self.status.standby(false);
            // While the lease is held, the delivery loop stops on shutdown or on losing it.
            let (stop, stopped) = watch::channel(false);
            let (lost, global) = (lease.lost.clone(), self.shutdown.clone());
            let watcher = tokio::spawn(async move {
                tokio::select! {
                    _ = until_true(lost) => {}
                    _ = until_true(global) => {}
                }
                stop.send_replace(true);
            });
            let global = std::mem::replace(&mut self.shutdown, stopped);
            self.deliver().await;
            self.shutdown = global;
            watcher.abort();
            if self.stopping() {
                // A clean shutdown, still holding the lease: close, and save what the peer has.
                if let Some(confirmed) = self.sink.close().await.filter(|c| *c > self.durable) {
                    self.save(confirmed).await;
                }
                return;
            }
            drop(lease);
            self.sink.reset();
            self.status.failed("lost the forwarding lease (its database connection broke); taking it again".into());
        }
    }

    /// Delivers after the durable cursor until told to stop.
    async fn deliver(&mut self) {
        let mut head = self.store.watch_head();
        self.status.delivered(self.durable, *head.borrow());
        let (mut sent, mut backoff) = (self.durable, RETRY_MIN);
        while !self.stopping() {
            let events = match self.store.read_after(sent, BATCH).await {
                Ok(events) => events,
                Err(error) => {
                    self.status.failed(format!("cannot read events: {error}"));
                    if self.pause(self.retry_max).await {
                        break;
                    }
                    continue;
                }
            };
            let idle = events.is_empty();
            let result = match events.last().map(|e| e.id) {
                None => self.sink.settle().await,
                Some(through) => {
                    let selected: Vec<Event> = events.into_iter().filter(|e| self.selection.matches(e)).collect();
                    let result = self.sink.send(&selected, through).await;
                    if result.is_ok() {
                        sent = through;
                        self.status.sent(selected.len());
                    }
                    result
                }
            };
            match result {
                Ok(confirmed) => {
                    backoff = RETRY_MIN;
                    if let Some(confirmed) = confirmed.filter(|c| *c > self.durable) {
                        self.save(confirmed).await;
                    }
                    self.status.delivered(self.durable, *head.borrow());
                }
                Err(error) => {
                    self.status.failed(error.0);
                    self.sink.reset();
                    sent = self.durable;
                    if self.pause(backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(self.retry_max);
                    continue;
                }
            }
            if idle {
                tokio::select! {
                    _ = head.changed() => {}
                    _ = tokio::time::sleep(IDLE_TICK) => {}
                    _ = self.shutdown.changed() => {}
                }
            }
        }
    }

    /// Saves the cursor and moves it; on failure keeps the old one (the events are sent again
    /// later).
    async fn save(&mut self, confirmed: EventId) {
        match self.store.save_forward_cursor(&self.name, confirmed).await {
            Ok(()) => self.durable = confirmed,
            Err(error) => self.status.failed(format!("cannot save the cursor: {error}")),
        }
    }
}

/// Resolves once `flag` is true, or its sender is gone (which ends what it guarded too).
async fn until_true(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}
