//! Serving connections: plain HTTP and HTTPS listeners, with the limits that keep slow and
//! greedy clients from starving everyone else. A connection that sends no complete request head
//! within `header_timeout` (a fresh one, or one idle between requests) is closed; at most
//! `connections` are open at once, and one beyond that is answered `503` with `Retry-After` and
//! closed at once, so a flood of idle sockets costs a bounded amount of memory and never queues
//! ahead of real clients. Request bodies have their own deadline (see [`crate::ServerConfig`]).
//!
//! axum's own `serve` has none of these knobs, so the accept loop is written here on hyper's
//! HTTP/1 connection builder, which has the header timeout, and hyper-util's graceful shutdown.

pub mod tls;

use crate::error::Code;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tower::ServiceExt;

pub use tls::{Tls, TlsError};

/// How many connections, and how long a client may take to send a request head.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once; one more is answered `503` and closed.
    pub connections: usize,
    /// Time to send a whole request head, from the connection's start or its last answer
    /// (the TLS handshake included).
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { connections: 4096, header_timeout: Duration::from_secs(10) }
    }
}

/// A request extension: the request came over TLS (so its answer sends HSTS and Secure cookies).
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// A bound socket, served as plain HTTP or, with certificates, as HTTPS.
pub struct Listener {
    socket: TcpListener,
    tls: Option<Arc<Tls>>,
}

impl Listener {
    pub fn plain(socket: TcpListener) -> Listener {
        Listener { socket, tls: None }
    }

    pub fn tls(socket: TcpListener, tls: Arc<Tls>) -> Listener {
        Listener { socket, tls: Some(tls) }
    }
}

/// How long, after shutdown begins, requests in flight (and streams) have to finish.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `app` on every listener until `shutdown` completes, then stops accepting, lets the
/// requests in flight finish (at most [`DRAIN`]) and returns.
pub async fn serve_listeners(
    listeners: Vec<Listener>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (accepted, mut arrivals) = mpsc::channel(64);
    let acceptors: Vec<_> =
        listeners.into_iter().map(|listener| tokio::spawn(accept(listener, accepted.clone()))).collect();
    drop(accepted);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let connection = Arc::new(Connection { app, http, header_timeout: limits.header_timeout });
    tokio::pin!(shutdown);
    let failure = loop {
        tokio::select! {
            () = &mut shutdown => break None,
            arrival = arrivals.recv() => match arrival {
                Some(Ok((stream, peer, tls))) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let watcher = graceful.watcher();
                        tokio::spawn(connection.clone().run(stream, peer, tls, slot, watcher));
                    }
                    Err(_) => refuse(stream, peer, tls.is_some(), limits.connections),
                },
                Some(Err(error)) => break Some(error),
                None => break None,
            },
        }
    };
    acceptors.iter().for_each(tokio::task::JoinHandle::abort);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!(seconds = DRAIN.as_secs(), "connections still open after the drain time are cut");
    }
    failure.map_or(Ok(()), Err)
}

type Arrival = std::io::Result<(TcpStream, SocketAddr, Option<Arc<Tls>>)>;

/// Accepts connections until the server stops; errors that concern one connection only (the
/// peer reset it, the process is out of file descriptors for a moment) are logged and waited out.
async fn accept(listener: Listener, arrivals: mpsc::Sender<Arrival>) {
    loop {
        let arrival = match listener.socket.accept().await {
            Ok((stream, peer)) => Ok((stream, peer, listener.tls.clone())),
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, "accepting a connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(error) => Err(error),
        };
        let fatal = arrival.is_err();
        if arrivals.send(arrival).await.is_err() || fatal {
            return;
        }
    }
}

fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    // EMFILE and ENFILE have no kind of their own; they pass once connections close.
    matches!(error.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock)
        || matches!(error.raw_os_error(), Some(23 | 24))
}

/// One beyond the limit: told to come back (plain HTTP) or closed (TLS, where an answer would
/// need the handshake the limit is there to avoid), without waiting for its request.
fn refuse(mut stream: TcpStream, peer: SocketAddr, over_tls: bool, limit: usize) {
    metrics::counter!("trail_connections_refused_total").increment(1);
    tracing::warn!(%peer, limit, "connection refused: the server has `[limits] connections` open already");
    if over_tls {
        return;
    }
    tokio::spawn(async move {
        // The error format of every other answer, written by hand: no request was read to
        // route through the application.
        let message = format!(
            "the server has {limit} connections open, its limit (`[limits] connections`); retry after Retry-After seconds"
        );
        let body = serde_json::json!({"error": {"code": Code::Overloaded.name(), "message": message}}).to_string();
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
    });
}

/// What every connection shares.
struct Connection {
    app: Router,
    http: hyper::server::conn::http1::Builder,
    header_timeout: Duration,
}

impl Connection {
    async fn run(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<Arc<Tls>>,
        _slot: OwnedSemaphorePermit,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let _ = stream.set_nodelay(true);
        metrics::gauge!("trail_connections_open").increment(1.0);
        match tls {
            None => self.http(stream, peer, false, watcher).await,
            // The handshake counts against the header timeout: a client that stalls in it holds
            // a slot no longer than one that stalls in its request head.
            Some(tls) => match tokio::time::timeout(self.header_timeout, tls.acceptor().accept(stream)).await {
                Ok(Ok(stream)) => self.http(stream, peer, true, watcher).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            },
        }
        metrics::gauge!("trail_connections_open").decrement(1.0);
    }

    async fn http(
        &self,
        stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
        peer: SocketAddr,
        over_tls: bool,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            // The peer address goes into the events of logins and administration.
            request.extensions_mut().insert(ConnectInfo(peer));
            if over_tls {
                request.extensions_mut().insert(OverTls);
            }
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let served = watcher.watch(self.http.serve_connection(TokioIo::new(stream), service));
        if let Err(error) = served.await {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}
