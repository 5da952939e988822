//! [`Cache`]: the blocking face of the [core](crate::core).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::Batch;
use crate::builder::CacheBuilder;
use crate::core::{Blocking, Core, now};
use crate::default::{self, DefaultGuard};
use crate::error::Result;
use crate::stats::Stats;

/// A blocking cache on one Redis server, a cluster, or a test store.
///
/// `Cache` is a cheap `Clone` handle (an `Arc`): clones share connections and
/// counters. It is `Send + Sync`, so a `static` (through `LazyLock`) or an
/// application state can hold it.
///
/// ```
/// # let server = rc::testing::RedisServer::start();
/// # let url = server.url();
/// use rc::Cache;
/// let cache = Cache::open(&url)?;
/// assert!(cache.set("key", &"value", None)?);
/// assert_eq!(cache.get::<String>("key")?.as_deref(), Some("value"));
/// assert_eq!(cache.get::<String>("foo")?, None);
/// assert!(cache.set("list", &vec![1], None)?);
/// assert_eq!(cache.get::<Vec<i32>>("list")?, Some(vec![1]));
/// # Ok::<(), rc::Error>(())
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) core: Arc<Core<Blocking>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.debug("Cache", f)
    }
}

impl Cache {
    /// A cache on `localhost:6379`, db 0. Does not connect yet.
    pub fn new() -> Result<Cache> {
        CacheBuilder::new().build()
    }

    /// A cache on the server of `url`: `redis://[user:pass@]host[:port][/db]`,
    /// `rediss://...` (TLS, with the `tls` feature) or `redis+unix:///path?db=N`.
    /// Does not connect yet.
    pub fn open(url: &str) -> Result<Cache> {
        CacheBuilder::new().url(url).build()
    }

    /// Starts configuring a cache.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    /// The value stored under `key`, or `None`.
    ///
    /// Bytes that do not decode into `T` are an [`Error::Decode`](crate::Error::Decode).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        now(self.core.get(key))
    }

    /// Stores `value` under `key` for `expire` (`None`: the default expiry).
    /// Returns whether it was stored.
    pub fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expire: Option<Duration>,
    ) -> Result<bool> {
        now(self.core.set(key, value, expire))
    }

    /// The values of `keys` in order, `None` where missing: one `MGET` per server.
    ///
    /// All or nothing: the first error in key order is returned, a failed
    /// server or bytes that do not decode (an [`Error::Decode`](crate::Error::Decode)
    /// naming the key). [`get_many_results`](Self::get_many_results) keeps the
    /// other keys' values.
    pub fn get_many<T, I, K>(&self, keys: I) -> Result<Vec<Option<T>>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        now(self.core.get_many(keys))
    }

    /// Like [`get_many`](Self::get_many), but one result per key, in order:
    /// a value that does not decode fails its key only (an
    /// [`Error::Decode`](crate::Error::Decode) naming it), and a failed server
    /// (in a cluster) only the keys it holds; the other keys still get their
    /// values. Nothing fails the call as a whole.
    ///
    /// ```
    /// # let server = rc::testing::RedisServer::start();
    /// let cache = rc::Cache::open(&server.url())?;
    /// cache.set("a", &1, None)?;
    /// cache.set("b", &"not a number", None)?;
    /// let results = cache.get_many_results::<i32, _, _>(["a", "b", "c"]);
    /// assert_eq!(results[0].as_ref().ok(), Some(&Some(1)));
    /// assert!(matches!(&results[1], Err(rc::Error::Decode { key, .. }) if key == "b"));
    /// assert_eq!(results[2].as_ref().ok(), Some(&None));
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub fn get_many_results<T, I, K>(&self, keys: I) -> Vec<Result<Option<T>>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        now(self.core.get_many_results(keys))
    }

    /// Stores every pair with the same expiry in one pipelined round trip per
    /// server. Returns whether all were stored.
    pub fn set_many<I, K, V>(&self, items: I, expire: Option<Duration>) -> Result<bool>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Serialize,
    {
        now(self.core.set_many(items, expire))
    }

    /// Deletes `key`; returns whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        now(self.core.delete(key))
    }

    /// Deletes `keys` with one `DEL` per server; returns how many existed.
    pub fn delete_many<I, K>(&self, keys: I) -> Result<u64>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        now(self.core.delete_many(keys))
    }

    /// The time `key` has left before it expires; `None` when it is missing
    /// (or, written by another client, has no expiry).
    pub fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        now(self.core.ttl(key))
    }

    /// Checks that every server of the cache answers (`PING`); the error
    /// names the first one that does not.
    pub fn ping(&self) -> Result<()> {
        now(self.core.ping())
    }

    /// The [`redis`] crate's client for the server that holds `key` (on a
    /// single server, any key), to run commands rc does not send. `key` is
    /// given without the namespace, as to [`get`](Self::get).
    ///
    /// ```
    /// # let server = rc::testing::RedisServer::start();
    /// let cache = rc::Cache::open(&server.url())?;
    /// let mut conn = cache.client("counter")?.get_connection().unwrap();
    /// let n: i64 = rc::redis::cmd("INCR").arg("counter").query(&mut conn).unwrap();
    /// assert_eq!(n, 1);
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub fn client(&self, key: &str) -> Result<redis::Client> {
        self.core.client(key)
    }

    /// Starts a batch: decorated calls recorded with `batch_<fn>(&batch, ..)`
    /// are fetched together by [`Batch::run`].
    pub fn batch<'a>(&self) -> Batch<'a> {
        Batch::new(self.core.clone())
    }

    /// The counters of this cache (shared by its clones).
    pub fn stats(&self) -> Stats {
        self.core.front.stats()
    }

    /// The namespace prepended to every key.
    pub fn namespace(&self) -> &str {
        &self.core.front.namespace
    }

    /// Makes this cache the one `#[rc::cache]` functions without `cache = ..`
    /// use, process-wide, replacing any earlier default. For applications;
    /// tests, which run side by side, use [`set_thread_default`](Self::set_thread_default).
    pub fn install_default(self) {
        default::BLOCKING.install(self);
    }

    /// The process-wide default cache, if any (a thread's own, from
    /// [`set_thread_default`](Self::set_thread_default), is not looked at).
    pub fn installed_default() -> Option<Cache> {
        default::BLOCKING.installed()
    }

    /// Makes this cache the one `#[rc::cache]` functions without `cache = ..`
    /// use on the current thread, ahead of the process-wide default, until
    /// the guard is dropped (then the thread's previous default is back).
    /// Guards nest. Other threads are not affected, threads spawned from here
    /// included.
    ///
    /// ```
    /// #[rc::cache]
    /// fn answer() -> u32 { 42 }
    ///
    /// let cache = rc::testing::FakeRedisCache::new();
    /// let _guard = cache.set_thread_default();
    /// assert_eq!(answer(), 42);
    /// assert_eq!(cache.stats().misses, 1);
    /// ```
    pub fn set_thread_default(&self) -> DefaultGuard {
        default::set_thread(self)
    }
}
