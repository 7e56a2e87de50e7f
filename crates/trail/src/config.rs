//! Configuration: a TOML file, `TRAIL_*` environment variables and flags, in rising order of
//! precedence (clap merges flags over the environment; the file fills what both leave unset).

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use trail_store::Store;
use trail_store_postgres::PgStore;
use trail_store_sqlite::SqliteStore;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA: &str = "trail-data";
pub const DATABASE_FILE: &str = "trail.db";

/// The configuration file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    /// `database = "URL"`, or a `[database]` table with `url` and `replicas`.
    #[serde(default, deserialize_with = "database_url_or_table")]
    pub database: DatabaseConfig,
    /// Largest request body in bytes (default 16 MiB).
    pub body_limit: Option<usize>,
    /// Mark session cookies Secure: set it when a TLS proxy serves Trail (over `[tls]` they
    /// always are).
    #[serde(default)]
    pub secure_cookies: bool,
    /// `[tls]`: serve HTTPS too (or only, when `listen` is not set).
    pub tls: Option<TlsConfig>,
    /// `[limits]`: what slow and greedy clients may hold.
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Custom roles (or redefinitions of built-in ones): role name to right names.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[retention]`: purge old events automatically (S3).
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
    /// Forwarding destinations (`[[destinations]]`): syslog and RADIUS accounting servers.
    #[serde(default)]
    pub destinations: Vec<trail_forward::DestinationConfig>,
    /// `[checkpoints]`: signed checkpoints of the tree (S4).
    #[serde(default)]
    pub checkpoints: trail_checkpoints::CheckpointsConfig,
    /// `[[witnesses]]`: who cosigns each checkpoint.
    #[serde(default)]
    pub witnesses: Vec<trail_checkpoints::WitnessConfig>,
}

/// Where the trail is: `database = "URL"`, or, with streaming replicas for reads,
/// `[database]` with `url` and `replicas = ["postgres://..."]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Option<String>,
    #[serde(default)]
    pub replicas: Vec<String>,
}

