//! [`ClusterBuilder`] and the deserializable [`ClusterConfig`].

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rc_core::{
    AsyncCache, AsyncRedisBackend, Cache, CacheOptions, DEFAULT_POOL_SIZE, Error, HostConfig,
    RedisBackend, Result, Timeouts,
};
use serde::de::{self, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::backend::{AsyncClusterBackend, ClusterBackend, Hosts};
use crate::crc32::Crc32HashRouter;
use crate::host_name::HostName;
use crate::ketama::ConsistentHashRouter;
use crate::router::Router;

/// How many hosts a multi-key call talks to at once when none is configured (rc's default).
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

type RouterFactory = Box<dyn FnOnce(&BTreeMap<HostName, HostConfig>) -> Box<dyn Router> + Send>;

/// Configures a cache cluster; made by [`CacheCluster::builder`](crate::CacheCluster::builder)
/// or [`ClusterConfig::into_builder`].
///
/// Building checks the configuration and never touches the network:
/// connections are opened by the first call that needs them. It fails with
/// [`Error::Config`] when the host map is empty, a host name is given twice or
/// is empty, an integer name and a string name have the same text (`10` and
/// `"10"`), a [`HostConfig`] is invalid, a timeout is zero or
/// `max_concurrency` is 0.
///
/// Host names are strings or integers ([`HostName`]); give them as rc's
/// Python host map has them, since the routers order hosts by name as
/// Python 2 sorts them (integers numerically, before strings):
///
/// ```
/// use rc::{CacheCluster, HostConfig};
///
/// // Python: CacheCluster({0: {'host': 'redis-host00'}, 1: {...}, ..., 11: {...}})
/// let backend = CacheCluster::builder()
///     .hosts((0..12).map(|i| (i, HostConfig::new().host(format!("redis-host{i:02}")))))
///     .build_backend()?;
/// assert_eq!(backend.host_names().collect::<Vec<_>>(),
///            ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]);
/// assert_eq!(backend.host_for_key("a"), Some("11"));
///
/// let err = CacheCluster::builder()
///     .host(10, HostConfig::new())
///     .host("10", HostConfig::new().port(6380))
///     .build_backend()
///     .unwrap_err();
/// assert!(err.to_string().contains("10 and \"10\""), "{err}");
/// # Ok::<(), rc::Error>(())
/// ```
///
///
/// ```
/// use std::time::Duration;
/// use rc::{CacheCluster, ConsistentHashRouter, HostConfig};
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
/// # Ok::<(), rc::Error>(())
/// ```
pub struct ClusterBuilder {
    hosts: BTreeMap<HostName, HostConfig>,
    /// Problems found while adding hosts, reported by the build.
    problems: Vec<String>,
    router: Option<RouterFactory>,
    pool_size: usize,
    max_concurrency: usize,
    timeouts: Timeouts,
    /// The cache's own options (namespace, serializer, ...).
    options: CacheOptions,
}

impl fmt::Debug for ClusterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterBuilder")
            .field("hosts", &self.hosts)
            .field("custom_router", &self.router.is_some())
            .field("pool_size", &self.pool_size)
            .field("max_concurrency", &self.max_concurrency)
            .field("timeouts", &self.timeouts)
            .field("options", &self.options)
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
            options: CacheOptions::new(),
        }
    }

    /// Adds host `name`: a string (`"cache01"`) or an integer (`0`), see
    /// [`HostName`]. A name given twice makes the build fail.
    pub fn host(mut self, name: impl Into<HostName>, config: HostConfig) -> Self {
        let name = name.into();
        if !name.is_int() && name.as_str().is_empty() {
            self.problems
                .push("a cluster host name must not be empty".to_owned());
            return self;
        }
        match self.hosts.entry(name) {
            Entry::Vacant(slot) => {
                slot.insert(config);
            }
            Entry::Occupied(taken) => {
                let problem = format!("cluster host name {:?} is given twice", taken.key());
                self.problems.push(problem);
            }
        }
        self
    }

    /// Adds several hosts, as [`host`](Self::host) does.
    ///
    /// ```
    /// use rc::{CacheCluster, HostConfig};
    /// let backend = CacheCluster::builder()
    ///     .hosts((0..4).map(|i| (format!("cache{i:02}"), HostConfig::new().port(6379 + i))))
    ///     .build_backend()?;
    /// assert_eq!(backend.host_names().collect::<Vec<_>>(), ["cache00", "cache01", "cache02", "cache03"]);
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub fn hosts<I, S>(self, hosts: I) -> Self
    where
        I: IntoIterator<Item = (S, HostConfig)>,
        S: Into<HostName>,
    {
        hosts
            .into_iter()
            .fold(self, |b, (name, config)| b.host(name, config))
    }

    /// Sets how keys are spread over the hosts: `make` receives the host map
    /// (its names in the order rc sorts them, see [`HostName`]) when the
    /// cluster is built and returns the [`Router`]. The default is
    /// [`Crc32HashRouter::new`]; pass [`ConsistentHashRouter::new`] or a
    /// constructor of your own (see [`Router`]).
    pub fn router<F, R>(mut self, make: F) -> Self
    where
        F: FnOnce(&BTreeMap<HostName, HostConfig>) -> R + Send + 'static,
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

    /// Both timeouts at once.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
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

    rc_core::__cache_option_setters!();

    /// A blocking [`Cache`] on the cluster.
    pub fn build(mut self) -> Result<Cache> {
        let options = std::mem::take(&mut self.options);
        let backend = self.build_backend()?;
        options.build(Arc::new(backend))
    }

    /// An [`AsyncCache`] on the cluster (its calls need a Tokio runtime).
    pub fn build_async(mut self) -> Result<AsyncCache> {
        let options = std::mem::take(&mut self.options);
        let backend = self.build_async_backend()?;
        options.build_async(Arc::new(backend))
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
        // Routers and backends name a host by its text: `10` and `"10"` would clash.
        let mut texts: HashMap<&str, &HostName> = HashMap::with_capacity(self.hosts.len());
        for name in self.hosts.keys() {
            if let Some(other) = texts.insert(name.as_str(), name) {
                let (int, string) = if name.is_int() {
                    (name, other)
                } else {
                    (other, name)
                };
                return Err(Error::config(format!(
                    "cluster host names {int:?} and {string:?} are both called {:?}; rename one",
                    name.as_str()
                )));
            }
        }
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
            // In `HostName` order, the order the routers' `host_index` counts in.
            hosts.push((name.as_str().to_owned(), config.address(), backend));
        }
        let router = match self.router {
            Some(make) => make(&self.hosts),
            None => Box::new(Crc32HashRouter::new(&self.hosts)),
        };
        Ok(Hosts::new(hosts, router, self.max_concurrency))
    }

    /// The blocking cluster byte store, without a cache front (the front
    /// options are ignored).
    pub fn build_backend(self) -> Result<ClusterBackend> {
        let (timeouts, pool_size) = (self.timeouts, self.pool_size);
        self.assemble(|c| RedisBackend::new(c, timeouts, pool_size))
            .map(ClusterBackend::new)
    }

    /// The async cluster byte store, without a cache front (the front
    /// options are ignored).
    pub fn build_async_backend(self) -> Result<AsyncClusterBackend> {
        let timeouts = self.timeouts;
        self.assemble(|c| AsyncRedisBackend::new(c, timeouts))
            .map(AsyncClusterBackend::new)
    }
}

