//! Deserialization of [`HostConfig`] and [`SslOptions`]: rc's own field
//! names plus the redis-py option names a Python rc host map carries.
//!
//! rc 0.3.1 builds a host from `host`, `port`, `unix_socket_path`, `db`,
//! `password`, `ssl` and `ssl_options`, and hands `ssl_options` to redis-py
//! 3.5.3's connection as keyword arguments (`ssl_ca_certs`, `ssl_certfile`,
//! `ssl_keyfile`, `ssl_cert_reqs`, `ssl_check_hostname`, and any other
//! connection option such as `socket_timeout`). Those names are accepted in
//! `ssl_options` and, as redis-py's own keyword arguments, on the host itself.
//! A redis-py option rc for Rust cannot honour is an error naming it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::host::{HostConfig, Secret, SslOptions};

/// redis-py connection options with no counterpart here, and their
/// redis-py defaults (which change nothing, so they are accepted).
const UNSUPPORTED: &[(&str, &str)] = &[
    ("socket_keepalive", "false"),
    ("socket_keepalive_options", "null"),
    ("socket_type", "0"),
    ("retry_on_timeout", "false"),
    ("encoding", "\"utf-8\""),
    ("encoding_errors", "\"strict\""),
    ("decode_responses", "false"),
    ("socket_read_size", "65536"),
    ("health_check_interval", "0"),
    ("client_name", "null"),
    ("max_connections", "null"),
];

/// The TLS and connection options of a host, under rc's or redis-py's names.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawSsl {
    insecure: Option<bool>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    ssl_ca_certs: Option<PathBuf>,
    ssl_certfile: Option<PathBuf>,
    ssl_keyfile: Option<PathBuf>,
    /// `"required"` (redis-py's default), `"optional"`, `"none"` or null.
    #[serde(deserialize_with = "present")]
    ssl_cert_reqs: Option<Option<String>>,
    ssl_check_hostname: Option<bool>,
    #[serde(deserialize_with = "secs")]
    socket_timeout: Option<Duration>,
    #[serde(deserialize_with = "secs")]
    socket_connect_timeout: Option<Duration>,
    socket_keepalive: Option<Value>,
    socket_keepalive_options: Option<Value>,
    socket_type: Option<Value>,
    retry_on_timeout: Option<Value>,
    encoding: Option<Value>,
    encoding_errors: Option<Value>,
    decode_responses: Option<Value>,
    socket_read_size: Option<Value>,
    health_check_interval: Option<Value>,
    client_name: Option<Value>,
    max_connections: Option<Value>,
}

/// A host under rc's names, with redis-py's connection options beside them.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawHost {
    host: Option<String>,
    port: Option<u16>,
    unix_socket_path: Option<PathBuf>,
    db: Option<i64>,
    username: Option<String>,
    password: Option<Secret>,
    ssl: Option<bool>,
    ssl_options: Option<RawSsl>,
    insecure: Option<bool>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    ssl_ca_certs: Option<PathBuf>,
    ssl_certfile: Option<PathBuf>,
    ssl_keyfile: Option<PathBuf>,
    #[serde(deserialize_with = "present")]
    ssl_cert_reqs: Option<Option<String>>,
    ssl_check_hostname: Option<bool>,
    #[serde(deserialize_with = "secs")]
    socket_timeout: Option<Duration>,
    #[serde(deserialize_with = "secs")]
    socket_connect_timeout: Option<Duration>,
    socket_keepalive: Option<Value>,
    socket_keepalive_options: Option<Value>,
    socket_type: Option<Value>,
    retry_on_timeout: Option<Value>,
    encoding: Option<Value>,
    encoding_errors: Option<Value>,
    decode_responses: Option<Value>,
    socket_read_size: Option<Value>,
    health_check_interval: Option<Value>,
    client_name: Option<Value>,
    max_connections: Option<Value>,
}

/// `Some(None)` for an explicit null, so a given `None` differs from no value.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Seconds (fractions allowed); null, as redis-py's "no timeout", keeps rc's
/// bounded default.
fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(s) => match Duration::try_from_secs_f64(s) {
            Ok(t) if !t.is_zero() => Ok(Some(t)),
            _ => Err(serde::de::Error::custom(format!(
                "{s} is not a valid timeout in seconds (must be more than 0)"
            ))),
        },
    }
}

