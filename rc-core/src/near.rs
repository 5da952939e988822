//! The near cache: copies of hot values in process memory, kept coherent by
//! Redis (server-assisted client-side caching).
//!
//! [`NearStore`] wraps a cache's byte store. Reads look in the local copy
//! first; a miss reads the value and its remaining TTL from Redis in one
//! round trip and keeps the copy no longer than the key lives. Each Redis
//! server gets one invalidation connection ([`tracker`]) in broadcast
//! tracking mode on the cache's namespace: the server tells it of every
//! change to a key under the namespace (any client's write, delete, expiry,
//! eviction; `FLUSHALL`), and the copy is dropped.
//!
//! Three rules keep a copy from ever being older than Redis allows:
//! - A server's copies are used only while its invalidation connection is
//!   subscribed. When it drops, times out, or the server says all keys
//!   changed, the server's *epoch* moves on: copies taken under an older
//!   epoch are never served again, and none are kept until it is back.
//! - A read takes a [`Ticket`] (the key's stripe generation and the epoch)
//!   before it is sent, and keeps what it read only if neither moved by the
//!   time it is kept, checked under the stripe's lock that invalidations
//!   take too. So an invalidation that overtakes the read's reply is not
//!   lost (the classic race of client-side caching).
//! - This cache's own writes and deletes drop the copy when Redis answers.
//!
//! On a Redis Cluster or under Sentinel the servers change: each primary is
//! tracked by its own connection from the moment it is found ([`Near::track`]),
//! and whenever the primaries or their hash slots change, the epoch of each
//! server that lost a slot moves on and its copies go ([`Near::relayout`]);
//! the others keep theirs. A copy is served only for the server that held
//! its key when it was read.

mod tracker;

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use moka::sync::Cache as Moka;

use crate::backend::{
    AsyncBackend, Backend, BoxFuture, ManyReplies, ServerLink, SetItem, ValueTtl,
};
use crate::core::{Blocking, Io, NonBlocking, now};
use crate::error::{Error, Result};
use crate::stats::Stats;

/// The bounds of a near cache (see `local_cache` on the builders).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LocalBounds {
    pub entries: Option<u64>,
    pub bytes: Option<u64>,
}

/// What an entry costs besides its key and value, for the byte bound:
/// moka's bookkeeping (hash-map bucket, entry, access-order and timer-wheel
/// nodes, the key's `Arc`) and allocator rounding. Measured: 1M entries of
/// 16-byte keys and 102-byte values took 595 bytes each (x86-64 Linux, glibc).
const ENTRY_OVERHEAD: u64 = 512;

/// Stripes of key generations; more stripes, fewer reads not kept because
/// another key of their stripe changed meanwhile.
const STRIPES: usize = 1024;

/// A copy of one key's bytes.
#[derive(Clone)]
struct Entry {
    bytes: Arc<[u8]>,
    /// The server's epoch when the copy was taken.
    epoch: u64,
    server: usize,
    /// How long the key had left in Redis (`None`: no expiry).
    ttl: Option<Duration>,
}

/// Expires each copy when its key expires in Redis.
struct KeyTtl;

impl moka::Expiry<String, Entry> for KeyTtl {
    fn expire_after_create(
        &self,
        _: &String,
        e: &Entry,
        _: std::time::Instant,
    ) -> Option<Duration> {
        e.ttl
    }

    fn expire_after_update(
        &self,
        _: &String,
        e: &Entry,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        e.ttl
    }
}

/// The local copies and the coherence state, shared with the trackers.
pub(crate) struct Near {
    entries: Moka<String, Entry>,
    /// Per stripe of keys, a generation bumped by every invalidation.
    stripes: Box<[Mutex<u64>]>,
    hasher: RandomState,
    /// Per server: even while its invalidation connection is subscribed.
    /// Servers found later (Redis Cluster, Sentinel) are appended.
    epochs: ArcSwap<Vec<Arc<AtomicU64>>>,
    /// The namespace, which the trackers watch.
    prefix: String,
    /// Servers whose tracker runs; held while one is added.
    tracked: Mutex<Vec<bool>>,
    local_hits: AtomicU64,
}

/// What a read noted before it was sent (see the module docs).
#[derive(Clone, Copy)]
struct Ticket {
    stripe: usize,
    generation: u64,
    epoch: u64,
    sent: Instant,
}

