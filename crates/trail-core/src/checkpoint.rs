//! Signed checkpoints (S4): a statement, signed with the trail's Ed25519 key, that the tree of
//! `size` events has `root`. The text is the C2SP `tlog-checkpoint` body (origin, size, root in
//! base64) and the whole is a C2SP `signed-note`, so tools written for transparency logs read
//! it. Once a checkpoint is held where the trail's host cannot reach it (a syslog server, a
//! witness, an auditor's folder), no change to the events it covers goes unseen, even by
//! someone who holds the database and the key: the tree of that size would need that root.
//!
//! Parsing, signing and verifying notes is the `signed_note` crate's (a port of Go's
//! `sumdb/note`), and the body is `tlog_tiles`'; this module only joins them to the trail and
//! finds notes again in the files a syslog server writes.

use crate::tree::Hash;
use crate::{EventBody, EventInput};
use base64::Engine;
use signed_note::{Note, Signer, StandardSigner, StandardVerifier, Verifier, VerifierList};

/// The tree of `size` events under `origin` has this root.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The trail's name, unique to it: the signing key's name.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// A key rotation: the verifier key (`NAME+ID+KEY`) that signs this trail's checkpoints after
    /// this one, which both keys sign (see [`crate::rotation`]). An extension line of the body.
    pub next_key: Option<String>,
}

/// The extension line that announces the next key.
const NEXT_KEY: &str = "next-key ";

/// Why a key, a note or a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "not a checkpoint signing key ({0}): the key file holds one line `PRIVATE+KEY+NAME+ID+KEY`, as Trail \
         writes it at first start"
    )]
    BadSigningKey(String),
    #[error("not a verifier key ({0}): give the one line `NAME+ID+KEY` that `trail key show` prints")]
    BadVerifierKey(String),
    #[error("not a signed note: {0}")]
    MalformedNote(String),
    #[error("the note is not a checkpoint: its text must be the origin, the size and the root, one per line")]
    NotACheckpoint,
    #[error("the checkpoint is of `{found}`, not of `{expected}`: another trail's, or another key's")]
    OtherOrigin { found: String, expected: String },
    #[error("the checkpoint carries no signature by {0}")]
    Unsigned(String),
    #[error("the signature by {0} does not hold: the checkpoint was changed after it was signed")]
    BadSignature(String),
    #[error(
        "the checkpoint of {size} events is signed by {key}, which the trail retired at {retired} events when it \
         announced its next key: whoever holds the old key cannot sign for the trail any more"
    )]
    RetiredKey { key: String, size: u64, retired: u64 },
}

impl Checkpoint {
    /// The C2SP `tlog-checkpoint` body: origin, size and root, each ended by a line feed.
    pub fn body(&self) -> String {
        let extension = self.next_key.as_ref().map_or(String::new(), |key| format!("{NEXT_KEY}{key}\n"));
        let body = tlog_tiles::Checkpoint::new(&self.origin, self.size, self.root, &extension)
            .expect("an origin is a valid key name, never empty")
            .to_bytes();
        String::from_utf8(body).expect("a checkpoint body is text")
    }

    /// Reads a `tlog-checkpoint` body; extension lines other than the next key are ignored.
    pub fn parse_body(text: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let parsed = tlog_tiles::Checkpoint::from_bytes(text).map_err(|_| CheckpointError::NotACheckpoint)?;
        let next_key = parsed.extension().lines().find_map(|line| line.strip_prefix(NEXT_KEY)).map(str::to_owned);
        Ok(Checkpoint { origin: parsed.origin().to_owned(), size: parsed.size(), root: *parsed.hash(), next_key })
    }

    /// The checkpoint a signed note states, read without checking any signature (that is
    /// [`SignedCheckpoint::open`]'s).
    pub fn from_note(note: &str) -> Result<Checkpoint, CheckpointError> {
        let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| CheckpointError::MalformedNote(e.to_string()))?;
        Checkpoint::parse_body(parsed.text())
    }

    /// The root in base64, as the body spells it.
    pub fn root_base64(&self) -> String {
        crate::tree::to_base64(&self.root)
    }
}

