//! [`Control`] over a running hookwatch's public HTTP API: what the TUI and the
//! CLI use to steer a `hookwatch --daemon` from elsewhere.
//!
//! Every method is one request to the endpoint the API already has; an error
//! answer is rebuilt into the [`ControlError`] the server had (through
//! `api::error::control_error_from`), so a refused mute is `Refused` here as in
//! process. What only a client can see has variants of its own: `Unreachable`
//! (no answer at the address) and `Rejected` (the server refused the request
//! itself, e.g. a wrong token). [`Control::subscribe`] follows `GET
//! /v1/changes` and reconnects with backoff when the connection drops.

use super::{Control, ControlError, ControlResult, Notification, Totals, UnreachableCause};
use crate::api::changes::{CHANGE_EVENT, KEEP_ALIVE, RESYNC_EVENT};
use crate::api::control_error_from;
use crate::engine::stats::{DestinationStats, StatsWindow};
use crate::engine::{
    AttemptSummary, BatchTarget, BulkSelection, Change, Deleted, DestinationPatch, DestinationView,
    EventDetail, EventPage, IngestRequest, JobProgress,
};
use crate::model::{
    EventFilter, EventId, EventRecord, EventState, Notice, NoticeId, NoticePage, NoticeQuery,
    NoticeSelection, StateCounts,
};
use crate::store::Inserted;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use reqwest::{header, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use url::Url;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take in all. Generous: a manual retry waits for the
/// attempt, which may take up to the destination's own timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The first wait before reconnecting the change stream, doubled after each
/// failed try up to [`MAX_RECONNECT_DELAY`].
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(100);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);
/// A change stream that has sent nothing, not even a keep-alive, for this long
/// is taken as dead (a half-open connection) and reconnected.
const STREAM_SILENCE: Duration = Duration::from_secs(KEEP_ALIVE.as_secs() * 3);

