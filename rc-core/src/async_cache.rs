//! [`AsyncCache`]: the async face of the [core](crate::core).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::AsyncBatch;
use crate::builder::CacheBuilder;
use crate::core::{Core, NonBlocking};
use crate::default;
use crate::error::Result;
use crate::stats::Stats;

/// An async cache (on tokio) with the same verbs as [`Cache`](crate::Cache).
///
/// A cheap `Clone` handle; all clones share one multiplexed connection per
/// server and the counters.
///
/// ```
/// # let server = rc::testing::RedisServer::start();
/// # let url = server.url();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = rc::AsyncCache::open(&url)?;
/// cache.set("key", &"value", None).await?;
/// assert_eq!(cache.get::<String>("key").await?.as_deref(), Some("value"));
/// # Ok::<(), rc::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct AsyncCache {
    pub(crate) core: Arc<Core<NonBlocking>>,
}

impl std::fmt::Debug for AsyncCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.debug("AsyncCache", f)
    }
}

impl AsyncCache {
    /// A cache on `localhost:6379`, db 0. Does not connect yet.
    pub fn new() -> Result<AsyncCache> {
        CacheBuilder::new().build_async()
    }

    /// A cache on the server of `url` (see [`Cache::open`](crate::Cache::open)).
    pub fn open(url: &str) -> Result<AsyncCache> {
        CacheBuilder::new().url(url).build_async()
    }

    /// Starts configuring a cache; finish with [`CacheBuilder::build_async`].
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    /// The value stored under `key`, or `None`.
    ///
    /// Bytes that do not decode into `T` are an [`Error::Decode`](crate::Error::Decode).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.core.get(key).await
    }

    /// Stores `value` under `key` for `expire` (`None`: the default expiry).
    /// Returns whether it was stored.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expire: Option<Duration>,
    ) -> Result<bool> {
        self.core.set(key, value, expire).await
    }

    /// The values of `keys` in order, `None` where missing: one `MGET` per server.
    ///
    /// All or nothing, like [`Cache::get_many`](crate::Cache::get_many); see
    /// [`get_many_results`](Self::get_many_results) for one result per key.
    pub async fn get_many<T, I, K>(&self, keys: I) -> Result<Vec<Option<T>>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        self.core.get_many(keys).await
    }

    /// One result per key, in order, like
    /// [`Cache::get_many_results`](crate::Cache::get_many_results): a value
    /// that does not decode, or a failed server, fails only its keys.
    ///
    /// ```
    /// # let server = rc::testing::RedisServer::start();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = rc::AsyncCache::open(&server.url())?;
    /// cache.set("a", &1, None).await?;
    /// cache.set("b", &"not a number", None).await?;
    /// let results = cache.get_many_results::<i32, _, _>(["a", "b", "c"]).await;
    /// assert_eq!(results[0].as_ref().ok(), Some(&Some(1)));
    /// assert!(matches!(&results[1], Err(rc::Error::Decode { key, .. }) if key == "b"));
    /// assert_eq!(results[2].as_ref().ok(), Some(&None));
    /// # Ok::<(), rc::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn get_many_results<T, I, K>(&self, keys: I) -> Vec<Result<Option<T>>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        self.core.get_many_results(keys).await
    }

    /// Stores every pair with the same expiry in one pipelined round trip per
    /// server. Returns whether all were stored.
    pub async fn set_many<I, K, V>(&self, items: I, expire: Option<Duration>) -> Result<bool>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Serialize,
    {
        self.core.set_many(items, expire).await
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.core.delete(key).await
    }

    /// Deletes `keys` with one `DEL` per server; returns how many existed.
    pub async fn delete_many<I, K>(&self, keys: I) -> Result<u64>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        self.core.delete_many(keys).await
    }

    /// The time `key` has left before it expires; `None` when it is missing
    /// (or, written by another client, has no expiry).
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        self.core.ttl(key).await
    }

    /// Checks that every server of the cache answers (`PING`); the error
    /// names the first one that does not.
    pub async fn ping(&self) -> Result<()> {
        self.core.ping().await
    }

    /// The [`redis`] crate's client for the server that holds `key` (see
    /// [`Cache::client`](crate::Cache::client)).
    pub fn client(&self, key: &str) -> Result<redis::Client> {
        self.core.client(key)
    }

    /// Starts a batch of decorated async calls, run by [`AsyncBatch::run`].
    pub fn batch<'a>(&self) -> AsyncBatch<'a> {
        AsyncBatch::new(self.core.clone())
    }

    /// The counters of this cache (shared by its clones).
    pub fn stats(&self) -> Stats {
        self.core.front.stats()
    }

    /// The namespace prepended to every key.
    pub fn namespace(&self) -> &str {
        &self.core.front.namespace
    }

    /// Makes this cache the one async `#[rc::cache]` functions without
    /// `cache = ..` use, process-wide, replacing any earlier default. For
    /// applications; tests, which run side by side, use
    /// [`scope_default`](Self::scope_default).
    pub fn install_default(self) {
        default::ASYNC.install(self);
    }

    /// The process-wide default cache, if any (a task's own, from
    /// [`scope_default`](Self::scope_default), is not looked at).
    pub fn installed_default() -> Option<AsyncCache> {
        default::ASYNC.installed()
    }

    /// Runs `fut` with this cache as the one async `#[rc::cache]` functions
    /// without `cache = ..` use, ahead of the process-wide default. The scope
    /// is the tokio task that awaits the returned future, on whichever worker
    /// thread it runs; scopes nest. Tasks spawned from inside are not in it:
    /// wrap their futures too.
    ///
    /// ```
    /// #[rc::cache]
    /// async fn answer() -> u32 { 42 }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = rc::testing::FakeRedisCache::new_async();
    /// cache.scope_default(async {
    ///     assert_eq!(answer().await, 42);
    /// }).await;
    /// assert_eq!(cache.stats().misses, 1);
    /// # });
    /// ```
    pub fn scope_default<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> + use<F> {
        default::scope_task(self, fut)
    }
}
