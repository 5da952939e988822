//! The cache `#[rc::cache]` functions without `cache = ..` use.
//!
//! Each face has a process-wide default ([`Cache::install_default`],
//! [`AsyncCache::install_default`]), for applications, and a scoped one, for
//! tests that run side by side in one process: a thread's for [`Cache`]
//! ([`Cache::set_thread_default`], undone when its [`DefaultGuard`] drops),
//! a tokio task's for [`AsyncCache`] ([`AsyncCache::scope_default`]; a
//! guard could not follow a task that moves between worker threads, a
//! task-local does). The scoped one, when there is one, wins.
//!
//! Cost on a decorated call's path: one thread-local read (a `RefCell` flag
//! and an `Option`; tokio's task-locals are one too) before the `ArcSwap`
//! load of the process-wide slot, and one `Arc` count increment either way.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::{AsyncCache, Cache};

/// The default cache of one face: the scoped one if `scoped` finds one,
/// else the process-wide one.
pub(crate) struct DefaultSlot<C: 'static> {
    global: ArcSwapOption<C>,
    scoped: fn() -> Option<Arc<C>>,
}

impl<C: Clone> DefaultSlot<C> {
    const fn new(scoped: fn() -> Option<Arc<C>>) -> Self {
        DefaultSlot {
            global: ArcSwapOption::const_empty(),
            scoped,
        }
    }

    /// Sets the process-wide default.
    pub fn install(&self, cache: C) {
        self.global.store(Some(Arc::new(cache)));
    }

    /// The process-wide default.
    pub fn installed(&self) -> Option<C> {
        self.global.load_full().map(|c| (*c).clone())
    }

    /// The default in effect here: the scoped one, else the process-wide one.
    #[inline]
    pub fn current(&self) -> Option<Arc<C>> {
        (self.scoped)().or_else(|| self.global.load_full())
    }
}

/// The blocking face's default.
pub(crate) static BLOCKING: DefaultSlot<Cache> = DefaultSlot::new(thread_default);

/// The async face's default.
pub(crate) static ASYNC: DefaultSlot<AsyncCache> = DefaultSlot::new(task_default);

thread_local! {
    /// The current thread's [`Cache`] default, set by [`Cache::set_thread_default`].
    static THREAD: RefCell<Option<Arc<Cache>>> = const { RefCell::new(None) };
}

tokio::task_local! {
    /// The current task's [`AsyncCache`] default, set by [`AsyncCache::scope_default`].
    static TASK: Arc<AsyncCache>;
}

fn thread_default() -> Option<Arc<Cache>> {
    // `try_with`: a destructor of another thread-local may run a decorated function.
    THREAD.try_with(|c| c.borrow().clone()).ok().flatten()
}

fn task_default() -> Option<Arc<AsyncCache>> {
    TASK.try_with(Arc::clone).ok()
}

/// Makes `cache` the current thread's default until the guard drops.
pub(crate) fn set_thread(cache: &Cache) -> DefaultGuard {
    let prev = THREAD.with(|c| c.replace(Some(Arc::new(cache.clone()))));
    DefaultGuard {
        prev,
        _not_send: PhantomData,
    }
}

/// Runs `fut` with `cache` as its task's default.
pub(crate) fn scope_task<F: Future>(
    cache: &AsyncCache,
    fut: F,
) -> impl Future<Output = F::Output> + use<F> {
    TASK.scope(Arc::new(cache.clone()), fut)
}

/// Keeps a [`Cache`] the default of `#[rc::cache]` functions on this thread;
/// from [`Cache::set_thread_default`].
///
/// Dropping it brings back the thread's previous default (an enclosing
/// guard's, or none: then the process-wide one applies). Guards nest; drop
/// them in reverse order, as scopes do. Not `Send`: it belongs to its thread.
#[must_use = "the cache is the thread's default only until the guard is dropped; \
              bind it with `let _guard = ..` (`let _ = ..` drops it at once)"]
pub struct DefaultGuard {
    prev: Option<Arc<Cache>>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        // The replaced cache is dropped outside the borrow.
        let _scoped = THREAD.try_with(|c| c.replace(prev));
    }
}

impl fmt::Debug for DefaultGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultGuard")
            .field("previous", &self.prev)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{ASYNC, BLOCKING};
    use crate::{AsyncCache, Cache, CacheOptions, NullBackend};

    fn cache(namespace: &str) -> Cache {
        CacheOptions::new()
            .namespace(namespace)
            .build(Arc::new(NullBackend))
            .unwrap()
    }

    fn async_cache(namespace: &str) -> AsyncCache {
        CacheOptions::new()
            .namespace(namespace)
            .build_async(Arc::new(NullBackend))
            .unwrap()
    }

    fn current() -> Option<String> {
        BLOCKING.current().map(|c| c.namespace().to_owned())
    }

    fn current_async() -> Option<String> {
        ASYNC.current().map(|c| c.namespace().to_owned())
    }

    // The only test of this crate that touches the process-wide defaults.
    #[test]
    fn scopes_nest_and_win_over_the_process_wide_default() {
        cache("global").install_default();
        assert_eq!(current().as_deref(), Some("global"));
        {
            let _outer = cache("outer").set_thread_default();
            assert_eq!(current().as_deref(), Some("outer"));
            {
                let _inner = cache("inner").set_thread_default();
                assert_eq!(current().as_deref(), Some("inner"));
                let other = std::thread::spawn(current).join().unwrap();
                assert_eq!(other.as_deref(), Some("global"));
            }
            assert_eq!(current().as_deref(), Some("outer"));
        }
        assert_eq!(current().as_deref(), Some("global"));
        assert_eq!(Cache::installed_default().unwrap().namespace(), "global");

        async_cache("global").install_default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert_eq!(current_async().as_deref(), Some("global"));
            let outer = async_cache("outer");
            let inner = async_cache("inner");
            outer
                .scope_default(async {
                    assert_eq!(current_async().as_deref(), Some("outer"));
                    inner
                        .scope_default(async {
                            tokio::task::yield_now().await;
                            assert_eq!(current_async().as_deref(), Some("inner"));
                        })
                        .await;
                    assert_eq!(current_async().as_deref(), Some("outer"));
                    // A spawned task is outside the scope.
                    let spawned = tokio::spawn(async { current_async() }).await.unwrap();
                    assert_eq!(spawned.as_deref(), Some("global"));
                })
                .await;
            assert_eq!(current_async().as_deref(), Some("global"));
        });
    }
}
