//! `trail export` and `trail import`, in NDJSON or CSV, with progress bars. Import keeps the
//! original times and assigns new ids in this trail's chain.

use crate::commands::verify::progress_bar;
use crate::output::{self, Format, Printer};
use crate::target::{Access, Target, TargetArgs};
use anyhow::{Context, bail};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use trail_core::EventId;
use trail_core::request::event_from_json_line;
use trail_core::{EventBody, EventInput};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    Ndjson,
    Csv,
}

impl FileFormat {
    fn for_path(path: &Path, given: Option<FileFormat>) -> FileFormat {
        given.unwrap_or(if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            FileFormat::Csv
        } else {
            FileFormat::Ndjson
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// ndjson or csv [default: from --output's extension, else ndjson]
    #[arg(long)]
    format: Option<FileFormat>,
    /// File to write [default: standard output]
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let format = args
        .output
        .as_deref()
        .map_or(args.format.unwrap_or(FileFormat::Ndjson), |p| FileFormat::for_path(p, args.format));
    let out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let target = Target::open(&args.target, Access::Read).await?;
    if let Target::Remote { .. } = target {
        // Through the server's export, which records the export (A3).
        let mut out = out;
        let format = if format == FileFormat::Csv { "csv" } else { "ndjson" };
        target.download(&format!("/api/v1/export?all_users=true&format={format}"), &mut out).await?;
        out.flush()?;
        return Ok(());
    }
    let bar = progress_bar(target.head().await?.get().max(0) as u64, "exporting");
    let mut printer =
        Printer::new(if format == FileFormat::Csv { Format::Csv } else { Format::Json }, out, jiff::tz::TimeZone::UTC)?;
    write_events(&target, &mut printer, &bar).await?;
    printer.finish()?;
    bar.finish_and_clear();
    Ok(())
}

/// Prints every event of `target` in id order, counting them on `bar`.
pub async fn write_events(target: &Target, printer: &mut Printer, bar: &indicatif::ProgressBar) -> anyhow::Result<()> {
    target
        .each_chunk_after(EventId::ZERO, |events| {
            for event in events {
                printer.print(event)?;
            }
            bar.inc(events.len() as u64);
            Ok(true)
        })
        .await
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The file to import
    file: PathBuf,
    /// ndjson or csv [default: from the extension]
    #[arg(long)]
    format: Option<FileFormat>,
}

const BATCH: usize = 1000;

/// Reads the file's events one at a time; `visit` gets each validated event.
fn read_events(
    path: &Path,
    format: FileFormat,
    mut visit: impl FnMut(EventBody) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let now = jiff::Timestamp::now();
    match format {
        FileFormat::Ndjson => {
            for (index, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
                let line = line?;
                let text =
                    trail_core::event::decode_utf8("line", &line).with_context(|| format!("line {}", index + 1))?;
                if text.trim().is_empty() {
                    continue;
                }
                visit(event_from_json_line(text, now).with_context(|| format!("line {}", index + 1))?)?;
            }
        }
        FileFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new().from_reader(file);
            let headers = reader.headers().context("the CSV has no header line")?.clone();
            if let Some(unknown) = headers.iter().find(|h| !output::CSV_HEADER.contains(h)) {
                bail!("the CSV column {unknown:?} is unknown; the columns are {}", output::CSV_HEADER.join(","));
            }
            for (index, record) in reader.records().enumerate() {
                let line = index + 2;
                let record = record.with_context(|| format!("CSV record on line {line}"))?;
                let input: EventInput =
                    output::event_input_from_csv(&headers, &record).with_context(|| format!("line {line}"))?;
                visit(input.validate(now).with_context(|| format!("line {line}"))?)?;
            }
        }
    }
    Ok(())
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let format = FileFormat::for_path(&args.file, args.format);
    // First pass: every event must be valid before any is stored; a server takes none of the
    // kinds only Trail records, so such a file is refused whole before anything is sent.
    let remote = args.target.server.is_some();
    let mut total = 0u64;
    read_events(&args.file, format, |event| {
        total += 1;
        if remote && let Err(refused) = trail_core::request::refuse_trail_only(std::slice::from_ref(&event)) {
            bail!(
                "event {total}: {refused}; a server takes no such events: import this file into a data \
                 directory instead (--data, or --database)"
            );
        }
        Ok(())
    })
    .context("nothing was imported")?;
    let target = Target::open(&args.target, Access::Write).await?;
    let bar = progress_bar(total, "importing");
    let mut batch = Vec::with_capacity(BATCH);
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<EventBody>>(4);
    let path = args.file.clone();
    let reader = tokio::task::spawn_blocking(move || {
        read_events(&path, format, |event| {
            batch.push(event);
            if batch.len() == BATCH {
                sender.blocking_send(std::mem::take(&mut batch)).context("the importer stopped")?;
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            sender.blocking_send(batch).context("the importer stopped")?;
        }
        anyhow::Ok(())
    });
    let mut imported = 0;
    while let Some(events) = receiver.recv().await {
        let count = events.len() as u64;
        target.append(events).await.with_context(|| format!("after {imported} events were imported"))?;
        imported += count;
        bar.inc(count);
    }
    reader.await??;
    bar.finish_and_clear();
    println!("imported {imported} events from {}", args.file.display());
    Ok(())
}
