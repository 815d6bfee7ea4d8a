//! The retry policy form (`e`): every key of `[destinations.retry]`, validated as
//! you type with `RetrySpec::resolve()`, the error shown at its field.

use crate::policy::RetrySpec;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Bool,
}

/// The keys of `[destinations.retry]`, in the README's order.
pub const FIELDS: &[(&str, Kind, &str)] = &[
    ("preset", Kind::Text, "monitor | webhook | rule"),
    ("policy", Kind::Text, "none | bounded | always"),
    ("schedule", Kind::Text, "fixed | exponential | power"),
    ("delay", Kind::Text, "e.g. 30s"),
    ("max_retries", Kind::Integer, "1..=50"),
    ("min_delay", Kind::Text, "power schedule clamp"),
    ("max_delay", Kind::Text, "e.g. 4d"),
    ("max_age", Kind::Text, "e.g. 3d"),
    ("retry_on", Kind::Text, "e.g. 429, >=500"),
    ("retry_after", Kind::Bool, "true | false"),
    ("on_client_error", Kind::Text, "fail | disable"),
    ("flush_on_recovery", Kind::Bool, "true | false"),
];

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyForm {
    pub destination: String,
    pub values: Vec<String>,
    /// The values the form opened with; only changed keys are sent.
    pub initial: Vec<String>,
    pub focus: usize,
    /// The field the current error belongs to, and the message.
    pub error: Option<(usize, String)>,
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl PolicyForm {
    /// Opens the form on the destination's effective retry settings.
    pub fn new(destination: &str, spec: &RetrySpec) -> PolicyForm {
        let map = match serde_json::to_value(spec) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let values: Vec<String> = FIELDS
            .iter()
            .map(|(key, _, _)| map.get(*key).map(show).unwrap_or_default())
            .collect();
        let mut form = PolicyForm {
            destination: destination.to_string(),
            initial: values.clone(),
            values,
            focus: 0,
            error: None,
        };
        form.validate();
        form
    }

    pub fn key(&self, index: usize) -> &'static str {
        FIELDS[index].0
    }

    pub fn field_index(key: &str) -> Option<usize> {
        FIELDS.iter().position(|(k, _, _)| *k == key)
    }

    pub fn changed(&self) -> bool {
        self.values != self.initial
    }

    /// The whole form as JSON, every non-empty key; errors name the field index.
    fn to_json(&self, only_changed: bool) -> Result<Map<String, Value>, (usize, String)> {
        let mut map = Map::new();
        for (index, (key, kind, _)) in FIELDS.iter().enumerate() {
            let text = self.values[index].trim();
            if text.is_empty() || (only_changed && self.values[index] == self.initial[index]) {
                continue;
            }
            let value = match kind {
                Kind::Text => Value::String(text.to_string()),
                Kind::Integer => match text.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => return Err((index, format!("\"{text}\" is not a whole number"))),
                },
                Kind::Bool => match text {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return Err((index, "must be true or false".into())),
                },
            };
            map.insert(key.to_string(), value);
        }
        Ok(map)
    }

    fn spec_from(&self, map: Map<String, Value>) -> Result<RetrySpec, (usize, String)> {
        serde_json::from_value::<RetrySpec>(Value::Object(map)).map_err(|e| {
            let message = e.to_string();
            // serde names the key in backticks: "unknown field `policy`, ...".
            let index = message
                .split('`')
                .nth(1)
                .and_then(PolicyForm::field_index)
                .unwrap_or(self.focus);
            let short = if message.starts_with("unknown field") {
                "not supported by this build's retry policies".to_string()
            } else {
                message
            };
            (index, short)
        })
    }

    /// Re-checks the whole form; sets or clears `error`. Once the preset is
    /// changed, the fields left as they were stand for the new preset's
    /// defaults (they are not sent), so only the changed ones are checked
    /// against its limits.
    pub fn validate(&mut self) {
        let preset = PolicyForm::field_index("preset").expect("the form has a preset field");
        let preset_changed = self.values[preset] != self.initial[preset];
        self.error = self
            .to_json(preset_changed)
            .and_then(|map| self.spec_from(map))
            .and_then(|spec| {
                spec.resolve().map(|_| ()).map_err(|e| {
                    (
                        PolicyForm::field_index(e.key).unwrap_or(self.focus),
                        e.message,
                    )
                })
            })
            .err();
    }

    /// The spec to save: only the keys changed in the form (merged by the engine
    /// over the file's retry table). `Err` when the form does not validate.
    pub fn patch_spec(&self) -> Result<RetrySpec, (usize, String)> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let map = self.to_json(true)?;
        self.spec_from(map)
    }
}

