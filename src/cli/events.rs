//! `hookwatch events list|show|retry|mute|requeue`.

use super::table::{due_in, or_dash, relative, when, Fields, Table};
use super::{print, print_json, Daemon, EventIds, EventsCommand, Failure, Selection};
use crate::control::{Control, ControlError};
use crate::engine::EventDetail;
use crate::model::{EventFilter, EventId, EventRecord, Trigger};
use serde_json::{json, Value};

pub(super) async fn run(daemon: &Daemon, command: &EventsCommand) -> Result<(), Failure> {
    match command {
        EventsCommand::List {
            selection,
            limit,
            output,
        } => list(daemon, selection, usize::from(*limit), output.json).await,
        EventsCommand::Show { id, output } => show(daemon, *id, output.json).await,
        EventsCommand::Retry(ids) => act(daemon, ids, Action::Retry).await,
        EventsCommand::Mute(ids) => act(daemon, ids, Action::Mute).await,
        EventsCommand::Requeue { resend, ids } => {
            act(daemon, ids, Action::Requeue { resend: *resend }).await
        }
    }
}

impl Selection {
    pub(super) fn filter(&self) -> EventFilter {
        EventFilter {
            destination: self.destination.clone(),
            state: self.state,
            topic: self.topic.clone(),
            created_after: None,
            created_before: None,
            label: self.label.clone(),
        }
    }
}

async fn list(
    daemon: &Daemon,
    selection: &Selection,
    limit: usize,
    json: bool,
) -> Result<(), Failure> {
    let page = daemon
        .control
        .list_events(selection.filter(), None, limit)
        .await
        .map_err(|e| daemon.failure(e))?;
    if json {
        return print_json(&page);
    }
    let now = daemon.control.now();
    let mut table = Table::new([
        "ID",
        "DESTINATION",
        "TOPIC",
        "STATE",
        "ATTEMPTS",
        "CREATED",
        "NEXT",
        "REASON",
    ]);
    for event in &page.events {
        table.row(vec![
            event.id.to_string(),
            event.destination.clone(),
            event.topic.clone(),
            event.state.to_string(),
            event.attempt_count.to_string(),
            relative(event.created_at, now),
            or_dash(event.next_attempt_at.map(|at| due_in(at, now))),
            why(event),
        ]);
    }
    let mut text = if table.is_empty() {
        "no events match\n".to_string()
    } else {
        table.render()
    };
    if page.next.is_some() {
        text.push_str(&format!(
            "(the newest {limit}; more match: narrow the filter or raise --limit)\n"
        ));
    }
    print(&text)
}

/// Why an event is where it is: its reason when it has one (failed, cancelled,
/// skipped), else what its last attempt got.
fn why(event: &EventRecord) -> String {
    if let Some(reason) = &event.reason {
        return reason.to_string();
    }
    match (event.last_status, &event.last_error) {
        (Some(status), _) => format!("last answer {status}"),
        (None, Some(error)) => error.clone(),
        (None, None) => String::new(),
    }
}

async fn show(daemon: &Daemon, id: EventId, json: bool) -> Result<(), Failure> {
    let detail = daemon
        .control
        .event(id)
        .await
        .map_err(|e| daemon.failure(e))?;
    if json {
        return print_json(&detail);
    }
    print(&render_detail(&detail, daemon.control.now()))
}

fn render_detail(detail: &EventDetail, now: chrono::DateTime<chrono::Utc>) -> String {
    let event = &detail.event;
    let mut fields = Fields::default();
    fields.add("id", event.id.to_string());
    fields.add("destination", event.destination.clone());
    fields.add("topic", event.topic.clone());
    let state = match &event.reason {
        Some(reason) => format!("{} ({reason})", event.state),
        None => event.state.to_string(),
    };
    fields.add("state", state);
    fields.add("created", when(event.created_at, now));
    fields.add(
        "attempts",
        format!(
            "{} ({} automatic retries this cycle)",
            event.attempt_count, event.automatic_retries
        ),
    );
    if let (Some(next), Some(trigger)) = (event.next_attempt_at, event.next_trigger) {
        fields.add("next attempt", format!("{} ({trigger})", when(next, now)));
    }
    if let Some(status) = event.last_status {
        fields.add("last status", status.to_string());
    }
    if let Some(error) = &event.last_error {
        fields.add("last error", error.clone());
    }
    if let Some(first) = event.duplicate_of {
        fields.add("duplicate of", first.to_string());
    }
    if let Some(key) = &event.idempotency_key {
        fields.add("idempotency key", key.clone());
    }
    fields.add(
        "payload",
        format!(
            "{} bytes{}",
            event.payload_bytes,
            event
                .content_type
                .as_deref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default()
        ),
    );
    let mut text = fields.render();
    match (&detail.payload, &detail.payload_base64) {
        (Some(payload), _) => {
            text.push('\n');
            text.push_str(&payload_for_people(payload));
            text.push('\n');
        }
        (None, Some(base64)) => text.push_str(&format!("\n(binary, base64) {base64}\n")),
        (None, None) => {}
    }
    text.push('\n');
    if detail.attempts.is_empty() {
        text.push_str("no attempts yet\n");
        return text;
    }
    let mut attempts = Table::new(["#", "WHEN", "TRIGGER", "STATUS", "TIME", "DECISION"]);
    for attempt in &detail.attempts {
        attempts.row(vec![
            attempt.n.to_string(),
            relative(attempt.at, now),
            attempt.trigger.to_string(),
            match (attempt.status, &attempt.error) {
                (Some(status), _) => status.to_string(),
                (None, Some(error)) => error.clone(),
                (None, None) => "-".to_string(),
            },
            format!("{}ms", attempt.duration_ms),
            attempt.decision.clone(),
        ]);
    }
    text.push_str(&attempts.render());
    text
}

