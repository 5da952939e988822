//! The byte store over a [`Layout`]: a call goes to its keys' primaries,
//! one pipeline per primary (one command per hash slot in it), all
//! primaries at once, and follows redirections, sending again only the keys
//! of the commands that met one. Written once over [`Face`]: [`Managed`]
//! (blocking) and [`AsyncManaged`].

use std::future::{Future, Ready, ready};
use std::sync::Arc;
use std::time::Duration;

use super::{Layout, Shared, Source};
use crate::backend::{AsyncBackend, Backend, BoxFuture, ServerLink, SetItem, ValueTtl};
use crate::commands::{self, Split, Writes};
use crate::core::now;
use crate::error::{Error, Result};
use crate::host::{HostConfig, Timeouts};
use crate::multiplexed::AsyncRedisBackend;
use crate::pool::RedisBackend;

/// Times a call is sent again after a redirection.
const RETRIES: u32 = 5;
/// First wait for a new layout after a redirection; doubles on each retry.
const FIRST_WAIT: Duration = Duration::from_millis(20);

/// One operation of the byte store, as each primary gets its part of it.
#[derive(Clone, Copy)]
pub(crate) enum Op<'a> {
    Get(&'a [&'a str]),
    /// Values with the time their keys have left, for the near cache.
    GetTtl(&'a [&'a str]),
    Set(&'a [(&'a str, &'a [u8], Duration)]),
    Delete(&'a [&'a str]),
    Ttl(&'a str),
    Lease(&'a [&'a str], &'a str, Duration),
    SetLeased(&'a [SetItem], &'a str),
    Release(&'a [&'a str], &'a str),
    /// Deletes the leases on keys whose writes went through but whose
    /// lease deletes were redirected.
    Void(&'a [&'a str]),
}

impl<'a> Op<'a> {
    fn len(&self) -> usize {
        match self {
            Op::Get(k)
            | Op::GetTtl(k)
            | Op::Delete(k)
            | Op::Lease(k, ..)
            | Op::Release(k, _)
            | Op::Void(k) => k.len(),
            Op::Set(items) => items.len(),
            Op::SetLeased(items, _) => items.len(),
            Op::Ttl(_) => 1,
        }
    }

    fn key(&self, i: usize) -> &'a str {
        match self {
            Op::Get(k)
            | Op::GetTtl(k)
            | Op::Delete(k)
            | Op::Lease(k, ..)
            | Op::Release(k, _)
            | Op::Void(k) => k[i],
            Op::Set(items) => items[i].0,
            Op::SetLeased(items, _) => &items[i].0,
            Op::Ttl(k) => k,
        }
    }

    /// The reply of a part that could not be sent, for `n` keys.
    fn failed(&self, e: Error, n: usize) -> Reply {
        match self {
            Op::Get(_) => Reply::Values(vec![Err(e); n]),
            Op::GetTtl(_) => Reply::WithTtl(vec![Err(e); n]),
            Op::Lease(..) => Reply::Granted(vec![Err(e); n]),
            Op::Set(_) | Op::SetLeased(..) => Reply::Stored(Writes::failed(e, n, false)),
            Op::Delete(_) => Reply::Deleted(Writes::failed(e, n, false)),
            Op::Ttl(_) => Reply::Ttl(Err(e)),
            Op::Release(..) | Op::Void(_) => Reply::Done(vec![Err(e); n]),
        }
    }
}

/// A primary's reply to its part of an [`Op`], per key: a command that
/// failed fails only its keys.
pub(crate) enum Reply {
    Values(Vec<Result<Option<Vec<u8>>>>),
    WithTtl(Vec<Result<ValueTtl>>),
    Granted(Vec<Result<bool>>),
    Stored(Writes<bool>),
    Deleted(Writes<u64>),
    Ttl(Result<Option<Duration>>),
    /// Releases and lease deletes.
    Done(Vec<Result<()>>),
}

