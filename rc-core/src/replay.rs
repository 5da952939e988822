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

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Keys remembered per server at most.
pub const MAX_KEYS: usize = 100_000;

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
    keys: HashSet<String>,
    /// Set on overflow: reads miss until the replay plus this long.
    overflow: Option<Duration>,
    /// Reads miss until then (after an overflow was replayed).
    distrust_until: Option<Instant>,
}

impl Unreplayed {
    /// Notes the expiry of a write, for the overflow window.
    pub fn wrote(&self, expire: Duration) {
        let ms = expire.as_millis().min(u64::MAX as u128) as u64;
        self.longest_expire_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Remembers `keys`, whose write or delete did not reach the server.
    pub fn remember<'k>(&self, keys: impl IntoIterator<Item = &'k str>) {
        let mut st = self.lock();
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
            st.keys.insert(k.to_owned());
        }
        self.any.store(true, Ordering::Release);
    }

    /// True when keys wait for the server or an overflow window is open.
    pub fn pending(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The keys to delete now (empty when only an overflow window is open).
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys.iter().cloned().collect()
    }

    /// The server took the deletes of `keys` (as returned by [`keys`](Self::keys)).
    pub fn replayed(&self, keys: &[String]) {
        let mut st = self.lock();
        for k in keys {
            st.keys.remove(k);
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
        let mut keys = u.keys();
        keys.sort();
        assert_eq!(keys, ["a", "b"]);
        u.replayed(&keys);
        assert!(!u.pending());
        assert!(!u.distrusted());
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
        u.replayed(&[]);
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
