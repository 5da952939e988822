//! Runtime items used by the code `#[rc::cache]` generates. Not a public API:
//! names and signatures may change in any release.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::Once;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::now;
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

// Only the macro builds one, with `new` (a `const fn`, unlike `Default`).
#[allow(clippy::new_without_default)]
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

/// What an entry-point kind stores: `T` for [`Plain<T>`] and [`Fallible<T, E>`].
pub trait Kind {
    /// The cached type.
    type Cached;
}

impl<T> Kind for Plain<T> {
    type Cached = T;
}

impl<T, E> Kind for Fallible<T, E> {
    type Cached = T;
}

/// Passes `kind` through, checking at compile time that what it stores can
/// be cached: the compiler finds that type (the `Ok` type of a `Result`,
/// aliases included), and the macro spans this call on the return type,
/// where the error then points.
#[inline(always)]
pub fn assert_cacheable<K: Kind>(kind: K) -> K
where
    K::Cached: Cacheable,
{
    kind
}

/// Entry points of a function whose whole result `T` is cached.
pub struct Plain<T>(PhantomData<fn() -> T>);

/// Entry points of a function returning `Result<T, E>`: only `Ok(T)` is cached.
pub struct Fallible<T, E>(PhantomData<fn() -> Result<T, E>>);

// `T: Cacheable` is on each method, not on the impl: with an unmet bound on
// the impl the method is "not found" (E0599), an error of its own, while an
// unmet bound on the method is the same error, at the same span (the macro
// sees to it), as `assert_cacheable`'s, which rustc shows once.
impl<T> Plain<T> {
    /// A decorated sync call.
    pub fn call(
        self,
        cache: Option<&Cache>,
        key: String,
        opts: Options,
        body: impl FnOnce() -> T,
    ) -> T
    where
        T: Cacheable,
    {
        match cache {
            Some(c) => now(c
                .core
                .cached(key, opts.expire, async { body() }, |v| v, |v| Some(v))),
            None => {
                warn_uncached();
                body()
            }
        }
    }

    /// A decorated async call.
    pub async fn call_async(
        self,
        cache: Option<&AsyncCache>,
        key: String,
        opts: Options,
        body: impl Future<Output = T>,
    ) -> T
    where
        T: Cacheable,
    {
        match cache {
            Some(c) => {
                c.core
                    .cached(key, opts.expire, body, |v| v, |v| Some(v))
                    .await
            }
            None => {
                warn_uncached();
                body.await
            }
        }
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
        T: Cacheable + 'a,
    {
        batch.record(key, opts.expire, body, |v| v, |v| Some(v))
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
        T: Cacheable + Send + Sync + 'a,
    {
        batch.record(key, opts.expire, body, |v| v, |v| Some(v))
    }
}

impl<T, E> Fallible<T, E> {
    /// A decorated sync call.
    pub fn call(
        self,
        cache: Option<&Cache>,
        key: String,
        opts: Options,
        body: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E>
    where
        T: Cacheable,
    {
        match cache {
            Some(c) => now(c
                .core
                .cached(key, opts.expire, async { body() }, Ok, |r| r.as_ref().ok())),
            None => {
                warn_uncached();
                body()
            }
        }
    }

    /// A decorated async call.
    pub async fn call_async(
        self,
        cache: Option<&AsyncCache>,
        key: String,
        opts: Options,
        body: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E>
    where
        T: Cacheable,
    {
        match cache {
            Some(c) => {
                c.core
                    .cached(key, opts.expire, body, Ok, |r| r.as_ref().ok())
                    .await
            }
            None => {
                warn_uncached();
                body.await
            }
        }
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
        T: Cacheable + 'a,
        E: 'a,
    {
        batch.record(key, opts.expire, body, Ok, |r| r.as_ref().ok())
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
        T: Cacheable + Send + Sync + 'a,
        E: Send + Sync + 'a,
    {
        batch.record(key, opts.expire, body, Ok, |r| r.as_ref().ok())
    }
}

/// Deletes a decorated call's cached value: `Ok(true)` if one was deleted,
/// `Ok(false)` if none was cached, `Err` if the cache failed or none is installed.
pub fn try_invalidate(cache: Option<&Cache>, key: String) -> crate::Result<bool> {
    match cache {
        Some(c) => now(c.core.try_invalidate(key)),
        None => Err(no_default()),
    }
}

/// Async twin of [`try_invalidate`].
pub async fn try_invalidate_async(cache: Option<&AsyncCache>, key: String) -> crate::Result<bool> {
    match cache {
        Some(c) => c.core.try_invalidate(key).await,
        None => Err(no_default()),
    }
}

fn no_default() -> crate::Error {
    crate::Error::config(
        "no default cache is installed (call Cache::install_default or AsyncCache::install_default)",
    )
}

/// Deletes a decorated call's cached value; true if one was deleted.
pub fn invalidate(cache: Option<&Cache>, key: String) -> bool {
    match cache {
        Some(c) => now(c.core.invalidate(key)),
        None => false,
    }
}

/// Async twin of [`invalidate`].
pub async fn invalidate_async(cache: Option<&AsyncCache>, key: String) -> bool {
    match cache {
        Some(c) => c.core.invalidate(key).await,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fallible2<T> = Result<T, String>;

    // The borrow is what picks the kind; clippy only sees it is not needed
    // for method lookup on `Result`s.
    #[allow(clippy::needless_borrow)]
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
