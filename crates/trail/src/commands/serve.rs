//! `trail serve`: the server, with nothing else needed.

use crate::config::{self, Database, FileConfig};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use trail_accounts::Accounts;
use trail_server::listen::{Listener, Tls};
use trail_server::{AppState, ServerConfig, TokenEntry, Tokens};
use trail_store::Store;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Data directory for the embedded SQLite database [default: ./trail-data]
    #[arg(long, env = "TRAIL_DATA")]
    data: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:8080]
    #[arg(long, env = "TRAIL_LISTEN")]
    listen: Option<String>,
    /// Configuration file (TOML)
    #[arg(long, env = "TRAIL_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL [default: SQLite in the data directory]
    #[arg(long, env = "TRAIL_DATABASE")]
    database: Option<String>,
    /// A streaming replica of the PostgreSQL database, for searches, exports and the UI's
    /// reads (repeat for several; replaces the configuration's `[database] replicas`)
    #[arg(long = "replica", value_name = "URL")]
    replicas: Vec<String>,
    /// A token accepted with full rights, for automation and first use
    #[arg(long, env = "TRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Largest request body in bytes [default: 16 MiB]
    #[arg(long, env = "TRAIL_BODY_LIMIT")]
    body_limit: Option<usize>,
    /// Load a realistic demonstration dataset when the trail is empty
    #[arg(long)]
    demo: bool,
    /// Sign a checkpoint this often, in seconds, when events were added [default: 10]
    #[arg(long, env = "TRAIL_CHECKPOINT_EVERY")]
    checkpoint_every: Option<u64>,
}

/// The token file of a data directory: made on first start when no token is configured, so the
/// API is never open, even on loopback.
fn local_token(data: &Path) -> anyhow::Result<(PathBuf, String)> {
    let path = data.join("token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok((path, token.trim().to_owned()));
    }
    std::fs::create_dir_all(data).with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let token = format!("{}{}", trail_core::identity::token::PREFIX, trail_accounts::random_hex(24)?);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path)?, format!("{token}\n").as_bytes())?;
    Ok((path, token))
}

/// Purges what is older than `keep_days` now, then every 6 hours (S3).
async fn keep(store: Arc<dyn Store>, retention: config::RetentionConfig) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(6 * 3600));
    loop {
        every.tick().await;
        let cutoff = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * i64::from(retention.keep_days));
        match store.purge(cutoff, retention.batch.unwrap_or(10_000), "trail").await {
            Ok(report) if report.purged > 0 => tracing::info!(purged = report.purged, "retention purge"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "the retention purge failed; it runs again in 6 hours"),
        }
    }
}

/// Where `serve` listens: plain HTTP, HTTPS, or both.
struct Endpoints {
    plain: Option<SocketAddr>,
    tls: Option<(SocketAddr, Arc<Tls>)>,
}

impl Endpoints {
    /// Plain HTTP on `listen` (or the default address), unless `[tls]` is set and `listen` is not:
    /// then HTTPS only.
    fn resolve(listen: Option<&str>, tls: Option<&config::TlsConfig>) -> anyhow::Result<Endpoints> {
        let tls = match tls {
            Some(tls) => {
                let address = config::parse_listen(&tls.listen).context("[tls] listen")?;
                Some((address, Arc::new(Tls::load(&tls.cert, &tls.key)?)))
            }
            None => None,
        };
        let plain = match (listen, &tls) {
            (None, Some(_)) => None,
            (listen, _) => Some(config::parse_listen(listen.unwrap_or(config::DEFAULT_LISTEN))?),
        };
        Ok(Endpoints { plain, tls })
    }

    fn addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.plain.into_iter().chain(self.tls.as_ref().map(|(address, _)| *address))
    }

    /// Binds every socket; answers the listeners and their URLs, plain first.
    async fn bind(&self) -> anyhow::Result<(Vec<Listener>, Vec<String>)> {
        let (mut listeners, mut urls) = (Vec::new(), Vec::new());
        if let Some(address) = self.plain {
            let socket = bind(address).await?;
            urls.push(format!("http://{}", socket.local_addr()?));
            listeners.push(Listener::plain(socket));
        }
        if let Some((address, tls)) = &self.tls {
            let socket = bind(*address).await.context("[tls] listen")?;
            urls.push(format!("https://{}", socket.local_addr()?));
            listeners.push(Listener::tls(socket, tls.clone()));
        }
        Ok((listeners, urls))
    }
}

async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))
}

/// SIGHUP reloads the TLS certificate and key (a renewed certificate needs no restart); without
/// `[tls]` there is nothing to reload, and SIGHUP no longer stops the server.
async fn reload_on_hangup(tls: Option<(SocketAddr, Arc<Tls>)>) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
        while hangups.recv().await.is_some() {
            match &tls {
                Some((_, tls)) => match tls.reload() {
                    Ok(()) => tracing::info!(cert = %tls.cert_file().display(), "TLS certificate reloaded"),
                    Err(error) => tracing::error!(%error, "TLS reload failed; the certificate in use stays"),
                },
                None => tracing::info!("SIGHUP: nothing to reload (no [tls] section)"),
            }
        }
    }
    #[cfg(not(unix))]
    drop(tls);
}

pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing the requests in flight");
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut file = FileConfig::load(args.config.as_deref())?;
    file.checkpoints.every_seconds = args.checkpoint_every.or(file.checkpoints.every_seconds);
    let roles = file.roles()?;
    let (auth_policy, session_policy) = (file.auth.policy()?, file.auth.sessions()?);
    let trusted_proxies =
        trail_server::client::TrustedProxies::parse(&file.auth.trusted_proxies).map_err(anyhow::Error::msg)?;
    let data = args.data.or(file.data).unwrap_or_else(|| PathBuf::from(config::DEFAULT_DATA));
    let plain_listen = args.listen.or(file.listen.take());
    let endpoints = Endpoints::resolve(plain_listen.as_deref(), file.tls.as_ref())?;
    let connection_limits = file.limits.connection_limits()?;
    let replicas = if args.replicas.is_empty() { file.database.replicas } else { args.replicas };
    let database = Database::resolve(args.database.or(file.database.url).as_deref(), &data)?.with_replicas(replicas)?;
    let mut tokens: Vec<TokenEntry> =
        file.tokens.iter().map(|t| TokenEntry::new(&t.token, &t.user, roles.rights_of(&t.roles))).collect();
    if let Some(token) = args.token.as_deref().filter(|t| !t.is_empty()) {
        tokens.push(TokenEntry::automation(token));
    }
    for address in endpoints.addresses() {
        config::check_exposure(address, !tokens.is_empty())?;
    }
    let generated = if tokens.is_empty() {
        let (path, token) = local_token(&data)?;
        tokens.push(TokenEntry::automation(&token));
        Some(path)
    } else {
        None
    };

    let store = database.open(crate::target::Access::Write).await?;
    // Before anything is written, so a new destination starts with this run's first event.
    let (stop_forwarding, forwarding_stops) = tokio::sync::watch::channel(false);
    let forwarding =
        Arc::new(trail_forward::Forwarding::start(store.clone(), file.destinations, forwarding_stops).await?);
    if args.demo {
        let loaded = crate::demo::load_if_empty(&*store).await?;
        if loaded > 0 {
            println!("demo: loaded {loaded} events");
        }
    }
    let every = file.checkpoints.every().map_err(anyhow::Error::msg)?;
    let (checkpointer, key_made) = file.checkpoints.build(store.clone(), &data, &file.witnesses)?;
    let checkpointer = Arc::new(checkpointer);
    checkpointer.check_key().await?;
    if let Some(retiring) = checkpointer.handing_over_from() {
        println!(
            "checkpoints: the next checkpoint hands the trail over from {retiring} to {}",
            checkpointer.verifier_key().encoded()
        );
    }
    if key_made {
        println!(
            "checkpoints: made the signing key {}; its verifier key is {}",
            file.checkpoints.key_file(&data).display(),
            checkpointer.verifier_key().encoded()
        );
    }
    let (stop_checkpoints, checkpoints_stop) = tokio::sync::watch::channel(false);
    let checkpoints = tokio::spawn(checkpointer.clone().run(every, checkpoints_stop));
    let accounts = Arc::new(Accounts::new(store.clone(), auth_policy, roles).with_sessions(session_policy));
    // After the demo, which only fills an empty trail.
    let admin_password = std::env::var("TRAIL_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty());
    if let Some(generated) = accounts.ensure_admin(admin_password).await? {
        println!(
            "admin: created the user `admin` with the password {generated} (shown once; set TRAIL_ADMIN_PASSWORD to choose it)"
        );
    }
    let mut server_config = ServerConfig::default();
    server_config.body_limit = args.body_limit.or(file.body_limit).unwrap_or(server_config.body_limit);
    file.limits.apply(&mut server_config)?;
    if let Some(retention) = file.retention.clone() {
        anyhow::ensure!((1..=36_500).contains(&retention.keep_days), "[retention] keep_days must be 1-36500");
        tokio::spawn(keep(store.clone(), retention));
    }
    let sweeper = accounts.clone();
    tokio::spawn(async move {
        // Sessions nobody returns to still expire, and their expiry is recorded.
        let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            if let Err(error) = sweeper.sweep_sessions().await {
                tracing::warn!(%error, "the session sweep failed; it runs again in a minute");
            }
            // Throttled addresses whose window ended: what they counted is recorded.
            if let Err(error) = sweeper.record_throttle_summaries().await {
                tracing::warn!(%error, "recording throttle summaries failed; it runs again in a minute");
            }
        }
    });
    let mut state = AppState::new(store, accounts, Tokens::new(tokens));
    state.secure_cookies = file.secure_cookies;
    state.trusted_proxies = Arc::new(trusted_proxies);
    state.forwarding = forwarding.clone();
    state.checkpointer = Some(checkpointer);
    let app = trail_server::app(state, &server_config);
    let (listeners, urls) = endpoints.bind().await?;
    println!("data: {}", database.describe());
    if let Some(path) = generated {
        println!("token: none configured, so the one in {} is required (or set TRAIL_TOKEN)", path.display());
    }
    // Last, as the sign that the server is ready: every socket is bound by now.
    for url in &urls {
        println!("trail {} listening on {url}", env!("CARGO_PKG_VERSION"));
        tracing::info!(%url, "serving");
    }
    tokio::spawn(reload_on_hangup(endpoints.tls.clone()));
    let served = trail_server::listen::serve_listeners(listeners, app, connection_limits, shutdown_signal())
        .await
        .context("the server stopped");
    // The last checkpoint covers every event of this run; then destinations save their cursors
    // (and close their connections cleanly) before exit.
    let _ = stop_checkpoints.send(true);
    let _ = checkpoints.await;
    let _ = stop_forwarding.send(true);
    forwarding.stopped().await;
    served
}
