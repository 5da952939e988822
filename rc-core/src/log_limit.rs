//! Rate limits for log lines that could otherwise come once per call.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lets one log line through per period and counts the ones held back, so a
/// storm of failures logs a line now and then with how many it stands for.
#[derive(Debug)]
pub(crate) struct LogLimit {
    every: Duration,
    last: Mutex<Option<Instant>>,
    held: AtomicU64,
}

impl LogLimit {
    pub(crate) const fn new(every: Duration) -> Self {
        LogLimit {
            every,
            last: Mutex::new(None),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being how many were held
    /// back since the last one; `None` (and one more held back) otherwise.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < self.every) {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.held.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_held_back() {
        let limit = LogLimit::new(Duration::from_millis(200));
        assert_eq!(limit.allow(), Some(0));
        for _ in 0..5 {
            assert_eq!(limit.allow(), None);
        }
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(limit.allow(), Some(5));
        assert_eq!(limit.allow(), None);
    }
}
