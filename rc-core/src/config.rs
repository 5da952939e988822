//! [`CacheConfig`]: a single-server cache described in a configuration file.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::builder::{CacheBuilder, CacheOptions};
use crate::error::Error;
use crate::host::{HostConfig, Timeouts};

/// The options of [`CacheBuilder`] as data, for an application's TOML, YAML
/// or JSON configuration. Durations are seconds (fractions allowed).
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

impl CacheConfig {
    /// A builder holding this configuration; a config giving both `url` and
    /// `host` fails when built.
    pub fn into_builder(self) -> CacheBuilder {
        let b = CacheBuilder::new();
        let b = match (self.url, self.host) {
            (Some(_), Some(_)) => b.fail(Error::config(
                "give the server as `url` or as `host`, not both",
            )),
            (Some(url), None) => b.url(&url),
            (None, Some(host)) => b.host_config(host),
            (None, None) => b,
        };
        let b = b.options(CacheOptions::configured(
            self.namespace,
            self.default_expire,
        ));
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
