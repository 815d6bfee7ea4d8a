//! Counters for `/metrics` (Prometheus text format) and the TUI's rates.
//!
//! Hot-path counters are atomics; the per-destination attempt counts sit behind
//! one short-held mutex, which is cheap next to an HTTP round trip.

use super::deliver::AttemptOutcome;
use crate::model::{EventState, Health, StateCounts};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the attempt latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// One destination's gauges, read when `/metrics` is scraped.
#[derive(Clone, Debug, PartialEq)]
pub struct DestinationGauges {
    pub id: String,
    pub health: Health,
    /// Attempts allowed at once now (lowered by 429s).
    pub concurrency: u32,
    pub in_flight: usize,
    /// Age of the oldest pending or retrying event; 0 when none is owed.
    pub oldest_owed_age_seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    pub ingested: AtomicU64,
    pub delivered: AtomicU64,
    attempts: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn record_attempt(&self, destination: &str, outcome: AttemptOutcome, latency: Duration) {
        if outcome.is_success() {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .attempts
            .lock()
            .expect("metrics lock")
            .entry((destination.to_string(), outcome.metric_label()))
            .or_default() += 1;
        let seconds = latency.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Renders the Prometheus exposition text; `states` are the store's counts,
    /// `destinations` each destination's gauges.
    pub fn render(
        &self,
        states: &BTreeMap<String, StateCounts>,
        store: &crate::store::CommitStats,
        destinations: &[DestinationGauges],
    ) -> String {
        let mut out = String::new();
        counter(
            &mut out,
            "hookwatch_store_commits_total",
            "Durable store commits (each is one fsync).",
            store.commits.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "hookwatch_store_writes_total",
            "Writes carried by those commits (group commit).",
            store.writes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "hookwatch_store_quarantined_total",
            "Event records moved to quarantine because they do not decode.",
            store.quarantined.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "hookwatch_events_ingested_total",
            "Events accepted by the ingestion API.",
            self.ingested.load(Ordering::Relaxed),
        );
        out.push_str(
            "# HELP hookwatch_attempts_total Delivery attempts by destination and outcome.\n",
        );
        out.push_str("# TYPE hookwatch_attempts_total counter\n");
        for ((destination, outcome), count) in self.attempts.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "hookwatch_attempts_total{{destination=\"{}\",outcome=\"{outcome}\"}} {count}",
                escape_label(destination)
            );
        }
        out.push_str("# HELP hookwatch_attempt_duration_seconds Time from sending an attempt to its response.\n");
        out.push_str("# TYPE hookwatch_attempt_duration_seconds histogram\n");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "hookwatch_attempt_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "hookwatch_attempt_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "hookwatch_attempt_duration_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "hookwatch_attempt_duration_seconds_count {count}");
        out.push_str("# HELP hookwatch_events Stored events by destination and state.\n");
        out.push_str("# TYPE hookwatch_events gauge\n");
        for (destination, counts) in states {
            for state in EventState::ALL {
                let _ = writeln!(
                    out,
                    "hookwatch_events{{destination=\"{}\",state=\"{state}\"}} {}",
                    escape_label(destination),
                    counts.get(state)
                );
            }
        }
        render_destination_gauges(&mut out, destinations);
        out
    }
}

/// The per-destination gauges. Every health state is present for every
/// destination (0 or 1), so `hookwatch_destination_health{state="disabled"} == 1`
/// is an alert expression that works from the first scrape.
fn render_destination_gauges(out: &mut String, destinations: &[DestinationGauges]) {
    out.push_str("# HELP hookwatch_destination_health Destination health: 1 for its current state, 0 for the others.\n");
    out.push_str("# TYPE hookwatch_destination_health gauge\n");
    for gauges in destinations {
        for state in Health::ALL {
            let _ = writeln!(
                out,
                "hookwatch_destination_health{{destination=\"{}\",state=\"{}\"}} {}",
                escape_label(&gauges.id),
                state.metric_label(),
                u8::from(gauges.health == state)
            );
        }
    }
    let gauge =
        |out: &mut String, name: &str, help: &str, value: &dyn Fn(&DestinationGauges) -> String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for gauges in destinations {
                let _ = writeln!(
                    out,
                    "{name}{{destination=\"{}\"}} {}",
                    escape_label(&gauges.id),
                    value(gauges)
                );
            }
        };
    gauge(
        out,
        "hookwatch_destination_concurrency",
        "Attempts the destination may have at once now (its limit, lowered by 429s).",
        &|g| g.concurrency.to_string(),
    );
    gauge(
        out,
        "hookwatch_destination_in_flight",
        "Attempts of the destination running now.",
        &|g| g.in_flight.to_string(),
    );
    gauge(
        out,
        "hookwatch_destination_oldest_owed_age_seconds",
        "Age of the destination's oldest pending or retrying event; 0 when none.",
        &|g| format!("{:.3}", g.oldest_owed_age_seconds),
    );
}

/// One unlabelled counter with its HELP and TYPE lines.
fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {value}");
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_states() {
        let metrics = Metrics::default();
        metrics.ingested.fetch_add(3, Ordering::Relaxed);
        metrics.record_attempt(
            "orders",
            AttemptOutcome::Response(204),
            Duration::from_millis(3),
        );
        metrics.record_attempt(
            "orders",
            AttemptOutcome::Response(503),
            Duration::from_millis(700),
        );
        metrics.record_attempt("orders", AttemptOutcome::Timeout, Duration::from_secs(40));
        let mut states = BTreeMap::new();
        states.insert(
            "orders".to_string(),
            StateCounts {
                delivered: 1,
                retrying: 1,
                ..Default::default()
            },
        );
        let gauges = [DestinationGauges {
            id: "orders".into(),
            health: Health::Disabled,
            concurrency: 3,
            in_flight: 2,
            oldest_owed_age_seconds: 90.5,
        }];
        let text = metrics.render(&states, &crate::store::CommitStats::default(), &gauges);
        assert!(text.contains("hookwatch_events_ingested_total 3"));
        assert!(
            text.contains("hookwatch_attempts_total{destination=\"orders\",outcome=\"success\"} 1")
        );
        assert!(text.contains("hookwatch_attempt_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("hookwatch_attempt_duration_seconds_bucket{le=\"1\"} 2"));
        assert!(text.contains("hookwatch_attempt_duration_seconds_count 3"));
        assert!(
            text.contains("hookwatch_attempts_total{destination=\"orders\",outcome=\"timeout\"} 1")
        );
        assert!(text.contains(
            "hookwatch_attempts_total{destination=\"orders\",outcome=\"server_error\"} 1"
        ));
        assert!(text.contains("hookwatch_events{destination=\"orders\",state=\"retrying\"} 1"));
        for (state, value) in [
            ("healthy", 0),
            ("in_retry", 0),
            ("disabled", 1),
            ("paused", 0),
        ] {
            assert!(
                text.contains(&format!(
                    "hookwatch_destination_health{{destination=\"orders\",state=\"{state}\"}} {value}"
                )),
                "{state} missing in:\n{text}"
            );
        }
        assert!(text.contains("hookwatch_destination_concurrency{destination=\"orders\"} 3"));
        assert!(text.contains("hookwatch_destination_in_flight{destination=\"orders\"} 2"));
        assert!(text.contains(
            "hookwatch_destination_oldest_owed_age_seconds{destination=\"orders\"} 90.500"
        ));
        for name in [
            "hookwatch_destination_health",
            "hookwatch_destination_concurrency",
            "hookwatch_destination_in_flight",
            "hookwatch_destination_oldest_owed_age_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {name} gauge")), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
