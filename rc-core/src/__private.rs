//! Runtime items used by the code `#[rc::cache]` generates. Not a public API:
//! names and signatures may change in any release.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::Once;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::{Core, Io, now};
use crate::default;
pub use crate::key::{KeyArg, KeyBuilder};
pub use crate::python_arg::PythonArg;
use crate::stampede::{Body, Here, Movable};
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

/// Passes a `python_args` key argument through; spanned on the argument so a
/// type without a Python form is reported there.
#[inline(always)]
pub fn python_arg<A: PythonArg + ?Sized>(a: &A) -> &A {
    a
}

/// The default cache of one face in effect for a call (a scoped one, else
/// the process-wide one), held for it.
///
/// A full `Arc` rather than an `arc_swap` guard: the call may run a long body
/// (or await), and guards are meant to be short-lived.
pub struct DefaultCache<C>(Option<Arc<C>>);

impl<C> DefaultCache<C> {
    /// The cache, if any.
    pub fn get(&self) -> Option<&C> {
        self.0.as_deref()
    }
}

/// The default [`Cache`] here: the thread's, else the process-wide one.
pub fn default_cache() -> DefaultCache<Cache> {
    DefaultCache(default::BLOCKING.current())
}

/// The default [`AsyncCache`] here: the task's, else the process-wide one.
pub fn default_async_cache() -> DefaultCache<AsyncCache> {
    DefaultCache(default::ASYNC.current())
}

/// How to give `#[rc::cache]` functions a default cache.
const NO_DEFAULT_HELP: &str = "install one with Cache::install_default or \
    AsyncCache::install_default, or, in tests, scope one with Cache::set_thread_default \
    or AsyncCache::scope_default";

fn warn_uncached() {
    static WARNED: Once = Once::new();
    WARNED.call_once(|| {
        const MSG: &str = "rc: a #[rc::cache] function ran uncached: it has no `cache = ..` \
                           and there is no default cache";
        tracing::warn!("{MSG} ({NO_DEFAULT_HELP})");
        // Also on stderr: with no tracing subscriber this misconfiguration would be silent.
        eprintln!("{MSG} ({NO_DEFAULT_HELP})");
    });
}

/// Per-function options of a decorated function, built by the macro as a
/// `const` chain so new options never change the entry points' signatures.
/// What is not given takes the cache's default.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub(crate) expire: Option<Duration>,
    pub(crate) single_flight: Option<bool>,
    pub(crate) stale_while_revalidate: Option<Duration>,
    pub(crate) stale_if_error: Option<Duration>,
    pub(crate) expire_jitter: Option<f64>,
    /// The function's path, the `function` label of its metrics.
    pub(crate) function: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// No options: the cache's defaults.
    pub const fn new() -> Self {
        Options {
            expire: None,
            single_flight: None,
            stale_while_revalidate: None,
            stale_if_error: None,
            expire_jitter: None,
            function: "",
        }
    }

    /// The function's path (`module_path!()::name`), for its metrics.
    pub const fn function(mut self, path: &'static str) -> Self {
        self.function = path;
        self
    }

    /// `single_flight = false`: concurrent misses of one key each compute.
    pub const fn single_flight(mut self, on: bool) -> Self {
        self.single_flight = Some(on);
        self
    }

    /// `expire = secs`.
    pub const fn expire(mut self, secs: u64) -> Self {
        self.expire = Some(Duration::from_secs(secs));
        self
    }

    /// `stale_while_revalidate = secs` (0: off).
    pub const fn stale_while_revalidate(mut self, secs: u64) -> Self {
        self.stale_while_revalidate = Some(Duration::from_secs(secs));
        self
    }

    /// `stale_if_error = secs` (0: off).
    pub const fn stale_if_error(mut self, secs: u64) -> Self {
        self.stale_if_error = Some(Duration::from_secs(secs));
        self
    }

    /// `expire_jitter = fraction` (checked when the call runs).
    pub const fn expire_jitter(mut self, fraction: f64) -> Self {
        self.expire_jitter = Some(fraction);
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
    /// [`Entry`] of [`Fallible`].
    type Kind;
    /// The entry points for this return type.
    fn kind(&self) -> Self::Kind;
}

