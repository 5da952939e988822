//! Batches: many decorated calls, one multi-get.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::async_cache::AsyncCache;
use crate::backend::{BoxFuture, SetItem};
use crate::cache::Cache;
use crate::front::Front;
use crate::promise::Promise;

/// Decorated calls recorded for one round trip (from [`Cache::batch`]).
///
/// Each `batch_<fn>(&batch, args)` records a call and returns a pending
/// [`Promise`]. [`run`](Batch::run) fetches every key with one `get_many`,
/// computes the misses, stores them in one pipelined write and resolves every
/// promise. A batch dropped without `run` computes nothing; its promises stay
/// pending. `'a` is the lifetime of what the recorded calls borrow.
pub struct Batch<'a> {
    cache: Cache,
    calls: Recorded<Box<dyn SyncCall + 'a>>,
}

/// Async decorated calls recorded for one round trip (from [`AsyncCache::batch`]).
///
/// Like [`Batch`]; misses are computed concurrently when it runs.
pub struct AsyncBatch<'a> {
    cache: AsyncCache,
    calls: Recorded<Box<dyn AsyncCall<'a> + Send + 'a>>,
}

/// The recorded calls and their full keys, kept apart so the keys go to
/// `get_many` as one slice.
struct Recorded<C>(Mutex<(Vec<String>, Vec<C>)>);

impl<C> Recorded<C> {
    fn new() -> Self {
        Recorded(Mutex::new((Vec::new(), Vec::new())))
    }

    fn push(&self, key: String, call: C) {
        let mut rec = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rec.0.push(key);
        rec.1.push(call);
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1.len()
    }

    fn into_inner(self) -> (Vec<String>, Vec<C>) {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// One recorded call: resolves from cached bytes, or computes.
trait SyncCall {
    /// Resolves the promise from cached bytes; false when they do not decode.
    fn hit(&self, front: &Front, key: &str, bytes: &[u8]) -> bool;
    /// Runs the body, resolves the promise, returns what to store.
    fn compute(self: Box<Self>, front: &Front, key: String) -> Option<SetItem>;
}

trait AsyncCall<'a> {
    fn hit(&self, front: &Front, key: &str, bytes: &[u8]) -> bool;
    fn compute<'f>(
        self: Box<Self>,
        front: &'f Front,
        key: String,
    ) -> BoxFuture<'f, Option<SetItem>>
    where
        'a: 'f;
}

/// A typed call: `R` is what the function returns, `T` what is cached
/// (`R` itself, or the `Ok` of a `Result`).
struct Call<T, R, B> {
    expire: Option<Duration>,
    promise: Promise<R>,
    body: B,
    wrap: fn(T) -> R,
    peek: fn(&R) -> Option<&T>,
}

impl<T: DeserializeOwned, R, B> Call<T, R, B> {
    fn hit(&self, front: &Front, key: &str, bytes: &[u8]) -> bool {
        match front.decode_hit::<T>(key, bytes) {
            Some(v) => {
                self.promise.resolve((self.wrap)(v));
                true
            }
            None => false,
        }
    }
}

fn finish<T: Serialize, R>(
    front: &Front,
    key: String,
    result: R,
    expire: Option<Duration>,
    promise: &Promise<R>,
    peek: fn(&R) -> Option<&T>,
) -> Option<SetItem> {
    let item = peek(&result).and_then(|v| front.store_item(key, v, expire));
    promise.resolve(result);
    item
}

impl<T, R, B> SyncCall for Call<T, R, B>
where
    T: Serialize + DeserializeOwned,
    B: FnOnce() -> R,
{
    fn hit(&self, front: &Front, key: &str, bytes: &[u8]) -> bool {
        Call::hit(self, front, key, bytes)
    }

    fn compute(self: Box<Self>, front: &Front, key: String) -> Option<SetItem> {
        let result = (self.body)();
        finish(front, key, result, self.expire, &self.promise, self.peek)
    }
}

impl<'a, T, R, B> AsyncCall<'a> for Call<T, R, B>
where
    T: Serialize + DeserializeOwned + Send + 'a,
    R: Send + Sync + 'a,
    B: Future<Output = R> + Send + 'a,
{
    fn hit(&self, front: &Front, key: &str, bytes: &[u8]) -> bool {
        Call::hit(self, front, key, bytes)
    }

    fn compute<'f>(self: Box<Self>, front: &'f Front, key: String) -> BoxFuture<'f, Option<SetItem>>
    where
        'a: 'f,
    {
        Box::pin(async move {
            let this = *self;
            let result = this.body.await;
            finish(front, key, result, this.expire, &this.promise, this.peek)
        })
    }
}

