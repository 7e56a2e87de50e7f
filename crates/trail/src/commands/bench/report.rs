//! The benchmark's table: each figure beside its target and, where there is one, the baseline
//! measured in the same run.

use std::time::Duration;

pub struct Row {
    pub figure: String,
    pub value: String,
    pub target: String,
    pub baseline: String,
    pub verdict: String,
}

#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

/// p50 and p95 of a set of timings.
#[derive(Clone, Copy)]
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

impl Percentiles {
    pub fn of(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        Percentiles { p50: at(0.50), p95: at(0.95), p99: at(0.99) }
    }

    pub fn show(&self) -> String {
        format!("p50 {} p95 {}", ms(self.p50), ms(self.p95))
    }
}

pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

pub fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(met: bool) -> String {
    if met { "meets".into() } else { "MISSES".into() }
}

impl Report {
    pub fn throughput(&mut self, figure: &str, per_second: f64, unit: &str, target: f64) {
        self.rows.push(Row {
            figure: figure.into(),
            value: format!("{} {unit}/s", thousands(per_second)),
            target: format!(">= {} {unit}/s", thousands(target)),
            baseline: String::new(),
            verdict: verdict(per_second >= target),
        });
    }

    /// A latency figure; `target` bounds p95 when given, `baseline` is compared with p95.
    pub fn latency(
        &mut self,
        figure: &str,
        timings: Percentiles,
        target: Option<Duration>,
        baseline: Option<(&str, Duration, f64)>,
    ) {
        self.latency_beside(figure, timings, target, String::new(), baseline);
    }

    /// [`Report::latency`] with a figure of the same run shown `beside` it (another backend's).
    pub fn latency_beside(
        &mut self,
        figure: &str,
        timings: Percentiles,
        target: Option<Duration>,
        beside: String,
        baseline: Option<(&str, Duration, f64)>,
    ) {
        let mut met = target.is_none_or(|t| timings.p95 <= t);
        let mut baseline_text = beside;
        if let Some((name, time, wanted_ratio)) = baseline {
            let ratio = time.as_secs_f64() / timings.p95.as_secs_f64().max(1e-9);
            met &= ratio >= wanted_ratio;
            let separator = if baseline_text.is_empty() { "" } else { "; " };
            baseline_text
                .push_str(&format!("{separator}{name} {} = {ratio:.0}x (want >= {wanted_ratio:.0}x)", ms(time)));
        }
        self.rows.push(Row {
            figure: figure.into(),
            value: timings.show(),
            target: target.map_or_else(String::new, |t| format!("p95 <= {}", ms(t))),
            baseline: baseline_text,
            verdict: if target.is_none() && baseline.is_none() { String::new() } else { verdict(met) },
        });
    }

    /// A figure beside its baseline from the same run, without a target.
    pub fn beside(&mut self, figure: &str, value: String, baseline: String) {
        self.rows.push(Row { figure: figure.into(), value, target: String::new(), baseline, verdict: String::new() });
    }

    pub fn note(&mut self, figure: &str, value: String, target: &str, met: Option<bool>) {
        self.rows.push(Row {
            figure: figure.into(),
            value,
            target: target.into(),
            baseline: String::new(),
            verdict: met.map_or_else(String::new, verdict),
        });
    }

    pub fn print(&self) {
        let width = |pick: fn(&Row) -> &str, title: &str| {
            self.rows.iter().map(|r| pick(r).chars().count()).max().unwrap_or(0).max(title.len())
        };
        let (f, v, t, b) = (
            width(|r| &r.figure, "figure"),
            width(|r| &r.value, "value"),
            width(|r| &r.target, "target"),
            width(|r| &r.baseline, "baseline (same run)"),
        );
        println!("\n{:<f$}  {:<v$}  {:<t$}  {:<b$}  verdict", "figure", "value", "target", "baseline (same run)");
        for row in &self.rows {
            println!(
                "{:<f$}  {:<v$}  {:<t$}  {:<b$}  {}",
                row.figure, row.value, row.target, row.baseline, row.verdict
            );
        }
    }
}
