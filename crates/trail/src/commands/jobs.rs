//! `trail jobs` (list, show, log) and `trail device` (archive, inventory, restore, commit):
//! operations through a server.

use crate::target::{Access, Target, TargetArgs};
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use trail_core::JobId;

#[derive(clap::Args, Debug)]
pub struct JobsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Print JSON instead of text
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: JobsAction,
}

#[derive(clap::Subcommand, Debug)]
enum JobsAction {
    /// Submit a job (platforms usually do this through the API)
    Submit {
        name: String,
        /// A target (repeatable); one leaf operation each
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
    },
    /// Jobs, newest first, with their leaves counted
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One job with every target's status
    Show { id: JobId },
    /// A job's log, oldest first
    Log {
        id: JobId,
        /// Only this target's lines
        #[arg(long)]
        target: Option<String>,
        /// Only entries matching (case-insensitive; % and _ wildcards)
        #[arg(long)]
        grep: Option<String>,
        /// Entries after this number
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many entries [default: all]
        #[arg(long)]
        limit: Option<usize>,
    },
}

async fn server(args: &TargetArgs, what: &str) -> anyhow::Result<Target> {
    if args.server.is_none() {
        bail!("{what} go through a server: pass --server (or set TRAIL_SERVER)");
    }
    Target::open(args, Access::Read).await
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

fn counts(job: &Value) -> String {
    let c = &job["counts"];
    format!("{}/{}/{}/{}/{}", c["queued"], c["running"], c["succeeded"], c["failed"], c["cancelled"])
}

pub async fn jobs(args: JobsArgs) -> anyhow::Result<()> {
    let target = server(&args.target, "jobs").await?;
    match args.action {
        JobsAction::Submit { name, targets } => {
            let body = json!({"name": name, "targets": targets});
            let created = target.call_json(Method::POST, "/api/v1/jobs", Some(body)).await?;
            println!("job {}", created["id"]);
        }
        JobsAction::List { limit } => {
            let listed = target.call_json(Method::GET, &format!("/api/v1/jobs?limit={limit}"), None).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&listed["jobs"])?);
                return Ok(());
            }
            println!(
                "{:>6}  {:<32}  {:<12}  {:<27}  {:<9}  Q/R/S/F/C",
                "ID", "NAME", "SUBMITTER", "SUBMITTED", "STATUS"
            );
            for job in listed["jobs"].as_array().into_iter().flatten() {
                println!(
                    "{:>6}  {:<32}  {:<12}  {:<27}  {:<9}  {}",
                    job["id"],
                    text(&job["name"]),
                    text(&job["submitter"]),
                    text(&job["submitted_at"]),
                    text(&job["status"]),
                    counts(job)
                );
            }
        }
        JobsAction::Show { id } => {
            let job = target.call_json(Method::GET, &format!("/api/v1/jobs/{id}"), None).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&job)?);
                return Ok(());
            }
            println!("job {id}: {} ({})", text(&job["name"]), text(&job["status"]));
            println!(
                "submitted by {} at {}, event {}",
                text(&job["submitter"]),
                text(&job["submitted_at"]),
                job["submit_event_id"]
            );
            println!("\n{:<24}  {:<9}  {:<27}  {:>8}  MESSAGE", "TARGET", "STATUS", "UPDATED", "EVENT");
            for leaf in job["leaves"].as_array().into_iter().flatten() {
                let message = leaf["message"].as_str().unwrap_or("").lines().next().unwrap_or("");
                let event = leaf["event_id"].as_i64().map_or("-".to_owned(), |e| e.to_string());
                println!(
                    "{:<24}  {:<9}  {:<27}  {event:>8}  {message}",
                    text(&leaf["target"]),
                    text(&leaf["status"]),
                    text(&leaf["updated_at"])
                );
            }
        }
        JobsAction::Log { id, target: leaf, grep, mut after, limit } => {
            let mut printed = 0;
            loop {
                let page_size = limit.map_or(1000, |l| (l - printed).min(1000));
                let mut query = vec![("after", after.to_string()), ("limit", page_size.to_string())];
                query.extend(leaf.clone().map(|t| ("target", t)));
                query.extend(grep.clone().map(|q| ("q", q)));
                let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(&query).finish();
                let page = target.call_json(Method::GET, &format!("/api/v1/jobs/{id}/log?{query}"), None).await?;
                for entry in page["entries"].as_array().into_iter().flatten() {
                    printed += 1;
                    if args.json {
                        println!("{entry}");
                    } else {
                        let target = entry["target"].as_str().map_or(String::new(), |t| format!(" [{t}]"));
                        println!("{:>7} {}{target} {}", entry["seq"], text(&entry["time"]), text(&entry["text"]));
                    }
                }
                match page["next_after"].as_i64() {
                    Some(next) if limit.is_none_or(|l| printed < l) => after = next,
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

/// A device name as one path segment.
fn percent(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(clap::Args, Debug)]
pub struct DeviceArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    action: DeviceAction,
}

/// What every device result may carry.
#[derive(clap::Args, Debug)]
struct ResultArgs {
    /// The device
    name: String,
    /// The job this result belongs to
    #[arg(long)]
    job: Option<JobId>,
    /// The user's request behind it
    #[arg(long)]
    request_id: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum DeviceAction {
    /// An archive completed: recorded only when new or changed
    Archive {
        #[command(flatten)]
        result: ResultArgs,
        /// The configuration file (- for standard input)
        #[arg(long, required_unless_present = "failed")]
        config: Option<PathBuf>,
        /// The archive failed, for this reason
        #[arg(long)]
        failed: Option<String>,
    },
    /// An inventory scan completed: recorded only when new or changed
    Inventory {
        #[command(flatten)]
        result: ResultArgs,
        /// The inventory document, JSON (- for standard input)
        #[arg(long, required_unless_present = "failed")]
        file: Option<PathBuf>,
        #[arg(long)]
        failed: Option<String>,
    },
    /// A restore completed
    Restore {
        #[command(flatten)]
        result: ResultArgs,
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    /// A configuration committed
    Commit {
        #[command(flatten)]
        result: ResultArgs,
        /// The diff file (- for standard input)
        #[arg(long)]
        diff: PathBuf,
        #[arg(long)]
        comment: Option<String>,
    },
    /// The device's latest archive and inventory
    Show { name: String },
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn failure(body: &mut Value, failed: Option<String>) {
    if let Some(reason) = failed {
        body["outcome"] = json!("failure");
        body["message"] = json!(reason);
    }
}

pub async fn device(args: DeviceArgs) -> anyhow::Result<()> {
    let target = server(&args.target, "device results").await?;
    let (path, result, mut body) = match args.action {
        DeviceAction::Show { name } => {
            let shown = target.call_json(Method::GET, &format!("/api/v1/devices/{}", percent(&name)), None).await?;
            println!("{}", serde_json::to_string_pretty(&shown)?);
            return Ok(());
        }
        DeviceAction::Archive { result, config, failed } => {
            let mut body = json!({});
            if let Some(config) = &config {
                body["config"] = json!(read(config)?);
            }
            failure(&mut body, failed);
            ("archive", result, body)
        }
        DeviceAction::Inventory { result, file, failed } => {
            let mut body = json!({});
            if let Some(file) = &file {
                let document: Value = serde_json::from_str(&read(file)?).context("the inventory is not JSON")?;
                body["inventory"] = document;
            }
            failure(&mut body, failed);
            ("inventory", result, body)
        }
        DeviceAction::Restore { result, source, comment } => {
            ("restore", result, json!({"source": source, "comment": comment}))
        }
        DeviceAction::Commit { result, diff, comment } => {
            ("commit", result, json!({"diff": read(&diff)?, "comment": comment}))
        }
    };
    body["job"] = json!(result.job);
    body["request_id"] = json!(result.request_id);
    let answer = target
        .call_json(Method::POST, &format!("/api/v1/devices/{}/{path}", percent(&result.name)), Some(body))
        .await?;
    match answer["event_id"].as_i64() {
        Some(id) => println!("recorded: event {id}"),
        None => println!("unchanged: no event (last seen {})", text(&answer["last_seen"])),
    }
    Ok(())
}