impl Reply {
    /// The error of the `i`-th key's command.
    fn error(&self, i: usize) -> Option<&Error> {
        fn at<T>(v: &[Result<T>], i: usize) -> Option<&Error> {
            v.get(i).and_then(|r| r.as_ref().err())
        }
        match self {
            Reply::Values(v) => at(v, i),
            Reply::WithTtl(v) => at(v, i),
            Reply::Granted(v) => at(v, i),
            Reply::Stored(w) => at(&w.each, i),
            Reply::Deleted(w) => at(&w.each, i),
            Reply::Ttl(r) => r.as_ref().err(),
            Reply::Done(v) => at(v, i),
        }
    }

    /// The reply of the keys `keep` marks only.
    fn keep(self, keep: &[bool]) -> Reply {
        fn only<T>(v: Vec<T>, keep: &[bool]) -> Vec<T> {
            v.into_iter()
                .zip(keep)
                .filter_map(|(x, &k)| k.then_some(x))
                .collect()
        }
        fn writes<T>(w: Writes<T>, keep: &[bool]) -> Writes<T> {
            Writes {
                each: only(w.each, keep),
                voided: only(w.voided, keep),
            }
        }
        match self {
            Reply::Values(v) => Reply::Values(only(v, keep)),
            Reply::WithTtl(v) => Reply::WithTtl(only(v, keep)),
            Reply::Granted(v) => Reply::Granted(only(v, keep)),
            Reply::Stored(w) => Reply::Stored(writes(w, keep)),
            Reply::Deleted(w) => Reply::Deleted(writes(w, keep)),
            Reply::Done(v) => Reply::Done(only(v, keep)),
            ttl @ Reply::Ttl(_) => ttl,
        }
    }

