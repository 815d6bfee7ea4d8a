//! Loading and validating `hookwatch.toml`.
//!
//! The file is read into a raw form where every duration, size and rule is still a
//! string, then validated key by key, so an error can always say which file, which
//! key (for a destination, which id) and what is wrong. Nothing here panics on bad
//! input: the binary turns a [`ConfigError`] into one line and exit code 2.

use crate::policy::units::{parse_duration, parse_size};
use crate::policy::{RetryPolicy, RetrySpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8686";
pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(60 * 86_400);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_CONCURRENCY: u32 = 8;
/// The most attempts one destination may have in flight; keeps a typo from
/// opening thousands of sockets.
pub const MAX_CONCURRENCY: u32 = 1024;
/// The longest destination id (ids appear in URLs, keys and log lines).
pub const MAX_ID_BYTES: usize = 128;
/// `server.max_destinations` unless set: destinations created through the API
/// beyond it are refused.
pub const DEFAULT_MAX_DESTINATIONS: usize = 100_000;
/// The id of the built-in destination that delivers `[alerts]`: reserved, so
/// neither the config file nor the API may define one with it.
pub const ALERTS_DESTINATION: &str = "hookwatch-alerts";
/// `alerts.in_retry_after` unless set.
pub const DEFAULT_IN_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// The retry table of the alerts destination unless `alerts.retry` says
/// otherwise: the webhook style (`n⁴` s clamped to [60 s, 4 d], 25 retries,
/// 30 days), failing an alert on a 4xx rather than disabling the destination.
const ALERTS_RETRY: &str = r#"
preset = "webhook"
on_client_error = "fail"
"#;

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file, or "built-in defaults"/"environment".
    pub file: String,
    /// The key path, e.g. `destinations[orders].timeout`; empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where the configuration came from, for the first-run guide and the logs.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigSource {
    File(PathBuf),
    /// No file was found; `searched` lists where we looked.
    Defaults {
        searched: Vec<PathBuf>,
    },
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Defaults { .. } => f.write_str("built-in defaults"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub source: ConfigSource,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub destinations: Vec<DestinationConfig>,
    pub alerts: AlertsConfig,
}

/// `[alerts]`: which notices are sent where, and when a destination has been
/// in retry too long.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// The built-in destination ([`ALERTS_DESTINATION`]) each alert is
    /// queued for, made from `url`, `secret` and `retry`; `None` without `url`.
    pub destination: Option<DestinationConfig>,
    /// The notice types sent (`types`; every type unless set).
    pub types: std::collections::BTreeSet<crate::model::NoticeType>,
    /// A destination continuously in retry longer than this gets one
    /// `in_retry_too_long` notice per retry episode.
    pub in_retry_after: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            destination: None,
            types: crate::model::NoticeType::ALL.into_iter().collect(),
            in_retry_after: DEFAULT_IN_RETRY_AFTER,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// `server.listen` as written when it named a host rather than an
    /// address (`localhost:8686`), with every address it resolved to; the
    /// start log says which one `listen` is.
    pub listen_resolved_from: Option<ResolvedListen>,
    pub token: Option<String>,
    pub max_body: u64,
    /// Open API connections at most; more wait to be accepted.
    pub max_connections: usize,
    /// Refuse destinations whose addresses are loopback, private or link-local.
    pub deny_private_destinations: bool,
    /// Destinations (from the file and the API together) at most; creating
    /// one more through the API is refused.
    pub max_destinations: usize,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The redb file of one box; not used when `url` names a database.
    pub path: PathBuf,
    /// `store.url` (or `HOOKWATCH_STORE_URL`): PostgreSQL, shared by every
    /// node, instead of the redb file.
    pub url: Option<StoreUrl>,
    pub retention: Duration,
    /// `store.max_size`: the budget of the store file's length, if any (see
    /// `store::budget`).
    pub max_size: Option<u64>,
}

impl StoreConfig {
    /// The store as logs and front ends may name it: the database URL with
    /// its password masked, or the redb file's path.
    pub fn describe(&self) -> String {
        match &self.url {
            Some(url) => url.to_string(),
            None => self.path.display().to_string(),
        }
    }
}

/// The variable that names a PostgreSQL store when the file does not.
pub const STORE_URL_ENV: &str = "HOOKWATCH_STORE_URL";

/// A PostgreSQL URL (`postgres://` or `postgresql://`). Shown (`Display`,
/// `Debug`) with its password masked; only [`StoreUrl::connection_string`]
/// gives it whole, for the database client.
#[derive(Clone, PartialEq)]
pub struct StoreUrl {
    url: url::Url,
    /// Read from [`STORE_URL_ENV`] rather than the file.
    from_env: bool,
}

impl StoreUrl {
    /// Parses `text`; the error says what is wrong without repeating `text`,
    /// which may hold a password.
    pub fn parse(text: &str, from_env: bool) -> Result<StoreUrl, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| {
            format!(
                "is not a URL like postgres://USER:PASSWORD@HOST:5432/DATABASE ({e}); a redb file is store.path"
            )
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "must be a postgres:// (or postgresql://) URL, got a {}:// one",
                url.scheme()
            ));
        }
        Ok(StoreUrl { url, from_env })
    }

    /// The URL with its password, for the database client only.
    pub fn connection_string(&self) -> &str {
        self.url.as_str()
    }

    /// The host it names (absent for a unix socket given as a parameter).
    pub fn host(&self) -> Option<&str> {
        self.url.host_str().filter(|h| !h.is_empty())
    }

    /// Whether it came from [`STORE_URL_ENV`] rather than the file.
    pub fn from_env(&self) -> bool {
        self.from_env
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::mask::database_url(&self.url))
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// What the process environment adds to the file. No `Debug`: it holds
/// credentials as given.
#[derive(Clone, Default)]
pub struct ConfigEnv {
    /// `HOOKWATCH_TOKEN`: `server.token` when the file leaves it out.
    pub token: Option<String>,
    /// [`STORE_URL_ENV`]: `store.url` when the file leaves it out (empty
    /// counts as unset).
    pub store_url: Option<String>,
}

