//! [`CacheBuilder`] (a cache on one server) and [`CacheOptions`] (what every
//! cache has, whatever stores its bytes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::async_cache::AsyncCache;
use crate::backend::{AsyncBackend, Backend};
use crate::cache::Cache;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::front::{DEFAULT_EXPIRE, Front};
use crate::host::{HostConfig, SslOptions, Timeouts};
use crate::managed::{AsyncManaged, Deployment, Managed};
use crate::multiplexed::AsyncRedisBackend;
use crate::near::{LocalBounds, Near, NearStore};
use crate::pool::{DEFAULT_POOL_SIZE, RedisBackend};
use crate::serializer::{Codec, Serializer};
use crate::stale::{CallDefaults, check_jitter};
use crate::stats::Counters;

type BypassValue = Arc<dyn erased_serde::Serialize + Send + Sync>;

/// The options of a cache itself, whatever stores its bytes: namespace,
/// serializer, default expiry and bypass values.
///
/// [`CacheBuilder`] and the cluster builder hold one; on its own it puts a
/// cache on any byte store:
///
/// ```
/// use std::sync::Arc;
/// use rc::{CacheOptions, MemoryBackend};
/// let cache = CacheOptions::new()
///     .namespace("app:")
///     .build(Arc::new(MemoryBackend::new()))?;
/// cache.set("k", &1, None)?;
/// assert_eq!(cache.get::<i32>("k")?, Some(1));
/// # Ok::<(), rc::Error>(())
/// ```
#[derive(Clone)]
pub struct CacheOptions {
    namespace: String,
    default_expire: Duration,
    codec: Codec,
    bypass: Vec<BypassValue>,
    local: LocalBounds,
    calls: CallDefaults,
}

