//! A typed config builder. Tests say what they want (destinations, retry,
//! server settings); the TOML is rendered here, by the `toml` crate, and
//! nowhere else.

use hookwatch::config::{Config, ConfigSource};
use hookwatch::policy::RetrySpec;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A destination's `[destinations.retry]` table.
#[derive(Clone, Debug, Default)]
pub struct Retry(RetrySpec);

impl Retry {
    pub fn new() -> Retry {
        Retry::default()
    }

    /// `schedule = "fixed"` with this delay and retry count.
    pub fn fixed(delay: &str, max_retries: i64) -> Retry {
        Retry::new()
            .schedule("fixed")
            .delay(delay)
            .max_retries(max_retries)
    }

    pub fn preset(mut self, preset: &str) -> Retry {
        self.0.preset = Some(preset.to_string());
        self
    }

    pub fn retry_after(mut self, honoured: bool) -> Retry {
        self.0.retry_after = Some(honoured);
        self
    }

    pub fn policy(mut self, policy: &str) -> Retry {
        self.0.policy = Some(policy.to_string());
        self
    }

    pub fn schedule(mut self, schedule: &str) -> Retry {
        self.0.schedule = Some(schedule.to_string());
        self
    }

    pub fn delay(mut self, delay: &str) -> Retry {
        self.0.delay = Some(delay.to_string());
        self
    }

    pub fn max_retries(mut self, n: i64) -> Retry {
        self.0.max_retries = Some(n);
        self
    }

    pub fn max_age(mut self, age: &str) -> Retry {
        self.0.max_age = Some(age.to_string());
        self
    }

    pub fn on_client_error(mut self, action: &str) -> Retry {
        self.0.on_client_error = Some(action.to_string());
        self
    }

    pub fn retry_on(mut self, rule: &str) -> Retry {
        self.0.retry_on = Some(rule.to_string());
        self
    }
}