impl ConfigEnv {
    pub fn from_process() -> ConfigEnv {
        ConfigEnv {
            token: std::env::var("HOOKWATCH_TOKEN").ok(),
            store_url: std::env::var(STORE_URL_ENV)
                .ok()
                .filter(|url| !url.trim().is_empty()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationConfig {
    pub id: String,
    pub url: reqwest::Url,
    pub topics: Vec<String>,
    /// `topics`, compiled once here so matching an ingest costs no parsing.
    pub topic_patterns: Vec<crate::model::TopicPattern>,
    pub timeout: Duration,
    pub concurrency: u32,
    pub headers: BTreeMap<String, String>,
    /// Signing secrets (`whsec_…`); every attempt is signed with each, so a
    /// receiver can rotate without a gap.
    pub secrets: Vec<String>,
    /// The retry table as written, kept so live edits can be merged over it.
    pub retry_spec: RetrySpec,
    pub retry: RetryPolicy,
    /// `labels = { tenant = "acme" }`: what operators select destinations,
    /// their events and bulk retries by.
    pub labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    store: RawStore,
    /// Kept as tables so that an error can name the destination's id.
    #[serde(default)]
    destinations: Vec<toml::Table>,
    #[serde(default)]
    alerts: RawAlerts,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    url: Option<String>,
    secret: Option<OneOrMany>,
    types: Option<Vec<String>>,
    in_retry_after: Option<String>,
    /// A destination's retry table; checked with the destination's rules.
    retry: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    token: Option<String>,
    #[serde(default, deserialize_with = "size_text")]
    max_body: Option<String>,
    max_connections: Option<i64>,
    deny_private_destinations: Option<bool>,
    max_destinations: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<PathBuf>,
    url: Option<String>,
    retention: Option<String>,
    #[serde(default, deserialize_with = "size_text")]
    max_size: Option<String>,
}

/// A size key's value as text: `"64KiB"` or `"1048576"`, or a bare number
/// of bytes (`1048576`), which the README allows too. Read by `parse_size`.
fn size_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    struct SizeVisitor;
    impl serde::de::Visitor<'_> for SizeVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a size (\"64KiB\", \"2GiB\" or a number of bytes)")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(Some(text.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, bytes: u64) -> Result<Self::Value, E> {
            Ok(Some(bytes.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, bytes: i64) -> Result<Self::Value, E> {
            // A negative size is refused by parse_size, naming the key.
            Ok(Some(bytes.to_string()))
        }
    }
    deserializer.deserialize_any(SizeVisitor)
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// One destination as written: a `[[destinations]]` table of the config file,
/// or the JSON body of `POST /v1/destinations` (the same keys). Kept as
/// written for destinations created through the API, which the store holds
/// and reads back at start.
#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    topics: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<OneOrMany>,
    /// Checked on its own, so its errors say `retry.<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<toml::Table>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

/// The places searched, in order, when no `--config` is given.
pub fn default_search_paths() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("hookwatch.toml")];
    if let Some(dir) = xdg_dir("XDG_CONFIG_HOME", ".config") {
        paths.push(dir.join("hookwatch").join("config.toml"));
    }
    paths
}

fn xdg_dir(var: &str, fallback_under_home: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| PathBuf::from(home).join(fallback_under_home)),
    }
}

pub fn default_store_path() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", ".local/share")
        .unwrap_or_else(|| PathBuf::from("."))
        .join("hookwatch")
        .join("hookwatch.redb")
}