impl<T, E> ReturnsResult for Returns<Result<T, E>> {
    type Kind = Entry<Fallible<T, E>>;
    fn kind(&self) -> Entry<Fallible<T, E>> {
        Entry(PhantomData)
    }
}

/// Picked for any other return type: the whole value is cached.
pub trait ReturnsValue {
    /// [`Entry`] of [`Plain`].
    type Kind;
    /// The entry points for this return type.
    fn kind(&self) -> Self::Kind;
}

impl<R> ReturnsValue for &Returns<R> {
    type Kind = Entry<Plain<R>>;
    fn kind(&self) -> Entry<Plain<R>> {
        Entry(PhantomData)
    }
}

/// How a decorated function's return value relates to what is cached:
/// [`Plain<T>`] caches the whole `T`, [`Fallible<T, E>`] only `Ok(T)`.
pub trait Kind {
    /// The cached type.
    type Cached;
    /// The function's return type.
    type Ret;
    /// The return value for a cached value.
    fn wrap(cached: Self::Cached) -> Self::Ret;
    /// What of a return value is cached, if anything.
    fn peek(ret: &Self::Ret) -> Option<&Self::Cached>;
}

/// A function whose whole result `T` is cached.
pub struct Plain<T>(PhantomData<fn() -> T>);

/// A function returning `Result<T, E>`: only `Ok(T)` is cached.
pub struct Fallible<T, E>(PhantomData<fn() -> Result<T, E>>);

impl<T> Kind for Plain<T> {
    type Cached = T;
    type Ret = T;
    fn wrap(cached: T) -> T {
        cached
    }
    fn peek(ret: &T) -> Option<&T> {
        Some(ret)
    }
}

impl<T, E> Kind for Fallible<T, E> {
    type Cached = T;
    type Ret = Result<T, E>;
    fn wrap(cached: T) -> Result<T, E> {
        Ok(cached)
    }
    fn peek(ret: &Result<T, E>) -> Option<&T> {
        ret.as_ref().ok()
    }
}

/// Passes `entry` through, checking at compile time that what it stores can
/// be cached: the compiler finds that type (the `Ok` type of a `Result`,
/// aliases included), and the macro spans this call on the return type,
/// where the error then points.
#[inline(always)]
pub fn assert_cacheable<K: Kind>(entry: Entry<K>) -> Entry<K>
where
    K::Cached: Cacheable,
{
    entry
}

/// The entry points of a decorated function of kind `K`.
pub struct Entry<K>(PhantomData<fn() -> K>);

// `K::Cached: Cacheable` is on each method, not on the impl: with an unmet
// bound on the impl the method is "not found" (E0599), an error of its own,
// while an unmet bound on the method is the same error, at the same span (the
// macro sees to it), as `assert_cacheable`'s, which rustc shows once.
impl<K: Kind> Entry<K> {
    /// A decorated sync call.
    pub fn call(
        self,
        cache: Option<&Cache>,
        key: String,
        opts: Options,
        body: impl FnOnce() -> K::Ret,
    ) -> K::Ret
    where
        K::Cached: Cacheable,
    {
        let body = Here(async { body() });
        now(Self::cached(cache.map(|c| &c.core), key, opts, body))
    }

    /// A decorated sync call whose body owns its arguments, so that a
    /// `stale_while_revalidate` refresh can run it on another thread.
    pub fn call_refreshing(
        self,
        cache: Option<&Cache>,
        key: String,
        opts: Options,
        body: impl FnOnce() -> K::Ret + Send + 'static,
    ) -> K::Ret
    where
        K::Cached: Cacheable + 'static,
        K::Ret: 'static,
    {
        let body = Movable(async { body() });
        now(Self::cached(cache.map(|c| &c.core), key, opts, body))
    }

    /// A decorated async call.
    pub async fn call_async(
        self,
        cache: Option<&AsyncCache>,
        key: String,
        opts: Options,
        body: impl Future<Output = K::Ret>,
    ) -> K::Ret
    where
        K::Cached: Cacheable,
    {
        Self::cached(cache.map(|c| &c.core), key, opts, Here(body)).await
    }