    /// Marks values not to be kept by the near cache: they came from a
    /// node that is not their slot's owner yet (`ASK`), whose invalidations
    /// the near cache does not hear for them.
    fn not_to_keep(self) -> Reply {
        match self {
            Reply::WithTtl(v) => Reply::WithTtl(
                v.into_iter()
                    .map(|r| r.map(|v| v.map(|(bytes, _)| (bytes, Some(Duration::ZERO)))))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// True for replies that say the layout changed: the key is served
/// elsewhere (`MOVED`, `ASK`), its slot is moving or unserved (`TRYAGAIN`,
/// `CLUSTERDOWN`), or the server is no primary any more (`READONLY`).
fn redirected(e: &Error) -> bool {
    matches!(e, Error::Redis { source, .. }
        if matches!(source.code(), Some("MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN" | "READONLY")))
}

/// Each primary's part of an op: the primary and the op's key positions
/// (in hash slot order, so its keys of one slot share a command).
type Parts<N> = Vec<(Arc<N>, Vec<usize>)>;

/// The blocking or the async side of the primaries' backends.
pub(crate) trait Face: Send + Sync + 'static {
    type Node: Send + Sync + 'static;
    type Fut<'a, T: Send + 'a>: Future<Output = T> + Send + 'a;

    fn open(
        host: &HostConfig,
        timeouts: Timeouts,
        pool_size: usize,
        split: Split,
    ) -> Result<Self::Node>;
    /// Sends each primary its part of `op`, all at once; replies in order.
    fn run<'a>(op: Op<'a>, parts: &'a Parts<Self::Node>) -> Self::Fut<'a, Vec<Reply>>;
    fn ping<'a>(nodes: &'a [Arc<Self::Node>]) -> Self::Fut<'a, Vec<Result<()>>>;
    fn client(node: &Self::Node) -> Result<redis::Client>;
    /// How the near cache reaches the node.
    fn link(node: &Self::Node) -> ServerLink;
    /// The current layout, waiting (bounded) for the first.
    fn layout(shared: &Shared<Self::Node>) -> Self::Fut<'_, Result<Arc<Layout<Self::Node>>>>;
    /// The current layout without waiting for I/O a non-blocking caller cannot wait for.
    fn layout_now(shared: &Shared<Self::Node>) -> Result<Arc<Layout<Self::Node>>>;
    fn wait_newer(shared: &Shared<Self::Node>, seen: u64, limit: Duration) -> Self::Fut<'_, ()>;
}

/// The blocking side: [`RedisBackend`]s, ready futures.
pub(crate) enum Blocking {}

/// The async side: [`AsyncRedisBackend`]s.
pub(crate) enum NonBlocking {}

impl Face for Blocking {
    type Node = RedisBackend;
    type Fut<'a, T: Send + 'a> = Ready<T>;

    fn open(h: &HostConfig, t: Timeouts, pool_size: usize, split: Split) -> Result<RedisBackend> {
        Ok(RedisBackend::new(h, t, pool_size)?.with_split(split))
    }

    fn run<'a>(op: Op<'a>, parts: &'a Parts<RedisBackend>) -> Ready<Vec<Reply>> {
        // Write to every primary first, then read: they work in parallel.
        let started: Vec<_> = parts.iter().map(|(n, pos)| start(n, op, pos)).collect();
        ready(started.into_iter().map(|read| read()).collect())
    }

    fn ping(nodes: &[Arc<RedisBackend>]) -> Ready<Vec<Result<()>>> {
        ready(nodes.iter().map(|n| Backend::ping(&**n)).collect())
    }

    fn client(node: &RedisBackend) -> Result<redis::Client> {
        Backend::client(node, "")
    }

    fn link(node: &RedisBackend) -> ServerLink {
        node.link()
    }

    fn layout(shared: &Shared<RedisBackend>) -> Ready<Result<Arc<Layout<RedisBackend>>>> {
        ready(shared.layout_blocking())
    }

    fn layout_now(shared: &Shared<RedisBackend>) -> Result<Arc<Layout<RedisBackend>>> {
        shared.layout_blocking()
    }

    fn wait_newer(shared: &Shared<RedisBackend>, seen: u64, limit: Duration) -> Ready<()> {
        shared.wait_newer_blocking(seen, limit);
        ready(())
    }
}

/// Sends `node` its part of `op`; the closure reads the reply.
fn start<'a>(n: &'a RedisBackend, op: Op<'a>, pos: &[usize]) -> Box<dyn FnOnce() -> Reply + 'a> {
    let keys = |k: &'a [&'a str]| pos.iter().map(move |&i| k[i]);
    match op {
        Op::Get(k) => {
            let p = n.start_get_many(keys(k));
            Box::new(move || Reply::Values(p.wait().collect()))
        }
        Op::GetTtl(k) => {
            let p = n.start_get_many_with_ttl(keys(k));
            Box::new(move || Reply::WithTtl(p.wait()))
        }
        Op::Set(items) => {
            let p = n
                .start_set_many(pos.iter().map(|&i| items[i]))
                .reading(|b, r, n, sizes| {
                    Reply::Stored(commands::set_reply(r, n, sizes, |e| b.redis_err(e)))
                });
            Box::new(move || p.wait())
        }
        Op::Delete(k) => {
            let p = n.start_delete_many(keys(k)).reading(|b, r, _, sizes| {
                Reply::Deleted(commands::del_reply(r, sizes, |e| b.redis_err(e)))
            });
            Box::new(move || p.wait())
        }
        Op::Ttl(k) => Box::new(move || Reply::Ttl(Backend::ttl(n, k))),
        Op::Lease(k, token, ttl) => {
            let p = n.start_lease_many(keys(k), token, ttl);
            Box::new(move || Reply::Granted(p.wait()))
        }
        Op::SetLeased(items, token) => {
            let p = n
                .start_set_many_leased(pos.iter().map(|&i| &items[i]), token)
                .reading(|b, r, n, _| {
                    let each = commands::per_key(r, n, |e| b.redis_err(e), commands::stored);
                    Reply::Stored(Writes {
                        each,
                        voided: Vec::new(),
                    })
                });
            Box::new(move || p.wait())
        }
        Op::Release(k, token) => {
            let p = n
                .start_release_leases(keys(k), token)
                .reading(|b, r, n, _| {
                    Reply::Done(commands::per_key(r, n, |e| b.redis_err(e), |_| ()))
                });
            Box::new(move || p.wait())
        }
        Op::Void(k) => {
            let p = n.start_void_leases(keys(k));
            Box::new(move || Reply::Done(p.wait()))
        }
    }
}

