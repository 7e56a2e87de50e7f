//! Device content for change detection (E4): the latest archived configuration or inventory
//! document of each device, kept by hash, so Trail decides itself whether a result changed.

use crate::EventBody;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

/// What a device's content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentKind {
    /// An archived configuration.
    Archive,
    /// An inventory document.
    Inventory,
}

impl ContentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Archive => "archive",
            ContentKind::Inventory => "inventory",
        }
    }

    pub fn parse(text: &str) -> Option<ContentKind> {
        [ContentKind::Archive, ContentKind::Inventory].into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Contents are stored once per distinct hash (hex SHA-256).
pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// A device's latest content of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContent {
    pub hash: String,
    pub content: String,
    /// When this content was first recorded: the time of the change.
    pub changed_at: Timestamp,
    /// When it was last recorded, changed or not (the device's last archive or scan).
    pub seen_at: Timestamp,
}

/// Builds the event recording a change, from the previous content (`None` the first time). It
/// runs inside the storage transaction, so it must be quick and must not fail.
pub type ChangeEvent = Box<dyn FnOnce(Option<&StoredContent>) -> EventBody + Send>;

/// A content to record for a device.
pub struct ContentRecord {
    pub device: String,
    pub kind: ContentKind,
    pub content: String,
    pub time: Timestamp,
    pub on_change: ChangeEvent,
}

/// What recording did: the event id when the content was new or changed, none when unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentOutcome {
    pub hash: String,
    pub event_id: Option<crate::EventId>,
}
