//! [`ClusterBackend`] and [`AsyncClusterBackend`]: one byte store over many servers.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use rc_core::{
    AsyncBackend, AsyncRedisBackend, Backend, BoxFuture, Error, Pending, RedisBackend, Result,
    ServerLink, SetItem, ValueTtl,
};

use crate::router::Router;

/// What the sync and async cluster backends share: the hosts, in name order,
/// and the router that picks one of them per key.
pub(crate) struct Hosts<B> {
    /// Host names, sorted.
    names: Vec<String>,
    /// `name (address)`, as errors name a host.
    labels: Vec<String>,
    backends: Vec<B>,
    index: HashMap<String, usize>,
    router: Box<dyn Router>,
    max_concurrency: usize,
}

/// The keys (or items) of one multi-key call that go to one host.
struct Group {
    host: usize,
    /// Positions in the caller's slice, in the caller's order.
    positions: Vec<usize>,
}

impl<B> Hosts<B> {
    pub(crate) fn new(
        hosts: Vec<(String, String, B)>,
        router: Box<dyn Router>,
        max_concurrency: usize,
    ) -> Self {
        let mut names = Vec::with_capacity(hosts.len());
        let mut labels = Vec::with_capacity(hosts.len());
        let mut backends = Vec::with_capacity(hosts.len());
        for (name, address, backend) in hosts {
            labels.push(format!("{name} ({address})"));
            names.push(name);
            backends.push(backend);
        }
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Hosts {
            names,
            labels,
            backends,
            index,
            router,
            max_concurrency,
        }
    }

    /// Index of the host that holds `key`.
    fn route(&self, key: &str) -> Result<usize> {
        match self.router.host_index(key) {
            Some(i) if i < self.names.len() => Ok(i),
            _ => self.route_by_name(key),
        }
    }

    /// The host the router names for `key`, looked up by name (a router
    /// without [`Router::host_index`]).
    #[cold]
    fn route_by_name(&self, key: &str) -> Result<usize> {
        let name = self.router.host_for_key(key);
        self.index.get(name).copied().ok_or_else(|| {
            Error::config(format!(
                "the cluster's router sent key {key:?} to host {name:?}, which is not one of its hosts {:?}",
                self.names
            ))
        })
    }

    fn host_for_key(&self, key: &str) -> Option<&str> {
        self.route(key).ok().map(|i| self.names[i].as_str())
    }

