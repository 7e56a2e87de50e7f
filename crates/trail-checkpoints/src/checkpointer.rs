//! The checkpointer: signs the tree's root as it grows, and records each checkpoint as a
//! CHECKPOINT event, so that every destination forwards it out of the host's reach.

use crate::witnesses::Witnesses;
use std::sync::Arc;
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
    witnesses: Witnesses,
    /// One checkpoint at a time in this process: two at once would sign the same size.
    making: tokio::sync::Mutex<()>,
}

impl Checkpointer {
    pub fn new(store: Arc<dyn Store>, key: SigningKey) -> Checkpointer {
        Checkpointer { store, key, witnesses: Witnesses::none(), making: tokio::sync::Mutex::new(()) }
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

    /// Refuses a key other than the one that signed this trail's newest checkpoint: a node with
    /// a key of its own would sign checkpoints that no verifier of this trail accepts.
    pub async fn check_key(&self) -> Result<(), CheckpointError> {
        self.check_key_against(self.store.latest_checkpoint().await?.as_ref())
    }

    fn check_key_against(&self, latest: Option<&RecordedCheckpoint>) -> Result<(), CheckpointError> {
        let Some(latest) = latest else { return Ok(()) };
        match SignedCheckpoint::open(&latest.note, self.key.verifier_key()) {
            Ok(_) => Ok(()),
            Err(_) => Err(CheckpointError::OtherKey {
                size: latest.size,
                ours: self.key.verifier_key().encoded().to_owned(),
                first_line: latest.note.lines().next().unwrap_or_default().to_owned(),
            }),
        }
    }

    /// Signs the tree as it stands, has the witnesses cosign it, and records the checkpoint,
    /// naming `user` as its cause.
    /// When the newest checkpoint already covers every event (another node was quicker), it is
    /// the answer.
    pub async fn make(&self, user: &str) -> Result<RecordedCheckpoint, CheckpointError> {
        let _one_at_a_time = self.making.lock().await;
        let size = trail_core::tree::size_through(self.store.stats().await?.head);
        let latest = self.store.latest_checkpoint().await?;
        self.check_key_against(latest.as_ref())?;
        if let Some(latest) = latest.filter(|c| c.size >= size) {
            return Ok(latest);
        }
        let root = trail_store::tree::root(&*self.store, size).await?;
        let mut signed = self.key.sign(size, root);
        signed.note = self.witnesses.cosign(&*self.store, &signed).await;
        let event = checkpoint_event(&signed, self.key.verifier_key(), user, jiff::Timestamp::now());
        let recorded = self.store.record_checkpoint(signed, event).await?;
        metrics::counter!("trail_checkpoints_signed_total").increment(1);
        metrics::gauge!("trail_checkpoint_size").set(recorded.size as f64);
        tracing::info!(size = recorded.size, event = %recorded.event_id, "checkpoint signed");
        Ok(recorded)
    }

    /// Whether events other than checkpoints were added since the newest checkpoint: its own
    /// CHECKPOINT event is the only one that may follow it without a new one being due.
    pub async fn due(&self) -> Result<bool, StoreError> {
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