impl<'a> Batch<'a> {
    pub(crate) fn new(cache: Cache) -> Self {
        Batch {
            cache,
            calls: Recorded::new(),
        }
    }

    /// Records a call; `key` is the function's key before the namespace.
    pub(crate) fn record<T, R, B>(
        &self,
        key: String,
        expire: Option<Duration>,
        body: B,
        wrap: fn(T) -> R,
        peek: fn(&R) -> Option<&T>,
    ) -> Promise<R>
    where
        T: Serialize + DeserializeOwned + 'a,
        R: 'a,
        B: FnOnce() -> R + 'a,
    {
        let promise = Promise::new();
        let call = Call {
            expire,
            promise: promise.handle(),
            body,
            wrap,
            peek,
        };
        self.calls
            .push(self.cache.inner.front.full_key_owned(key), Box::new(call));
        promise
    }

    /// How many calls are recorded.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when no call is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fetches all recorded keys at once, computes the misses, stores them
    /// with one pipelined write, and resolves every promise. Fails open: if
    /// the cache is unreachable, every call is computed.
    pub fn run(self) {
        let (mut keys, calls) = self.calls.into_inner();
        if calls.is_empty() {
            return;
        }
        let inner = &self.cache.inner;
        let front = &inner.front;
        let reads = inner.backend.get_many(&keys);
        let mut writes = Vec::new();
        for ((call, key), read) in calls.into_iter().zip(keys.iter_mut()).zip(reads) {
            let skip_store = matches!(&read, Err(e) if e.is_unavailable());
            match read {
                Ok(Some(bytes)) if call.hit(front, key, &bytes) => continue,
                Ok(Some(_)) => {}
                Ok(None) => front.missed(),
                Err(e) => {
                    front.failed_open(&e);
                    front.missed();
                }
            }
            let item = call.compute(front, std::mem::take(key));
            if !skip_store {
                writes.extend(item);
            }
        }
        if !writes.is_empty() {
            match inner.backend.set_many(&writes) {
                Ok(_) => front.stored(writes.len()),
                Err(e) => front.failed_open(&e),
            }
        }
    }
}

impl<'a> AsyncBatch<'a> {
    pub(crate) fn new(cache: AsyncCache) -> Self {
        AsyncBatch {
            cache,
            calls: Recorded::new(),
        }
    }

    /// Records a call; `key` is the function's key before the namespace.
    pub(crate) fn record<T, R, B>(
        &self,
        key: String,
        expire: Option<Duration>,
        body: B,
        wrap: fn(T) -> R,
        peek: fn(&R) -> Option<&T>,
    ) -> Promise<R>
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        R: Send + Sync + 'a,
        B: Future<Output = R> + Send + 'a,
    {
        let promise = Promise::new();
        let call = Call {
            expire,
            promise: promise.handle(),
            body,
            wrap,
            peek,
        };
        self.calls
            .push(self.cache.inner.front.full_key_owned(key), Box::new(call));
        promise
    }

    /// How many calls are recorded.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when no call is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fetches all recorded keys at once, computes the misses concurrently,
    /// stores them with one pipelined write, and resolves every promise.
    pub async fn run(self) {
        let (mut keys, calls) = self.calls.into_inner();
        if calls.is_empty() {
            return;
        }
        let inner = &self.cache.inner;
        let front = &inner.front;
        let reads = inner.backend.get_many(&keys).await;
        let mut misses = Vec::new();
        for ((call, key), read) in calls.into_iter().zip(keys.iter_mut()).zip(reads) {
            let skip_store = matches!(&read, Err(e) if e.is_unavailable());
            match read {
                Ok(Some(bytes)) if call.hit(front, key, &bytes) => continue,
                Ok(Some(_)) => {}
                Ok(None) => front.missed(),
                Err(e) => {
                    front.failed_open(&e);
                    front.missed();
                }
            }
            let compute = call.compute(front, std::mem::take(key));
            misses.push(async move { compute.await.filter(|_| !skip_store) });
        }
        let writes: Vec<SetItem> = futures_util::future::join_all(misses)
            .await
            .into_iter()
            .flatten()
            .collect();
        if !writes.is_empty() {
            match inner.backend.set_many(&writes).await {
                Ok(_) => front.stored(writes.len()),
                Err(e) => front.failed_open(&e),
            }
        }
    }
}