/// Puts the cluster's host name in a configuration error.
fn name_host(name: &HostName, e: Error) -> Error {
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
/// use rc::{ClusterConfig, RouterKind};
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
/// assert_eq!(cfg.host_config("cache04").unwrap().db, 1);
/// assert_eq!(cfg.response_timeout, Some(std::time::Duration::from_millis(500)));
///
/// let backend = cfg.into_builder().build_backend()?;
/// assert_eq!(backend.host_names().len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The keys of a JSON or TOML map are strings, so a map gives string host
/// names, even `"0"`. rc's integer host names (`{0: {...}, 1: {...}}`) need
/// the other form of `hosts`, a list of hosts each with its `name`:
///
/// ```
/// use rc::{ClusterConfig, HostName};
///
/// let cfg: ClusterConfig = serde_json::from_str(r#"{
///     "hosts": [
///         { "name": 0, "host": "redis-host00" },
///         { "name": 1, "host": "redis-host01", "db": 1 },
///         { "name": "cache02", "host": "redis-host02" }
///     ]
/// }"#)?;
/// assert_eq!(cfg.host_config(1).unwrap().db, 1);
/// let names: Vec<&HostName> = cfg.hosts.keys().collect();
/// assert_eq!(names, [&HostName::from(0), &HostName::from(1), &HostName::from("cache02")]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// In TOML: `hosts = [{ name = 0, host = "redis-host00" }, { name = 1, host = "redis-host01" }]`,
/// or one `[[hosts]]` table per host.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Host name → server: a map (string names), or a list of host configs
    /// with a `name` each (integer or string names). A name given twice is an error.
    #[serde(deserialize_with = "unique_hosts")]
    pub hosts: BTreeMap<HostName, HostConfig>,
    /// The router (default [`RouterKind::Crc32Hash`]).
    pub router: RouterKind,
    /// Prefix of every key.
    pub namespace: Option<String>,
    /// Expiry of writes that give none (seconds; default 3 days).
    #[serde(deserialize_with = "rc_core::opt_secs")]
    pub default_expire: Option<Duration>,
    /// Idle connections kept per host (see [`ClusterBuilder::pool_size`]).
    pub pool_size: Option<usize>,
    /// Hosts a multi-key call talks to at once (see [`ClusterBuilder::max_concurrency`]).
    pub max_concurrency: Option<usize>,
    /// Connect timeout (seconds).
    #[serde(deserialize_with = "rc_core::opt_secs")]
    pub connect_timeout: Option<Duration>,
    /// Reply timeout (seconds); `socket_timeout` is accepted too.
    #[serde(deserialize_with = "rc_core::opt_secs", alias = "socket_timeout")]
    pub response_timeout: Option<Duration>,
}

