//! [`CacheBuilder`]: configuration of a single-server cache (and the front
//! options every cache shares).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::async_cache::AsyncCache;
use crate::backend::{AsyncBackend, Backend};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::front::{DEFAULT_EXPIRE, Front};
use crate::host::{HostConfig, Timeouts};
use crate::multiplexed::AsyncRedisBackend;
use crate::pool::{DEFAULT_POOL_SIZE, RedisBackend};
use crate::serializer::{Codec, Serializer};
use crate::stats::Counters;

type BypassValue = Arc<dyn erased_serde::Serialize + Send + Sync>;

/// Builds a [`Cache`] or an [`AsyncCache`].
///
/// ```
/// use std::time::Duration;
/// use rc_core::{Cache, CborSerializer};
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
/// # Ok::<(), rc_core::Error>(())
/// ```
#[derive(Clone)]
pub struct CacheBuilder {
    host: HostConfig,
    deferred_error: Option<Error>,
    timeouts: Timeouts,
    pool_size: usize,
    namespace: String,
    default_expire: Duration,
    codec: Codec,
    bypass: Vec<BypassValue>,
}

impl std::fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("host", &self.host)
            .field("timeouts", &self.timeouts)
            .field("namespace", &self.namespace)
            .field("default_expire", &self.default_expire)
            .field("serializer", &self.codec.name())
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
            namespace: String::new(),
            default_expire: DEFAULT_EXPIRE,
            codec: Codec::Json,
            bypass: Vec::new(),
        }
    }

    /// Takes server, db and credentials from a URL (see [`HostConfig::from_url`]).
    /// A bad URL is reported by `build`.
    pub fn url(mut self, url: &str) -> Self {
        match HostConfig::from_url(url) {
            Ok(h) => self.host = h,
            Err(e) => self.deferred_error = Some(e),
        }
        self
    }

    /// Makes `build` fail with `error` (for configuration found invalid early).
    pub(crate) fn fail(mut self, error: Error) -> Self {
        self.deferred_error = Some(error);
        self
    }

    /// Uses a complete [`HostConfig`].
    pub fn host_config(mut self, host: HostConfig) -> Self {
        self.host = host;
        self
    }

    /// Server host name or IP.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host.host = host.into();
        self
    }

    /// Server TCP port.
    pub fn port(mut self, port: u16) -> Self {
        self.host.port = port;
        self
    }

    /// Database index.
    pub fn db(mut self, db: i64) -> Self {
        self.host.db = db;
        self
    }

    /// ACL user name.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.host = self.host.username(username);
        self
    }

    /// Password (never printed).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.host = self.host.password(password);
        self
    }

    /// Connect through a unix socket.
    pub fn unix_socket_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.host.unix_socket_path = Some(path.into());
        self
    }

    /// Use TLS (needs the `tls` feature).
    pub fn tls(mut self, tls: bool) -> Self {
        self.host.ssl = tls;
        self
    }

    /// Longest wait for a reply (rc's `socket_timeout`). Default 1 s.
    pub fn socket_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.response = timeout;
        self
    }

    /// Longest wait to connect. Default 1 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Idle connections kept by a blocking cache. Default 16.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
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

    /// A blocking cache on the configured server.
    pub fn build(self) -> Result<Cache> {
        self.check()?;
        let backend = RedisBackend::new(&self.host, self.timeouts, self.pool_size)?;
        self.build_with_backend(Arc::new(backend))
    }

    /// An async cache on the configured server.
    pub fn build_async(self) -> Result<AsyncCache> {
        self.check()?;
        let backend = AsyncRedisBackend::new(&self.host, self.timeouts)?;
        self.build_async_with_backend(Arc::new(backend))
    }

    /// A blocking cache with these front options over any byte store
    /// (a cluster, a test store, your own). Server options are ignored.
    pub fn build_with_backend(self, backend: Arc<dyn Backend>) -> Result<Cache> {
        Ok(Cache::from_parts(self.front()?, backend))
    }

    /// The async twin of [`build_with_backend`](Self::build_with_backend).
    pub fn build_async_with_backend(self, backend: Arc<dyn AsyncBackend>) -> Result<AsyncCache> {
        Ok(AsyncCache::from_parts(self.front()?, backend))
    }

    fn check(&self) -> Result<()> {
        if let Some(e) = &self.deferred_error {
            return Err(e.clone());
        }
        self.timeouts.validate()?;
        self.host.validate()
    }

    fn front(self) -> Result<Front> {
        if let Some(e) = self.deferred_error {
            return Err(e);
        }
        if self.default_expire.is_zero() {
            return Err(Error::config("default_expire must be greater than zero"));
        }
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
        })
    }
}
