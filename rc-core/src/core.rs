//! The one implementation of every cache operation, under both faces.
//!
//! [`Core`] is written once, as async code over the [`Io`] trait.
//! [`AsyncCache`](crate::AsyncCache) awaits it on its backend's futures.
//! [`Cache`](crate::Cache)'s backend does its I/O before returning, so every
//! future the core awaits there is already complete and [`now`] finishes the
//! whole operation in one poll, on the caller's thread, with no runtime.

use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::Options;
pub(crate) use crate::backend::ValueTtl;
use crate::backend::{AsyncBackend, Backend, BoxFuture, Deferred, ManyReplies, SetItem};
use crate::error::Result;
use crate::flight::{Flight, Flights, Outcome, Role};
use crate::front::Front;
use crate::metrics::{self, Read};
use crate::stale::Found;
use crate::stampede::{Body, Run, Wait};
use crate::stats::Counters;

/// The byte-store verbs the core awaits, for one face: [`Blocking`] returns
/// ready futures from a blocking [`Backend`], [`NonBlocking`] the
/// [`AsyncBackend`]'s own. (Keyed on marker types rather than implemented on
/// the `dyn` stores: rustc cannot prove a future `Send` through a projection
/// on a `dyn Trait + 'd` type.)
pub(crate) trait Io: Send + Sync + 'static {
    type Store: ?Sized + Send + Sync;
    type Fut<'a, T: Send + 'a>: Future<Output = T> + Send + 'a;
    type Join<F: Future>: Future<Output = Vec<F::Output>>;

    /// Runs `futs` to completion: concurrently on the async face, one after
    /// the other on the blocking face (whose futures are ready when polled;
    /// `join_all` could return `Pending` there, as it yields on a budget).
    fn join<F: Future>(futs: Vec<F>) -> Self::Join<F>;

    /// A multi-get's replies (see [`ManyReplies`]).
    type Replies<'a>: ManyReplies + 'a;

    fn read<'a>(s: &'a Self::Store, key: &'a str) -> Self::Fut<'a, Result<Option<Vec<u8>>>>;
    fn read_many<'a>(s: &'a Self::Store, keys: &'a [&'a str]) -> Self::Fut<'a, Self::Replies<'a>>;
    fn write<'a>(
        s: &'a Self::Store,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> Self::Fut<'a, Result<bool>>;
    fn write_many<'a>(s: &'a Self::Store, items: &'a [SetItem]) -> Self::Fut<'a, Result<bool>>;
    fn remove<'a>(s: &'a Self::Store, key: &'a str) -> Self::Fut<'a, Result<bool>>;
    fn remove_many<'a>(s: &'a Self::Store, keys: &'a [&'a str]) -> Self::Fut<'a, Result<u64>>;
    fn time_left<'a>(s: &'a Self::Store, key: &'a str) -> Self::Fut<'a, Result<Option<Duration>>>;
    fn ping_all(s: &Self::Store) -> Self::Fut<'_, Result<()>>;
    fn lease_many<'a>(
        s: &'a Self::Store,
        keys: &'a [&'a str],
        token: &'a str,
        ttl: Duration,
    ) -> Self::Fut<'a, Vec<Result<bool>>>;
    fn write_many_leased<'a>(
        s: &'a Self::Store,
        items: &'a [SetItem],
        token: &'a str,
    ) -> Self::Fut<'a, Result<bool>>;
    fn release_leases<'a>(
        s: &'a Self::Store,
        keys: &'a [&'a str],
        token: &'a str,
    ) -> Self::Fut<'a, Result<()>>;
    fn redis_client(s: &Self::Store, key: &str) -> Result<redis::Client>;
    /// Waits for the leader of a flight (see [`Flights`]), bounded.
    fn wait_flight(f: &Flight, limit: Duration) -> Self::Fut<'_, Outcome>;
    fn read_many_with_ttl<'a>(
        s: &'a Self::Store,
        keys: &'a [&'a str],
    ) -> Self::Fut<'a, Vec<Result<ValueTtl>>>;
    fn sleep(d: Duration) -> Self::Fut<'static, ()>;
    /// Whether [`spawn`](Self::spawn) can run a task now.
    fn can_spawn() -> bool;
    /// Runs `task` in the background: on a refresh thread on the blocking
    /// face, a task on the current tokio runtime on the async face.
    fn spawn(task: BoxFuture<'static, ()>);
}