impl Face for NonBlocking {
    type Node = AsyncRedisBackend;
    type Fut<'a, T: Send + 'a> = BoxFuture<'a, T>;

    fn open(h: &HostConfig, t: Timeouts, _: usize, split: Split) -> Result<AsyncRedisBackend> {
        Ok(AsyncRedisBackend::new(h, t)?.with_split(split))
    }

    fn run<'a>(op: Op<'a>, parts: &'a Parts<AsyncRedisBackend>) -> BoxFuture<'a, Vec<Reply>> {
        Box::pin(futures_util::future::join_all(
            parts.iter().map(move |(n, pos)| call(n, op, pos)),
        ))
    }

    fn ping<'a>(nodes: &'a [Arc<AsyncRedisBackend>]) -> BoxFuture<'a, Vec<Result<()>>> {
        Box::pin(futures_util::future::join_all(
            nodes.iter().map(|n| AsyncBackend::ping(&**n)),
        ))
    }

    fn client(node: &AsyncRedisBackend) -> Result<redis::Client> {
        AsyncBackend::client(node, "")
    }

    fn link(node: &AsyncRedisBackend) -> ServerLink {
        node.link()
    }

    fn layout(
        shared: &Shared<AsyncRedisBackend>,
    ) -> BoxFuture<'_, Result<Arc<Layout<AsyncRedisBackend>>>> {
        Box::pin(shared.layout_async())
    }

    fn layout_now(shared: &Shared<AsyncRedisBackend>) -> Result<Arc<Layout<AsyncRedisBackend>>> {
        shared.current().ok_or_else(|| {
            shared.refresh();
            shared.unknown()
        })
    }

    fn wait_newer(
        shared: &Shared<AsyncRedisBackend>,
        seen: u64,
        limit: Duration,
    ) -> BoxFuture<'_, ()> {
        Box::pin(shared.wait_newer_async(seen, limit))
    }
}

/// Sends `node` its part of `op` and awaits the reply.
async fn call(n: &AsyncRedisBackend, op: Op<'_>, pos: &[usize]) -> Reply {
    match op {
        Op::Get(k) => Reply::Values(n.get_many_of(pos.iter().map(|&i| k[i])).await.collect()),
        Op::GetTtl(k) => Reply::WithTtl(n.get_many_with_ttl_of(pos.iter().map(|&i| k[i])).await),
        Op::Set(items) => Reply::Stored(n.set_many_each(pos.iter().map(|&i| items[i])).await),
        Op::Delete(k) => Reply::Deleted(n.delete_many_each(pos.iter().map(|&i| k[i])).await),
        Op::Ttl(k) => Reply::Ttl(AsyncBackend::ttl(n, k).await),
        Op::Lease(k, token, ttl) => {
            Reply::Granted(n.lease_many_of(pos.iter().map(|&i| k[i]), token, ttl).await)
        }
        Op::SetLeased(items, token) => Reply::Stored(Writes {
            each: n
                .set_many_leased_each(pos.iter().map(|&i| &items[i]), token)
                .await,
            voided: Vec::new(),
        }),
        Op::Release(k, token) => Reply::Done(
            n.release_leases_each(pos.iter().map(|&i| k[i]), token)
                .await,
        ),
        Op::Void(k) => Reply::Done(n.void_leases_of(pos.iter().map(|&i| k[i])).await),
    }
}

/// A store on a Redis Cluster or a Sentinel-watched primary, for one face.
pub(crate) struct Routed<F: Face> {
    shared: Arc<Shared<F::Node>>,
}