impl Config {
    /// Loads `explicit` (which must exist), or the first of the default paths that
    /// exists, or the built-in defaults. `HOOKWATCH_TOKEN` fills `server.token`
    /// when the file leaves it out, `HOOKWATCH_STORE_URL` `store.url`.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let env = ConfigEnv::from_process();
        let found = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => default_search_paths()
                .into_iter()
                .find(|path| path.is_file()),
        };
        let Some(path) = found else {
            let searched = default_search_paths();
            return Config::parse_with_env("", ConfigSource::Defaults { searched }, env);
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            key: String::new(),
            message: format!("cannot read config file: {e}"),
        })?;
        Config::parse_with_env(&text, ConfigSource::File(path), env)
    }

    /// Parses and validates TOML text; `source` names it in errors.
    /// `env_token` is `HOOKWATCH_TOKEN`; no other variable is read.
    pub fn parse(
        text: &str,
        source: ConfigSource,
        env_token: Option<String>,
    ) -> Result<Config, ConfigError> {
        let env = ConfigEnv {
            token: env_token,
            store_url: None,
        };
        Config::parse_with_env(text, source, env)
    }

    /// [`Config::parse`] with what the environment adds (see [`ConfigEnv`]).
    pub fn parse_with_env(
        text: &str,
        source: ConfigSource,
        env: ConfigEnv,
    ) -> Result<Config, ConfigError> {
        let env_token = env.token;
        let file = source.to_string();
        let fail = |key: &str, message: String| ConfigError {
            file: file.clone(),
            key: key.to_string(),
            message,
        };
        let raw: RawConfig = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path.is_empty() || path == "." {
                    // A syntax error: toml's own text names line and column.
                    return fail("", inner.to_string().trim_end().replace('\n', " "));
                }
                let (key, message) = serde_error(&path, inner.message());
                let message = match inner.span() {
                    Some(span) => {
                        let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                        format!("{message} (line {line})")
                    }
                    None => message,
                };
                fail(&key, message)
            })?;

        let listen_text = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let (listen, listen_resolved_from) =
            resolve_listen(listen_text).map_err(|m| fail("server.listen", m))?;
        let token = match raw.server.token.or(env_token) {
            Some(t) if t.trim().is_empty() => {
                return Err(fail("server.token", "must not be empty".into()));
            }
            other => other,
        };
        if !listen.ip().is_loopback() && token.is_none() {
            return Err(fail(
                "server.token",
                format!(
                    "server.listen is {listen}, which is reachable from other machines; set a token (or HOOKWATCH_TOKEN) or listen on 127.0.0.1"
                ),
            ));
        }
        let max_body = match raw.server.max_body.as_deref() {
            Some(text) => parse_size(text).map_err(|m| fail("server.max_body", m))?,
            None => DEFAULT_MAX_BODY,
        };
        let max_connections = match raw.server.max_connections {
            Some(n) if (1..=65_536).contains(&n) => n as usize,
            Some(n) => {
                return Err(fail(
                    "server.max_connections",
                    format!("must be between 1 and 65536, got {n}"),
                ))
            }
            None => DEFAULT_MAX_CONNECTIONS,
        };
        let max_destinations = match raw.server.max_destinations {
            Some(n) if n >= 1 => n as usize,
            Some(n) => {
                return Err(fail(
                    "server.max_destinations",
                    format!("must be at least 1, got {n}"),
                ))
            }
            None => DEFAULT_MAX_DESTINATIONS,
        };
        if max_body == 0 {
            return Err(fail("server.max_body", "must be greater than zero".into()));
        }
        let retention = match raw.store.retention.as_deref() {
            Some(text) => parse_duration(text).map_err(|m| fail("store.retention", m))?,
            None => DEFAULT_RETENTION,
        };
        if retention.is_zero() {
            return Err(fail("store.retention", "must be greater than zero".into()));
        }
        let max_size = match raw.store.max_size.as_deref() {
            Some(text) => {
                let bytes = parse_size(text).map_err(|m| fail("store.max_size", m))?;
                if bytes < crate::store::MIN_BUDGET {
                    return Err(fail(
                        "store.max_size",
                        format!(
                            "must be at least {}, got {text}",
                            crate::store::format_bytes(crate::store::MIN_BUDGET)
                        ),
                    ));
                }
                Some(bytes)
            }
            None => None,
        };
        let store_url = store_url(
            raw.store.url.as_deref(),
            env.store_url.as_deref(),
            raw.store.path.is_some(),
        )
        .map_err(|m| fail("store.url", m))?;
        if store_url.is_some() && max_size.is_some() {
            return Err(fail(
                "store.max_size",
                "budgets the redb file's size; a PostgreSQL store (store.url) has no such budget: remove it".into(),
            ));
        }
        let store_path =
            resolve_store_path(raw.store.path, &source).map_err(|m| fail("store.path", m))?;

        let mut seen = HashSet::new();
        let mut destinations = Vec::with_capacity(raw.destinations.len());
        for (index, table) in raw.destinations.into_iter().enumerate() {
            let dest = destination_from_table(table, index).map_err(|(key, message)| {
                // The table was detached from the text to name the id, so the
                // line is looked up again by the key's path.
                let message = match line_of_key(text, &key) {
                    Some(line) if message.starts_with("expected ") => {
                        format!("{message} (line {line})")
                    }
                    _ => message,
                };
                fail(&key, message)
            })?;
            if !seen.insert(dest.id.clone()) {
                return Err(fail(
                    &format!("destinations[{}].id", dest.id),
                    format!("destination id \"{}\" is used twice", dest.id),
                ));
            }
            if dest.id == ALERTS_DESTINATION {
                return Err(fail(
                    &format!("destinations[{}].id", dest.id),
                    format!("\"{ALERTS_DESTINATION}\" is reserved for [alerts]"),
                ));
            }
            destinations.push(dest);
        }
        let alerts = alerts_from_raw(raw.alerts).map_err(|(key, message)| fail(&key, message))?;
        Ok(Config {
            source,
            server: ServerConfig {
                listen,
                listen_resolved_from,
                token,
                max_body,
                max_connections,
                deny_private_destinations: raw.server.deny_private_destinations.unwrap_or(false),
                max_destinations,
            },
            store: StoreConfig {
                path: store_path,
                url: store_url,
                retention,
                max_size,
            },
            destinations,
            alerts,
        })
    }
}

/// A host name in `server.listen` and what the system resolver made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedListen {
    pub written: String,
    pub candidates: Vec<SocketAddr>,
}

impl fmt::Display for ResolvedListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.candidates.iter().map(|a| a.to_string()).collect();
        write!(f, "{} resolved to {}", self.written, all.join(", "))
    }
}

/// `server.listen` as an address: an IP address and port as is, else a
/// `host:port` resolved with the system resolver, taking the first loopback
/// address it answers (the first address when none is loopback).
fn resolve_listen(text: &str) -> Result<(SocketAddr, Option<ResolvedListen>), String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok((addr, None));
    }
    let not_an_address =
        || format!("\"{text}\" is not an address like 127.0.0.1:8686 or localhost:8686");
    let (host, port) = text.rsplit_once(':').ok_or_else(not_an_address)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(not_an_address());
    }
    use std::net::ToSocketAddrs as _;
    let candidates: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve \"{host}\": {e}"))?
        .collect();
    let chosen = candidates
        .iter()
        .find(|a| a.ip().is_loopback())
        .or_else(|| candidates.first())
        .copied()
        .ok_or_else(|| format!("\"{host}\" resolves to no address"))?;
    Ok((
        chosen,
        Some(ResolvedListen {
            written: text.to_string(),
            candidates,
        }),
    ))
}

