//! What the TUI remembers from engine notifications: per-destination delivery
//! history for the sparklines and the 5-minute success rate, and the header's
//! ingested/s and delivered/s from the engine's counters.

use crate::model::EventState;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};

/// How far back history goes: the success rate's window.
pub const WINDOW_SECS: i64 = 300;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bucket {
    second: i64,
    delivered: u32,
    failed: u32,
}

/// One destination's attempt outcomes, one bucket per second.
#[derive(Clone, Debug, Default)]
pub struct DestHistory {
    buckets: VecDeque<Bucket>,
}

impl DestHistory {
    fn record(&mut self, second: i64, delivered: bool) {
        if self.buckets.back().is_none_or(|b| b.second != second) {
            self.buckets.push_back(Bucket {
                second,
                ..Bucket::default()
            });
        }
        let bucket = self.buckets.back_mut().expect("just pushed");
        if delivered {
            bucket.delivered += 1;
        } else {
            bucket.failed += 1;
        }
        while self
            .buckets
            .front()
            .is_some_and(|b| b.second <= second - WINDOW_SECS)
        {
            self.buckets.pop_front();
        }
    }

    /// Delivered and failed attempts in the last five minutes.
    pub fn totals(&self, now: DateTime<Utc>) -> (u64, u64) {
        let from = now.timestamp() - WINDOW_SECS;
        self.buckets
            .iter()
            .filter(|b| b.second > from)
            .fold((0, 0), |(d, f), b| {
                (d + u64::from(b.delivered), f + u64::from(b.failed))
            })
    }

    /// Deliveries in each of the `n` buckets of `step` seconds ending now, oldest first.
    pub fn series(&self, now: DateTime<Utc>, n: usize, step: i64) -> Vec<u64> {
        let end = now.timestamp();
        let mut out = vec![0u64; n];
        for bucket in &self.buckets {
            let age = end - bucket.second;
            if age < 0 {
                continue;
            }
            let slot = (age / step) as usize;
            if slot < n {
                out[n - 1 - slot] += u64::from(bucket.delivered);
            }
        }
        out
    }
}

#[derive(Clone, Debug, Default)]
pub struct History {
    pub per_destination: BTreeMap<String, DestHistory>,
    pub all: DestHistory,
}

impl History {
    /// Counts an event change: delivered is a success; retrying and failed are
    /// failed attempts (a pending or cancelled change is not an attempt).
    pub fn record(&mut self, destination: &str, state: EventState, at: DateTime<Utc>) {
        let delivered = match state {
            EventState::Delivered => true,
            EventState::Retrying | EventState::Failed => false,
            _ => return,
        };
        let second = at.timestamp();
        self.per_destination
            .entry(destination.to_string())
            .or_default()
            .record(second, delivered);
        self.all.record(second, delivered);
    }

    pub fn get(&self, destination: Option<&str>) -> Option<&DestHistory> {
        match destination {
            None => Some(&self.all),
            Some(id) => self.per_destination.get(id),
        }
    }
}

/// A rate over the last few seconds from a monotonically growing counter.
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    samples: VecDeque<(std::time::Instant, u64)>,
}

impl RateMeter {
    pub const SPAN: std::time::Duration = std::time::Duration::from_secs(5);

    pub fn sample(&mut self, at: std::time::Instant, value: u64) -> f64 {
        self.samples.push_back((at, value));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| at.duration_since(*t) > Self::SPAN)
        {
            self.samples.pop_front();
        }
        let (t0, v0) = self.samples.front().copied().expect("just pushed");
        let elapsed = at.duration_since(t0).as_secs_f64();
        if elapsed < 0.05 {
            0.0
        } else {
            value.saturating_sub(v0) as f64 / elapsed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_counts_outcomes_in_the_window() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut h = History::default();
        h.record("a", EventState::Delivered, t0);
        h.record("a", EventState::Retrying, t0);
        h.record("a", EventState::Pending, t0);
        h.record(
            "a",
            EventState::Delivered,
            t0 + chrono::Duration::seconds(2),
        );
        let a = h.get(Some("a")).unwrap();
        assert_eq!(a.totals(t0 + chrono::Duration::seconds(2)), (2, 1));
        assert_eq!(
            a.series(t0 + chrono::Duration::seconds(2), 3, 1),
            vec![1, 0, 1]
        );
        assert_eq!(a.totals(t0 + chrono::Duration::seconds(400)), (0, 0));
    }

    #[test]
    fn rate_is_per_second() {
        let mut m = RateMeter::default();
        let t = std::time::Instant::now();
        m.sample(t, 0);
        let r = m.sample(t + std::time::Duration::from_secs(2), 20);
        assert!((r - 10.0).abs() < 1e-9);
    }
}
