//! The catalog of built-in event kinds (E2) and the severity rule (E3).
//!
//! Every event in the seeds has a built-in kind here. Integrators add their own kinds under a
//! namespace (`ACME.SYNC_DONE`); those are not in the catalog and must carry their own process,
//! action and severity. `docs/catalog.md` is generated from this table (see
//! [`markdown_table`]) and a test fails when the two differ.

use crate::severity::{Outcome, Severity};

/// A built-in kind: the stable machine code and what Trail fills in when an event omits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSpec {
    /// Stable machine code; becomes the syslog MSGID.
    pub kind: &'static str,
    /// The component that generates it; becomes the syslog APP-NAME.
    pub process: &'static str,
    /// The operator-facing verb shown in the Action column.
    pub action: &'static str,
    /// Severity when the outcome is success or none.
    pub severity: Severity,
    /// Severity when the outcome is failure (E3: failures are errors, security failures warnings
    /// or higher).
    pub failure_severity: Severity,
    /// Summary wording for line 1; `{user}`, `{name}`, `{client}` and `{attr:KEY}` are replaced.
    pub summary: &'static str,
    /// Whether the kind is security-relevant (authentication, lockouts, accounts).
    pub security: bool,
}

impl KindSpec {
    /// Whether only Trail itself records this kind (its accounts, logins, sessions, tokens,
    /// audits of reading, purges): the kinds of its own components, `trail-*`. Ingest refuses
    /// them, so a platform's report can never pass for Trail's own record.
    pub fn recorded_by_trail(&self) -> bool {
        self.process.starts_with("trail-")
    }

    /// E3: severity follows the outcome.
    pub fn severity_for(&self, outcome: Option<Outcome>) -> Severity {
        match outcome {
            Some(Outcome::Failure) => self.failure_severity,
            _ => self.severity,
        }
    }
}

const fn spec(
    kind: &'static str,
    process: &'static str,
    action: &'static str,
    severity: Severity,
    failure_severity: Severity,
    summary: &'static str,
    security: bool,
) -> KindSpec {
    KindSpec { kind, process, action, severity, failure_severity, summary, security }
}

use Severity::{Err, Info, Notice, Warning};

/// The built-in kinds, grouped as the seeds list them.
pub const BUILT_IN: &[KindSpec] = &[
    // Authentication (JUNOScope: login success/failure, automatic lockout).
    spec("AUTH_LOGIN_SUCCESS", "trail-auth", "login", Notice, Warning, "User {user} logged in from {client}", true),
    spec("AUTH_LOGIN_FAILURE", "trail-auth", "login", Warning, Warning, "Login failed for {name} from {client}", true),
    spec(
        "AUTH_LOGIN_THROTTLED",
        "trail-auth",
        "throttle",
        Warning,
        Warning,
        "Logins from {client} slowed after repeated failures",
        true,
    ),
    spec("AUTH_LOGOUT", "trail-auth", "logout", Info, Warning, "User {user} logged out", true),
    spec("AUTH_SESSION_EXPIRED", "trail-auth", "logout", Info, Warning, "Session of {user} expired", true),
    spec(
        "AUTH_ACCOUNT_LOCKED",
        "trail-auth",
        "lock",
        Warning,
        Warning,
        "Account {name} locked automatically after repeated login failures",
        true,
    ),
    spec(
        "AUTH_ACCOUNT_UNLOCKED",
        "trail-auth",
        "unlock",
        Notice,
        Warning,
        "Account {name} unlocked automatically",
        true,
    ),
    // Local users (administrator actions).
    spec("USER_LOCKED", "trail-users", "lock", Warning, Err, "Account {name} locked by {user}", true),
    spec("USER_UNLOCKED", "trail-users", "unlock", Notice, Err, "Account {name} unlocked by {user}", true),
    spec("USER_ADDED", "trail-users", "add", Notice, Err, "User {name} added by {user}", true),
    spec("USER_DELETED", "trail-users", "delete", Notice, Err, "User {name} deleted by {user}", true),
    spec("USER_PASSWORD_CHANGED", "trail-users", "passwd", Notice, Err, "Password of {name} changed by {user}", true),
    spec(
        "TOKEN_CREATED",
        "trail-users",
        "create",
        Notice,
        Err,
        "API token {attr:token} of {name} created by {user}",
        true,
    ),
    spec(
        "TOKEN_REVOKED",
        "trail-users",
        "revoke",
        Notice,
        Err,
        "API token {attr:token} of {name} revoked by {user}",
        true,
    ),
    // Devices and labels.
    spec("DEVICE_ADDED", "devices", "add", Notice, Err, "Device {name} added", false),
    spec("DEVICE_EDITED", "devices", "update", Notice, Err, "Device {name} edited", false),
    spec("DEVICE_DELETED", "devices", "delete", Notice, Err, "Device {name} deleted", false),
    spec("LABEL_ASSOCIATION_CHANGED", "labels", "update", Notice, Err, "Label associations of {name} changed", false),
    // Device results.
    spec("CONFIG_COMMITTED", "config", "commit", Notice, Err, "Configuration committed to {name}", false),
    spec("ARCHIVE_COMPLETED", "archive", "archive", Info, Err, "Archive of {name} completed", false),
    spec("INVENTORY_SCAN_COMPLETED", "inventory", "scan", Info, Err, "Inventory scan of {name} completed", false),
    spec("RESTORE_COMPLETED", "restore", "restore", Notice, Err, "Configuration restored on {name}", false),
    // Operations and jobs.
    spec("JOB_SUBMITTED", "jobs", "submit", Info, Err, "Job {name} submitted by {user}", false),
    spec("OPERATION_COMPLETED", "jobs", "operation", Info, Err, "Operation {name} finished: {attr:status}", false),
    spec("LEAF_OPERATION_COMPLETED", "jobs", "operation", Info, Err, "Operation {name} finished: {attr:status}", false),
    spec("OPERATION_STATUS", "jobs", "status", Info, Err, "Operation {name}: {attr:status}", false),
    // Back-end functions.
    spec("TFTP_TRANSFER", "tftpd", "transfer", Info, Err, "TFTP transfer of {name} to {client}", false),
    spec("TFTP_REFUSED", "tftpd", "refuse", Warning, Warning, "TFTP request for {name} from {client} refused", true),
    // Trail's own audit of reading (A3).
    spec(
        "AUDIT_DETAILS_VIEWED",
        "trail-audit",
        "view",
        Notice,
        Warning,
        "{user} viewed the details of event {name}",
        true,
    ),
    spec("AUDIT_EXPORT", "trail-audit", "export", Notice, Warning, "{user} exported {name}", true),
    // Retention (S3).
    spec(
        "RETENTION_PURGED",
        "trail-retention",
        "purge",
        Notice,
        Err,
        "Events through {attr:through} purged: older than {name}",
        true,
    ),
    // Integrity (S4): a signed checkpoint of the tree, forwarded like any event.
    spec(
        "CHECKPOINT",
        "trail-checkpoints",
        "checkpoint",
        Info,
        Err,
        "Checkpoint of {attr:size} events signed: root {attr:root}",
        true,
    ),
    // Generic objects and structured changes.
    spec("OBJECT_CREATED", "objects", "create", Notice, Err, "Added {name}", false),
    spec("OBJECT_UPDATED", "objects", "update", Notice, Err, "Updated {name}", false),
    spec("OBJECT_DELETED", "objects", "delete", Notice, Err, "Deleted {name}", false),
];

