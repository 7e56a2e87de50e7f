//! The checkpointer: signs the tree's root as it grows, and records each checkpoint as a
//! CHECKPOINT event, so that every destination forwards it out of the host's reach.

use crate::witnesses::Witnesses;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use trail_core::checkpoint::{RecordedCheckpoint, SignedCheckpoint, SigningKey, VerifierKey, checkpoint_event};
use trail_store::{Store, StoreError};

/// Who is named as the cause of the checkpoints Trail makes on its own.
pub const TRAIL_USER: &str = "trail";

/// Why no checkpoint was signed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// This node's key is not the trail's.
    #[error(
        "this trail's checkpoints (the newest of {size} events, of `{first_line}`) are not signed with this node's \
         key {ours}: give this node the trail's key file ([checkpoints] key_file), as every node of a trail shares one"
    )]
    OtherKey { size: u64, ours: String, first_line: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Checkpointer {
    store: Arc<dyn Store>,
    key: SigningKey,
    /// The key the trail is being handed over from, until a checkpoint that both keys sign has
    /// announced `key` (see `trail_core::rotation`).
    retiring: Mutex<Option<Arc<RetiringKey>>>,
    witnesses: Witnesses,
    /// One checkpoint at a time in this process: two at once would sign the same size.
    making: tokio::sync::Mutex<()>,
}

/// The key a rotation retires, and the file that holds it, removed once the hand-over is
/// recorded: after that, nothing on this host signs with it again.
pub struct RetiringKey {
    pub key: SigningKey,
    pub file: Option<PathBuf>,
}

impl Checkpointer {
    pub fn new(store: Arc<dyn Store>, key: SigningKey) -> Checkpointer {
        Checkpointer {
            store,
            key,
            retiring: Mutex::new(None),
            witnesses: Witnesses::none(),
            making: tokio::sync::Mutex::new(()),
        }
    }

    /// Hands the trail over from `retiring` to this checkpointer's key at its next checkpoint,
    /// if the trail's newest checkpoint is `retiring`'s.
    pub fn retiring(self, retiring: RetiringKey) -> Checkpointer {
        *self.retiring.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(retiring));
        self
    }

    fn retiring_key(&self) -> Option<Arc<RetiringKey>> {
        self.retiring.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Forgets the retiring key, and removes its file: the trail no longer needs it.
    fn retire(&self) {
        let Some(retired) = self.retiring.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() else {
            return;
        };
        let label = retired.key.verifier_key().label();
        match &retired.file {
            Some(file) => match std::fs::remove_file(file) {
                Ok(()) => tracing::info!(key = %label, file = %file.display(), "the retired key's file was removed"),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(%error, file = %file.display(), "remove the retired key's file by hand"),
            },
            None => tracing::info!(key = %label, "the key is retired"),
        }
    }

    /// The key the next checkpoint hands the trail over from, if one is pending.
    pub fn handing_over_from(&self) -> Option<String> {
        self.retiring_key().map(|r| r.key.verifier_key().encoded().to_owned())
    }

    /// Each checkpoint goes to these witnesses before it is recorded.
    pub fn with_witnesses(mut self, witnesses: Witnesses) -> Checkpointer {
        self.witnesses = witnesses;
        self
    }

    pub fn witnesses(&self) -> &Witnesses {
        &self.witnesses
    }

    /// What verifiers of this trail's checkpoints are given.
    pub fn verifier_key(&self) -> &VerifierKey {
        self.key.verifier_key()
    }

    /// Refuses a key other than the one that signed this trail's newest checkpoint (or the
    /// one it is being handed over from): a node with a key of its own would sign checkpoints
    /// that no verifier of this trail accepts.
    pub async fn check_key(&self) -> Result<(), CheckpointError> {
        self.hand_over_due(self.store.latest_checkpoint().await?.as_ref()).map(drop)
    }

    /// Whether the next checkpoint must hand the trail over from the retiring key: the newest
    /// checkpoint is that key's. When it is already this key's, the retiring key is retired.
    fn hand_over_due(&self, latest: Option<&RecordedCheckpoint>) -> Result<bool, CheckpointError> {
        let signed_by = |key: &SigningKey| {
            latest.is_none_or(|latest| SignedCheckpoint::open(&latest.note, key.verifier_key()).is_ok())
        };
        if signed_by(&self.key) {
            // Nothing signed yet, or the hand-over already recorded (by this node or another).
            self.retire();
            return Ok(false);
        }
        if self.retiring_key().is_some_and(|retiring| signed_by(&retiring.key)) {
            return Ok(true);
        }
        let latest = latest.expect("a trail with no checkpoint is signed by any key");
        Err(CheckpointError::OtherKey {
            size: latest.size,
            ours: self.key.verifier_key().encoded().to_owned(),
            first_line: latest.note.lines().next().unwrap_or_default().to_owned(),
        })
    }

    /// Signs the tree as it stands, has the witnesses cosign it, and records the checkpoint,
    /// naming `user` as its cause.
    /// When the newest checkpoint already covers every event (another node was quicker), it is
    /// the answer.
    pub async fn make(&self, user: &str) -> Result<RecordedCheckpoint, CheckpointError> {
        let _one_at_a_time = self.making.lock().await;
        let size = trail_core::tree::size_through(self.store.stats().await?.head);
        let latest = self.store.latest_checkpoint().await?;
        let hand_over = self.hand_over_due(latest.as_ref())?;
        if let Some(latest) = latest.filter(|c| c.size >= size && !hand_over) {
            return Ok(latest);
        }
        let root = trail_store::tree::root(&*self.store, size).await?;
        let mut signed = match self.retiring_key().filter(|_| hand_over) {
            Some(retiring) => retiring.key.hand_over(&self.key, size, root),
            None => self.key.sign(size, root),
        };
        signed.note = self.witnesses.cosign(&*self.store, &signed).await;
        let event = checkpoint_event(&signed, self.key.verifier_key(), user, jiff::Timestamp::now());
        let recorded = self.store.record_checkpoint(signed, event).await?;
        metrics::counter!("trail_checkpoints_signed_total").increment(1);
        metrics::gauge!("trail_checkpoint_size").set(recorded.size as f64);
        tracing::info!(size = recorded.size, event = %recorded.event_id, "checkpoint signed");
        if hand_over {
            tracing::info!(key = %self.key.verifier_key().encoded(), "the trail was handed over to its new key");
            self.retire();
        }
        Ok(recorded)
    }

    /// Whether events other than checkpoints were added since the newest checkpoint: its own
    /// CHECKPOINT event is the only one that may follow it without a new one being due.
    /// A pending hand-over to a new key is due at once.
    pub async fn due(&self) -> Result<bool, StoreError> {
        if self.retiring_key().is_some() {
            return Ok(true);
        }
        let head = self.store.stats().await?.head;
        Ok(match self.store.latest_checkpoint().await? {
            Some(latest) => head > latest.event_id,
            None => head > trail_core::EventId::ZERO,
        })
    }

    /// Signs whenever one is due, every `every`, while this node holds the signing lease; when
    /// `stop` turns true, signs once more if one is due (a shutdown leaves nothing unsigned
    /// that it could sign) and returns.
    pub async fn run(self: Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            let lease = tokio::select! {
                lease = self.store.signing_lease() => lease,
                _ = turned_true(&mut stop) => return,
            };
            let lease = match lease {
                Ok(lease) => lease,
                Err(error) => {
                    tracing::warn!(%error, "cannot take the signing lease; asking again");
                    tokio::select! {
                        _ = tokio::time::sleep(every) => continue,
                        _ = turned_true(&mut stop) => return,
                    }
                }
            };
            let mut lost = lease.lost.clone();
            // The first after a whole period: a server that starts signs nothing at once.
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => self.sign_if_due().await,
                    _ = turned_true(&mut lost) => break,
                    _ = turned_true(&mut stop) => {
                        self.sign_if_due().await;
                        return;
                    }
                }
            }
            tracing::warn!("the signing lease was lost; asking for it again");
        }
    }

    async fn sign_if_due(&self) {
        let signed = match self.due().await {
            Ok(true) => self.make(TRAIL_USER).await.map(drop),
            Ok(false) => Ok(()),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = signed {
            metrics::counter!("trail_checkpoint_failures_total").increment(1);
            tracing::warn!(%error, "signing a checkpoint failed; it is tried again at the next tick");
        }
    }
}

/// Waits until the flag is true (or its sender is gone), holding no borrow of it after.
async fn turned_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await.map(drop);
}