/// The blocking store ([`Backend`]) on a Redis Cluster or under Sentinel.
pub(crate) type Managed = Routed<Blocking>;
/// The async store ([`AsyncBackend`]) on a Redis Cluster or under Sentinel.
pub(crate) type AsyncManaged = Routed<NonBlocking>;

impl<F: Face> std::fmt::Debug for Routed<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routed")
            .field("on", &self.shared.label())
            .finish_non_exhaustive()
    }
}

/// Folds the keys' outcomes of a write: the first failure is returned,
/// the first of each other server is logged so none goes unseen.
struct Outcome<T> {
    value: T,
    error: Option<Error>,
    /// The servers that failed keys (`None`: none named).
    failed: Vec<Option<String>>,
}

impl<T> Outcome<T> {
    fn new(value: T) -> Self {
        Outcome {
            value,
            error: None,
            failed: Vec::new(),
        }
    }

    fn add<V>(&mut self, r: Result<V>, merge: impl FnOnce(&mut T, V)) {
        let e = match r {
            Ok(v) => return merge(&mut self.value, v),
            Err(e) => e,
        };
        let host = e.host().map(str::to_owned);
        if self.failed.contains(&host) {
            return;
        }
        self.failed.push(host);
        match self.error {
            None => self.error = Some(e),
            Some(_) => tracing::warn!(error = %e, "rc: another primary failed as well"),
        }
    }

    /// Adds the keys at `pos` of `op`'s write `w`; the keys it stored whose
    /// lease deletes were redirected go to `void`.
    fn write<'k, V>(
        &mut self,
        op: Op<'k>,
        pos: &[usize],
        w: Writes<V>,
        void: &mut Vec<&'k str>,
        merge: impl Fn(&mut T, V),
    ) {
        let mut voided = w.voided.into_iter();
        for (&p, r) in pos.iter().zip(w.each) {
            let v = voided.next().unwrap_or(Ok(()));
            match (r, v) {
                (Ok(x), Err(e)) if redirected(&e) => {
                    merge(&mut self.value, x);
                    void.push(op.key(p));
                }
                (Ok(x), v) => {
                    merge(&mut self.value, x);
                    self.add(v, |_, _| ());
                }
                (Err(e), _) => self.add(Err::<(), _>(e), |_, _| ()),
            }
        }
    }

    fn finish(self) -> Result<T> {
        self.error.map_or(Ok(self.value), Err)
    }
}

impl<F: Face> Routed<F> {
    /// A store on `source`'s primaries (no network until the first call).
    pub(crate) fn start(
        source: Source,
        template: HostConfig,
        timeouts: Timeouts,
        pool_size: usize,
    ) -> Result<Self> {
        let shared = Shared::start(source, template, timeouts, move |h, split| {
            F::open(h, timeouts, pool_size, split)
        })?;
        Ok(Routed { shared })
    }

