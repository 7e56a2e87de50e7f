//! `trail search`, `trail show` and `trail tail`.

use crate::output::{Format, Printer};
use crate::target::{Access, Target, TargetArgs};
use anyhow::bail;
use std::time::Duration;
use trail_core::EventId;
use trail_core::query::SearchParams;
use trail_core::time::parse_time_zone;

#[derive(clap::Args, Debug)]
pub struct OutputArgs {
    /// One event per line, as JSON
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header line
    #[arg(long)]
    csv: bool,
}

impl OutputArgs {
    fn printer(&self, tz: &str) -> anyhow::Result<Printer> {
        let format = match (self.json, self.csv) {
            (true, _) => Format::Json,
            (_, true) => Format::Csv,
            _ => Format::Table,
        };
        let tz = parse_time_zone(tz).map_err(anyhow::Error::msg)?;
        Printer::new(format, Box::new(std::io::BufWriter::new(std::io::stdout())), tz)
    }
}

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// One user's entries [default: your own on a server; everyone's on a local trail]
    #[arg(long)]
    user: Option<String>,
    /// Every user's entries
    #[arg(long)]
    all_users: bool,
    /// Case-insensitive substring; % any run, _ one character, \ escapes
    #[arg(long)]
    action: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// Searches the whole multi-line message
    #[arg(long)]
    message: Option<String>,
    /// YYYY-MM in --tz
    #[arg(long, conflicts_with = "day")]
    month: Option<String>,
    /// YYYY-MM-DD in --tz
    #[arg(long)]
    day: Option<String>,
    /// IANA time zone for --month, --day and the table's times
    #[arg(long, env = "TRAIL_TZ", default_value = "UTC")]
    tz: String,
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Continue from a previous page's cursor
    #[arg(long)]
    cursor: Option<String>,
}

pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let tz = args.tz.clone();
    let params = SearchParams {
        user: args.user,
        all_users: args.all_users.then_some(true),
        action: args.action,
        name: args.name,
        message: args.message,
        month: args.month,
        day: args.day,
        tz: Some(tz.clone()),
        limit: Some(args.limit),
        cursor: args.cursor,
    };
    let target = Target::open(&args.target, Access::Read).await?;
    let found = target.search(params).await?;
    let mut printer = args.output.printer(&tz)?;
    for event in &found.events {
        printer.print(event)?;
    }
    printer.finish()?;
    if found.newer > 0 {
        eprintln!("{} newer entries since this browsing began", found.newer);
    }
    if found.incomplete {
        eprintln!("the search stopped at its time budget: these are the matches found so far");
    }
    if let Some(cursor) = found.next_cursor {
        eprintln!("more: repeat with --cursor {cursor}");
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    target: TargetArgs,
    id: EventId,
    /// The event as JSON
    #[arg(long)]
    json: bool,
}

pub async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let target = Target::open(&args.target, Access::Read).await?;
    let Some(event) = target.get(args.id).await? else {
        bail!("there is no event {}", args.id);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&event)?);
        return Ok(());
    }
    let body = &event.body;
    println!("id:        {}", event.id);
    println!("time:      {}", trail_core::time::format_rfc3339(body.time));
    println!("user:      {}", body.user);
    if let Some(client) = &body.client {
        println!("client:    {client}");
    }
    println!("kind:      {} ({}, {})", body.kind, body.process, body.severity);
    println!("action:    {}", body.action);
    println!("name:      {}", body.name);
    if let Some(outcome) = body.outcome {
        println!("outcome:   {}", outcome.name());
    }
    for (label, value) in [
        ("request", &body.request_id),
        ("session", &body.session_id),
        ("job", &body.job_id),
        ("parent", &body.parent_id),
    ] {
        if let Some(value) = value {
            println!("{label:<10} {value}");
        }
    }
    for (key, value) in &body.attributes {
        println!("  {key} = {}", value.as_str().map_or_else(|| value.to_string(), str::to_owned));
    }
    println!("hash:      {}", event.hash);
    println!();
    println!("{}", body.message);
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// How many of the newest events to show first
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: usize,
    /// Keep printing new events as they are committed
    #[arg(short, long)]
    follow: bool,
    /// IANA time zone for the table's times
    #[arg(long, default_value = "UTC")]
    tz: String,
}

pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let target = Target::open(&args.target, Access::Read).await?;
    let mut printer = args.output.printer(&args.tz)?;
    let head = target.head().await?;
    let start = (head - args.lines as i64).max(EventId::ZERO);
    let mut last = start;
    loop {
        let events = target.read_after(last, 1000).await?;
        for event in &events {
            printer.print(event)?;
            last = event.id;
        }
        if events.is_empty() {
            if !args.follow {
                break;
            }
            printer.flush()?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    printer.finish()
}
