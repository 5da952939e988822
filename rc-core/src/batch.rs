//! Batches: many decorated calls, one multi-get.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::Options;
use crate::backend::{BoxFuture, ManyReplies, SetItem};
use crate::core::{Blocking, Core, Io, LEASE_TTL, NonBlocking, ValueTtl, lease_token, now};
use crate::error::Result;
use crate::flight::Role;
use crate::front::Front;
use crate::metrics::{self, Read};
use crate::promise::Promise;
use crate::stale::{Found, Plan};

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

/// Full keys, the calls recorded under them and their options, in order.
type Recorded<'a, I> = (
    Vec<String>,
    Vec<Box<<I as Batching>::Call<'a>>>,
    Vec<Options>,
);

/// A typed call: `R` is what the function returns, `T` what is cached
/// (`R` itself, or the `Ok` of a `Result`); the body is a future (a sync
/// body is wrapped in one that is ready when polled).
struct Call<T, R, F> {
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

    /// Runs the body, resolves the promise (with the stale `fallback`
    /// instead of an `Err`, if any) and returns what to store.
    async fn compute(self, front: &Front, miss: Miss) -> Option<SetItem> {
        let function = miss.plan.as_ref().map_or("", |p| p.function);
        let result = metrics::timed(function, self.body).await;
        let item = (miss.plan.as_ref())
            .and_then(|plan| front.store_item(miss.key.clone(), (self.peek)(&result), plan));
        let stale = miss
            .fallback
            .filter(|_| (self.peek)(&result).is_none())
            .and_then(|b| front.decode_stale::<T>(&miss.key, &b));
        if stale.is_some() {
            metrics::stale(function);
        }
        self.promise.resolve(stale.map_or(result, self.wrap));
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
            fn compute<'f>(self: Box<Self>, front: &'f Front, miss: Miss) -> $boxed<'f, Option<SetItem>>
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