    /// A decorated async call whose body owns its arguments, so that a
    /// `stale_while_revalidate` refresh can run it as a task of its own.
    pub async fn call_async_refreshing(
        self,
        cache: Option<&AsyncCache>,
        key: String,
        opts: Options,
        body: impl Future<Output = K::Ret> + Send + 'static,
    ) -> K::Ret
    where
        K::Cached: Cacheable + 'static,
        K::Ret: 'static,
    {
        Self::cached(cache.map(|c| &c.core), key, opts, Movable(body)).await
    }

    /// Both faces' calls: through `core`, or, without a cache, `body` alone.
    async fn cached<I: Io>(
        core: Option<&Arc<Core<I>>>,
        key: String,
        opts: Options,
        body: impl Body<I, K::Cached, K::Ret>,
    ) -> K::Ret
    where
        K::Cached: Cacheable,
    {
        match core {
            Some(c) => c.cached(key, opts, body, K::wrap, K::peek).await,
            None => {
                warn_uncached();
                body.into_future().await
            }
        }
    }

    /// Records a decorated call in a batch.
    pub fn batch<'a>(
        self,
        batch: &Batch<'a>,
        key: String,
        opts: Options,
        body: impl FnOnce() -> K::Ret + 'a,
    ) -> Promise<K::Ret>
    where
        K::Cached: Cacheable + 'a,
        K::Ret: 'a,
    {
        batch.record(key, opts, body, K::wrap, K::peek)
    }

    /// Records a decorated async call in an async batch.
    pub fn batch_async<'a>(
        self,
        batch: &AsyncBatch<'a>,
        key: String,
        opts: Options,
        body: impl Future<Output = K::Ret> + Send + 'a,
    ) -> Promise<K::Ret>
    where
        K::Cached: Cacheable + Send + Sync + 'a,
        K::Ret: Send + Sync + 'a,
    {
        batch.record(key, opts, body, K::wrap, K::peek)
    }
}

/// Deletes a decorated call's cached value: `Ok(true)` if one was deleted,
/// `Ok(false)` if none was cached, `Err` if the cache failed or there is none.
pub fn try_invalidate(cache: Option<&Cache>, key: String) -> crate::Result<bool> {
    now(try_invalidate_in(cache.map(|c| &*c.core), key))
}

/// Async twin of [`try_invalidate`].
pub async fn try_invalidate_async(cache: Option<&AsyncCache>, key: String) -> crate::Result<bool> {
    try_invalidate_in(cache.map(|c| &*c.core), key).await
}

async fn try_invalidate_in<I: Io>(core: Option<&Core<I>>, key: String) -> crate::Result<bool> {
    match core {
        Some(c) => c.try_invalidate(key).await,
        None => Err(crate::Error::config(format!(
            "no default cache: {NO_DEFAULT_HELP}"
        ))),
    }
}

/// Deletes a decorated call's cached value; true if one was deleted.
pub fn invalidate(cache: Option<&Cache>, key: String) -> bool {
    now(invalidate_in(cache.map(|c| &*c.core), key))
}

/// Async twin of [`invalidate`].
pub async fn invalidate_async(cache: Option<&AsyncCache>, key: String) -> bool {
    invalidate_in(cache.map(|c| &*c.core), key).await
}

async fn invalidate_in<I: Io>(core: Option<&Core<I>>, key: String) -> bool {
    match core {
        Some(c) => c.invalidate(key).await,
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
        let _: Entry<Fallible<i32, String>> = (&Returns::<Fallible2<i32>>::new()).kind();
        let _: Entry<Fallible<u8, std::io::Error>> =
            (&Returns::<std::io::Result<u8>>::new()).kind();
        let _: Entry<Plain<Option<i32>>> = (&Returns::<Option<i32>>::new()).kind();
        fn generic<R>() -> Entry<Plain<R>> {
            (&Returns::<R>::new()).kind()
        }
        let _: Entry<Plain<Result<i32, String>>> = generic::<Result<i32, String>>();
    }
}
