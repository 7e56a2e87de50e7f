//! Where client commands send their work: a running server (`--server` or `TRAIL_SERVER`, with
//! a token), or the local data directory opened directly.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use trail_core::query::SearchParams;
use trail_core::{Event, EventBody, EventId, SearchPage};
use trail_store::Store;

pub use crate::config::Access;
use crate::config::Database;

#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// A running server, such as http://127.0.0.1:8080; without it the local data directory is
    /// opened directly.
    #[arg(long, env = "TRAIL_SERVER")]
    pub server: Option<String>,
    /// The bearer token for --server.
    #[arg(long, env = "TRAIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The local data directory.
    #[arg(long, env = "TRAIL_DATA", default_value = crate::config::DEFAULT_DATA)]
    pub data: PathBuf,
    /// Open this database instead of the data directory's (sqlite://PATH or postgres://...).
    #[arg(long, env = "TRAIL_DATABASE")]
    pub database: Option<String>,
}

pub enum Target {
    /// `partial` is set once the server's feed hid or redacted an event for this token.
    Remote {
        base: String,
        token: String,
        client: reqwest::Client,
        partial: std::sync::atomic::AtomicBool,
    },
    Local(Arc<dyn Store>),
}

#[derive(Deserialize)]
struct ApiError {
    error: ApiErrorDetail,
}

#[derive(Deserialize)]
struct ApiErrorDetail {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct Ids {
    ids: Vec<EventId>,
}

#[derive(Deserialize)]
struct Page {
    events: Vec<Event>,
    next_cursor: Option<String>,
    newer: u64,
    #[serde(default)]
    incomplete: bool,
}

#[derive(Deserialize)]
struct Feed {
    events: Vec<Event>,
    next_after: EventId,
    whole: bool,
}

/// A search page as the CLI prints it.
pub struct Found {
    pub events: Vec<Event>,
    pub next_cursor: Option<String>,
    pub newer: u64,
    /// The server's time budget ran out before the page was full.
    pub incomplete: bool,
}

impl From<SearchPage<Event>> for Found {
    fn from(page: SearchPage<Event>) -> Found {
        Found {
            events: page.events,
            next_cursor: page.next_cursor.map(|c| c.encode()),
            newer: page.newer,
            incomplete: page.incomplete,
        }
    }
}

impl Target {
    pub async fn open(args: &TargetArgs, access: Access) -> anyhow::Result<Target> {
        if let Some(server) = &args.server {
            let Some(token) = args.token.clone().or_else(|| crate::credentials::stored_token(server)) else {
                bail!("--server needs a token: pass --token, set TRAIL_TOKEN, or run `trail login`");
            };
            return Ok(Target::Remote {
                base: server.trim_end_matches('/').to_owned(),
                token,
                client: reqwest::Client::new(),
                partial: Default::default(),
            });
        }
        let database = Database::resolve(args.database.as_deref(), &args.data)?;
        Ok(Target::Local(database.open(access).await?))
    }

    /// Sends a request to the server; `None` when it answers 404.
    async fn call_maybe<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<Option<T>> {
        self.send(request, true).await
    }

    /// Sends a request; a 404 is `None` when `missing_is_none`, else the server's refusal.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        missing_is_none: bool,
    ) -> anyhow::Result<Option<T>> {
        let Target::Remote { base, token, .. } = self else { unreachable!("only remote targets make calls") };
        let response =
            request.bearer_auth(token).send().await.with_context(|| format!("cannot reach the server at {base}"))?;
        let status = response.status();
        if missing_is_none && status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = response.bytes().await?;
        if !status.is_success() {
            match serde_json::from_slice::<ApiError>(&body) {
                Ok(error) => bail!("the server refused ({status}, {}): {}", error.error.code, error.error.message),
                Err(_) => bail!("the server answered {status}: {}", String::from_utf8_lossy(&body)),
            }
        }
        serde_json::from_slice(&body).map(Some).context("the server's answer was not what this trail expected")
    }

