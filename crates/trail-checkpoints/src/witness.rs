//! The witness (`trail witness serve`): cosigns a trail's checkpoints once each extends the one
//! it cosigned before, and remembers that one durably, per origin. It is meant to run on another
//! host, for another team: whoever runs the trail cannot make it cosign a rewritten history.
//! What it decides is `trail_core::witness`'s; this is its memory and its key. The HTTP side is
//! the server's (`trail_server::witness`).

use crate::key::{self, KeyFileError};
use std::path::{Path, PathBuf};
use trail_core::checkpoint::{Checkpoint, VerifierKey, notes_in};
use trail_core::rotation::TrailKeys;
use trail_core::witness::{AddCheckpoint, CosignerKey, CosignerVerifier, Refusal};

/// The witness's key file in its data directory.
pub const KEY_FILE: &str = "witness.key";

/// Why a witness did not answer with a cosignature.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the witness cannot keep what it cosigned in {path}: {source}")]
    Memory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub struct Witness {
    key: CosignerKey,
    /// The logs it witnesses, by the verifier keys it was given (each key's name is the log's
    /// origin); the keys they rotated to since are learnt from their checkpoints.
    logs: Vec<VerifierKey>,
    dir: PathBuf,
    /// Checking a request against the checkpoint remembered and remembering the new one happen
    /// as one step: two requests at once could otherwise roll the memory back.
    one_at_a_time: std::sync::Mutex<()>,
}

impl Witness {
    /// The witness of `dir`, its key made there at first start (named `name`, or a random name).
    pub fn open(dir: &Path, name: Option<&str>, logs: Vec<VerifierKey>) -> Result<(Witness, bool), KeyFileError> {
        let (key, made) = key::load_or_make_cosigner(&dir.join(KEY_FILE), name)?;
        let witness = Witness { key, logs, dir: dir.to_owned(), one_at_a_time: std::sync::Mutex::new(()) };
        Ok((witness, made))
    }

    pub fn verifier_key(&self) -> CosignerVerifier {
        self.key.verifier_key()
    }

    /// Answers an `add-checkpoint` body with the cosignature line, at `now` (seconds since 1970).
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Result<String, WitnessError> {
        let request = AddCheckpoint::parse(body)?;
        let origin = request.note.lines().next().unwrap_or_default();
        let log = self
            .logs
            .iter()
            .find(|log| log.name() == origin)
            .ok_or_else(|| Refusal::UnknownOrigin(origin.to_owned()))?;
        let _one_at_a_time = self.one_at_a_time.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let rotations = self.rotations(origin)?;
        let mut keys = TrailKeys::new(vec![log.clone()]);
        keys.learn(notes_in(&rotations, origin).iter().map(String::as_str));
        let latest = self.latest(origin)?;
        let checkpoint = request.examine(&keys, latest.as_ref())?;
        // A checkpoint that hands the log over to a new key: from now on only that key counts.
        if checkpoint.next_key.is_some() && !keys.learn([request.note.as_str()]).is_empty() {
            write_durably(&self.rotations_file(origin), format!("{rotations}{}", request.note).as_bytes())?;
        }
        write_durably(&self.memory(origin), checkpoint.body().as_bytes())?;
        metrics::counter!("trail_witness_cosigned_total").increment(1);
        Ok(self.key.cosign(&checkpoint.body(), now))
    }

    /// Where the checkpoint last cosigned for `origin` is kept.
    fn memory(&self, origin: &str) -> PathBuf {
        let name: String = origin.bytes().map(|b| format!("{b:02x}")).collect();
        self.dir.join("logs").join(name)
    }

    /// Where the checkpoints by which `origin` announced new keys are kept.
    fn rotations_file(&self, origin: &str) -> PathBuf {
        self.memory(origin).with_extension("rotations")
    }

    /// The checkpoints by which `origin` announced new keys, one note after another.
    fn rotations(&self, origin: &str) -> Result<String, WitnessError> {
        let path = self.rotations_file(origin);
        match std::fs::read_to_string(&path) {
            Ok(notes) => Ok(notes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(WitnessError::Memory { path, source }),
        }
    }

    fn latest(&self, origin: &str) -> Result<Option<Checkpoint>, WitnessError> {
        let path = self.memory(origin);
        match std::fs::read(&path) {
            Ok(body) => Checkpoint::parse_body(&body).map(Some).map_err(|error| WitnessError::Memory {
                path,
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string()),
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WitnessError::Memory { path, source }),
        }
    }
}

/// Keeps what the witness learnt before it answers: written aside, synced, then renamed over the
/// old file, so that a crash leaves the old or the new, never half of one.
fn write_durably(path: &Path, contents: &[u8]) -> Result<(), WitnessError> {
    let failed = |source| WitnessError::Memory { path: path.to_owned(), source };
    let dir = path.parent().expect("kept under logs/");
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut aside = path.as_os_str().to_owned();
    aside.push(".new");
    let mut file = std::fs::File::create(&aside).map_err(failed)?;
    std::io::Write::write_all(&mut file, contents).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&aside, path).map_err(failed)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(failed)
}