/// The blocking face: a [`Backend`], whose futures are ready.
pub(crate) enum Blocking {}

/// The async face: an [`AsyncBackend`].
pub(crate) enum NonBlocking {}

impl Io for Blocking {
    type Store = dyn Backend;
    type Fut<'a, T: Send + 'a> = Ready<T>;
    type Join<F: Future> = Ready<Vec<F::Output>>;
    type Replies<'a> = Deferred<'a>;

    fn join<F: Future>(futs: Vec<F>) -> Ready<Vec<F::Output>> {
        ready(futs.into_iter().map(now).collect())
    }
    fn read<'a>(s: &'a dyn Backend, key: &'a str) -> Ready<Result<Option<Vec<u8>>>> {
        ready(s.get(key))
    }
    /// Sends nothing yet: the front reads when it decodes.
    fn read_many<'a>(s: &'a dyn Backend, keys: &'a [&'a str]) -> Ready<Deferred<'a>> {
        ready(Deferred { store: s, keys })
    }
    fn write<'a>(
        s: &'a dyn Backend,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> Ready<Result<bool>> {
        ready(s.set(key, value, expire))
    }
    fn write_many<'a>(s: &'a dyn Backend, items: &'a [SetItem]) -> Ready<Result<bool>> {
        ready(s.set_many(items))
    }
    fn remove<'a>(s: &'a dyn Backend, key: &'a str) -> Ready<Result<bool>> {
        ready(s.delete(key))
    }
    fn remove_many<'a>(s: &'a dyn Backend, keys: &'a [&'a str]) -> Ready<Result<u64>> {
        ready(s.delete_many(keys))
    }
    fn time_left<'a>(s: &'a dyn Backend, key: &'a str) -> Ready<Result<Option<Duration>>> {
        ready(s.ttl(key))
    }
    fn ping_all(s: &dyn Backend) -> Ready<Result<()>> {
        ready(s.ping())
    }
    fn lease_many<'a>(
        s: &'a dyn Backend,
        keys: &'a [&'a str],
        token: &'a str,
        ttl: Duration,
    ) -> Ready<Vec<Result<bool>>> {
        ready(s.lease_many(keys, token, ttl))
    }
    fn write_many_leased<'a>(
        s: &'a dyn Backend,
        items: &'a [SetItem],
        token: &'a str,
    ) -> Ready<Result<bool>> {
        ready(s.set_many_leased(items, token))
    }
    fn release_leases<'a>(
        s: &'a dyn Backend,
        keys: &'a [&'a str],
        token: &'a str,
    ) -> Ready<Result<()>> {
        ready(s.release_leases(keys, token))
    }
    fn redis_client(s: &dyn Backend, key: &str) -> Result<redis::Client> {
        s.client(key)
    }
    fn wait_flight(f: &Flight, limit: Duration) -> Ready<Outcome> {
        ready(f.wait_blocking(limit))
    }
    fn read_many_with_ttl<'a>(
        s: &'a dyn Backend,
        keys: &'a [&'a str],
    ) -> Ready<Vec<Result<ValueTtl>>> {
        ready(s.get_many_with_ttl(keys))
    }
    fn sleep(d: Duration) -> Ready<()> {
        std::thread::sleep(d);
        ready(())
    }
    fn can_spawn() -> bool {
        true
    }
    /// On the blocking pool of a runtime of rc's own, which keeps its
    /// threads for the next refreshes: a new thread per refresh made a
    /// stale hit that starts one 1.69× a plain hit (`swr-hit-due`).
    fn spawn(task: BoxFuture<'static, ()>) {
        match refreshers() {
            Some(rt) => drop(rt.spawn_blocking(move || now(task))),
            None => tracing::warn!("rc: no thread for a background refresh; the value stays stale"),
        }
    }
}