    /// Runs `op` on its keys' primaries, sending again the keys whose
    /// commands meet a redirection once the layout is looked up anew (the
    /// others keep their outcome: a write is not sent twice); hands the
    /// final replies to `done` with their key positions.
    async fn route(&self, op: Op<'_>, mut done: impl FnMut(&[usize], Reply) + Send) {
        let mut todo: Vec<usize> = (0..op.len()).collect();
        // Keys redirected by `ASK`, for the node that asked for them.
        let mut asked: Parts<F::Node> = Vec::new();
        let mut attempt = 0;
        while !todo.is_empty() || !asked.is_empty() {
            let layout = match F::layout(&self.shared).await {
                Ok(l) => l,
                Err(e) => {
                    let pos: Vec<usize> = todo
                        .into_iter()
                        .chain(asked.into_iter().flat_map(|(_, p)| p))
                        .collect();
                    return done(&pos, op.failed(e, pos.len()));
                }
            };
            // Late attempts go key by key: a multi-key command on a slot
            // being migrated fails (`TRYAGAIN`) while its keys are split
            // between both nodes, where single keys are redirected (`ASK`).
            let (mut parts, unserved) = split(&layout, op, &todo, attempt >= 2);
            if !unserved.is_empty() {
                self.shared.refresh();
                let e = Error::HostDown {
                    host: self.shared.label(),
                    last_error: "no primary serves the key's hash slot".into(),
                    retry_in: super::MIN_GAP,
                };
                done(&unserved, op.failed(e, unserved.len()));
            }
            let routed = parts.len();
            parts.append(&mut asked);
            let replies = F::run(op, &parts).await;
            todo.clear();
            for (part, ((_, pos), reply)) in parts.iter().zip(replies).enumerate() {
                let reply = match part < routed {
                    true => reply,
                    false => reply.not_to_keep(),
                };
                // Which keys of the part keep their outcome (all, mostly).
                let mut keep: Option<Vec<bool>> = None;
                let (mut refreshed, first_asked) = (false, asked.len());
                for (i, &p) in pos.iter().enumerate() {
                    let Some(e) = reply.error(i) else { continue };
                    if !refreshed && (redirected(e) || e.is_unavailable()) {
                        self.shared.refresh();
                        refreshed = true;
                    }
                    if attempt < RETRIES && self.requeue(e, p, &mut todo, &mut asked, first_asked) {
                        keep.get_or_insert_with(|| vec![true; pos.len()])[i] = false;
                    }
                }
                let Some(keep) = keep else {
                    done(pos, reply);
                    continue;
                };
                let kept: Vec<usize> = (pos.iter().zip(&keep))
                    .filter_map(|(&p, &k)| k.then_some(p))
                    .collect();
                if !kept.is_empty() {
                    done(&kept, reply.keep(&keep));
                }
            }
            if !todo.is_empty() {
                F::wait_newer(&self.shared, layout.generation, FIRST_WAIT * (1 << attempt)).await;
            }
            attempt += 1;
        }
    }

    /// Queues the key at `p`, whose command failed with `e`, to be sent
    /// again: to the node an `ASK` names (with the part's other keys
    /// asked there, `asked[first..]`), or to its slot's owner after another
    /// redirection. False when `e` is no redirection.
    fn requeue(
        &self,
        e: &Error,
        p: usize,
        todo: &mut Vec<usize>,
        asked: &mut Parts<F::Node>,
        first: usize,
    ) -> bool {
        if let Some(node) = self.ask_target(e) {
            match asked[first..]
                .iter_mut()
                .find(|(n, _)| Arc::ptr_eq(n, &node))
            {
                Some((_, pos)) => pos.push(p),
                None => asked.push((node, vec![p])),
            }
            return true;
        }
        if redirected(e) {
            todo.push(p);
        }
        redirected(e)
    }

    /// The node an `ASK` redirection sends its keys to.
    fn ask_target(&self, e: &Error) -> Option<Arc<F::Node>> {
        let Error::Redis { source, .. } = e else {
            return None;
        };
        match source.code() {
            Some("ASK") => self.shared.asking_node(source.redirect_node()?.0),
            _ => None,
        }
    }

