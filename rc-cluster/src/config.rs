//! [`ClusterBuilder`] and the deserializable [`ClusterConfig`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rc_core::{
    AsyncRedisBackend, DEFAULT_POOL_SIZE, Error, HostConfig, RedisBackend, Result, Timeouts,
};
use serde::{Deserialize, Deserializer};

use crate::backend::{AsyncClusterBackend, ClusterBackend, Hosts};
use crate::crc32::Crc32HashRouter;
use crate::ketama::ConsistentHashRouter;
use crate::router::Router;

/// How many hosts a multi-key call talks to at once when none is configured (rc's default).
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

type RouterFactory = Box<dyn FnOnce(&BTreeMap<String, HostConfig>) -> Box<dyn Router> + Send>;

/// Configures a cache cluster; made by [`CacheCluster::builder`](crate::CacheCluster::builder)
/// or [`ClusterConfig::into_builder`].
///
/// Building checks the configuration and never touches the network:
/// connections are opened by the first call that needs them. It fails with
/// [`Error::Config`] when the host map is empty, a host name is given twice or
/// is empty, a [`HostConfig`] is invalid, a timeout is zero or
/// `max_concurrency` is 0.
///
/// ```
/// use std::time::Duration;
/// use rc_cluster::{CacheCluster, ConsistentHashRouter, HostConfig};
///
/// let backend = CacheCluster::builder()
///     .host("cache01", HostConfig::new().host("redis-host01"))
///     .host("cache04", HostConfig::new().host("redis-host04").db(1))
///     .host("sock", HostConfig::new().unix_socket_path("/tmp/redis.sock"))
///     .router(ConsistentHashRouter::new)
///     .pool_size(8)
///     .max_concurrency(16)
///     .connect_timeout(Duration::from_millis(200))
///     .socket_timeout(Duration::from_millis(500))
///     .build_backend()?;
/// assert_eq!(backend.host_names().len(), 3);
///
/// let err = CacheCluster::builder()
///     .host("a", HostConfig::new())
///     .host("a", HostConfig::new().port(6380))
///     .build_backend()
///     .unwrap_err();
/// assert!(err.to_string().contains("host name \"a\" is given twice"), "{err}");
/// # Ok::<(), rc_cluster::Error>(())
/// ```
pub struct ClusterBuilder {
    hosts: BTreeMap<String, HostConfig>,
    /// Problems found while adding hosts, reported by the build.
    problems: Vec<String>,
    router: Option<RouterFactory>,
    pool_size: usize,
    max_concurrency: usize,
    timeouts: Timeouts,
}

