//! The one source of time for the engine.
//!
//! Everything that schedules (the dispatcher, retention, expiry) asks a [`Clock`] for
//! `now` and sleeps through it, so a test can swap in a [`ManualClock`] and run days
//! of retry schedule in milliseconds while real HTTP still flows.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> SleepFuture;
}

pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time, sleeping on tokio's timer.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> SleepFuture {
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// Virtual time for tests: it only moves when [`ManualClock::advance`] is called, and
/// every sleeper whose deadline has passed wakes at once.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    ticks: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        let (ticks, _) = watch::channel(start);
        Arc::new(ManualClock {
            now: Mutex::new(start),
            ticks,
        })
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().expect("clock lock");
        *now += chrono::Duration::from_std(by).expect("advance fits in chrono");
        self.ticks.send_replace(*now);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        let mut now = self.now.lock().expect("clock lock");
        *now = to;
        self.ticks.send_replace(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> SleepFuture {
        let mut ticks = self.ticks.subscribe();
        Box::pin(async move {
            loop {
                if *ticks.borrow_and_update() >= deadline {
                    return;
                }
                if ticks.changed().await.is_err() {
                    // The clock is gone; nothing will ever advance it.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_advanced_past_deadline() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = ManualClock::new(start);
        let sleeper = clock.sleep_until(start + chrono::Duration::hours(24));
        let handle = tokio::spawn(sleeper);
        clock.advance(Duration::from_secs(3600));
        tokio::task::yield_now().await;
        assert!(!handle.is_finished(), "woke before the deadline");
        clock.advance(Duration::from_secs(23 * 3600));
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("sleeper did not wake after the clock passed its deadline")
            .unwrap();
    }
}
