//! Per-destination history by the minute: attempts by outcome, deliveries and
//! latency, for the last 24 hours. An operator who opens the TUI after an
//! incident sees it (the sparklines, the success rate, the destination view's
//! charts, `GET /v1/destinations/{id}/stats`), and a destination answering
//! most attempts with errors shows `degraded` even between its failures.
//!
//! Counting costs one short lock per attempt: the minutes still being written
//! live in memory, and housekeeping writes each finished minute to the store
//! once (and the current one at shutdown), so a crash loses at most the last
//! minute or so of history, never an event. The store keeps one small record
//! per destination and active minute, and drops those past [`HISTORY`].

use super::deliver::AttemptOutcome;
use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How far back the history goes.
pub const HISTORY: Duration = Duration::from_secs(24 * 3600);
/// The window health looks at.
pub const HEALTH_WINDOW: Duration = Duration::from_secs(15 * 60);
/// `degraded`: fewer than this share of the window's attempts got a 2xx...
pub const DEGRADED_BELOW: f64 = 0.9;
/// ...out of at least this many attempts (a single failure of a quiet
/// destination is not a trend).
pub const DEGRADED_MIN_ATTEMPTS: u32 = 10;

/// Upper bounds (ms) of the latency histogram's buckets; the last is open.
/// Percentiles read from it are the upper bound of the bucket they fall in.
const LATENCY_BOUNDS_MS: [u64; 16] = [
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    30_000,
    60_000,
    u64::MAX,
];

/// Which window a stats read covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatsWindow {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
}

impl StatsWindow {
    pub fn duration(self) -> Duration {
        match self {
            StatsWindow::Hour => Duration::from_secs(3600),
            StatsWindow::Day => HISTORY,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatsWindow::Hour => "1h",
            StatsWindow::Day => "24h",
        }
    }

    pub fn parse(text: &str) -> Result<StatsWindow, String> {
        match text {
            "1h" => Ok(StatsWindow::Hour),
            "24h" => Ok(StatsWindow::Day),
            other => Err(format!("\"{other}\" is not a window (1h or 24h)")),
        }
    }
}

/// One destination's attempts in one minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteStats {
    /// The start of the minute.
    pub minute: DateTime<Utc>,
    pub attempts: u32,
    /// Attempts answered with a 2xx.
    pub delivered: u32,
    /// Attempts that did not get a 2xx (any status, timeout, network error).
    pub failed: u32,
    /// Attempts by outcome (`success`, `server_error`, `timeout`, ..., the
    /// `outcome` labels of `/metrics`).
    pub outcomes: BTreeMap<String, u32>,
    /// Latency percentiles of the minute's attempts (exact up to
    /// [`LATENCY_SAMPLES`] attempts a minute, from a uniform sample beyond).
    pub latency_p50_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
    /// Attempts per latency bucket (bounds: 1, 2, 5, 10, 20, 50, 100, 200,
    /// 500 ms, 1, 2, 5, 10, 30, 60 s, more).
    pub latency_histogram: Vec<u32>,
    /// The latencies (ms) the percentiles are read from, while the minute is
    /// in memory.
    #[serde(skip)]
    pub(crate) samples: Vec<u32>,
}

/// Latencies kept per minute for its percentiles: every attempt's up to this
/// many, then a uniform sample (reservoir) of them.
pub const LATENCY_SAMPLES: usize = 1024;

impl MinuteStats {
    fn new(minute: DateTime<Utc>) -> MinuteStats {
        MinuteStats {
            minute,
            latency_histogram: vec![0; LATENCY_BOUNDS_MS.len()],
            ..MinuteStats::default()
        }
    }

    fn record(&mut self, outcome: AttemptOutcome, latency: Duration) {
        self.attempts += 1;
        if outcome.is_success() {
            self.delivered += 1;
        } else {
            self.failed += 1;
        }
        *self
            .outcomes
            .entry(outcome.metric_label().to_string())
            .or_default() += 1;
        let ms = latency.as_millis() as u64;
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(LATENCY_BOUNDS_MS.len() - 1);
        if self.latency_histogram.len() != LATENCY_BOUNDS_MS.len() {
            self.latency_histogram = vec![0; LATENCY_BOUNDS_MS.len()];
        }
        self.latency_histogram[bucket] += 1;
        let ms = u32::try_from(ms).unwrap_or(u32::MAX);
        if self.samples.len() < LATENCY_SAMPLES {
            self.samples.push(ms);
        } else {
            // Reservoir sampling: each of the minute's attempts stays in the
            // sample with the same chance.
            let slot = rand::random::<u32>() % self.attempts;
            if let Some(kept) = self.samples.get_mut(slot as usize) {
                *kept = ms;
            }
        }
    }

