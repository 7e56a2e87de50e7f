//! Conversions between stored rows and domain events, and the multi-row insert.

use crate::{backend, corrupt, pg};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use trail_core::chain::{self, Hash};
use trail_core::fold::fold_beyond_ascii;
use trail_core::{Event, EventBody, EventId, Outcome, Severity, time};
use trail_store::StoreError;

/// The columns of an event, in the order [`event_from_row`] reads them.
pub const COLUMNS: &str = "id, time, username, client, process, kind, action, name, severity, outcome, message, \
                           attributes, request_id, session_id, job_id, parent_id, change, hash, submitted_by";

/// The statement [`CopyIn`] runs.
pub fn copy_sql() -> String {
    format!("COPY events ({INSERT_COLUMNS}) FROM STDIN BINARY")
}

/// The columns the writer inserts, in the order [`CopyIn::write`] and [`Rows::insert`] give them.
pub const INSERT_COLUMNS: &str = "id, month, time, username, client, process, kind, action, name, severity, outcome, \
                                  message, message_folded, attributes, request_id, session_id, job_id, parent_id, \
                                  change, hash, submitted_by";

/// One event, numbered, chained and placed in its month.
pub struct Numbered<'a> {
    pub id: EventId,
    pub month: i32,
    pub body: &'a EventBody,
    pub hash: Hash,
}

/// What an event stores beside its own fields: its message case-folded (only where lower-casing
/// its ASCII letters, which searches do in SQL, would not fold it), and its attributes and change
/// as JSON.
struct Derived {
    message_folded: Option<String>,
    attributes: String,
    change: Option<String>,
}

impl Derived {
    fn of(body: &EventBody) -> Result<Derived, StoreError> {
        Ok(Derived {
            message_folded: fold_beyond_ascii(&body.message),
            attributes: serde_json::to_string(&body.attributes).map_err(backend)?,
            change: body.change.as_ref().map(serde_json::to_string).transpose().map_err(backend)?,
        })
    }
}

/// Events copied into `events` by `COPY ... FROM STDIN BINARY`, row by row: the writer numbers
/// and hashes each event as it goes, and PostgreSQL inserts the first rows meanwhile.
pub struct CopyIn {
    writer: std::pin::Pin<Box<BinaryCopyInWriter>>,
}

const COPY_TYPES: [Type; 21] = [
    Type::INT8,
    Type::INT4,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
    Type::TEXT,
];

impl CopyIn {
    /// Starts the COPY of `copy` (the statement [`copy_sql`], prepared: the writer prepares it
    /// once per connection, not once per commit).
    pub async fn start(
        client: &tokio_postgres::Client,
        copy: &tokio_postgres::Statement,
    ) -> Result<CopyIn, StoreError> {
        let sink = client.copy_in(copy).await.map_err(pg)?;
        Ok(CopyIn { writer: Box::pin(BinaryCopyInWriter::new(sink, &COPY_TYPES)) })
    }

    pub async fn write(&mut self, row: &Numbered<'_>) -> Result<(), StoreError> {
        let (body, derived) = (row.body, Derived::of(row.body)?);
        let (id, time, hash) = (row.id.get(), time::to_micros(body.time), &row.hash[..]);
        let (severity, outcome) = (i16::from(body.severity.code()), body.outcome.map(|o| i16::from(o.code())));
        let values: [&(dyn ToSql + Sync); 21] = [
            &id,
            &row.month,
            &time,
            &body.user,
            &body.client,
            &body.process,
            &body.kind,
            &body.action,
            &body.name,
            &severity,
            &outcome,
            &body.message,
            &derived.message_folded,
            &derived.attributes,
            &body.request_id,
            &body.session_id,
            &body.job_id,
            &body.parent_id,
            &derived.change,
            &hash,
            &body.submitted_by,
        ];
        self.writer.as_mut().write(&values).await.map_err(pg)
    }

    pub async fn finish(mut self) -> Result<(), StoreError> {
        self.writer.as_mut().finish().await.map(|_| ()).map_err(pg)
    }
}

/// Numbered events gathered before they are inserted (`trail migrate`'s import, and the
/// benchmark's comparison of `COPY` with one multi-row insert of `UNNEST`ed arrays).
#[derive(Default)]
pub struct Rows<'a> {
    pub rows: Vec<Numbered<'a>>,
}

impl<'a> Rows<'a> {
    pub fn push(&mut self, id: EventId, month: i32, body: &'a EventBody, hash: &Hash) {
        self.rows.push(Numbered { id, month, body, hash: *hash });
    }

    /// The months the rows fall in.
    pub fn months(&self) -> std::collections::BTreeSet<i32> {
        self.rows.iter().map(|row| row.month).collect()
    }

