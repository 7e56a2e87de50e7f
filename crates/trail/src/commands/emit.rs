//! `trail emit`: record one event from flags, or a batch of NDJSON events from standard input.

use crate::target::{Access, Target, TargetArgs};
use anyhow::{Context, bail};
use serde_json::{Map, Value};
use std::io::BufRead;
use trail_core::EventInput;
use trail_core::request::event_from_json_line;

#[derive(clap::Args, Debug)]
pub struct EmitArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[arg(long)]
    user: Option<String>,
    /// A built-in kind (see `trail catalog`) or a namespaced one (ACME.SYNC_DONE)
    #[arg(long)]
    kind: Option<String>,
    /// Line 1 is the summary; further lines carry detail
    #[arg(long)]
    message: Option<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    action: Option<String>,
    #[arg(long)]
    process: Option<String>,
    /// emerg alert crit err warning notice info debug, or 0-7
    #[arg(long)]
    severity: Option<String>,
    /// success or failure
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    client: Option<String>,
    /// RFC 3339; default now
    #[arg(long)]
    time: Option<String>,
    /// An attribute, KEY=VALUE (repeatable; order kept)
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    attributes: Vec<String>,
    #[arg(long)]
    request_id: Option<String>,
    #[arg(long)]
    session_id: Option<String>,
    #[arg(long)]
    job_id: Option<String>,
    #[arg(long)]
    parent_id: Option<String>,
    /// Read NDJSON events from standard input instead, stored as one atomic batch
    #[arg(long, conflicts_with_all = ["user", "kind", "message"])]
    stdin: bool,
}

impl EmitArgs {
    fn to_input(&self) -> anyhow::Result<EventInput> {
        let mut object = Map::new();
        let fields = [
            ("user", &self.user),
            ("kind", &self.kind),
            ("message", &self.message),
            ("name", &self.name),
            ("action", &self.action),
            ("process", &self.process),
            ("severity", &self.severity),
            ("outcome", &self.outcome),
            ("client", &self.client),
            ("time", &self.time),
            ("request_id", &self.request_id),
            ("session_id", &self.session_id),
            ("job_id", &self.job_id),
            ("parent_id", &self.parent_id),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                object.insert(key.to_owned(), Value::String(value.clone()));
            }
        }
        let mut attributes = Map::new();
        for pair in &self.attributes {
            let (key, value) = pair.split_once('=').with_context(|| format!("--attr {pair:?}: use KEY=VALUE"))?;
            attributes.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        if !attributes.is_empty() {
            object.insert("attributes".into(), Value::Object(attributes));
        }
        serde_json::from_value(Value::Object(object)).context("the flags do not make an event")
    }
}

pub async fn run(args: EmitArgs) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let events = if args.stdin {
        let mut events = Vec::new();
        for (number, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line.context("cannot read standard input")?;
            if line.trim().is_empty() {
                continue;
            }
            events.push(event_from_json_line(&line, now).with_context(|| format!("line {}", number + 1))?);
        }
        if events.is_empty() {
            bail!("standard input held no events: send one JSON event per line");
        }
        events
    } else {
        vec![args.to_input()?.validate(now)?]
    };
    trail_core::request::refuse_trail_only(&events)?;
    let target = Target::open(&args.target, Access::Write).await?;
    for id in target.append(events).await? {
        println!("{id}");
    }
    Ok(())
}