impl Near {
    /// A near cache over `servers`, their invalidation connections started
    /// (each on a thread that ends soon after the near cache is dropped).
    pub fn start(bounds: LocalBounds, servers: Vec<ServerLink>, prefix: &str) -> Result<Arc<Near>> {
        if servers.is_empty() {
            return Err(Error::config(
                "local_cache needs Redis behind the cache (its servers keep the local copies coherent); \
                 this store has none",
            ));
        }
        let near = Arc::new(Near::new(bounds, servers.len(), prefix)?);
        for (index, link) in servers.into_iter().enumerate() {
            near.track(index, link)?;
        }
        Ok(near)
    }

    /// A near cache whose servers are found later, each given to
    /// [`track`](Self::track) (a Redis Cluster's primaries, Sentinel's).
    pub fn start_empty(bounds: LocalBounds, prefix: &str) -> Result<Arc<Near>> {
        Near::new(bounds, 0, prefix).map(Arc::new)
    }

    /// A near cache over `servers` servers, none tracked yet.
    fn new(bounds: LocalBounds, servers: usize, prefix: &str) -> Result<Near> {
        Ok(Near {
            entries: moka_cache(bounds)?,
            stripes: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
            hasher: RandomState::new(),
            epochs: ArcSwap::from_pointee(Vec::new()),
            prefix: prefix.to_owned(),
            tracked: Mutex::new(Vec::new()),
            local_hits: AtomicU64::new(0),
        }
        .with_servers(servers))
    }

    /// Adds servers up to index `servers - 1`, untracked.
    fn with_servers(self, servers: usize) -> Near {
        self.grow(servers);
        self
    }

    fn grow(&self, servers: usize) {
        let epochs = self.epochs.load();
        if epochs.len() >= servers {
            return;
        }
        let mut more = Vec::clone(&epochs);
        // Odd: not tracking until the connection is subscribed.
        more.resize_with(servers, || Arc::new(AtomicU64::new(1)));
        self.epochs.store(Arc::new(more));
    }

    /// Starts tracking server `index` through `link`, unless its tracker
    /// already runs. Until it is subscribed, the server's keys are read
    /// from Redis and not kept.
    pub fn track(self: &Arc<Self>, index: usize, link: ServerLink) -> Result<()> {
        let mut tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        if tracked.get(index).copied().unwrap_or(false) {
            return Ok(());
        }
        self.grow(index + 1);
        if tracked.len() <= index {
            tracked.resize(index + 1, false);
        }
        tracker::spawn(Arc::downgrade(self), index, link, self.prefix.clone())?;
        tracked[index] = true;
        Ok(())
    }

    /// The servers or the keys they hold changed (a Redis Cluster's slots
    /// moved, a failover), and the servers `lost` each stopped holding some
    /// (numbered as [`track`](Self::track) knows them): their copies taken
    /// before are never served again, nor their reads sent before kept. A
    /// server that kept or gained slots keeps its copies: each is of a key
    /// it still holds, and a copy is only served for the key's server.
    pub fn relayout(&self, lost: impl IntoIterator<Item = usize>) {
        for server in lost {
            self.flushed(server);
        }
    }

    fn stripe(&self, key: &str) -> usize {
        self.hasher.hash_one(key) as usize % STRIPES
    }