    /// The rows by `COPY` (see [`CopyIn`]).
    pub async fn copy_in(
        &self,
        client: &tokio_postgres::Client,
        copy: &tokio_postgres::Statement,
    ) -> Result<(), StoreError> {
        let mut stream = CopyIn::start(client, copy).await?;
        for row in &self.rows {
            stream.write(row).await?;
        }
        stream.finish().await
    }

    /// The same rows by one `INSERT ... SELECT * FROM UNNEST(...)`, for the benchmark.
    pub async fn insert(&self, client: &impl deadpool_postgres::GenericClient) -> Result<(), StoreError> {
        let rows = &self.rows;
        let derived: Vec<Derived> = rows.iter().map(|row| Derived::of(row.body)).collect::<Result<_, _>>()?;
        let column = |f: fn(&EventBody) -> &str| rows.iter().map(|r| f(r.body)).collect::<Vec<&str>>();
        let optional =
            |f: fn(&EventBody) -> &Option<String>| rows.iter().map(|r| f(r.body).as_deref()).collect::<Vec<_>>();
        let sql = format!(
            "INSERT INTO events ({INSERT_COLUMNS}) SELECT * FROM UNNEST($1::bigint[], $2::integer[], $3::bigint[], \
             $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::smallint[], $11::smallint[], \
             $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], \
             $20::bytea[], $21::text[])"
        );
        let ids: Vec<i64> = rows.iter().map(|r| r.id.get()).collect();
        let months: Vec<i32> = rows.iter().map(|r| r.month).collect();
        let times: Vec<i64> = rows.iter().map(|r| time::to_micros(r.body.time)).collect();
        let severities: Vec<i16> = rows.iter().map(|r| i16::from(r.body.severity.code())).collect();
        let outcomes: Vec<Option<i16>> = rows.iter().map(|r| r.body.outcome.map(|o| i16::from(o.code()))).collect();
        let folded: Vec<Option<&str>> = derived.iter().map(|d| d.message_folded.as_deref()).collect();
        let attributes: Vec<&str> = derived.iter().map(|d| d.attributes.as_str()).collect();
        let changes: Vec<Option<&str>> = derived.iter().map(|d| d.change.as_deref()).collect();
        let hashes: Vec<&[u8]> = rows.iter().map(|r| &r.hash[..]).collect();
        let values: [&(dyn ToSql + Sync); 21] = [
            &ids,
            &months,
            &times,
            &column(|b| &b.user),
            &optional(|b| &b.client),
            &column(|b| &b.process),
            &column(|b| &b.kind),
            &column(|b| &b.action),
            &column(|b| &b.name),
            &severities,
            &outcomes,
            &column(|b| &b.message),
            &folded,
            &attributes,
            &optional(|b| &b.request_id),
            &optional(|b| &b.session_id),
            &optional(|b| &b.job_id),
            &optional(|b| &b.parent_id),
            &changes,
            &hashes,
            &optional(|b| &b.submitted_by),
        ];
        client.execute(&sql, &values).await.map(|_| ()).map_err(pg)
    }
}

/// Reads a row selected with [`COLUMNS`].
pub fn event_from_row(row: &tokio_postgres::Row) -> Result<Event, StoreError> {
    let id: i64 = row.get(0);
    let severity: i16 = row.get(8);
    let outcome: Option<i16> = row.get(9);
    let attributes: &str = row.get(11);
    let change: Option<&str> = row.get(16);
    let hash: &[u8] = row.get(17);
    let body = EventBody {
        time: time::from_micros(row.get(1)),
        user: row.get(2),
        client: row.get(3),
        process: row.get(4),
        kind: row.get(5),
        action: row.get(6),
        name: row.get(7),
        severity: u8::try_from(severity)
            .ok()
            .and_then(Severity::from_code)
            .ok_or_else(|| corrupt(format!("event {id}: severity {severity}")))?,
        outcome: outcome
            .map(|code| Outcome::from_code(code.into()).ok_or_else(|| corrupt(format!("event {id}: outcome {code}"))))
            .transpose()?,
        message: row.get(10),
        attributes: serde_json::from_str(attributes).map_err(|e| corrupt(format!("event {id}: {e}")))?,
        request_id: row.get(12),
        session_id: row.get(13),
        job_id: row.get(14),
        parent_id: row.get(15),
        change: change.map(serde_json::from_str).transpose().map_err(|e| corrupt(format!("event {id}: {e}")))?,
        submitted_by: row.get(18),
    };
    let hash = hash_from(hash, &format!("event {id}"))?;
    Ok(Event { id: EventId::new(id), body, hash: chain::to_hex(&hash) })
}

/// A stored hash, or why it is damaged.
pub fn hash_from(bytes: &[u8], what: &str) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| corrupt(format!("{what}: the hash is not 32 bytes")))
}