/// A form of text fields with one in focus, validated as it is typed: what
/// the policy form and the new-destination form share. The editing keys are
/// handled here once ([`FieldForm::edit`]); each form keeps its own Enter and
/// Esc.
pub trait FieldForm {
    fn field_count(&self) -> usize;
    fn focus_mut(&mut self) -> &mut usize;
    fn value_mut(&mut self, index: usize) -> &mut String;
    fn is_bool(&self, index: usize) -> bool;
    /// Checks the form again after an edit.
    fn revalidate(&mut self);

    fn next(&mut self) {
        let count = self.field_count();
        let focus = self.focus_mut();
        *focus = (*focus + 1) % count;
    }

    fn prev(&mut self) {
        let count = self.field_count();
        let focus = self.focus_mut();
        *focus = (*focus + count - 1) % count;
    }

    fn type_char(&mut self, c: char) {
        let focus = *self.focus_mut();
        self.value_mut(focus).push(c);
        self.revalidate();
    }

    fn backspace(&mut self) {
        let focus = *self.focus_mut();
        self.value_mut(focus).pop();
        self.revalidate();
    }

    fn clear_field(&mut self) {
        let focus = *self.focus_mut();
        self.value_mut(focus).clear();
        self.revalidate();
    }

    /// Space on a true/false field flips it.
    fn toggle(&mut self) -> bool {
        let focus = *self.focus_mut();
        if !self.is_bool(focus) {
            return false;
        }
        let value = self.value_mut(focus);
        *value = if value == "true" { "false" } else { "true" }.to_string();
        self.revalidate();
        true
    }

    /// Applies an editing key (move between fields, type, erase, flip a
    /// true/false field); `false` when `key` is not one of them.
    fn edit(&mut self, key: KeyEvent) -> bool {
        let is_ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Tab | KeyCode::Down => self.next(),
            KeyCode::BackTab | KeyCode::Up => self.prev(),
            KeyCode::Backspace => self.backspace(),
            KeyCode::Char('u') if is_ctrl => self.clear_field(),
            KeyCode::Char(' ') if self.toggle() => {}
            KeyCode::Char(c) if !is_ctrl => self.type_char(c),
            _ => return false,
        }
        true
    }
}

impl FieldForm for PolicyForm {
    fn field_count(&self) -> usize {
        FIELDS.len()
    }

    fn focus_mut(&mut self) -> &mut usize {
        &mut self.focus
    }

    fn value_mut(&mut self, index: usize) -> &mut String {
        &mut self.values[index]
    }

    fn is_bool(&self, index: usize) -> bool {
        FIELDS[index].1 == Kind::Bool
    }

    fn revalidate(&mut self) {
        self.validate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RetryPolicy;

    /// The form opens on every effective key; choosing a preset leaves the
    /// untouched fields to the preset's defaults, so only the changed keys
    /// are checked against its limits and sent.
    #[test]
    fn choosing_a_preset_sends_it_alone_and_checks_changed_keys_against_it() {
        let mut form = PolicyForm::new("a", &RetryPolicy::default().to_spec());
        let preset = PolicyForm::field_index("preset").unwrap();
        assert_eq!(form.values[preset], "");
        form.values[preset] = "webhook".into();
        form.validate();
        assert_eq!(form.error, None);
        let patch = form.patch_spec().unwrap();
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            serde_json::json!({"preset": "webhook"})
        );
        let max_age = PolicyForm::field_index("max_age").unwrap();
        form.values[max_age] = "31d".into();
        form.validate();
        let (field, message) = form.error.clone().unwrap();
        assert_eq!(field, max_age);
        assert!(message.contains("30 days"), "{message}");
        form.values[preset] = "nope".into();
        form.validate();
        assert_eq!(form.error.unwrap().0, preset);
    }
}