impl std::fmt::Debug for CacheOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheOptions")
            .field("namespace", &self.namespace)
            .field("default_expire", &self.default_expire)
            .field("serializer", &self.codec.name())
            .field("bypass_values", &self.bypass.len())
            .field("local_cache", &self.local.entries)
            .field("local_cache_bytes", &self.local.bytes)
            .field("calls", &self.calls)
            .finish()
    }
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheOptions {
    /// No namespace, JSON, 3-day default expiry, no bypass values.
    pub fn new() -> Self {
        CacheOptions {
            namespace: String::new(),
            default_expire: DEFAULT_EXPIRE,
            codec: Codec::Json,
            bypass: Vec::new(),
            local: LocalBounds::default(),
            calls: CallDefaults::default(),
        }
    }

    /// Prefix added, as is, to every key.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Expiry of writes that give none. Default 3 days.
    pub fn default_expire(mut self, expire: Duration) -> Self {
        self.default_expire = expire;
        self
    }

    /// The value format. Default [`JsonSerializer`](crate::JsonSerializer).
    pub fn serializer<S: Serializer>(mut self, serializer: S) -> Self {
        self.codec = Codec::new(serializer);
        self
    }

    /// Results of decorated functions that are returned but never stored
    /// (compared by their encoded bytes), e.g. `[None::<()>]` to not cache misses.
    pub fn bypass_values<T, I>(mut self, values: I) -> Self
    where
        T: Serialize + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
    {
        self.bypass
            .extend(values.into_iter().map(|v| Arc::new(v) as BypassValue));
        self
    }

    /// Keeps up to `capacity` hot values in process memory (a *near cache*),
    /// coherent with Redis: when any client changes, deletes or expires a
    /// key, or Redis evicts it, the local copy is dropped within
    /// milliseconds, and this cache's own writes and deletes drop it at
    /// once. Whenever invalidations could have been missed (the
    /// invalidation connection drops or times out, the server restarts),
    /// that server's copies are not used until tracking is back. A copy
    /// never outlives its key's TTL in Redis. Needs Redis 6 or later; off
    /// by default. Each server gets one more connection, opened in the
    /// background when the cache is built (copies are kept once it is
    /// subscribed) and closed soon after the cache is dropped. On a Redis
    /// Cluster or under Sentinel each primary is tracked as soon as it is
    /// found, and when the primaries or their slots change, the copies of
    /// each primary that lost a slot are dropped. See the guide's "Near
    /// cache" section.
    ///
    /// ```no_run
    /// let cache = rc::Cache::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .local_cache(10_000)
    ///     .build()?;
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub fn local_cache(mut self, capacity: u64) -> Self {
        self.local.entries = Some(capacity);
        self
    }

    /// Bounds the near cache's memory to about `bytes` (keys, values and an
    /// estimate of the per-entry overhead), alone or together with
    /// [`local_cache`](Self::local_cache)'s entry count.
    pub fn local_cache_bytes(mut self, bytes: u64) -> Self {
        self.local.bytes = Some(bytes);
        self
    }

    /// The near cache over `store`'s servers, if one is configured.
    fn near(
        &self,
        servers: impl FnOnce() -> Vec<crate::backend::ServerLink>,
    ) -> Result<Option<Arc<Near>>> {
        if self.local == LocalBounds::default() {
            return Ok(None);
        }
        Near::start(self.local, servers(), &self.namespace).map(Some)
    }

    /// Whether concurrent misses of one key in this process share one
    /// computation, for decorated calls and batches. Default `true`;
    /// `#[rc::cache(single_flight = ..)]` overrides it.
    pub fn single_flight(mut self, on: bool) -> Self {
        self.calls.single_flight = on;
        self
    }

    /// Default `stale_while_revalidate` of decorated calls: for this long
    /// after a value expires, a call returns it at once while one caller
    /// (across processes) recomputes it. Default off (zero). Values are
    /// stored this much longer. Functions whose attribute names the option
    /// refresh in the background; others (their arguments may borrow) are
    /// refreshed by the one caller that takes the key's lease. See the guide.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.calls.stale_while_revalidate = window;
        self
    }

    /// Default `stale_if_error` of decorated calls returning `Result`: when
    /// the body returns `Err` and a value no older than its expiry plus this
    /// exists, the call returns that value (counted in
    /// [`Stats::stale_served`](crate::Stats::stale_served)). Default off (zero).
    /// Values are stored this much longer.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.calls.stale_if_error = window;
        self
    }

    /// Default `expire_jitter` of decorated calls: each stored expiry is
    /// shortened by a random part of up to this fraction of it (in `[0, 1)`),
    /// so keys written together do not expire together. Default 0.
    pub fn expire_jitter(mut self, fraction: f64) -> Self {
        self.calls.expire_jitter = fraction;
        self
    }

    /// How long a decorated call that misses waits for another process
    /// (or cache) that holds the key's lease, i.e. is computing it, before
    /// computing it too. Default 2 s; zero: never wait.
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.calls.lease_wait = wait;
        self
    }

    /// The near cache, if one is configured, of a store whose servers are
    /// found later (a Redis Cluster, Sentinel): the store tells it of them.
    fn near_found_later(&self) -> Result<Option<Arc<Near>>> {
        if self.local == LocalBounds::default() {
            return Ok(None);
        }
        Near::start_empty(self.local, &self.namespace).map(Some)
    }

    /// Options as a config file gives them: the defaults, with what is given replaced.
    #[doc(hidden)]
    pub fn configured(namespace: Option<String>, default_expire: Option<Duration>) -> Self {
        let o = namespace.into_iter().fold(Self::new(), Self::namespace);
        default_expire.into_iter().fold(o, Self::default_expire)
    }

    /// A blocking cache with these options over `backend`.
    pub fn build(self, backend: Arc<dyn Backend>) -> Result<Cache> {
        let near = self.near(|| backend.servers())?;
        self.build_near(backend, near)
    }

    /// A blocking cache over `backend`, with `near` in front of it.
    fn build_near(self, backend: Arc<dyn Backend>, near: Option<Arc<Near>>) -> Result<Cache> {
        let front = self.front(near.clone())?;
        let backend: Arc<dyn Backend> = match near {
            Some(near) => Arc::new(NearStore::new(backend, near)),
            None => backend,
        };
        Ok(Cache {
            core: Arc::new(Core::new(front, backend)),
        })
    }

    /// An async cache with these options over `backend`.
    pub fn build_async(self, backend: Arc<dyn AsyncBackend>) -> Result<AsyncCache> {
        let near = self.near(|| backend.servers())?;
        self.build_async_near(backend, near)
    }

    /// An async cache over `backend`, with `near` in front of it.
    fn build_async_near(
        self,
        backend: Arc<dyn AsyncBackend>,
        near: Option<Arc<Near>>,
    ) -> Result<AsyncCache> {
        let front = self.front(near.clone())?;
        let backend: Arc<dyn AsyncBackend> = match near {
            Some(near) => Arc::new(NearStore::new(backend, near)),
            None => backend,
        };
        Ok(AsyncCache {
            core: Arc::new(Core::new(front, backend)),
        })
    }

    fn front(self, local: Option<Arc<Near>>) -> Result<Front> {
        if self.default_expire.is_zero() {
            return Err(Error::config("default_expire must be greater than zero"));
        }
        check_jitter(self.calls.expire_jitter)?;
        let bypass = self
            .bypass
            .iter()
            .map(|v| self.codec.encode(&**v))
            .collect::<Result<Vec<_>>>()?;
        Ok(Front {
            namespace: self.namespace,
            codec: self.codec,
            default_expire: self.default_expire,
            bypass,
            counters: Counters::default(),
            local,
            calls: self.calls,
        })
    }
}

