//! What a sender's events go through: an API body, an NDJSON line, and the CSV an export writes
//! and an import reads. Every accepted event survives each of its forms unchanged; every
//! refusal says what was wrong; a body and the same object as an NDJSON line are judged alike.

use trail_core::event::{EventBody, EventInput};
use trail_core::export::{CSV_HEADER, csv_fields, event_input_from_cells};
use trail_core::request::{event_from_json_line, events_from_json, refuse_trail_only};
use trail_core::{Event, EventId};

pub fn run(data: &[u8]) {
    let now: jiff::Timestamp = "2026-11-29T12:00:00Z".parse().expect("a time");
    let batch = events_from_json(data, now);
    if let Err(error) = &batch {
        assert!(!error.to_string().contains("could not be read as events"), "an unexplained refusal: {error}");
    }
    for body in batch.iter().flatten() {
        assert_eq!(&through_json(body, now), body, "the API's JSON of an event does not read back as it");
        assert_eq!(&through_csv(body, now), body, "the CSV of an event does not read back as it");
    }
    if let Some(line) = crate::text(data).filter(|line| line.trim_start().starts_with('{')) {
        let single = event_from_json_line(line, now);
        let as_body = batch.map(|mut events| events.remove(0));
        match (&single, &as_body) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "a line and a body read the same object differently"),
            (Ok(event), Err(_)) => assert!(
                refuse_trail_only(std::slice::from_ref(event)).is_err(),
                "a line accepts what a body refuses: {as_body:?}"
            ),
            (Err(_), Ok(_)) => panic!("a body accepts what a line refuses: {single:?}"),
            (Err(_), Err(_)) => {}
        }
    }
}

fn through_json(body: &EventBody, now: jiff::Timestamp) -> EventBody {
    let json = serde_json::to_value(body).expect("an event serializes");
    let input: EventInput = serde_json::from_value(json).expect("an event reads back as input");
    input.validate(now).expect("a stored event validates again")
}

fn through_csv(body: &EventBody, now: jiff::Timestamp) -> EventBody {
    let event = Event { id: EventId::new(1), body: body.clone(), hash: "00".repeat(32) };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER).expect("csv");
    writer.write_record(csv_fields(&event)).expect("csv");
    let bytes = writer.into_inner().expect("csv");
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader.headers().expect("the header row").clone();
    let record = reader.records().next().expect("one row").expect("a row");
    let input = event_input_from_cells(&headers, &record).unwrap_or_else(|error| panic!("{error}"));
    input.validate(now).expect("an exported event validates again")
}
