//! Signing keys on disk, the trail's and a witness's: made at first start, readable by their
//! owner only.

use std::path::{Path, PathBuf};
use trail_core::checkpoint::SigningKey;
use trail_core::witness::CosignerKey;

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot {action} the key file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "the checkpoint key file {path} can be read by others (mode {mode:o}): anyone who reads it can sign checkpoints \
         in this trail's name; run `chmod 600 {path}`"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error(
        "the checkpoint key in {path} signs for `{found}`, but [checkpoints] origin is `{configured}`: remove the \
         setting, or give the key file made for that origin"
    )]
    OtherOrigin { path: PathBuf, found: String, configured: String },
    #[error("`{0}` cannot name a key: it must be non-empty, without spaces or `+`")]
    BadOrigin(String),
    #[error(
        "a rotation is already under way ({retiring} holds the key being retired): start Trail, whose next checkpoint \
         hands the trail over to the new key and then removes that file"
    )]
    RotationPending { retiring: PathBuf },
    #[error("there is no checkpoint key at {0}: `trail serve` makes it at first start")]
    Missing(PathBuf),
}

/// Where a rotation keeps the key it retires, beside the key file, until the hand-over is
/// recorded.
pub fn retiring_file(key_file: &Path) -> PathBuf {
    let mut path = key_file.as_os_str().to_owned();
    path.push(".retiring");
    PathBuf::from(path)
}

/// Starts a rotation: a new key of the same name takes `key_file`'s place, and the current one
/// moves to [`retiring_file`]. Answers the new key and the one it retires. Each step leaves a
/// usable key behind: the new key is written (and synced) aside before it replaces the old one,
/// which was linked to its new name first.
pub fn rotate(key_file: &Path) -> Result<(SigningKey, SigningKey), KeyFileError> {
    let retiring = retiring_file(key_file);
    if retiring.exists() {
        return Err(KeyFileError::RotationPending { retiring });
    }
    if !key_file.exists() {
        return Err(KeyFileError::Missing(key_file.to_owned()));
    }
    let old = load(key_file)?;
    check_private(key_file)?;
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| KeyFileError::Io { action, path, source }
    };
    let (secret, _) = signed_note::generate_key(&mut rand_core::OsRng, old.name());
    let mut next = key_file.as_os_str().to_owned();
    next.push(".next");
    let next = PathBuf::from(next);
    let _ = std::fs::remove_file(&next);
    write_private(&next, &secret)?;
    std::fs::hard_link(key_file, &retiring).map_err(io("keep the retiring key in", &retiring))?;
    std::fs::rename(&next, key_file).map_err(io("replace", key_file))?;
    if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync the folder of", key_file))?;
    }
    let new = SigningKey::parse(&secret)
        .map_err(|e| KeyFileError::Invalid { path: key_file.to_owned(), message: e.to_string() })?;
    Ok((new, old))
}

/// The key a rotation is retiring from the trail `current` signs for, if one is under way.
pub fn load_retiring(key_file: &Path, current: &SigningKey) -> Result<Option<(SigningKey, PathBuf)>, KeyFileError> {
    let path = retiring_file(key_file);
    if !path.exists() {
        return Ok(None);
    }
    check_private(&path)?;
    let retiring = load(&path)?;
    if retiring.name() != current.name() {
        let message = format!(
            "it signs for `{}`, but {} signs for `{}`: a rotation keeps the trail's name",
            retiring.name(),
            key_file.display(),
            current.name()
        );
        return Err(KeyFileError::Invalid { path, message });
    }
    Ok(Some((retiring, path)))
}

/// The key in `path`; when there is none, a new one named `origin` (or a random name) is made
/// and written there with mode 0600. Answers whether it was made.
pub fn load_or_create(path: &Path, origin: Option<&str>) -> Result<(SigningKey, bool), KeyFileError> {
    if let Some(origin) = origin.filter(|o| !signed_note::is_key_name_valid(o)) {
        return Err(KeyFileError::BadOrigin(origin.to_owned()));
    }
    let make = |rng: &mut rand_core::OsRng| {
        let name = origin.map_or_else(|| random_name("trail", rng), str::to_owned);
        signed_note::generate_key(rng, &name).0
    };
    let (key, made) = load_or_make(path, |text| SigningKey::parse(text).map_err(|e| e.to_string()), make)?;
    if let Some(configured) = origin.filter(|o| *o != key.name()) {
        return Err(KeyFileError::OtherOrigin {
            path: path.to_owned(),
            found: key.name().to_owned(),
            configured: configured.to_owned(),
        });
    }
    Ok((key, made))
}