            fn compute<'f>(self: Box<Self>, front: &'f Front, miss: Miss) -> $boxed<'f, Option<SetItem>>
            where
                'a: 'f,
            {
                Box::pin(Call::compute(*self, front, miss))
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
        miss: Miss,
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
        miss: Miss,
    ) -> Self::Computing<'f> {
        call.compute(front, miss)
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
        miss: Miss,
    ) -> Self::Computing<'f> {
        call.compute(front, miss)
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
            promise: promise.handle(),
            body,
            wrap,
            peek,
        };
        let key = self.core.front.full_key_owned(key);
        let mut rec = self.lock();
        rec.0.push(key);
        rec.1.push(erase(call));
        rec.2.push(opts);
        promise
    }

    fn len(&self) -> usize {
        self.lock().1.len()
    }

    /// Reads every key at once, computes the misses (concurrently, for async
    /// bodies), stores them with one write and resolves every promise. A
    /// key another batch or call is computing in this process is not
    /// computed twice (single flight): its calls wait for that value. Fails
    /// open: if the cache is unreachable, every call is computed and nothing stored.
    async fn run(self) {
        let (keys, calls, opts) = self.calls.into_inner().unwrap_or_else(|e| e.into_inner());
        if calls.is_empty() {
            return;
        }
        let core = &*self.core;
        let front = &core.front;
        let functions: Vec<&'static str> = opts.iter().map(|o| o.function).collect();
        let plans: Vec<Option<Plan>> = (opts.iter())
            .map(|o| front.plan(o).map_err(|e| front.failed_open(&e)).ok())
            .collect();
        let reads = read_all(core, &keys, &plans).await;
        // Misses, and whether their server answered (a lease is then taken).
        let mut misses = Vec::new();
        let calls = calls.into_iter().zip(keys).zip(plans).zip(functions);
        for ((((call, key), plan), function), read) in calls.zip(reads) {
            let reachable = !matches!(&read, Err(e) if e.is_unavailable());
            let outcome = metrics::outcome(&read);
            let mut fallback = None;
            let found = match (read, &plan) {
                (Ok(r), Some(plan)) => plan.sort(r),
                (Ok(r), None) => r.map_or(Found::Missing, |(bytes, _)| Found::Fresh(bytes)),
                (Err(e), _) => {
                    front.failed_open(&e);
                    Found::Missing
                }
            };
            match found {
                Found::Fresh(bytes) if I::hit(&call, front, &key, &bytes) => {
                    metrics::read(function, Read::Hit);
                    continue;
                }
                Found::Fresh(_) => {}
                Found::Stale { bytes, past } => {
                    front.missed();
                    fallback = plan
                        .as_ref()
                        .filter(|p| p.covers_error(past))
                        .map(|_| bytes);
                }
                Found::Missing => front.missed(),
            }
            metrics::read(function, outcome);
            let miss = Miss {
                key,
                plan,
                fallback,
            };
            misses.push((call, miss, reachable));
        }
        if misses.is_empty() {
            return;
        }
        // Lead the flights of the misses, or follow those under way.
        let (mut leads, mut follows) = (Vec::new(), Vec::new());
        for (call, miss, reachable) in misses {
            let single = miss.plan.as_ref().is_some_and(|p| p.single_flight);
            match single.then(|| core.flights.join(&miss.key)) {
                Some(Role::Follower(flight)) => follows.push((call, miss, flight)),
                Some(Role::Leader(l)) => leads.push((call, miss, reachable, Some(l))),
                None => leads.push((call, miss, reachable, None)),
            }
        }
        // One lease round trip for every lead whose server answered.
        let token = lease_token();
        let leased = {
            let keys: Vec<&str> = (leads.iter())
                .filter(|m| m.2)
                .map(|m| m.1.key.as_str())
                .collect();
            let mut granted = core.lease(&keys, &token).await.into_iter();
            (leads.iter())
                .map(|m| m.2 && granted.next().unwrap_or(false))
                .collect::<Vec<bool>>()
        };
        let leased_keys: Vec<String> = (leads.iter().zip(&leased))
            .filter(|(_, l)| **l)
            .map(|(m, _)| m.1.key.clone())
            .collect();
        // The leads first, stored, then their flights end (so a call that
        // missed meanwhile joins them), then the follows: batches following
        // each other's keys never wait on one another.
        let (computing, leaders): (Vec<_>, Vec<_>) = (leads.into_iter().zip(leased))
            .map(|((call, miss, _, leader), leased)| {
                (I::compute(call, front, miss), (leader, leased))
            })
            .unzip();
        let (mut writes, mut ended) = (Vec::new(), Vec::new());
        for (item, (leader, leased)) in I::join(computing).await.into_iter().zip(leaders) {
            if let Some(leader) = leader {
                ended.push((leader, item.as_ref().map(|(_, b, _)| Arc::new(b.clone()))));
            }
            writes.extend(item.filter(|_| leased));
        }
        let leased_keys: Vec<&str> = leased_keys.iter().map(String::as_str).collect();
        core.finish_leases(writes, &leased_keys, &token).await;
        for (leader, shared) in ended {
            leader.finish(shared);
        }
        let following = follows
            .into_iter()
            .map(|(call, miss, flight)| async move {
                let shared = I::wait_flight(&flight, LEASE_TTL).await;
                if !shared.is_some_and(|b| I::hit(&call, front, &miss.key, &b)) {
                    // Computed unleased: nothing stored.
                    I::compute(call, front, miss).await;
                }
            })
            .collect();
        I::join(following).await;
    }
}

/// A recorded call that missed: its full key, its plan (`None` when its
/// options are invalid: computed, never stored) and the stale value that
/// stands in for an `Err` (`stale_if_error`).
struct Miss {
    key: String,
    plan: Option<Plan>,
    fallback: Option<Vec<u8>>,
}

/// Reads every key: one multi-get for those without a stale window, and
/// each of the others with the time it has left.
async fn read_all<I: Io>(
    core: &Core<I>,
    keys: &[String],
    plans: &[Option<Plan>],
) -> Vec<Result<ValueTtl>> {
    let windowed = |i: &usize| plans[*i].as_ref().is_some_and(|p| !p.window().is_zero());
    let (timed, plain): (Vec<usize>, Vec<usize>) = (0..keys.len()).partition(windowed);
    let plain_keys: Vec<&str> = plain.iter().map(|&i| keys[i].as_str()).collect();
    let mut plain_reads = if plain_keys.is_empty() {
        Vec::new()
    } else {
        I::read_many(&core.backend, &plain_keys).await.into_vec()
    }
    .into_iter();
    let timed_keys: Vec<&str> = timed.iter().map(|&i| keys[i].as_str()).collect();
    let mut timed_reads = if timed_keys.is_empty() {
        Vec::new()
    } else {
        I::read_many_with_ttl(&core.backend, &timed_keys).await
    }
    .into_iter();
    (0..keys.len())
        .map(|i| match windowed(&i) {
            true => timed_reads.next().unwrap_or(Ok(None)),
            false => (plain_reads.next())
                .unwrap_or(Ok(None))
                .map(|v| v.map(|b| (b, None))),
        })
        .collect()
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