    /// Splits `keys` by host (groups in host-name order); keys the router
    /// sends nowhere come back as errors with their positions.
    fn group(&self, keys: &[&str]) -> (Vec<Group>, Vec<(usize, Error)>) {
        let mut hosts = Vec::with_capacity(keys.len());
        self.router.host_indexes(keys, &mut hosts);
        let mut unrouted = Vec::new();
        // Sized for an even spread and a little more: growing 4 vectors to
        // 250 positions cost 10 instructions a key of a 1000-key `get_many`
        // (callgrind).
        let room = keys.len() / self.names.len().max(1) * 5 / 4 + 8;
        let mut per_host: Vec<Vec<usize>> = (0..self.names.len())
            .map(|_| Vec::with_capacity(room))
            .collect();
        for (pos, host) in hosts.into_iter().enumerate() {
            let routed = match host {
                Some(h) if h < self.names.len() => Ok(h),
                _ => self.route_by_name(keys[pos]),
            };
            match routed {
                Ok(h) => per_host[h].push(pos),
                Err(e) => unrouted.push((pos, e)),
            }
        }
        let groups = per_host
            .into_iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(host, positions)| Group { host, positions })
            .collect();
        (groups, unrouted)
    }

    /// [`group`](Self::group)s `keys`, with a place for each key's outcome:
    /// the error of a key the router sends nowhere, else `T`'s default.
    fn split<T: Default>(&self, keys: &[&str]) -> (Vec<Group>, Vec<Result<T>>) {
        let (groups, unrouted) = self.group(keys);
        // Not `vec![Ok(None); n]`: cloning the 64-byte `Result` cost 29
        // instructions a key of a 1000-key `get_many` (callgrind).
        let mut out: Vec<Result<T>> = Vec::with_capacity(keys.len());
        out.resize_with(keys.len(), || Ok(T::default()));
        for (pos, e) in unrouted {
            out[pos] = Err(e);
        }
        (groups, out)
    }

    fn relabel(&self, host: usize, e: Error) -> Error {
        relabel(e, &self.labels[host])
    }

    /// Puts each key's outcome of one host's reply (`MGET`, leases) at its place in `out`.
    fn place<T>(
        &self,
        g: &Group,
        results: impl IntoIterator<Item = Result<T>>,
        out: &mut [Result<T>],
    ) {
        for (&pos, r) in g.positions.iter().zip(results) {
            out[pos] = r.map_err(|e| self.relabel(g.host, e));
        }
    }

    /// The host of `key` and its backend.
    fn backend_for(&self, key: &str) -> Result<(usize, &B)> {
        let h = self.route(key)?;
        Ok((h, &self.backends[h]))
    }

    /// The hosts' links for the near cache, named as errors name them.
    fn links(&self, link: impl Fn(&B) -> ServerLink) -> Vec<ServerLink> {
        self.backends
            .iter()
            .zip(&self.labels)
            .map(|(b, label)| ServerLink {
                address: label.clone(),
                ..link(b)
            })
            .collect()
    }

    /// The host index of `key` for the near cache; a key the router sends
    /// nowhere fails its reads, so no copy of it is ever kept.
    fn server_of(&self, key: &str) -> usize {
        self.route(key).unwrap_or(0)
    }

    fn debug(&self, kind: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(kind)
            .field("hosts", &self.labels)
            .field("max_concurrency", &self.max_concurrency)
            .finish_non_exhaustive()
    }
}

/// A [`SetItem`] as the per-host writes take it.
/// The keys of `items`, for [`Hosts::group`].
fn item_keys(items: &[SetItem]) -> Vec<&str> {
    items.iter().map(|(k, _, _)| k.as_str()).collect()
}

fn parts(item: &SetItem) -> (&str, &[u8], Duration) {
    (&item.0, &item.1, item.2)
}

/// Puts the cluster's name for a host in front of the address an error names.
fn relabel(e: Error, label: &str) -> Error {
    match e {
        Error::Redis { source, .. } => Error::Redis {
            host: label.to_owned(),
            source,
        },
        Error::Timeout { timeout, .. } => Error::Timeout {
            host: label.to_owned(),
            timeout,
        },
        Error::HostDown {
            last_error,
            retry_in,
            ..
        } => Error::HostDown {
            host: label.to_owned(),
            last_error,
            retry_in,
        },
        other => other,
    }
}

/// Folds the per-host outcomes of a write: the first failure (in host-name
/// order) is returned, later ones are logged so none goes unseen.
struct Outcome<T> {
    value: T,
    error: Option<Error>,
}

impl<T> Outcome<T> {
    /// Starts from `value`, failed already for the keys no host took.
    fn new(value: T, unrouted: Vec<(usize, Error)>) -> Self {
        let mut outcome = Outcome { value, error: None };
        for (_, e) in unrouted {
            outcome.fail(e);
        }
        outcome
    }

    fn fail(&mut self, e: Error) {
        match &self.error {
            None => self.error = Some(e),
            Some(_) => tracing::warn!(error = %e, "rc: cluster host failed as well"),
        }
    }

    /// Folds one host's outcome in with `merge`.
    fn add<V>(&mut self, reply: Result<V>, merge: impl FnOnce(&mut T, V)) {
        match reply {
            Ok(v) => merge(&mut self.value, v),
            Err(e) => self.fail(e),
        }
    }

    fn finish(self) -> Result<T> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.value),
        }
    }
}

