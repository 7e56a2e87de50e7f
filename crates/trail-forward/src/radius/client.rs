//! Our own RADIUS accounting client (F3), over one UDP socket.
//!
//! - Retransmission follows RFC 5080 2.2.1: the first timeout is IRT, then each doubles up to
//!   MRT, each with ±10% jitter, until MRC retransmissions or MRD have passed.
//! - Every transmission recomputes Acct-Delay-Time, so each is a new packet with a new
//!   identifier (RFC 5080 2.2.1 and RFC 2866 5.2). An answer to the current or the previous
//!   transmission counts: a record holds at most two identifiers, so 128 records in flight can
//!   never exhaust the 256 and wait on each other.
//! - A response counts only from the server the request went to, with the identifier of a
//!   request in flight and a valid Response Authenticator; anything else is dropped and counted.
//! - When a server does not answer in time, the next one is tried; the client stays with the
//!   server that answered.
//! - The 256 identifiers are leased: at most 256 requests are in flight, and an identifier is
//!   reused last-freed-last so a late answer to its previous use cannot match.

use super::accounting::{ACCT_DELAY_TIME, Record};
use super::packet;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, mpsc};

/// RFC 5080's IRT, MRT, MRC and MRD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial: Duration,
    pub max: Duration,
    pub max_retransmits: u32,
    pub max_duration: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(16),
            max_retransmits: 5,
            max_duration: Duration::from_secs(30),
        }
    }
}

fn jitter(duration: Duration) -> Duration {
    duration.mul_f64(1.0 + rand::random_range(-0.1..0.1))
}

struct Pending {
    server: SocketAddr,
    authenticator: [u8; 16],
    answer: mpsc::Sender<()>,
}

/// The identifier space and the requests in flight.
struct Identifiers {
    free: Mutex<VecDeque<u8>>,
    available: Semaphore,
    pending: Mutex<HashMap<u8, Pending>>,
}

/// One identifier, given back (and its pending entry dropped) when the lease ends.
struct Lease<'a> {
    id: u8,
    ids: &'a Identifiers,
}

impl Identifiers {
    fn new() -> Identifiers {
        Identifiers {
            free: Mutex::new((0..=255).collect()),
            available: Semaphore::new(256),
            pending: Mutex::new(HashMap::new()),
        }
    }

    async fn lease(&self) -> Lease<'_> {
        self.available.acquire().await.expect("the semaphore is never closed").forget();
        let id = self.free.lock().expect("ids lock").pop_front().expect("a permit means a free id");
        Lease { id, ids: self }
    }
}

/// The most identifiers one record holds: its current transmission's and the previous one's.
const LEASES_PER_RECORD: usize = 2;

/// Whether a response came from the server a request went to (an IPv4 server answering an
/// IPv6 socket shows as `::ffff:a.b.c.d`).
fn same_peer(sent_to: SocketAddr, from: SocketAddr) -> bool {
    sent_to.port() == from.port() && sent_to.ip().to_canonical() == from.ip().to_canonical()
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.ids.pending.lock().expect("pending lock").remove(&self.id);
        self.ids.free.lock().expect("ids lock").push_back(self.id);
        self.ids.available.add_permits(1);
    }
}

pub struct RadiusClient {
    socket: Arc<UdpSocket>,
    servers: Vec<SocketAddr>,
    current: AtomicUsize,
    secret: Arc<[u8]>,
    timing: Timing,
    ids: Arc<Identifiers>,
    receiver: tokio::task::JoinHandle<()>,
    destination: String,
}

impl Drop for RadiusClient {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

impl RadiusClient {
    pub async fn new(
        destination: &str,
        servers: Vec<SocketAddr>,
        secret: &[u8],
        timing: Timing,
    ) -> std::io::Result<RadiusClient> {
        let local = if servers.first().is_some_and(SocketAddr::is_ipv6) { "[::]:0" } else { "0.0.0.0:0" };
        let socket = Arc::new(UdpSocket::bind(local).await?);
        let ids = Arc::new(Identifiers::new());
        let secret: Arc<[u8]> = Arc::from(secret);
        let receiver = tokio::spawn(receive(socket.clone(), ids.clone(), secret.clone(), destination.to_owned()));
        Ok(RadiusClient {
            socket,
            servers,
            current: AtomicUsize::new(0),
            secret,
            timing,
            ids,
            receiver,
            destination: destination.to_owned(),
        })
    }

    /// Sends one record until a server accepts it, failing over in order; an error names
    /// every server and why it failed.
    pub async fn send(&self, record: &Record) -> Result<(), String> {
        let first = self.current.load(Ordering::SeqCst);
        let mut failures = Vec::new();
        for step in 0..self.servers.len() {
            let index = (first + step) % self.servers.len();
            let server = self.servers[index];
            match self.exchange(server, record).await {
                Ok(()) => {
                    if index != first {
                        self.current.store(index, Ordering::SeqCst);
                        metrics::counter!("trail_radius_failovers_total", "destination" => self.destination.clone())
                            .increment(1);
                    }
                    return Ok(());
                }
                Err(why) => failures.push(format!("{server}: {why}")),
            }
        }
        Err(format!("no accounting server accepted the record ({})", failures.join("; ")))
    }