/// The trail's signing key, from its encoded form (`PRIVATE+KEY+NAME+ID+KEY`, Go's `note`
/// format); its name is the trail's origin.
pub struct SigningKey {
    encoded: String,
    signer: StandardSigner,
    verifier_key: VerifierKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("SigningKey").field("verifier_key", &self.verifier_key.encoded).finish()
    }
}

impl SigningKey {
    pub fn parse(text: &str) -> Result<SigningKey, CheckpointError> {
        let encoded = text.trim().to_owned();
        let refused = |why: &str| CheckpointError::BadSigningKey(why.to_owned());
        let signer = StandardSigner::new(&encoded).map_err(|e| refused(&e.to_string()))?;
        // `StandardSigner` keeps its public half to itself; the encoded seed gives it again. It
        // is the fifth field: base64 may itself hold a `+`.
        let seed = encoded.splitn(5, '+').nth(4).unwrap_or_default();
        let seed = base64::engine::general_purpose::STANDARD.decode(seed).map_err(|e| refused(&e.to_string()))?;
        let seed: [u8; 32] = seed.get(1..).and_then(|s| s.try_into().ok()).ok_or_else(|| refused("not Ed25519"))?;
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let verifier_key = VerifierKey::parse(&signed_note::new_ed25519_verifier_key(signer.name(), &public))?;
        Ok(SigningKey { encoded, signer, verifier_key })
    }

    /// The key of `seed`, named `name`, encoded as [`SigningKey::parse`] reads it.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<SigningKey, CheckpointError> {
        const ED25519: u8 = 1;
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let id = signed_note::key_id(name, &[&[ED25519][..], public.as_bytes()].concat());
        let secret = base64::engine::general_purpose::STANDARD.encode([&[ED25519][..], &seed].concat());
        SigningKey::parse(&format!("PRIVATE+KEY+{name}+{id:08x}+{secret}"))
    }

    /// The key's name: the origin of every checkpoint it signs.
    pub fn name(&self) -> &str {
        self.signer.name()
    }

    /// The secret, encoded, for the key file.
    pub fn encoded(&self) -> &str {
        &self.encoded
    }

    /// What verifiers are given.
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.verifier_key
    }

    /// Signs the tree of `size` leaves with `root`, under this key's name.
    pub fn sign(&self, size: u64, root: Hash) -> SignedCheckpoint {
        let checkpoint = Checkpoint { origin: self.name().to_owned(), size, root, next_key: None };
        signed_by(checkpoint, &[&self.signer])
    }

    /// Hands the trail over to `next`: a checkpoint that announces `next`'s verifier key, signed
    /// by this key (so whoever trusts it learns the next one) and by `next` (which shows the
    /// announced key is held). Both keys must have the trail's name.
    pub fn hand_over(&self, next: &SigningKey, size: u64, root: Hash) -> SignedCheckpoint {
        debug_assert_eq!(self.name(), next.name(), "a rotation keeps the trail's name");
        let next_key = Some(next.verifier_key().encoded().to_owned());
        let checkpoint = Checkpoint { origin: self.name().to_owned(), size, root, next_key };
        signed_by(checkpoint, &[&self.signer, &next.signer])
    }
}

fn signed_by(checkpoint: Checkpoint, signers: &[&StandardSigner]) -> SignedCheckpoint {
    let mut note = Note::new(checkpoint.body().as_bytes(), &[]).expect("a checkpoint body is a valid note text");
    let signers: Vec<&dyn Signer> = signers.iter().map(|s| *s as &dyn Signer).collect();
    note.add_sigs(&signers).expect("an Ed25519 key signs any text");
    let note = String::from_utf8(note.to_bytes()).expect("a note is text");
    SignedCheckpoint { checkpoint, note }
}

