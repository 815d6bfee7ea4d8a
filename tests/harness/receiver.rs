//! One scripted webhook receiver for both styles of test: an HTTP server on
//! 127.0.0.1:0 that records every request and answers from a script, then with
//! a default reply.

use super::wait::wait_until;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Everything under one lock. The bookkeeping is updated as each hit arrives
/// (per-id counts, and the ids in order of first arrival), so no question a
/// test polls rebuilds anything from the list of hits: a poll that held the
/// lock for O(hits) would starve the very deliveries it waits for.
struct Book {
    hits: Vec<Hit>,
    per_id: HashMap<String, usize>,
    /// Each distinct `webhook-id` once, in the order it first arrived; read
    /// from a cursor by [`Arrivals`].
    first_arrivals: Vec<String>,
    script: VecDeque<Reply>,
    default: Reply,
    in_flight: usize,
    max_in_flight: usize,
}

/// Counters kept beside the lock, so polling a count never takes it.
#[derive(Default)]
struct Tally {
    hits: AtomicUsize,
    distinct: AtomicUsize,
}

#[derive(Clone)]
struct Shared {
    book: Arc<Mutex<Book>>,
    tally: Arc<Tally>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    book: Arc<Mutex<Book>>,
    tally: Arc<Tally>,
}

async fn receive(State(shared): State<Shared>, request: Request) -> Response {
    let Shared { book, tally } = shared;
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
        let id = hit.webhook_id();
        match book.per_id.get_mut(&id) {
            Some(count) => *count += 1,
            None => {
                book.per_id.insert(id.clone(), 1);
                book.first_arrivals.push(id);
                tally.distinct.fetch_add(1, Ordering::Release);
            }
        }
        book.hits.push(hit);
        tally.hits.fetch_add(1, Ordering::Release);
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
            per_id: HashMap::new(),
            first_arrivals: Vec::new(),
            script: VecDeque::new(),
            default,
            in_flight: 0,
            max_in_flight: 0,
        }));
        let tally = Arc::new(Tally::default());
        let app = Router::new().fallback(receive).with_state(Shared {
            book: book.clone(),
            tally: tally.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, book, tally }
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

    /// How many requests arrived (no lock taken).
    pub fn count(&self) -> usize {
        self.tally.hits.load(Ordering::Acquire)
    }

    pub fn hits_for(&self, webhook_id: &str) -> Vec<Hit> {
        let book = self.book.lock().unwrap();
        book.hits
            .iter()
            .filter(|h| h.webhook_id() == webhook_id)
            .cloned()
            .collect()
    }

    /// How many distinct `webhook-id`s arrived (no lock taken).
    pub fn distinct_count(&self) -> usize {
        self.tally.distinct.load(Ordering::Acquire)
    }

    pub fn has_id(&self, webhook_id: &str) -> bool {
        self.book.lock().unwrap().per_id.contains_key(webhook_id)
    }

    /// The ids of `expected` that have not arrived yet. This looks up every
    /// expected id under the lock, so it suits a few thousand ids; to wait for
    /// a large set, use [`Receiver::arrivals`].
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

    /// How many requests arrived per `webhook-id` (a copy: for the end of a
    /// test, not for polling).
    pub fn counts_by_id(&self) -> BTreeMap<String, usize> {
        let book = self.book.lock().unwrap();
        book.per_id
            .iter()
            .map(|(id, count)| (id.clone(), *count))
            .collect()
    }

    /// Tracks which of `expected` have arrived: each [`Arrivals::remaining`]
    /// takes from the receiver only the ids that first arrived since the last
    /// call, so waiting on hundreds of thousands of ids stays cheap for the
    /// receiver (the lock is held for O(new arrivals), never O(hits)).
    pub fn arrivals(&self, expected: impl IntoIterator<Item = String>) -> Arrivals {
        Arrivals {
            book: self.book.clone(),
            cursor: 0,
            owed: expected.into_iter().collect(),
        }
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

/// The expected ids that have not reached the receiver yet; see
/// [`Receiver::arrivals`].
pub struct Arrivals {
    book: Arc<Mutex<Book>>,
    /// How many of the receiver's `first_arrivals` have been taken already.
    cursor: usize,
    owed: HashSet<String>,
}

impl Arrivals {
    /// How many expected ids have still not arrived, after taking the ones
    /// that arrived since the last call.
    pub fn remaining(&mut self) -> usize {
        let new: Vec<String> = {
            let book = self.book.lock().unwrap();
            let new = book.first_arrivals[self.cursor..].to_vec();
            self.cursor = book.first_arrivals.len();
            new
        };
        for id in &new {
            self.owed.remove(id);
        }
        self.owed.len()
    }

    /// A few of the ids still owed (as of the last [`Arrivals::remaining`]).
    pub fn sample(&self, n: usize) -> Vec<&str> {
        self.owed.iter().take(n).map(String::as_str).collect()
    }
}
