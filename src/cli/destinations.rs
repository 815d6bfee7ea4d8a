//! `hookwatch destinations list|show|pause|resume|enable`.

use super::table::{Fields, Table};
use super::{print, print_json, Daemon, DestinationsCommand, Failure};
use crate::control::Control;
use crate::engine::DestinationView;
use serde_json::json;

pub(super) async fn run(daemon: &Daemon, command: &DestinationsCommand) -> Result<(), Failure> {
    let control = &daemon.control;
    let (view, json, done) = match command {
        DestinationsCommand::List(output) => {
            let destinations = control
                .destinations()
                .await
                .map_err(|e| daemon.failure(e))?;
            return if output.json {
                // The shape `GET /v1/destinations` answers.
                print_json(&json!({ "destinations": destinations }))
            } else {
                print(&render_list(&destinations))
            };
        }
        DestinationsCommand::Show(target) => {
            let view = control.destination(&target.id).await;
            (view, target.output.json, None)
        }
        DestinationsCommand::Pause(target) => {
            let view = control.pause(&target.id).await;
            (view, target.output.json, Some("paused"))
        }
        DestinationsCommand::Resume(target) => {
            let view = control.resume(&target.id).await;
            (view, target.output.json, Some("resumed"))
        }
        DestinationsCommand::Enable(target) => {
            let view = control.enable(&target.id).await;
            (view, target.output.json, Some("enabled"))
        }
    };
    let view = view.map_err(|e| daemon.failure(e))?;
    if json {
        return print_json(&view);
    }
    match done {
        Some(verb) => print(&format!("{}: {verb} (now {})\n", view.id, view.health)),
        None => print(&render_one(&view)),
    }
}

pub(super) fn render_list(destinations: &[DestinationView]) -> String {
    if destinations.is_empty() {
        return "no destinations are configured\n".to_string();
    }
    let mut table = Table::new([
        "ID",
        "HEALTH",
        "CONCURRENCY",
        "IN FLIGHT",
        "PENDING",
        "RETRYING",
        "DELIVERED",
        "FAILED",
        "URL",
    ]);
    for d in destinations {
        table.row(vec![
            d.id.clone(),
            d.health.to_string(),
            format!("{}/{}", d.concurrency, d.max_concurrency),
            d.in_flight.to_string(),
            d.counts.pending.to_string(),
            d.counts.retrying.to_string(),
            d.counts.delivered.to_string(),
            d.counts.failed.to_string(),
            d.url.clone(),
        ]);
    }
    table.render()
}

fn render_one(d: &DestinationView) -> String {
    let mut fields = Fields::default();
    fields.add("id", d.id.clone());
    fields.add("health", d.health.to_string());
    fields.add("url", d.url.clone());
    fields.add(
        "topics",
        if d.topics.is_empty() {
            "-".to_string()
        } else {
            d.topics.join(", ")
        },
    );
    fields.add("timeout", d.timeout.clone());
    fields.add(
        "concurrency",
        format!(
            "{} of {} ({} in flight)",
            d.concurrency, d.max_concurrency, d.in_flight
        ),
    );
    for (name, value) in &d.headers {
        fields.add("header", format!("{name}: {value}"));
    }
    if !d.secrets.is_empty() {
        fields.add("secrets", d.secrets.join(", "));
    }
    let retry = serde_json::to_value(&d.retry)
        .ok()
        .and_then(|value| value.as_object().cloned())
        .unwrap_or_default();
    for (key, value) in retry {
        let value = match value {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        fields.add(&format!("retry.{key}"), value);
    }
    let c = &d.counts;
    fields.add(
        "events",
        format!(
            "pending {}, retrying {}, delivered {}, failed {}, cancelled {}, skipped {}",
            c.pending, c.retrying, c.delivered, c.failed, c.cancelled, c.skipped
        ),
    );
    if !d.overridden.is_empty() {
        fields.add("live edits", d.overridden.join(", "));
    }
    fields.render()
}
