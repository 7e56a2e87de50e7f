//! The events operations record, worded by the catalog: jobs, leaves, and device results.

use super::inventory::InventoryDiff;
use super::{Job, JobId, Status, Transition};
use crate::content::StoredContent;
use crate::{EventBody, EventId, EventInput, Outcome};
use jiff::Timestamp;

/// Who asked, from where, and as part of what: the correlation every operation event carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub user: String,
    pub client: Option<String>,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    /// The job this is part of, and its JOB_SUBMITTED event (the parent of what it records).
    pub job: Option<(JobId, EventId)>,
    /// The credential that caused it (see [`crate::event::submitted_by`]).
    pub submitted_by: String,
}

impl Origin {
    /// Refuses a request id the events could not carry (the one part a caller chooses).
    pub fn check(&self) -> Result<(), super::JobError> {
        if let Some(request) = &self.request_id {
            let length = request.chars().count();
            if length > crate::event::limits::CORRELATION_CHARS || request.chars().any(char::is_control) {
                return Err(super::JobError::Invalid(format!(
                    "request_id must be at most {} characters without control characters, got {length}",
                    crate::event::limits::CORRELATION_CHARS
                )));
            }
        }
        Ok(())
    }

    /// The job's own events: the submitter's, in the job.
    pub fn of_job(job: &Job) -> Origin {
        Origin {
            user: job.submitter.clone(),
            client: None,
            request_id: job.request_id.clone(),
            session_id: job.session_id.clone(),
            job: Some((job.id, job.submit_event_id)),
            submitted_by: crate::event::submitted_by::TRAIL.to_owned(),
        }
    }
}

/// A rendered diff is capped below the event limit; the content itself is stored whole, and the
/// message says where it was cut.
const MESSAGE_BUDGET: usize = 768 * 1024;

fn fit(mut message: String, whole: &str) -> String {
    if message.len() <= MESSAGE_BUDGET {
        return message;
    }
    let end = crate::event::prefix_within(&message, MESSAGE_BUDGET).len();
    message.truncate(end);
    message
        .push_str(&format!("\n… cut at {MESSAGE_BUDGET} bytes; the whole {whole} is stored as the device's content"));
    message
}

#[allow(clippy::too_many_arguments)]
fn build(
    kind: &str,
    origin: &Origin,
    name: &str,
    outcome: Option<Outcome>,
    message: String,
    attributes: &[(&str, String)],
    time: Timestamp,
) -> EventBody {
    let attributes = attributes.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone()))).collect();
    let input = EventInput {
        time: Some(crate::time::format_rfc3339(time)),
        user: Some(origin.user.clone()),
        client: origin.client.clone(),
        kind: Some(kind.to_owned()),
        name: Some(name.to_owned()),
        outcome,
        message: Some(message),
        attributes: Some(attributes),
        request_id: origin.request_id.clone(),
        session_id: origin.session_id.clone(),
        job_id: origin.job.map(|(job, _)| job.to_string()),
        parent_id: origin.job.map(|(_, parent)| parent.to_string()),
        ..EventInput::default()
    };
    let mut body = input.validate(time).expect("operation events are built from checked parts");
    body.submitted_by = Some(origin.submitted_by.clone());
    body
}

fn listed(items: &[String], most: usize) -> String {
    let mut text = items.iter().take(most).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > most {
        text.push_str(&format!(" and {} more", items.len() - most));
    }
    text
}

/// JOB_SUBMITTED. Built before the job has its events, so it takes the id and the origin.
pub fn job_submitted(id: JobId, name: &str, targets: &[String], origin: &Origin, time: Timestamp) -> EventBody {
    let origin = Origin { job: None, ..origin.clone() };
    let message =
        format!("Job {name} submitted by {}\ntargets ({}): {}", origin.user, targets.len(), listed(targets, 50));
    let mut body =
        build("JOB_SUBMITTED", &origin, name, None, message, &[("targets", targets.len().to_string())], time);
    body.job_id = Some(id.to_string());
    body
}