    /// The percentiles from the samples (a minute read back from the store
    /// keeps the ones it was stored with until it gets new attempts).
    fn with_percentiles(mut self) -> MinuteStats {
        if !self.samples.is_empty() {
            let mut sorted = self.samples.clone();
            sorted.sort_unstable();
            self.latency_p50_ms = Some(u64::from(nearest_rank(&sorted, 0.50)));
            self.latency_p99_ms = Some(u64::from(nearest_rank(&sorted, 0.99)));
        }
        self
    }
}

/// The nearest-rank `q` quantile of sorted values.
fn nearest_rank(sorted: &[u32], q: f64) -> u32 {
    let rank = ((sorted.len() as f64) * q).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// The start of the minute `at` falls in.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(ChronoDuration::minutes(1)).unwrap_or(at)
}

/// A destination's minutes in memory: the recent ones (for health), each
/// marked whether the store has its latest counts.
#[derive(Default)]
pub struct RecentMinutes {
    minutes: VecDeque<(MinuteStats, bool)>,
}

impl RecentMinutes {
    /// Minutes read back from the store at start (already stored).
    pub fn restore(stored: Vec<MinuteStats>) -> RecentMinutes {
        RecentMinutes {
            minutes: stored.into_iter().map(|m| (m, true)).collect(),
        }
    }

    /// Counts one attempt that finished at `at`.
    pub fn record(&mut self, at: DateTime<Utc>, outcome: AttemptOutcome, latency: Duration) {
        let minute = minute_of(at);
        let fresh = match self.minutes.back() {
            Some((last, _)) => last.minute < minute,
            None => true,
        };
        if fresh {
            self.minutes.push_back((MinuteStats::new(minute), false));
        }
        // A clock that stepped back counts into the newest minute.
        let (last, stored) = self.minutes.back_mut().expect("just ensured");
        last.record(outcome, latency);
        *stored = false;
    }

    /// The minutes whose counts the store does not have yet, marking them
    /// stored; and forgets minutes older than the health window.
    pub fn take_unstored(&mut self, now: DateTime<Utc>) -> Vec<MinuteStats> {
        let out = self
            .minutes
            .iter_mut()
            .filter(|(_, stored)| !*stored)
            .map(|(minute, stored)| {
                *stored = true;
                minute.clone().with_percentiles()
            })
            .collect();
        let horizon = now - window(HEALTH_WINDOW);
        while self
            .minutes
            .front()
            .is_some_and(|(m, stored)| *stored && m.minute + ChronoDuration::minutes(1) <= horizon)
        {
            self.minutes.pop_front();
        }
        out
    }

    /// The minutes at or after `since`, as held in memory.
    pub fn since(&self, since: DateTime<Utc>) -> Vec<MinuteStats> {
        self.minutes
            .iter()
            .filter(|(m, _)| m.minute >= since)
            .map(|(m, _)| m.clone().with_percentiles())
            .collect()
    }

    /// Whether the last [`HEALTH_WINDOW`] reads as degraded.
    pub fn degraded(&self, now: DateTime<Utc>) -> bool {
        let since = minute_of(now - window(HEALTH_WINDOW));
        let (attempts, delivered) = self
            .minutes
            .iter()
            .filter(|(m, _)| m.minute >= since)
            .fold((0u32, 0u32), |(a, d), (m, _)| {
                (a + m.attempts, d + m.delivered)
            });
        attempts >= DEGRADED_MIN_ATTEMPTS
            && f64::from(delivered) < DEGRADED_BELOW * f64::from(attempts)
    }
}

fn window(duration: Duration) -> ChronoDuration {
    ChronoDuration::from_std(duration).expect("a small window")
}

/// Stored minutes overlaid with the ones in memory (memory is newer for a
/// minute both hold), oldest first.
pub fn merge(stored: Vec<MinuteStats>, recent: Vec<MinuteStats>) -> Vec<MinuteStats> {
    let mut by_minute: BTreeMap<DateTime<Utc>, MinuteStats> =
        stored.into_iter().map(|m| (m.minute, m)).collect();
    for minute in recent {
        by_minute.insert(minute.minute, minute);
    }
    by_minute.into_values().collect()
}