    async fn get_many_impl(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>> {
        let mut out = vec![Ok(None); keys.len()];
        self.route(Op::Get(keys), |pos, reply| {
            if let Reply::Values(values) = reply {
                for (&p, v) in pos.iter().zip(values) {
                    out[p] = v;
                }
            }
        })
        .await;
        out
    }

    async fn get_many_with_ttl_impl(&self, keys: &[&str]) -> Vec<Result<ValueTtl>> {
        let mut out = vec![Ok(None); keys.len()];
        self.route(Op::GetTtl(keys), |pos, reply| {
            if let Reply::WithTtl(values) = reply {
                for (&p, v) in pos.iter().zip(values) {
                    out[p] = v;
                }
            }
        })
        .await;
        out
    }

    /// Tells `near` of this store's primaries, from now on.
    pub(crate) fn attach_near(&self, near: &Arc<crate::near::Near>) {
        self.shared.attach_near(near, F::link);
    }

    async fn lease_many_impl(
        &self,
        keys: &[&str],
        token: &str,
        ttl: Duration,
    ) -> Vec<Result<bool>> {
        let mut out = vec![Ok(false); keys.len()];
        self.route(Op::Lease(keys, token, ttl), |pos, reply| {
            if let Reply::Granted(granted) = reply {
                for (&p, g) in pos.iter().zip(granted) {
                    out[p] = g;
                }
            }
        })
        .await;
        out
    }

    /// A write: true when every key was stored.
    async fn stored(&self, op: Op<'_>) -> Result<bool> {
        let (mut outcome, mut void) = (Outcome::new(true), Vec::new());
        self.route(op, |pos, reply| {
            if let Reply::Stored(w) = reply {
                outcome.write(op, pos, w, &mut void, |all, stored| *all &= stored);
            }
        })
        .await;
        self.void(&void, &mut outcome).await;
        outcome.finish()
    }

    /// How many of `keys` existed: each `DEL`'s count once, whichever
    /// attempt it was.
    async fn delete_many_impl(&self, keys: &[&str]) -> Result<u64> {
        let (mut outcome, mut void) = (Outcome::new(0), Vec::new());
        let op = Op::Delete(keys);
        self.route(op, |pos, reply| {
            if let Reply::Deleted(w) = reply {
                outcome.write(op, pos, w, &mut void, |sum, n| *sum += n);
            }
        })
        .await;
        self.void(&void, &mut outcome).await;
        outcome.finish()
    }

    /// Deletes the leases on `keys`, which a write went through to while
    /// their lease deletes were redirected (see [`Op::Void`]).
    async fn void<T: Send>(&self, keys: &[&str], outcome: &mut Outcome<T>) {
        if keys.is_empty() {
            return;
        }
        self.route(Op::Void(keys), |_, reply| {
            if let Reply::Done(each) = reply {
                for r in each {
                    outcome.add(r, |_, _| ());
                }
            }
        })
        .await;
    }

    async fn release_impl(&self, keys: &[&str], token: &str) -> Result<()> {
        let mut outcome = Outcome::new(());
        self.route(Op::Release(keys, token), |_, reply| {
            if let Reply::Done(each) = reply {
                for r in each {
                    outcome.add(r, |_, _| ());
                }
            }
        })
        .await;
        outcome.finish()
    }

    async fn ttl_impl(&self, key: &str) -> Result<Option<Duration>> {
        let mut out = Ok(None);
        self.route(Op::Ttl(key), |_, reply| {
            if let Reply::Ttl(r) = reply {
                out = r;
            }
        })
        .await;
        out
    }

    async fn ping_impl(&self) -> Result<()> {
        let layout = F::layout(&self.shared).await?;
        let mut outcome = Outcome::new(());
        for r in F::ping(&layout.nodes).await {
            outcome.add(r, |_, _| ());
        }
        outcome.finish()
    }

    fn client_of(&self, key: &str) -> Result<redis::Client> {
        let layout = F::layout_now(&self.shared)?;
        let i = layout.route(key).ok_or_else(|| {
            Error::config(format!(
                "{}: no primary serves {key:?}",
                self.shared.label()
            ))
        })?;
        F::client(&layout.nodes[i])
    }
}

/// Splits the positions `todo` of `op`'s keys by primary (by key when
/// `per_key`), each primary's in hash slot order; the positions of keys no
/// primary serves come apart.
fn split<N>(
    layout: &Layout<N>,
    op: Op<'_>,
    todo: &[usize],
    per_key: bool,
) -> (Parts<N>, Vec<usize>) {
    let mut routed: Vec<(usize, u16, usize)> = Vec::with_capacity(todo.len());
    let mut unserved = Vec::new();
    let single = layout.owner.len() == 1;
    for &p in todo {
        let key = op.key(p);
        match layout.route(key) {
            Some(n) => {
                let slot = if single {
                    0
                } else {
                    crate::commands::slot(key)
                };
                routed.push((n, slot, p));
            }
            None => unserved.push(p),
        }
    }
    if !single {
        routed.sort_by_key(|&(n, slot, _)| (n, slot));
    } else {
        routed.sort_by_key(|&(n, _, _)| n);
    }
    let mut parts: Parts<N> = Vec::new();
    for (n, _, p) in routed {
        match parts.last_mut() {
            Some((node, pos)) if !per_key && Arc::ptr_eq(node, &layout.nodes[n]) => pos.push(p),
            _ => parts.push((Arc::clone(&layout.nodes[n]), vec![p])),
        }
    }
    (parts, unserved)
}

impl Backend for Managed {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        now(self.get_many_impl(&[key])).pop().unwrap_or(Ok(None))
    }

