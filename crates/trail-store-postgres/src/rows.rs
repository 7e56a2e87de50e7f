//! Conversions between stored rows and domain events, and the multi-row insert.

use crate::{backend, corrupt};
use trail_core::chain::{self, Hash};
use trail_core::fold::fold;
use trail_core::{Event, EventBody, EventId, Outcome, Severity, time};
use trail_store::StoreError;

/// The columns of an event, in the order [`event_from_row`] reads them.
pub const COLUMNS: &str = "id, time, username, client, process, kind, action, name, severity, outcome, message, \
                           attributes, request_id, session_id, job_id, parent_id, change, hash, submitted_by";

/// The statement [`Rows::copy_in`] runs.
pub fn copy_sql() -> String {
    format!("COPY events ({INSERT_COLUMNS}) FROM STDIN BINARY")
}

/// Events as columns, written by `COPY ... FROM STDIN BINARY` or by one multi-row insert
/// (`UNNEST` of arrays). `trail bench --postgres` measures both (`measure.rs`); the writer uses
/// COPY, which was ahead in four runs of five (by 3.5-14%; behind by 3% in the other).
#[derive(Default)]
pub struct Rows {
    pub id: Vec<i64>,
    pub month: Vec<i32>,
    pub time: Vec<i64>,
    pub user: Vec<String>,
    pub client: Vec<Option<String>>,
    pub process: Vec<String>,
    pub kind: Vec<String>,
    pub action: Vec<String>,
    pub name: Vec<String>,
    pub severity: Vec<i16>,
    pub outcome: Vec<Option<i16>>,
    pub message: Vec<String>,
    pub message_folded: Vec<Option<String>>,
    pub attributes: Vec<String>,
    pub request_id: Vec<Option<String>>,
    pub session_id: Vec<Option<String>>,
    pub job_id: Vec<Option<String>>,
    pub parent_id: Vec<Option<String>>,
    pub change: Vec<Option<String>>,
    pub hash: Vec<Vec<u8>>,
    pub submitted_by: Vec<Option<String>>,
}

/// The columns [`Rows`] writes, in its order.
pub const INSERT_COLUMNS: &str = "id, month, time, username, client, process, kind, action, name, severity, outcome, \
                                  message, message_folded, attributes, request_id, session_id, job_id, parent_id, \
                                  change, hash, submitted_by";

impl Rows {
    pub fn len(&self) -> usize {
        self.id.len()
    }

    /// Adds one event, already numbered, chained and placed in its month.
    pub fn push(&mut self, id: EventId, month: i32, body: &EventBody, hash: &Hash) -> Result<(), StoreError> {
        self.id.push(id.get());
        self.month.push(month);
        self.time.push(time::to_micros(body.time));
        self.user.push(body.user.clone());
        self.client.push(body.client.clone());
        self.process.push(body.process.clone());
        self.kind.push(body.kind.clone());
        self.action.push(body.action.clone());
        self.name.push(body.name.clone());
        self.severity.push(i16::from(body.severity.code()));
        self.outcome.push(body.outcome.map(|o| i16::from(o.code())));
        self.message.push(body.message.clone());
        self.message_folded.push(match fold(&body.message) {
            std::borrow::Cow::Borrowed(_) => None,
            std::borrow::Cow::Owned(folded) => Some(folded),
        });
        self.attributes.push(serde_json::to_string(&body.attributes).map_err(backend)?);
        self.request_id.push(body.request_id.clone());
        self.session_id.push(body.session_id.clone());
        self.job_id.push(body.job_id.clone());
        self.parent_id.push(body.parent_id.clone());
        self.change.push(body.change.as_ref().map(serde_json::to_string).transpose().map_err(backend)?);
        self.hash.push(hash.to_vec());
        self.submitted_by.push(body.submitted_by.clone());
        Ok(())
    }

    /// The same rows by one `INSERT ... SELECT * FROM UNNEST(...)`.
    pub async fn insert(&self, client: &impl deadpool_postgres::GenericClient) -> Result<(), tokio_postgres::Error> {
        let sql = format!(
            "INSERT INTO events ({INSERT_COLUMNS}) SELECT * FROM UNNEST($1::bigint[], $2::integer[], $3::bigint[], \
             $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::smallint[], $11::smallint[], \
             $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], \
             $20::bytea[], $21::text[])"
        );
        client
            .execute(
                &sql,
                &[
                    &self.id,
                    &self.month,
                    &self.time,
                    &self.user,
                    &self.client,
                    &self.process,
                    &self.kind,
                    &self.action,
                    &self.name,
                    &self.severity,
                    &self.outcome,
                    &self.message,
                    &self.message_folded,
                    &self.attributes,
                    &self.request_id,
                    &self.session_id,
                    &self.job_id,
                    &self.parent_id,
                    &self.change,
                    &self.hash,
                    &self.submitted_by,
                ],
            )
            .await
            .map(|_| ())
    }

    /// The same rows by `COPY ... FROM STDIN BINARY`, through `copy` (the statement [`copy_sql`]
    /// prepared: the writer prepares it once per connection, not once per commit).
    pub async fn copy_in(
        &self,
        client: &tokio_postgres::Client,
        copy: &tokio_postgres::Statement,
    ) -> Result<(), tokio_postgres::Error> {
        use tokio_postgres::types::{ToSql, Type};
        let sink = client.copy_in(copy).await?;
        let types = [
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
        let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
        let mut writer = std::pin::pin!(writer);
        for i in 0..self.len() {
            let row: [&(dyn ToSql + Sync); 21] = [
                &self.id[i],
                &self.month[i],
                &self.time[i],
                &self.user[i],
                &self.client[i],
                &self.process[i],
                &self.kind[i],
                &self.action[i],
                &self.name[i],
                &self.severity[i],
                &self.outcome[i],
                &self.message[i],
                &self.message_folded[i],
                &self.attributes[i],
                &self.request_id[i],
                &self.session_id[i],
                &self.job_id[i],
                &self.parent_id[i],
                &self.change[i],
                &self.hash[i],
                &self.submitted_by[i],
            ];
            writer.as_mut().write(&row).await?;
        }
        writer.finish().await.map(|_| ())
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
