//! Batches: many decorated calls, one multi-get.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::Options;
use crate::backend::{BoxFuture, SetItem};
use crate::core::{Blocking, Core, Io, NonBlocking, lease_token, now};
use crate::front::Front;
use crate::metrics::{self, Read};
use crate::promise::Promise;

/// Decorated calls recorded for one round trip (from [`Cache::batch`](crate::Cache::batch)).
///
/// Each `batch_<fn>(&batch, args)` records a call and returns a pending
/// [`Promise`]. [`run`](Batch::run) fetches every key with one `get_many`,
/// computes the misses, stores them in one pipelined write and resolves every
/// promise. A batch dropped without `run` computes nothing; its promises stay
/// pending. `'a` is the lifetime of what the recorded calls borrow.
pub struct Batch<'a>(Recorder<'a, Blocking>);

/// Async decorated calls recorded for one round trip (from
/// [`AsyncCache::batch`](crate::AsyncCache::batch)).
///
/// Like [`Batch`]; misses are computed concurrently when it runs.
pub struct AsyncBatch<'a>(Recorder<'a, NonBlocking>);

/// The cache and the recorded calls with their full keys, kept apart so the
/// keys go to `get_many` as one slice.
struct Recorder<'a, I: Batching> {
    core: Arc<Core<I>>,
    calls: Mutex<Recorded<'a, I>>,
}

/// Full keys, the calls recorded under them and their functions' paths
/// (for metrics), in order.
type Recorded<'a, I> = (
    Vec<String>,
    Vec<Box<<I as Batching>::Call<'a>>>,
    Vec<&'static str>,
);

/// A typed call: `R` is what the function returns, `T` what is cached
/// (`R` itself, or the `Ok` of a `Result`); the body is a future (a sync
/// body is wrapped in one that is ready when polled).
struct Call<T, R, F> {
    opts: Options,
    promise: Promise<R>,
    body: F,
    wrap: fn(T) -> R,
    peek: fn(&R) -> Option<&T>,
}

impl<T, R, F> Call<T, R, F>
where
    T: Serialize + DeserializeOwned,
    F: Future<Output = R>,
{
    /// Resolves the promise from cached bytes; false when they do not decode.
    fn hit(&self, front: &Front, key: &str, bytes: &[u8]) -> bool {
        match front.decode_hit::<T>(key, bytes) {
            Some(v) => {
                self.promise.resolve((self.wrap)(v));
                true
            }
            None => false,
        }
    }

    /// Runs the body, resolves the promise and returns what to store.
    async fn compute(self, front: &Front, key: String) -> Option<SetItem> {
        let result = metrics::timed(self.opts.function, self.body).await;
        let item = front.store_item(key, (self.peek)(&result), self.opts.expire);
        self.promise.resolve(result);
        item
    }
}

/// One recorded call with its types erased. The blocking and async batches
/// differ only in whether the body's future must be `Send`, so this trait
/// is stamped twice from one template.
macro_rules! erased_call {
    ($name:ident, $boxed:ident $(+ $send:ident)?) => {
        trait $name<'a> {
            fn hit(&self, front: &Front, key: &str, bytes: &[u8]) -> bool;
            fn compute<'f>(self: Box<Self>, front: &'f Front, key: String) -> $boxed<'f, Option<SetItem>>
            where
                'a: 'f;
        }

        impl<'a, T, R, F> $name<'a> for Call<T, R, F>
        where
            T: Serialize + DeserializeOwned $(+ $send)? + 'a,
            R: $($send + Sync +)? 'a,
            F: Future<Output = R> $(+ $send)? + 'a,
        {
            fn hit(&self, front: &Front, key: &str, bytes: &[u8]) -> bool {
                Call::hit(self, front, key, bytes)
            }

            fn compute<'f>(self: Box<Self>, front: &'f Front, key: String) -> $boxed<'f, Option<SetItem>>
            where
                'a: 'f,
            {
                Box::pin(Call::compute(*self, front, key))
            }
        }

    };
}

erased_call!(SyncCall, LocalBoxFuture);
erased_call!(AsyncCall, BoxFuture + Send);

/// A face's recorded calls: the erased call type and the future computing
/// one. (Keyed on the face marker: rustc cannot prove a future `Send`
/// through a projection on a type with lifetimes, such as a boxed call.)
trait Batching: Io {
    type Call<'a>: ?Sized + 'a;
    type Computing<'f>: Future<Output = Option<SetItem>> + 'f;

    fn hit(call: &Self::Call<'_>, front: &Front, key: &str, bytes: &[u8]) -> bool;
    fn compute<'a: 'f, 'f>(
        call: Box<Self::Call<'a>>,
        front: &'f Front,
        key: String,
    ) -> Self::Computing<'f>;
}

impl Batching for Blocking {
    type Call<'a> = dyn SyncCall<'a> + 'a;
    type Computing<'f> = LocalBoxFuture<'f, Option<SetItem>>;

    fn hit(call: &Self::Call<'_>, front: &Front, key: &str, bytes: &[u8]) -> bool {
        call.hit(front, key, bytes)
    }
    fn compute<'a: 'f, 'f>(
        call: Box<Self::Call<'a>>,
        front: &'f Front,
        key: String,
    ) -> Self::Computing<'f> {
        call.compute(front, key)
    }
}

impl Batching for NonBlocking {
    type Call<'a> = dyn AsyncCall<'a> + Send + 'a;
    type Computing<'f> = BoxFuture<'f, Option<SetItem>>;