/// The key in `path`, which must exist.
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    SigningKey::parse(&text).map_err(|e| KeyFileError::Invalid { path: path.to_owned(), message: e.to_string() })
}

/// A witness's key in `path`, made (named `name`, or a random name) when there is none.
pub fn load_or_make_cosigner(path: &Path, name: Option<&str>) -> Result<(CosignerKey, bool), KeyFileError> {
    if let Some(name) = name.filter(|n| !signed_note::is_key_name_valid(n)) {
        return Err(KeyFileError::BadOrigin(name.to_owned()));
    }
    let make = |rng: &mut rand_core::OsRng| {
        let name = name.map_or_else(|| random_name("witness", rng), str::to_owned);
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(rng, &mut seed);
        CosignerKey::from_seed(&name, seed).map(|key| key.encoded()).unwrap_or_default()
    };
    load_or_make(path, |text| CosignerKey::parse(text).map_err(|e| e.to_string()), make)
}

/// `prefix/` and 16 random hex digits: a name no other trail or witness has.
fn random_name(prefix: &str, rng: &mut rand_core::OsRng) -> String {
    format!("{prefix}/{:016x}", rand_core::RngCore::next_u64(rng))
}

/// The key in `path` as `parse` reads it; when the file is missing, `make` gives the encoded key
/// to write there, with mode 0600. Either way the file must be private. Answers whether it was
/// made.
fn load_or_make<K>(
    path: &Path,
    parse: impl Fn(&str) -> Result<K, String>,
    make: impl FnOnce(&mut rand_core::OsRng) -> String,
) -> Result<(K, bool), KeyFileError> {
    let invalid = |message| KeyFileError::Invalid { path: path.to_owned(), message };
    let (key, made) = match std::fs::read_to_string(path) {
        Ok(text) => (parse(&text).map_err(invalid)?, false),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let secret = make(&mut rand_core::OsRng);
            write_private(path, &secret)?;
            (parse(&secret).map_err(invalid)?, true)
        }
        Err(source) => return Err(KeyFileError::Io { action: "read", path: path.to_owned(), source }),
    };
    check_private(path)?;
    Ok((key, made))
}

/// Writes a new file readable by its owner only, durably.
fn write_private(path: &Path, secret: &str) -> Result<(), KeyFileError> {
    let io = |action| move |source| KeyFileError::Io { action, path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io("create the folder of"))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io("create"))?;
    std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes()).map_err(io("write"))?;
    file.sync_all().map_err(io("write"))
}

/// Refuses a key file that others can read, as ssh refuses such a private key.
fn check_private(path: &Path) -> Result<(), KeyFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).map_err(|source| KeyFileError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Exposed { path: path.to_owned(), mode });
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_privately_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/checkpoint.key");
        let (made, created) = load_or_create(&path, None).unwrap();
        assert!(created && made.name().starts_with("trail/"));
        let (again, created) = load_or_create(&path, None).unwrap();
        assert!(!created);
        assert_eq!(again.verifier_key().encoded(), made.verifier_key().encoded());
        assert!(matches!(load_or_create(&path, Some("elsewhere")), Err(KeyFileError::OtherOrigin { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(load_or_create(&path, None), Err(KeyFileError::Exposed { .. })));
        }
    }

    #[test]
    fn an_origin_names_a_new_key_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = load_or_create(&dir.path().join("k"), Some("audit.example.net/trail")).unwrap();
        assert_eq!(key.name(), "audit.example.net/trail");
        assert!(matches!(load_or_create(&dir.path().join("j"), Some("a b")), Err(KeyFileError::BadOrigin(_))));
        std::fs::write(dir.path().join("bad"), "not a key").unwrap();
        assert!(matches!(load(&dir.path().join("bad")), Err(KeyFileError::Invalid { .. })));
    }
}