/// Looks up a built-in kind.
pub fn lookup(kind: &str) -> Option<&'static KindSpec> {
    BUILT_IN.iter().find(|spec| spec.kind == kind)
}

/// Fills a summary template with the event's user, name, client and attributes.
pub fn render_summary(
    template: &str,
    user: &str,
    name: &str,
    client: &str,
    attribute: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let field = &rest[open + 1..open + close];
        let value = match field {
            "user" => user.to_owned(),
            "name" => name.to_owned(),
            "client" => client.to_owned(),
            _ => field.strip_prefix("attr:").and_then(&attribute).unwrap_or_default(),
        };
        out.push_str(&value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// The catalog as a Markdown table, the source of `docs/catalog.md`.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "<!-- Generated by `trail catalog`; edit crates/trail-core/src/catalog.rs instead. -->\n\
         # Event catalog\n\n\
         Built-in kinds (E2). Severity follows the outcome (E3): the first severity applies to \
         success or no outcome, the second to failure. Security kinds are warnings or higher \
         when they record a failure.\n\n\
         Kinds marked *Trail only* are recorded by Trail itself and refused from ingest.\n\n\
         | kind | process | action | severity | on failure | security | Trail only | summary |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for spec in BUILT_IN {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} | {} | {} | {} |\n",
            spec.kind,
            spec.process,
            spec.action,
            spec.severity,
            spec.failure_severity,
            if spec.security { "yes" } else { "" },
            if spec.recorded_by_trail() { "yes" } else { "" },
            spec.summary,
        ));
    }
    out.push_str(
        "\nIntegrators' kinds carry a namespace ending in a dot (`ACME.SYNC_DONE`) and give \
         `process`, `action` and `severity` themselves.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_unique_well_formed_and_security_failures_warn() {
        for (i, spec) in BUILT_IN.iter().enumerate() {
            crate::event::Kind::parse(spec.kind).unwrap();
            assert!(!spec.kind.contains('.'), "built-in kinds have no namespace");
            assert!(BUILT_IN[i + 1..].iter().all(|other| other.kind != spec.kind));
            assert!(spec.failure_severity <= Severity::Err || spec.security);
            if spec.security {
                assert!(spec.failure_severity <= Severity::Warning, "{}", spec.kind);
            }
        }
        assert!(lookup("AUTH_ACCOUNT_LOCKED").unwrap().severity <= Severity::Warning);
    }

    #[test]
    fn summaries_fill_fields_and_attributes() {
        let text = render_summary("Operation {name} finished: {attr:status}", "u", "archive edge1", "", |k| {
            (k == "status").then(|| "failed".to_owned())
        });
        assert_eq!(text, "Operation archive edge1 finished: failed");
    }

    #[test]
    fn docs_catalog_is_generated_from_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/catalog.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == markdown_table(),
            "docs/catalog.md is out of date: run `cargo run -p trail -- catalog > docs/catalog.md`"
        );
    }
}