    fn lock(&self, stripe: usize) -> MutexGuard<'_, u64> {
        self.stripes[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The epoch of `server`; odd (untracked) for a server not known.
    fn epoch(&self, server: usize) -> u64 {
        self.epochs
            .load()
            .get(server)
            .map_or(1, |e| e.load(Ordering::Acquire))
    }

    /// The local copy of `key`, when its server is tracked and the copy was
    /// taken under the current epoch.
    fn lookup(&self, key: &str, server: usize) -> Option<Vec<u8>> {
        let epoch = self.epoch(server);
        if epoch % 2 == 1 {
            return None;
        }
        let e = self
            .entries
            .get(key)
            .filter(|e| e.epoch == epoch && e.server == server)?;
        self.local_hits.fetch_add(1, Ordering::Relaxed);
        Some(e.bytes.to_vec())
    }

    /// Notes what a read of `key` must find unchanged to keep its reply;
    /// `None` while the server is not tracked.
    fn ticket(&self, key: &str, server: usize) -> Option<Ticket> {
        let epoch = self.epoch(server);
        if epoch % 2 == 1 {
            return None;
        }
        let stripe = self.stripe(key);
        let generation = *self.lock(stripe);
        Some(Ticket {
            stripe,
            generation,
            epoch,
            sent: Instant::now(),
        })
    }

    /// Keeps a copy of what a read found, unless the key or its server
    /// changed since the ticket, or the key's time is up.
    fn keep(&self, key: &str, server: usize, t: Ticket, bytes: &[u8], ttl: Option<Duration>) {
        // Counted from before the read was sent: the copy expires no later than the key.
        let ttl = match ttl {
            None => None,
            Some(left) => match (t.sent + left).checked_duration_since(Instant::now()) {
                Some(d) if !d.is_zero() => Some(d),
                _ => return,
            },
        };
        let generation = self.lock(t.stripe);
        if *generation != t.generation || self.epoch(server) != t.epoch {
            return;
        }
        let entry = Entry {
            bytes: bytes.into(),
            epoch: t.epoch,
            server,
            ttl,
        };
        self.entries.insert(key.to_owned(), entry);
    }

    /// Drops the copy of `key` (changed in Redis, or written by this cache).
    pub fn invalidate(&self, key: &str) {
        let mut generation = self.lock(self.stripe(key));
        *generation += 1;
        self.entries.invalidate(key);
    }

    /// Marks `server` tracked from now on, under a new epoch.
    pub fn tracking(&self, server: usize) {
        let Some(epoch) = self.epochs.load().get(server).cloned() else {
            return;
        };
        let _ = epoch.fetch_update(Ordering::AcqRel, Ordering::Acquire, |e| {
            (e % 2 == 1).then_some(e + 1)
        });
    }

    /// Stops using `server`'s copies: invalidations may have been missed.
    pub fn untracked(&self, server: usize) {
        let Some(epoch) = self.epochs.load().get(server).cloned() else {
            return;
        };
        let moved = epoch.fetch_update(Ordering::AcqRel, Ordering::Acquire, |e| {
            (e % 2 == 0).then_some(e + 1)
        });
        if moved.is_ok() {
            self.forget(server);
        }
    }

    /// Every key of `server` changed (`FLUSHALL`): its copies go, tracking stays.
    pub fn flushed(&self, server: usize) {
        if let Some(epoch) = self.epochs.load().get(server) {
            epoch.fetch_add(2, Ordering::AcqRel);
        }
        self.forget(server);
    }

    /// Frees the memory of `server`'s copies (the epoch already hides them).
    fn forget(&self, server: usize) {
        // Only fails when closures are not enabled, which moka_cache does.
        let _ = self
            .entries
            .invalidate_entries_if(move |_, e| e.server == server);
    }

    /// Adds the local counters to `stats`.
    pub fn add_stats(&self, stats: &mut Stats) {
        stats.local_hits = self.local_hits.load(Ordering::Relaxed);
        // Applies the inserts, evictions and expiries moka batches up.
        self.entries.run_pending_tasks();
        stats.local_entries = self.entries.entry_count();
    }
}

/// The moka cache for `bounds`: by entries, by bytes (key, value and an
/// estimate of moka's overhead), or by both at once, each entry weighing
/// the larger of its share of either bound.
fn moka_cache(bounds: LocalBounds) -> Result<Moka<String, Entry>> {
    let builder = Moka::builder()
        .expire_after(KeyTtl)
        .support_invalidation_closures();
    let size = |k: &String, e: &Entry| k.len() as u64 + e.bytes.len() as u64 + ENTRY_OVERHEAD;
    let clamp = |w: u64| w.clamp(1, u64::from(u32::MAX)) as u32;
    let cache = match bounds {
        LocalBounds {
            entries: Some(0), ..
        }
        | LocalBounds { bytes: Some(0), .. } => {
            return Err(Error::config(
                "local_cache and local_cache_bytes must be greater than zero",
            ));
        }
        LocalBounds {
            entries: Some(n),
            bytes: None,
        } => builder.max_capacity(n).build(),
        LocalBounds {
            entries: None,
            bytes: Some(b),
        } => builder
            .weigher(move |k, e| clamp(size(k, e)))
            .max_capacity(b)
            .build(),
        LocalBounds {
            entries: Some(n),
            bytes: Some(b),
        } => builder
            .weigher(move |k, e| {
                let share = (u128::from(size(k, e)) * u128::from(n)).div_ceil(u128::from(b));
                clamp(share.min(u128::from(u32::MAX)) as u64)
            })
            .max_capacity(n)
            .build(),
        LocalBounds {
            entries: None,
            bytes: None,
        } => return Err(Error::config("a near cache needs a bound")),
    };
    Ok(cache)
}

/// The byte-store verbs the near cache adds to a face's [`Io`].
pub(crate) trait NearIo: Io {
    fn server_of(s: &Self::Store, key: &str) -> usize;
}

impl NearIo for Blocking {
    fn server_of(s: &dyn Backend, key: &str) -> usize {
        s.server_of(key)
    }
}

impl NearIo for NonBlocking {
    fn server_of(s: &dyn AsyncBackend, key: &str) -> usize {
        s.server_of(key)
    }
}

/// A byte store with a near cache in front of it: a [`Backend`] over a
/// blocking store, an [`AsyncBackend`] over an async one.
pub(crate) struct NearStore<I: Io> {
    inner: Arc<I::Store>,
    near: Arc<Near>,
}

impl<I: NearIo> NearStore<I> {
    pub fn new(inner: Arc<I::Store>, near: Arc<Near>) -> Self {
        NearStore { inner, near }
    }

