//! The new destination form (`n`): every key of a `[[destinations]]` table,
//! validated as you type with [`config::destination_from_json`] (what the daemon
//! runs on the same JSON, so the form and the API agree), the error shown at
//! its field. The daemon's own refusal comes back to the same place.

use crate::config;
use crate::tui::form::{FieldForm, Kind, FIELDS as RETRY_FIELDS};
use serde_json::{Map, Value};

/// The top-level keys, in the README's order, with a hint each; the retry keys
/// follow as `retry.<key>`.
const TOP: &[(&str, Kind, &str)] = &[
    ("id", Kind::Text, "letters, digits, - _ ."),
    ("url", Kind::Text, "http(s)://host/path"),
    ("topics", Kind::Text, "globs, comma-separated"),
    ("timeout", Kind::Text, "e.g. 30s"),
    ("concurrency", Kind::Integer, "attempts at once"),
    ("headers", Kind::Text, "Name: value; Name: value"),
    ("secret", Kind::Text, "whsec_…, comma-separated"),
    ("labels", Kind::Text, "tenant=acme, tier=gold"),
];

/// One line of the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The key as the API and its errors name it (`url`, `retry.delay`).
    pub name: String,
    pub kind: Kind,
    pub hint: &'static str,
}

/// Every field of the form, top-level keys first.
pub fn fields() -> Vec<Field> {
    TOP.iter()
        .map(|(name, kind, hint)| Field {
            name: name.to_string(),
            kind: *kind,
            hint,
        })
        .chain(RETRY_FIELDS.iter().map(|(name, kind, hint)| Field {
            name: format!("retry.{name}"),
            kind: *kind,
            hint,
        }))
        .collect()
}

/// What is wrong, at a field when it names one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormError {
    pub field: Option<usize>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DestinationForm {
    pub fields: Vec<Field>,
    pub values: Vec<String>,
    pub focus: usize,
    pub error: Option<FormError>,
    /// Sent; waiting for the daemon's answer (Enter does nothing meanwhile).
    pub saving: bool,
}

impl Default for DestinationForm {
    fn default() -> Self {
        DestinationForm::new()
    }
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl DestinationForm {
    pub fn new() -> DestinationForm {
        let fields = fields();
        // No verdict before anything is typed: a fresh form that opens on
        // "id: is missing" scolds the operator for what they have not done
        // yet. The first edit, or Enter, checks the whole form.
        DestinationForm {
            values: vec![String::new(); fields.len()],
            fields,
            focus: 0,
            error: None,
            saving: false,
        }
    }

    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The field an error key names: `url`, `retry.max_retries`, or a path
    /// into one (`headers.X-Env`, `topics[0]`).
    pub fn field_for_key(&self, key: &str) -> Option<usize> {
        if let Some(index) = self.field_index(key) {
            return Some(index);
        }
        let (retry, rest) = match key.strip_prefix("retry.") {
            Some(rest) => ("retry.", rest),
            None => ("", key),
        };
        let head = rest.split(['.', '[']).next().unwrap_or(rest);
        self.field_index(&format!("{retry}{head}"))
    }

    pub fn value(&self, name: &str) -> &str {
        self.field_index(name)
            .map_or("", |index| self.values[index].trim())
    }

    /// The definition as the API takes it (only the keys filled in).
    pub fn definition(&self) -> Result<Value, FormError> {
        let at = |name: &str, message: String| FormError {
            field: self.field_index(name),
            message,
        };
        let mut map = Map::new();
        for name in ["id", "url", "timeout"] {
            let text = self.value(name);
            if !text.is_empty() {
                map.insert(name.into(), Value::String(text.into()));
            }
        }
        let topics: Vec<Value> = split_list(self.value("topics"))
            .map(|t| Value::String(t.into()))
            .collect();
        if !topics.is_empty() {
            map.insert("topics".into(), Value::Array(topics));
        }
        let concurrency = self.value("concurrency");
        if !concurrency.is_empty() {
            let n: i64 = concurrency.parse().map_err(|_| {
                at(
                    "concurrency",
                    format!("\"{concurrency}\" is not a whole number"),
                )
            })?;
            map.insert("concurrency".into(), Value::from(n));
        }
        let mut headers = Map::new();
        for pair in self
            .value("headers")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (name, value) = pair
                .split_once(':')
                .ok_or_else(|| at("headers", format!("\"{pair}\" is not Name: value")))?;
            headers.insert(name.trim().into(), Value::String(value.trim().into()));
        }
        if !headers.is_empty() {
            map.insert("headers".into(), Value::Object(headers));
        }
        let secrets: Vec<Value> = split_list(self.value("secret"))
            .map(|s| Value::String(s.into()))
            .collect();
        match secrets.len() {
            0 => {}
            1 => {
                map.insert("secret".into(), secrets[0].clone());
            }
            _ => {
                map.insert("secret".into(), Value::Array(secrets));
            }
        }
        let mut labels = Map::new();
        for pair in split_list(self.value("labels")) {
            let (key, value) = pair
                .split_once(['=', ':'])
                .ok_or_else(|| at("labels", format!("\"{pair}\" is not key=value")))?;
            labels.insert(key.trim().into(), Value::String(value.trim().into()));
        }
        if !labels.is_empty() {
            map.insert("labels".into(), Value::Object(labels));
        }
        let mut retry = Map::new();
        for (index, field) in self.fields.iter().enumerate() {
            let Some(key) = field.name.strip_prefix("retry.") else {
                continue;
            };
            let text = self.values[index].trim();
            if text.is_empty() {
                continue;
            }
            let value = match field.kind {
                Kind::Text => Value::String(text.into()),
                Kind::Integer => Value::from(text.parse::<i64>().map_err(|_| FormError {
                    field: Some(index),
                    message: format!("\"{text}\" is not a whole number"),
                })?),
                Kind::Bool => match text {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(FormError {
                            field: Some(index),
                            message: "must be true or false".into(),
                        })
                    }
                },
            };
            retry.insert(key.into(), value);
        }
        if !retry.is_empty() {
            map.insert("retry".into(), Value::Object(retry));
        }
        Ok(Value::Object(map))
    }

    /// Re-checks the whole form as the daemon would; sets or clears `error`.
    pub fn validate(&mut self) {
        self.error = self
            .definition()
            .and_then(|definition| {
                config::destination_from_json(definition)
                    .map(|_| ())
                    .map_err(|(key, message)| FormError {
                        field: self.field_for_key(&key),
                        message: format!("{key}: {message}"),
                    })
            })
            .err();
    }

    /// The daemon refused the definition: its words, at the field it names.
    pub fn refused(&mut self, field: Option<&str>, message: String) {
        self.saving = false;
        let field = field.and_then(|f| self.field_for_key(f));
        if let Some(index) = field {
            self.focus = index;
        }
        self.error = Some(FormError { field, message });
    }
}

