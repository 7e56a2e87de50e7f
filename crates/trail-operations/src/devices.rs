//! Device results (E4): archives and inventories recorded only when new or changed, restores
//! and commits always.

use crate::{OperationError, Operations};
use serde::Serialize;
use trail_core::content::{ContentKind, ContentRecord, content_hash};
use trail_core::operations::results::{self, Origin};
use trail_core::operations::{JobId, clean_text, inventory, limits};
use trail_core::{EventId, Outcome};

/// A result a platform reports for a device.
#[derive(Debug, Clone)]
pub enum DeviceResult {
    Archive {
        config: String,
    },
    Inventory {
        document: serde_json::Value,
    },
    Restore {
        source: Option<String>,
        comment: Option<String>,
        outcome: Outcome,
    },
    Commit {
        diff: String,
        comment: Option<String>,
        outcome: Outcome,
    },
    /// An archive or inventory that failed: always an event, and the content stays as it was.
    Failed {
        kind: ContentKind,
        reason: String,
    },
}

/// What recording a result did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Event(EventId),
    /// Content the same as the latest: only its last-seen time moved.
    Unchanged {
        last_seen: jiff::Timestamp,
    },
}

/// A device's latest archive or inventory.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceState {
    pub hash: String,
    /// When it last changed, and when it was last recorded, changed or not.
    pub changed_at: String,
    pub last_seen: String,
}

fn check_size(what: &str, bytes: usize, max: usize) -> Result<(), OperationError> {
    if bytes > max {
        return Err(OperationError::TooLarge(format!("the {what} is {bytes} bytes; at most {max} are taken")));
    }
    Ok(())
}

fn optional_text(what: &str, text: Option<String>, max: usize) -> Result<Option<String>, OperationError> {
    if let Some(text) = &text {
        check_size(what, text.len(), max)?;
    }
    Ok(text.map(|t| clean_text(what, &t)).transpose()?)
}

fn check_device(device: &str) -> Result<(), OperationError> {
    let length = device.chars().count();
    if device.trim().is_empty() || length > limits::TARGET_CHARS || device.chars().any(char::is_control) {
        return Err(OperationError::Invalid(format!(
            "a device name is 1-{} characters without control characters",
            limits::TARGET_CHARS
        )));
    }
    Ok(())
}

impl Operations {
    /// Links a result to its job: the device must be one of the job's targets.
    pub async fn in_job(&self, origin: Origin, job: Option<JobId>, device: &str) -> Result<Origin, OperationError> {
        let Some(id) = job else { return Ok(origin) };
        let job = self.job(id).await?;
        if job.leaf(device).is_none() {
            return Err(trail_core::operations::JobError::UnknownTarget { job: id, target: device.to_owned() }.into());
        }
        Ok(Origin { job: Some((job.id, job.submit_event_id)), ..origin })
    }

    pub async fn record(&self, device: &str, result: DeviceResult, origin: Origin) -> Result<Recorded, OperationError> {
        check_device(device)?;
        origin.check()?;
        let time = (self.clock)();
        let device = device.to_owned();
        let (kind, content, on_change): (ContentKind, String, trail_core::content::ChangeEvent) = match result {
            DeviceResult::Archive { config } => {
                check_size("configuration", config.len(), limits::CONTENT_BYTES)?;
                let hash = content_hash(&config);
                let (name, text) = (device.clone(), config.clone());
                let build =
                    move |previous: Option<&_>| results::archive_changed(&name, previous, &text, &hash, &origin, time);
                (ContentKind::Archive, config, Box::new(build))
            }
            DeviceResult::Inventory { document } => {
                if !document.is_object() {
                    return Err(OperationError::Invalid("an inventory is a JSON object".to_owned()));
                }
                let canonical = inventory::canonical(&document);
                check_size("inventory", canonical.len(), limits::CONTENT_BYTES)?;
                let hash = content_hash(&canonical);
                let name = device.clone();
                let build = move |previous: Option<&_>| {
                    results::inventory_changed(&name, previous, &document, &hash, &origin, time)
                };
                (ContentKind::Inventory, canonical, Box::new(build))
            }
            DeviceResult::Restore { source, comment, outcome } => {
                let comment = optional_text("comment", comment, limits::COMMENT_BYTES)?;
                let source = optional_text("source", source, limits::SOURCE_BYTES)?;
                let event = results::restored(&device, source.as_deref(), comment.as_deref(), outcome, &origin, time);
                return self.append(event).await;
            }
            DeviceResult::Commit { diff, comment, outcome } => {
                check_size("diff", diff.len(), limits::COMMIT_DIFF_BYTES)?;
                let diff = clean_text("diff", &diff)?;
                let comment = optional_text("comment", comment, limits::COMMENT_BYTES)?;
                let event = results::committed(&device, &diff, comment.as_deref(), outcome, &origin, time);
                return self.append(event).await;
            }
            DeviceResult::Failed { kind, reason } => {
                check_size("reason", reason.len(), limits::COMMENT_BYTES)?;
                let reason = clean_text("reason", &reason)?;
                let (event_kind, summary) = match kind {
                    ContentKind::Archive => ("ARCHIVE_COMPLETED", format!("Archive of {device}")),
                    ContentKind::Inventory => ("INVENTORY_SCAN_COMPLETED", format!("Inventory scan of {device}")),
                };
                return self.append(results::failed(event_kind, &device, &summary, &reason, &origin, time)).await;
            }
        };
        let record = ContentRecord { device: device.clone(), kind, content, time, on_change };
        let outcome = self.contents.record_content(record).await?;
        match outcome.event_id {
            Some(id) => Ok(Recorded::Event(id)),
            None => Ok(Recorded::Unchanged { last_seen: time }),
        }
    }

    async fn append(&self, event: trail_core::EventBody) -> Result<Recorded, OperationError> {
        let ids = self.contents.append(vec![event]).await?;
        Ok(Recorded::Event(ids[0]))
    }

    /// A device's latest archive and inventory.
    pub async fn device(&self, device: &str) -> Result<[Option<DeviceState>; 2], OperationError> {
        let state = |kind| async move {
            let stored = self.contents.content_state(device, kind).await?;
            Ok::<_, OperationError>(stored.map(|s| DeviceState {
                hash: s.hash,
                changed_at: trail_core::time::format_rfc3339(s.changed_at),
                last_seen: trail_core::time::format_rfc3339(s.seen_at),
            }))
        };
        Ok([state(ContentKind::Archive).await?, state(ContentKind::Inventory).await?])
    }
}