impl ClusterConfig {
    /// The config of host `name` (`"cache01"`, `0`).
    pub fn host_config(&self, name: impl Into<HostName>) -> Option<&HostConfig> {
        self.hosts.get(&name.into())
    }

    /// A builder holding this configuration.
    pub fn into_builder(self) -> ClusterBuilder {
        let b = ClusterBuilder::new().hosts(self.hosts);
        let b = match self.router {
            RouterKind::Crc32Hash => b.router(Crc32HashRouter::new),
            RouterKind::ConsistentHash => b.router(ConsistentHashRouter::new),
        };
        let b = b.options(CacheOptions::configured(
            self.namespace,
            self.default_expire,
        ));
        let b = Timeouts::configured(self.connect_timeout, self.response_timeout)
            .into_iter()
            .fold(b, ClusterBuilder::timeouts);
        let b = self
            .pool_size
            .into_iter()
            .fold(b, ClusterBuilder::pool_size);
        self.max_concurrency
            .into_iter()
            .fold(b, ClusterBuilder::max_concurrency)
    }
}

impl From<ClusterConfig> for ClusterBuilder {
    fn from(cfg: ClusterConfig) -> Self {
        cfg.into_builder()
    }
}

/// A host map, or a list of hosts with a `name` each, that rejects a host
/// name given twice (JSON maps allow it).
fn unique_hosts<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<HostName, HostConfig>, D::Error> {
    fn add<E: de::Error>(
        hosts: &mut BTreeMap<HostName, HostConfig>,
        name: HostName,
        config: HostConfig,
    ) -> Result<(), E> {
        match hosts.entry(name) {
            Entry::Vacant(slot) => {
                slot.insert(config);
                Ok(())
            }
            Entry::Occupied(taken) => Err(E::custom(format!(
                "host name {:?} is given twice",
                taken.key()
            ))),
        }
    }

    struct Visit;
    impl<'de> Visitor<'de> for Visit {
        type Value = BTreeMap<HostName, HostConfig>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(
                "a map of host name to host config, or a list of host configs with a `name` each",
            )
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut hosts = BTreeMap::new();
            // A map key is a string in JSON and TOML, an integer where the format has them.
            while let Some((name, config)) = map.next_entry::<HostName, HostConfig>()? {
                add(&mut hosts, name, config)?;
            }
            Ok(hosts)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut hosts = BTreeMap::new();
            while let Some(NamedHost { name, config }) = seq.next_element()? {
                add(&mut hosts, name, config)?;
            }
            Ok(hosts)
        }
    }
    d.deserialize_any(Visit)
}

/// One host of the list form of `hosts`: `{ name = 0, host = "..", ... }`,
/// the [`HostConfig`] fields and the `name`.
struct NamedHost {
    name: HostName,
    config: HostConfig,
}