/// A blocking [`Backend`] that spreads keys over many Redis servers.
///
/// Each host has its own [`RedisBackend`] (connection pool, timeouts and
/// down/up backoff). A single-key call goes to the host the router picks. A
/// multi-key call groups its keys by host and talks to the hosts at once: it
/// writes the command to up to `max_concurrency` hosts, then reads their
/// replies, then goes on with the next hosts. No thread is spawned.
///
/// Failures stay with their host: [`get_many`](Backend::get_many) fails only
/// the keys of a host that failed; [`set_many`](Backend::set_many) and
/// [`delete_many`](Backend::delete_many) try every host and then return the
/// first failure. Errors name the host as `name (address)`, e.g.
/// `cache02 (127.0.0.1:6380/0)`.
///
/// Usually built and wrapped in a [`Cache`](rc_core::Cache) by
/// [`ClusterBuilder::build`](crate::ClusterBuilder::build); use
/// [`ClusterBuilder::build_backend`](crate::ClusterBuilder::build_backend) to
/// get the bare byte store.
///
/// ```
/// use rc::{CacheCluster, HostConfig};
/// let backend = CacheCluster::builder()
///     .host("cache01", HostConfig::new().host("redis-host01"))
///     .host("cache02", HostConfig::new().host("redis-host02"))
///     .build_backend()?;
/// assert_eq!(backend.host_names().collect::<Vec<_>>(), ["cache01", "cache02"]);
/// assert_eq!(backend.host_for_key("a"), Some("cache02"));
/// # Ok::<(), rc::Error>(())
/// ```
pub struct ClusterBackend {
    hosts: Hosts<RedisBackend>,
}

impl std::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.hosts.debug("ClusterBackend", f)
    }
}

impl ClusterBackend {
    pub(crate) fn new(hosts: Hosts<RedisBackend>) -> Self {
        ClusterBackend { hosts }
    }

    /// The host that holds `key` (`None` when the router names an unknown host).
    pub fn host_for_key(&self, key: &str) -> Option<&str> {
        self.hosts.host_for_key(key)
    }

    /// The host names, sorted.
    pub fn host_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.hosts.names.iter().map(String::as_str)
    }

    /// The single-server backend of host `name`.
    pub fn host_backend(&self, name: &str) -> Option<&RedisBackend> {
        self.hosts.index.get(name).map(|&i| &self.hosts.backends[i])
    }

    /// Starts one command per group, at most `max_concurrency` hosts at a
    /// time, and hands each group's outcome to `done`.
    fn fan_out<'s, T>(
        &'s self,
        groups: &[Group],
        start: impl Fn(&'s RedisBackend, &Group) -> Pending<'s, T>,
        mut done: impl FnMut(&Group, T),
    ) {
        for window in groups.chunks(self.hosts.max_concurrency) {
            // Write to every host of the window first, then read: the servers work in parallel.
            let pending: Vec<_> = window
                .iter()
                .map(|g| start(&self.hosts.backends[g.host], g))
                .collect();
            for (g, p) in window.iter().zip(pending) {
                done(g, p.wait());
            }
        }
    }
}

