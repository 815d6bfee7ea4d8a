//! `hookwatch check-config`: loads the config the way the daemon would and
//! prints what it takes effect as, every default spelled out and every
//! credential masked (through [`crate::mask`]).

use super::{print, print_json, Failure, JsonFlag};
use crate::config::{Config, DestinationConfig};
use crate::mask;
use crate::policy::units::format_duration_exact;
use crate::policy::RetrySpec;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

pub(super) fn run(path: Option<&Path>, output: JsonFlag) -> Result<(), Failure> {
    let config = Config::load(path)?;
    let effective = Effective::of(&config);
    if output.json {
        return print_json(&effective);
    }
    let body = toml::to_string(&effective.config)
        .map_err(|e| Failure::Output(std::io::Error::other(e)))?;
    print(&format!(
        "# {}: valid. The effective config, credentials masked:\n# {}\n\n{body}",
        effective.source,
        store_note(&config.store)
    ))
}

/// Which store the config selects and why, for the text output's header:
/// `store.url` and `store.path` never both take effect.
fn store_note(store: &crate::config::StoreConfig) -> String {
    use crate::config::STORE_URL_ENV;
    match &store.url {
        Some(url) if url.from_env() => format!(
            "The store: PostgreSQL at {url}, from {STORE_URL_ENV} (the file sets no store.url)."
        ),
        Some(url) => format!(
            "The store: PostgreSQL at {url}, from store.url ({STORE_URL_ENV}, if set, must name the same database)."
        ),
        None => format!(
            "The store: the redb file at store.path; store.url or {STORE_URL_ENV} (postgres://...) would select PostgreSQL instead, never beside store.path."
        ),
    }
}

/// The config as it takes effect.
#[derive(Serialize)]
struct Effective {
    /// The file, or "built-in defaults".
    source: String,
    #[serde(flatten)]
    config: EffectiveConfig,
}

#[derive(Serialize)]
struct EffectiveConfig {
    server: Server,
    store: Store,
    destinations: Vec<Destination>,
    alerts: Alerts,
}

#[derive(Serialize)]
struct Alerts {
    /// Where notices are sent; absent when they are only stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secret: Vec<&'static str>,
    types: Vec<&'static str>,
    in_retry_after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<RetrySpec>,
}

#[derive(Serialize)]
struct Server {
    listen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'static str>,
    /// In the largest unit the config accepts that says it exactly
    /// ("1MiB", "1500KB", "1023B"), so the line can be pasted back.
    max_body: String,
    max_connections: usize,
    deny_private_destinations: bool,
    max_destinations: usize,
}

#[derive(Serialize)]
struct Store {
    /// The redb file; absent when `url` selects PostgreSQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// The PostgreSQL store, its password masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    retention: String,
    /// No budget: the key is left out, as in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_size: Option<String>,
}

#[derive(Serialize)]
struct Destination {
    id: String,
    url: String,
    topics: Vec<String>,
    timeout: String,
    concurrency: u32,
    headers: BTreeMap<String, String>,
    secret: Vec<&'static str>,
    retry: RetrySpec,
    labels: BTreeMap<String, String>,
}

impl Effective {
    fn of(config: &Config) -> Effective {
        Effective {
            source: config.source.to_string(),
            config: EffectiveConfig {
                server: Server {
                    listen: config.server.listen.to_string(),
                    token: config.server.token.as_ref().map(|_| mask::MASK),
                    max_body: size_text(config.server.max_body),
                    max_connections: config.server.max_connections,
                    deny_private_destinations: config.server.deny_private_destinations,
                    max_destinations: config.server.max_destinations,
                },
                store: Store {
                    path: config
                        .store
                        .url
                        .is_none()
                        .then(|| config.store.path.display().to_string()),
                    url: config.store.url.as_ref().map(|url| url.to_string()),
                    retention: format_duration_exact(config.store.retention),
                    max_size: config.store.max_size.map(size_text),
                },
                destinations: config.destinations.iter().map(Destination::of).collect(),
                alerts: Alerts::of(&config.alerts),
            },
        }
    }
}

impl Alerts {
    fn of(alerts: &crate::config::AlertsConfig) -> Alerts {
        let destination = alerts.destination.as_ref();
        Alerts {
            url: destination.map(|d| mask::url(&d.url)),
            secret: destination
                .map_or_else(Vec::new, |d| d.secrets.iter().map(|_| mask::MASK).collect()),
            types: alerts.types.iter().map(|t| t.as_str()).collect(),
            in_retry_after: format_duration_exact(alerts.in_retry_after),
            retry: destination.map(|d| d.retry.to_spec()),
        }
    }
}

impl Destination {
    fn of(destination: &DestinationConfig) -> Destination {
        Destination {
            id: destination.id.clone(),
            url: mask::url(&destination.url),
            topics: destination.topics.clone(),
            timeout: format_duration_exact(destination.timeout),
            concurrency: destination.concurrency,
            headers: destination
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), mask::header_value(name, value)))
                .collect(),
            secret: destination.secrets.iter().map(|_| mask::MASK).collect(),
            retry: destination.retry.to_spec(),
            labels: destination.labels.clone(),
        }
    }
}

/// The units [`crate::policy::units::parse_size`] reads, largest first, as
/// people write them.
const SIZE_UNITS: [(&str, u64); 8] = [
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
];