/// Why a [`RemoteControl`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RemoteControlError {
    #[error("\"{url}\" is not a base URL: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("\"{url}\" is not an http:// or https:// base URL")]
    NotHttp { url: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// A hookwatch reached over HTTP, as a [`Control`].
#[derive(Clone)]
pub struct RemoteControl {
    base: Url,
    token: Option<String>,
    /// For calls: bounded by [`CALL_TIMEOUT`].
    calls: reqwest::Client,
    /// For the change stream, which stays open indefinitely.
    stream: reqwest::Client,
}

impl RemoteControl {
    /// A client of the hookwatch at `base_url` (e.g. `http://127.0.0.1:8080`),
    /// sending `token` as a bearer token when given.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self, RemoteControlError> {
        let base = Url::parse(base_url).map_err(|source| RemoteControlError::BadUrl {
            url: base_url.to_string(),
            source,
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(RemoteControlError::NotHttp {
                url: base_url.to_string(),
            });
        }
        let calls = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(RemoteControlError::Client)?;
        let stream = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(RemoteControlError::Client)?;
        Ok(RemoteControl {
            base,
            token,
            calls,
            stream,
        })
    }

    /// The base URL calls are made against.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of an endpoint: `segments` are percent-encoded one by one, so an
    /// id with a `/` stays one path segment.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new(): the base URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: Url,
    ) -> reqwest::RequestBuilder {
        let builder = client.request(method, url);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends a call with an optional JSON body; answers the body of a
    /// success, or the error the answer carries.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> ControlResult<Bytes> {
        let mut builder = self.request(&self.calls, method, url.clone());
        if let Some(body) = body {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        execute(&self.base, builder).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> ControlResult<T> {
        let bytes = self.send(method, url.clone(), body).await?;
        decode(&url, &bytes)
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> ControlResult<T> {
        self.call(Method::GET, self.url(segments), None).await
    }

    /// Posts an event to ingest: its payload as the body, with its content
    /// type and idempotency key as headers.
    async fn post_event<T: DeserializeOwned>(
        &self,
        url: Url,
        request: IngestRequest,
    ) -> ControlResult<T> {
        let mut builder = self
            .request(&self.calls, Method::POST, url.clone())
            .body(request.payload);
        if let Some(content_type) = request.content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(key) = request.idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        decode(&url, &execute(&self.base, builder).await?)
    }

    async fn status(&self) -> ControlResult<StatusReply> {
        self.get(&["v1", "status"]).await
    }
}

fn json_body<T: serde::Serialize>(value: &T) -> ControlResult<Option<serde_json::Value>> {
    serde_json::to_value(value)
        .map(Some)
        .map_err(|e| ControlError::invalid("body", e.to_string()))
}

/// The whole chain of an error's causes, for a message that says what
/// actually happened (reqwest's own text is only "error sending request").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// No answer from the hookwatch at `base`: the error names the base URL (the
/// address the operator gave, not the endpoint called) and the cause in a few
/// words, and keeps the transport's error as its source.
async fn unreachable_error(base: &Url, error: reqwest::Error) -> ControlError {
    ControlError::Unreachable {
        url: base.as_str().trim_end_matches('/').to_string(),
        cause: unreachable_cause(base, &error).await,
        source: Some(Box::new(error)),
    }
}

/// Why nothing answered, from the kinds in the error's chain: the I/O error's
/// kind where there is one, else reqwest's own timeout and connect flags.
async fn unreachable_cause(base: &Url, error: &reqwest::Error) -> UnreachableCause {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if let Some(known) = UnreachableCause::of_io_kind(io.kind()) {
                return known;
            }
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return UnreachableCause::TimedOut;
    }
    if error.is_connect() {
        // A name that does not resolve comes back as an I/O error of no
        // particular kind; asking the resolver again tells it apart (only on
        // this failure path, and only for a host name).
        if let Some(url::Host::Domain(host)) = base.host() {
            let port = base.port_or_known_default().unwrap_or(80);
            if tokio::net::lookup_host((host, port)).await.is_err() {
                return UnreachableCause::NameNotResolved;
            }
        }
        return UnreachableCause::CannotConnect;
    }
    UnreachableCause::ConnectionLost
}

/// The error an unsuccessful answer carries: the server's own variant when it
/// sent one, else the request's rejection as the server worded it.
fn error_answer(status: StatusCode, body: &[u8]) -> ControlError {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if let Some(error) = control_error_from(status, &json) {
        return error;
    }
    ControlError::Rejected {
        status: status.as_u16(),
        api_code: json["code"].as_str().unwrap_or("").to_string(),
        message: match json["error"].as_str() {
            Some(message) => message.to_string(),
            None => String::from_utf8_lossy(body).trim().to_string(),
        },
    }
}

/// A success answer read as `T`; one that does not read is a server this
/// client does not understand (another version), worth reporting as such.
fn decode<T: DeserializeOwned>(url: &Url, body: &[u8]) -> ControlResult<T> {
    serde_json::from_slice(body).map_err(|e| ControlError::Unavailable {
        message: format!("the answer from {url} is not what this client expects: {e}"),
        source: Some(Box::new(e)),
    })
}

/// `POST /v1/destinations/{id}/events` answers.
#[derive(Deserialize)]
struct IngestReply {
    id: EventId,
    state: EventState,
    #[serde(default)]
    duplicate_of: Option<EventId>,
}

impl IngestReply {
    fn inserted(self, destination: String) -> Inserted {
        Inserted {
            id: self.id,
            destination,
            state: self.state,
            duplicate_of: self.duplicate_of,
        }
    }
}

/// `POST /v1/topics/{topic}/events` answers: one entry per destination.
#[derive(Deserialize)]
struct TopicReply {
    events: Vec<TopicEntry>,
}

#[derive(Deserialize)]
struct TopicEntry {
    destination: String,
    #[serde(flatten)]
    reply: IngestReply,
}

/// A batch's answer: one entry per item, in order.
#[derive(Deserialize)]
struct BatchReply<T> {
    events: Vec<T>,
}

#[derive(Deserialize)]
struct DestinationsReply {
    destinations: Vec<DestinationView>,
}

#[derive(Deserialize)]
struct BulkJobsReply {
    jobs: Vec<JobProgress>,
}

#[derive(Deserialize)]
struct RetryReply {
    state: EventState,
    success: bool,
    decision: String,
}

#[derive(Deserialize)]
struct CountReply {
    count: u64,
}

/// `POST /v1/notices/ack`.
#[derive(Deserialize)]
struct AckReply {
    acked: u64,
}

/// `GET /v1/status`.
#[derive(Deserialize)]
struct StatusReply {
    /// Absent from servers older than the field.
    #[serde(default)]
    pid: Option<u32>,
    totals: Totals,
    counts: BTreeMap<String, StateCounts>,
}

#[async_trait::async_trait]
impl Control for RemoteControl {
    async fn ingest(&self, destination: &str, request: IngestRequest) -> ControlResult<Inserted> {
        let mut url = self.url(&["v1", "destinations", destination, "events"]);
        if let Some(topic) = &request.topic {
            url.query_pairs_mut().append_pair("topic", topic);
        }
        let reply: IngestReply = self.post_event(url, request).await?;
        Ok(reply.inserted(destination.to_string()))
    }

    async fn ingest_topic(
        &self,
        topic: &str,
        request: IngestRequest,
    ) -> ControlResult<Vec<Inserted>> {
        let url = self.url(&["v1", "topics", topic, "events"]);
        let reply: TopicReply = self.post_event(url, request).await?;
        Ok(reply
            .events
            .into_iter()
            .map(|entry| entry.reply.inserted(entry.destination))
            .collect())
    }

    async fn ingest_batch(
        &self,
        target: BatchTarget,
        requests: Vec<IngestRequest>,
    ) -> ControlResult<Vec<Vec<Inserted>>> {
        let items = requests
            .iter()
            .enumerate()
            .map(|(index, request)| {
                crate::api::batch::BatchItem::from_request(request)
                    .map_err(|e| ControlError::invalid(format!("events[{index}]"), e.to_string()))
            })
            .collect::<ControlResult<Vec<_>>>()?;
        let body = json_body(&items)?;
        match target {
            BatchTarget::Destination(destination) => {
                let url = self.url(&["v1", "destinations", &destination, "events", "batch"]);
                let reply: BatchReply<IngestReply> = self.call(Method::POST, url, body).await?;
                Ok(reply
                    .events
                    .into_iter()
                    .map(|reply| vec![reply.inserted(destination.clone())])
                    .collect())
            }
            BatchTarget::Topic(topic) => {
                let url = self.url(&["v1", "topics", &topic, "events", "batch"]);
                let reply: BatchReply<TopicReply> = self.call(Method::POST, url, body).await?;
                Ok(reply
                    .events
                    .into_iter()
                    .map(|item| {
                        item.events
                            .into_iter()
                            .map(|entry| entry.reply.inserted(entry.destination))
                            .collect()
                    })
                    .collect())
            }
        }
    }

    async fn list_events(
        &self,
        filter: EventFilter,
        after: Option<EventId>,
        limit: usize,
    ) -> ControlResult<EventPage> {
        let mut url = self.url(&["v1", "events"]);
        {
            let mut query = url.query_pairs_mut();
            if let Some(destination) = &filter.destination {
                query.append_pair("destination", destination);
            }
            if let Some(state) = filter.state {
                query.append_pair("state", state.as_str());
            }
            if let Some(topic) = &filter.topic {
                query.append_pair("topic", topic);
            }
            if let Some(label) = &filter.label {
                query.append_pair("label", &label.to_string());
            }
            if let Some(time) = filter.created_after {
                query.append_pair("created_after", &time.to_rfc3339());
            }
            if let Some(time) = filter.created_before {
                query.append_pair("created_before", &time.to_rfc3339());
            }
            if let Some(after) = after {
                query.append_pair("after", &after.to_string());
            }
            query.append_pair("limit", &limit.to_string());
        }
        self.call(Method::GET, url, None).await
    }

    async fn event(&self, id: EventId) -> ControlResult<EventDetail> {
        self.get(&["v1", "events", &id.to_string()]).await
    }

    async fn destinations(&self) -> ControlResult<Vec<DestinationView>> {
        let reply: DestinationsReply = self.get(&["v1", "destinations"]).await?;
        Ok(reply.destinations)
    }

    async fn destination(&self, id: &str) -> ControlResult<DestinationView> {
        self.get(&["v1", "destinations", id]).await
    }

    async fn retry_now(&self, id: EventId) -> ControlResult<AttemptSummary> {
        let url = self.url(&["v1", "events", &id.to_string(), "retry"]);
        let reply: RetryReply = self.call(Method::POST, url, None).await?;
        Ok(AttemptSummary {
            success: reply.success,
            state: reply.state,
            decision: reply.decision,
        })
    }

    async fn mute(&self, id: EventId) -> ControlResult<EventRecord> {
        let url = self.url(&["v1", "events", &id.to_string(), "mute"]);
        self.call(Method::PUT, url, None).await
    }

    async fn requeue(&self, id: EventId) -> ControlResult<EventRecord> {
        let url = self.url(&["v1", "events", &id.to_string(), "requeue"]);
        self.call(Method::POST, url, None).await
    }

    async fn resend(&self, id: EventId) -> ControlResult<EventRecord> {
        let mut url = self.url(&["v1", "events", &id.to_string(), "requeue"]);
        url.query_pairs_mut().append_pair("resend", "true");
        self.call(Method::POST, url, None).await
    }

    async fn count_selection(&self, selection: BulkSelection) -> ControlResult<u64> {
        let url = self.url(&["v1", "bulk", "count"]);
        let reply: CountReply = self.call(Method::POST, url, json_body(&selection)?).await?;
        Ok(reply.count)
    }

    async fn start_bulk_retry(&self, selection: BulkSelection) -> ControlResult<JobProgress> {
        let url = self.url(&["v1", "bulk", "retry"]);
        self.call(Method::POST, url, json_body(&selection)?).await
    }

    async fn bulk_progress(&self, job: &str) -> ControlResult<JobProgress> {
        self.get(&["v1", "bulk", job]).await
    }

    async fn cancel_bulk(&self, job: &str) -> ControlResult<JobProgress> {
        let url = self.url(&["v1", "bulk", job, "cancel"]);
        self.call(Method::POST, url, None).await
    }

    async fn bulk_jobs(&self) -> ControlResult<Vec<JobProgress>> {
        let reply: BulkJobsReply = self.get(&["v1", "bulk"]).await?;
        Ok(reply.jobs)
    }

    async fn patch_destination(
        &self,
        id: &str,
        patch: DestinationPatch,
    ) -> ControlResult<DestinationView> {
        let url = self.url(&["v1", "destinations", id]);
        self.call(Method::PATCH, url, json_body(&patch)?).await
    }

    async fn destination_stats(
        &self,
        id: &str,
        window: StatsWindow,
    ) -> ControlResult<DestinationStats> {
        let mut url = self.url(&["v1", "destinations", id, "stats"]);
        url.query_pairs_mut().append_pair("window", window.as_str());
        self.call(Method::GET, url, None).await
    }

    async fn create_destination(
        &self,
        definition: serde_json::Value,
    ) -> ControlResult<DestinationView> {
        let url = self.url(&["v1", "destinations"]);
        self.call(Method::POST, url, Some(definition)).await
    }

    async fn replace_destination(
        &self,
        id: &str,
        definition: serde_json::Value,
    ) -> ControlResult<DestinationView> {
        let url = self.url(&["v1", "destinations", id]);
        self.call(Method::PUT, url, Some(definition)).await
    }

    async fn delete_destination(&self, id: &str, drain: bool) -> ControlResult<Deleted> {
        let mut url = self.url(&["v1", "destinations", id]);
        if drain {
            url.query_pairs_mut().append_pair("drain", "true");
        }
        self.call(Method::DELETE, url, None).await
    }

    async fn notices(&self, query: NoticeQuery) -> ControlResult<NoticePage> {
        let mut url = self.url(&["v1", "notices"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("limit", &query.limit.to_string());
            if let Some(before) = query.before {
                pairs.append_pair("before", &before.to_string());
            }
            if query.unacked_only {
                pairs.append_pair("unacked", "true");
            }
        }
        self.call(Method::GET, url, None).await
    }

    async fn ack_notice(&self, id: NoticeId) -> ControlResult<Notice> {
        let url = self.url(&["v1", "notices", &id.to_string(), "ack"]);
        self.call(Method::POST, url, None).await
    }

    async fn ack_notices(&self, selection: NoticeSelection) -> ControlResult<u64> {
        let url = self.url(&["v1", "notices", "ack"]);
        let reply: AckReply = self.call(Method::POST, url, json_body(&selection)?).await?;
        Ok(reply.acked)
    }

    async fn counts(&self) -> ControlResult<BTreeMap<String, StateCounts>> {
        Ok(self.status().await?.counts)
    }

    async fn metrics_text(&self) -> ControlResult<String> {
        let bytes = self.send(Method::GET, self.url(&["metrics"]), None).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn totals(&self) -> ControlResult<Totals> {
        let status = self.status().await?;
        Ok(Totals {
            pid: status.pid,
            ..status.totals
        })
    }

    /// This machine's clock: a daemon runs on the system clock (only tests
    /// drive a manual one, in process), and `now` must answer without a call.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    /// Follows `GET /v1/changes`. Yields `Resync` each time the stream is
    /// (re)connected, the first time included: changes made before the
    /// connection opened were not seen. Reconnects for as long as it is polled,
    /// waiting 100 ms after a drop and doubling the wait after each failed try
    /// up to 5 s; drop the stream to stop.
    fn subscribe(&self) -> BoxStream<'static, Notification> {
        let follower = Follower {
            control: self.clone(),
            body: None,
            parser: SseParser::default(),
            pending: VecDeque::new(),
            delay: None,
        };
        Box::pin(futures_util::stream::unfold(
            follower,
            |mut follower| async move {
                let notification = follower.next().await;
                Some((notification, follower))
            },
        ))
    }
}

/// Sends a request; answers the body of a success, or the error the answer
/// carries. No answer at all is `Unreachable`, naming `base`.
async fn execute(base: &Url, builder: reqwest::RequestBuilder) -> ControlResult<Bytes> {
    let response = match builder.send().await {
        Ok(response) => response,
        Err(e) => return Err(unreachable_error(base, e).await),
    };
    let status = response.status();
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return Err(unreachable_error(base, e).await),
    };
    if status.is_success() {
        Ok(bytes)
    } else {
        Err(error_answer(status, &bytes))
    }
}

/// The state of one [`Control::subscribe`] stream.
struct Follower {
    control: RemoteControl,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    parser: SseParser,
    pending: VecDeque<Notification>,
    /// The wait before the next connection try; `None` before the first.
    delay: Option<Duration>,
}

impl Follower {
    async fn next(&mut self) -> Notification {
        loop {
            if let Some(notification) = self.pending.pop_front() {
                return notification;
            }
            let Some(body) = &mut self.body else {
                if let Some(delay) = self.delay {
                    tokio::time::sleep(delay).await;
                }
                match follow_changes(&self.control).await {
                    Ok(body) => {
                        self.body = Some(body);
                        self.parser = SseParser::default();
                        self.delay = Some(FIRST_RECONNECT_DELAY);
                        return Notification::Resync;
                    }
                    Err(error) => {
                        tracing::debug!(error = %error, "the change stream did not connect");
                        self.delay = Some(match self.delay {
                            None => FIRST_RECONNECT_DELAY,
                            Some(delay) => (delay * 2).min(MAX_RECONNECT_DELAY),
                        });
                        continue;
                    }
                }
            };
            match tokio::time::timeout(STREAM_SILENCE, body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    for event in self.parser.feed(&chunk) {
                        if let Some(notification) = event.notification() {
                            self.pending.push_back(notification);
                        }
                    }
                }
                Ok(Some(Err(error))) => {
                    tracing::debug!(error = %with_causes(&error), "the change stream broke");
                    self.body = None;
                }
                Ok(None) => self.body = None,
                Err(_) => {
                    tracing::debug!("the change stream went silent; reconnecting");
                    self.body = None;
                }
            }
        }
    }
}

/// Opens `GET /v1/changes`; answers its body once the server accepted.
async fn follow_changes(
    control: &RemoteControl,
) -> ControlResult<BoxStream<'static, reqwest::Result<Bytes>>> {
    let url = control.url(&["v1", "changes"]);
    let sent = control
        .request(&control.stream, Method::GET, url)
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Err(unreachable_error(&control.base, e).await),
    };
    let status = response.status();
    if !status.is_success() {
        let bytes = response.bytes().await.unwrap_or_default();
        return Err(error_answer(status, &bytes));
    }
    Ok(response.bytes_stream().boxed())
}