/// The PostgreSQL store, if one is named: `store.url` in the file, else
/// [`STORE_URL_ENV`]. Where the data lives must never be a guess, so a URL
/// beside a written `store.path`, or a file and an environment naming two
/// different databases, is refused rather than one of them silently winning.
fn store_url(
    in_file: Option<&str>,
    in_env: Option<&str>,
    path_written: bool,
) -> Result<Option<StoreUrl>, String> {
    let from_file = in_file
        .map(|text| StoreUrl::parse(text, false))
        .transpose()?;
    let from_env = in_env
        .map(|text| StoreUrl::parse(text, true))
        .transpose()
        .map_err(|m| format!("{m} (from {STORE_URL_ENV})"))?;
    let url = match (from_file, from_env) {
        (Some(file), Some(env)) if file.url != env.url => {
            // Masked, two URLs differing only in the password look alike.
            let how = if file.to_string() == env.to_string() {
                " (they differ in the password)"
            } else {
                ""
            };
            return Err(format!(
                "is {file} in the file but {env} in {STORE_URL_ENV}{how}; name one database (unset {STORE_URL_ENV} or remove store.url)"
            ));
        }
        (Some(file), _) => Some(file),
        (None, env) => env,
    };
    match url {
        Some(url) if path_written => {
            // The message is shown after "store.url: ".
            let origin = if url.from_env {
                format!("{STORE_URL_ENV} names")
            } else {
                "names".to_string()
            };
            Err(format!(
                "{origin} a PostgreSQL store and store.path a redb file; a store is one or the other: remove store.path to use PostgreSQL, or {} to keep the file",
                if url.from_env { "unset it" } else { "remove store.url" }
            ))
        }
        url => Ok(url),
    }
}

/// `store.path` made absolute: a relative path is taken from the config
/// file's directory (so the store does not move with the working directory);
/// without a file, from the working directory.
fn resolve_store_path(written: Option<PathBuf>, source: &ConfigSource) -> Result<PathBuf, String> {
    let path = written.unwrap_or_else(default_store_path);
    let path = match source {
        ConfigSource::File(file) if path.is_relative() => match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
            _ => path,
        },
        _ => path,
    };
    std::path::absolute(&path)
        .map_err(|e| format!("cannot make \"{}\" absolute: {e}", path.display()))
}

/// Validates `[alerts]`; errors name the key (`alerts.types`, `alerts.url`).
fn alerts_from_raw(raw: RawAlerts) -> Result<AlertsConfig, (String, String)> {
    let mut alerts = AlertsConfig::default();
    if let Some(text) = raw.in_retry_after.as_deref() {
        alerts.in_retry_after =
            parse_duration(text).map_err(|m| ("alerts.in_retry_after".to_string(), m))?;
        if alerts.in_retry_after.is_zero() {
            return Err((
                "alerts.in_retry_after".into(),
                "must be greater than zero".into(),
            ));
        }
    }
    if let Some(types) = raw.types {
        alerts.types = types
            .iter()
            .map(|t| t.parse::<crate::model::NoticeType>())
            .collect::<Result<_, _>>()
            .map_err(|m| ("alerts.types".to_string(), m))?;
    }
    let Some(url) = raw.url else {
        if raw.secret.is_some() || raw.retry.is_some() {
            return Err((
                "alerts.url".into(),
                "is required when alerts.secret or alerts.retry is set".into(),
            ));
        }
        return Ok(alerts);
    };
    let retry = match raw.retry {
        Some(table) => table,
        None => ALERTS_RETRY
            .parse()
            .expect("the built-in alerts retry table parses"),
    };
    let destination = RawDestination {
        id: Some(ALERTS_DESTINATION.to_string()),
        url: Some(url),
        topics: Vec::new(),
        timeout: None,
        concurrency: None,
        headers: BTreeMap::new(),
        secret: raw.secret,
        retry: Some(retry),
        labels: BTreeMap::new(),
    };
    alerts.destination = Some(validate_destination(destination, KeyStyle::Alerts)?);
    Ok(alerts)
}

/// A destination id appears in URLs and key paths, so it is kept to a safe alphabet.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let url =
        reqwest::Url::parse(text).map_err(|e| format!("\"{text}\" is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("\"{text}\" must be an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(|h| h.is_empty()) {
        return Err(format!("\"{text}\" has no host"));
    }
    Ok(url)
}

pub fn validate_concurrency(value: i64) -> Result<u32, String> {
    if (1..=MAX_CONCURRENCY as i64).contains(&value) {
        Ok(value as u32)
    } else {
        Err(format!(
            "must be between 1 and {MAX_CONCURRENCY}, got {value}"
        ))
    }
}

pub fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, value) in headers {
        reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("\"{name}\" is not a valid header name"))?;
        reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| format!("the value of \"{name}\" is not a valid header value"))?;
    }
    Ok(())
}

pub fn validate_secret(secret: &str) -> Result<(), String> {
    use base64::Engine as _;
    let key = secret
        .strip_prefix("whsec_")
        .ok_or_else(|| "a secret must start with \"whsec_\"".to_string())?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| "the part after \"whsec_\" must be base64".to_string())?;
    if bytes.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(())
}

/// Deserialises one `[[destinations]]` table, naming the destination (by id, or
/// by position when the id is missing) and the key in any error.
fn destination_from_table(
    table: toml::Table,
    index: usize,
) -> Result<DestinationConfig, (String, String)> {
    let label = match table.get("id").and_then(|v| v.as_str()) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => index.to_string(),
    };
    let raw: RawDestination = deserialize_at(&format!("destinations[{label}]"), table)?;
    validate_destination(raw, KeyStyle::File { index })
}

