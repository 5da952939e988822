//! Runtime items used by the code `#[rc::cache]` generates. Not a public API:
//! names and signatures may change in any release.

use std::future::Future;
use std::sync::Arc;
use std::sync::Once;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::key::{KeyArg, KeyBuilder};
use crate::{AsyncBatch, AsyncCache, Batch, Cache, Promise};
pub use serde;

/// What a decorated function may return: anything serde can encode and decode.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached: it must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
    label = "the return type of an `#[rc::cache]` function",
    note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]`"
)]
pub trait Cacheable: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> Cacheable for T {}

/// Passes a key argument through; spanned on the argument so a missing `Display` points at it.
#[inline(always)]
pub fn key_arg<A: KeyArg + ?Sized>(a: &A) -> &A {
    a
}

/// Checks, at compile time, that the return type can be cached.
#[inline(always)]
pub fn assert_cacheable<T: Cacheable>() {}

/// The installed default [`Cache`], held for one call.
///
/// A full `Arc` rather than an `arc_swap` guard: the call may run a long body
/// (or await), and guards are meant to be short-lived.
pub struct DefaultCache(Option<Arc<Cache>>);

impl DefaultCache {
    /// The installed cache, if any.
    pub fn get(&self) -> Option<&Cache> {
        self.0.as_deref()
    }
}

/// The installed default [`AsyncCache`], held for one call.
pub struct DefaultAsyncCache(Option<Arc<AsyncCache>>);

impl DefaultAsyncCache {
    /// The installed cache, if any.
    pub fn get(&self) -> Option<&AsyncCache> {
        self.0.as_deref()
    }
}

/// The installed default [`Cache`].
pub fn default_cache() -> DefaultCache {
    DefaultCache(Cache::default_slot().load_full())
}

/// The installed default [`AsyncCache`].
pub fn default_async_cache() -> DefaultAsyncCache {
    DefaultAsyncCache(AsyncCache::default_slot().load_full())
}

fn warn_uncached() {
    static WARNED: Once = Once::new();
    WARNED.call_once(|| {
        const MSG: &str = "rc: a #[rc::cache] function ran uncached: no default cache is installed \
                           (call Cache::install_default or AsyncCache::install_default)";
        tracing::warn!("{MSG}");
        // Also on stderr: with no tracing subscriber this misconfiguration would be silent.
        eprintln!("{MSG}");
    });
}

fn same<T>(v: T) -> T {
    v
}

fn some<T>(v: &T) -> Option<&T> {
    Some(v)
}

fn ok<T, E>(r: &Result<T, E>) -> Option<&T> {
    r.as_ref().ok()
}

/// A decorated sync call.
pub fn call<T: Cacheable, F: FnOnce() -> T>(
    cache: Option<&Cache>,
    key: String,
    expire: Option<Duration>,
    body: F,
) -> T {
    match cache {
        Some(c) => c.cached(key, expire, body, same, some),
        None => {
            warn_uncached();
            body()
        }
    }
}

/// A decorated sync call returning `Result`: only `Ok` is cached.
pub fn call_result<T: Cacheable, E, F: FnOnce() -> Result<T, E>>(
    cache: Option<&Cache>,
    key: String,
    expire: Option<Duration>,
    body: F,
) -> Result<T, E> {
    match cache {
        Some(c) => c.cached(key, expire, body, Ok, ok),
        None => {
            warn_uncached();
            body()
        }
    }
}

/// A decorated async call.
pub async fn call_async<T: Cacheable, Fut: Future<Output = T>>(
    cache: Option<&AsyncCache>,
    key: String,
    expire: Option<Duration>,
    body: Fut,
) -> T {
    match cache {
        Some(c) => c.cached(key, expire, body, same, some).await,
        None => {
            warn_uncached();
            body.await
        }
    }
}

/// A decorated async call returning `Result`: only `Ok` is cached.
pub async fn call_async_result<T: Cacheable, E, Fut: Future<Output = Result<T, E>>>(
    cache: Option<&AsyncCache>,
    key: String,
    expire: Option<Duration>,
    body: Fut,
) -> Result<T, E> {
    match cache {
        Some(c) => c.cached(key, expire, body, Ok, ok).await,
        None => {
            warn_uncached();
            body.await
        }
    }
}

/// Deletes a decorated call's cached value; true if one was deleted.
pub fn invalidate(cache: Option<&Cache>, key: String) -> bool {
    match cache {
        Some(c) => c.invalidate_key(key),
        None => false,
    }
}

/// Async twin of [`invalidate`].
pub async fn invalidate_async(cache: Option<&AsyncCache>, key: String) -> bool {
    match cache {
        Some(c) => c.invalidate_key(key).await,
        None => false,
    }
}

/// Records a decorated call in a batch.
pub fn batch_call<'a, T: Cacheable + 'a, F: FnOnce() -> T + 'a>(
    batch: &Batch<'a>,
    key: String,
    expire: Option<Duration>,
    body: F,
) -> Promise<T> {
    batch.record(key, expire, body, same, some)
}

/// Records a decorated call returning `Result` in a batch.
pub fn batch_call_result<'a, T: Cacheable + 'a, E: 'a, F: FnOnce() -> Result<T, E> + 'a>(
    batch: &Batch<'a>,
    key: String,
    expire: Option<Duration>,
    body: F,
) -> Promise<Result<T, E>> {
    batch.record(key, expire, body, Ok, ok)
}

/// Records a decorated async call in an async batch.
pub fn batch_call_async<
    'a,
    T: Cacheable + Send + Sync + 'a,
    Fut: Future<Output = T> + Send + 'a,
>(
    batch: &AsyncBatch<'a>,
    key: String,
    expire: Option<Duration>,
    body: Fut,
) -> Promise<T> {
    batch.record(key, expire, body, same, some)
}

/// Records a decorated async call returning `Result` in an async batch.
pub fn batch_call_async_result<'a, T, E, Fut>(
    batch: &AsyncBatch<'a>,
    key: String,
    expire: Option<Duration>,
    body: Fut,
) -> Promise<Result<T, E>>
where
    T: Cacheable + Send + Sync + 'a,
    E: Send + Sync + 'a,
    Fut: Future<Output = Result<T, E>> + Send + 'a,
{
    batch.record(key, expire, body, Ok, ok)
}