impl FieldForm for DestinationForm {
    fn field_count(&self) -> usize {
        self.fields.len()
    }

    fn focus_mut(&mut self) -> &mut usize {
        &mut self.focus
    }

    fn value_mut(&mut self, index: usize) -> &mut String {
        &mut self.values[index]
    }

    fn is_bool(&self, index: usize) -> bool {
        self.fields[index].kind == Kind::Bool
    }

    fn revalidate(&mut self) {
        self.validate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(pairs: &[(&str, &str)]) -> DestinationForm {
        let mut form = DestinationForm::new();
        for (name, value) in pairs {
            let index = form.field_index(name).unwrap();
            form.values[index] = value.to_string();
        }
        form.validate();
        form
    }

    #[test]
    fn every_field_reaches_the_definition() {
        let form = filled(&[
            ("id", "customer-00001"),
            ("url", "https://acme.example.com/hooks"),
            ("topics", "order.*, invoice.paid"),
            ("timeout", "10s"),
            ("concurrency", "4"),
            ("headers", "X-Env: prod; X-Team: pay"),
            ("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("labels", "tenant=acme, tier:gold"),
            ("retry.delay", "5s"),
            ("retry.max_retries", "3"),
            ("retry.retry_after", "false"),
        ]);
        assert_eq!(form.error, None);
        assert_eq!(
            form.definition().unwrap(),
            serde_json::json!({
                "id": "customer-00001",
                "url": "https://acme.example.com/hooks",
                "topics": ["order.*", "invoice.paid"],
                "timeout": "10s",
                "concurrency": 4,
                "headers": {"X-Env": "prod", "X-Team": "pay"},
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "labels": {"tenant": "acme", "tier": "gold"},
                "retry": {"delay": "5s", "max_retries": 3, "retry_after": false},
            })
        );
    }

    #[test]
    fn errors_land_on_the_field_they_name() {
        let form = filled(&[("id", "a b"), ("url", "https://x.example")]);
        assert_eq!(form.error.as_ref().unwrap().field, form.field_index("id"));
        let form = filled(&[("id", "ok"), ("url", "ftp://x.example")]);
        assert_eq!(form.error.as_ref().unwrap().field, form.field_index("url"));
        let form = filled(&[
            ("id", "ok"),
            ("url", "https://x.example"),
            ("retry.max_retries", "500"),
        ]);
        assert_eq!(
            form.error.as_ref().unwrap().field,
            form.field_index("retry.max_retries")
        );
        let form = filled(&[
            ("id", "ok"),
            ("url", "https://x.example"),
            ("labels", "acme"),
        ]);
        assert_eq!(
            form.error.as_ref().unwrap().field,
            form.field_index("labels")
        );
        let form = filled(&[
            ("id", "ok"),
            ("url", "https://x.example"),
            ("secret", "whsec_!!"),
        ]);
        assert_eq!(
            form.error.as_ref().unwrap().field,
            form.field_index("secret")
        );
    }

    #[test]
    fn error_keys_with_paths_map_to_their_field() {
        let form = DestinationForm::new();
        assert_eq!(
            form.field_for_key("headers.X-Env"),
            form.field_index("headers")
        );
        assert_eq!(form.field_for_key("topics[0]"), form.field_index("topics"));
        assert_eq!(
            form.field_for_key("retry.delay"),
            form.field_index("retry.delay")
        );
        assert_eq!(form.field_for_key("body"), None);
    }
}