    /// One key: its local copy, or a read (keeping a copy of what it finds).
    async fn read_one(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let server = I::server_of(&self.inner, key);
        match self.near.lookup(key, server) {
            Some(bytes) => Ok(Some(bytes)),
            None => first(self.fetch(&[key], &[server]).await),
        }
    }

    /// Local copies where there are, one read of the rest.
    async fn read(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>> {
        let mut out: Vec<Option<Result<Option<Vec<u8>>>>> = Vec::with_capacity(keys.len());
        let (mut positions, mut missed, mut servers) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &key) in keys.iter().enumerate() {
            let server = I::server_of(&self.inner, key);
            let local = self.near.lookup(key, server);
            if local.is_none() {
                positions.push(i);
                missed.push(key);
                servers.push(server);
            }
            out.push(local.map(|bytes| Ok(Some(bytes))));
        }
        if !missed.is_empty() {
            let replies = self.fetch(&missed, &servers).await;
            for (i, reply) in positions.into_iter().zip(replies) {
                out[i] = Some(reply);
            }
        }
        out.into_iter().flatten().collect()
    }

    /// Reads `keys` (`servers[i]` holds `keys[i]`) in one multi-get, with
    /// their TTLs where a copy may be kept, and keeps the copies.
    async fn fetch(&self, keys: &[&str], servers: &[usize]) -> Vec<Result<Option<Vec<u8>>>> {
        // Taken before the read is sent (see the module docs).
        let tickets: Vec<Option<Ticket>> = keys
            .iter()
            .zip(servers)
            .map(|(key, &server)| self.near.ticket(key, server))
            .collect();
        let replies = if tickets.iter().any(Option::is_some) {
            I::read_many_with_ttl(&self.inner, keys).await
        } else {
            let plain = I::read_many(&self.inner, keys).await.into_vec();
            plain
                .into_iter()
                .map(|r| r.map(|v| v.map(|bytes| (bytes, None))))
                .collect()
        };
        let kept = keys.iter().zip(servers).zip(tickets);
        replies
            .into_iter()
            .zip(kept)
            .map(|(reply, ((key, &server), ticket))| {
                if let (Some(t), Ok(Some((bytes, ttl)))) = (ticket, &reply) {
                    self.near.keep(key, server, t, bytes, *ttl);
                }
                reply.map(|r| r.map(|(bytes, _)| bytes))
            })
            .collect()
    }

    /// Runs a write or delete of `keys`, then drops their copies (whatever
    /// the outcome: a failed write may still have reached Redis).
    fn written<'k, T>(&self, keys: impl IntoIterator<Item = &'k str>, outcome: T) -> T {
        for key in keys {
            self.near.invalidate(key);
        }
        outcome
    }
}

fn first<T>(mut v: Vec<T>) -> T {
    v.pop().expect("one reply per key")
}

fn item_keys(items: &[SetItem]) -> impl Iterator<Item = &str> {
    items.iter().map(|(k, _, _)| k.as_str())
}