/// Builds a [`Cache`] or an [`AsyncCache`] on one Redis server: the server's
/// options (address, credentials, timeouts, pool) and the cache's own
/// ([`CacheOptions`]).
///
/// ```
/// use std::time::Duration;
/// use rc::{Cache, CborSerializer};
///
/// let cache = Cache::builder()
///     .host("redishost01").port(6379).db(0).password("pass")
///     .socket_timeout(Duration::from_secs(5))
///     .namespace("models:")
///     .default_expire(Duration::from_secs(24 * 3600))
///     .serializer(CborSerializer)
///     .bypass_values([None::<()>])
///     .build()?; // no network yet: the first call connects
/// assert!(!format!("{cache:?}").contains("pass\""));
/// # Ok::<(), rc::Error>(())
/// ```
#[derive(Clone)]
pub struct CacheBuilder {
    host: HostConfig,
    deferred_error: Option<Error>,
    timeouts: Timeouts,
    pool_size: usize,
    /// The server options set, so that a cache on another backend can refuse them.
    server_options: Vec<&'static str>,
    options: CacheOptions,
    /// Where the servers are found: one server, a Redis Cluster, or Sentinel.
    deployment: Deployment,
}

impl std::fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("host", &self.host)
            .field("timeouts", &self.timeouts)
            .field("pool_size", &self.pool_size)
            .field("deployment", &self.deployment)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for CacheBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheBuilder {
    /// Defaults: `localhost:6379` db 0, JSON, 3-day expiry, no namespace,
    /// 1 s connect and response timeouts, 16 pooled connections.
    pub fn new() -> Self {
        CacheBuilder {
            host: HostConfig::default(),
            deferred_error: None,
            timeouts: Timeouts::default(),
            pool_size: DEFAULT_POOL_SIZE,
            server_options: Vec::new(),
            options: CacheOptions::new(),
            deployment: Deployment::Single,
        }
    }

    /// Notes that server option `name` was set, and sets it.
    fn server(mut self, name: &'static str, set: impl FnOnce(&mut Self)) -> Self {
        if !self.server_options.contains(&name) {
            self.server_options.push(name);
        }
        set(&mut self);
        self
    }

    /// Takes server, db and credentials from a URL (see [`HostConfig::from_url`]).
    /// A bad URL is reported by `build`.
    pub fn url(self, url: &str) -> Self {
        self.server("url", |b| match HostConfig::from_url(url) {
            Ok(h) => b.host = h,
            Err(e) => b.deferred_error = Some(e),
        })
    }

    /// Makes `build` fail with `error` (for configuration found invalid early).
    pub(crate) fn fail(mut self, error: Error) -> Self {
        self.deferred_error = Some(error);
        self
    }

    /// Uses a complete [`HostConfig`].
    pub fn host_config(self, host: HostConfig) -> Self {
        self.server("host_config", |b| b.host = host)
    }

    /// Server host name or IP.
    pub fn host(self, host: impl Into<String>) -> Self {
        self.server("host", |b| b.host.host = host.into())
    }

    /// Server TCP port.
    pub fn port(self, port: u16) -> Self {
        self.server("port", |b| b.host.port = port)
    }

    /// Database index.
    pub fn db(self, db: i64) -> Self {
        self.server("db", |b| b.host.db = db)
    }

    /// ACL user name.
    pub fn username(self, username: impl Into<String>) -> Self {
        self.server("username", |b| b.host.username = Some(username.into()))
    }

    /// Password (never printed).
    pub fn password(self, password: impl Into<String>) -> Self {
        self.server("password", |b| {
            b.host = std::mem::take(&mut b.host).password(password)
        })
    }

    /// Connect through a unix socket.
    pub fn unix_socket_path(self, path: impl Into<PathBuf>) -> Self {
        self.server("unix_socket_path", |b| {
            b.host.unix_socket_path = Some(path.into())
        })
    }

    /// Use TLS (needs the `tls` feature).
    pub fn tls(self, tls: bool) -> Self {
        self.server("tls", |b| b.host.ssl = tls)
    }

    /// Use TLS with these options (needs the `tls` feature), e.g. a CA that
    /// signed the servers' certificates: on the server, or on every node of
    /// a [Redis Cluster](Self::redis_cluster), or on the primary under
    /// [Sentinel](Self::sentinel) and the `rediss://` Sentinels, whose URLs
    /// cannot carry a CA file. Give
    /// it after [`url`](Self::url) or [`host_config`](Self::host_config),
    /// which replace the whole server.
    ///
    /// ```
    /// use rc::{Cache, SslOptions};
    /// let builder = Cache::builder()
    ///     .redis_cluster(["rediss://10.0.0.1:7000", "rediss://10.0.0.2:7000"])
    ///     .ssl_options(SslOptions {
    ///         ca_file: Some("/etc/redis/ca.pem".into()),
    ///         ..SslOptions::default()
    ///     });
    /// // `build` reads the CA file (and needs the `tls` feature).
    /// assert!(builder.build().is_err()); // no such file here
    /// ```
    pub fn ssl_options(self, options: SslOptions) -> Self {
        self.server("ssl_options", |b| {
            b.host = std::mem::take(&mut b.host).ssl_options(options)
        })
    }

    /// Longest wait for a reply (rc's `socket_timeout`). Default 1 s.
    pub fn socket_timeout(self, timeout: Duration) -> Self {
        self.server("socket_timeout", |b| b.timeouts.response = timeout)
    }

    /// Longest wait to connect. Default 1 s.
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.server("connect_timeout", |b| b.timeouts.connect = timeout)
    }

    /// Both timeouts at once.
    pub fn timeouts(self, timeouts: Timeouts) -> Self {
        self.server("timeouts", |b| b.timeouts = timeouts)
    }

    /// Idle connections kept by a blocking cache. Default 16.
    pub fn pool_size(self, size: usize) -> Self {
        self.server("pool_size", |b| b.pool_size = size)
    }

    /// Puts the cache on a Redis Cluster, found through these seed nodes
    /// (`redis://` or `rediss://` URLs; a few are enough, the others are
    /// discovered). Keys go to their hash slot's primary; a multi-key call
    /// sends one pipeline per primary, to all at once. Failovers, slot
    /// migrations and added nodes are followed without a rebuild (see the
    /// guide's "Redis Cluster and Sentinel").
    ///
    /// The seeds' user, password and TLS settings apply to every node, as
    /// do [`username`](Self::username), [`password`](Self::password),
    /// [`tls`](Self::tls) and [`ssl_options`](Self::ssl_options) when set. Giving a server (`url`, `host`, `port`,
    /// `db`, `unix_socket_path`) as well is an error, as is `sentinel`.
    ///
    /// ```
    /// use rc::Cache;
    /// let cache = Cache::builder()
    ///     .redis_cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
    ///     .namespace("app:")
    ///     .build()?; // returns at once: the slots are looked up in the background
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub fn redis_cluster<S: AsRef<str>>(self, nodes: impl IntoIterator<Item = S>) -> Self {
        let seeds = nodes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self.server("redis_cluster", |b| {
            b.deployment = match b.deployment {
                Deployment::Single => Deployment::Cluster(seeds),
                _ => Deployment::Conflict,
            }
        })
    }

    /// Puts the cache on the primary that Sentinel watches under
    /// `master_name`, found through these Sentinels (`redis://host:26379`
    /// URLs, with the Sentinels' own password if they need one; `rediss://`
    /// for TLS). rc follows a failover as soon as a Sentinel announces it
    /// (`+switch-master`).
    ///
    /// [`password`](Self::password), [`username`](Self::username),
    /// [`db`](Self::db) and [`tls`](Self::tls) apply to the primary;
    /// [`ssl_options`](Self::ssl_options) (e.g. a CA file) to the primary
    /// and to the `rediss://` Sentinels. Giving
    /// the server's address (`url`, `host`, `port`, `unix_socket_path`) as
    /// well is an error, as is `redis_cluster`.
    ///
    /// ```
    /// use rc::Cache;
    /// let cache = Cache::builder()
    ///     .sentinel("mymaster", ["redis://10.0.0.9:26379", "redis://10.0.0.10:26379"])
    ///     .password("s3cret")
    ///     .build_async()?; // returns at once: the primary is looked up in the background
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub fn sentinel<S: AsRef<str>>(
        self,
        master_name: impl Into<String>,
        sentinels: impl IntoIterator<Item = S>,
    ) -> Self {
        let master = master_name.into();
        let sentinels = sentinels
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect();
        self.server("sentinel", |b| {
            b.deployment = match b.deployment {
                Deployment::Single => Deployment::Sentinel { master, sentinels },
                _ => Deployment::Conflict,
            }
        })
    }

    crate::__cache_option_setters!();

    /// A blocking cache on the configured server (or Redis Cluster, or
    /// Sentinel-watched primary).
    pub fn build(self) -> Result<Cache> {
        self.check()?;
        if let Some((source, template)) =
            self.deployment.source(&self.server_options, &self.host)?
        {
            let backend = Managed::start(source, template, self.timeouts, self.pool_size)?;
            let near = self.options.near_found_later()?;
            if let Some(near) = &near {
                backend.attach_near(near);
            }
            return self.options.build_near(Arc::new(backend), near);
        }
        let backend = RedisBackend::new(&self.host, self.timeouts, self.pool_size)?;
        self.options.build(Arc::new(backend))
    }

    /// An async cache on the configured server (or Redis Cluster, or
    /// Sentinel-watched primary).
    pub fn build_async(self) -> Result<AsyncCache> {
        self.check()?;
        if let Some((source, template)) =
            self.deployment.source(&self.server_options, &self.host)?
        {
            let backend = AsyncManaged::start(source, template, self.timeouts, self.pool_size)?;
            let near = self.options.near_found_later()?;
            if let Some(near) = &near {
                backend.attach_near(near);
            }
            return self.options.build_async_near(Arc::new(backend), near);
        }
        let backend = AsyncRedisBackend::new(&self.host, self.timeouts)?;
        self.options.build_async(Arc::new(backend))
    }

    /// A blocking cache with these options over any byte store (a cluster,
    /// a test store, your own). Server options (URL, host, timeouts, pool)
    /// cannot apply to a store built elsewhere: setting any is an error.
    pub fn build_with_backend(self, backend: Arc<dyn Backend>) -> Result<Cache> {
        self.cache_options()?.build(backend)
    }

    /// The async twin of [`build_with_backend`](Self::build_with_backend).
    pub fn build_async_with_backend(self, backend: Arc<dyn AsyncBackend>) -> Result<AsyncCache> {
        self.cache_options()?.build_async(backend)
    }

    /// The cache's own options, when no server option was set.
    fn cache_options(self) -> Result<CacheOptions> {
        if let Some(e) = self.deferred_error {
            return Err(e);
        }
        if self.server_options.is_empty() {
            return Ok(self.options);
        }
        Err(Error::config(format!(
            "server options ({}) do not apply to a cache on another backend: \
             configure the backend itself, or build() a cache on the server",
            self.server_options.join(", ")
        )))
    }

    fn check(&self) -> Result<()> {
        if let Some(e) = &self.deferred_error {
            return Err(e.clone());
        }
        if !matches!(self.deployment, Deployment::Single) {
            return self.timeouts.validate();
        }
        self.timeouts.validate()?;
        self.host.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    #[test]
    fn server_options_on_another_backend_are_an_error_not_dropped() {
        let store = || Arc::new(MemoryBackend::new());
        assert!(
            CacheBuilder::new()
                .namespace("n:")
                .build_with_backend(store())
                .is_ok()
        );
        let err = CacheBuilder::new()
            .host("h")
            .socket_timeout(Duration::from_secs(2))
            .build_with_backend(store())
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("host, socket_timeout"), "{msg}");
        assert!(
            CacheBuilder::new()
                .url("redis://h")
                .build_async_with_backend(store())
                .is_err()
        );
    }
}