impl fmt::Debug for ClusterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterBuilder")
            .field("hosts", &self.hosts)
            .field("custom_router", &self.router.is_some())
            .field("pool_size", &self.pool_size)
            .field("max_concurrency", &self.max_concurrency)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClusterBuilder {
    /// An empty cluster configuration with rc's defaults.
    pub fn new() -> Self {
        ClusterBuilder {
            hosts: BTreeMap::new(),
            problems: Vec::new(),
            router: None,
            pool_size: DEFAULT_POOL_SIZE,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            timeouts: Timeouts::default(),
        }
    }

    /// Adds host `name`. A name given twice makes the build fail.
    pub fn host(mut self, name: impl Into<String>, config: HostConfig) -> Self {
        let name = name.into();
        if name.is_empty() {
            self.problems
                .push("a cluster host name must not be empty".to_owned());
        } else if self.hosts.contains_key(&name) {
            self.problems
                .push(format!("cluster host name {name:?} is given twice"));
        } else {
            self.hosts.insert(name, config);
        }
        self
    }

    /// Adds several hosts, as [`host`](Self::host) does.
    ///
    /// ```
    /// use rc_cluster::{CacheCluster, HostConfig};
    /// let backend = CacheCluster::builder()
    ///     .hosts((0..4).map(|i| (format!("cache{i:02}"), HostConfig::new().port(6379 + i))))
    ///     .build_backend()?;
    /// assert_eq!(backend.host_names().collect::<Vec<_>>(), ["cache00", "cache01", "cache02", "cache03"]);
    /// # Ok::<(), rc_cluster::Error>(())
    /// ```
    pub fn hosts<I, S>(self, hosts: I) -> Self
    where
        I: IntoIterator<Item = (S, HostConfig)>,
        S: Into<String>,
    {
        hosts
            .into_iter()
            .fold(self, |b, (name, config)| b.host(name, config))
    }

    /// Sets how keys are spread over the hosts: `make` receives the host map
    /// when the cluster is built and returns the [`Router`]. The default is
    /// [`Crc32HashRouter::new`]; pass [`ConsistentHashRouter::new`] or a
    /// constructor of your own (see [`Router`]).
    pub fn router<F, R>(mut self, make: F) -> Self
    where
        F: FnOnce(&BTreeMap<String, HostConfig>) -> R + Send + 'static,
        R: Router,
    {
        self.router = Some(Box::new(move |hosts| {
            Box::new(make(hosts)) as Box<dyn Router>
        }));
        self
    }

    /// Idle connections kept per host by the blocking cluster (default
    /// [`DEFAULT_POOL_SIZE`]; at least 1 is kept). The async cluster uses one
    /// multiplexed connection per host and ignores it.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// How many hosts a multi-key call talks to at once (default
    /// [`DEFAULT_MAX_CONCURRENCY`], as in rc). Must be at least 1.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n;
        self
    }

    /// Longest wait for connecting to a host (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Longest wait for a host's reply (default 1 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.response = timeout;
        self
    }

    /// Same as [`response_timeout`](Self::response_timeout) (redis-py's name).
    pub fn socket_timeout(self, timeout: Duration) -> Self {
        self.response_timeout(timeout)
    }

    /// Checks everything that does not need a backend.
    fn check(&self) -> Result<()> {
        if let Some(problem) = self.problems.first() {
            return Err(Error::config(problem.clone()));
        }
        if self.hosts.is_empty() {
            return Err(Error::config(
                "a cache cluster needs at least one host; add them with .host(name, HostConfig)",
            ));
        }
        if self.max_concurrency == 0 {
            return Err(Error::config("max_concurrency must be at least 1"));
        }
        self.timeouts.validate()?;
        for (name, config) in &self.hosts {
            config.validate().map_err(|e| name_host(name, e))?;
        }
        Ok(())
    }

    fn assemble<B>(self, make: impl Fn(&HostConfig) -> Result<B>) -> Result<Hosts<B>> {
        self.check()?;
        let mut hosts = Vec::with_capacity(self.hosts.len());
        for (name, config) in &self.hosts {
            let backend = make(config).map_err(|e| name_host(name, e))?;
            hosts.push((name.clone(), config.address(), backend));
        }
        let router = match self.router {
            Some(make) => make(&self.hosts),
            None => Box::new(Crc32HashRouter::new(&self.hosts)),
        };
        Ok(Hosts::new(
            hosts,
            router,
            self.max_concurrency,
            self.timeouts.response,
        ))
    }

    /// The blocking cluster byte store, without a cache front.
    pub fn build_backend(self) -> Result<ClusterBackend> {
        let (timeouts, pool_size) = (self.timeouts, self.pool_size);
        self.assemble(|c| RedisBackend::new(c, timeouts, pool_size))
            .map(ClusterBackend::new)
    }

    /// The async cluster byte store, without a cache front.
    pub fn build_async_backend(self) -> Result<AsyncClusterBackend> {
        let timeouts = self.timeouts;
        self.assemble(|c| AsyncRedisBackend::new(c, timeouts))
            .map(AsyncClusterBackend::new)
    }
}

/// Puts the cluster's host name in a configuration error.
fn name_host(name: &str, e: Error) -> Error {
    match e {
        Error::Config(msg) => Error::config(format!("cluster host {name:?}: {msg}")),
        other => other,
    }
}

/// Which built-in router a [`ClusterConfig`] uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum RouterKind {
    /// [`Crc32HashRouter`], rc's default: `"crc32"` (or `"crc32_hash"`).
    #[default]
    #[serde(rename = "crc32", alias = "crc32_hash")]
    Crc32Hash,
    /// [`ConsistentHashRouter`]: `"consistent_hash"` (or `"ketama"`).
    #[serde(rename = "consistent_hash", alias = "ketama")]
    ConsistentHash,
}