impl Backend for NearStore<Blocking> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        now(self.read_one(key))
    }
    fn get_many(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>> {
        now(self.read(keys))
    }
    fn set(&self, key: &str, value: &[u8], expire: Duration) -> Result<bool> {
        self.written([key], self.inner.set(key, value, expire))
    }
    fn set_many(&self, items: &[SetItem]) -> Result<bool> {
        self.written(item_keys(items), self.inner.set_many(items))
    }
    fn delete(&self, key: &str) -> Result<bool> {
        self.written([key], self.inner.delete(key))
    }
    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.written(keys.iter().copied(), self.inner.delete_many(keys))
    }
    fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        self.inner.ttl(key)
    }
    fn ping(&self) -> Result<()> {
        self.inner.ping()
    }
    fn client(&self, key: &str) -> Result<redis::Client> {
        self.inner.client(key)
    }
    fn lease_many(&self, keys: &[&str], token: &str, ttl: Duration) -> Vec<Result<bool>> {
        self.inner.lease_many(keys, token, ttl)
    }
    fn set_many_leased(&self, items: &[SetItem], token: &str) -> Result<bool> {
        self.written(item_keys(items), self.inner.set_many_leased(items, token))
    }
    fn release_leases(&self, keys: &[&str], token: &str) -> Result<()> {
        self.inner.release_leases(keys, token)
    }
    fn get_many_with_ttl(&self, keys: &[&str]) -> Vec<Result<ValueTtl>> {
        self.inner.get_many_with_ttl(keys)
    }
    fn servers(&self) -> Vec<ServerLink> {
        self.inner.servers()
    }
    fn server_of(&self, key: &str) -> usize {
        self.inner.server_of(key)
    }
}

