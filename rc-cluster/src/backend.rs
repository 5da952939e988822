//! [`ClusterBackend`] and [`AsyncClusterBackend`]: one byte store over many servers.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use rc_core::{
    AsyncBackend, AsyncRedisBackend, Backend, BoxFuture, Error, RedisBackend, Result, SetItem,
    protocol,
};
use redis::{Cmd, Value};

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
    response_timeout: Duration,
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
        response_timeout: Duration,
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
            response_timeout,
        }
    }

    /// Index of the host that holds `key`.
    fn route(&self, key: &str) -> Result<usize> {
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
    fn group<'k>(&self, keys: impl Iterator<Item = &'k str>) -> (Vec<Group>, Vec<(usize, Error)>) {
        let mut per_host: Vec<Vec<usize>> = Vec::new();
        per_host.resize_with(self.backends.len(), Vec::new);
        let mut unrouted = Vec::new();
        for (pos, key) in keys.enumerate() {
            match self.route(key) {
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

    fn relabel(&self, host: usize, e: Error) -> Error {
        relabel(e, &self.labels[host])
    }

    fn reply_error(&self, host: usize) -> impl Fn(redis::RedisError) -> Error + '_ {
        move |e| Error::redis(&self.labels[host], e, self.response_timeout)
    }

    fn debug(&self, kind: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(kind)
            .field("hosts", &self.labels)
            .field("max_concurrency", &self.max_concurrency)
            .finish_non_exhaustive()
    }
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
    fn new(value: T) -> Self {
        Outcome { value, error: None }
    }

    fn fail(&mut self, e: Error) {
        match &self.error {
            None => self.error = Some(e),
            Some(_) => tracing::warn!(error = %e, "rc: cluster host failed as well"),
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
/// use rc_cluster::{CacheCluster, HostConfig};
/// let backend = CacheCluster::builder()
///     .host("cache01", HostConfig::new().host("redis-host01"))
///     .host("cache02", HostConfig::new().host("redis-host02"))
///     .build_backend()?;
/// assert_eq!(backend.host_names().collect::<Vec<_>>(), ["cache01", "cache02"]);
/// assert_eq!(backend.host_for_key("a"), Some("cache02"));
/// # Ok::<(), rc_cluster::Error>(())
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

    /// Sends one command per group, at most `max_concurrency` hosts at a
    /// time, and hands each group's replies to `done`.
    fn fan_out(
        &self,
        groups: &[Group],
        pack: impl Fn(&Group) -> (Vec<u8>, usize),
        mut done: impl FnMut(&Group, Result<Vec<Value>>),
    ) {
        for window in groups.chunks(self.hosts.max_concurrency) {
            let packed: Vec<(Vec<u8>, usize)> = window.iter().map(&pack).collect();
            // Write to every host of the window first, then read: the servers work in parallel.
            let flights: Vec<_> = window
                .iter()
                .zip(&packed)
                .map(|(g, (cmd, replies))| self.hosts.backends[g.host].send(cmd, *replies))
                .collect();
            for (g, flight) in window.iter().zip(flights) {
                done(g, flight.recv().map_err(|e| self.hosts.relabel(g.host, e)));
            }
        }
    }
}

impl Backend for ClusterBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let h = self.hosts.route(key)?;
        self.hosts.backends[h]
            .get(key)
            .map_err(|e| self.hosts.relabel(h, e))
    }

    fn get_many(&self, keys: &[String]) -> Vec<Result<Option<Vec<u8>>>> {
        let (groups, unrouted) = self.hosts.group(keys.iter().map(String::as_str));
        let mut out = vec![Ok(None); keys.len()];
        for (pos, e) in unrouted {
            out[pos] = Err(e);
        }
        let pack = |g: &Group| {
            let ks: Vec<&str> = g.positions.iter().map(|&p| keys[p].as_str()).collect();
            (protocol::mget(&ks), 1)
        };
        self.fan_out(&groups, pack, |g, reply| {
            let results =
                protocol::mget_reply(reply, g.positions.len(), self.hosts.reply_error(g.host));
            for (&pos, r) in g.positions.iter().zip(results) {
                out[pos] = r;
            }
        });
        out
    }

    fn set(&self, key: &str, value: &[u8], expire: Duration) -> Result<bool> {
        let h = self.hosts.route(key)?;
        self.hosts.backends[h]
            .set(key, value, expire)
            .map_err(|e| self.hosts.relabel(h, e))
    }

    fn set_many(&self, items: &[SetItem]) -> Result<bool> {
        let (groups, unrouted) = self.hosts.group(items.iter().map(|(k, _, _)| k.as_str()));
        let mut outcome = Outcome::new(true);
        for (_, e) in unrouted {
            outcome.fail(e);
        }
        let pack = |g: &Group| {
            let its = g.positions.iter().map(|&p| {
                let (k, v, e) = &items[p];
                (k.as_str(), v.as_slice(), *e)
            });
            (protocol::set_many(its), g.positions.len())
        };
        self.fan_out(&groups, pack, |_, reply| match reply {
            Ok(v) => outcome.value &= protocol::all_ok(&v),
            Err(e) => outcome.fail(e),
        });
        outcome.finish()
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let h = self.hosts.route(key)?;
        self.hosts.backends[h]
            .delete(key)
            .map_err(|e| self.hosts.relabel(h, e))
    }

    fn delete_many(&self, keys: &[String]) -> Result<u64> {
        let (groups, unrouted) = self.hosts.group(keys.iter().map(String::as_str));
        let mut outcome = Outcome::new(0u64);
        for (_, e) in unrouted {
            outcome.fail(e);
        }
        let pack = |g: &Group| {
            let ks: Vec<&str> = g.positions.iter().map(|&p| keys[p].as_str()).collect();
            (protocol::del(&ks), 1)
        };
        self.fan_out(&groups, pack, |_, reply| match reply {
            Ok(v) => outcome.value += protocol::count(&v),
            Err(e) => outcome.fail(e),
        });
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
/// use rc_cluster::{CacheCluster, ConsistentHashRouter, HostConfig};
/// let backend = CacheCluster::builder()
///     .host("cache01", HostConfig::new().host("redis-host01"))
///     .host("cache02", HostConfig::new().host("redis-host02"))
///     .router(ConsistentHashRouter::new)
///     .build_async_backend()?;
/// assert_eq!(backend.host_for_key("a"), Some("cache01"));
/// # Ok::<(), rc_cluster::Error>(())
/// ```
pub struct AsyncClusterBackend {
    hosts: Hosts<AsyncRedisBackend>,
}

impl std::fmt::Debug for AsyncClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.hosts.debug("AsyncClusterBackend", f)
    }
}

fn keys_cmd<'k>(name: &str, keys: impl Iterator<Item = &'k str>) -> Cmd {
    let mut cmd = redis::cmd(name);
    for k in keys {
        cmd.arg(k);
    }
    cmd
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

    async fn get_many_impl(&self, keys: &[String]) -> Vec<Result<Option<Vec<u8>>>> {
        let (groups, unrouted) = self.hosts.group(keys.iter().map(String::as_str));
        let mut out = vec![Ok(None); keys.len()];
        for (pos, e) in unrouted {
            out[pos] = Err(e);
        }
        let call = |g: &Group| {
            let cmd = keys_cmd("MGET", g.positions.iter().map(|&p| keys[p].as_str()));
            let backend = &self.hosts.backends[g.host];
            async move { backend.query(&cmd).await.map(|v| vec![v]) }
        };
        self.fan_out(&groups, call, |g, reply| {
            let reply = reply.map_err(|e| self.hosts.relabel(g.host, e));
            let results =
                protocol::mget_reply(reply, g.positions.len(), self.hosts.reply_error(g.host));
            for (&pos, r) in g.positions.iter().zip(results) {
                out[pos] = r;
            }
        })
        .await;
        out
    }

    async fn set_many_impl(&self, items: &[SetItem]) -> Result<bool> {
        let (groups, unrouted) = self.hosts.group(items.iter().map(|(k, _, _)| k.as_str()));
        let mut outcome = Outcome::new(true);
        for (_, e) in unrouted {
            outcome.fail(e);
        }
        let call = |g: &Group| {
            let mut pipe = redis::pipe();
            for &p in &g.positions {
                let (k, v, e) = &items[p];
                pipe.add_command(rc_core::protocol::set_cmd(k, v, *e));
            }
            let (backend, n) = (&self.hosts.backends[g.host], g.positions.len());
            async move { backend.query_pipeline(&pipe, n).await }
        };
        self.fan_out(&groups, call, |g, reply| match reply {
            Ok(v) => outcome.value &= protocol::all_ok(&v),
            Err(e) => outcome.fail(self.hosts.relabel(g.host, e)),
        })
        .await;
        outcome.finish()
    }

    async fn delete_many_impl(&self, keys: &[String]) -> Result<u64> {
        let (groups, unrouted) = self.hosts.group(keys.iter().map(String::as_str));
        let mut outcome = Outcome::new(0u64);
        for (_, e) in unrouted {
            outcome.fail(e);
        }
        let call = |g: &Group| {
            let cmd = keys_cmd("DEL", g.positions.iter().map(|&p| keys[p].as_str()));
            let backend = &self.hosts.backends[g.host];
            async move { backend.query(&cmd).await }
        };
        self.fan_out(&groups, call, |g, reply| match reply {
            Ok(v) => outcome.value += protocol::count(&[v]),
            Err(e) => outcome.fail(self.hosts.relabel(g.host, e)),
        })
        .await;
        outcome.finish()
    }
}

impl AsyncBackend for AsyncClusterBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let h = self.hosts.route(key)?;
            self.hosts.backends[h]
                .get(key)
                .await
                .map_err(|e| self.hosts.relabel(h, e))
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Vec<Result<Option<Vec<u8>>>>> {
        Box::pin(self.get_many_impl(keys))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let h = self.hosts.route(key)?;
            self.hosts.backends[h]
                .set(key, value, expire)
                .await
                .map_err(|e| self.hosts.relabel(h, e))
        })
    }

    fn set_many<'a>(&'a self, items: &'a [SetItem]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.set_many_impl(items))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let h = self.hosts.route(key)?;
            self.hosts.backends[h]
                .delete(key)
                .await
                .map_err(|e| self.hosts.relabel(h, e))
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.delete_many_impl(keys))
    }
}