/// JOB_SUBMITTED for a job just stored under `id`, from whoever submitted it.
pub fn submission(id: JobId, job: &super::NewJob) -> EventBody {
    let origin = Origin {
        user: job.submitter.clone(),
        client: job.client.clone(),
        request_id: job.request_id.clone(),
        session_id: job.session_id.clone(),
        job: None,
        submitted_by: job.submitted_by.clone(),
    };
    job_submitted(id, &job.name, &job.targets, &origin, job.submitted_at)
}

/// OPERATION_STATUS: the job's first leaf started.
pub fn job_started(job: &Job, time: Timestamp) -> EventBody {
    let message = format!("Operation {}: running", job.name);
    build("OPERATION_STATUS", &Origin::of_job(job), &job.name, None, message, &[("status", "running".into())], time)
}

/// LEAF_OPERATION_COMPLETED: a target's final status, named by the target.
pub fn leaf_completed(job: &Job, transition: &Transition, message: &str, time: Timestamp) -> EventBody {
    let status = transition.to.name();
    let mut text = format!("Operation {} on {} finished: {status}", job.name, transition.target);
    if !message.is_empty() {
        text.push('\n');
        text.push_str(message);
    }
    let attributes = [("status", status.to_owned()), ("job", job.name.clone())];
    build(
        "LEAF_OPERATION_COMPLETED",
        &Origin::of_job(job),
        &transition.target,
        transition.to.outcome(),
        text,
        &attributes,
        time,
    )
}

/// OPERATION_COMPLETED: the whole job's final status and its counts.
pub fn job_completed(job: &Job, status: Status, time: Timestamp) -> EventBody {
    let counts = job.counts();
    let (succeeded, failed, cancelled) = (counts[2], counts[3], counts[4]);
    let message = format!(
        "Operation {} finished: {}\nsucceeded {succeeded}, failed {failed}, cancelled {cancelled} of {} targets",
        job.name,
        status.name(),
        job.leaves.len()
    );
    let attributes = [
        ("status", status.name().to_owned()),
        ("succeeded", succeeded.to_string()),
        ("failed", failed.to_string()),
        ("cancelled", cancelled.to_string()),
    ];
    build("OPERATION_COMPLETED", &Origin::of_job(job), &job.name, status.outcome(), message, &attributes, time)
}

/// The events a status report records, in order: the job's start, the leaf's final status, the
/// job's final status, as the transition says.
/// The events a status report records, each naming the credential that sent the report: the
/// job's events follow from whoever reports, not from the submitter.
pub fn report_events(job: &Job, transition: &Transition, report: &super::StatusReport) -> Vec<EventBody> {
    let (message, time) = (report.message.as_str(), report.time);
    let mut events = Vec::new();
    if transition.job_started {
        events.push(job_started(job, time));
    }
    if transition.leaf_finished {
        events.push(leaf_completed(job, transition, message, time));
    }
    if let Some(status) = transition.job_finished {
        events.push(job_completed(job, status, time));
    }
    for event in &mut events {
        event.submitted_by = Some(report.submitted_by.clone());
    }
    events
}

