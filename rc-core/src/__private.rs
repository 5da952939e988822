//! Runtime items used by the code `#[rc::cache]` generates. Not a public API:
//! names and signatures may change in any release.

use std::future::Future;
use std::marker::PhantomData;
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
    DefaultCache(Cache::default_slot().load())
}

/// The installed default [`AsyncCache`].
pub fn default_async_cache() -> DefaultAsyncCache {
    DefaultAsyncCache(AsyncCache::default_slot().load())
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

/// Per-function options of a decorated function, built by the macro as a
/// `const` chain so new options never change the entry points' signatures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub(crate) expire: Option<Duration>,
}

impl Options {
    /// No options: the cache's defaults.
    pub const fn new() -> Self {
        Options { expire: None }
    }

    /// `expire = secs`.
    pub const fn expire(mut self, secs: u64) -> Self {
        self.expire = Some(Duration::from_secs(secs));
        self
    }
}

/// Names a decorated function's return type `R` so the compiler, not the
/// macro, decides whether it is a `Result` (aliases and `io::Result` included):
/// `(&Returns::<R>::new()).kind()` resolves to [`ReturnsResult::kind`] when
/// `R` is a `Result` (the impl on the bare type wins method lookup), else to
/// [`ReturnsValue::kind`] (the impl on the reference).
pub struct Returns<R>(PhantomData<fn() -> R>);

impl<R> Returns<R> {
    /// The marker.
    pub const fn new() -> Self {
        Returns(PhantomData)
    }
}

/// Picked for a return type that is a `Result`: only `Ok` is cached.
pub trait ReturnsResult {
    /// [`Fallible`].
    type Kind;
    /// The entry points for this return type.
    fn kind(&self) -> Self::Kind;
}

impl<T, E> ReturnsResult for Returns<Result<T, E>> {
    type Kind = Fallible<T, E>;
    fn kind(&self) -> Fallible<T, E> {
        Fallible(PhantomData)
    }
}

/// Picked for any other return type: the whole value is cached.
pub trait ReturnsValue {
    /// [`Plain`].
    type Kind;
    /// The entry points for this return type.
    fn kind(&self) -> Self::Kind;
}

impl<R> ReturnsValue for &Returns<R> {
    type Kind = Plain<R>;
    fn kind(&self) -> Plain<R> {
        Plain(PhantomData)
    }
}

/// Entry points of a function whose whole result `T` is cached.
pub struct Plain<T>(PhantomData<fn() -> T>);

/// Entry points of a function returning `Result<T, E>`: only `Ok(T)` is cached.
pub struct Fallible<T, E>(PhantomData<fn() -> Result<T, E>>);

impl<T: Cacheable> Plain<T> {
    /// A decorated sync call.
    pub fn call(
        self,
        cache: Option<&Cache>,
        key: String,
        opts: Options,
        body: impl FnOnce() -> T,
    ) -> T {
        call(cache, key, opts.expire, body)
    }

    /// A decorated async call.
    pub async fn call_async(
        self,
        cache: Option<&AsyncCache>,
        key: String,
        opts: Options,
        body: impl Future<Output = T>,
    ) -> T {
        call_async(cache, key, opts.expire, body).await
    }

    /// Records a decorated call in a batch.
    pub fn batch<'a>(
        self,
        batch: &Batch<'a>,
        key: String,
        opts: Options,
        body: impl FnOnce() -> T + 'a,
    ) -> Promise<T>
    where
        T: 'a,
    {
        batch_call(batch, key, opts.expire, body)
    }

    /// Records a decorated async call in an async batch.
    pub fn batch_async<'a>(
        self,
        batch: &AsyncBatch<'a>,
        key: String,
        opts: Options,
        body: impl Future<Output = T> + Send + 'a,
    ) -> Promise<T>
    where
        T: Send + Sync + 'a,
    {
        batch_call_async(batch, key, opts.expire, body)
    }
}

impl<T: Cacheable, E> Fallible<T, E> {
    /// A decorated sync call.
    pub fn call(
        self,
        cache: Option<&Cache>,
        key: String,
        opts: Options,
        body: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        call_result(cache, key, opts.expire, body)
    }

    /// A decorated async call.
    pub async fn call_async(
        self,
        cache: Option<&AsyncCache>,
        key: String,
        opts: Options,
        body: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        call_async_result(cache, key, opts.expire, body).await
    }

    /// Records a decorated call in a batch.
    pub fn batch<'a>(
        self,
        batch: &Batch<'a>,
        key: String,
        opts: Options,
        body: impl FnOnce() -> Result<T, E> + 'a,
    ) -> Promise<Result<T, E>>
    where
        T: 'a,
        E: 'a,
    {
        batch_call_result(batch, key, opts.expire, body)
    }

    /// Records a decorated async call in an async batch.
    pub fn batch_async<'a>(
        self,
        batch: &AsyncBatch<'a>,
        key: String,
        opts: Options,
        body: impl Future<Output = Result<T, E>> + Send + 'a,
    ) -> Promise<Result<T, E>>
    where
        T: Send + Sync + 'a,
        E: Send + Sync + 'a,
    {
        batch_call_async_result(batch, key, opts.expire, body)
    }
}

/// Deletes a decorated call's cached value: `Ok(true)` if one was deleted,
/// `Ok(false)` if none was cached, `Err` if the cache failed or none is installed.
pub fn try_invalidate(cache: Option<&Cache>, key: String) -> crate::Result<bool> {
    match cache {
        Some(c) => c.try_invalidate_key(key),
        None => Err(no_default()),
    }
}

/// Async twin of [`try_invalidate`].
pub async fn try_invalidate_async(cache: Option<&AsyncCache>, key: String) -> crate::Result<bool> {
    match cache {
        Some(c) => c.try_invalidate_key(key).await,
        None => Err(no_default()),
    }
}

fn no_default() -> crate::Error {
    crate::Error::config(
        "no default cache is installed (call Cache::install_default or AsyncCache::install_default)",
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    type Fallible2<T> = Result<T, String>;

    #[test]
    fn the_resolved_type_picks_the_kind() {
        let _: Fallible<i32, String> = (&Returns::<Fallible2<i32>>::new()).kind();
        let _: Fallible<u8, std::io::Error> = (&Returns::<std::io::Result<u8>>::new()).kind();
        let _: Plain<Option<i32>> = (&Returns::<Option<i32>>::new()).kind();
        fn generic<R>() -> Plain<R> {
            (&Returns::<R>::new()).kind()
        }
        let _: Plain<Result<i32, String>> = generic::<Result<i32, String>>();
    }
}
