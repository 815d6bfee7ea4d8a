//! `hookwatch destinations list|show|create|replace|delete|pause|resume|enable`.

use super::table::{Fields, Table};
use super::{print, print_json, CreateDestination, Daemon, DestinationsCommand, Failure};
use crate::control::Control;
use crate::engine::{Deleted, DestinationSource, DestinationView};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub(super) async fn run(daemon: &Daemon, command: &DestinationsCommand) -> Result<(), Failure> {
    let control = &daemon.control;
    let (view, json, done) = match command {
        DestinationsCommand::List { label, output } => {
            let mut destinations = control
                .destinations()
                .await
                .map_err(|e| daemon.failure(e))?;
            // The same selection `GET /v1/destinations?label=` makes.
            if let Some(selector) = label {
                destinations.retain(|d| selector.matches(&d.labels));
            }
            return if output.json {
                // The shape `GET /v1/destinations` answers.
                print_json(&json!({ "destinations": destinations }))
            } else if destinations.is_empty() && label.is_some() {
                print("no destinations match\n")
            } else {
                print(&render_list(&destinations))
            };
        }
        DestinationsCommand::Create(create) => {
            let definition = match &create.from_file {
                Some(path) => definition_from_file(path)?,
                None => definition_from_flags(create)?,
            };
            let view = control
                .create_destination(definition)
                .await
                .map_err(|e| daemon.failure(e))?;
            (Ok(view), create.output.json, Some("created"))
        }
        DestinationsCommand::Replace {
            id,
            from_file,
            output,
        } => {
            let definition = definition_from_file(from_file)?;
            let view = control.replace_destination(id, definition).await;
            (view, output.json, Some("replaced"))
        }
        DestinationsCommand::Delete { id, drain, output } => {
            let deleted = control
                .delete_destination(id, *drain)
                .await
                .map_err(|e| daemon.failure(e))?;
            return if output.json {
                // The shape `DELETE /v1/destinations/{id}` answers.
                print_json(&deleted)
            } else {
                print(&describe_deleted(&deleted))
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
        "SOURCE",
        "LABELS",
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
            source(d).to_string(),
            labels(&d.labels),
            health(d),
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
    fields.add("source", source(d).to_string());
    fields.add("health", health(d));
    fields.add("labels", labels(&d.labels));
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

/// `file`, `api` or `alerts`, as the API spells it.
fn source(d: &DestinationView) -> &'static str {
    match d.source {
        DestinationSource::File => "file",
        DestinationSource::Api => "api",
        DestinationSource::Alerts => "alerts",
    }
}

/// The health, and whether the destination is draining (deleted once it owes
/// nothing).
fn health(d: &DestinationView) -> String {
    if d.draining {
        format!("{} (draining)", d.health)
    } else {
        d.health.to_string()
    }
}

/// `tenant=acme,tier=gold`, or a dash.
fn labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "-".to_string();
    }
    labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn describe_deleted(deleted: &Deleted) -> String {
    if deleted.draining {
        format!(
            "{}: draining (takes no new events; deleted once its owed events have finished)\n",
            deleted.id
        )
    } else {
        format!(
            "{}: deleted ({} owed events cancelled)\n",
            deleted.id, deleted.cancelled
        )
    }
}

/// The API body for `create ID DESTINATION_URL [flags]`: only what was given,
/// so the daemon's defaults apply to the rest.
fn definition_from_flags(create: &CreateDestination) -> Result<Value, Failure> {
    let (Some(id), Some(url)) = (&create.id, &create.destination_url) else {
        return Err(Failure::BadInput(
            "give the destination's ID and DESTINATION_URL, or --from-file".to_string(),
        ));
    };
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    body.insert("url".into(), json!(url));
    if !create.topics.is_empty() {
        body.insert("topics".into(), json!(create.topics));
    }
    if let Some(timeout) = &create.timeout {
        body.insert("timeout".into(), json!(timeout));
    }
    if let Some(concurrency) = create.concurrency {
        body.insert("concurrency".into(), json!(concurrency));
    }
    match create.secrets.as_slice() {
        [] => {}
        [one] => {
            body.insert("secret".into(), json!(one));
        }
        several => {
            body.insert("secret".into(), json!(several));
        }
    }
    if !create.labels.is_empty() {
        let mut labels = Map::new();
        for (key, value) in create.labels.iter().flat_map(|selector| &selector.pairs) {
            if labels.insert(key.clone(), json!(value)).is_some() {
                return Err(Failure::BadInput(format!("--label {key} is given twice")));
            }
        }
        body.insert("labels".into(), Value::Object(labels));
    }
    Ok(Value::Object(body))
}

/// The API body for a destination written in a TOML file, in the config
/// file's shape: one `[[destinations]]` table, or its keys at the top level.
/// Only the file's syntax and shape are checked here (exit 2); its values are
/// the daemon's to validate, as for the config file.
fn definition_from_file(path: &Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::BadInput(format!("cannot read {}: {e}", path.display())))?;
    definition_from_toml(&text).map_err(|e| Failure::BadInput(format!("{}: {e}", path.display())))
}

fn definition_from_toml(text: &str) -> Result<Value, String> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not TOML: {}", e.message()))?;
    let table = match table.remove("destinations") {
        None => table,
        Some(toml::Value::Array(tables)) if table.is_empty() => match <[_; 1]>::try_from(tables) {
            Ok([toml::Value::Table(one)]) => one,
            Ok(_) => return Err("[[destinations]] must hold tables".to_string()),
            Err(tables) => {
                return Err(format!(
                    "holds {} [[destinations]] tables; give one destination per file",
                    tables.len()
                ))
            }
        },
        Some(_) => {
            return Err(
                "give one [[destinations]] table, or the destination's keys alone".to_string(),
            )
        }
    };
    serde_json::to_value(&table).map_err(|e| format!("cannot convert to JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_holds_one_destination_as_a_table_or_bare_keys() {
        let table = r#"
[[destinations]]
id = "acme"
url = "https://acme.example/hook"
topics = ["order.*"]
labels = { tenant = "acme" }
[destinations.retry]
max_retries = 3
"#;
        let body = definition_from_toml(table).unwrap();
        assert_eq!(
            body,
            json!({
                "id": "acme",
                "url": "https://acme.example/hook",
                "topics": ["order.*"],
                "labels": { "tenant": "acme" },
                "retry": { "max_retries": 3 },
            })
        );
        let bare = "id = \"acme\"\nurl = \"https://acme.example/hook\"\nconcurrency = 4\n";
        assert_eq!(
            definition_from_toml(bare).unwrap(),
            json!({ "id": "acme", "url": "https://acme.example/hook", "concurrency": 4 })
        );
    }

    #[test]
    fn a_file_with_several_destinations_or_bad_syntax_is_refused() {
        let two = "[[destinations]]\nid = \"a\"\n[[destinations]]\nid = \"b\"\n";
        let error = definition_from_toml(two).unwrap_err();
        assert!(error.contains("holds 2 [[destinations]]"), "{error}");
        let mixed = "id = \"a\"\n[[destinations]]\nid = \"b\"\n";
        assert!(definition_from_toml(mixed).is_err());
        let error = definition_from_toml("id = ").unwrap_err();
        assert!(error.starts_with("not TOML"), "{error}");
    }
}