impl<'de> Deserialize<'de> for NamedHost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = NamedHost;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a host config with a `name`")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NamedHost, A::Error> {
                // HostConfig reads every field but `name` (and rejects unknown ones).
                let mut rest = WithoutName { map, name: None };
                let config =
                    HostConfig::deserialize(de::value::MapAccessDeserializer::new(&mut rest))?;
                match rest.name {
                    Some(name) => Ok(NamedHost { name, config }),
                    None => Err(de::Error::custom(
                        "a host in the list form of `hosts` needs a `name`",
                    )),
                }
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A map's entries but `name`, whose value it keeps.
struct WithoutName<A> {
    map: A,
    name: Option<HostName>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutName<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if key != "name" {
                return seed.deserialize(key.into_deserializer()).map(Some);
            }
            if self.name.is_some() {
                return Err(de::Error::duplicate_field("name"));
            }
            self.name = Some(self.map.next_value()?);
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: ClusterBuilder) -> String {
        b.build_backend().unwrap_err().to_string()
    }

    #[test]
    fn bad_configs_are_clear_errors() {
        let one = || ClusterBuilder::new().host("a", HostConfig::new());
        assert!(err(ClusterBuilder::new()).contains("at least one host"));
        assert!(err(one().host("a", HostConfig::new())).contains("\"a\" is given twice"));
        assert!(err(one().host("", HostConfig::new())).contains("must not be empty"));
        let e = err(one().host("bad", HostConfig::new().port(0)));
        assert!(
            e.contains("cluster host \"bad\"") && e.contains("port 0"),
            "{e}"
        );
        assert!(err(one().host("neg", HostConfig::new().db(-1))).contains("\"neg\""));
        assert!(err(one().max_concurrency(0)).contains("max_concurrency"));
        assert!(err(one().connect_timeout(Duration::ZERO)).contains("timeouts"));
        assert!(err(one().socket_timeout(Duration::ZERO)).contains("timeouts"));
        let e = one().default_expire(Duration::ZERO).build().unwrap_err();
        assert!(e.to_string().contains("default_expire"), "{e}");
        assert!(one().build_async_backend().is_ok());
        assert!(one().build().is_ok());
    }

    #[test]
    fn errors_are_config_errors() {
        let e = ClusterBuilder::new().build_async_backend().unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
    }

    #[test]
    fn unknown_host_from_a_custom_router_is_an_error_not_a_panic() {
        use rc_core::Backend;
        struct Nowhere;
        impl Router for Nowhere {
            fn host_for_key(&self, _: &str) -> &str {
                "nowhere"
            }
        }
        let b = ClusterBuilder::new()
            .host("a", HostConfig::new())
            .router(|_| Nowhere)
            .build_backend()
            .unwrap();
        assert_eq!(b.host_for_key("k"), None);
        let e = b.get("k").unwrap_err();
        assert!(e.to_string().contains("\"nowhere\""), "{e}");
        let keys = ["k", "l"];
        assert!(b.get_many(&keys).iter().all(|r| r.is_err()));
        assert!(b.delete_many(&keys).is_err());
        assert!(
            b.set_many(&[("k".into(), vec![1], Duration::from_secs(1))])
                .is_err()
        );
        assert!(b.get_many(&[]).is_empty());
        assert_eq!(b.delete_many(&[]).unwrap(), 0);
        assert!(b.set_many(&[]).unwrap());
    }

    #[test]
    fn config_deserializes() {
        let cfg: ClusterConfig = serde_json::from_str(
            r#"{"hosts": {"cache01": {"host": "redis-host01"}, "s": {"unix_socket_path": "/tmp/r.sock", "db": 2}},
                "router": "ketama", "namespace": "ns:", "default_expire": 1.5, "pool_size": 4,
                "max_concurrency": 8, "connect_timeout": 2, "response_timeout": 0.25}"#,
        )
        .unwrap();
        assert_eq!(cfg.router, RouterKind::ConsistentHash);
        assert_eq!(cfg.host_config("s").unwrap().db, 2);
        assert_eq!(cfg.namespace.as_deref(), Some("ns:"));
        assert_eq!(cfg.default_expire, Some(Duration::from_millis(1500)));
        assert_eq!((cfg.pool_size, cfg.max_concurrency), (Some(4), Some(8)));
        assert_eq!(cfg.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(cfg.response_timeout, Some(Duration::from_millis(250)));
        let b = cfg.into_builder();
        assert_eq!((b.pool_size, b.max_concurrency), (4, 8));
        assert!(b.build().is_ok());

        let empty: ClusterConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, ClusterConfig::default());
        assert_eq!(empty.router, RouterKind::Crc32Hash);
        assert!(empty.into_builder().build().is_err());
    }

    #[test]
    fn config_rejects_mistakes() {
        let bad = |text: &str| {
            serde_json::from_str::<ClusterConfig>(text)
                .unwrap_err()
                .to_string()
        };
        assert!(bad(r#"{"hosts": {"a": {}, "a": {"port": 1}}}"#).contains("\"a\" is given twice"));
        assert!(bad(r#"{"hostz": {}}"#).contains("unknown field"));
        assert!(bad(r#"{"hosts": {"a": {"hots": "x"}}}"#).contains("unknown field"));
        assert!(bad(r#"{"router": "random"}"#).contains("unknown variant"));
        assert!(bad(r#"{"default_expire": -1}"#).contains("not a valid number of seconds"));
    }

    #[test]
    fn integer_names() {
        let b = ClusterBuilder::new()
            .host(1, HostConfig::new())
            .host("1x", HostConfig::new());
        assert!(b.build_backend().is_ok());
        let one = || ClusterBuilder::new().host(3, HostConfig::new());
        assert!(
            err(one().host(3i64, HostConfig::new().port(1))).contains("host name 3 is given twice")
        );
        let e = err(one().host("3", HostConfig::new()));
        assert!(e.contains(r#"names 3 and "3" are both called "3""#), "{e}");
        let e = err(ClusterBuilder::new()
            .host("3", HostConfig::new())
            .host(3, HostConfig::new()));
        assert!(e.contains(r#"names 3 and "3""#), "{e}");
        let e = err(one().host(7, HostConfig::new().port(0)));
        assert!(e.contains("cluster host 7: "), "{e}");
        // 0 is a name, "" is not.
        assert!(
            ClusterBuilder::new()
                .host(0, HostConfig::new())
                .build_backend()
                .is_ok()
        );
    }

    #[test]
    fn config_list_form() {
        let cfg: ClusterConfig = serde_json::from_str(
            r#"{"hosts": [{"name": 0, "host": "h0"}, {"db": 2, "name": "s", "port": 6380}, {"name": -1}]}"#,
        )
        .unwrap();
        let names: Vec<String> = cfg.hosts.keys().map(|n| format!("{n:?}")).collect();
        assert_eq!(names, ["-1", "0", "\"s\""]);
        assert_eq!(cfg.host_config(0).unwrap().host, "h0");
        assert_eq!(cfg.host_config("s").unwrap().port, 6380);
        assert_eq!(cfg.host_config("s").unwrap().db, 2);
        assert_eq!(cfg.host_config(-1), Some(&HostConfig::new()));
        assert_eq!(cfg.host_config("0"), None);
        assert_eq!(cfg.hosts.len(), 3);

        let bad = |text: &str| {
            serde_json::from_str::<ClusterConfig>(text)
                .unwrap_err()
                .to_string()
        };
        let e = bad(r#"{"hosts": [{"name": 0}, {"name": 0, "port": 1}]}"#);
        assert!(e.contains("host name 0 is given twice"), "{e}");
        let e = bad(r#"{"hosts": [{"name": "a"}, {"name": "a"}]}"#);
        assert!(e.contains(r#"host name "a" is given twice"#), "{e}");
        let e = bad(r#"{"hosts": [{"host": "h"}]}"#);
        assert!(e.contains("needs a `name`"), "{e}");
        let e = bad(r#"{"hosts": [{"name": 0, "hots": "h"}]}"#);
        assert!(e.contains("unknown field `hots`"), "{e}");
        let e = bad(r#"{"hosts": [{"name": 0, "name": 1}]}"#);
        assert!(e.contains("duplicate field `name`"), "{e}");
        let e = bad(r#"{"hosts": [{"name": 1.5}]}"#);
        assert!(e.contains("an integer or a string"), "{e}");
        let e = bad(r#"{"hosts": "cache01"}"#);
        assert!(e.contains("a list of host configs"), "{e}");
        // The map form keeps its names as strings.
        let cfg: ClusterConfig = serde_json::from_str(r#"{"hosts": {"0": {}, "10": {}}}"#).unwrap();
        assert!(cfg.hosts.keys().all(|n| !n.is_int()));
        assert!(cfg.host_config("10").is_some() && cfg.host_config(10).is_none());
    }
}
