//! Backoff bookkeeping for one server, so an outage costs microseconds per call.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;

/// First pause after a failure; doubles on each failed probe.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between two probes of a failed server: a server that is
/// back is used again within 2 s (10 s made a cache fail open for up to
/// 6 s after the server answered again, `frozen-redis-async`), for one
/// background `PING` every 2 s per client while it is down.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Whether a server may be tried now.
///
/// After a failure the server is "down": every call fails at once with
/// [`Error::HostDown`], and no call waits for the network. Callers never
/// probe the server themselves. When the backoff period (100 ms, doubling
/// on each failed probe up to 2 s) has passed, the first call that notices
/// starts **one** probe in the background (a tokio task for the async
/// backend, a short-lived thread for the blocking one), and fails fast like
/// the others. The probe connects and sends `PING`, bounded by the
/// configured connect and response timeouts:
///
/// - it is answered: the server is marked up, and the next calls use it;
/// - it fails (or its task is cancelled): the backoff doubles.
///
/// So a frozen server (SIGSTOP, a stalled VM) costs one timeout only to the
/// calls that were already waiting on it when it froze; after that, calls
/// cost microseconds until a probe finds it answering again. When nothing
/// calls, nothing probes.
///
/// A connection the server drops under a fresh command is only suspect (see
/// [`Health::suspect`]). While the server is up, a call reads one atomic.
/// Logging is per transition (`warn` when marked down, `info` when back)
/// and, during an outage, at its 2nd, 4th, 8th... failed probe, never per call.
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
    /// Failed attempts of this outage: the first failure, then each failed probe.
    failures: u32,
    /// When the next probe may start.
    retry_at: Option<Instant>,
    last_error: String,
    /// Counts outages, so a late probe's outcome never lands on a later one.
    outage: u64,
    /// A probe of this outage is under way.
    probing: bool,
}

/// Where a failure happened: what it says about the server depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Opening a connection (connect, handshake).
    Connect,
    /// A command on an open connection.
    Command,
}

/// The right to probe a server that is down, handed to the one caller that
/// found the backoff over. Report the outcome with [`Probe::finish`]; a probe
/// dropped unfinished (its task cancelled, its thread not started) counts
/// as failed, so the server is probed again after the next backoff.
#[derive(Debug)]
pub(crate) struct Probe {
    health: Arc<Health>,
    outage: u64,
    done: bool,
}

impl Probe {
    /// Records the probe's outcome: `Ok` marks the server up.
    pub(crate) fn finish(mut self, outcome: Result<(), Error>) {
        self.done = true;
        self.health.probed(self.outage, outcome);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if !self.done {
            let err = Error::config("the probe was cancelled before it finished");
            self.health.probed(self.outage, Err(err));
        }
    }
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