/// Once the report's events are stored (`event_ids`, in the order of [`report_events`]): the
/// leaf's final event and the job's completion event.
pub fn settle_report(job: &mut Job, transition: &Transition, event_ids: &[EventId]) {
    if transition.leaf_finished
        && let Some(leaf) = job.leaves.iter_mut().find(|l| l.target == transition.target)
    {
        leaf.event_id = event_ids.get(usize::from(transition.job_started)).copied();
    }
    if transition.job_finished.is_some() {
        job.completed_event_id = event_ids.last().copied();
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// ARCHIVE_COMPLETED for a first or changed configuration, with the unified diff against the
/// previous archive.
pub fn archive_changed(
    device: &str,
    previous: Option<&StoredContent>,
    config: &str,
    hash: &str,
    origin: &Origin,
    time: Timestamp,
) -> EventBody {
    let lines = config.lines().count();
    let (message, mut attributes) = match previous {
        None => (
            format!("Archive of {device} completed\nfirst archive: {lines} lines, sha256 {}", short(hash)),
            vec![("lines", lines.to_string())],
        ),
        Some(previous) => {
            let (from, to) = (format!("previous {}", short(&previous.hash)), format!("current {}", short(hash)));
            let crate::diff::LineDiff { unified, added, removed } =
                crate::diff::unified(&previous.content, config, Some((&from, &to)));
            // A configuration may hold control characters (a banner's ^C): shown escaped.
            let unified = super::printable(&unified.replace("\r\n", "\n"), &['\n', '\t']);
            (
                format!(
                    "Archive of {device} completed\nconfiguration changed since {}: +{added} -{removed} lines\n\n{unified}",
                    crate::time::format_rfc3339(previous.changed_at)
                ),
                vec![
                    ("added", added.to_string()),
                    ("removed", removed.to_string()),
                    ("previous_hash", previous.hash.clone()),
                ],
            )
        }
    };
    attributes.push(("hash", hash.to_owned()));
    build("ARCHIVE_COMPLETED", origin, device, Some(Outcome::Success), fit(message, "configuration"), &attributes, time)
}

/// INVENTORY_SCAN_COMPLETED for a first or changed inventory, with the structured diff.
pub fn inventory_changed(
    device: &str,
    previous: Option<&StoredContent>,
    document: &serde_json::Value,
    hash: &str,
    origin: &Origin,
    time: Timestamp,
) -> EventBody {
    let empty = serde_json::Value::Object(Default::default());
    let before = previous.and_then(|p| serde_json::from_str(&p.content).ok()).unwrap_or(empty);
    let diff = InventoryDiff::between(&before, document);
    let headline = match previous {
        None => format!("first inventory: {} items", diff.added.len()),
        Some(_) => format!(
            "inventory changed: {} added, {} removed, {} changed",
            diff.added.len(),
            diff.removed.len(),
            diff.changed.len()
        ),
    };
    let message = format!("Inventory scan of {device} completed\n{headline}\n\n{}", diff.render());
    let attributes = [
        ("added", diff.added.len().to_string()),
        ("removed", diff.removed.len().to_string()),
        ("changed", diff.changed.len().to_string()),
        ("hash", hash.to_owned()),
    ];
    build(
        "INVENTORY_SCAN_COMPLETED",
        origin,
        device,
        Some(Outcome::Success),
        fit(message, "inventory"),
        &attributes,
        time,
    )
}

/// A device result reported as failed: always an event, and nothing is recorded as content.
pub fn failed(kind: &str, device: &str, summary: &str, reason: &str, origin: &Origin, time: Timestamp) -> EventBody {
    let message = format!("{summary} failed\n{reason}");
    build(kind, origin, device, Some(Outcome::Failure), message, &[], time)
}

/// RESTORE_COMPLETED: always an event.
pub fn restored(
    device: &str,
    source: Option<&str>,
    comment: Option<&str>,
    outcome: Outcome,
    origin: &Origin,
    time: Timestamp,
) -> EventBody {
    let mut message = format!("Configuration restored on {device}");
    let mut attributes = Vec::new();
    if let Some(source) = source {
        message.push_str(&format!("\nsource: {source}"));
        attributes.push(("source", source.to_owned()));
    }
    if let Some(comment) = comment {
        message.push_str(&format!("\ncomment: {comment}"));
    }
    build("RESTORE_COMPLETED", origin, device, Some(outcome), message, &attributes, time)
}

/// CONFIG_COMMITTED: always an event, with its diff and comment (sizes checked at the edge:
/// see [`super::limits`]).
pub fn committed(
    device: &str,
    diff: &str,
    comment: Option<&str>,
    outcome: Outcome,
    origin: &Origin,
    time: Timestamp,
) -> EventBody {
    let mut message = format!("Configuration committed to {device}");
    if let Some(comment) = comment {
        message.push_str(&format!("\ncomment: {comment}"));
    }
    message.push_str("\n\n");
    message.push_str(diff);
    let lines = [("diff_lines", diff.lines().count().to_string())];
    build("CONFIG_COMMITTED", origin, device, Some(outcome), message, &lines, time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_archive_carries_its_unified_diff() {
        let previous = StoredContent {
            hash: "a".repeat(64),
            content: "hostname edge1\nntp server 192.0.2.1\nsnmp community x\n".into(),
            changed_at: Timestamp::UNIX_EPOCH,
            seen_at: Timestamp::UNIX_EPOCH,
        };
        let origin = Origin { user: "alice".into(), job: Some((JobId::new(7), EventId::new(3))), ..Origin::default() };
        let event = archive_changed(
            "edge1",
            Some(&previous),
            "hostname edge1\nntp server 192.0.2.2\nsnmp community x\n",
            &"b".repeat(64),
            &origin,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(event.kind, "ARCHIVE_COMPLETED");
        assert_eq!((event.job_id.as_deref(), event.parent_id.as_deref()), (Some("7"), Some("3")));
        assert!(event.message.starts_with("Archive of edge1 completed\nconfiguration changed since"));
        assert!(event.message.contains("--- previous aaaaaaaaaaaa\n+++ current bbbbbbbbbbbb\n"));
        assert!(event.message.contains("-ntp server 192.0.2.1\n+ntp server 192.0.2.2\n"));
        assert_eq!(event.attributes["added"], "1");
    }

    /// A configuration without a final newline that gains lines: its old last line is context,
    /// not removed and added again (issue 20), and the counts say so.
    #[test]
    fn lines_appended_to_a_configuration_without_a_final_newline_leave_its_last_line_as_context() {
        let previous = StoredContent {
            hash: "a".repeat(64),
            content: "hostname edge1
ntp server 192.0.2.1"
                .into(),
            changed_at: Timestamp::UNIX_EPOCH,
            seen_at: Timestamp::UNIX_EPOCH,
        };
        let origin = Origin { user: "alice".into(), ..Origin::default() };
        let config = "hostname edge1
ntp server 192.0.2.1
snmp community x";
        let event = archive_changed("edge1", Some(&previous), config, &"b".repeat(64), &origin, Timestamp::UNIX_EPOCH);
        assert!(
            event.message.ends_with(" ntp server 192.0.2.1\n+snmp community x\n\\ No newline at end of file\n"),
            "{}",
            event.message
        );
        assert_eq!((event.attributes["added"].as_str(), event.attributes["removed"].as_str()), (Some("1"), Some("0")));
    }

    #[test]
    fn a_configuration_with_control_characters_is_archived_with_them_escaped() {
        let previous = StoredContent {
            hash: "a".repeat(64),
            content: "banner motd \u{3}\r\nhello\r\n".into(),
            changed_at: Timestamp::UNIX_EPOCH,
            seen_at: Timestamp::UNIX_EPOCH,
        };
        let origin = Origin { user: "alice".into(), ..Origin::default() };
        let config = "banner motd \u{3}\r\nhello\u{6}\r\n";
        let event = archive_changed("edge1", Some(&previous), config, &"b".repeat(64), &origin, Timestamp::UNIX_EPOCH);
        assert!(event.message.contains(" banner motd \\u{3}\n-hello\n+hello\\u{6}\n"), "{}", event.message);
    }

    #[test]
    fn huge_diffs_are_cut_and_say_so() {
        let origin = Origin { user: "a".into(), ..Origin::default() };
        let old = "line\n".repeat(10);
        let new: String = (0..200_000).map(|i| format!("set interfaces ge-0/0/{i} description x\n")).collect();
        let previous = StoredContent {
            hash: "a".repeat(64),
            content: old,
            changed_at: Timestamp::UNIX_EPOCH,
            seen_at: Timestamp::UNIX_EPOCH,
        };
        let event = archive_changed("edge1", Some(&previous), &new, &"b".repeat(64), &origin, Timestamp::UNIX_EPOCH);
        assert!(event.message.len() < 800 * 1024);
        assert!(event.message.ends_with("the whole configuration is stored as the device's content"));
    }
}
