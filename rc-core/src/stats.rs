//! Counters of what a cache did.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a cache's counters (see [`Cache::stats`](crate::Cache::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found nothing (or undecodable bytes, for decorated calls).
    pub misses: u64,
    /// Values written.
    pub sets: u64,
    /// Decorated results not stored because they equal a bypass value.
    pub bypassed: u64,
    /// Failures of the store (counted whether they were returned or failed open).
    pub errors: u64,
    /// Stored bytes that did not decode.
    pub decode_errors: u64,
    /// Reads served from the near cache, in process memory (see `local_cache`
    /// on the builders); they count in `hits` too. Redis hits are
    /// `hits - local_hits`.
    pub local_hits: u64,
    /// Values the near cache holds now (approximate: evictions and expiries
    /// are applied in batches).
    pub local_entries: u64,
    /// Decorated calls answered with a value past its expiry, within
    /// `stale_while_revalidate` (also counted in `hits`).
    pub stale_hits: u64,
    /// Decorated calls whose body failed and that returned a value past its
    /// expiry instead, within `stale_if_error`.
    pub stale_served: u64,
    /// Background refreshes run (`stale_while_revalidate`).
    pub refreshes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub sets: AtomicU64,
    pub bypassed: AtomicU64,
    pub errors: AtomicU64,
    pub decode_errors: AtomicU64,
    pub stale_hits: AtomicU64,
    pub stale_served: AtomicU64,
    pub refreshes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            sets: self.sets.load(Relaxed),
            bypassed: self.bypassed.load(Relaxed),
            errors: self.errors.load(Relaxed),
            decode_errors: self.decode_errors.load(Relaxed),
            local_hits: 0,
            local_entries: 0,
            stale_hits: self.stale_hits.load(Relaxed),
            stale_served: self.stale_served.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
        }
    }
}