impl AsyncBackend for NearStore<NonBlocking> {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(self.read_one(key))
    }
    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Vec<Result<Option<Vec<u8>>>>> {
        Box::pin(self.read(keys))
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.written([key], self.inner.set(key, value, expire).await) })
    }
    fn set_many<'a>(&'a self, items: &'a [SetItem]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.written(item_keys(items), self.inner.set_many(items).await) })
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.written([key], self.inner.delete(key).await) })
    }
    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let outcome = self.inner.delete_many(keys).await;
            self.written(keys.iter().copied(), outcome)
        })
    }
    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Duration>>> {
        self.inner.ttl(key)
    }
    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.ping()
    }
    fn client(&self, key: &str) -> Result<redis::Client> {
        self.inner.client(key)
    }
    fn lease_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Vec<Result<bool>>> {
        self.inner.lease_many(keys, token, ttl)
    }
    fn set_many_leased<'a>(
        &'a self,
        items: &'a [SetItem],
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let outcome = self.inner.set_many_leased(items, token).await;
            self.written(item_keys(items), outcome)
        })
    }
    fn release_leases<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        self.inner.release_leases(keys, token)
    }
    fn get_many_with_ttl<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Vec<Result<ValueTtl>>> {
        self.inner.get_many_with_ttl(keys)
    }
    fn servers(&self) -> Vec<ServerLink> {
        self.inner.servers()
    }
    fn server_of(&self, key: &str) -> usize {
        self.inner.server_of(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(servers: usize) -> Near {
        let near = Near::new(
            LocalBounds {
                entries: Some(100),
                bytes: None,
            },
            servers,
            "",
        )
        .unwrap();
        for s in 0..servers {
            near.tracking(s);
        }
        near
    }

    /// Reads `key` of `server` as a miss would: ticket, reply, keep.
    fn read(near: &Near, key: &str, server: usize, value: &[u8]) {
        let t = near.ticket(key, server).expect("tracked");
        near.keep(key, server, t, value, None);
    }

    #[test]
    fn a_kept_read_is_served_until_invalidated() {
        let n = near(1);
        assert_eq!(n.lookup("k", 0), None);
        read(&n, "k", 0, b"1");
        assert_eq!(n.lookup("k", 0).as_deref(), Some(&b"1"[..]));
        n.invalidate("k");
        assert_eq!(n.lookup("k", 0), None);
    }

    #[test]
    fn an_invalidation_that_overtakes_the_reply_keeps_it_out() {
        let n = near(1);
        let t = n.ticket("k", 0).unwrap();
        n.invalidate("k"); // arrives before the read's reply
        n.keep("k", 0, t, b"old", None);
        assert_eq!(n.lookup("k", 0), None);
    }

    #[test]
    fn losing_tracking_hides_copies_and_stops_keeping() {
        let n = near(2);
        read(&n, "a", 0, b"1");
        read(&n, "b", 1, b"2");
        let during = n.ticket("c", 0).unwrap();
        n.untracked(0);
        assert_eq!(n.lookup("a", 0), None);
        assert!(n.ticket("a", 0).is_none(), "no reads kept while untracked");
        assert_eq!(
            n.lookup("b", 1).as_deref(),
            Some(&b"2"[..]),
            "the other server keeps its copies"
        );
        n.tracking(0);
        // A read sent before tracking was lost and back is not kept, nor an old copy served.
        n.keep("c", 0, during, b"3", None);
        assert_eq!(n.lookup("c", 0), None);
        assert_eq!(n.lookup("a", 0), None);
        read(&n, "a", 0, b"4");
        assert_eq!(n.lookup("a", 0).as_deref(), Some(&b"4"[..]));
    }

    #[test]
    fn a_flush_drops_the_servers_copies_and_keeps_tracking() {
        let n = near(1);
        read(&n, "a", 0, b"1");
        let before = n.ticket("b", 0).unwrap();
        n.flushed(0);
        assert_eq!(n.lookup("a", 0), None);
        n.keep("b", 0, before, b"2", None);
        assert_eq!(n.lookup("b", 0), None);
        read(&n, "a", 0, b"3");
        assert_eq!(n.lookup("a", 0).as_deref(), Some(&b"3"[..]));
    }

    #[test]
    fn a_relayout_drops_the_copies_of_servers_that_lost_slots_only() {
        let n = near(3);
        read(&n, "a", 0, b"1");
        read(&n, "c", 2, b"5");
        assert_eq!(n.lookup("a", 1), None, "the key's slot moved to server 1");
        let before = n.ticket("b", 0).unwrap();
        let elsewhere = n.ticket("d", 2).unwrap();
        // Server 0 lost slots (to server 1); server 2 kept its own.
        n.relayout([0]);
        assert_eq!(n.lookup("a", 0), None);
        n.keep("b", 0, before, b"2", None);
        assert_eq!(n.lookup("b", 0), None, "read under the old layout");
        assert_eq!(
            n.lookup("c", 2).as_deref(),
            Some(&b"5"[..]),
            "server 2 lost nothing"
        );
        n.keep("d", 2, elsewhere, b"6", None);
        assert_eq!(n.lookup("d", 2).as_deref(), Some(&b"6"[..]));
        read(&n, "a", 0, b"3");
        assert_eq!(n.lookup("a", 0).as_deref(), Some(&b"3"[..]));
        assert_eq!(n.lookup("a", 7), None, "a server not known");
        assert!(n.ticket("a", 7).is_none());
    }

    #[test]
    fn a_copy_expires_with_its_key() {
        let n = near(1);
        let t = n.ticket("k", 0).unwrap();
        n.keep("k", 0, t, b"1", Some(Duration::from_millis(50)));
        assert!(n.lookup("k", 0).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(n.lookup("k", 0), None);
        // Time the read took counts: a key with less left than that is not kept.
        let mut t = n.ticket("j", 0).unwrap();
        t.sent -= Duration::from_millis(20);
        n.keep("j", 0, t, b"1", Some(Duration::from_millis(10)));
        assert_eq!(n.lookup("j", 0), None);
    }

    #[test]
    fn bounds_hold() {
        let value = [7u8; 100];
        let fill = |bounds: LocalBounds| {
            let n = Near::new(bounds, 1, "").unwrap();
            n.tracking(0);
            for i in 0..5000 {
                read(&n, &format!("key{i:05}"), 0, &value);
            }
            n.entries.run_pending_tasks();
            let bytes: u64 = n
                .entries
                .iter()
                .map(|(k, e)| k.len() as u64 + e.bytes.len() as u64 + ENTRY_OVERHEAD)
                .sum();
            (n.entries.entry_count(), bytes)
        };
        let (count, _) = fill(LocalBounds {
            entries: Some(1000),
            bytes: None,
        });
        assert!(count <= 1000, "{count}");
        let (_, bytes) = fill(LocalBounds {
            entries: None,
            bytes: Some(100_000),
        });
        assert!(bytes <= 100_000, "{bytes}");
        let (count, bytes) = fill(LocalBounds {
            entries: Some(100),
            bytes: Some(1 << 20),
        });
        assert!(count <= 100 && bytes <= 1 << 20, "{count} {bytes}");
        let (count, bytes) = fill(LocalBounds {
            entries: Some(10_000),
            bytes: Some(100_000),
        });
        assert!(count > 0 && bytes <= 100_000, "{count} {bytes}");
        assert!(
            Near::new(
                LocalBounds {
                    entries: Some(0),
                    bytes: None
                },
                1,
                ""
            )
            .is_err()
        );
    }
}
