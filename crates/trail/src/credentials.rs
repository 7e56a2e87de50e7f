//! What `trail login` keeps: a token per server, in the user's configuration directory, readable
//! by the user alone; client commands find theirs here when no `--token` is given.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `trail login` keeps: one token per server.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    pub servers: std::collections::BTreeMap<String, String>,
}

pub fn credentials_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("trail").join("credentials.json"))
}

/// The token `trail login` kept for `server`, if any.
pub fn stored_token(server: &str) -> Option<String> {
    let text = std::fs::read_to_string(credentials_path()?).ok()?;
    let credentials: Credentials = serde_json::from_str(&text).ok()?;
    credentials.servers.get(server.trim_end_matches('/')).cloned()
}

pub fn store_token(server: &str, token: &str) -> anyhow::Result<PathBuf> {
    let path = credentials_path().context("no configuration directory: set HOME or XDG_CONFIG_HOME")?;
    let mut credentials: Credentials =
        std::fs::read_to_string(&path).ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default();
    credentials.servers.insert(server.trim_end_matches('/').to_owned(), token.to_owned());
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    std::io::Write::write_all(&mut file, serde_json::to_string_pretty(&credentials)?.as_bytes())?;
    Ok(path)
}