/// A verifier key (`NAME+ID+KEY`), as `trail key show` prints it.
#[derive(Clone)]
pub struct VerifierKey {
    encoded: String,
    verifier: StandardVerifier,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encoded)
    }
}

impl VerifierKey {
    /// Reads a key from its line; blank lines and `#` comments around it are allowed, so a key
    /// file may say where it came from.
    pub fn parse(text: &str) -> Result<VerifierKey, CheckpointError> {
        let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or_default();
        let verifier =
            StandardVerifier::new(line).map_err(|e| CheckpointError::BadVerifierKey(format!("{e}: `{line}`")))?;
        Ok(VerifierKey { encoded: line.to_owned(), verifier })
    }

    pub fn name(&self) -> &str {
        self.verifier.name()
    }

    pub fn key_id(&self) -> u32 {
        self.verifier.key_id()
    }

    pub fn encoded(&self) -> &str {
        &self.encoded
    }

    /// The key as a note signature names it: `NAME+ID`.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name(), self.key_id())
    }
}

/// A checkpoint and the signed note that states it, with every signature the note carries.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: String,
}

impl SignedCheckpoint {
    /// Reads a signed note and checks that `key` signed it, over a checkpoint of `key`'s origin.
    /// Other signatures (witnesses' cosignatures) are kept and left to their own checks.
    pub fn open(note: &str, key: &VerifierKey) -> Result<SignedCheckpoint, CheckpointError> {
        let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| CheckpointError::MalformedNote(e.to_string()))?;
        let checkpoint = Checkpoint::parse_body(parsed.text())?;
        if checkpoint.origin != key.name() {
            return Err(CheckpointError::OtherOrigin { found: checkpoint.origin, expected: key.name().to_owned() });
        }
        let known = VerifierList::new(vec![Box::new(key.verifier.clone()) as Box<dyn Verifier>]);
        match parsed.verify(&known) {
            Ok(_) => Ok(SignedCheckpoint { checkpoint, note: note.to_owned() }),
            Err(signed_note::NoteError::UnverifiedNote) => Err(CheckpointError::Unsigned(key.label())),
            Err(_) => Err(CheckpointError::BadSignature(key.label())),
        }
    }
}

/// A checkpoint as the trail keeps it: beside the CHECKPOINT event that recorded it, in the same
/// transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// The signed note, with every signature it carries.
    pub note: String,
    /// The CHECKPOINT event.
    pub event_id: crate::EventId,
    pub signed_at: jiff::Timestamp,
}

/// The CHECKPOINT event that records a checkpoint in the trail: its message is the signed note,
/// so every destination forwards it, and whoever receives it holds the checkpoint.
pub fn checkpoint_event(signed: &SignedCheckpoint, key: &VerifierKey, user: &str, now: jiff::Timestamp) -> EventBody {
    let attributes =
        [("size", signed.checkpoint.size.to_string()), ("root", signed.checkpoint.root_base64()), ("key", key.label())];
    let input = EventInput {
        user: Some(user.to_owned()),
        kind: Some("CHECKPOINT".into()),
        name: Some(signed.checkpoint.origin.clone()),
        message: Some(signed.note.clone()),
        ..EventInput::default()
    };
    crate::event::sent_by_trail(input, &attributes, now)
}

/// The signed notes of `origin` in a file as Trail's checkpoints reach their holders: bare notes,
/// one after another, or the lines a syslog server wrote from forwarded CHECKPOINT events, where
/// rsyslog writes each line feed as `#012` after a header of its own (and RFC 5424's BOM). Each
/// note found is given whole; whether it is signed is [`SignedCheckpoint::open`]'s to say.
pub fn notes_in(text: &str, origin: &str) -> Vec<String> {
    let text = text.replace("#012", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut notes = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        // A note begins with the origin alone on its line, or at the end of a syslog header.
        let starts = line.strip_suffix(origin).is_some_and(|before| {
            before.is_empty() || before.ends_with(|c: char| c.is_whitespace() || c == '\u{feff}')
        });
        if starts && let Some(note) = note_from(&lines[at..], origin) {
            notes.push(note);
        }
    }
    notes
}