/// One server-sent event, as far as this client reads them.
#[derive(Debug, Default, PartialEq)]
struct SseEvent {
    event: String,
    data: String,
}

impl SseEvent {
    /// What the event means; `None` for events this client does not know.
    /// A change that does not read counts as a lost change: read again.
    fn notification(&self) -> Option<Notification> {
        match self.event.as_str() {
            CHANGE_EVENT => Some(match serde_json::from_str::<Change>(&self.data) {
                Ok(change) => Notification::Changed(change),
                Err(error) => {
                    tracing::warn!(%error, data = %self.data, "a change that does not read");
                    Notification::Resync
                }
            }),
            RESYNC_EVENT => Some(Notification::Resync),
            _ => None,
        }
    }
}

/// The `text/event-stream` format, line by line: `event:` and `data:` fields
/// gather until a blank line ends the event; comments (`:`) and other fields
/// (`id:`, `retry:`) are skipped.
#[derive(Default)]
struct SseParser {
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        self.partial.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|b| *b == b'\n') {
            let line_end = start + end;
            let line = &self.partial[start..line_end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            start = line_end + 1;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.partial.drain(..start);
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            // An event with no data is not dispatched (as in browsers).
            return data.map(|data| SseEvent {
                event: event.unwrap_or_else(|| "message".to_string()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_lines_are_put_together() {
        let mut parser = SseParser::default();
        let text = ": following changes\n\nevent: change\r\nid: 1\ndata: {\"kind\":\"destination\",\"id\":\"a\"}\n\nevent: resync\nda";
        let first = parser.feed(text.as_bytes());
        assert_eq!(
            first,
            [SseEvent {
                event: "change".into(),
                data: "{\"kind\":\"destination\",\"id\":\"a\"}".into(),
            }]
        );
        assert_eq!(
            first[0].notification(),
            Some(Notification::Changed(Change::Destination {
                id: "a".into()
            }))
        );
        let second = parser.feed(b"ta: {}\n\n");
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].notification(), Some(Notification::Resync));
    }

    #[test]
    fn multi_line_data_is_joined_and_unknown_events_are_skipped() {
        let mut parser = SseParser::default();
        let events = parser.feed(b"event: other\ndata: a\ndata: b\n\ndata:x\n\n");
        assert_eq!(events[0].data, "a\nb");
        assert_eq!(events[0].notification(), None);
        assert_eq!(events[1].event, "message");
        assert_eq!(events[1].data, "x");
    }

    #[test]
    fn a_change_that_does_not_read_asks_for_a_resync() {
        let event = SseEvent {
            event: CHANGE_EVENT.into(),
            data: "{\"kind\":\"weather\"}".into(),
        };
        assert_eq!(event.notification(), Some(Notification::Resync));
    }

    #[test]
    fn answers_that_are_not_control_errors_are_rejections_in_the_servers_words() {
        let body = br#"{"code":"unauthorized","error":"wrong bearer token"}"#;
        let error = error_answer(StatusCode::UNAUTHORIZED, body);
        assert!(
            matches!(&error, ControlError::Rejected { status: 401, api_code, message }
                if api_code == "unauthorized" && message == "wrong bearer token"),
            "{error:?}"
        );
        let body = br#"{"code":"refused","error":"cannot mute a delivered event","message":"cannot mute a delivered event"}"#;
        assert_eq!(error_answer(StatusCode::CONFLICT, body).code(), "refused");
    }

    #[test]
    fn path_segments_are_encoded_one_by_one() {
        let control = RemoteControl::new("http://127.0.0.1:9/", None).unwrap();
        let url = control.url(&["v1", "destinations", "a/b c"]);
        assert_eq!(url.as_str(), "http://127.0.0.1:9/v1/destinations/a%2Fb%20c");
        assert!(RemoteControl::new("mailto:x@example.com", None).is_err());
    }
}