    fn hit(call: &Self::Call<'_>, front: &Front, key: &str, bytes: &[u8]) -> bool {
        call.hit(front, key, bytes)
    }
    fn compute<'a: 'f, 'f>(
        call: Box<Self::Call<'a>>,
        front: &'f Front,
        key: String,
    ) -> Self::Computing<'f> {
        call.compute(front, key)
    }
}

impl<'a, I: Batching> Recorder<'a, I> {
    fn new(core: Arc<Core<I>>) -> Self {
        Recorder {
            core,
            calls: Mutex::new((Vec::new(), Vec::new(), Vec::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded<'a, I>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `call` under the function's key (before the namespace).
    fn push<T, R, F>(
        &self,
        key: String,
        opts: Options,
        body: F,
        wrap: fn(T) -> R,
        peek: fn(&R) -> Option<&T>,
        erase: impl FnOnce(Call<T, R, F>) -> Box<I::Call<'a>>,
    ) -> Promise<R> {
        let promise = Promise::new();
        let call = Call {
            opts,
            promise: promise.handle(),
            body,
            wrap,
            peek,
        };
        let key = self.core.front.full_key_owned(key);
        let mut rec = self.lock();
        rec.0.push(key);
        rec.1.push(erase(call));
        rec.2.push(opts.function);
        promise
    }

    fn len(&self) -> usize {
        self.lock().1.len()
    }

    /// Reads every key at once, computes the misses (concurrently, for async
    /// bodies), stores them with one write and resolves every promise. Fails
    /// open: if the cache is unreachable, every call is computed and nothing stored.
    async fn run(self) {
        let (mut keys, calls, functions) =
            self.calls.into_inner().unwrap_or_else(|e| e.into_inner());
        if calls.is_empty() {
            return;
        }
        let core = &*self.core;
        let front = &core.front;
        let reads = {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            I::read_many(&core.backend, &keys).await
        };
        // Misses, and whether their server answered (a lease is then taken).
        let mut misses = Vec::new();
        let calls = calls.into_iter().zip(keys.iter_mut()).zip(functions);
        for (((call, key), function), read) in calls.zip(reads) {
            let reachable = !matches!(&read, Err(e) if e.is_unavailable());
            let outcome = metrics::outcome(&read);
            match read {
                Ok(Some(bytes)) if I::hit(&call, front, key, &bytes) => {
                    metrics::read(function, Read::Hit);
                    continue;
                }
                Ok(Some(_)) => {}
                Ok(None) => front.missed(),
                Err(e) => {
                    front.failed_open(&e);
                    front.missed();
                }
            }
            metrics::read(function, outcome);
            misses.push((call, std::mem::take(key), reachable));
        }
        if misses.is_empty() {
            return;
        }
        // One lease round trip for every miss whose server answered.
        let token = lease_token();
        let leased = {
            let keys: Vec<&str> = misses
                .iter()
                .filter(|m| m.2)
                .map(|m| m.1.as_str())
                .collect();
            let mut granted = core.lease(&keys, &token).await.into_iter();
            misses
                .iter()
                .map(|m| m.2 && granted.next().unwrap_or(false))
                .collect::<Vec<bool>>()
        };
        let leased_keys: Vec<String> = misses
            .iter()
            .zip(&leased)
            .filter(|(_, l)| **l)
            .map(|(m, _)| m.1.clone())
            .collect();
        let computing = misses
            .into_iter()
            .zip(leased)
            .map(|((call, key, _), leased)| {
                let compute = I::compute(call, front, key);
                async move { compute.await.filter(|_| leased) }
            })
            .collect();
        let writes = I::join(computing).await;
        let leased_keys: Vec<&str> = leased_keys.iter().map(String::as_str).collect();
        core.finish_leases(writes.into_iter().flatten().collect(), &leased_keys, &token)
            .await;
    }
}

impl<'a> Batch<'a> {
    pub(crate) fn new(core: Arc<Core<Blocking>>) -> Self {
        Batch(Recorder::new(core))
    }

    /// Records a call; `key` is the function's key before the namespace.
    pub(crate) fn record<T, R>(
        &self,
        key: String,
        opts: Options,
        body: impl FnOnce() -> R + 'a,
        wrap: fn(T) -> R,
        peek: fn(&R) -> Option<&T>,
    ) -> Promise<R>
    where
        T: Serialize + DeserializeOwned + 'a,
        R: 'a,
    {
        let body = async { body() };
        self.0
            .push(key, opts, body, wrap, peek, |c| Box::new(c) as _)
    }

    /// How many calls are recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no call is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fetches all recorded keys at once, computes the misses, stores them
    /// with one pipelined write, and resolves every promise. Fails open: if
    /// the cache is unreachable, every call is computed.
    pub fn run(self) {
        now(self.0.run())
    }
}

impl<'a> AsyncBatch<'a> {
    pub(crate) fn new(core: Arc<Core<NonBlocking>>) -> Self {
        AsyncBatch(Recorder::new(core))
    }

    /// Records a call; `key` is the function's key before the namespace.
    pub(crate) fn record<T, R>(
        &self,
        key: String,
        opts: Options,
        body: impl Future<Output = R> + Send + 'a,
        wrap: fn(T) -> R,
        peek: fn(&R) -> Option<&T>,
    ) -> Promise<R>
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        R: Send + Sync + 'a,
    {
        self.0
            .push(key, opts, body, wrap, peek, |c| Box::new(c) as _)
    }

    /// How many calls are recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no call is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fetches all recorded keys at once, computes the misses concurrently,
    /// stores them with one pipelined write, and resolves every promise.
    pub async fn run(self) {
        self.0.run().await
    }
}