/// Deserialises one table; an error names the key inside it (found by
/// serde_path_to_error) after `prefix`, e.g. `destinations[a].concurrency`.
fn deserialize_at<T: serde::de::DeserializeOwned>(
    prefix: &str,
    table: toml::Table,
) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let key = if path.is_empty() || path == "." {
            prefix.to_string()
        } else {
            format!("{prefix}.{path}")
        };
        serde_error(&key, e.inner().message())
    })
}

/// Turns serde's messages into a key path and a message for people:
/// "unknown field `x`, expected ..." names the unknown key, and "invalid type:
/// string "8", expected i64" becomes "expected an integer, got string "8"".
pub(crate) fn serde_error(key: &str, message: &str) -> (String, String) {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once('`') {
            let expected = expected.trim_start_matches(',').trim();
            // serde_path_to_error may already have put the field in the path
            // (alone when it is at the top level: no parent to join it to).
            let parent = if key == field {
                ""
            } else {
                key.strip_suffix(field)
                    .and_then(|k| k.strip_suffix('.'))
                    .unwrap_or(key)
            };
            let path = if parent.is_empty() {
                field.to_string()
            } else {
                format!("{parent}.{field}")
            };
            return (path, format!("unknown key ({expected})"));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((got, expected)) = rest.rsplit_once(", expected ") {
            let expected = match expected {
                "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" => {
                    "an integer"
                }
                "f32" | "f64" => "a number",
                "a sequence" => "a list",
                "a map" => "a table",
                other => other,
            };
            return (
                key.to_string(),
                format!("expected {expected}, got {}", unexpected_value(got)),
            );
        }
    }
    (key.to_string(), message.to_string())
}

/// serde's description of a value it did not expect, as written in the file:
/// `string "many"` becomes `"many"`, ``integer `5` `` becomes `5`; a kind
/// without a value (`map`, `sequence`) is kept.
fn unexpected_value(got: &str) -> String {
    if let Some(text) = got.strip_prefix("string ") {
        return text.to_string();
    }
    for kind in ["integer ", "floating point ", "boolean "] {
        if let Some(value) = got
            .strip_prefix(kind)
            .and_then(|v| v.strip_prefix('`'))
            .and_then(|v| v.strip_suffix('`'))
        {
            return value.to_string();
        }
    }
    match got {
        "map" => "a table".to_string(),
        "sequence" => "a list".to_string(),
        other => other.to_string(),
    }
}

/// The line in `text` of the value at a key path as errors name it
/// (`server.max_connections`, `destinations[orders].retry.max_retries`, where
/// a destination is named by its id or, lacking one, its position).
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut item: &toml_edit::Item = document.as_item();
    for segment in key.split('.') {
        let (name, selector) = match segment.split_once('[') {
            Some((name, rest)) => (name, Some(rest.strip_suffix(']')?)),
            None => (segment, None),
        };
        item = item.get(name)?;
        if let Some(selector) = selector {
            let tables = item.as_array_of_tables()?;
            let by_id = tables
                .iter()
                .find(|t| t.get("id").and_then(|v| v.as_str()) == Some(selector));
            let table = match by_id {
                Some(table) => table,
                None => tables.get(selector.parse().ok()?)?,
            };
            return line_in_table(text, table, key.split_once("].")?.1);
        }
    }
    let span = item.span()?;
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

fn line_in_table(text: &str, table: &toml_edit::Table, rest: &str) -> Option<usize> {
    let mut item = table.get(rest.split('.').next()?)?;
    for name in rest.split('.').skip(1) {
        item = item.get(name)?;
    }
    let span = item.span()?;
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

/// How a destination's errors name their key: in the config file
/// `destinations[<id>].<key>` (or by position while the id is unknown); in an
/// API body just `<key>`.
#[derive(Clone, Copy)]
enum KeyStyle {
    File {
        index: usize,
    },
    Api,
    /// The `[alerts]` table, whose keys make the alerts destination.
    Alerts,
}

impl KeyStyle {
    fn key(self, id: Option<&str>, field: &str) -> String {
        match (self, id) {
            (KeyStyle::File { .. }, Some(id)) => format!("destinations[{id}].{field}"),
            (KeyStyle::File { index }, None) => format!("destinations[{index}].{field}"),
            (KeyStyle::Api, _) => field.to_string(),
            (KeyStyle::Alerts, _) => format!("alerts.{field}"),
        }
    }
}

/// A destination from the JSON body of the API (the config file's keys):
/// validated exactly as a `[[destinations]]` table is, errors naming the key
/// (`url`, `retry.max_retries`). Answers the destination and the document
/// to store for it.
pub fn destination_from_json(
    body: serde_json::Value,
) -> Result<(DestinationConfig, RawDestination), (String, String)> {
    let raw: RawDestination = serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let key = if path.is_empty() || path == "." {
            "body".to_string()
        } else {
            path
        };
        serde_error(&key, &e.inner().to_string())
    })?;
    let config = validate_destination(raw.clone(), KeyStyle::Api)?;
    Ok((config, raw))
}