/// Threads for the blocking face's background refreshes, kept 10 s after
/// their last one; at most 64 at once, later ones wait their turn.
fn refreshers() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .thread_name("rc-refresh")
                .max_blocking_threads(64)
                .thread_keep_alive(Duration::from_secs(10))
                .build()
                .inspect_err(|e| tracing::warn!(error = %e, "rc: cannot start refresh threads"))
                .ok()
        })
        .as_ref()
}

impl Io for NonBlocking {
    type Store = dyn AsyncBackend;
    type Fut<'a, T: Send + 'a> = BoxFuture<'a, T>;
    type Join<F: Future> = futures_util::future::JoinAll<F>;
    type Replies<'a> = Vec<Result<Option<Vec<u8>>>>;

    fn join<F: Future>(futs: Vec<F>) -> Self::Join<F> {
        futures_util::future::join_all(futs)
    }
    fn read<'a>(s: &'a dyn AsyncBackend, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        s.get(key)
    }
    fn read_many<'a>(
        s: &'a dyn AsyncBackend,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Vec<Result<Option<Vec<u8>>>>> {
        s.get_many(keys)
    }
    fn write<'a>(
        s: &'a dyn AsyncBackend,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        s.set(key, value, expire)
    }
    fn write_many<'a>(
        s: &'a dyn AsyncBackend,
        items: &'a [SetItem],
    ) -> BoxFuture<'a, Result<bool>> {
        s.set_many(items)
    }
    fn remove<'a>(s: &'a dyn AsyncBackend, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        s.delete(key)
    }
    fn remove_many<'a>(s: &'a dyn AsyncBackend, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>> {
        s.delete_many(keys)
    }
    fn time_left<'a>(
        s: &'a dyn AsyncBackend,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Duration>>> {
        s.ttl(key)
    }
    fn ping_all(s: &dyn AsyncBackend) -> BoxFuture<'_, Result<()>> {
        s.ping()
    }
    fn lease_many<'a>(
        s: &'a dyn AsyncBackend,
        keys: &'a [&'a str],
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Vec<Result<bool>>> {
        s.lease_many(keys, token, ttl)
    }
    fn write_many_leased<'a>(
        s: &'a dyn AsyncBackend,
        items: &'a [SetItem],
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        s.set_many_leased(items, token)
    }
    fn release_leases<'a>(
        s: &'a dyn AsyncBackend,
        keys: &'a [&'a str],
        token: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        s.release_leases(keys, token)
    }
    fn redis_client(s: &dyn AsyncBackend, key: &str) -> Result<redis::Client> {
        s.client(key)
    }
    fn wait_flight(f: &Flight, limit: Duration) -> BoxFuture<'_, Outcome> {
        Box::pin(f.wait(limit))
    }
    fn read_many_with_ttl<'a>(
        s: &'a dyn AsyncBackend,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Vec<Result<ValueTtl>>> {
        s.get_many_with_ttl(keys)
    }
    fn sleep(d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
    fn can_spawn() -> bool {
        tokio::runtime::Handle::try_current().is_ok()
    }
    fn spawn(task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }
}

/// How long a miss holds its key's lease: a computation that takes longer
/// stores nothing (its lease may have gone to another caller).
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(10);

/// A token no other lease holder uses: this process's random nonce and a count.
pub(crate) fn lease_token() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NONCE: LazyLock<u64> = LazyLock::new(|| RandomState::new().hash_one(std::process::id()));
    static COUNT: AtomicU64 = AtomicU64::new(0);
    format!("{:016x}{:x}", *NONCE, COUNT.fetch_add(1, Ordering::Relaxed))
}

/// Finishes a future of the blocking face, whose awaits are all on ready
/// futures (see the module docs).
pub(crate) fn now<F: Future>(fut: F) -> F::Output {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("rc: a blocking cache operation awaited a pending future"),
    }
}

