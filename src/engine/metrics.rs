//! Counters for `/metrics` (Prometheus text format) and the TUI's rates.
//!
//! Hot-path counters are atomics; the per-destination attempt counts sit behind
//! one short-held mutex, which is cheap next to an HTTP round trip.

use super::deliver::AttemptOutcome;
use crate::model::{EventState, StateCounts};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the attempt latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

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

    /// Renders the Prometheus exposition text; `states` are the store's counts.
    pub fn render(
        &self,
        states: &BTreeMap<String, StateCounts>,
        store: &crate::store::CommitStats,
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
        out
    }
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
        let text = metrics.render(&states, &crate::store::CommitStats::default());
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
    }
}
