//! Trail's side of witnessing (`[[witnesses]]`): each checkpoint goes to every witness with the
//! proof that it extends what that witness cosigned before, and the cosignatures that come back,
//! checked against the witness's key, are added to its note. A checkpoint is final once it has
//! `[checkpoints] witnesses_required` of them.

use serde::Deserialize;
use std::sync::Mutex;
use std::time::Duration;
use trail_core::checkpoint::SignedCheckpoint;
use trail_core::witness::{AddCheckpoint, CosignerVerifier, cosigned_by};
use trail_store::Store;

/// How long a witness may take to answer before the checkpoint is recorded without it.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// `[[witnesses]]`: one witness.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Where the witness takes submissions: `add-checkpoint` is posted under it.
    pub url: String,
    /// The witness's verifier key, as `trail witness key` prints it.
    pub key: String,
}

/// What a witness has done for this node, for the API, the administration page and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessReport {
    pub name: String,
    pub url: String,
    /// The size of the last checkpoint it cosigned for this node.
    pub cosigned_size: Option<u64>,
    pub cosigned: u64,
    pub refused: u64,
    /// Why the last request got no cosignature (a refusal, silence), until one succeeds.
    pub last_error: Option<String>,
}

struct Peer {
    url: String,
    key: CosignerVerifier,
    report: Mutex<WitnessReport>,
}

pub struct Witnesses {
    peers: Vec<Peer>,
    required: usize,
    client: reqwest::Client,
}

impl Witnesses {
    pub fn none() -> Witnesses {
        Witnesses { peers: Vec::new(), required: 0, client: reqwest::Client::new() }
    }

    /// The witnesses configured; `required` defaults to one when there are any.
    pub fn new(configs: &[WitnessConfig], required: Option<usize>) -> Result<Witnesses, String> {
        let mut peers = Vec::new();
        for config in configs {
            let key = CosignerVerifier::parse(&config.key).map_err(|e| format!("[[witnesses]] {}: {e}", config.url))?;
            let url = config.url.trim_end_matches('/').to_owned();
            let report = WitnessReport {
                name: key.name().to_owned(),
                url: url.clone(),
                cosigned_size: None,
                cosigned: 0,
                refused: 0,
                last_error: None,
            };
            peers.push(Peer { url, key, report: Mutex::new(report) });
        }
        let required = required.unwrap_or(usize::from(!peers.is_empty()));
        if required > peers.len() {
            return Err(format!(
                "[checkpoints] witnesses_required is {required}, but {} witnesses are configured",
                peers.len()
            ));
        }
        let client = reqwest::Client::builder().timeout(ANSWER_WITHIN).build().map_err(|e| e.to_string())?;
        Ok(Witnesses { peers, required, client })
    }

    pub fn required(&self) -> usize {
        self.required
    }

    pub fn keys(&self) -> Vec<CosignerVerifier> {
        self.peers.iter().map(|peer| peer.key.clone()).collect()
    }

    pub fn reports(&self) -> Vec<WitnessReport> {
        self.peers.iter().map(|peer| peer.report.lock().expect("never poisoned").clone()).collect()
    }

    /// The note with the cosignature of every witness that gave one, asked all at once.
    pub async fn cosign(&self, store: &dyn Store, signed: &SignedCheckpoint) -> String {
        let asked = self.peers.iter().map(|peer| peer.ask(&self.client, store, signed));
        let lines: String = futures_util::future::join_all(asked).await.into_iter().flatten().collect();
        format!("{}{lines}", signed.note)
    }
}

impl Peer {
    /// The witness's cosignature line, or nothing (with the reason in its report).
    async fn ask(&self, client: &reqwest::Client, store: &dyn Store, signed: &SignedCheckpoint) -> Option<String> {
        let answer = self.request(client, store, signed).await;
        let mut report = self.report.lock().expect("never poisoned");
        let witness = report.name.clone();
        match answer {
            Ok(line) => {
                report.cosigned += 1;
                report.cosigned_size = Some(signed.checkpoint.size);
                report.last_error = None;
                metrics::counter!("trail_witness_cosignatures_total", "witness" => witness).increment(1);
                Some(line)
            }
            Err(error) => {
                report.refused += 1;
                tracing::warn!(witness = %report.name, %error, "a witness gave no cosignature");
                report.last_error = Some(error);
                metrics::counter!("trail_witness_failures_total", "witness" => witness).increment(1);
                None
            }
        }
    }

    async fn request(
        &self,
        client: &reqwest::Client,
        store: &dyn Store,
        signed: &SignedCheckpoint,
    ) -> Result<String, String> {
        let size = signed.checkpoint.size;
        let mut old = self.report.lock().expect("never poisoned").cosigned_size.unwrap_or(0);
        // Once more after the witness says which size it last cosigned (a restart forgets it).
        for _ in 0..2 {
            if old > size {
                return Err(format!("the witness has cosigned {old} events, more than this checkpoint's {size}"));
            }
            let proof = match old {
                0 => Vec::new(),
                old => trail_store::tree::consistency_proof(store, size, old).await.map_err(|e| e.to_string())?,
            };
            let body = AddCheckpoint { old_size: old, proof, note: signed.note.clone() }.to_body();
            let response = client
                .post(format!("{}/add-checkpoint", self.url))
                .body(body)
                .send()
                .await
                .map_err(|e| format!("no answer from {}: {e}", self.url))?;
            let status = response.status();
            let size_given = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/x.tlog.size"));
            let text = response.text().await.map_err(|e| format!("{}: {e}", self.url))?;
            match status.as_u16() {
                200 => return self.cosignature(signed, &text),
                409 if size_given => old = text.trim().parse().map_err(|_| format!("a malformed size: {text:?}"))?,
                code => return Err(format!("refused with {code}: {}", text.trim())),
            }
        }
        Err("the witness keeps answering with another size".into())
    }

    /// The lines of a witness's answer that are its cosignature of this checkpoint.
    fn cosignature(&self, signed: &SignedCheckpoint, answer: &str) -> Result<String, String> {
        let lines: String = answer.lines().filter(|l| l.starts_with('\u{2014}')).map(|l| format!("{l}\n")).collect();
        let cosigned = format!("{}{lines}", signed.note);
        if cosigned_by(&cosigned, std::slice::from_ref(&self.key)).is_empty() {
            return Err("its answer holds no valid cosignature under its key".into());
        }
        Ok(lines)
    }
}