/// A cache: the front (namespace, serializer, expiry, counters) over a byte store.
pub(crate) struct Core<I: Io> {
    pub front: Front,
    pub backend: Arc<I::Store>,
    pub(crate) flights: Flights,
}

impl<I: Io> Core<I> {
    pub fn new(front: Front, backend: Arc<I::Store>) -> Self {
        Core {
            front,
            backend,
            flights: Flights::default(),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let f = &self.front;
        let key = f.full_key(key);
        let bytes = f.count(I::read(&self.backend, &key).await)?;
        f.decode_direct(&key, bytes)
    }

    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expire: Option<Duration>,
    ) -> Result<bool> {
        let f = &self.front;
        let bytes = f.encode(value)?;
        let expire = f.expire(expire)?;
        let key = f.full_key(key);
        let written = I::write(&self.backend, &key, &bytes, expire).await;
        self.flights.void([&*key]);
        let ok = f.count(written)?;
        f.stored(ok as usize);
        Ok(ok)
    }

    pub async fn get_many<T, K>(&self, keys: impl IntoIterator<Item = K>) -> Result<Vec<Option<T>>>
    where
        T: DeserializeOwned,
        K: AsRef<str>,
    {
        self.read_many(keys, |f, keys, replies| f.decode_many(keys, replies))
            .await
    }

    pub async fn get_many_results<T, K>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Vec<Result<Option<T>>>
    where
        T: DeserializeOwned,
        K: AsRef<str>,
    {
        self.read_many(keys, |f, keys, replies| {
            f.decode_many_results(keys, replies)
        })
        .await
    }

    /// Reads `keys` (namespaced) in one multi-get and hands the replies to `decode`.
    async fn read_many<K: AsRef<str>, R>(
        &self,
        keys: impl IntoIterator<Item = K>,
        decode: impl FnOnce(&Front, &[&str], I::Replies<'_>) -> R,
    ) -> R {
        let keys: Vec<K> = keys.into_iter().collect();
        let mut prefixed = Vec::new();
        let keys = self.front.full_keys(&keys, &mut prefixed);
        let replies = I::read_many(&self.backend, &keys).await;
        decode(&self.front, &keys, replies)
    }

    pub async fn set_many<K, V>(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
        expire: Option<Duration>,
    ) -> Result<bool>
    where
        K: AsRef<str>,
        V: Serialize,
    {
        let f = &self.front;
        let items = f.encode_items(items, expire)?;
        let written = I::write_many(&self.backend, &items).await;
        self.flights.void(items.iter().map(|(k, _, _)| k.as_str()));
        let ok = f.count(written)?;
        if ok {
            f.stored(items.len());
        }
        Ok(ok)
    }

    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.remove(&self.front.full_key(key)).await
    }