/// A byte count the way the config is written: the largest unit that divides
/// it exactly, else bytes.
fn size_text(bytes: u64) -> String {
    SIZE_UNITS
        .iter()
        .find(|(_, size)| bytes > 0 && bytes.is_multiple_of(*size))
        .map(|(name, size)| format!("{}{name}", bytes / size))
        .unwrap_or_else(|| format!("{bytes}B"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;

    #[test]
    fn credentials_are_masked_and_defaults_spelled_out() {
        let text = r#"
            [server]
            token = "s3cret-token"
            [[destinations]]
            id = "orders"
            url = "https://user:hunter2@example.com/hook"
            secret = "whsec_dGVzdHNlY3JldA=="
            headers = { Authorization = "Bearer abc", X-Env = "prod" }
        "#;
        let config = Config::parse(text, ConfigSource::File("t.toml".into()), None).unwrap();
        let effective = Effective::of(&config);
        let rendered = toml::to_string(&effective.config).unwrap();
        for secret in ["s3cret-token", "hunter2", "whsec_", "Bearer abc"] {
            assert!(!rendered.contains(secret), "{secret} shown:\n{rendered}");
        }
        assert!(rendered.contains("X-Env = \"prod\""), "{rendered}");
        assert!(rendered.contains("max_retries"), "{rendered}");
        assert!(
            rendered.contains("listen = \"127.0.0.1:8686\""),
            "{rendered}"
        );
    }

    #[test]
    fn sizes_print_in_the_units_the_config_reads_back() {
        use crate::policy::units::parse_size;
        let cases = [
            (1_048_576, "1MiB"),
            (64 * 1024, "64KiB"),
            (1_500_000, "1500KB"),
            (3 * (1 << 30), "3GiB"),
            (2_000_000_000, "2GB"),
            (1023, "1023B"),
            (0, "0B"),
        ];
        for (bytes, text) in cases {
            assert_eq!(size_text(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes), "{text} reads back");
        }
    }

    #[test]
    fn the_printed_max_body_pastes_back() {
        let text = "[server]\nmax_body = \"1 MiB\"\n";
        let config = Config::parse(text, ConfigSource::File("t.toml".into()), None).unwrap();
        let rendered = toml::to_string(&Effective::of(&config).config).unwrap();
        assert!(rendered.contains("max_body = \"1MiB\""), "{rendered}");
        let printed: toml::Table = toml::from_str(&rendered).unwrap();
        let server = toml::to_string(&printed["server"]).unwrap();
        let again = Config::parse(
            &format!("[server]\n{server}"),
            ConfigSource::File("again.toml".into()),
            None,
        )
        .unwrap();
        assert_eq!(again.server.max_body, config.server.max_body);
    }

    #[test]
    fn every_key_of_the_config_is_shown() {
        let text = r#"
            [server]
            max_destinations = 42
            [[destinations]]
            id = "orders"
            url = "https://example.com/hook"
            labels = { tenant = "acme", tier = "gold" }
        "#;
        let config = Config::parse(text, ConfigSource::File("t.toml".into()), None).unwrap();
        let effective = Effective::of(&config);
        let json = serde_json::to_value(&effective).unwrap();
        assert_eq!(json["server"]["max_destinations"], 42, "{json}");
        assert_eq!(
            json["destinations"][0]["labels"],
            serde_json::json!({ "tenant": "acme", "tier": "gold" }),
            "{json}"
        );
        assert_eq!(json["alerts"]["in_retry_after"], "15m", "{json}");
        assert_eq!(json["alerts"].get("url"), None, "{json}");
        let rendered = toml::to_string(&effective.config).unwrap();
        assert!(rendered.contains("max_destinations = 42"), "{rendered}");
        assert!(rendered.contains("tenant = \"acme\""), "{rendered}");
    }

    #[test]
    fn alerts_are_shown_with_their_secret_masked() {
        let text = r#"
            [alerts]
            url = "https://ops:hunter2@alerts.example.com/hook"
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            types = ["destination_disabled"]
            in_retry_after = "30m"
        "#;
        let config = Config::parse(text, ConfigSource::File("t.toml".into()), None).unwrap();
        let effective = Effective::of(&config);
        let rendered = toml::to_string(&effective.config).unwrap();
        assert!(rendered.contains("[alerts]"), "{rendered}");
        assert!(
            rendered.contains("types = [\"destination_disabled\"]"),
            "{rendered}"
        );
        assert!(rendered.contains("in_retry_after = \"30m\""), "{rendered}");
        assert!(!rendered.contains("hunter2"), "{rendered}");
        assert!(!rendered.contains("MfKQ9r8"), "{rendered}");
    }

    #[test]
    fn a_postgres_store_is_shown_masked_and_without_the_unused_path() {
        let text = "[store]\nurl = \"postgres://hook:hunter2@db.internal/hw\"\n";
        let config = Config::parse(text, ConfigSource::File("t.toml".into()), None).unwrap();
        let effective = Effective::of(&config);
        let rendered = toml::to_string(&effective.config).unwrap();
        assert!(!rendered.contains("hunter2"), "{rendered}");
        assert!(rendered.contains("url = \"postgres://hook:"), "{rendered}");
        assert!(!rendered.contains("path ="), "{rendered}");
        let note = store_note(&config.store);
        assert!(
            note.contains("db.internal") && !note.contains("hunter2"),
            "{note}"
        );
        let redb = Config::parse("", ConfigSource::File("t.toml".into()), None).unwrap();
        let rendered = toml::to_string(&Effective::of(&redb).config).unwrap();
        assert!(rendered.contains("path = "), "{rendered}");
        assert!(!rendered.contains("url = "), "{rendered}");
    }
}
