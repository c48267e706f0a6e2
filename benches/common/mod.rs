//! What every benchmark uses.

use std::time::{Duration, Instant};

/// Runs `f` repeatedly for about `budget` and returns the mean time per call.
pub(crate) fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..10 {
        f();
    }
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < budget {
        f();
        calls += 1;
    }
    start.elapsed() / calls
}