/// What `GET /v1/destinations/{id}/stats` answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationStats {
    pub destination: String,
    pub window: StatsWindow,
    /// Minutes with at least one attempt, oldest first.
    pub minutes: Vec<MinuteStats>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: i64, second: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
            + ChronoDuration::minutes(minute)
            + ChronoDuration::seconds(second)
    }

    const OK: AttemptOutcome = AttemptOutcome::Response(200);
    const DOWN: AttemptOutcome = AttemptOutcome::Response(503);

    #[test]
    fn attempts_count_into_their_minute_with_percentiles() {
        let mut recent = RecentMinutes::default();
        for n in 0..100 {
            recent.record(
                at(0, n % 60),
                OK,
                Duration::from_millis(if n < 98 { 4 } else { 700 }),
            );
        }
        recent.record(at(1, 5), DOWN, Duration::from_millis(30));
        let minutes = recent.since(at(0, 0));
        assert_eq!(minutes.len(), 2);
        assert_eq!(minutes[0].minute, at(0, 0));
        assert_eq!((minutes[0].attempts, minutes[0].delivered), (100, 100));
        assert_eq!(minutes[0].latency_p50_ms, Some(4));
        assert_eq!(minutes[0].latency_p99_ms, Some(700));
        assert_eq!(minutes[1].latency_p50_ms, Some(30));
        assert_eq!(minutes[1].failed, 1);
        assert_eq!(minutes[1].outcomes["server_error"], 1);
    }

    #[test]
    fn degraded_needs_enough_attempts_and_a_low_share_of_2xx() {
        let mut recent = RecentMinutes::default();
        // 42 % answered with a 2xx, over 12 attempts: degraded.
        for n in 0..12 {
            let outcome = if n % 12 < 5 { OK } else { DOWN };
            recent.record(at(0, n), outcome, Duration::from_millis(5));
        }
        assert!(recent.degraded(at(1, 0)));
        // The same minutes, 20 minutes later, are out of the window.
        assert!(!recent.degraded(at(20, 0)));

        let mut quiet = RecentMinutes::default();
        for n in 0..9 {
            quiet.record(at(0, n), DOWN, Duration::from_millis(5));
        }
        assert!(!quiet.degraded(at(1, 0)), "9 attempts are too few to judge");

        let mut fine = RecentMinutes::default();
        for n in 0..20 {
            let outcome = if n == 0 { DOWN } else { OK };
            fine.record(at(0, n), outcome, Duration::from_millis(5));
        }
        assert!(!fine.degraded(at(1, 0)), "95 % delivered is not degraded");
    }

    #[test]
    fn unstored_minutes_are_taken_once_and_old_ones_forgotten() {
        let mut recent = RecentMinutes::default();
        recent.record(at(0, 1), OK, Duration::from_millis(5));
        recent.record(at(2, 1), OK, Duration::from_millis(5));
        assert_eq!(recent.take_unstored(at(2, 30)).len(), 2);
        assert!(recent.take_unstored(at(2, 40)).is_empty());
        // A new attempt in a stored minute makes it unstored again, whole.
        recent.record(at(2, 50), DOWN, Duration::from_millis(5));
        let again = recent.take_unstored(at(2, 55));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        // Past the health window, stored minutes leave memory.
        recent.take_unstored(at(30, 0));
        assert!(recent.since(at(0, 0)).is_empty());
    }

    #[test]
    fn merge_prefers_memory_for_a_minute_both_hold() {
        let mut stored = MinuteStats::new(at(0, 0));
        stored.attempts = 1;
        let mut newer = MinuteStats::new(at(0, 0));
        newer.attempts = 3;
        let other = MinuteStats::new(at(5, 0));
        let merged = merge(vec![stored, other.clone()], vec![newer.clone()]);
        assert_eq!(merged, vec![newer, other]);
    }

    #[test]
    fn windows_parse_and_name_themselves() {
        assert_eq!(StatsWindow::parse("1h"), Ok(StatsWindow::Hour));
        assert_eq!(StatsWindow::parse("24h"), Ok(StatsWindow::Day));
        assert!(StatsWindow::parse("7d").unwrap_err().contains("\"7d\""));
    }
}
