//! Waiting for a condition with a deadline, never a bare sleep.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen within a second or
/// two. Load tests that need longer pass their own budget to the `_within` forms.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(10);

/// Polls `cond` until it holds; panics naming `what` after [`DEADLINE`].
pub async fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_until_within(DEADLINE, what, cond).await
}

/// [`wait_until`] with an explicit budget (load tests).
pub async fn wait_until_within(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls an async `cond` until it holds; panics naming `what` after [`DEADLINE`].
pub async fn wait_until_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, || {
        let check = cond();
        async move {
            if check.await {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        }
    })
    .await
}

/// Polls `check` until it returns `Ok`; panics after [`DEADLINE`] naming `what`
/// and quoting the last `Err` (a description of what was seen instead).
pub async fn wait_for<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    wait_for_within(DEADLINE, what, check).await
}

/// [`wait_for`] with an explicit budget (load tests).
pub async fn wait_for_within<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(POLL).await;
    }
}