impl Backend for ClusterBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (h, b) = self.hosts.backend_for(key)?;
        b.get(key).map_err(|e| self.hosts.relabel(h, e))
    }

    fn get_many(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        out.resize_with(keys.len(), || Ok(None));
        self.get_many_each(keys, &mut |pos, r| out[pos] = r);
        out
    }

    fn get_many_each(&self, keys: &[&str], each: &mut dyn FnMut(usize, Result<Option<Vec<u8>>>)) {
        let (groups, unrouted) = self.hosts.group(keys);
        for (pos, e) in unrouted {
            each(pos, Err(e));
        }
        self.fan_out(
            &groups,
            |b, g| b.start_get_many(g.positions.iter().map(|&p| keys[p])),
            |g, replies| {
                let positions = g.positions.iter().copied();
                replies.hand_out(positions, |e| self.hosts.relabel(g.host, e), &mut *each)
            },
        );
    }

    fn get_many_with_ttl(&self, keys: &[&str]) -> Vec<Result<ValueTtl>> {
        let (groups, mut out) = self.hosts.split(keys);
        self.fan_out(
            &groups,
            |b, g| b.start_get_many_with_ttl(g.positions.iter().map(|&p| keys[p])),
            |g, results| self.hosts.place(g, results, &mut out),
        );
        out
    }

    fn servers(&self) -> Vec<ServerLink> {
        self.hosts.links(RedisBackend::link)
    }

    fn server_of(&self, key: &str) -> usize {
        self.hosts.server_of(key)
    }

    fn set(&self, key: &str, value: &[u8], expire: Duration) -> Result<bool> {
        let (h, b) = self.hosts.backend_for(key)?;
        b.set(key, value, expire)
            .map_err(|e| self.hosts.relabel(h, e))
    }

    fn set_many(&self, items: &[SetItem]) -> Result<bool> {
        let (groups, unrouted) = self.hosts.group(&item_keys(items));
        let mut outcome = Outcome::new(true, unrouted);
        self.fan_out(
            &groups,
            |b, g| b.start_set_many(g.positions.iter().map(|&p| parts(&items[p]))),
            |g, reply| {
                outcome.add(reply.map_err(|e| self.hosts.relabel(g.host, e)), |a, b| {
                    *a &= b
                })
            },
        );
        outcome.finish()
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let (h, b) = self.hosts.backend_for(key)?;
        b.delete(key).map_err(|e| self.hosts.relabel(h, e))
    }

    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let (groups, unrouted) = self.hosts.group(keys);
        let mut outcome = Outcome::new(0, unrouted);
        self.fan_out(
            &groups,
            |b, g| b.start_delete_many(g.positions.iter().map(|&p| keys[p])),
            |g, reply| {
                outcome.add(reply.map_err(|e| self.hosts.relabel(g.host, e)), |a, b| {
                    *a += b
                })
            },
        );
        outcome.finish()
    }

    fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let (h, b) = self.hosts.backend_for(key)?;
        b.ttl(key).map_err(|e| self.hosts.relabel(h, e))
    }

    fn ping(&self) -> Result<()> {
        let mut outcome = Outcome::new((), Vec::new());
        for (h, b) in self.hosts.backends.iter().enumerate() {
            outcome.add(b.ping().map_err(|e| self.hosts.relabel(h, e)), |_, _| ());
        }
        outcome.finish()
    }

    fn client(&self, key: &str) -> Result<redis::Client> {
        Backend::client(self.hosts.backend_for(key)?.1, key)
    }

    fn lease_many(&self, keys: &[&str], token: &str, ttl: Duration) -> Vec<Result<bool>> {
        let (groups, mut out) = self.hosts.split(keys);
        self.fan_out(
            &groups,
            |b, g| b.start_lease_many(g.positions.iter().map(|&p| keys[p]), token, ttl),
            |g, results| self.hosts.place(g, results, &mut out),
        );
        out
    }

    fn release_leases(&self, keys: &[&str], token: &str) -> Result<()> {
        let (groups, unrouted) = self.hosts.group(keys);
        let mut outcome = Outcome::new((), unrouted);
        self.fan_out(
            &groups,
            |b, g| b.start_release_leases(g.positions.iter().map(|&p| keys[p]), token),
            |g, reply| outcome.add(reply.map_err(|e| self.hosts.relabel(g.host, e)), |_, _| ()),
        );
        outcome.finish()
    }

    fn set_many_leased(&self, items: &[SetItem], token: &str) -> Result<bool> {
        let (groups, unrouted) = self.hosts.group(&item_keys(items));
        let mut outcome = Outcome::new(true, unrouted);
        self.fan_out(
            &groups,
            |b, g| b.start_set_many_leased(g.positions.iter().map(|&p| &items[p]), token),
            |g, reply| {
                outcome.add(reply.map_err(|e| self.hosts.relabel(g.host, e)), |a, b| {
                    *a &= b
                })
            },
        );
        outcome.finish()
    }
}

