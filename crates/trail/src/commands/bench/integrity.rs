//! S4's figures: signing a checkpoint of the whole trail, one event's proof (the target is P95
//! <= 5 ms at 10,000,000 events), and `trail verify` of the whole trail against a checkpoint
//! held outside, as an auditor runs it beside the live server.

use super::report::{Percentiles, Report, ms, rate};
use super::{TOKEN, client};
use crate::demo::Rng;
use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

async fn call(request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    let response = request.bearer_auth(TOKEN).send().await?;
    if !response.status().is_success() {
        bail!("{} answered {}", response.url().path().to_owned(), response.status());
    }
    Ok(response.json().await?)
}

/// Runs `trail` (this binary) and insists it succeeds; answers its output.
fn trail(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(std::env::current_exe()?).args(args).output()?;
    if !output.status.success() {
        bail!(
            "trail {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

pub async fn measure(report: &mut Report, base: &str, data: &Path, repeat: usize) -> anyhow::Result<()> {
    let http = client();
    let started = Instant::now();
    let checkpoint = call(http.post(format!("{base}/api/v1/checkpoints"))).await?;
    report.note("integrity: sign a checkpoint of the trail", ms(started.elapsed()), "", None);
    let size = checkpoint["size"].as_u64().context("a checkpoint's size")?;

    let mut rng = Rng::new(12);
    let mut samples = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let id = 1 + rng.below(size as usize);
        let started = Instant::now();
        call(http.get(format!("{base}/api/v1/events/{id}/proof"))).await?;
        samples.push(started.elapsed());
    }
    report.latency("integrity: proof of one event", Percentiles::of(samples), Some(Duration::from_millis(5)), None);

    let (key, held) = (data.with_file_name("trail.vkey"), data.with_file_name("held-checkpoint.txt"));
    let data_arg = data.to_str().context("a data directory named in UTF-8")?;
    std::fs::write(&key, trail(&["key", "show", "--data", data_arg])?)?;
    std::fs::write(&held, checkpoint["note"].as_str().context("a checkpoint's note")?)?;
    let started = Instant::now();
    let args = ["verify", "--data", data_arg, "--key", key.to_str().unwrap_or_default()];
    let verified = trail(&[&args[..], &["--checkpoints", held.to_str().unwrap_or_default()]].concat())?;
    let elapsed = started.elapsed();
    if !verified.contains("held outside confirm") {
        bail!("verify did not confirm the checkpoint: {verified}");
    }
    report.note(
        "integrity: verify against a checkpoint",
        format!(
            "{} events/s ({} events in {:.1} s)",
            super::report::thousands(rate(size, elapsed)),
            size,
            elapsed.as_secs_f64()
        ),
        "",
        None,
    );
    Ok(())
}