/// The note whose first line `lines` begins with: the text up to the blank line, then its
/// signature lines.
fn note_from(lines: &[&str], origin: &str) -> Option<String> {
    let blank = lines.iter().position(|l| l.is_empty())?;
    let signatures = lines[blank + 1..].iter().take_while(|l| l.starts_with("\u{2014} ")).count();
    let mut note = format!("{origin}\n");
    for line in lines[1..blank].iter().chain([&""]).chain(&lines[blank + 1..blank + 1 + signatures]) {
        note.push_str(line);
        note.push('\n');
    }
    Note::from_bytes(note.as_bytes()).is_ok().then_some(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of Go's `sumdb/note` documentation, which the C2SP signed-note format follows.
    const PETER_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your \
                              problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2\
                              pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn the_published_key_pair_and_note_verify() {
        let key = SigningKey::parse(PETER_SKEY).unwrap();
        assert_eq!(key.verifier_key().encoded(), PETER_VKEY, "the verifier key is derived from the signing key");
        let verifier = VerifierKey::parse(PETER_VKEY).unwrap();
        let note = Note::from_bytes(PETER_NOTE.as_bytes()).unwrap();
        let known = VerifierList::new(vec![Box::new(verifier.verifier.clone()) as Box<dyn Verifier>]);
        assert!(note.verify(&known).is_ok());
        // Not a checkpoint, so `open` refuses it for that, after the note itself parsed.
        assert!(matches!(SignedCheckpoint::open(PETER_NOTE, &verifier), Err(CheckpointError::NotACheckpoint)));
    }

    #[test]
    fn a_signed_checkpoint_opens_and_any_change_is_refused() {
        let key = SigningKey::parse(PETER_SKEY).unwrap();
        let signed = key.sign(42, crate::tree::leaf_hash_of_bytes(b"x"));
        assert!(signed.note.starts_with("PeterNeumann\n42\n"));
        let opened = SignedCheckpoint::open(&signed.note, key.verifier_key()).unwrap();
        assert_eq!(opened.checkpoint, signed.checkpoint);

        let grown = signed.note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(SignedCheckpoint::open(&grown, key.verifier_key()), Err(CheckpointError::BadSignature(_))));
        let other = SigningKey::parse(&PETER_SKEY.replace("AYEK", "AYEL")).err();
        assert!(other.is_some(), "a key whose id does not match its secret is refused");
        let stranger = VerifierKey::parse("PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
        assert!(stranger.is_err(), "a verifier key whose id does not match is refused");
    }

    #[test]
    fn notes_are_found_in_what_rsyslog_wrote() {
        let key = SigningKey::parse(PETER_SKEY).unwrap();
        let first = key.sign(7, crate::tree::leaf_hash_of_bytes(b"a"));
        let second = key.sign(9, crate::tree::leaf_hash_of_bytes(b"b"));
        let line = |note: &str| {
            format!(
                "2026-11-28T17:00:00.123456+00:00 node1 trail-checkpoints - CHECKPOINT [trail@0 name=\"PeterNeumann\"] \
                 \u{feff}{}\n",
                note.trim_end().replace('\n', "#012")
            )
        };
        let file = format!("{}some other line\n{}", line(&first.note), line(&second.note));
        let found = notes_in(&file, "PeterNeumann");
        assert_eq!(found, vec![first.note.clone(), second.note.clone()]);
        assert_eq!(notes_in(&first.note, "PeterNeumann"), vec![first.note.clone()]);
        let bare = format!("{}{}", first.note, second.note);
        assert_eq!(notes_in(&bare, "PeterNeumann"), vec![first.note, second.note], "bare notes one after another");
    }
}
