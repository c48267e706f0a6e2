//! Waiting for a condition the application reaches in the background.

use std::time::Duration;

/// How long a test waits for what the application does in the background
/// (a read, an ingest batch, a derivation pass) before it calls it stuck.
/// Generous on purpose: it only matters when something is truly stuck, and
/// a busy machine (a second copy of the suite, `stress`) must not fail a
/// test that would pass on an idle one. Tests wait for a condition, never
/// for a time.
pub(crate) const WAIT: Duration = Duration::from_secs(120);

/// Waits (up to `limit`) until `check` is true, polling every 100 ms.
pub(crate) async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_some(limit, || {
        let check = check();
        async move { check.await.then_some(()) }
    })
    .await
    .is_some()
}

/// Waits (up to `limit`) until `check` gives a value, polling every 100 ms;
/// returns it, or `None` if the limit passed first.
pub(crate) async fn eventually_some<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if let Some(value) = check().await {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
