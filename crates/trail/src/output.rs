//! How the CLI prints events: an aligned table by default, NDJSON (`--json`) or CSV (`--csv`).
//! The CSV columns are those of the event JSON; attributes and change are JSON in their cells.

use std::io::Write;
use trail_core::Event;
use trail_core::event::EventInput;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

pub use trail_core::export::CSV_HEADER;

pub struct Printer {
    format: Format,
    sink: Sink,
    tz: jiff::tz::TimeZone,
}

enum Sink {
    Plain(Box<dyn Write>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
}

impl Printer {
    /// Prints to `out`; table times are shown in `tz`.
    pub fn new(format: Format, mut out: Box<dyn Write>, tz: jiff::tz::TimeZone) -> anyhow::Result<Printer> {
        let sink = match format {
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(out);
                writer.write_record(CSV_HEADER)?;
                Sink::Csv(Box::new(writer))
            }
            Format::Table => {
                writeln!(
                    out,
                    "{:>8}  {:<19}  {:<12}  {:<8}  {:<16}  {:<7}  MESSAGE",
                    "ID", "TIME", "USER", "ACTION", "NAME", "SEV"
                )?;
                Sink::Plain(out)
            }
            Format::Json => Sink::Plain(out),
        };
        Ok(Printer { format, sink, tz })
    }

    pub fn print(&mut self, event: &Event) -> anyhow::Result<()> {
        match (&mut self.sink, self.format) {
            (Sink::Plain(out), Format::Json) => {
                serde_json::to_writer(&mut *out, event)?;
                out.write_all(b"\n")?;
            }
            (Sink::Csv(csv), _) => csv.write_record(trail_core::export::csv_fields(event))?,
            (Sink::Plain(out), _) => {
                let body = &event.body;
                let local = body.time.to_zoned(self.tz.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string();
                writeln!(
                    out,
                    "{:>8}  {:<19}  {:<12}  {:<8}  {:<16}  {:<7}  {}",
                    event.id,
                    local,
                    clip(&body.user, 12),
                    clip(&body.action, 8),
                    clip(&body.name, 16),
                    body.severity.name(),
                    body.summary()
                )?;
            }
        }
        Ok(())
    }

    /// Writes out what is buffered (a follower must see each event as it comes).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        match &mut self.sink {
            Sink::Plain(out) => out.flush()?,
            Sink::Csv(csv) => csv.flush()?,
        }
        Ok(())
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        self.flush()
    }
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(width - 1).collect();
        clipped.push('…');
        clipped
    }
}

/// One CSV record (with the header above) as an event input, for `import`.
pub fn event_input_from_csv(headers: &csv::StringRecord, record: &csv::StringRecord) -> anyhow::Result<EventInput> {
    trail_core::export::event_input_from_cells(headers, record).map_err(anyhow::Error::msg)
}
