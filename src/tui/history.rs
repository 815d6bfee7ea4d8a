//! What the TUI remembers from engine notifications: per-destination delivery
//! history for the sparklines and the 5-minute success rate, and the header's
//! ingested/s and delivered/s from the engine's counters.

//! What the TUI shows of the past: the destinations pane's sparklines and
//! 5-minute success rates, read from the engine's per-destination minute
//! statistics (kept 24 h in the store, so an operator who opens the screen
//! after an incident still sees it), and the header's ingested/s and
//! delivered/s from the engine's counters.

use crate::engine::stats::{minute_of, DestinationStats, MinuteStats, StatsWindow};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, VecDeque};

/// The success rate's window, in minutes (the current minute included).
pub const RATE_MINUTES: i64 = 5;

/// The list's statistics: the last hour of each destination read, by id, and
/// when they were read.
#[derive(Clone, Debug, Default)]
pub struct ListStats {
    pub by_destination: BTreeMap<String, DestinationStats>,
    pub read_at: Option<DateTime<Utc>>,
}

impl ListStats {
    /// Takes a read in: the destinations it names are replaced, the others kept
    /// (those not in view are read less often).
    pub fn update(&mut self, read: Vec<DestinationStats>, at: DateTime<Utc>) {
        for stats in read {
            self.by_destination.insert(stats.destination.clone(), stats);
        }
        self.read_at = Some(at);
    }

    /// Destinations that appeared after the first read (created since): none
    /// of them has a minute before it existed, so until their own first read
    /// they count as empty rather than leaving the `all` row unknown (`—`)
    /// for a read's interval. Before any read nothing is known, and stays so.
    pub fn note_created<'a>(&mut self, ids: impl Iterator<Item = &'a str>) {
        if self.read_at.is_none() {
            return;
        }
        for id in ids {
            self.by_destination
                .entry(id.to_string())
                .or_insert_with(|| DestinationStats {
                    destination: id.to_string(),
                    window: StatsWindow::Hour,
                    minutes: Vec::new(),
                });
        }
    }

    /// The minutes of `destination`, or of every destination when `None` (only
    /// when every one in `ids` has been read: a partial sum would say less
    /// than happened).
    pub fn minutes<'a>(
        &'a self,
        destination: Option<&str>,
        ids: impl Iterator<Item = &'a str>,
    ) -> Option<Vec<&'a MinuteStats>> {
        match destination {
            Some(id) => self
                .by_destination
                .get(id)
                .map(|s| s.minutes.iter().collect()),
            None => {
                let mut all = Vec::new();
                for id in ids {
                    all.extend(self.by_destination.get(id)?.minutes.iter());
                }
                Some(all)
            }
        }
    }
}

/// Delivered and attempted in the last [`RATE_MINUTES`] minutes.
pub fn recent_totals(minutes: &[&MinuteStats], now: DateTime<Utc>) -> (u64, u64) {
    let from = minute_of(now) - Duration::minutes(RATE_MINUTES - 1);
    minutes
        .iter()
        .filter(|m| m.minute >= from && m.minute <= now)
        .fold((0, 0), |(d, a), m| {
            (d + u64::from(m.delivered), a + u64::from(m.attempts))
        })
}

/// The 5-minute success rate in words: `97%`, or `—` without attempts.
pub fn success_rate_text(minutes: Option<&[&MinuteStats]>, now: DateTime<Utc>) -> String {
    let Some(minutes) = minutes else {
        return "—".into();
    };
    let (delivered, attempts) = recent_totals(minutes, now);
    match (delivered * 100).checked_div(attempts) {
        Some(rate) => format!("{rate}%"),
        None => "—".into(),
    }
}

/// Deliveries in each of the last `n` minutes, oldest first, the current
/// minute last.
pub fn delivered_series(minutes: &[&MinuteStats], now: DateTime<Utc>, n: usize) -> Vec<u64> {
    let current = minute_of(now);
    let mut out = vec![0u64; n];
    for m in minutes {
        let age = (current - m.minute).num_minutes();
        if (0..n as i64).contains(&age) {
            out[n - 1 - age as usize] += u64::from(m.delivered);
        }
    }
    out
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
    use crate::engine::stats::StatsWindow;

    fn minute(at: DateTime<Utc>, delivered: u32, failed: u32) -> MinuteStats {
        MinuteStats {
            minute: minute_of(at),
            attempts: delivered + failed,
            delivered,
            failed,
            ..MinuteStats::default()
        }
    }

    #[test]
    fn rates_and_series_read_the_minutes() {
        let now = DateTime::from_timestamp(1_700_000_030, 0).unwrap();
        let stats = DestinationStats {
            destination: "a".into(),
            window: StatsWindow::Hour,
            minutes: vec![
                minute(now - Duration::minutes(30), 50, 0),
                minute(now - Duration::minutes(2), 3, 1),
                minute(now, 1, 0),
            ],
        };
        let minutes: Vec<&MinuteStats> = stats.minutes.iter().collect();
        // The minute 30 ago is outside the 5-minute rate, inside a 40-bar series.
        assert_eq!(recent_totals(&minutes, now), (4, 5));
        assert_eq!(success_rate_text(Some(&minutes), now), "80%");
        assert_eq!(success_rate_text(Some(&[]), now), "—");
        assert_eq!(success_rate_text(None, now), "—");
        assert_eq!(delivered_series(&minutes, now, 3), vec![3, 0, 1]);
        let long = delivered_series(&minutes, now, 40);
        assert_eq!(long[39 - 30], 50);
        assert_eq!(long.iter().sum::<u64>(), 54);
    }

    #[test]
    fn the_all_row_needs_every_destination_read() {
        let now = DateTime::from_timestamp(1_700_000_030, 0).unwrap();
        let mut list = ListStats::default();
        let stats = |id: &str| DestinationStats {
            destination: id.into(),
            window: StatsWindow::Hour,
            minutes: vec![minute(now, 2, 0)],
        };
        list.update(vec![stats("a")], now);
        assert!(list.minutes(None, ["a", "b"].into_iter()).is_none());
        list.update(vec![stats("b")], now);
        assert_eq!(list.minutes(None, ["a", "b"].into_iter()).unwrap().len(), 2);
        assert_eq!(
            list.minutes(Some("a"), std::iter::empty()).unwrap().len(),
            1
        );
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
