//! [`CacheConfig`]: a cache (on one server, a Redis Cluster or a
//! Sentinel-watched primary) described in a configuration file.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::builder::{CacheBuilder, CacheOptions};
use crate::error::Error;
use crate::host::{HostConfig, Secret, SslOptions, Timeouts};

/// The options of [`CacheBuilder`] as data, for an application's TOML, YAML
/// or JSON configuration. Durations are seconds (fractions allowed).
///
/// The servers are given once: as `url`, as `host`, as `redis_cluster`
/// (seed URLs of a Redis Cluster) or as `sentinel` (see [`SentinelConfig`]);
/// giving two of them is an error when built.
///
/// ```
/// let config: rc::CacheConfig = serde_json::from_str(r#"{
///     "url": "redis://cache.internal:6379/2",
///     "namespace": "models:",
///     "default_expire": 86400,
///     "socket_timeout": 0.5
/// }"#).unwrap();
/// let cache = config.into_builder().build()?; // no network yet
/// assert_eq!(cache.namespace(), "models:");
/// # Ok::<(), rc::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// The server as a URL (see [`HostConfig::from_url`]); or give `host`.
    pub url: Option<String>,
    /// The server as fields (`host`, `port`, `db`, `password`, ...); or give `url`.
    pub host: Option<HostConfig>,
    /// Seed node URLs of a Redis Cluster (see [`CacheBuilder::redis_cluster`]).
    ///
    /// ```
    /// let config: rc::CacheConfig = serde_json::from_str(r#"{
    ///     "redis_cluster": ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]
    /// }"#).unwrap();
    /// let cache = config.into_builder().build()?; // returns at once; the slots are looked up in the background
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub redis_cluster: Option<Vec<String>>,
    /// A primary watched by Sentinel (see [`CacheBuilder::sentinel`]).
    pub sentinel: Option<SentinelConfig>,
    /// TLS options for the servers, e.g. the CA of a `rediss://` Redis
    /// Cluster or Sentinel primary, whose URLs cannot carry them (see
    /// [`CacheBuilder::ssl_options`]); they replace `host`'s own. Field
    /// names as in [`SslOptions`] or redis-py's (`ssl_ca_certs`, ...).
    ///
    /// ```
    /// let config: rc::CacheConfig = serde_json::from_str(r#"{
    ///     "redis_cluster": ["rediss://10.0.0.1:7000"],
    ///     "ssl_options": { "ssl_ca_certs": "/etc/redis/ca.pem" }
    /// }"#).unwrap();
    /// assert_eq!(
    ///     config.ssl_options.unwrap().ca_file.unwrap().to_str(),
    ///     Some("/etc/redis/ca.pem"),
    /// );
    /// ```
    pub ssl_options: Option<SslOptions>,
    /// Prefix of every key.
    pub namespace: Option<String>,
    /// Expiry of writes that give none (default 3 days).
    #[serde(deserialize_with = "opt_secs")]
    pub default_expire: Option<Duration>,
    /// Idle connections kept by a blocking cache.
    pub pool_size: Option<usize>,
    /// Connect timeout.
    #[serde(deserialize_with = "opt_secs")]
    pub connect_timeout: Option<Duration>,
    /// Reply timeout; `socket_timeout` is accepted too.
    #[serde(deserialize_with = "opt_secs", alias = "socket_timeout")]
    pub response_timeout: Option<Duration>,
    /// Values kept in process memory, coherent with Redis (see
    /// [`CacheOptions::local_cache`]); none when absent.
    pub local_cache: Option<u64>,
    /// The near cache's memory bound in bytes (see [`CacheOptions::local_cache_bytes`]).
    pub local_cache_bytes: Option<u64>,
    /// Single flight of decorated calls (default on).
    pub single_flight: Option<bool>,
    /// Default `stale_while_revalidate` window of decorated calls.
    #[serde(deserialize_with = "opt_secs")]
    pub stale_while_revalidate: Option<Duration>,
    /// Default `stale_if_error` window of decorated calls.
    #[serde(deserialize_with = "opt_secs")]
    pub stale_if_error: Option<Duration>,
    /// Default `expire_jitter` fraction of decorated calls.
    pub expire_jitter: Option<f64>,
    /// How long a miss waits for another process computing its key.
    #[serde(deserialize_with = "opt_secs")]
    pub lease_wait: Option<Duration>,
}

