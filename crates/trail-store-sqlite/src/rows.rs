//! Conversions between stored rows and domain events.

use rusqlite::{Row, Statement, params};
use trail_core::EventId;
use trail_core::{Event, EventBody, Outcome, Severity, chain, time};

pub fn outcome_code(outcome: Option<Outcome>) -> Option<i64> {
    outcome.map(|o| i64::from(o.code()))
}

/// The statement that inserts an [`EventRow`].
pub fn insert_sql() -> String {
    format!(
        "INSERT INTO events ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        crate::schema::EVENT_COLUMNS
    )
}

/// An event's row as the writer inserts it: its JSON columns made, its link in the chain given.
pub struct EventRow<'a> {
    id: EventId,
    body: &'a EventBody,
    attributes: String,
    change: Option<String>,
    hash: chain::Hash,
}

impl<'a> EventRow<'a> {
    pub fn of(id: EventId, body: &'a EventBody, hash: chain::Hash) -> rusqlite::Result<EventRow<'a>> {
        let json = |e: serde_json::Error| rusqlite::Error::ToSqlConversionFailure(e.into());
        let attributes = serde_json::to_string(&body.attributes).map_err(json)?;
        let change = body.change.as_ref().map(serde_json::to_string).transpose().map_err(json)?;
        Ok(EventRow { id, body, attributes, change, hash })
    }

    /// Runs `insert` (prepared from [`insert_sql`]) for this row.
    pub fn insert(&self, insert: &mut Statement<'_>) -> rusqlite::Result<()> {
        let body = self.body;
        insert.execute(params![
            self.id.get(),
            time::to_micros(body.time),
            body.user,
            body.client,
            body.process,
            body.kind,
            body.action,
            body.name,
            body.severity.code(),
            outcome_code(body.outcome),
            body.message,
            self.attributes,
            body.request_id,
            body.session_id,
            body.job_id,
            body.parent_id,
            self.change,
            &self.hash[..],
            body.submitted_by,
        ])?;
        Ok(())
    }
}

fn corrupt(column: usize, what: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, what.to_string().into())
}

/// Reads a row selected with [`crate::schema::EVENT_COLUMNS`].
pub fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let severity: u8 = row.get(8)?;
    let outcome: Option<i64> = row.get(9)?;
    let attributes: String = row.get(11)?;
    let change: Option<String> = row.get(16)?;
    let hash: Vec<u8> = row.get(17)?;
    let body = EventBody {
        time: time::from_micros(row.get(1)?),
        user: row.get(2)?,
        client: row.get(3)?,
        process: row.get(4)?,
        kind: row.get(5)?,
        action: row.get(6)?,
        name: row.get(7)?,
        severity: Severity::from_code(severity).ok_or_else(|| corrupt(8, format!("severity {severity}")))?,
        outcome: outcome
            .map(|code| Outcome::from_code(code).ok_or_else(|| corrupt(9, format!("outcome {code}"))))
            .transpose()?,
        message: row.get(10)?,
        attributes: serde_json::from_str(&attributes).map_err(|e| corrupt(11, e))?,
        request_id: row.get(12)?,
        session_id: row.get(13)?,
        job_id: row.get(14)?,
        parent_id: row.get(15)?,
        change: change.map(|c| serde_json::from_str(&c)).transpose().map_err(|e| corrupt(16, e))?,
        submitted_by: row.get(18)?,
    };
    let hash: chain::Hash = hash.try_into().map_err(|_| corrupt(17, "hash is not 32 bytes"))?;
    Ok(Event { id: row.get(0).map(EventId::new)?, body, hash: chain::to_hex(&hash) })
}