    /// `Ok` while the server is up; [`Error::HostDown`] while it is down.
    ///
    /// Never starts a probe (the backends do, through their own calls).
    pub fn check(&self, host: &str) -> Result<(), Error> {
        if !self.failing.load(Ordering::Acquire) {
            return Ok(());
        }
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match st.down_error(host, Instant::now()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Like [`check`](Self::check), and when the server is down with its
    /// backoff over and no probe under way, calls `start_probe` (once per
    /// backoff window, outside any lock). The caller gets
    /// [`Error::HostDown`] either way: it never waits for the probe.
    pub(crate) fn admit(
        self: &Arc<Self>,
        host: &str,
        start_probe: impl FnOnce(Probe),
    ) -> Result<(), Error> {
        if !self.failing.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(err) = st.down_error(host, now) else {
            return Ok(());
        };
        let due = !st.probing && st.retry_at.is_none_or(|at| now >= at);
        if !due {
            return Err(err);
        }
        st.probing = true;
        let probe = Probe {
            health: Arc::clone(self),
            outage: st.outage,
            done: false,
        };
        drop(st);
        start_probe(probe);
        Err(err)
    }

    /// Records a failure that says the server is unreachable or stalled.
    ///
    /// A server that is up is marked down (and logged once). One that is
    /// down already (a call that was under way when it failed) only keeps
    /// the newer error: the backoff grows with failed probes, not with the
    /// calls that were waiting when the server went away.
    pub fn failed(&self, err: &Error) {
        self.suspicions.store(0, Ordering::Relaxed);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.last_error = err.to_string();
        if self.failing.load(Ordering::Acquire) {
            return;
        }
        st.outage = st.outage.wrapping_add(1);
        st.failures = 1;
        st.probing = false;
        st.retry_at = Some(Instant::now() + backoff(1));
        self.failing.store(true, Ordering::Release);
        tracing::warn!(error = %err, "rc: redis server marked down");
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
            if !self.failing.load(Ordering::Acquire) {
                return;
            }
            // The last error names the server (this type does not know its name).
            tracing::info!(
                after_failures = st.failures,
                last_error = %st.last_error,
                "rc: redis server is back"
            );
            *st = DownState {
                outage: st.outage,
                ..DownState::default()
            };
            self.failing.store(false, Ordering::Release);
        }
    }

    /// True while the server is down (backing off, or being probed).
    pub fn is_down(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// A probe of outage `outage` ended.
    fn probed(&self, outage: u64, outcome: Result<(), Error>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.outage != outage || !self.failing.load(Ordering::Acquire) {
            // The server came back (or went down anew) meanwhile: stale news.
            return;
        }
        st.probing = false;
        match outcome {
            Ok(()) => {
                drop(st);
                self.succeeded();
            }
            Err(err) => {
                st.failures = st.failures.saturating_add(1);
                st.retry_at = Some(Instant::now() + backoff(st.failures));
                st.last_error = err.to_string();
                // Probes come every 2 s at most: log the 2nd, 4th, 8th...
                // failure, so a long outage adds a line ever more rarely.
                if st.failures.is_power_of_two() {
                    tracing::warn!(
                        error = %err,
                        failures = st.failures,
                        retry_in = ?backoff(st.failures),
                        "rc: redis server still down after a probe"
                    );
                }
            }
        }
    }
}

impl DownState {
    /// The error of a call while the server is down (`None` once it is up,
    /// which a caller may see between the atomic and the lock).
    fn down_error(&self, host: &str, now: Instant) -> Option<Error> {
        let at = self.retry_at?;
        Some(Error::HostDown {
            host: host.to_owned(),
            last_error: self.last_error.clone(),
            retry_in: at.saturating_duration_since(now),
        })
    }
}

fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout() -> Error {
        Error::Timeout {
            host: "h".into(),
            timeout: Duration::from_secs(1),
        }
    }

    /// Admits a call; returns the outcome and the probe it started, if any.
    fn admit(h: &Arc<Health>) -> (Result<(), Error>, Option<Probe>) {
        let mut started = None;
        let r = h.admit("h", |p| started = Some(p));
        (r, started)
    }

    /// Lets the backoff window of `h` end now.
    fn expire(h: &Health) {
        h.state.lock().unwrap().retry_at = Some(Instant::now());
    }

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
    fn one_background_probe_per_window_and_callers_never_wait() {
        let h = Arc::new(Health::default());
        let (r, probe) = admit(&h);
        assert!(r.is_ok() && probe.is_none(), "a healthy call goes through");
        h.failed(&timeout());
        let (r, probe) = admit(&h);
        assert!(matches!(r, Err(Error::HostDown { .. })));
        assert!(probe.is_none(), "no probe inside the backoff window");

        expire(&h);
        let (r, probe) = admit(&h);
        assert!(
            matches!(r, Err(Error::HostDown { .. })),
            "the caller that starts the probe fails fast too"
        );
        let probe = probe.expect("the first caller after the window starts a probe");
        for _ in 0..10 {
            let (r, again) = admit(&h);
            assert!(matches!(r, Err(Error::HostDown { .. })));
            assert!(again.is_none(), "one probe at a time");
        }
        probe.finish(Ok(()));
        assert!(!h.is_down(), "an answered probe marks the server up");
        assert!(admit(&h).0.is_ok());
    }

    #[test]
    fn a_failed_probe_doubles_the_backoff() {
        let h = Arc::new(Health::default());
        h.failed(&timeout());
        expire(&h);
        let probe = admit(&h).1.unwrap();
        probe.finish(Err(Error::config("still frozen")));
        assert!(h.is_down());
        let Err(Error::HostDown {
            retry_in,
            last_error,
            ..
        }) = h.check("h")
        else {
            panic!("still down");
        };
        assert!(
            retry_in > backoff(1) && retry_in <= backoff(2),
            "{retry_in:?}"
        );
        assert!(last_error.contains("still frozen"), "{last_error}");
        assert!(
            admit(&h).1.is_none(),
            "the next probe waits for the new window"
        );
    }

    #[test]
    fn a_dropped_probe_counts_as_failed_and_another_follows() {
        let h = Arc::new(Health::default());
        h.failed(&timeout());
        expire(&h);
        drop(admit(&h).1.unwrap());
        assert!(h.is_down());
        assert_eq!(h.state.lock().unwrap().failures, 2);
        expire(&h);
        assert!(
            admit(&h).1.is_some(),
            "not stuck with a probe that never ends"
        );
    }

    #[test]
    fn calls_in_flight_at_the_failure_do_not_grow_the_backoff() {
        let h = Arc::new(Health::default());
        h.failed(&timeout());
        for _ in 0..5 {
            h.record(&timeout(), Stage::Command);
        }
        assert_eq!(h.state.lock().unwrap().failures, 1);
    }

    #[test]
    fn a_late_probe_does_not_touch_a_later_outage() {
        let h = Arc::new(Health::default());
        h.failed(&timeout());
        expire(&h);
        let stale = admit(&h).1.unwrap();
        h.succeeded();
        h.failed(&timeout());
        stale.finish(Ok(()));
        assert!(
            h.is_down(),
            "the old probe's answer is not about this outage"
        );
    }

    #[test]
    fn record_classifies_by_stage_and_kind() {
        let reply = Error::config("an error reply");
        let h = Health::default();
        h.record(&reply, Stage::Connect);
        assert!(
            !h.is_down(),
            "errors that are not about reachability are ignored"
        );
        h.record(&timeout(), Stage::Command);
        assert!(h.is_down(), "a timeout marks the server down");
        let h = Health::default();
        h.record(&timeout(), Stage::Connect);
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
