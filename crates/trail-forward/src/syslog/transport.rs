//! Sending: one datagram per message over UDP; framed messages over a TCP or TLS stream.
//!
//! What counts as delivered: UDP has no acknowledgement, so a datagram sent is delivered (at
//! most once). Syslog over TCP (RFC 6587) has no acknowledgement either; a write that succeeded
//! only reached our kernel. So a stream batch is confirmed once it was written [`SETTLE`] ago and
//! the connection is still open then (a peer that stops closes it at once, and our probe sees
//! that). After a failure the runner resends from the last confirmed batch: at least once, in
//! order, with duplicates of at most the last few seconds. A clean shutdown half-closes the
//! stream and waits for the peer to close its side, which proves it read everything.

use super::config::{Endpoint, Framing, Transport};
use super::encoder::Encoder;
use super::tls::Connector;
use crate::sink::{SendFailed, Sink};
use async_trait::async_trait;
use futures_util::FutureExt;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use trail_core::{Event, EventId};

/// How long a written batch must stay on an open connection before it counts as delivered.
const SETTLE: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A peer that stops reading stalls a write; after this long the connection counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

pub(crate) struct SyslogSink {
    endpoint: Endpoint,
    encoder: Encoder,
    framing: Framing,
    tls: Option<Connector>,
    udp: Option<UdpSocket>,
    stream: Option<Box<dyn Stream>>,
    /// Batches written on the current stream and not yet confirmed: (last id, written at).
    unconfirmed: VecDeque<(EventId, Instant)>,
}

impl SyslogSink {
    pub fn new(endpoint: Endpoint, encoder: Encoder, framing: Framing, tls: Option<Connector>) -> SyslogSink {
        SyslogSink { endpoint, encoder, framing, tls, udp: None, stream: None, unconfirmed: VecDeque::new() }
    }

    async fn send_datagrams(&mut self, events: &[Event]) -> Result<(), SendFailed> {
        if self.udp.is_none() {
            let address = self.endpoint.address();
            let local = if self.endpoint.host.contains(':') { "[::]:0" } else { "0.0.0.0:0" };
            let socket = UdpSocket::bind(local).await.map_err(|e| SendFailed::io("cannot open a UDP socket", e))?;
            socket.connect(&address).await.map_err(|e| SendFailed::io(&format!("cannot reach {address}"), e))?;
            self.udp = Some(socket);
        }
        let socket = self.udp.as_ref().expect("connected above");
        for event in events {
            socket.send(&self.encoder.encode(event)).await.map_err(|e| SendFailed::io("UDP send failed", e))?;
        }
        Ok(())
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, SendFailed> {
        let address = self.endpoint.address();
        let cannot = |e| SendFailed::io(&format!("cannot connect to {address}"), e);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address))
            .await
            .map_err(|_| SendFailed(format!("cannot connect to {address}: timed out")))?
            .map_err(cannot)?;
        tcp.set_nodelay(true).map_err(cannot)?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(tls) => {
                let handshake = tls.connector.connect(tls.server_name.clone(), tcp);
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
                    .await
                    .map_err(|_| SendFailed(format!("TLS handshake with {address} timed out")))?
                    .map_err(|e| SendFailed::io(&format!("TLS handshake with {address} failed"), e))?;
                Ok(Box::new(stream))
            }
        }
    }

    fn frame(&self, events: &[Event]) -> Vec<u8> {
        let mut frames = Vec::with_capacity(events.len() * 300);
        for event in events {
            let message = self.encoder.encode(event);
            match self.framing {
                Framing::OctetCounting => {
                    frames.extend_from_slice(format!("{} ", message.len()).as_bytes());
                    frames.extend_from_slice(&message);
                }
                Framing::Lf => {
                    frames.extend_from_slice(&message);
                    frames.push(b'\n');
                }
            }
        }
        frames
    }

    /// Fails when the peer has closed the connection; otherwise confirms the settled batches.
    fn confirm(&mut self) -> Result<Option<EventId>, SendFailed> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        let mut scratch = [0u8; 512];
        // Syslog servers never talk back: readable means closed (or, rarely, noise to skip).
        loop {
            match stream.read(&mut scratch).now_or_never() {
                None => break,
                Some(Ok(0)) => return Err(SendFailed("the server closed the connection".to_owned())),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(SendFailed::io("the connection failed", e)),
            }
        }
        let mut confirmed = None;
        while let Some((through, _)) = self.unconfirmed.front().filter(|(_, at)| at.elapsed() >= SETTLE) {
            confirmed = Some(*through);
            self.unconfirmed.pop_front();
        }
        Ok(confirmed)
    }
}

#[async_trait]
impl Sink for SyslogSink {
    async fn send(&mut self, events: &[Event], through: EventId) -> Result<Option<EventId>, SendFailed> {
        if self.endpoint.transport == Transport::Udp {
            self.send_datagrams(events).await?;
            return Ok(Some(through));
        }
        if self.stream.is_none() {
            self.stream = Some(self.connect().await?);
        }
        let frames = self.frame(events);
        let stream = self.stream.as_mut().expect("connected above");
        let written = async {
            stream.write_all(&frames).await?;
            stream.flush().await
        };
        tokio::time::timeout(WRITE_TIMEOUT, written)
            .await
            .map_err(|_| SendFailed(format!("the server took no data for {} s", WRITE_TIMEOUT.as_secs())))?
            .map_err(|e| SendFailed::io("write failed", e))?;
        self.unconfirmed.push_back((through, Instant::now()));
        self.confirm()
    }

    async fn settle(&mut self) -> Result<Option<EventId>, SendFailed> {
        self.confirm()
    }

    fn reset(&mut self) {
        self.stream = None;
        self.udp = None;
        self.unconfirmed.clear();
    }

    async fn close(&mut self) -> Option<EventId> {
        let mut stream = self.stream.take()?;
        let last = self.unconfirmed.back().map(|(through, _)| *through);
        let closed_by_peer = async {
            stream.shutdown().await.ok()?;
            let mut scratch = [0u8; 512];
            loop {
                match stream.read(&mut scratch).await {
                    Ok(0) => return Some(()),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        };
        match tokio::time::timeout(CLOSE_TIMEOUT, closed_by_peer).await {
            Ok(Some(())) => last,
            _ => None,
        }
    }
}