/// One `[[destinations]]` entry.
#[derive(Clone, Debug, Serialize)]
pub struct Dest {
    pub id: String,
    pub url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    topics: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<u32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<RetrySpec>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

impl Dest {
    pub fn new(id: &str, url: &str) -> Dest {
        Dest {
            id: id.to_string(),
            url: url.to_string(),
            topics: Vec::new(),
            timeout: None,
            concurrency: None,
            headers: BTreeMap::new(),
            secret: None,
            retry: None,
            labels: BTreeMap::new(),
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Dest {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// The JSON body of `POST /v1/destinations` for this destination (the
    /// same keys as the config file).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a destination renders as JSON")
    }

    pub fn topics(mut self, topics: &[&str]) -> Dest {
        self.topics = topics.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn timeout(mut self, timeout: &str) -> Dest {
        self.timeout = Some(timeout.to_string());
        self
    }

    pub fn concurrency(mut self, n: u32) -> Dest {
        self.concurrency = Some(n);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Dest {
        self.headers.insert(name.to_string(), value.to_string());
        self
    }

    pub fn secret(mut self, secret: &str) -> Dest {
        self.secret = Some(secret.to_string());
        self
    }

    pub fn retry(mut self, retry: Retry) -> Dest {
        self.retry = Some(retry.0);
        self
    }

    /// `schedule = "fixed"` with this delay and retry count.
    pub fn retry_fixed(self, delay: &str, max_retries: i64) -> Dest {
        self.retry(Retry::fixed(delay, max_retries))
    }
}

#[derive(Clone, Debug, Serialize)]
struct Server {
    listen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deny_private_destinations: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_destinations: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
struct Store {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_size: Option<String>,
}

#[derive(Serialize)]
struct File<'a> {
    server: &'a Server,
    store: Store,
    destinations: &'a [Dest],
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<&'a Alerts>,
}

/// The `[alerts]` table.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Alerts {
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_retry_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<RetrySpec>,
}

impl Alerts {
    pub fn new() -> Alerts {
        Alerts::default()
    }

    pub fn url(mut self, url: &str) -> Alerts {
        self.url = Some(url.to_string());
        self
    }

    pub fn secret(mut self, secret: &str) -> Alerts {
        self.secret = Some(secret.to_string());
        self
    }

    pub fn types(mut self, types: &[&str]) -> Alerts {
        self.types = Some(types.iter().map(|t| t.to_string()).collect());
        self
    }

    pub fn in_retry_after(mut self, after: &str) -> Alerts {
        self.in_retry_after = Some(after.to_string());
        self
    }

    pub fn retry(mut self, retry: Retry) -> Alerts {
        self.retry = Some(retry.0);
        self
    }
}

/// Where a test names its PostgreSQL store.
#[derive(Clone, Debug)]
enum StoreUrlIn {
    /// `store.url` in the file.
    File(String),
    /// `HOOKWATCH_STORE_URL` (already in `env`).
    Env,
}

/// A whole config file. `listen` is `127.0.0.1:0` unless set, and the store
/// path is given when it is rendered.
#[derive(Clone, Debug)]
pub struct TestConfig {
    server: Server,
    retention: Option<String>,
    max_size: Option<String>,
    /// Where a PostgreSQL store is named instead of the redb file.
    store_url: Option<StoreUrlIn>,
    destinations: Vec<Dest>,
    alerts: Option<Alerts>,
    /// The token the daemon's client sends, whether it is in the file or the env.
    pub token: Option<String>,
    /// Environment variables for the daemon process.
    pub env: Vec<(String, String)>,
}

impl Default for TestConfig {
    fn default() -> TestConfig {
        TestConfig {
            server: Server {
                listen: "127.0.0.1:0".to_string(),
                token: None,
                max_body: None,
                max_connections: None,
                deny_private_destinations: None,
                max_destinations: None,
            },
            retention: None,
            max_size: None,
            store_url: None,
            destinations: Vec::new(),
            alerts: None,
            token: None,
            env: Vec::new(),
        }
    }
}

impl TestConfig {
    pub fn new() -> TestConfig {
        TestConfig::default()
    }

    pub fn listen(mut self, addr: &str) -> TestConfig {
        self.server.listen = addr.to_string();
        self
    }

    /// Sets `server.token`; the daemon's client then sends it.
    pub fn token(mut self, token: &str) -> TestConfig {
        self.server.token = Some(token.to_string());
        self.token = Some(token.to_string());
        self
    }

    /// Leaves `server.token` out of the file and passes the token in
    /// `HOOKWATCH_TOKEN`; the daemon's client sends it.
    pub fn token_from_env(mut self, token: &str) -> TestConfig {
        self.env
            .push(("HOOKWATCH_TOKEN".to_string(), token.to_string()));
        self.token = Some(token.to_string());
        self
    }

    pub fn max_body(mut self, size: &str) -> TestConfig {
        self.server.max_body = Some(size.to_string());
        self
    }

    pub fn max_connections(mut self, n: i64) -> TestConfig {
        self.server.max_connections = Some(n);
        self
    }

    pub fn deny_private_destinations(mut self) -> TestConfig {
        self.server.deny_private_destinations = Some(true);
        self
    }

    pub fn max_destinations(mut self, n: i64) -> TestConfig {
        self.server.max_destinations = Some(n);
        self
    }

    pub fn retention(mut self, retention: &str) -> TestConfig {
        self.retention = Some(retention.to_string());
        self
    }

    /// Sets `store.max_size`.
    pub fn max_size(mut self, size: &str) -> TestConfig {
        self.max_size = Some(size.to_string());
        self
    }

    /// Sets the `[alerts]` table.
    pub fn alerts(mut self, alerts: Alerts) -> TestConfig {
        self.alerts = Some(alerts);
        self
    }

    /// Names a PostgreSQL store in `store.url`; the file then has no
    /// `store.path`.
    pub fn store_url(mut self, url: &str) -> TestConfig {
        self.store_url = Some(StoreUrlIn::File(url.to_string()));
        self
    }

    /// Names a PostgreSQL store in `HOOKWATCH_STORE_URL`; the file then has
    /// no `store.path`.
    pub fn store_url_from_env(mut self, url: &str) -> TestConfig {
        self.env
            .push(("HOOKWATCH_STORE_URL".to_string(), url.to_string()));
        self.store_url = Some(StoreUrlIn::Env);
        self
    }

    pub fn destination(mut self, dest: Dest) -> TestConfig {
        self.destinations.push(dest);
        self
    }

    /// The TOML text of the file, with the store at `store_path` unless
    /// a PostgreSQL store is named.
    pub fn render(&self, store_path: &Path) -> String {
        toml::to_string(&File {
            server: &self.server,
            store: Store {
                path: match self.store_url {
                    None => Some(store_path.to_path_buf()),
                    Some(_) => None,
                },
                url: match &self.store_url {
                    Some(StoreUrlIn::File(url)) => Some(url.clone()),
                    _ => None,
                },
                retention: self.retention.clone(),
                max_size: self.max_size.clone(),
            },
            destinations: &self.destinations,
            alerts: self.alerts.as_ref(),
        })
        .expect("the test config renders as TOML")
    }

    /// The config as the binary would load it, with the store at `store_path`.
    pub fn parse(&self, store_path: &Path) -> Config {
        let text = self.render(store_path);
        Config::parse(&text, ConfigSource::File("test.toml".into()), None)
            .unwrap_or_else(|e| panic!("test config: {e}\n{text}"))
    }
}