    pub async fn delete_many<K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        let f = &self.front;
        let keys: Vec<K> = keys.into_iter().collect();
        let mut prefixed = Vec::new();
        let keys = f.full_keys(&keys, &mut prefixed);
        let removed = I::remove_many(&self.backend, &keys).await;
        self.flights.void(keys.iter().copied());
        f.count(removed)
    }

    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let f = &self.front;
        f.count(I::time_left(&self.backend, &f.full_key(key)).await)
    }

    pub async fn ping(&self) -> Result<()> {
        self.front.count(I::ping_all(&self.backend).await)
    }

    pub fn client(&self, key: &str) -> Result<redis::Client> {
        I::redis_client(&self.backend, &self.front.full_key(key))
    }

    /// A decorated call: read; on a miss take the key's lease, run `body`
    /// and store what `peek` finds in its result, unless a write or delete
    /// of the key voided the lease meanwhile (so a slow miss never stores a
    /// value older than a completed invalidation). Concurrent misses of the
    /// key in this process share one computation ([`Flights`]); a miss whose
    /// lease another process holds waits for its value ([`Self::lease_or_wait`]).
    /// A stale value is served while one caller refreshes it
    /// (`stale_while_revalidate`), or stands in for an `Err`
    /// (`stale_if_error`). Fails open: store errors are counted and logged.
    pub async fn cached<T, R, B>(
        self: &Arc<Self>,
        key: String,
        opts: Options,
        body: B,
        wrap: fn(T) -> R,
        peek: fn(&R) -> Option<&T>,
    ) -> R
    where
        T: Serialize + DeserializeOwned,
        B: Body<I, T, R>,
    {
        let f = &self.front;
        let key = f.full_key_owned(key);
        let plan = match f.plan(&opts) {
            Ok(p) => p,
            Err(e) => {
                f.failed_open(&e);
                return body.into_future().await;
            }
        };
        let mark = self.flights.mark();
        let (found, reachable) = self.look(&key, &plan).await;
        let mut fallback = None;
        match found {
            Found::Fresh(bytes) => {
                if let Some(v) = f.decode_hit(&key, &bytes) {
                    metrics::read(plan.function, Read::Hit);
                    return wrap(v);
                }
                metrics::read(plan.function, Read::Miss);
            }
            Found::Stale { bytes, past } if plan.revalidates(past) => {
                if let Some(v) = f.decode_hit(&key, &bytes) {
                    Counters::add(&f.counters.stale_hits, 1);
                    metrics::read(plan.function, Read::Hit);
                    metrics::stale(plan.function);
                    // Already recomputed here: nothing to start.
                    if self.flights.busy(&key) {
                        return wrap(v);
                    }
                    let body = match body.detach(self, &key, plan, peek) {
                        Ok(()) => return wrap(v),
                        Err(body) => body,
                    };
                    // A body that cannot leave the caller: the one that
                    // takes the lease refreshes, the others get the value now.
                    let token = lease_token();
                    if !self.lease(&[&key], &token).await[0] {
                        return wrap(v);
                    }
                    if let Some(bytes) = self.refreshed(&key, &plan, &token).await
                        && let Some(fresh) = f.decode_hit(&key, &bytes)
                    {
                        return wrap(fresh);
                    }
                    let run = Run::new(key, plan, Some(bytes), None, Some(token));
                    return self.compute(run, body.into_future(), wrap, peek).await;
                }
            }
            Found::Stale { bytes, past } => {
                f.missed();
                metrics::read(plan.function, Read::Miss);
                fallback = plan.covers_error(past).then_some(bytes);
            }
            Found::Missing => {}
        }
        let leader = match plan.single_flight.then(|| self.flights.join(&key)) {
            Some(Role::Follower(flight)) => {
                let shared = I::wait_flight(&flight, LEASE_TTL).await;
                if let Some(v) = shared.and_then(|bytes| f.decode_hit::<T>(&key, &bytes)) {
                    return wrap(v);
                }
                None
            }
            Some(Role::Leader(leader)) => {
                // A flight of this process ended since the read: it may have
                // stored the value after the read was answered. Read again.
                if self.flights.ended_since(mark)
                    && let Ok(Found::Fresh(bytes)) =
                        self.read_planned(&key, &plan).await.map(|r| plan.sort(r))
                    && let Some(v) = f.decode_hit::<T>(&key, &bytes)
                {
                    leader.finish(Some(Arc::new(bytes)));
                    return wrap(v);
                }
                Some(leader)
            }
            None => None,
        };
        // Only the flight's leader waits for another process: with single
        // flight off, each call computes; a follower the leader left to
        // compute (it failed, panicked or was dropped) has waited already.
        let wait = match leader {
            Some(_) => plan.lease_wait,
            None => Duration::ZERO,
        };
        let token = lease_token();
        let leased = match reachable {
            true => self.lease_or_wait(&key, &plan, &token, wait).await,
            false => Wait::GaveUp,
        };
        let leased = match leased {
            Wait::Leased => Some(token),
            Wait::GaveUp => None,
            Wait::Found(bytes) => {
                if let Some(v) = f.decode_hit::<T>(&key, &bytes) {
                    if let Some(leader) = leader {
                        leader.finish(Some(Arc::new(bytes)));
                    }
                    return wrap(v);
                }
                None
            }
        };
        let run = Run::new(key, plan, fallback, leader, leased);
        self.compute(run, body.into_future(), wrap, peek).await
    }

    /// Takes the leases on `keys` for one computation; `false` where another
    /// caller holds one or the server failed (counted, logged).
    pub async fn lease(&self, keys: &[&str], token: &str) -> Vec<bool> {
        let granted = I::lease_many(&self.backend, keys, token, LEASE_TTL).await;
        granted
            .into_iter()
            .map(|g| {
                g.unwrap_or_else(|e| {
                    self.front.failed_open(&e);
                    false
                })
            })
            .collect()
    }

    /// Stores computed results under the leases `token` holds on `leased`,
    /// and gives back the leases of the keys with nothing to store. A voided
    /// lease stores nothing. Errors are counted and logged.
    pub async fn finish_leases(&self, items: Vec<SetItem>, leased: &[&str], token: &str) {
        if !items.is_empty() {
            match I::write_many_leased(&self.backend, &items, token).await {
                Ok(_) => self.front.stored(items.len()),
                Err(e) => self.front.failed_open(&e),
            }
        }
        if leased.len() > items.len() {
            let stored: std::collections::HashSet<&str> =
                items.iter().map(|(k, _, _)| k.as_str()).collect();
            let unused: Vec<&str> = leased
                .iter()
                .copied()
                .filter(|k| !stored.contains(k))
                .collect();
            if let Err(e) = I::release_leases(&self.backend, &unused, token).await {
                self.front.failed_open(&e);
            }
        }
    }

    /// Deletes a decorated call's key; errors are counted and returned.
    pub async fn try_invalidate(&self, key: String) -> Result<bool> {
        self.remove(&self.front.full_key_owned(key)).await
    }

    /// Deletes a decorated call's key; errors are counted and logged.
    pub async fn invalidate(&self, key: String) -> bool {
        let key = self.front.full_key_owned(key);
        let removed = I::remove(&self.backend, &key).await;
        self.flights.void([key.as_str()]);
        match removed {
            Ok(deleted) => deleted,
            Err(e) => {
                self.front.failed_open(&e);
                false
            }
        }
    }

    /// Deletes the full key `key` and voids its flight; errors are counted.
    async fn remove(&self, key: &str) -> Result<bool> {
        let removed = I::remove(&self.backend, key).await;
        self.flights.void([key]);
        self.front.count(removed)
    }
}

