//! [`AsyncCache`]: the async twin of [`Cache`](crate::Cache).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::AsyncBackend;
use crate::batch::AsyncBatch;
use crate::builder::CacheBuilder;
use crate::error::Result;
use crate::front::{Front, encode_items, full_keys};
use crate::stats::Stats;

/// An async cache (on tokio) with the same verbs as [`Cache`](crate::Cache).
///
/// A cheap `Clone` handle; all clones share one multiplexed connection per
/// server and the counters.
///
/// ```
/// # let server = rc_testing::RedisServer::start();
/// # let url = server.url();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = rc_core::AsyncCache::open(&url)?;
/// cache.set("key", &"value", None).await?;
/// assert_eq!(cache.get::<String>("key").await?.as_deref(), Some("value"));
/// # Ok::<(), rc_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct AsyncCache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub front: Front,
    pub backend: Arc<dyn AsyncBackend>,
}

impl std::fmt::Debug for AsyncCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncCache")
            .field("namespace", &self.inner.front.namespace)
            .field("serializer", &self.inner.front.codec.name())
            .field("default_expire", &self.inner.front.default_expire)
            .finish_non_exhaustive()
    }
}

static DEFAULT: ArcSwapOption<AsyncCache> = ArcSwapOption::const_empty();

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

    pub(crate) fn from_parts(front: Front, backend: Arc<dyn AsyncBackend>) -> AsyncCache {
        AsyncCache {
            inner: Arc::new(Inner { front, backend }),
        }
    }

    /// The value stored under `key`, or `None`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let f = &self.inner.front;
        let key = f.full_key(key);
        let bytes = f.count(self.inner.backend.get(&key).await)?;
        f.decode_direct(&key, bytes)
    }

    /// Stores `value` under `key` for `expire` (`None`: the default expiry).
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expire: Option<Duration>,
    ) -> Result<bool> {
        let f = &self.inner.front;
        let bytes = f.encode(value)?;
        let expire = f.expire(expire)?;
        let ok = f.count(
            self.inner
                .backend
                .set(&f.full_key(key), &bytes, expire)
                .await,
        )?;
        f.stored(ok as usize);
        Ok(ok)
    }

    /// The values of `keys` in order, `None` where missing.
    pub async fn get_many<T, I, K>(&self, keys: I) -> Result<Vec<Option<T>>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let f = &self.inner.front;
        let keys = full_keys(f, keys);
        let replies = self.inner.backend.get_many(&keys).await;
        f.decode_many(&keys, replies)
    }

    /// Stores every pair with the same expiry; returns whether all were stored.
    pub async fn set_many<I, K, V>(&self, items: I, expire: Option<Duration>) -> Result<bool>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Serialize,
    {
        let f = &self.inner.front;
        let items = encode_items(f, items, expire)?;
        let ok = f.count(self.inner.backend.set_many(&items).await)?;
        if ok {
            f.stored(items.len());
        }
        Ok(ok)
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let f = &self.inner.front;
        f.count(self.inner.backend.delete(&f.full_key(key)).await)
    }

    /// Deletes `keys`; returns how many existed.
    pub async fn delete_many<I, K>(&self, keys: I) -> Result<u64>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let f = &self.inner.front;
        f.count(self.inner.backend.delete_many(&full_keys(f, keys)).await)
    }

    /// Starts a batch of decorated async calls, run by [`AsyncBatch::run`].
    pub fn batch<'a>(&self) -> AsyncBatch<'a> {
        AsyncBatch::new(self.clone())
    }

    /// The counters of this cache (shared by its clones).
    pub fn stats(&self) -> Stats {
        self.inner.front.counters.snapshot()
    }

    /// The namespace prepended to every key.
    pub fn namespace(&self) -> &str {
        &self.inner.front.namespace
    }

    /// Makes this cache the one async `#[rc::cache]` functions without
    /// `cache = ..` use, replacing any earlier default.
    pub fn install_default(self) {
        DEFAULT.store(Some(Arc::new(self)));
    }

    /// The installed default async cache, if any.
    pub fn installed_default() -> Option<AsyncCache> {
        DEFAULT.load_full().map(|c| (*c).clone())
    }

    pub(crate) fn default_slot() -> &'static ArcSwapOption<AsyncCache> {
        &DEFAULT
    }

    /// The decorated-call path: read, else compute and store; fails open.
    pub(crate) async fn cached<T, R>(
        &self,
        key: String,
        expire: Option<Duration>,
        body: impl Future<Output = R>,
        wrap: fn(T) -> R,
        peek: fn(&R) -> Option<&T>,
    ) -> R
    where
        T: Serialize + DeserializeOwned,
    {
        let f = &self.inner.front;
        let key = f.full_key_owned(key);
        let read = self.inner.backend.get(&key).await;
        let skip_store = matches!(&read, Err(e) if e.is_unavailable());
        if let Some(v) = f.decode_cached::<T>(&key, read) {
            return wrap(v);
        }
        let result = body.await;
        if !skip_store
            && let Some((key, bytes, expire)) =
                peek(&result).and_then(|v| f.store_item(key, v, expire))
        {
            match self.inner.backend.set(&key, &bytes, expire).await {
                Ok(_) => f.stored(1),
                Err(e) => f.failed_open(&e),
            }
        }
        result
    }

    /// Deletes a decorated call's key; errors are counted and returned.
    pub(crate) async fn try_invalidate_key(&self, key: String) -> Result<bool> {
        let f = &self.inner.front;
        f.count(self.inner.backend.delete(&f.full_key_owned(key)).await)
    }

    /// Deletes a decorated call's key; errors are counted and logged.
    pub(crate) async fn invalidate_key(&self, key: String) -> bool {
        let f = &self.inner.front;
        match self.inner.backend.delete(&f.full_key_owned(key)).await {
            Ok(deleted) => deleted,
            Err(e) => {
                f.failed_open(&e);
                false
            }
        }
    }
}