/// Reads `database` as a URL or as a table.
fn database_url_or_table<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<DatabaseConfig, D::Error> {
    struct Either;
    impl<'de> serde::de::Visitor<'de> for Either {
        type Value = DatabaseConfig;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a database URL, or a [database] table with `url` and `replicas`")
        }
        fn visit_str<E: serde::de::Error>(self, url: &str) -> Result<DatabaseConfig, E> {
            Ok(DatabaseConfig { url: Some(url.to_owned()), replicas: Vec::new() })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<DatabaseConfig, A::Error> {
            DatabaseConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_any(Either)
}

/// `[retention]`: events older than `keep_days` are purged, checked every 6 hours.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// 1-36,500.
    pub keep_days: u32,
    /// Events per transaction (default 10,000).
    pub batch: Option<usize>,
}

/// `[tls]`: HTTPS without a proxy, from PEM files (reloaded on SIGHUP).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address to serve HTTPS on, such as 0.0.0.0:8443.
    pub listen: String,
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[limits]`: every key is optional; the defaults suit a server on its own machine.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Connections open at once (default 4,096); one more is answered 503.
    pub connections: Option<usize>,
    /// Seconds to send a request head, idle keep-alive included (default 10).
    pub header_timeout_seconds: Option<u64>,
    /// Seconds to send a request body (default 60).
    pub body_timeout_seconds: Option<u64>,
    /// MiB of request bodies admitted at once (default 256); beyond it writes are answered 503.
    pub queued_writes_mib: Option<usize>,
}

impl LimitsConfig {
    pub fn connection_limits(&self) -> anyhow::Result<trail_server::listen::ConnectionLimits> {
        let mut limits = trail_server::listen::ConnectionLimits::default();
        if let Some(connections) = self.connections {
            limits.connections = within("connections", connections, 1, 1_000_000)?;
        }
        if let Some(seconds) = self.header_timeout_seconds {
            limits.header_timeout = seconds_within("header_timeout_seconds", seconds)?;
        }
        Ok(limits)
    }

    /// Sets the body deadline and the bound on queued writes of `server`.
    pub fn apply(&self, server: &mut trail_server::ServerConfig) -> anyhow::Result<()> {
        if let Some(seconds) = self.body_timeout_seconds {
            server.body_timeout = seconds_within("body_timeout_seconds", seconds)?;
        }
        if let Some(mib) = self.queued_writes_mib {
            server.queued_writes = within("queued_writes_mib", mib, 1, 1_048_576)? * 1024 * 1024;
        }
        Ok(())
    }
}

fn within<T: PartialOrd + std::fmt::Display>(key: &str, value: T, low: T, high: T) -> anyhow::Result<T> {
    if value < low || value > high {
        bail!("[limits] {key} = {value} is out of range; give {low} to {high}");
    }
    Ok(value)
}

fn seconds_within(key: &str, seconds: u64) -> anyhow::Result<std::time::Duration> {
    within(key, seconds, 1, 3600).map(std::time::Duration::from_secs)
}

/// Whether a command writes; local writers take the database's writer lock.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// `[auth]`: the authentication policy and session lifetimes; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub max_failures: Option<u32>,
    pub failure_window_minutes: Option<i64>,
    /// 0 means an account locked by the policy stays locked until an administrator unlocks it.
    pub auto_unlock_minutes: Option<i64>,
    pub max_failures_per_address: Option<u32>,
    pub session_idle_minutes: Option<i64>,
    pub session_absolute_hours: Option<i64>,
    /// Proxies (addresses or networks) whose `X-Forwarded-For` names the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

fn positive(key: &str, value: i64) -> anyhow::Result<i64> {
    if value > 0 { Ok(value) } else { anyhow::bail!("[auth] {key} must be positive, got {value}") }
}

/// The longest time an `[auth]` setting may give: ten years. Beyond it a duration means
/// nothing a policy could want, and (near `i64::MAX` minutes) it cannot even be held.
const LONGEST_MINUTES: i64 = 10 * 366 * 24 * 60;

/// `value` minutes (`per` minutes a unit, for hours), 1 to ten years.
fn duration(key: &str, value: i64, per: i64) -> anyhow::Result<jiff::SignedDuration> {
    let longest = LONGEST_MINUTES / per;
    if (1..=longest).contains(&value) {
        Ok(jiff::SignedDuration::from_mins(value * per))
    } else {
        anyhow::bail!("[auth] {key} must be 1-{longest} (at most ten years), got {value}")
    }
}

impl AuthConfig {
    pub fn policy(&self) -> anyhow::Result<trail_core::identity::AuthPolicy> {
        let defaults = trail_core::identity::AuthPolicy::default();
        Ok(trail_core::identity::AuthPolicy {
            max_failures: self
                .max_failures
                .map_or(Ok(defaults.max_failures), |n| positive("max_failures", i64::from(n)).map(|_| n))?,
            failure_window: match self.failure_window_minutes {
                Some(minutes) => duration("failure_window_minutes", minutes, 1)?,
                None => defaults.failure_window,
            },
            auto_unlock_after: match self.auto_unlock_minutes {
                Some(0) => None,
                Some(minutes) => Some(duration("auto_unlock_minutes", minutes, 1)?),
                None => defaults.auto_unlock_after,
            },
            max_failures_per_address: self
                .max_failures_per_address
                .map_or(Ok(defaults.max_failures_per_address), |n| {
                    positive("max_failures_per_address", i64::from(n)).map(|_| n)
                })?,
        })
    }

    pub fn sessions(&self) -> anyhow::Result<trail_core::identity::SessionPolicy> {
        let defaults = trail_core::identity::SessionPolicy::default();
        Ok(trail_core::identity::SessionPolicy {
            idle: match self.session_idle_minutes {
                Some(minutes) => duration("session_idle_minutes", minutes, 1)?,
                None => defaults.idle,
            },
            absolute: match self.session_absolute_hours {
                Some(hours) => duration("session_absolute_hours", hours, 60)?,
                None => defaults.absolute,
            },
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub token: String,
    pub user: String,
    /// The roles whose rights the token carries (default: admin).
    #[serde(default = "admin_role")]
    pub roles: Vec<String>,
}

fn admin_role() -> Vec<String> {
    vec!["admin".into()]
}

impl FileConfig {
    /// The built-in roles with the configuration's own on top.
    pub fn roles(&self) -> anyhow::Result<trail_core::identity::Roles> {
        let mut roles = trail_core::identity::Roles::default();
        for (name, rights) in &self.roles {
            roles.define(name, rights).map_err(anyhow::Error::msg)?;
        }
        Ok(roles)
    }
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else { return Ok(FileConfig::default()) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        FileConfig::parse(&text).with_context(|| format!("the configuration file {} is not valid", path.display()))
    }

    /// A configuration file's text, read as `load` reads it.
    pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
        Ok(toml::from_str(text)?)
    }
}

/// Where a trail keeps its data.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` URL: several `trail serve` processes may share it; and its streaming
    /// replicas, which take reads off it.
    Postgres {
        url: String,
        replicas: Vec<String>,
    },
}

