//! Backoff bookkeeping for one server, so an outage costs microseconds per call.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::Error;

/// First pause after a failure; doubles on each further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between two attempts at a failed server.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Whether a server may be tried now.
///
/// After a failure the server is "down" for a backoff period (100 ms doubling
/// up to 10 s); calls in that window fail at once with [`Error::HostDown`].
/// The first call after the window is let through as a probe.
#[derive(Debug, Default)]
pub struct Health {
    /// Fast path: false while the server is healthy, so a healthy call reads one atomic.
    failing: AtomicBool,
    /// Fresh connections the server dropped in a row (see [`Health::suspect`]).
    suspicions: AtomicU32,
    state: Mutex<DownState>,
}

#[derive(Debug, Default)]
struct DownState {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

/// Where a failure happened: what it says about the server depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Opening a connection (connect, handshake).
    Connect,
    /// A command on an open connection.
    Command,
}

impl Health {
    /// Records what a failure says about the server. An unreachable server
    /// (at connect) or a stalled one (any timeout) is marked down; a
    /// connection dropped under a command is only suspect, because it can be
    /// that command's own fault (a value over the server's size limit).
    /// Error replies say nothing about the server's health.
    pub(crate) fn record(&self, err: &Error, stage: Stage) {
        if !err.is_unavailable() {
            return;
        }
        if stage == Stage::Connect || matches!(err, Error::Timeout { .. }) {
            self.failed(err);
        } else {
            self.suspect(err);
        }
    }

    /// `Ok` when the server may be tried now; [`Error::HostDown`] while it backs off.
    pub fn check(&self, host: &str) -> Result<(), Error> {
        if !self.failing.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match st.retry_at {
            Some(at) if now < at => Err(Error::HostDown {
                host: host.to_owned(),
                last_error: st.last_error.clone(),
                retry_in: at - now,
            }),
            _ => {
                // Let this call probe; others wait for its outcome's backoff.
                st.retry_at = Some(now + backoff(st.failures));
                Ok(())
            }
        }
    }

    /// Records a failure that says the server is unreachable or stalled.
    pub fn failed(&self, err: &Error) {
        self.suspicions.store(0, Ordering::Relaxed);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.failures = st.failures.saturating_add(1);
        st.retry_at = Some(Instant::now() + backoff(st.failures));
        st.last_error = err.to_string();
        self.failing.store(true, Ordering::Release);
        tracing::warn!(error = %err, failures = st.failures, "rc: redis server marked down");
    }

    /// Records a fresh connection that the server dropped before answering.
    ///
    /// Once can be the command's own fault (a value over the server's size
    /// limit); twice in a row means the server refuses work, and it is marked down.
    pub fn suspect(&self, err: &Error) {
        if self.suspicions.fetch_add(1, Ordering::AcqRel) >= 1 {
            self.failed(err);
        }
    }

    /// Records a success: the server is healthy again.
    pub fn succeeded(&self) {
        if self.suspicions.load(Ordering::Relaxed) != 0 {
            self.suspicions.store(0, Ordering::Relaxed);
        }
        if self.failing.load(Ordering::Acquire) {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.failures > 0 {
                tracing::info!(after_failures = st.failures, "rc: redis server is back");
            }
            *st = DownState::default();
            self.failing.store(false, Ordering::Release);
        }
    }

    /// True while the server is backing off after a failure.
    pub fn is_down(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }
}

fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }

    #[test]
    fn down_then_up() {
        let h = Health::default();
        assert!(h.check("h").is_ok());
        h.failed(&Error::config("x"));
        let err = h.check("h").unwrap_err();
        assert!(matches!(err, Error::HostDown { .. }), "{err}");
        assert!(err.to_string().contains("h"));
        h.succeeded();
        assert!(h.check("h").is_ok());
        assert!(!h.is_down());
    }

    #[test]
    fn record_classifies_by_stage_and_kind() {
        let timeout = Error::Timeout {
            host: "h".into(),
            timeout: Duration::from_secs(1),
        };
        let reply = Error::config("an error reply");
        let h = Health::default();
        h.record(&reply, Stage::Connect);
        assert!(
            !h.is_down(),
            "errors that are not about reachability are ignored"
        );
        h.record(&timeout, Stage::Command);
        assert!(h.is_down(), "a timeout marks the server down");
        let h = Health::default();
        h.record(&timeout, Stage::Connect);
        assert!(h.is_down(), "a failed connect marks the server down");
    }

    #[test]
    fn two_suspicions_in_a_row_mark_down() {
        let h = Health::default();
        let e = Error::config("x");
        h.suspect(&e);
        h.succeeded();
        h.suspect(&e);
        assert!(!h.is_down(), "a success in between clears the suspicion");
        h.suspect(&e);
        assert!(h.is_down());
    }
}
