//! Fixture data for the TUI's tests: an [`App`] as if it had read a small engine,
//! at a fixed time, so renders are the same on every run.

use super::app::{App, Rates, TuiInfo};
use crate::config::ConfigSource;
use crate::engine::stats::{minute_of, DestinationStats, MinuteStats, StatsWindow};
use crate::engine::{DestinationView, EventDetail, EventPage};
use crate::model::{
    AttemptRecord, EventId, EventRecord, EventState, FailReason, Health, Notice, NoticeCause,
    NoticeKind, NoticePage, NoticeQuery, Reason, StateCounts, Trigger,
};
use crate::policy::RetrySpec;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
        .expect("fixed time")
        .with_timezone(&Utc)
}

pub fn info(read_only: bool) -> TuiInfo {
    TuiInfo {
        listen: "127.0.0.1:8686".parse().expect("address"),
        store: "/var/lib/hookwatch/hookwatch.redb".into(),
        config_source: ConfigSource::File("hookwatch.toml".into()),
        read_only,
        attached: None,
    }
}

pub fn spec(json: serde_json::Value) -> RetrySpec {
    serde_json::from_value(json).expect("retry spec")
}

fn counts(pending: u64, retrying: u64, delivered: u64, failed: u64) -> StateCounts {
    StateCounts {
        pending,
        retrying,
        delivered,
        failed,
        ..StateCounts::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn view(
    id: &str,
    url: &str,
    health: Health,
    concurrency: (u32, u32),
    counts: StateCounts,
    headers: &[(&str, &str)],
    secrets: usize,
    retry: RetrySpec,
) -> DestinationView {
    DestinationView {
        id: id.into(),
        url: url.into(),
        topics: vec!["order.*".into()],
        timeout: "30s".into(),
        enabled: health != Health::Disabled,
        paused: health == Health::Paused,
        in_retry: health == Health::InRetry,
        health,
        concurrency: concurrency.0,
        max_concurrency: concurrency.1,
        in_flight: 0,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        secrets: (0..secrets)
            .map(|_| format!("whsec_{}", crate::mask::MASK))
            .collect(),
        retry,
        counts,
        overridden: Vec::new(),
        source: crate::engine::DestinationSource::File,
        labels: Default::default(),
        draining: false,
    }
}

pub fn destinations() -> Vec<DestinationView> {
    vec![
        view(
            "shop",
            "https://shop.example.com/hooks",
            Health::Healthy,
            (8, 8),
            counts(2, 0, 1520, 0),
            &[("X-Env", "prod"), ("Authorization", crate::mask::MASK)],
            1,
            spec(serde_json::json!({"delay": "30s", "max_retries": 5})),
        ),
        view(
            "billing",
            "http://127.0.0.1:9001/hooks/billing",
            Health::InRetry,
            (3, 4),
            counts(1, 37, 880, 4),
            &[],
            0,
            spec(serde_json::json!({"delay": "5s", "max_retries": 6})),
        ),
        view(
            "crm",
            "https://crm.example.org/webhooks/in",
            Health::Disabled,
            (2, 2),
            counts(12, 0, 40, 9),
            &[],
            0,
            spec(serde_json::json!({"delay": "1m", "max_retries": 25})),
        ),
        view(
            "analytics",
            "https://analytics.example.net/ingest",
            Health::Paused,
            (2, 2),
            counts(5, 2, 300, 1),
            &[],
            0,
            spec(serde_json::json!({"delay": "10s", "max_retries": 3})),
        ),
    ]
}

/// A deterministic ULID `seconds_ago` before the fixture time.
pub fn event_id(seconds_ago: i64, n: u128) -> EventId {
    let at = now() - Duration::seconds(seconds_ago);
    ulid::Ulid::from_parts(at.timestamp_millis() as u64, 0x5EED_0000_0000_0000_0000 + n)
}

#[allow(clippy::too_many_arguments)]
fn event(
    n: u128,
    seconds_ago: i64,
    destination: &str,
    topic: &str,
    state: EventState,
    attempts: u32,
    last_status: Option<u16>,
    next_in: Option<i64>,
) -> EventRecord {
    let created = now() - Duration::seconds(seconds_ago);
    EventRecord {
        id: event_id(seconds_ago, n),
        destination: destination.into(),
        topic: topic.into(),
        content_type: Some("application/json".into()),
        created_at: created,
        state,
        attempt_count: attempts,
        automatic_retries: attempts.saturating_sub(1),
        cycle_started_at: created,
        next_attempt_at: next_in.map(|s| now() + Duration::seconds(s)),
        // As the engine keeps them: only an owed event has a next trigger.
        next_trigger: state.awaits_delivery().then_some(if attempts == 0 {
            Trigger::Initial
        } else {
            Trigger::Automatic
        }),
        last_status,
        last_error: if last_status.is_none() && attempts > 0 {
            Some("timed out".into())
        } else {
            None
        },
        reason: match state {
            EventState::Failed => Some(Reason::Failed(FailReason::RetriesExhausted)),
            EventState::Cancelled => Some(Reason::Muted),
            _ => None,
        },
        duplicate_of: None,
        idempotency_key: None,
        payload_bytes: 231,
        schedule_pinned: false,
    }
}

pub fn events() -> Vec<EventRecord> {
    use EventState::*;
    vec![
        event(
            1,
            2,
            "billing",
            "order.created",
            Retrying,
            3,
            Some(503),
            Some(240),
        ),
        event(2, 5, "shop", "order.created", Delivered, 1, Some(200), None),
        event(
            3,
            9,
            "billing",
            "invoice.paid",
            Retrying,
            1,
            Some(429),
            Some(5),
        ),
        // Due since it came in; its destination is disabled.
        event(4, 30, "crm", "user.signup", Pending, 0, None, Some(-30)),
        event(
            5,
            75,
            "analytics",
            "order.created",
            Retrying,
            2,
            None,
            Some(8),
        ),
        event(
            6,
            130,
            "billing",
            "order.shipped",
            Failed,
            7,
            Some(500),
            None,
        ),
        event(7, 400, "shop", "user.signup", Delivered, 2, Some(204), None),
        event(8, 3_700, "crm", "user.signup", Failed, 1, Some(404), None),
        event(
            9,
            7_300,
            "billing",
            "order.created",
            Cancelled,
            4,
            Some(502),
            None,
        ),
        event(10, 90_000, "shop", "order.created", Skipped, 0, None, None),
        event(
            11,
            100_000,
            "shop",
            "invoice.paid",
            Delivered,
            1,
            Some(200),
            None,
        ),
        event(
            12,
            200_000,
            "analytics",
            "user.signup",
            Delivered,
            1,
            Some(200),
            None,
        ),
    ]
}

pub fn detail(record: &EventRecord) -> EventDetail {
    let at = |s: i64| now() - Duration::seconds(s);
    EventDetail {
        event: record.clone(),
        payload: Some(
            serde_json::json!({
                "type": "order.created",
                "order_id": "ord_10042",
                "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
                "total": 49.3,
                "currency": "EUR",
                "payment_token": "tok_live_9f86d081884c7d65",
            })
            .to_string(),
        ),
        payload_base64: None,
        attempts: vec![
            AttemptRecord {
                n: 1,
                at: at(2),
                trigger: Trigger::Initial,
                status: Some(500),
                error: None,
                duration_ms: 87,
                response_excerpt: r#"{"error":"database is locked","request_id":"req_7f3a"}"#
                    .into(),
                decision: "retry in 30s".into(),
            },
            AttemptRecord {
                n: 2,
                at: at(1),
                trigger: Trigger::Automatic,
                status: None,
                error: Some("timed out".into()),
                duration_ms: 5000,
                response_excerpt: String::new(),
                decision: "retry in 1m".into(),
            },
            AttemptRecord {
                n: 3,
                at: at(0),
                trigger: Trigger::Manual,
                status: Some(503),
                error: None,
                duration_ms: 112,
                response_excerpt: "Service Unavailable".into(),
                decision: "manual retry failed".into(),
            },
        ],
        ahead: None,
    }
}

/// A destination's minute statistics over `window`, as the engine would
/// answer them: `shop` busy and fast, `billing` failing about half its
/// attempts and slow for an hour-long stretch a few hours ago, `analytics`
/// quiet, `crm` nothing since it was disabled 40 minutes ago. Sparse, like the
/// engine's: only minutes with attempts.
pub fn stats(destination: &str, window: StatsWindow) -> DestinationStats {
    let span = match window {
        StatsWindow::Hour => 60,
        StatsWindow::Day => 24 * 60,
    };
    let current = minute_of(now());
    let minutes = (0..span)
        .rev()
        .filter_map(|ago: i64| {
            let (delivered, failed, p50, p99) = match destination {
                "shop" => (
                    20 + (ago * 7 % 13) as u32,
                    0,
                    20,
                    80 + (ago % 5) as u64 * 20,
                ),
                "billing" if (180..240).contains(&ago) => (2, 10, 2_000, 5_000),
                "billing" => (3 + (ago % 4) as u32, 3 + (ago % 3) as u32, 100, 500),
                "analytics" if ago % 11 == 0 => (1, 0, 50, 50),
                "crm" if ago > 40 && ago % 3 == 0 => (4, 1, 30, 200),
                _ => return None,
            };
            Some(MinuteStats {
                minute: current - Duration::minutes(ago),
                attempts: delivered + failed,
                delivered,
                failed,
                latency_p50_ms: Some(p50),
                latency_p99_ms: Some(p99),
                ..MinuteStats::default()
            })
        })
        .collect();
    DestinationStats {
        destination: destination.to_string(),
        window,
        minutes,
    }
}

/// The main screen: four destinations, a page of events, the first selected
/// with its attempts, some delivery history.
pub fn app() -> App {
    let mut app = App::new(info(false), now());
    app.set_destinations(destinations());
    let events = events();
    let first = detail(&events[0]);
    app.set_events(EventPage { events, next: None });
    app.set_detail(Some(first));
    app.rates = Rates {
        ingested: 12.4,
        delivered: 11.0,
    };
    let read = destinations()
        .iter()
        .map(|d| stats(&d.id, StatsWindow::Hour))
        .collect();
    app.set_list_stats(read);
    app
}

/// First run: no destinations, no config file found.
pub fn first_run() -> App {
    let mut info = info(false);
    info.config_source = ConfigSource::Defaults {
        searched: vec![
            "hookwatch.toml".into(),
            "/home/ada/.config/hookwatch/config.toml".into(),
        ],
    };
    App::new(info, now())
}

/// `n` destinations created through the API, `customer-00000`…, as a platform
/// has them: every health, labels for three tenants, owed events and failures
/// spread so that each sort orders them differently.
pub fn many_destinations(n: usize) -> Vec<DestinationView> {
    let tenants = ["acme", "globex", "initech"];
    (0..n)
        .map(|i| {
            let health = match i % 13 {
                0 => Health::Disabled,
                5 => Health::InRetry,
                9 => Health::Paused,
                _ => Health::Healthy,
            };
            let n = i as u64;
            let mut d = view(
                &format!("customer-{i:05}"),
                &format!("https://customer-{i:05}.hooks.example.com/in"),
                health,
                (8, 8),
                counts(n % 7, n * 31 % 17, 100 + n % 50, n * 7 % 11),
                &[],
                1,
                spec(serde_json::json!({})),
            );
            d.source = crate::engine::DestinationSource::Api;
            d.labels = [("tenant".to_string(), tenants[i % 3].to_string())].into();
            d
        })
        .collect()
}

/// Destinations whose ids are far longer than a column: cut in the middle.
pub fn long_id_destinations() -> Vec<DestinationView> {
    let mut list = many_destinations(30);
    for (i, d) in list.iter_mut().enumerate().take(6) {
        d.id = format!("tenant-{i}-production-eu-west-1-order-events-webhook-receiver-{i:03}");
    }
    list
}

/// The main screen over `destinations` instead of the four of [`app`].
pub fn app_with(destinations: Vec<DestinationView>) -> App {
    let mut app = App::new(info(false), now());
    app.set_destinations(destinations);
    app
}

/// A notice `seconds_ago` before the fixture time; its id sorts by that
/// time (newest first is descending ids), `n` keeping ids apart.
#[allow(clippy::too_many_arguments)]
fn notice(
    n: u128,
    seconds_ago: i64,
    kind: NoticeKind,
    destination: Option<&str>,
    event: Option<EventId>,
    cause: NoticeCause,
    acked_seconds_ago: Option<i64>,
) -> Notice {
    let at = now() - Duration::seconds(seconds_ago);
    Notice {
        id: ulid::Ulid::from_parts(at.timestamp_millis() as u64, 0xA1E4_0000 + n),
        at,
        kind,
        destination: destination.map(str::to_string),
        event,
        cause,
        acked_at: acked_seconds_ago.map(|ago| now() - Duration::seconds(ago)),
    }
}

/// A destination id far longer than a column, in one of the notices.
pub const LONG_NOTICE_DESTINATION: &str =
    "tenant-0-production-eu-west-1-order-events-webhook-receiver-000";

/// Operational notices, newest first: unacknowledged and acknowledged, of
/// every type, one about a destination with a very long id, and a tail of
/// older pause/resume notices of `shop` so the list is longer than a screen.
pub fn notices() -> Vec<Notice> {
    let crm_event = events()
        .into_iter()
        .find(|e| e.destination == "crm" && e.state == EventState::Failed)
        .map(|e| e.id);
    let status = |status| NoticeCause::Status { status };
    let mut list = vec![
        notice(
            1,
            40 * 60,
            NoticeKind::DestinationDisabled { attempt: Some(3) },
            Some("crm"),
            crm_event,
            status(404),
            None,
        ),
        notice(
            2,
            25 * 60,
            NoticeKind::InRetryTooLong {
                since: now() - Duration::minutes(45),
            },
            Some("billing"),
            None,
            NoticeCause::Elapsed,
            None,
        ),
        notice(
            3,
            30 * 60,
            NoticeKind::ConcurrencyLowered { from: 4, to: 3 },
            Some("billing"),
            None,
            status(429),
            Some(20 * 60),
        ),
        notice(
            4,
            50 * 60,
            NoticeKind::DestinationPaused,
            Some("analytics"),
            None,
            NoticeCause::Operator,
            Some(45 * 60),
        ),
        notice(
            5,
            60 * 60,
            NoticeKind::BulkJobFinished {
                job: "01HX3BULKJOB0000000000000".into(),
                total: 32,
                succeeded: 30,
                failed: 2,
                skipped: 0,
                cancelled: false,
            },
            None,
            None,
            NoticeCause::Operator,
            Some(50 * 60),
        ),
        notice(
            6,
            2 * 3600,
            NoticeKind::DestinationDisabled { attempt: Some(1) },
            Some(LONG_NOTICE_DESTINATION),
            None,
            NoticeCause::NoAnswer {
                failure: crate::model::NoAnswer::TooManyRedirects,
            },
            None,
        ),
        notice(
            7,
            2 * 3600 + 55 * 60,
            NoticeKind::DestinationRecovered,
            Some("billing"),
            None,
            NoticeCause::Delivered,
            Some(2 * 3600),
        ),
        notice(
            8,
            3 * 3600,
            NoticeKind::StoreWriteFailed {
                commits: 3,
                writes: 120,
                error: "No space left on device (os error 28)".into(),
            },
            None,
            None,
            NoticeCause::Store,
            Some(2 * 3600),
        ),
        notice(
            9,
            3 * 3600 + 50 * 60,
            NoticeKind::InRetryTooLong {
                since: now() - Duration::minutes(4 * 60 + 5),
            },
            Some("billing"),
            None,
            NoticeCause::Elapsed,
            Some(3 * 3600),
        ),
        notice(
            10,
            5 * 3600,
            NoticeKind::DestinationResumed,
            Some("billing"),
            None,
            NoticeCause::Operator,
            Some(4 * 3600),
        ),
        notice(
            11,
            6 * 3600,
            NoticeKind::DestinationPaused,
            Some("billing"),
            None,
            NoticeCause::Operator,
            Some(4 * 3600),
        ),
    ];
    for i in 0..60u128 {
        let kind = if i % 2 == 0 {
            NoticeKind::DestinationResumed
        } else {
            NoticeKind::DestinationPaused
        };
        list.push(notice(
            100 + i,
            7 * 3600 + i as i64 * 600,
            kind,
            Some("shop"),
            None,
            NoticeCause::Operator,
            Some(3600),
        ));
    }
    list.sort_by_key(|n| std::cmp::Reverse(n.id));
    list
}

/// The first page of [`notices`] as the engine would answer `query`
/// (`query.before` is not honoured: this is the first page).
pub fn notice_page(query: NoticeQuery) -> NoticePage {
    let all = notices();
    let unacked = all.iter().filter(|n| !n.is_acked()).count() as u64;
    let listed: Vec<Notice> = all
        .into_iter()
        .filter(|n| !query.unacked_only || !n.is_acked())
        .collect();
    let next_before = (listed.len() > query.limit).then(|| listed[query.limit - 1].id);
    NoticePage {
        notices: listed.into_iter().take(query.limit).collect(),
        next_before,
        unacked,
    }
}

/// `destination`'s notices of [`notices`], newest first (what the
/// destination view reads to mark its charts).
pub fn destination_notices(destination: &str) -> Vec<Notice> {
    notices()
        .into_iter()
        .filter(|n| n.destination.as_deref() == Some(destination))
        .collect()
}
