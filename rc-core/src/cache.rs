//! [`Cache`]: the blocking front.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::Backend;
use crate::batch::Batch;
use crate::builder::CacheBuilder;
use crate::error::Result;
use crate::front::{Front, encode_items, full_keys};
use crate::stats::Stats;

/// A blocking cache on one Redis server, a cluster, or a test store.
///
/// `Cache` is a cheap `Clone` handle (an `Arc`): clones share connections and
/// counters. It is `Send + Sync`, so a `static` (through `LazyLock`) or an
/// application state can hold it.
///
/// ```
/// # let server = rc_testing::RedisServer::start();
/// # let url = server.url();
/// use rc_core::Cache;
/// let cache = Cache::open(&url)?;
/// assert!(cache.set("key", &"value", None)?);
/// assert_eq!(cache.get::<String>("key")?.as_deref(), Some("value"));
/// assert_eq!(cache.get::<String>("foo")?, None);
/// assert!(cache.set("list", &vec![1], None)?);
/// assert_eq!(cache.get::<Vec<i32>>("list")?, Some(vec![1]));
/// # Ok::<(), rc_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub front: Front,
    pub backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.front.namespace)
            .field("serializer", &self.inner.front.codec.name())
            .field("default_expire", &self.inner.front.default_expire)
            .finish_non_exhaustive()
    }
}

static DEFAULT: ArcSwapOption<Cache> = ArcSwapOption::const_empty();

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

    pub(crate) fn from_parts(front: Front, backend: Arc<dyn Backend>) -> Cache {
        Cache {
            inner: Arc::new(Inner { front, backend }),
        }
    }

    /// The value stored under `key`, or `None`.
    ///
    /// Bytes that do not decode into `T` are an [`Error::Decode`](crate::Error::Decode).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let f = &self.inner.front;
        let key = f.full_key(key);
        let bytes = f.count(self.inner.backend.get(&key))?;
        f.decode_direct(&key, bytes)
    }

    /// Stores `value` under `key` for `expire` (`None`: the default expiry).
    /// Returns whether it was stored.
    pub fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expire: Option<Duration>,
    ) -> Result<bool> {
        let f = &self.inner.front;
        let bytes = f.encode(value)?;
        let expire = f.expire(expire)?;
        let ok = f.count(self.inner.backend.set(&f.full_key(key), &bytes, expire))?;
        f.stored(ok as usize);
        Ok(ok)
    }

    /// The values of `keys` in order, `None` where missing: one `MGET` per server.
    pub fn get_many<T, I, K>(&self, keys: I) -> Result<Vec<Option<T>>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let f = &self.inner.front;
        let keys = full_keys(f, keys);
        let replies = self.inner.backend.get_many(&keys);
        f.decode_many(&keys, replies)
    }

    /// Stores every pair with the same expiry in one pipelined round trip per
    /// server. Returns whether all were stored.
    pub fn set_many<I, K, V>(&self, items: I, expire: Option<Duration>) -> Result<bool>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Serialize,
    {
        let f = &self.inner.front;
        let items = encode_items(f, items, expire)?;
        let ok = f.count(self.inner.backend.set_many(&items))?;
        if ok {
            f.stored(items.len());
        }
        Ok(ok)
    }

    /// Deletes `key`; returns whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        let f = &self.inner.front;
        f.count(self.inner.backend.delete(&f.full_key(key)))
    }

    /// Deletes `keys` with one `DEL` per server; returns how many existed.
    pub fn delete_many<I, K>(&self, keys: I) -> Result<u64>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let f = &self.inner.front;
        f.count(self.inner.backend.delete_many(&full_keys(f, keys)))
    }

    /// Starts a batch: decorated calls recorded with `batch_<fn>(&batch, ..)`
    /// are fetched together by [`Batch::run`].
    pub fn batch<'a>(&self) -> Batch<'a> {
        Batch::new(self.clone())
    }

    /// The counters of this cache (shared by its clones).
    pub fn stats(&self) -> Stats {
        self.inner.front.counters.snapshot()
    }

    /// The namespace prepended to every key.
    pub fn namespace(&self) -> &str {
        &self.inner.front.namespace
    }

    /// Makes this cache the one `#[rc::cache]` functions without `cache = ..` use,
    /// replacing any earlier default.
    pub fn install_default(self) {
        DEFAULT.store(Some(Arc::new(self)));
    }

    /// The installed default cache, if any.
    pub fn installed_default() -> Option<Cache> {
        DEFAULT.load_full().map(|c| (*c).clone())
    }

    pub(crate) fn default_slot() -> &'static ArcSwapOption<Cache> {
        &DEFAULT
    }

    /// The decorated-call path: read, else compute and store; fails open.
    pub(crate) fn cached<T, R>(
        &self,
        key: String,
        expire: Option<Duration>,
        body: impl FnOnce() -> R,
        wrap: fn(T) -> R,
        peek: fn(&R) -> Option<&T>,
    ) -> R
    where
        T: Serialize + DeserializeOwned,
    {
        let f = &self.inner.front;
        let key = f.full_key_owned(key);
        let read = self.inner.backend.get(&key);
        let skip_store = matches!(&read, Err(e) if e.is_unavailable());
        if let Some(v) = f.decode_cached::<T>(&key, read) {
            return wrap(v);
        }
        let result = body();
        if !skip_store
            && let Some((key, bytes, expire)) =
                peek(&result).and_then(|v| f.store_item(key, v, expire))
        {
            match self.inner.backend.set(&key, &bytes, expire) {
                Ok(_) => f.stored(1),
                Err(e) => f.failed_open(&e),
            }
        }
        result
    }

    /// Deletes a decorated call's key; errors are counted and returned.
    pub(crate) fn try_invalidate_key(&self, key: String) -> Result<bool> {
        let f = &self.inner.front;
        f.count(self.inner.backend.delete(&f.full_key_owned(key)))
    }

    /// Deletes a decorated call's key; errors are counted and logged.
    pub(crate) fn invalidate_key(&self, key: String) -> bool {
        let f = &self.inner.front;
        match self.inner.backend.delete(&f.full_key_owned(key)) {
            Ok(deleted) => deleted,
            Err(e) => {
                f.failed_open(&e);
                false
            }
        }
    }
}