    fn get_many(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>> {
        now(self.get_many_impl(keys))
    }

    fn set(&self, key: &str, value: &[u8], expire: Duration) -> Result<bool> {
        now(self.stored(Op::Set(&[(key, value, expire)])))
    }

    fn set_many(&self, items: &[SetItem]) -> Result<bool> {
        let items: Vec<_> = items.iter().map(crate::commands::item).collect();
        now(self.stored(Op::Set(&items)))
    }

    fn delete(&self, key: &str) -> Result<bool> {
        Ok(now(self.delete_many_impl(&[key]))? > 0)
    }

    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        now(self.delete_many_impl(keys))
    }

    fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        now(self.ttl_impl(key))
    }

    fn ping(&self) -> Result<()> {
        now(self.ping_impl())
    }

    fn client(&self, key: &str) -> Result<redis::Client> {
        self.client_of(key)
    }

    fn lease_many(&self, keys: &[&str], token: &str, ttl: Duration) -> Vec<Result<bool>> {
        now(self.lease_many_impl(keys, token, ttl))
    }

    fn set_many_leased(&self, items: &[SetItem], token: &str) -> Result<bool> {
        now(self.stored(Op::SetLeased(items, token)))
    }

    fn release_leases(&self, keys: &[&str], token: &str) -> Result<()> {
        now(self.release_impl(keys, token))
    }

    fn get_many_with_ttl(&self, keys: &[&str]) -> Vec<Result<ValueTtl>> {
        now(self.get_many_with_ttl_impl(keys))
    }

    fn server_of(&self, key: &str) -> usize {
        self.shared.server_of(key)
    }
}

impl AsyncBackend for AsyncManaged {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move { self.get_many_impl(&[key]).await.pop().unwrap_or(Ok(None)) })
    }

    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Vec<Result<Option<Vec<u8>>>>> {
        Box::pin(self.get_many_impl(keys))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.stored(Op::Set(&[(key, value, expire)])).await })
    }

    fn set_many<'a>(&'a self, items: &'a [SetItem]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let items: Vec<_> = items.iter().map(crate::commands::item).collect();
            self.stored(Op::Set(&items)).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { Ok(self.delete_many_impl(&[key]).await? > 0) })
    }

    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.delete_many_impl(keys))
    }

    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(self.ttl_impl(key))
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.ping_impl())
    }

    fn client(&self, key: &str) -> Result<redis::Client> {
        self.client_of(key)
    }

    fn lease_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Vec<Result<bool>>> {
        Box::pin(self.lease_many_impl(keys, token, ttl))
    }

    fn set_many_leased<'a>(
        &'a self,
        items: &'a [SetItem],
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.stored(Op::SetLeased(items, token)))
    }

    fn release_leases<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.release_impl(keys, token))
    }

    fn get_many_with_ttl<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Vec<Result<ValueTtl>>> {
        Box::pin(self.get_many_with_ttl_impl(keys))
    }

    fn server_of(&self, key: &str) -> usize {
        self.shared.server_of(key)
    }
}