impl Database {
    /// `--database` wins; otherwise SQLite in the data directory.
    pub fn resolve(database: Option<&str>, data: &Path) -> anyhow::Result<Database> {
        match database {
            None => Ok(Database::Sqlite(data.join(DATABASE_FILE))),
            Some(url) if url.starts_with("sqlite://") => Ok(Database::Sqlite(PathBuf::from(&url["sqlite://".len()..]))),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Database::Postgres { url: url.to_owned(), replicas: Vec::new() })
            }
            Some(url) => {
                bail!(
                    "{url:?} is not a database URL this trail knows: use sqlite://PATH or postgres://USER@HOST/DATABASE"
                )
            }
        }
    }

    /// Sends reads to these streaming replicas of a PostgreSQL trail as well.
    pub fn with_replicas(self, replicas: Vec<String>) -> anyhow::Result<Database> {
        if replicas.is_empty() {
            return Ok(self);
        }
        if let Some(odd) = replicas.iter().find(|r| !(r.starts_with("postgres://") || r.starts_with("postgresql://"))) {
            bail!("the replica {odd:?} is not a postgres:// URL");
        }
        match self {
            Database::Postgres { url, .. } => Ok(Database::Postgres { url, replicas }),
            Database::Sqlite(_) => {
                bail!(
                    "replicas are streaming replicas of a PostgreSQL trail: give its URL too, with --database postgres://..."
                )
            }
        }
    }

    /// Opens the store. A SQLite trail has one writing process, so a command that only reads
    /// opens it beside a running server; PostgreSQL takes any number of both.
    pub async fn open(&self, access: Access) -> anyhow::Result<Arc<dyn Store>> {
        let opened: Result<Arc<dyn Store>, trail_store::StoreError> = match (self, access) {
            (Database::Sqlite(path), Access::Write) => SqliteStore::open(path).map(|s| Arc::new(s) as Arc<dyn Store>),
            (Database::Sqlite(path), Access::Read) => {
                SqliteStore::open_read_only(path).map(|s| Arc::new(s) as Arc<dyn Store>)
            }
            (Database::Postgres { url, replicas }, access) => {
                open_postgres(url, replicas, access).await.map(|s| Arc::new(s) as Arc<dyn Store>)
            }
        };
        // The store's words name no flag; the command line adds what to do about it here.
        opened.map_err(|error| {
            let hint = match &error {
                trail_store::StoreError::Locked(_) => Some("stop it, or send the command to it with --server"),
                trail_store::StoreError::NoTrail(_) => Some("check --data (or --database)"),
                _ => None,
            };
            match hint {
                Some(hint) => anyhow::anyhow!("{error}; {hint}"),
                None => anyhow::Error::new(error),
            }
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!("{} (SQLite)", absolute.display())
            }
            Database::Postgres { url, replicas } if replicas.is_empty() => {
                format!("{} (PostgreSQL)", trail_store_postgres::redact(url))
            }
            Database::Postgres { url, replicas } => {
                let replicas: Vec<String> = replicas.iter().map(|r| trail_store_postgres::redact(r)).collect();
                format!("{} (PostgreSQL; reads also on {})", trail_store_postgres::redact(url), replicas.join(", "))
            }
        }
    }
}

/// A PostgreSQL trail as a writer or a light reader, with its replicas for reads.
async fn open_postgres(url: &str, replicas: &[String], access: Access) -> Result<PgStore, trail_store::StoreError> {
    let store = match access {
        Access::Write => PgStore::connect(url, None).await?,
        Access::Read => PgStore::connect_read_only(url, None).await?,
    };
    store.with_replicas(replicas, None).await
}

pub fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse().with_context(|| format!("{text:?} is not a listen address such as 127.0.0.1:8080 or [::1]:8080"))
}