impl<I: Io> Core<I> {
    pub fn debug(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("namespace", &self.front.namespace)
            .field("serializer", &self.front.codec.name())
            .field("default_expire", &self.front.default_expire)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use crate::stampede::{Here, Movable};
    use crate::{AsyncCache, NullBackend};
    use std::sync::Arc;

    fn send<T: Send>(_: T) {}

    /// The async face's futures can move between threads (tokio::spawn, axum).
    #[test]
    fn async_futures_are_send() {
        let cache: AsyncCache = crate::CacheOptions::new()
            .build_async(Arc::new(NullBackend))
            .unwrap();
        send(cache.get::<i32>("k"));
        send(cache.set("k", &1, None));
        send(cache.get_many::<i32, _, _>(["k"]));
        send(cache.set_many([("k", 1)], None));
        send(cache.delete_many(["k"]));
        send(cache.ttl("k"));
        send(cache.ping());
        let opts = crate::__private::Options::new();
        let wrap: fn(i32) -> i32 = |v| v;
        let peek: fn(&i32) -> Option<&i32> = |v| Some(v);
        send(
            cache
                .core
                .cached("k".into(), opts, Here(async { 1 }), wrap, peek),
        );
        send((cache.core).cached("k".into(), opts, Movable(async { 1 }), wrap, peek));
        send(cache.core.invalidate("k".into()));
        send(cache.batch().run());
    }
}