/// The async twin of [`ClusterBackend`]: an [`AsyncBackend`] over many servers.
///
/// Each host has its own [`AsyncRedisBackend`] (one multiplexed connection).
/// A multi-key call sends one command per host and awaits them concurrently,
/// at most `max_concurrency` at a time, within the calling task. Results and
/// errors behave as for [`ClusterBackend`].
///
/// ```
/// use rc::{CacheCluster, ConsistentHashRouter, HostConfig};
/// let backend = CacheCluster::builder()
///     .host("cache01", HostConfig::new().host("redis-host01"))
///     .host("cache02", HostConfig::new().host("redis-host02"))
///     .router(ConsistentHashRouter::new)
///     .build_async_backend()?;
/// assert_eq!(backend.host_for_key("a"), Some("cache01"));
/// # Ok::<(), rc::Error>(())
/// ```
pub struct AsyncClusterBackend {
    hosts: Hosts<AsyncRedisBackend>,
}

impl std::fmt::Debug for AsyncClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.hosts.debug("AsyncClusterBackend", f)
    }
}

impl AsyncClusterBackend {
    pub(crate) fn new(hosts: Hosts<AsyncRedisBackend>) -> Self {
        AsyncClusterBackend { hosts }
    }

    /// The host that holds `key` (`None` when the router names an unknown host).
    pub fn host_for_key(&self, key: &str) -> Option<&str> {
        self.hosts.host_for_key(key)
    }

