//! Deletes one server missed, kept until they reach it.
//!
//! When a `DEL` (an invalidation) or a `SET` cannot reach a server, the
//! server may still hold the key's old value. The key is remembered here and
//! deleted on that server before any other command of this process reaches
//! it again, so no read that follows the failed write returns the old value.
//!
//! Memory is bounded ([`MAX_KEYS`] keys per server). Past the bound the
//! server's values can no longer be trusted key by key: its reads answer
//! "missing" (decorated calls compute, nothing stale is served) until every
//! value written before the overflow has expired (the longest expiry this
//! process wrote there, counted from when the server answers again).
//! A process that exits before the replay cannot delete: other processes
//! may read the old value until its expiry.
//!
//! The record is per server and per process: every backend of this process
//! on the same server (a second `Cache`, an `AsyncCache`, a cluster host)
//! shares it, so none of them reads the old value before the replay.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

/// Keys remembered per server at most.
pub const MAX_KEYS: usize = 100_000;

/// The keys waiting at one moment, as [`Unreplayed::keys`] returns them.
#[derive(Debug)]
pub(crate) struct Snapshot {
    keys: Vec<String>,
    /// Failures remembered up to that moment.
    failures: u64,
}

impl std::ops::Deref for Snapshot {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.keys
    }
}

#[derive(Debug, Default)]
pub(crate) struct Unreplayed {
    /// Fast path: false when no key waits and no overflow window is open,
    /// so a healthy call reads one atomic.
    any: AtomicBool,
    state: Mutex<State>,
    /// Longest expiry written to this server, in ms (for the overflow window).
    longest_expire_ms: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Each key with the number of the latest failure that remembered it.
    keys: HashMap<String, u64>,
    /// Failures remembered so far (numbers the keys' failures).
    failures: u64,
    /// Set on overflow: reads miss until the replay plus this long.
    overflow: Option<Duration>,
    /// Reads miss until then (after an overflow was replayed).
    distrust_until: Option<Instant>,
}

impl Unreplayed {
    /// The record of the server at `address` (as [`HostConfig::address`](crate::HostConfig::address)
    /// names it: host, port and db), shared by every backend of this process on it.
    pub fn for_server(address: &str) -> Arc<Unreplayed> {
        static SERVERS: LazyLock<Mutex<HashMap<String, Weak<Unreplayed>>>> =
            LazyLock::new(Default::default);
        let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = servers.get(address).and_then(Weak::upgrade) {
            return shared;
        }
        servers.retain(|_, w| w.strong_count() > 0);
        let fresh = Arc::new(Unreplayed::default());
        servers.insert(address.to_owned(), Arc::downgrade(&fresh));
        fresh
    }

    /// Notes the expiry of a write, for the overflow window.
    pub fn wrote(&self, expire: Duration) {
        let ms = expire.as_millis().min(u64::MAX as u128) as u64;
        self.longest_expire_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Remembers `keys`, whose write or delete did not reach the server.
    pub fn remember<'k>(&self, keys: impl IntoIterator<Item = &'k str>) {
        let mut st = self.lock();
        st.failures += 1;
        let failure = st.failures;
        for k in keys {
            if st.overflow.is_some() {
                break;
            }
            if st.keys.len() >= MAX_KEYS {
                tracing::warn!(
                    max = MAX_KEYS,
                    "rc: too many deletes missed one server; its values are not trusted until they expire"
                );
                st.keys.clear();
                st.overflow = Some(Duration::from_millis(
                    self.longest_expire_ms.load(Ordering::Relaxed),
                ));
                break;
            }
            st.keys.insert(k.to_owned(), failure);
        }
        self.any.store(true, Ordering::Release);
    }

    /// True when keys wait for the server or an overflow window is open.
    pub fn pending(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The keys to delete now (empty when only an overflow window is open).
    pub fn keys(&self) -> Snapshot {
        let st = self.lock();
        Snapshot {
            keys: st.keys.keys().cloned().collect(),
            failures: st.failures,
        }
    }

    /// The server took the deletes of `keys` (as returned by [`keys`](Self::keys)).
    ///
    /// A key that failed again after the snapshot stays: that failure's
    /// command may have been sent after the replayed delete ran (e.g. a
    /// `DEL` lost when its connection was killed), so it is not covered.
    pub fn replayed(&self, keys: &Snapshot) {
        let mut st = self.lock();
        for k in &keys.keys {
            if st.keys.get(k).is_some_and(|&f| f <= keys.failures) {
                st.keys.remove(k);
            }
        }
        if let Some(window) = st.overflow.take() {
            st.distrust_until = Some(Instant::now() + window);
        }
        self.settle(&st);
    }

    fn settle(&self, st: &State) {
        let any = !st.keys.is_empty() || st.overflow.is_some() || st.distrust_until.is_some();
        self.any.store(any, Ordering::Release);
    }

    /// True while reads of this server must answer "missing".
    pub fn distrusted(&self) -> bool {
        let mut st = self.lock();
        if st.overflow.is_some() {
            return true;
        }
        match st.distrust_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                st.distrust_until = None;
                self.settle(&st);
                false
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_until_replayed() {
        let u = Unreplayed::default();
        assert!(!u.pending());
        u.remember(["a", "b"]);
        assert!(u.pending());
        let keys = u.keys();
        let mut sorted = keys.to_vec();
        sorted.sort();
        assert_eq!(sorted, ["a", "b"]);
        u.replayed(&keys);
        assert!(!u.pending());
        assert!(!u.distrusted());
    }

    /// A key that fails again while a replay of it is under way is not
    /// forgotten when that replay completes: its new failure may have
    /// happened after the replayed delete ran.
    #[test]
    fn a_failure_during_a_replay_is_kept() {
        let u = Unreplayed::default();
        u.remember(["a", "b"]);
        let snapshot = u.keys();
        u.remember(["a"]); // another delete of `a` fails meanwhile
        u.replayed(&snapshot);
        assert!(u.pending());
        assert_eq!(&*u.keys(), ["a".to_owned()]);
        u.replayed(&u.keys());
        assert!(!u.pending());
    }

    #[test]
    fn overflow_distrusts_reads_for_the_longest_expiry() {
        let u = Unreplayed::default();
        u.wrote(Duration::from_millis(80));
        let many: Vec<String> = (0..=MAX_KEYS).map(|i| i.to_string()).collect();
        u.remember(many.iter().map(String::as_str));
        assert!(
            u.pending() && u.distrusted(),
            "overflowed: nothing is trusted"
        );
        assert!(
            u.keys().is_empty(),
            "the keys are dropped, memory stays bounded"
        );
        u.replayed(&u.keys());
        assert!(
            u.distrusted(),
            "until the values written before have expired"
        );
        assert!(u.pending());
        std::thread::sleep(Duration::from_millis(100));
        assert!(!u.distrusted());
        assert!(!u.pending());
    }
}