/// A Sentinel-watched primary in a [`CacheConfig`]: `sentinel = { master =
/// "mymaster", nodes = ["redis://10.0.0.9:26379"] }`, with the primary's
/// `password`, `username` and `db` if it needs them.
///
/// ```
/// let config: rc::CacheConfig = serde_json::from_str(r#"{
///     "sentinel": { "master": "mymaster", "nodes": ["redis://10.0.0.9:26379"], "db": 2 }
/// }"#).unwrap();
/// let cache = config.into_builder().build()?; // returns at once; the primary is looked up in the background
/// # Ok::<(), rc::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SentinelConfig {
    /// The name the Sentinels know the primary by.
    pub master: String,
    /// URLs of the Sentinels.
    pub nodes: Vec<String>,
    /// The primary's password (the Sentinels' own goes in their URLs).
    #[serde(default)]
    pub password: Option<Secret>,
    /// The primary's ACL user name.
    #[serde(default)]
    pub username: Option<String>,
    /// The database index on the primary.
    #[serde(default)]
    pub db: Option<i64>,
}

impl CacheConfig {
    /// A builder holding this configuration; a config that gives the
    /// servers twice (e.g. `url` and `host`, or `redis_cluster` and
    /// `sentinel`) fails when built.
    pub fn into_builder(self) -> CacheBuilder {
        let b = CacheBuilder::new();
        let given: Vec<&str> = [
            ("url", self.url.is_some()),
            ("host", self.host.is_some()),
            ("redis_cluster", self.redis_cluster.is_some()),
            ("sentinel", self.sentinel.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        let b = if given.len() > 1 {
            b.fail(Error::config(format!(
                "give the servers once: as `url`, `host`, `redis_cluster` or `sentinel`, \
                 not both {}",
                given.join(" and ")
            )))
        } else if let Some(url) = self.url {
            b.url(&url)
        } else if let Some(host) = self.host {
            b.host_config(host)
        } else if let Some(seeds) = self.redis_cluster {
            b.redis_cluster(seeds)
        } else if let Some(s) = self.sentinel {
            let b = b.sentinel(s.master, s.nodes);
            let b = s.username.into_iter().fold(b, CacheBuilder::username);
            let b = s.db.into_iter().fold(b, CacheBuilder::db);
            s.password
                .into_iter()
                .fold(b, |b, p| b.password(p.expose()))
        } else {
            b
        };
        let b = self
            .ssl_options
            .into_iter()
            .fold(b, CacheBuilder::ssl_options);
        let mut options = CacheOptions::configured(self.namespace, self.default_expire);
        options = self
            .local_cache
            .into_iter()
            .fold(options, CacheOptions::local_cache);
        options =
            (self.local_cache_bytes.into_iter()).fold(options, CacheOptions::local_cache_bytes);
        let b = b.options(options);
        let b = Timeouts::configured(self.connect_timeout, self.response_timeout)
            .into_iter()
            .fold(b, CacheBuilder::timeouts);
        let b = self.pool_size.into_iter().fold(b, CacheBuilder::pool_size);
        let b = self
            .single_flight
            .into_iter()
            .fold(b, CacheBuilder::single_flight);
        let b =
            (self.stale_while_revalidate.into_iter()).fold(b, CacheBuilder::stale_while_revalidate);
        let b = (self.stale_if_error.into_iter()).fold(b, CacheBuilder::stale_if_error);
        let b = (self.expire_jitter.into_iter()).fold(b, CacheBuilder::expire_jitter);
        self.lease_wait
            .into_iter()
            .fold(b, CacheBuilder::lease_wait)
    }
}

impl From<CacheConfig> for CacheBuilder {
    fn from(config: CacheConfig) -> Self {
        config.into_builder()
    }
}

/// Deserializes an optional duration written as (fractional) seconds.
#[doc(hidden)]
pub fn opt_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{secs} is not a valid number of seconds")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_fields_or_url_not_both() {
        let c: CacheConfig = serde_json::from_str(
            r#"{"host": {"host": "h", "port": 6380, "db": 1}, "connect_timeout": 2}"#,
        )
        .unwrap();
        assert_eq!(c.host.as_ref().unwrap().address(), "h:6380/1");
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(2)));
        assert!(c.into_builder().build().is_ok());
        let both: CacheConfig =
            serde_json::from_str(r#"{"url": "redis://h", "host": {}}"#).unwrap();
        let err = both.into_builder().build().unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
        assert!(serde_json::from_str::<CacheConfig>(r#"{"nmespace": "x"}"#).is_err());
        let near: CacheConfig =
            serde_json::from_str(r#"{"local_cache": 0, "local_cache_bytes": 1000}"#).unwrap();
        let err = near.into_builder().build().unwrap_err();
        assert!(err.to_string().contains("greater than zero"), "{err}");
    }

    #[test]
    fn redis_cluster_and_sentinel_and_their_bad_combinations() {
        let build = |json: &str| {
            serde_json::from_str::<CacheConfig>(json)
                .unwrap()
                .into_builder()
                .build()
        };
        assert!(build(r#"{"redis_cluster": ["redis://h:7000", "redis://h:7001"]}"#).is_ok());
        assert!(
            build(
                r#"{"sentinel": {"master": "m", "nodes": ["redis://h:26379"], "password": "p"}}"#
            )
            .is_ok()
        );
        for (json, want) in [
            (
                r#"{"redis_cluster": ["redis://h:7000"], "sentinel": {"master": "m", "nodes": []}}"#,
                "not both redis_cluster and sentinel",
            ),
            (
                r#"{"url": "redis://h", "redis_cluster": ["redis://h:7000"]}"#,
                "not both url and redis_cluster",
            ),
            (
                r#"{"host": {}, "sentinel": {"master": "m", "nodes": ["redis://h"]}}"#,
                "not both host and sentinel",
            ),
            (r#"{"redis_cluster": []}"#, "at least one URL"),
            (r#"{"redis_cluster": ["redis://h:7000/2"]}"#, "db 2"),
            (
                r#"{"sentinel": {"master": "", "nodes": ["redis://h"]}}"#,
                "master name",
            ),
            (
                r#"{"sentinel": {"master": "m", "nodes": []}}"#,
                "at least one URL",
            ),
        ] {
            let err = build(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        let typo = r#"{"sentinel": {"master": "m", "node": []}}"#;
        assert!(serde_json::from_str::<CacheConfig>(typo).is_err());
        assert!(serde_json::from_str::<CacheConfig>(r#"{"default_expire": -1}"#).is_err());
    }

    #[test]
    fn stampede_and_staleness_defaults() {
        let c: CacheConfig = serde_json::from_str(
            r#"{"stale_if_error": 3600, "stale_while_revalidate": 30, "expire_jitter": 0.1,
                "lease_wait": 0.5, "single_flight": false}"#,
        )
        .unwrap();
        assert_eq!(c.stale_if_error, Some(Duration::from_secs(3600)));
        assert_eq!(c.lease_wait, Some(Duration::from_millis(500)));
        let debug = format!("{:?}", c.clone().into_builder());
        assert!(debug.contains("expire_jitter: 0.1"), "{debug}");
        assert!(debug.contains("single_flight: false"), "{debug}");
        assert!(c.into_builder().build().is_ok());
        let bad: CacheConfig = serde_json::from_str(r#"{"expire_jitter": 2}"#).unwrap();
        let err = bad.into_builder().build().unwrap_err();
        assert!(err.to_string().contains("expire_jitter"), "{err}");
    }
}