impl RawDestination {
    /// The document with `id` set (a `PUT` may leave it out of its body).
    pub fn with_id(mut self, id: &str) -> RawDestination {
        self.id = Some(id.to_string());
        self
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Reads back a document stored by [`destination_from_json`].
    pub fn load(stored: &[u8]) -> Result<DestinationConfig, String> {
        let body: serde_json::Value =
            serde_json::from_slice(stored).map_err(|e| format!("not JSON: {e}"))?;
        destination_from_json(body)
            .map(|(config, _)| config)
            .map_err(|(key, message)| format!("{key}: {message}"))
    }
}

/// A label key or value: what can be written unquoted in a selector
/// (`label=tenant:acme`) and a metric label.
pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), String> {
    let fits = |text: &str| {
        !text.is_empty()
            && text.len() <= 63
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    };
    for (key, value) in labels {
        if !fits(key) {
            return Err(format!(
                "label key \"{key}\" must be 1-63 characters of letters, digits, '-', '_', '.' or '/'"
            ));
        }
        if !fits(value) {
            return Err(format!(
                "the value of label \"{key}\" (\"{value}\") must be 1-63 characters of letters, digits, '-', '_', '.' or '/'"
            ));
        }
    }
    Ok(())
}

fn validate_destination(
    raw: RawDestination,
    style: KeyStyle,
) -> Result<DestinationConfig, (String, String)> {
    let id = raw
        .id
        .ok_or_else(|| (style.key(None, "id"), "is missing".to_string()))?;
    if !valid_id(&id) {
        return Err((
            style.key(None, "id"),
            format!("\"{id}\" must be 1-{MAX_ID_BYTES} bytes of letters, digits, '-', '_' or '.'"),
        ));
    }
    let key = |field: &str| style.key(Some(&id), field);
    let url_text = raw
        .url
        .ok_or_else(|| (key("url"), "is missing".to_string()))?;
    let url = parse_url(&url_text).map_err(|m| (key("url"), m))?;
    let mut topic_patterns = Vec::with_capacity(raw.topics.len());
    for topic in &raw.topics {
        if topic.trim().is_empty() {
            return Err((key("topics"), "a topic pattern must not be empty".into()));
        }
        let pattern = crate::model::TopicPattern::new(topic).map_err(|e| {
            (
                key("topics"),
                format!("\"{topic}\" is not a usable pattern: {e}"),
            )
        })?;
        topic_patterns.push(pattern);
    }
    let concurrency = match raw.concurrency {
        Some(n) => validate_concurrency(n).map_err(|m| (key("concurrency"), m))?,
        None => DEFAULT_CONCURRENCY,
    };
    validate_headers(&raw.headers).map_err(|m| (key("headers"), m))?;
    let secrets = match raw.secret {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(list)) => list,
    };
    for secret in &secrets {
        validate_secret(secret).map_err(|m| (key("secret"), m))?;
    }
    let retry_spec: RetrySpec = match raw.retry {
        Some(table) => deserialize_at(&key("retry"), table)?,
        None => RetrySpec::default(),
    };
    let retry = retry_spec
        .resolve()
        .map_err(|e| (key(&format!("retry.{}", e.key)), e.message))?;
    // A preset whose reference names a request timeout (webhook: 30 s) gives
    // the default; a `timeout` the destination sets wins.
    let timeout = match raw.timeout.as_deref() {
        Some(text) => parse_duration(text).map_err(|m| (key("timeout"), m))?,
        None => retry
            .preset
            .and_then(crate::policy::Preset::default_timeout)
            .unwrap_or(DEFAULT_TIMEOUT),
    };
    if timeout.is_zero() {
        return Err((key("timeout"), "must be greater than zero".into()));
    }
    validate_labels(&raw.labels).map_err(|m| (key("labels"), m))?;
    Ok(DestinationConfig {
        id,
        url,
        topics: raw.topics,
        topic_patterns,
        timeout,
        concurrency,
        headers: raw.headers,
        secrets,
        retry_spec,
        retry,
        labels: raw.labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, ConfigSource::File("test.toml".into()), None)
    }

    #[test]
    fn alerts_name_their_key_when_wrong_and_default_to_every_type() {
        let error =
            parse("[alerts]\nurl = \"http://127.0.0.1:1/a\"\ntypes = [\"destination_exploded\"]\n")
                .unwrap_err();
        assert_eq!(error.key, "alerts.types");
        assert!(error.message.contains("destination_exploded"), "{error}");
        let error =
            parse("[alerts]\nurl = \"http://127.0.0.1:1/a\"\nsecret = \"nope\"\n").unwrap_err();
        assert_eq!(error.key, "alerts.secret");
        let error = parse("[alerts]\nin_retry_after = \"soon\"\n").unwrap_err();
        assert_eq!(error.key, "alerts.in_retry_after");
        let error =
            parse("[[destinations]]\nid = \"hookwatch-alerts\"\nurl = \"http://127.0.0.1:1/\"\n")
                .unwrap_err();
        assert_eq!(error.key, "destinations[hookwatch-alerts].id");

        let config = parse("[alerts]\nurl = \"http://127.0.0.1:1/a\"\n").unwrap();
        assert_eq!(
            config.alerts.types.len(),
            crate::model::NoticeType::ALL.len()
        );
        assert_eq!(config.alerts.in_retry_after, DEFAULT_IN_RETRY_AFTER);
        let alerts = config.alerts.destination.unwrap();
        assert_eq!(alerts.id, ALERTS_DESTINATION);
        assert_eq!(alerts.retry.max_retries, 25);
        assert!(parse("").unwrap().alerts.destination.is_none());
    }

    #[test]
    fn an_unknown_key_is_named_once_at_any_depth() {
        let expected = "unknown key (expected `id` or `url`)";
        let message = "unknown field `bogus`, expected `id` or `url`";
        assert_eq!(
            serde_error("bogus", message),
            ("bogus".to_string(), expected.to_string())
        );
        assert_eq!(serde_error("", message).0, "bogus");
        assert_eq!(
            serde_error("destinations[x].bogus", message).0,
            "destinations[x].bogus"
        );
        assert_eq!(
            serde_error("destinations[x]", message).0,
            "destinations[x].bogus"
        );
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.server.max_body, DEFAULT_MAX_BODY);
        assert_eq!(config.store.retention, DEFAULT_RETENTION);
        assert!(config.destinations.is_empty());
    }

    #[test]
    fn full_destination_parses() {
        let config = parse(
            r#"
            [server]
            max_body = "64KiB"
            [[destinations]]
            id = "orders"
            url = "http://127.0.0.1:9/hook"
            topics = ["order.*"]
            timeout = "5s"
            concurrency = 4
            headers = { "X-Env" = "test" }
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            [destinations.retry]
            delay = "10s"
            max_retries = 3
            "#,
        )
        .unwrap();
        assert_eq!(config.server.max_body, 64 * 1024);
        let dest = &config.destinations[0];
        assert_eq!(dest.timeout, Duration::from_secs(5));
        assert_eq!(dest.concurrency, 4);
        assert_eq!(dest.retry.max_retries, 3);
        assert_eq!(dest.secrets.len(), 1);
    }

    #[test]
    fn errors_name_file_and_key() {
        let cases = [
            ("[server]\nlisten = \"nowhere\"", "server.listen"),
            ("[server]\nmax_body = \"lots\"", "server.max_body"),
            ("[store]\nretention = \"3x\"", "store.retention"),
            ("[store]\nmax_size = \"huge\"", "store.max_size"),
            ("[store]\nmax_size = \"1KiB\"", "store.max_size"),
            ("[[destinations]]\nid = \"a\"\nurl = \"ftp://x\"", "destinations[a].url"),
            ("[[destinations]]\nid = \"a\"\nurl = \"http://x\"\ntimeout = \"3x\"", "destinations[a].timeout"),
            ("[[destinations]]\nid = \"a\"\nurl = \"http://x\"\nconcurrency = 0", "destinations[a].concurrency"),
            ("[[destinations]]\nid = \"a\"\nurl = \"http://x\"\nsecret = \"nope\"", "destinations[a].secret"),
            ("[[destinations]]\nid = \"a\"\nurl = \"http://x\"\n[destinations.retry]\nmax_retries = 0", "destinations[a].retry.max_retries"),
            ("[[destinations]]\nurl = \"http://x\"", "destinations[0].id"),
            ("[[destinations]]\nid = \"a\"", "destinations[a].url"),
            ("[[destinations]]\nid = \"a\"\nurl = \"http://x\"\n[[destinations]]\nid = \"a\"\nurl = \"http://y\"", "destinations[a].id"),
            ("[server]\nlisten = \"0.0.0.0:8686\"", "server.token"),
            ("[[destinations]]\nid = \"a\"\nurl = \"http://x\"\ntiemout = \"1s\"", "destinations[a].tiemout"),
            ("[[destinations]]\nid = \"a\"\nurl = \"http://x\"\n[destinations.retry]\ndelya = \"1s\"", "destinations[a].retry.delya"),
            ("[[destinations]]\nid = \"a\"\nurl = \"http://x\"\nconcurrency = \"many\"", "destinations[a].concurrency"),
        ];
        for (text, key) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(err.key, key, "for {text:?}: {err}");
            assert!(err.to_string().starts_with("test.toml: "), "{err}");
        }
    }

    #[test]
    fn sizes_are_text_or_a_bare_number_of_bytes() {
        let config = parse("[server]\nmax_body = 65536\n[store]\nmax_size = 2097152").unwrap();
        assert_eq!(config.server.max_body, 65536);
        assert_eq!(config.store.max_size, Some(2 * 1024 * 1024));
        let config = parse("[server]\nmax_body = \"65536\"").unwrap();
        assert_eq!(config.server.max_body, 65536);
        let err = parse("[server]\nmax_body = -5").unwrap_err();
        assert_eq!(err.key, "server.max_body", "{err}");
        let err = parse("[server]\nmax_body = true").unwrap_err();
        assert_eq!(err.key, "server.max_body", "{err}");
        assert!(err.to_string().contains("a size"), "{err}");
    }

    #[test]
    fn unknown_keys_and_syntax_errors_name_the_file_and_the_key() {
        let err = parse("[server]\nlisn = \"x\"").unwrap_err();
        assert!(err.to_string().contains("test.toml"), "{err}");
        assert!(err.to_string().contains("lisn"), "{err}");
        let err = parse("[server\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn the_example_configs_use_their_presets() {
        use crate::policy::Preset;
        for (text, preset) in [
            (
                include_str!("../assets/monitor-style.toml"),
                Preset::Monitor,
            ),
            (
                include_str!("../assets/webhook-style.toml"),
                Preset::Webhook,
            ),
            (include_str!("../assets/rule-style.toml"), Preset::Rule),
        ] {
            let config = parse(text).unwrap_or_else(|e| panic!("{preset}: {e}"));
            assert!(!config.destinations.is_empty());
            for destination in &config.destinations {
                assert_eq!(destination.retry.preset, Some(preset), "{}", destination.id);
            }
        }
    }

    #[test]
    fn a_preset_limit_is_a_config_error_naming_the_key() {
        let err = parse(
            "[[destinations]]\nid = \"a\"\nurl = \"http://x\"\n[destinations.retry]\npreset = \"monitor\"\nmax_age = \"5d\"",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.toml: destinations[a].retry.max_age: the monitor preset caps every event at 3 days, got 5d"
        );
        let err = parse(
            "[[destinations]]\nid = \"a\"\nurl = \"http://x\"\n[destinations.retry]\npreset = \"webhooks\"",
        )
        .unwrap_err();
        assert_eq!(err.key, "destinations[a].retry.preset");
    }

    /// The webhook reference times requests out after 30 s; a destination's
    /// own `timeout` wins.
    #[test]
    fn the_webhook_preset_gives_the_timeout_default() {
        let text = |timeout: &str| {
            format!("[[destinations]]\nid = \"a\"\nurl = \"http://x\"\n{timeout}[destinations.retry]\npreset = \"webhook\"")
        };
        let config = parse(&text("")).unwrap();
        assert_eq!(
            config.destinations[0].timeout,
            crate::policy::WEBHOOK_TIMEOUT
        );
        let config = parse(&text("timeout = \"5s\"\n")).unwrap();
        assert_eq!(config.destinations[0].timeout, Duration::from_secs(5));
    }

    #[test]
    fn env_token_fills_in_and_public_listen_needs_it() {
        let config = Config::parse(
            "[server]\nlisten = \"0.0.0.0:8686\"",
            ConfigSource::File("t.toml".into()),
            Some("from-env".into()),
        )
        .unwrap();
        assert_eq!(config.server.token.as_deref(), Some("from-env"));
    }

    fn parse_env(text: &str, store_url: Option<&str>) -> Result<Config, ConfigError> {
        let env = ConfigEnv {
            token: None,
            store_url: store_url.map(str::to_string),
        };
        Config::parse_with_env(text, ConfigSource::File("test.toml".into()), env)
    }

    #[test]
    fn a_postgres_url_selects_postgresql_from_the_file_or_the_environment() {
        let config = parse("[store]\nurl = \"postgres://hook:pw@db.internal:5433/hw\"").unwrap();
        let url = config.store.url.as_ref().expect("a PostgreSQL store");
        assert_eq!(url.host(), Some("db.internal"));
        assert!(!url.from_env());
        assert_eq!(
            url.connection_string(),
            "postgres://hook:pw@db.internal:5433/hw"
        );
        let config = parse_env("", Some("postgresql://hook@db/hw")).unwrap();
        let url = config.store.url.as_ref().expect("from the environment");
        assert!(url.from_env());
        assert_eq!(url.host(), Some("db"));
        // The same database named twice is no conflict.
        let same = "postgres://hook@db/hw";
        let config = parse_env(&format!("[store]\nurl = \"{same}\""), Some(same)).unwrap();
        assert!(!config.store.url.unwrap().from_env());
        // Without either, the redb file as before.
        assert!(parse("").unwrap().store.url.is_none());
    }

    #[test]
    fn a_store_url_is_shown_with_its_password_masked() {
        let config =
            parse("[store]\nurl = \"postgres://hook:hunter2@db.internal:5432/hw\"").unwrap();
        let shown = [
            config.store.describe(),
            config.store.url.as_ref().unwrap().to_string(),
            format!("{config:?}"),
        ];
        for text in shown {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert_eq!(
            config.store.describe(),
            format!("postgres://hook:{}@db.internal:5432/hw", crate::mask::MASK)
        );
    }

    #[test]
    fn urls_in_the_file_and_the_environment_must_name_one_database() {
        let file = "[store]\nurl = \"postgres://hw:first@db/hw\"";
        let err = parse_env(file, Some("postgres://hw:second@db/hw")).unwrap_err();
        assert_eq!(err.key, "store.url", "{err}");
        // Masked, they look alike: the message says where they differ.
        assert!(err.message.contains("differ in the password"), "{err}");
        assert!(
            !err.message.contains("first") && !err.message.contains("second"),
            "{err}"
        );
        let err = parse_env(file, Some("postgres://hw:first@db/other")).unwrap_err();
        assert!(!err.message.contains("differ in the password"), "{err}");
        assert!(parse_env(file, Some("postgres://hw:first@db/hw")).is_ok());
    }

    #[test]
    fn a_store_url_that_is_not_postgres_is_refused_naming_store_url() {
        for (file, env) in [
            ("[store]\nurl = \"mysql://root:hunter2@db/hw\"", None),
            ("[store]\nurl = \"/var/lib/hookwatch/hw.redb\"", None),
            ("[store]\nurl = \"hunter2\"", None),
            ("", Some("redis://:hunter2@cache:6379")),
        ] {
            let err = parse_env(file, env).expect_err(file);
            assert_eq!(err.key, "store.url", "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let err = parse("[store]\nurl = \"mysql://db/hw\"").unwrap_err();
        assert!(err.message.contains("postgres://"), "{err}");
        let err = parse_env("", Some("mysql://db/hw")).unwrap_err();
        assert!(err.message.contains(STORE_URL_ENV), "{err}");
    }

    #[test]
    fn a_store_is_one_place_never_a_guess_between_two() {
        // A URL beside a written path: which store holds the events?
        let err = parse("[store]\npath = \"a.redb\"\nurl = \"postgres://db/hw\"").unwrap_err();
        assert_eq!(err.key, "store.url", "{err}");
        assert!(err.message.contains("store.path"), "{err}");
        let err = parse_env("[store]\npath = \"a.redb\"", Some("postgres://db/hw")).unwrap_err();
        assert_eq!(err.key, "store.url", "{err}");
        assert!(err.message.contains(STORE_URL_ENV), "{err}");
        // The file and the environment naming two databases.
        let err = parse_env(
            "[store]\nurl = \"postgres://u:hunter2@one/hw\"",
            Some("postgres://u:hunter2@two/hw"),
        )
        .unwrap_err();
        assert_eq!(err.key, "store.url", "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(
            err.message.contains("one") && err.message.contains("two"),
            "{err}"
        );
        // The redb file's budget means nothing to PostgreSQL.
        let err = parse("[store]\nurl = \"postgres://db/hw\"\nmax_size = \"1GiB\"").unwrap_err();
        assert_eq!(err.key, "store.max_size", "{err}");
    }
}