/// A JSON payload pretty-printed with its credentials masked (as the TUI shows
/// it); any other text as it is.
fn payload_for_people(payload: &str) -> String {
    match serde_json::from_str::<Value>(payload) {
        Ok(mut value) => {
            crate::mask::mask_json(&mut value);
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| payload.to_string())
        }
        Err(_) => payload.to_string(),
    }
}

#[derive(Clone, Copy)]
enum Action {
    Retry,
    Mute,
    Requeue { resend: bool },
}

/// Applies the action to every id in turn, reporting each; fails (exit 1)
/// when any did, after all were tried. A daemon that cannot be reached stops
/// at once: the remaining ids would fail the same way.
async fn act(daemon: &Daemon, ids: &EventIds, action: Action) -> Result<(), Failure> {
    let several = ids.ids.len() > 1;
    let mut results = Vec::with_capacity(ids.ids.len());
    let mut failed = 0;
    let mut last_error = None;
    let mut text = String::new();
    for id in &ids.ids {
        match apply(daemon, *id, action).await {
            Ok((value, line)) => {
                results.push(value);
                text.push_str(&line);
                text.push('\n');
            }
            Err(error @ ControlError::Unreachable { .. }) => return Err(daemon.failure(error)),
            Err(error) => {
                failed += 1;
                if several && !ids.output.json {
                    eprintln!("hookwatch: {error}");
                }
                // The API's error body, with the id it was about.
                let mut value = serde_json::to_value(&error).unwrap_or_default();
                value["id"] = json!(id.to_string());
                value["error"] = json!(error.to_string());
                results.push(value);
                last_error = Some(error);
            }
        }
    }
    if ids.output.json {
        print_json(&results)?;
    } else {
        print(&text)?;
    }
    match last_error {
        None => Ok(()),
        // One id: the daemon's message is the whole report.
        Some(error) if !several => Err(Failure::Daemon(Box::new(error))),
        Some(_) => Err(Failure::Partly {
            failed,
            total: ids.ids.len(),
        }),
    }
}

/// One action on one event: the API's answer as JSON, and a line for people.
async fn apply(
    daemon: &Daemon,
    id: EventId,
    action: Action,
) -> Result<(Value, String), ControlError> {
    match action {
        Action::Retry => {
            let summary = daemon.control.retry_now(id).await?;
            let line = if summary.success {
                format!("{id}: delivered")
            } else {
                format!(
                    "{id}: attempt failed, {} (now {})",
                    summary.decision, summary.state
                )
            };
            // The shape `POST /v1/events/{id}/retry` answers.
            let value = json!({
                "id": id.to_string(),
                "state": summary.state,
                "success": summary.success,
                "decision": summary.decision,
            });
            Ok((value, line))
        }
        Action::Mute => {
            let record = daemon.control.mute(id).await?;
            let line = format!("{id}: muted (now {})", record.state);
            Ok((to_value(&record), line))
        }
        Action::Requeue { resend } => {
            let record = if resend {
                daemon.control.resend(id).await?
            } else {
                daemon.control.requeue(id).await?
            };
            let verb = if record.next_trigger == Some(Trigger::Resend) {
                "resent"
            } else {
                "requeued"
            };
            let line = format!("{id}: {verb} (now {})", record.state);
            Ok((to_value(&record), line))
        }
    }
}

fn to_value(record: &EventRecord) -> Value {
    serde_json::to_value(record).unwrap_or_default()
}
