//! Single flight: concurrent misses of one key in this process share one
//! computation.
//!
//! The first caller that misses a key leads: it computes and hands the
//! encoded result to the callers that missed the same key meanwhile. They
//! wait a bounded time; when the leader has nothing to share (its result is
//! an `Err`, bypassed or not encodable, it panicked, or its future was
//! dropped) they compute themselves. A write or delete of the key voids its
//! flight, so no call that starts after an invalidation joins a computation
//! that began before it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a leader hands its followers: the encoded result, or `None` when
/// they must compute themselves.
pub(crate) type Outcome = Option<Arc<Vec<u8>>>;

#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Arc<Flight>>>,
    /// Flights under way, so writes skip the lock when there are none.
    open: AtomicUsize,
    /// Flights ended so far, so that a caller whose read raced with the end
    /// of one reads again instead of computing ([`Flights::ended_since`]).
    ended: AtomicUsize,
}

#[derive(Default)]
pub(crate) struct Flight {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
    notify: tokio::sync::Notify,
}

/// The caller's part in the flight of its key.
pub(crate) enum Role<'f> {
    Leader(Leader<'f>),
    Follower(Arc<Flight>),
}

/// Held by the computing caller; dropping it unfinished (a panic, a dropped
/// future) tells the followers to compute themselves.
pub(crate) struct Leader<'f> {
    flights: &'f Flights,
    key: String,
    flight: Arc<Flight>,
}

impl Flights {
    /// Leads the flight of `key`, or follows the one under way.
    pub fn join(&self, key: &str) -> Role<'_> {
        let mut map = self.lock();
        if let Some(f) = map.get(key) {
            return Role::Follower(f.clone());
        }
        let flight = Arc::new(Flight::default());
        map.insert(key.to_owned(), flight.clone());
        self.open.fetch_add(1, Ordering::Relaxed);
        Role::Leader(Leader {
            flights: self,
            key: key.to_owned(),
            flight,
        })
    }

    /// A mark to take before reading a key, for [`ended_since`](Self::ended_since).
    pub fn mark(&self) -> usize {
        self.ended.load(Ordering::Acquire)
    }

    /// Whether some flight ended since `mark`: a miss read before may
    /// predate the value that flight stored (its reply was read late).
    pub fn ended_since(&self, mark: usize) -> bool {
        self.ended.load(Ordering::Acquire) != mark
    }

    /// Whether `key` is being computed here.
    pub fn busy(&self, key: &str) -> bool {
        self.open.load(Ordering::Relaxed) != 0 && self.lock().contains_key(key)
    }

    /// A write or delete of `key`: its flight (begun before) is no longer
    /// joined, and its followers compute themselves.
    pub fn void<'k>(&self, keys: impl IntoIterator<Item = &'k str>) {
        if self.open.load(Ordering::Relaxed) == 0 {
            return;
        }
        let voided: Vec<Arc<Flight>> = {
            let mut map = self.lock();
            keys.into_iter().filter_map(|k| map.remove(k)).collect()
        };
        self.open.fetch_sub(voided.len(), Ordering::Relaxed);
        for f in voided {
            f.finish(None);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Leader<'_> {
    /// Hands `outcome` to the followers and ends the flight.
    pub fn finish(self, outcome: Outcome) {
        self.end(outcome);
        std::mem::forget(self);
    }

    fn end(&self, outcome: Outcome) {
        let mut map = self.flights.lock();
        // A write may have voided this flight and a new one begun since.
        if map
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            map.remove(&self.key);
            self.flights.open.fetch_sub(1, Ordering::Relaxed);
        }
        drop(map);
        self.flights.ended.fetch_add(1, Ordering::Release);
        self.flight.finish(outcome);
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.end(None);
    }
}

impl Flight {
    fn finish(&self, outcome: Outcome) {
        let mut slot = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(outcome);
        }
        drop(slot);
        self.done.notify_all();
        self.notify.notify_waiters();
    }

    fn outcome(&self) -> Option<Outcome> {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for the leader, blocking the thread, for up to `limit`;
    /// `None` when it did not finish in time or shares nothing.
    pub fn wait_blocking(&self, limit: Duration) -> Outcome {
        let slot = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let (slot, _) = self
            .done
            .wait_timeout_while(slot, limit, |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
        slot.clone().flatten()
    }

    /// Waits for the leader on the async runtime, for up to `limit`.
    pub async fn wait(&self, limit: Duration) -> Outcome {
        let end = Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a finish in between still wakes us.
            notified.as_mut().enable();
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_get_the_leaders_outcome() {
        let flights = Flights::default();
        let Role::Leader(lead) = flights.join("k") else {
            panic!("first caller leads")
        };
        let Role::Follower(f) = flights.join("k") else {
            panic!("second follows")
        };
        let waiter = std::thread::spawn(move || f.wait_blocking(Duration::from_secs(5)));
        lead.finish(Some(Arc::new(b"v".to_vec())));
        assert_eq!(
            waiter.join().unwrap().as_deref().map(Vec::as_slice),
            Some(&b"v"[..])
        );
        assert!(
            matches!(flights.join("k"), Role::Leader(_)),
            "the flight ended"
        );
    }

    #[test]
    fn a_dropped_leader_and_a_void_release_the_followers() {
        let flights = Flights::default();
        let lead = flights.join("k");
        let Role::Follower(f) = flights.join("k") else {
            panic!()
        };
        drop(lead);
        assert_eq!(f.wait_blocking(Duration::from_secs(5)), None);

        let Role::Leader(lead) = flights.join("k") else {
            panic!()
        };
        let Role::Follower(f) = flights.join("k") else {
            panic!()
        };
        flights.void(["k"]);
        assert_eq!(f.wait_blocking(Duration::from_secs(5)), None, "voided");
        let new = flights.join("k");
        assert!(
            matches!(new, Role::Leader(_)),
            "a new flight after the void"
        );
        lead.finish(Some(Arc::new(b"old".to_vec())));
        assert!(
            matches!(flights.join("k"), Role::Follower(_)),
            "the old leader ends only its own flight"
        );
        drop(new);
    }

    #[test]
    fn waiting_is_bounded() {
        let flights = Flights::default();
        let _lead = flights.join("k");
        let Role::Follower(f) = flights.join("k") else {
            panic!()
        };
        let t = Instant::now();
        assert_eq!(f.wait_blocking(Duration::from_millis(50)), None);
        assert!(t.elapsed() >= Duration::from_millis(50));
    }
}