/// A cache cluster as an application's config file describes it.
///
/// Every field but `hosts` is optional; durations are seconds (integer or
/// fractional). Unknown keys are rejected, so a typo is an error rather than
/// a silently ignored setting. Turn it into a builder with
/// [`into_builder`](Self::into_builder) to add what a file cannot hold (a
/// serializer, bypass values, a custom router).
///
/// ```
/// use rc_cluster::{ClusterConfig, RouterKind};
///
/// let cfg: ClusterConfig = serde_json::from_str(r#"{
///     "hosts": {
///         "cache01": { "host": "redis-host01" },
///         "cache02": { "host": "redis-host02", "port": 6380 },
///         "cache04": { "host": "redis-host04", "db": 1 },
///         "sock": { "unix_socket_path": "/tmp/redis.sock" }
///     },
///     "router": "consistent_hash",
///     "namespace": "models:",
///     "default_expire": 3600,
///     "max_concurrency": 64,
///     "socket_timeout": 0.5
/// }"#)?;
/// assert_eq!(cfg.router, RouterKind::ConsistentHash);
/// assert_eq!(cfg.hosts["cache04"].db, 1);
/// assert_eq!(cfg.response_timeout, Some(std::time::Duration::from_millis(500)));
///
/// let backend = cfg.into_builder().build_backend()?;
/// assert_eq!(backend.host_names().len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Host name → server. A name given twice is an error.
    #[serde(deserialize_with = "unique_hosts")]
    pub hosts: BTreeMap<String, HostConfig>,
    /// The router (default [`RouterKind::Crc32Hash`]).
    pub router: RouterKind,
    /// Prefix of every key.
    pub namespace: Option<String>,
    /// Expiry of writes that give none (seconds; default 3 days).
    #[serde(deserialize_with = "opt_secs")]
    pub default_expire: Option<Duration>,
    /// Idle connections kept per host (see [`ClusterBuilder::pool_size`]).
    pub pool_size: Option<usize>,
    /// Hosts a multi-key call talks to at once (see [`ClusterBuilder::max_concurrency`]).
    pub max_concurrency: Option<usize>,
    /// Connect timeout (seconds).
    #[serde(deserialize_with = "opt_secs")]
    pub connect_timeout: Option<Duration>,
    /// Reply timeout (seconds); `socket_timeout` is accepted too.
    #[serde(deserialize_with = "opt_secs", alias = "socket_timeout")]
    pub response_timeout: Option<Duration>,
}

impl ClusterConfig {
    /// A builder holding this configuration.
    pub fn into_builder(self) -> ClusterBuilder {
        let mut b = ClusterBuilder::new().hosts(self.hosts);
        b = match self.router {
            RouterKind::Crc32Hash => b.router(Crc32HashRouter::new),
            RouterKind::ConsistentHash => b.router(ConsistentHashRouter::new),
        };
        if let Some(n) = self.pool_size {
            b = b.pool_size(n);
        }
        if let Some(n) = self.max_concurrency {
            b = b.max_concurrency(n);
        }
        if let Some(d) = self.connect_timeout {
            b = b.connect_timeout(d);
        }
        if let Some(d) = self.response_timeout {
            b = b.response_timeout(d);
        }
        let _ = (self.namespace, self.default_expire);
        b
    }
}

impl From<ClusterConfig> for ClusterBuilder {
    fn from(cfg: ClusterConfig) -> Self {
        cfg.into_builder()
    }
}

/// A host map that rejects a host name given twice (JSON maps allow it).
fn unique_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, HostConfig>, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = BTreeMap<String, HostConfig>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of host name to host config")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut hosts = BTreeMap::new();
            while let Some((name, config)) = map.next_entry::<String, HostConfig>()? {
                if hosts.contains_key(&name) {
                    return Err(serde::de::Error::custom(format!(
                        "host name {name:?} is given twice"
                    )));
                }
                hosts.insert(name, config);
            }
            Ok(hosts)
        }
    }
    d.deserialize_map(Visit)
}

/// Seconds (integer or fractional, not negative) as a duration.
fn opt_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{secs} is not a valid number of seconds")))
}