/// "No open door": a server reachable from other machines must demand a token.
pub fn check_exposure(listen: SocketAddr, tokens_configured: bool) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() && !tokens_configured {
        bail!(
            "refusing to listen on {listen} without a token: anyone who can reach it could read and write the trail. \
             Set TRAIL_TOKEN (or `tokens` in the configuration file), or listen on 127.0.0.1"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_a_token() {
        assert!(check_exposure(parse_listen("0.0.0.0:8080").unwrap(), false).is_err());
        assert!(check_exposure(parse_listen("0.0.0.0:8080").unwrap(), true).is_ok());
        assert!(check_exposure(parse_listen("[::1]:8080").unwrap(), false).is_ok());
    }

    #[test]
    fn file_keys_are_checked() {
        assert!(
            toml::from_str::<FileConfig>("listen = \"127.0.0.1:9\"\n[[tokens]]\ntoken = \"t\"\nuser = \"u\"").is_ok()
        );
        let err = toml::from_str::<FileConfig>("lisen = 1").unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn auth_settings_override_the_defaults_and_are_checked() {
        let config: FileConfig =
            toml::from_str("[auth]\nmax_failures = 3\nauto_unlock_minutes = 0\nsession_idle_minutes = 5").unwrap();
        let policy = config.auth.policy().unwrap();
        assert_eq!((policy.max_failures, policy.auto_unlock_after), (3, None));
        assert_eq!(policy.failure_window, trail_core::identity::AuthPolicy::default().failure_window);
        assert_eq!(config.auth.sessions().unwrap().idle, jiff::SignedDuration::from_mins(5));
        let bad: FileConfig = toml::from_str("[auth]\nfailure_window_minutes = -1").unwrap();
        assert!(bad.auth.policy().unwrap_err().to_string().contains("failure_window_minutes must be 1-5270400"));
        // Found by fuzzing: a duration too long for jiff to hold panicked in serve.
        let huge: FileConfig = toml::from_str("[auth]\nsession_absolute_hours = 9223372036854775807").unwrap();
        assert!(huge.auth.sessions().unwrap_err().to_string().contains("at most ten years"));
        assert!(toml::from_str::<FileConfig>("[auth]\nmax_failure = 3").is_err(), "typos are refused");
    }

    #[test]
    fn the_database_is_a_url_or_a_table_with_replicas() {
        let url: FileConfig = toml::from_str("database = \"postgres://p/trail\"").unwrap();
        assert_eq!((url.database.url.as_deref(), url.database.replicas.len()), (Some("postgres://p/trail"), 0));
        let table: FileConfig = toml::from_str(
            "[database]\nurl = \"postgres://p/trail\"\nreplicas = [\"postgres://r1/trail\", \"postgres://r2/trail\"]",
        )
        .unwrap();
        assert_eq!(table.database.url.as_deref(), Some("postgres://p/trail"));
        assert_eq!(table.database.replicas, ["postgres://r1/trail", "postgres://r2/trail"]);
        let typo = toml::from_str::<FileConfig>("[database]\nreplica = []").unwrap_err().to_string();
        assert!(typo.contains("replica") && typo.contains("replicas"), "{typo}");
        assert!(toml::from_str::<FileConfig>("database = 3").unwrap_err().to_string().contains("a database URL"));

        let sqlite = Database::resolve(None, Path::new("d")).unwrap();
        let refused = sqlite.with_replicas(vec!["postgres://r/trail".into()]).unwrap_err().to_string();
        assert!(refused.contains("--database postgres://"), "{refused}");
        let postgres = Database::resolve(Some("postgres://u:secret@p/trail"), Path::new("d")).unwrap();
        assert!(
            postgres.clone().with_replicas(vec!["r".into()]).unwrap_err().to_string().contains("not a postgres://")
        );
        let shown = postgres.with_replicas(vec!["postgres://u:secret@r/trail".into()]).unwrap().describe();
        assert!(shown.contains("reads also on postgres://u:***@r/trail") && !shown.contains("secret"), "{shown}");
    }

    #[test]
    fn databases() {
        assert!(
            matches!(Database::resolve(None, Path::new("d")).unwrap(), Database::Sqlite(p) if p == Path::new("d/trail.db"))
        );
        assert!(matches!(Database::resolve(Some("postgres://x"), Path::new("d")).unwrap(), Database::Postgres { .. }));
        assert!(Database::resolve(Some("mysql://x"), Path::new("d")).unwrap_err().to_string().contains("postgres://"));
        assert!(Database::resolve(Some("mysql://x"), Path::new("d")).is_err());
    }
}