/// One option given under two names (or twice) is refused.
fn one_of<T>(name: &str, a: Option<T>, b: Option<T>) -> Result<Option<T>, String> {
    match (a, b) {
        (Some(_), Some(_)) => Err(format!(
            "`{name}` is given twice (under rc's and redis-py's names, or on the host and in ssl_options)"
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// The options of both levels of a host, merged.
#[derive(Default)]
struct Merged {
    ssl: SslOptions,
    /// `ssl_check_hostname = false` while certificates are verified.
    unchecked_host_name: bool,
    socket_timeout: Option<Duration>,
    socket_connect_timeout: Option<Duration>,
}

impl RawSsl {
    /// `self` with `other`'s options added; the same option on both is an error.
    fn merge(self, other: RawSsl) -> Result<RawSsl, String> {
        macro_rules! merge {
            ($($f:ident)*) => {
                RawSsl { $($f: one_of(stringify!($f), self.$f, other.$f)?,)* }
            };
        }
        Ok(
            merge!(insecure ca_file cert_file key_file ssl_ca_certs ssl_certfile ssl_keyfile
            ssl_cert_reqs ssl_check_hostname socket_timeout socket_connect_timeout
            socket_keepalive socket_keepalive_options socket_type retry_on_timeout encoding
            encoding_errors decode_responses socket_read_size health_check_interval client_name
            max_connections),
        )
    }

    /// Checks every option and maps it to rc's.
    fn resolve(self) -> Result<Merged, String> {
        let unsupported = [
            self.socket_keepalive,
            self.socket_keepalive_options,
            self.socket_type,
            self.retry_on_timeout,
            self.encoding,
            self.encoding_errors,
            self.decode_responses,
            self.socket_read_size,
            self.health_check_interval,
            self.client_name,
            self.max_connections,
        ];
        for ((name, default), value) in UNSUPPORTED.iter().zip(unsupported) {
            if let Some(value) = value
                && serde_json::from_str::<Value>(default).ok() != Some(value.clone())
            {
                return Err(format!(
                    "redis-py option `{name}` = {value} cannot be honoured by rc for Rust \
                     (it has no such setting); remove it or give redis-py's default {default}"
                ));
            }
        }
        let verify = match self.ssl_cert_reqs {
            None => None,
            Some(None) => Some(false),
            Some(Some(reqs)) => match reqs.as_str() {
                "required" | "optional" => Some(true),
                "none" => Some(false),
                other => {
                    return Err(format!(
                        "ssl_cert_reqs {other:?} is not one of \"required\", \"optional\", \"none\""
                    ));
                }
            },
        };
        let insecure = match (self.insecure, verify) {
            (Some(insecure), Some(verify)) if insecure == verify => {
                return Err("`insecure` and `ssl_cert_reqs` disagree".into());
            }
            (Some(insecure), _) => insecure,
            (None, verify) => verify == Some(false),
        };
        let cert_file = one_of("ssl_certfile", self.cert_file, self.ssl_certfile)?;
        let key_file = one_of("ssl_keyfile", self.key_file, self.ssl_keyfile)?;
        if cert_file.is_some() != key_file.is_some() {
            return Err(
                "a client certificate needs both ssl_certfile and ssl_keyfile (cert_file and key_file)"
                    .into(),
            );
        }
        let ca_file = one_of("ssl_ca_certs", self.ca_file, self.ssl_ca_certs)?;
        Ok(Merged {
            ssl: SslOptions {
                insecure,
                ca_file,
                cert_file,
                key_file,
            },
            unchecked_host_name: !insecure && self.ssl_check_hostname == Some(false),
            socket_timeout: self.socket_timeout,
            socket_connect_timeout: self.socket_connect_timeout,
        })
    }
}

/// rustls checks the host name of every certificate it verifies.
fn check_host_name(merged: &Merged) -> Result<(), String> {
    if merged.unchecked_host_name {
        return Err(
            "ssl_check_hostname = false cannot be honoured by rc for Rust: it checks \
                    the host name of every certificate it verifies; give the server a \
                    certificate for its host name, or ssl_cert_reqs = \"none\" to verify nothing"
                .into(),
        );
    }
    Ok(())
}

impl TryFrom<RawSsl> for SslOptions {
    type Error = String;

    fn try_from(raw: RawSsl) -> Result<Self, String> {
        if raw.socket_timeout.is_some() || raw.socket_connect_timeout.is_some() {
            return Err("socket_timeout and socket_connect_timeout belong to a host config".into());
        }
        let merged = raw.resolve()?;
        check_host_name(&merged)?;
        Ok(merged.ssl)
    }
}

impl TryFrom<RawHost> for HostConfig {
    type Error = String;

    fn try_from(raw: RawHost) -> Result<Self, String> {
        let flat = RawSsl {
            insecure: raw.insecure,
            ca_file: raw.ca_file,
            cert_file: raw.cert_file,
            key_file: raw.key_file,
            ssl_ca_certs: raw.ssl_ca_certs,
            ssl_certfile: raw.ssl_certfile,
            ssl_keyfile: raw.ssl_keyfile,
            ssl_cert_reqs: raw.ssl_cert_reqs,
            ssl_check_hostname: raw.ssl_check_hostname,
            socket_timeout: raw.socket_timeout,
            socket_connect_timeout: raw.socket_connect_timeout,
            socket_keepalive: raw.socket_keepalive,
            socket_keepalive_options: raw.socket_keepalive_options,
            socket_type: raw.socket_type,
            retry_on_timeout: raw.retry_on_timeout,
            encoding: raw.encoding,
            encoding_errors: raw.encoding_errors,
            decode_responses: raw.decode_responses,
            socket_read_size: raw.socket_read_size,
            health_check_interval: raw.health_check_interval,
            client_name: raw.client_name,
            max_connections: raw.max_connections,
        };
        let merged = flat.merge(raw.ssl_options.unwrap_or_default())?.resolve()?;
        // As rc and redis-py: TLS options matter only with `ssl = true`.
        let ssl = raw.ssl.unwrap_or(false);
        if ssl {
            check_host_name(&merged)?;
        }
        let d = HostConfig::default();
        Ok(HostConfig {
            host: raw.host.unwrap_or(d.host),
            port: raw.port.unwrap_or(d.port),
            unix_socket_path: raw.unix_socket_path,
            db: raw.db.unwrap_or(d.db),
            username: raw.username,
            password: raw.password,
            ssl,
            ssl_options: merged.ssl,
            socket_timeout: merged.socket_timeout,
            socket_connect_timeout: merged.socket_connect_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(json: &str) -> Result<HostConfig, String> {
        serde_json::from_str::<HostConfig>(json).map_err(|e| e.to_string())
    }

    /// A host map as rc 0.3.1 takes it, TLS options in `ssl_options`.
    #[test]
    fn rc_host_maps_with_redis_py_names() {
        let h = host(
            r#"{"host": "redis-host01", "port": 6380, "db": 2, "password": "pw", "ssl": true,
                "ssl_options": {"ssl_ca_certs": "/etc/ca.pem", "ssl_certfile": "/etc/c.pem",
                                "ssl_keyfile": "/etc/k.pem", "ssl_cert_reqs": "required",
                                "ssl_check_hostname": true, "socket_timeout": 0.5}}"#,
        )
        .unwrap();
        assert_eq!(h.address(), "redis-host01:6380/2");
        assert_eq!(h.password.as_ref().map(Secret::expose), Some("pw"));
        assert!(h.ssl && !h.ssl_options.insecure);
        assert_eq!(h.ssl_options.ca_file, Some("/etc/ca.pem".into()));
        assert_eq!(h.ssl_options.cert_file, Some("/etc/c.pem".into()));
        assert_eq!(h.ssl_options.key_file, Some("/etc/k.pem".into()));
        assert_eq!(h.socket_timeout, Some(Duration::from_millis(500)));
        let t = h.timeouts_over(crate::Timeouts::default());
        // redis-py: the connect timeout is the socket timeout unless given.
        assert_eq!(
            (t.connect, t.response),
            (Duration::from_millis(500), Duration::from_millis(500))
        );

        // CERT_NONE: nothing verified, as `insecure`.
        let h = host(r#"{"ssl": true, "ssl_options": {"ssl_cert_reqs": "none"}}"#).unwrap();
        assert!(h.ssl && h.ssl_options.insecure);
        let h = host(r#"{"ssl": true, "ssl_options": {"ssl_cert_reqs": null}}"#).unwrap();
        assert!(h.ssl_options.insecure);
        // As rc: ssl_options without ssl = true connect in the clear.
        let h = host(r#"{"ssl_options": {"ssl_ca_certs": "/ca.pem"}}"#).unwrap();
        assert!(!h.ssl);
        // redis-py's keyword arguments on the host itself.
        let h = host(
            r#"{"ssl_ca_certs": "/ca.pem", "socket_connect_timeout": 2, "socket_timeout": 1}"#,
        )
        .unwrap();
        assert!(
            !h.ssl,
            "as redis-py, TLS options without ssl = true do nothing"
        );
        assert_eq!(h.ssl_options.ca_file, Some("/ca.pem".into()));
        assert!(host(r#"{"ssl_options": {"ssl_check_hostname": false}}"#).is_ok());
        let t = h.timeouts_over(crate::Timeouts::default());
        assert_eq!(
            (t.connect, t.response),
            (Duration::from_secs(2), Duration::from_secs(1))
        );
        // redis-py defaults of unsupported options change nothing.
        let h = host(
            r#"{"unix_socket_path": "/tmp/r.sock", "retry_on_timeout": false, "encoding": "utf-8",
                "socket_keepalive": false, "health_check_interval": 0, "socket_timeout": null}"#,
        )
        .unwrap();
        assert_eq!(h.address(), "unix:/tmp/r.sock?db=0");
        assert_eq!(h.socket_timeout, None);
        // rc's own names still work.
        let h = host(r#"{"ssl": true, "ssl_options": {"insecure": true}}"#).unwrap();
        assert!(h.ssl_options.insecure);
        assert_eq!(host("{}").unwrap(), HostConfig::new());
    }

    #[test]
    fn options_that_cannot_be_honoured_are_named() {
        for (json, want) in [
            (r#"{"retry_on_timeout": true}"#, "`retry_on_timeout` = true"),
            (
                r#"{"ssl_options": {"socket_keepalive": true}}"#,
                "`socket_keepalive` = true",
            ),
            (r#"{"decode_responses": true}"#, "`decode_responses`"),
            (r#"{"client_name": "web"}"#, "`client_name`"),
            (
                r#"{"ssl": true, "ssl_options": {"ssl_check_hostname": false}}"#,
                "ssl_check_hostname = false",
            ),
            (
                r#"{"ssl_options": {"ssl_cert_reqs": "sometimes"}}"#,
                "\"sometimes\"",
            ),
            (
                r#"{"ssl_options": {"ssl_certfile": "/c.pem"}}"#,
                "ssl_keyfile",
            ),
            (
                r#"{"ssl_ca_certs": "/a", "ssl_options": {"ssl_ca_certs": "/b"}}"#,
                "given twice",
            ),
            (r#"{"ca_file": "/a", "ssl_ca_certs": "/b"}"#, "given twice"),
            (r#"{"socket_timeout": 0}"#, "more than 0"),
            (r#"{"socket_timeout": -1}"#, "more than 0"),
            (r#"{"hots": "x"}"#, "unknown field `hots`"),
            (
                r#"{"ssl_options": {"ssl_ca_cert": "/a"}}"#,
                "unknown field `ssl_ca_cert`",
            ),
        ] {
            let e = host(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
        let e = serde_json::from_str::<SslOptions>(r#"{"socket_timeout": 1}"#).unwrap_err();
        assert!(e.to_string().contains("belong to a host"), "{e}");
        let ssl: SslOptions = serde_json::from_str(r#"{"ssl_ca_certs": "/ca.pem"}"#).unwrap();
        assert_eq!(ssl.ca_file, Some("/ca.pem".into()));
    }
}