    async fn exchange(&self, server: SocketAddr, record: &Record) -> Result<(), String> {
        let started = Instant::now();
        let mut timeout = jitter(self.timing.initial);
        let mut transmissions = 0u32;
        let (answer, mut answered) = mpsc::channel(1);
        let mut leases = Vec::new();
        loop {
            let left = self.timing.max_duration.saturating_sub(started.elapsed());
            let Ok(lease) = tokio::time::timeout(left, self.ids.lease()).await else {
                return Err("no RADIUS identifier came free in time".to_owned());
            };
            let mut attributes = record.attributes.clone();
            let delay = jiff::Timestamp::now().duration_since(record.time).as_secs().clamp(0, i64::from(u32::MAX));
            attributes.integer(ACCT_DELAY_TIME, delay as u32);
            let request = packet::accounting_request(lease.id, &attributes, &self.secret);
            let authenticator = packet::authenticator(&request);
            let pending = Pending { server, authenticator, answer: answer.clone() };
            self.ids.pending.lock().expect("pending lock").insert(lease.id, pending);
            leases.push(lease);
            if leases.len() > LEASES_PER_RECORD {
                leases.remove(0);
            }
            self.socket.send_to(&request, server).await.map_err(|e| format!("send failed: {e}"))?;
            let label = ("destination", self.destination.clone());
            if transmissions == 0 {
                metrics::counter!("trail_radius_requests_total", &[label]).increment(1);
            } else {
                metrics::counter!("trail_radius_retransmissions_total", &[label]).increment(1);
            }
            transmissions += 1;
            let left = self.timing.max_duration.saturating_sub(started.elapsed());
            if let Ok(Some(())) = tokio::time::timeout(timeout.min(left), answered.recv()).await {
                return Ok(());
            }
            if transmissions > self.timing.max_retransmits || started.elapsed() >= self.timing.max_duration {
                return Err(format!(
                    "no answer to {transmissions} transmissions in {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
            }
            timeout = jitter(timeout * 2);
            if timeout > self.timing.max {
                timeout = jitter(self.timing.max);
            }
        }
    }
}

/// Matches responses to requests in flight.
async fn receive(socket: Arc<UdpSocket>, ids: Arc<Identifiers>, secret: Arc<[u8]>, destination: String) {
    let mut buffer = vec![0u8; packet::MAX_PACKET];
    loop {
        let (length, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                // An ICMP error from an earlier send; the retransmission timer handles it.
                tracing::debug!(%error, "RADIUS receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let response = &buffer[..length];
        let verdict = match response.get(1).copied() {
            None => Err("empty"),
            Some(id) => {
                let mut pending = ids.pending.lock().expect("pending lock");
                match pending.get(&id) {
                    None => Err("no request in flight has its identifier"),
                    Some(request) if !same_peer(request.server, from) => Err("it came from another address"),
                    Some(request) => packet::verify_response(response, &request.authenticator, &secret)
                        .map(|()| pending.remove(&id).map(|request| request.answer.try_send(()))),
                }
            }
        };
        if let Err(why) = verdict {
            tracing::warn!(%from, why, "dropped a RADIUS response");
            metrics::counter!("trail_radius_invalid_responses_total", "destination" => destination.clone())
                .increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::accounting::StatusType;
    use crate::radius::packet::{ACCOUNTING_RESPONSE, Attributes};
    use md5::{Digest, Md5};

    fn record() -> Record {
        let mut attributes = Attributes::default();
        attributes.text(1, "alice");
        Record { status: StatusType::InterimUpdate, session: "s".into(), time: jiff::Timestamp::now(), attributes }
    }

    fn answer(request: &[u8], id: u8, secret: &[u8]) -> Vec<u8> {
        let mut response = vec![ACCOUNTING_RESPONSE, id, 0, 20];
        let authenticator =
            Md5::new().chain_update(&response).chain_update(&request[4..20]).chain_update(secret).finalize();
        response.extend_from_slice(&authenticator);
        response
    }

    async fn client(server: &UdpSocket, timing: Timing) -> Arc<RadiusClient> {
        Arc::new(RadiusClient::new("test", vec![server.local_addr().unwrap()], b"s3cret", timing).await.unwrap())
    }

    #[tokio::test]
    async fn only_a_genuine_answer_from_the_server_counts() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let impostor = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let slow = Timing { initial: Duration::from_secs(20), ..Timing::default() };
        let client = client(&server, slow).await;
        let sending = tokio::spawn(async move { client.send(&record()).await });
        let mut buffer = [0u8; 4096];
        let (length, from) = server.recv_from(&mut buffer).await.unwrap();
        let request = buffer[..length].to_vec();
        let id = request[1];
        impostor.send_to(&answer(&request, id, b"s3cret"), from).await.unwrap();
        server.send_to(&answer(&request, id, b"not the secret"), from).await.unwrap();
        server.send_to(&answer(&request, id.wrapping_add(1), b"s3cret"), from).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!sending.is_finished(), "another source, a bad authenticator and another identifier do not count");
        server.send_to(&answer(&request, id, b"s3cret"), from).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), sending).await.unwrap().unwrap().unwrap();
    }

    #[tokio::test]
    async fn each_retransmission_is_a_new_packet_and_an_answer_to_any_counts() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let quick = Timing { initial: Duration::from_millis(100), ..Timing::default() };
        let client = client(&server, quick).await;
        let sending = tokio::spawn(async move { client.send(&record()).await });
        let mut buffer = [0u8; 4096];
        let (length, _) = server.recv_from(&mut buffer).await.unwrap();
        let first = buffer[..length].to_vec();
        let (length, from) = server.recv_from(&mut buffer).await.unwrap();
        let second = buffer[..length].to_vec();
        assert_ne!(first[1], second[1], "a new identifier");
        assert_ne!(first[4..20], second[4..20], "a new authenticator");
        assert!(second.windows(2).any(|w| w == [ACCT_DELAY_TIME, 6]), "Acct-Delay-Time is carried");
        // A late answer to the first transmission still counts: the server has the record.
        server.send_to(&answer(&first, first[1], b"s3cret"), from).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), sending).await.unwrap().unwrap().unwrap();
    }
}