    /// The host names, sorted.
    pub fn host_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.hosts.names.iter().map(String::as_str)
    }

    /// The single-server backend of host `name`.
    pub fn host_backend(&self, name: &str) -> Option<&AsyncRedisBackend> {
        self.hosts.index.get(name).map(|&i| &self.hosts.backends[i])
    }

    /// Runs `call` for every group, `max_concurrency` at a time, and hands
    /// each group's outcome to `done` as it arrives.
    async fn fan_out<'g, T, F, Fut>(
        &self,
        groups: &'g [Group],
        call: F,
        mut done: impl FnMut(&'g Group, T),
    ) where
        F: Fn(&'g Group) -> Fut,
        Fut: Future<Output = T>,
    {
        // Collected first: a lazy `map` closure held across the awaits below
        // would make the future fail the `Send` check of `BoxFuture`.
        let calls: Vec<_> = groups
            .iter()
            .map(|g| {
                let fut = call(g);
                async move { (g, fut.await) }
            })
            .collect();
        let mut replies =
            futures_util::stream::iter(calls).buffer_unordered(self.hosts.max_concurrency);
        while let Some((g, reply)) = replies.next().await {
            done(g, reply);
        }
    }

    async fn get_many_impl(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>> {
        let (groups, mut out) = self.hosts.split(keys);
        let hosts = &self.hosts.backends;
        self.fan_out(
            &groups,
            |g| hosts[g.host].get_many_of(g.positions.iter().map(|&p| keys[p])),
            |g, results| self.hosts.place(g, results, &mut out),
        )
        .await;
        out
    }

    async fn get_many_with_ttl_impl(&self, keys: &[&str]) -> Vec<Result<ValueTtl>> {
        let (groups, mut out) = self.hosts.split(keys);
        let hosts = &self.hosts.backends;
        self.fan_out(
            &groups,
            |g| hosts[g.host].get_many_with_ttl_of(g.positions.iter().map(|&p| keys[p])),
            |g, results| self.hosts.place(g, results, &mut out),
        )
        .await;
        out
    }

    async fn set_many_impl(&self, items: &[SetItem]) -> Result<bool> {
        let (groups, unrouted) = self.hosts.group(&item_keys(items));
        let mut outcome = Outcome::new(true, unrouted);
        let hosts = &self.hosts.backends;
        self.fan_out(
            &groups,
            |g| hosts[g.host].set_many_of(g.positions.iter().map(|&p| parts(&items[p]))),
            |g, reply| {
                outcome.add(reply.map_err(|e| self.hosts.relabel(g.host, e)), |a, b| {
                    *a &= b
                })
            },
        )
        .await;
        outcome.finish()
    }

    async fn delete_many_impl(&self, keys: &[&str]) -> Result<u64> {
        let (groups, unrouted) = self.hosts.group(keys);
        let mut outcome = Outcome::new(0, unrouted);
        let hosts = &self.hosts.backends;
        self.fan_out(
            &groups,
            |g| hosts[g.host].delete_many_of(g.positions.iter().map(|&p| keys[p])),
            |g, reply| {
                outcome.add(reply.map_err(|e| self.hosts.relabel(g.host, e)), |a, b| {
                    *a += b
                })
            },
        )
        .await;
        outcome.finish()
    }

    async fn lease_many_impl(
        &self,
        keys: &[&str],
        token: &str,
        ttl: Duration,
    ) -> Vec<Result<bool>> {
        let (groups, mut out) = self.hosts.split(keys);
        let hosts = &self.hosts.backends;
        self.fan_out(
            &groups,
            |g| hosts[g.host].lease_many_of(g.positions.iter().map(|&p| keys[p]), token, ttl),
            |g, results| self.hosts.place(g, results, &mut out),
        )
        .await;
        out
    }

    async fn release_leases_impl(&self, keys: &[&str], token: &str) -> Result<()> {
        let (groups, unrouted) = self.hosts.group(keys);
        let mut outcome = Outcome::new((), unrouted);
        let hosts = &self.hosts.backends;
        self.fan_out(
            &groups,
            |g| hosts[g.host].release_leases_of(g.positions.iter().map(|&p| keys[p]), token),
            |g, reply| outcome.add(reply.map_err(|e| self.hosts.relabel(g.host, e)), |_, _| ()),
        )
        .await;
        outcome.finish()
    }

    async fn set_many_leased_impl(&self, items: &[SetItem], token: &str) -> Result<bool> {
        let (groups, unrouted) = self.hosts.group(&item_keys(items));
        let mut outcome = Outcome::new(true, unrouted);
        let hosts = &self.hosts.backends;
        self.fan_out(
            &groups,
            |g| hosts[g.host].set_many_leased_of(g.positions.iter().map(|&p| &items[p]), token),
            |g, reply| {
                outcome.add(reply.map_err(|e| self.hosts.relabel(g.host, e)), |a, b| {
                    *a &= b
                })
            },
        )
        .await;
        outcome.finish()
    }

    async fn ping_impl(&self) -> Result<()> {
        let mut outcome = Outcome::new((), Vec::new());
        for (h, b) in self.hosts.backends.iter().enumerate() {
            outcome.add(
                b.ping().await.map_err(|e| self.hosts.relabel(h, e)),
                |_, _| (),
            );
        }
        outcome.finish()
    }
}

impl AsyncBackend for AsyncClusterBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let (h, b) = self.hosts.backend_for(key)?;
            b.get(key).await.map_err(|e| self.hosts.relabel(h, e))
        })
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
        Box::pin(async move {
            let (h, b) = self.hosts.backend_for(key)?;
            b.set(key, value, expire)
                .await
                .map_err(|e| self.hosts.relabel(h, e))
        })
    }

    fn set_many<'a>(&'a self, items: &'a [SetItem]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.set_many_impl(items))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let (h, b) = self.hosts.backend_for(key)?;
            b.delete(key).await.map_err(|e| self.hosts.relabel(h, e))
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.delete_many_impl(keys))
    }

    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move {
            let (h, b) = self.hosts.backend_for(key)?;
            b.ttl(key).await.map_err(|e| self.hosts.relabel(h, e))
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.ping_impl())
    }

    fn client(&self, key: &str) -> Result<redis::Client> {
        AsyncBackend::client(self.hosts.backend_for(key)?.1, key)
    }

    fn get_many_with_ttl<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Vec<Result<ValueTtl>>> {
        Box::pin(self.get_many_with_ttl_impl(keys))
    }

    fn servers(&self) -> Vec<ServerLink> {
        self.hosts.links(AsyncRedisBackend::link)
    }

    fn server_of(&self, key: &str) -> usize {
        self.hosts.server_of(key)
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
        Box::pin(self.set_many_leased_impl(items, token))
    }

    fn release_leases<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.release_leases_impl(keys, token))
    }
}
