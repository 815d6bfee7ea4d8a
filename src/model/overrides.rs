//! Live edits of a destination, kept in its runtime state and applied over the
//! config file's values (the engine validates and applies them).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// The retry table as written (TOML `[destinations.retry]` or a JSON body):
/// every key optional so a live edit can patch only what it names, and kept
/// unresolved so edits can be merged key by key before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// `monitor`, `webhook` or `rule`: the reference whose defaults and limits
    /// apply to every key not given (see `policy::Preset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// Signed so that a negative value reaches validation and gets a clear
    /// message instead of a type error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_client_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_on_recovery: Option<bool>,
}

impl RetrySpec {
    /// `patch`'s keys win; the others keep this spec's values.
    pub fn merged(&self, patch: &RetrySpec) -> RetrySpec {
        fn pick<T: Clone>(base: &Option<T>, patch: &Option<T>) -> Option<T> {
            patch.clone().or_else(|| base.clone())
        }
        RetrySpec {
            preset: pick(&self.preset, &patch.preset),
            policy: pick(&self.policy, &patch.policy),
            schedule: pick(&self.schedule, &patch.schedule),
            delay: pick(&self.delay, &patch.delay),
            max_retries: pick(&self.max_retries, &patch.max_retries),
            min_delay: pick(&self.min_delay, &patch.min_delay),
            max_delay: pick(&self.max_delay, &patch.max_delay),
            max_age: pick(&self.max_age, &patch.max_age),
            retry_on: pick(&self.retry_on, &patch.retry_on),
            retry_after: pick(&self.retry_after, &patch.retry_after),
            on_client_error: pick(&self.on_client_error, &patch.on_client_error),
            flush_on_recovery: pick(&self.flush_on_recovery, &patch.flush_on_recovery),
        }
    }

    /// Whether no key is given.
    pub fn is_empty(&self) -> bool {
        *self == RetrySpec::default()
    }
}

/// The live edits in force for a destination. A field is `None` when the config
/// file's value applies. Stored as JSON with these field names, which is also
/// how the first format (a free-form map) wrote them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DestinationOverrides {
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "url_text::serialize",
        deserialize_with = "url_text::deserialize"
    )]
    pub url: Option<url::Url>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Only the retry keys edited; merged over the file's retry table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
}

/// One field of an edit: absent (keep what is in force), `null` (drop the
/// override, so the file's value applies again) or a new value.
pub type FieldEdit<T> = Option<Option<T>>;

/// A validated edit of the overridable fields, for [`DestinationOverrides::merge`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OverridesEdit {
    pub url: FieldEdit<url::Url>,
    pub headers: FieldEdit<BTreeMap<String, String>>,
    pub concurrency: FieldEdit<u32>,
    /// `Some(Some(spec))` merges `spec`'s keys over earlier retry edits.
    pub retry: FieldEdit<RetrySpec>,
}

impl DestinationOverrides {
    /// Applies an edit: given values replace earlier overrides (retry key by
    /// key), `null`s drop them.
    pub fn merge(&mut self, edit: OverridesEdit) {
        fn field<T>(slot: &mut Option<T>, edit: FieldEdit<T>) {
            if let Some(value) = edit {
                *slot = value;
            }
        }
        field(&mut self.url, edit.url);
        field(&mut self.headers, edit.headers);
        field(&mut self.concurrency, edit.concurrency);
        match edit.retry {
            None => {}
            Some(None) => self.retry = None,
            Some(Some(patch)) => {
                let merged = match &self.retry {
                    Some(earlier) => earlier.merged(&patch),
                    None => patch,
                };
                self.retry = (!merged.is_empty()).then_some(merged);
            }
        }
    }

    /// The names of the fields overridden, as the API shows them.
    pub fn overridden(&self) -> Vec<&'static str> {
        [
            ("url", self.url.is_some()),
            ("headers", self.headers.is_some()),
            ("concurrency", self.concurrency.is_some()),
            ("retry", self.retry.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.overridden().is_empty()
    }
}

/// Reads a JSON `null` as "drop this override" rather than "absent".
pub fn field_edit<'de, T, D>(deserializer: D) -> Result<FieldEdit<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The URL as its text, so stored edits read like the config file.
mod url_text {
    use super::*;

    pub fn serialize<S: Serializer>(url: &Option<url::Url>, s: S) -> Result<S::Ok, S::Error> {
        match url {
            Some(url) => s.serialize_str(url.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| url::Url::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> RetrySpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn merge_sets_merges_retry_keys_and_drops_on_null() {
        let mut overrides = DestinationOverrides::default();
        overrides.merge(OverridesEdit {
            concurrency: Some(Some(3)),
            retry: Some(Some(spec(serde_json::json!({"max_retries": 9})))),
            ..Default::default()
        });
        overrides.merge(OverridesEdit {
            url: Some(Some(url::Url::parse("http://127.0.0.1:1/h").unwrap())),
            retry: Some(Some(spec(serde_json::json!({"delay": "5s"})))),
            ..Default::default()
        });
        assert_eq!(overrides.concurrency, Some(3), "an absent field is kept");
        assert_eq!(
            overrides.retry,
            Some(spec(serde_json::json!({"max_retries": 9, "delay": "5s"})))
        );
        assert_eq!(overrides.overridden(), ["url", "concurrency", "retry"]);

        overrides.merge(OverridesEdit {
            concurrency: Some(None),
            retry: Some(None),
            ..Default::default()
        });
        assert_eq!(overrides.overridden(), ["url"]);
        overrides.merge(OverridesEdit {
            url: Some(None),
            ..Default::default()
        });
        assert!(overrides.is_empty());
    }

    /// Runtime records written before overrides were typed stored them as a map
    /// with these keys.
    #[test]
    fn reads_the_map_the_previous_build_stored() {
        let old = serde_json::json!({
            "url": "http://127.0.0.1:9/hooks",
            "headers": {"X-Env": "test"},
            "concurrency": 4,
            "retry": {"max_retries": 2}
        });
        let read: DestinationOverrides = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(
            read.url.as_ref().unwrap().as_str(),
            "http://127.0.0.1:9/hooks"
        );
        assert_eq!(read.concurrency, Some(4));
        assert_eq!(
            read.retry,
            Some(spec(serde_json::json!({"max_retries": 2})))
        );
        assert_eq!(serde_json::to_value(&read).unwrap(), old);
        let empty: DestinationOverrides = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(empty.is_empty());
    }
}
