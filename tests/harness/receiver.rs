//! One scripted webhook receiver for both styles of test: an HTTP server on
//! 127.0.0.1:0 that records every request and answers from a script, then with
//! a default reply.

use super::wait::wait_until;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to answer one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
    pub at: Instant,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn webhook_id(&self) -> String {
        self.header("webhook-id").unwrap_or_default()
    }

    pub fn attempt(&self) -> Option<u32> {
        self.header("hookwatch-attempt")
            .and_then(|v| v.parse().ok())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Everything under one lock; the per-id counts are kept up to date as hits
/// arrive, so polling "has every id arrived" never rebuilds them.
struct Book {
    hits: Vec<Hit>,
    per_id: BTreeMap<String, usize>,
    script: VecDeque<Reply>,
    default: Reply,
    in_flight: usize,
    max_in_flight: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    book: Arc<Mutex<Book>>,
}

async fn receive(State(book): State<Arc<Mutex<Book>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let hit = Hit {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
        at: Instant::now(),
    };
    let reply = {
        let mut book = book.lock().unwrap();
        *book.per_id.entry(hit.webhook_id()).or_insert(0) += 1;
        book.hits.push(hit);
        book.in_flight += 1;
        book.max_in_flight = book.max_in_flight.max(book.in_flight);
        match book.script.pop_front() {
            Some(reply) => reply,
            None => book.default.clone(),
        }
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    book.lock().unwrap().in_flight -= 1;
    let status = StatusCode::from_u16(reply.status).expect("valid status code");
    let mut response = (status, format!("receiver says {}", reply.status)).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            value.parse().expect("valid header value"),
        );
    }
    response
}

impl Receiver {
    /// A receiver that answers 200 to everything.
    pub async fn start() -> Receiver {
        Receiver::start_with(Reply::status(200)).await
    }

    pub async fn start_with(default: Reply) -> Receiver {
        let book = Arc::new(Mutex::new(Book {
            hits: Vec::new(),
            per_id: BTreeMap::new(),
            script: VecDeque::new(),
            default,
            in_flight: 0,
            max_in_flight: 0,
        }));
        let app = Router::new().fallback(receive).with_state(book.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, book }
    }

    /// The URL to configure as a destination (path `/hook`).
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers the next requests with `replies`, in order, then the default.
    pub fn then(&self, replies: impl IntoIterator<Item = Reply>) {
        self.book.lock().unwrap().script.extend(replies);
    }

    pub fn push_statuses(&self, statuses: &[u16]) {
        self.then(statuses.iter().map(|s| Reply::status(*s)));
    }

    pub fn set_default(&self, reply: Reply) {
        self.book.lock().unwrap().default = reply;
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.book.lock().unwrap().hits.clone()
    }

    pub fn count(&self) -> usize {
        self.book.lock().unwrap().hits.len()
    }

    pub fn hits_for(&self, webhook_id: &str) -> Vec<Hit> {
        let book = self.book.lock().unwrap();
        book.hits
            .iter()
            .filter(|h| h.webhook_id() == webhook_id)
            .cloned()
            .collect()
    }

    /// How many distinct `webhook-id`s arrived.
    pub fn distinct_count(&self) -> usize {
        self.book.lock().unwrap().per_id.len()
    }

    pub fn has_id(&self, webhook_id: &str) -> bool {
        self.book.lock().unwrap().per_id.contains_key(webhook_id)
    }

    /// The ids of `expected` that have not arrived yet.
    pub fn missing<'a, I>(&self, expected: I) -> Vec<String>
    where
        I: IntoIterator<Item = &'a String>,
    {
        let book = self.book.lock().unwrap();
        expected
            .into_iter()
            .filter(|id| !book.per_id.contains_key(*id))
            .cloned()
            .collect()
    }

    /// How many requests arrived per `webhook-id`.
    pub fn counts_by_id(&self) -> BTreeMap<String, usize> {
        self.book.lock().unwrap().per_id.clone()
    }

    /// The most requests that were being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.book.lock().unwrap().max_in_flight
    }

    /// Waits until at least `n` requests have arrived; returns them all.
    pub async fn wait_for_hits(&self, n: usize) -> Vec<Hit> {
        wait_until(&format!("{n} request(s) at the receiver"), || {
            self.count() >= n
        })
        .await;
        self.hits()
    }
}