    /// Streams a server's answer into `out` (remote targets only); returns the bytes written.
    pub async fn download(&self, path: &str, out: &mut dyn std::io::Write) -> anyhow::Result<u64> {
        let Target::Remote { base, client, token, .. } = self else { anyhow::bail!("this needs a server (--server)") };
        let mut response = client.get(format!("{base}{path}")).bearer_auth(token).send().await?;
        if !response.status().is_success() {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            bail!("the server refused ({status}): {}", body["error"]["message"].as_str().unwrap_or("no reason given"));
        }
        let mut written = 0;
        while let Some(chunk) = response.chunk().await? {
            out.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// Sends a request to the server and returns its JSON answer (remote targets only).
    pub async fn call_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let Target::Remote { base, client, .. } = self else { anyhow::bail!("this needs a server (--server)") };
        let mut request = client.request(method, format!("{base}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request, false).await?.context("the server sent no answer")
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> anyhow::Result<T> {
        self.call_maybe(request).await?.context("the server answered 404: is --server the address of a trail server?")
    }

    pub async fn append(&self, events: Vec<EventBody>) -> anyhow::Result<Vec<EventId>> {
        match self {
            Target::Local(store) => {
                let submitted_by = trail_core::event::submitted_by::local(&local_user());
                let events = events.into_iter().map(|e| EventBody { submitted_by: Some(submitted_by.clone()), ..e });
                Ok(store.append(events.collect()).await?)
            }
            Target::Remote { base, client, .. } => {
                let request = client.post(format!("{base}/api/v1/events")).json(&events);
                Ok(self.call::<Ids>(request).await?.ids)
            }
        }
    }

    pub async fn search(&self, params: SearchParams) -> anyhow::Result<Found> {
        match self {
            Target::Local(store) => {
                let mut query = params.into_query(None, trail_core::DetailsReach::Everyone)?;
                query.deadline = None; // the local trail's owner waits as long as it takes

                Ok(store.search(query).await?.into())
            }
            Target::Remote { base, client, .. } => {
                let page: Page = self.call(client.get(format!("{base}/api/v1/events")).query(&params)).await?;
                Ok(Found {
                    events: page.events,
                    next_cursor: page.next_cursor,
                    newer: page.newer,
                    incomplete: page.incomplete,
                })
            }
        }
    }

    pub async fn get(&self, id: EventId) -> anyhow::Result<Option<Event>> {
        match self {
            Target::Local(store) => Ok(store.get(id).await?),
            Target::Remote { base, client, .. } => {
                self.call_maybe(client.get(format!("{base}/api/v1/events/{id}"))).await
            }
        }
    }

    pub async fn read_after(&self, after: EventId, limit: usize) -> anyhow::Result<Vec<Event>> {
        match self {
            Target::Local(store) => Ok(store.read_after(after, limit).await?),
            Target::Remote { base, client, partial, .. } => {
                // The feed skips what this token may not see; pass over such gaps until events
                // come, or the feed has nothing newer.
                let mut after = after;
                loop {
                    let request = client
                        .get(format!("{base}/api/v1/feed"))
                        .query(&[("after", after.get()), ("limit", limit.min(1000) as i64)]);
                    let feed = self.call::<Feed>(request).await?;
                    if !feed.whole {
                        partial.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if !feed.events.is_empty() || feed.next_after <= after {
                        return Ok(feed.events);
                    }
                    after = feed.next_after;
                }
            }
        }
    }

    /// Visits every committed event after `after`, in id order, a chunk at a time, until the
    /// events run out or `visit` answers false.
    pub async fn each_chunk_after(
        &self,
        mut after: EventId,
        mut visit: impl FnMut(&[Event]) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        loop {
            let events = self.read_after(after, 1000).await?;
            let Some(last) = events.last() else { return Ok(()) };
            after = last.id;
            if !visit(&events)? {
                return Ok(());
            }
        }
    }

    /// Whether a server has hidden or redacted an event this target read: what was read is
    /// then not the whole trail (the token lacks `read_all` or `details_all`).
    pub fn saw_partial_view(&self) -> bool {
        matches!(self, Target::Remote { partial, .. } if partial.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Where the chain resumes after a purge (S3), if one happened.
    pub async fn prune_marker(&self) -> anyhow::Result<Option<trail_core::chain::PruneMarker>> {
        match self {
            Target::Local(store) => Ok(store.prune_marker().await?),
            Target::Remote { .. } => {
                let start = self.call_json(reqwest::Method::GET, "/api/v1/chain", None).await?;
                let (Some(through), Some(hash)) = (start["pruned_through"].as_i64(), start["pruned_hash"].as_str())
                else {
                    return Ok(None);
                };
                let hash = trail_core::chain::from_hex(hash).context("the server's prune marker is malformed")?;
                Ok(Some(trail_core::chain::PruneMarker { through: EventId::new(through), hash }))
            }
        }
    }

    /// The newest id, for progress bars.
    pub async fn head(&self) -> anyhow::Result<EventId> {
        match self {
            Target::Local(store) => Ok(store.stats().await?.head),
            Target::Remote { .. } => {
                let params = SearchParams { all_users: Some(true), limit: Some(1), ..SearchParams::default() };
                Ok(self.search(params).await?.events.first().map_or(EventId::ZERO, |e| e.id))
            }
        }
    }
}

/// Who runs a command on the data directory itself: the operating-system user, which the
/// events it writes name (a local trail has no accounts to ask).
pub fn local_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "local".into())
}
