//! Where a Redis server lives and how to log in to it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::Deserialize;
use url::{Host, ParseError, Url};

use crate::error::{Error, Result};

/// Address and credentials of one Redis server (one db of it).
///
/// The same type configures a single-server [`Cache`](crate::Cache) (through
/// [`CacheBuilder`](crate::CacheBuilder)) and each host of a cluster. It
/// deserializes from the keys rc uses in its host maps, so a config file can
/// hold `{ host = "redis-host01", db = 1 }`.
///
/// ```
/// use rc::HostConfig;
/// let h = HostConfig::new().host("redis-host04").port(6380).db(1).password("s3cret");
/// assert_eq!(h.address(), "redis-host04:6380/1");
/// assert!(!format!("{h:?}").contains("s3cret"));
/// ```
///
/// Deserializing also takes the redis-py option names of a Python rc host
/// map: in `ssl_options` (as rc passes them to redis-py) or on the host
/// itself, `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs`
/// (`"none"` = verify nothing, like `insecure`), `ssl_check_hostname`,
/// `socket_timeout` and `socket_connect_timeout` (seconds). A redis-py option
/// rc cannot honour (`retry_on_timeout = true`, `ssl_check_hostname = false`
/// with verification on, ...) is an error naming it; its redis-py default
/// is accepted. Certificates are checked more strictly than redis-py's
/// default: with verification on, the host name must match too.
///
/// ```
/// // Python: CacheCluster({'cache01': {'host': 'redis-host01', 'ssl': True,
/// //     'ssl_options': {'ssl_ca_certs': '/etc/redis/ca.pem', 'socket_timeout': 0.5}}})
/// let h: rc::HostConfig = serde_json::from_str(r#"{"host": "redis-host01", "ssl": true,
///     "ssl_options": {"ssl_ca_certs": "/etc/redis/ca.pem", "socket_timeout": 0.5}}"#).unwrap();
/// assert_eq!(h.ssl_options.ca_file.as_deref(), Some(std::path::Path::new("/etc/redis/ca.pem")));
/// assert_eq!(h.socket_timeout, Some(std::time::Duration::from_millis(500)));
/// let e = serde_json::from_str::<rc::HostConfig>(r#"{"retry_on_timeout": true}"#).unwrap_err();
/// assert!(e.to_string().contains("`retry_on_timeout`"));
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "crate::host_de::RawHost")]
pub struct HostConfig {
    /// Host name or IP address (default `localhost`).
    pub host: String,
    /// TCP port (default 6379).
    pub port: u16,
    /// Unix socket path; when set, `host` and `port` are ignored.
    pub unix_socket_path: Option<PathBuf>,
    /// Database index (default 0).
    pub db: i64,
    /// ACL user name (Redis 6+).
    pub username: Option<String>,
    /// Password; never shown by `Debug` or in errors.
    pub password: Option<Secret>,
    /// Connect with TLS (`rediss://`).
    pub ssl: bool,
    /// TLS options, used when `ssl` is true.
    pub ssl_options: SslOptions,
    /// Reply timeout of this host, over the cache's or cluster's (redis-py's
    /// `socket_timeout`); also the connect timeout unless that is given.
    pub socket_timeout: Option<Duration>,
    /// Connect timeout of this host, over the cache's or cluster's.
    pub socket_connect_timeout: Option<Duration>,
}

/// TLS settings of a [`HostConfig`].
///
/// Deserializes from these names or redis-py's (`ssl_ca_certs`,
/// `ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs`, `ssl_check_hostname`), see
/// [`HostConfig`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "crate::host_de::RawSsl")]
pub struct SslOptions {
    /// Accept any certificate and host name (self-signed test servers only).
    pub insecure: bool,
    /// PEM file of the certificate authority to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM file of a client certificate to present (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub key_file: Option<PathBuf>,
}

/// A password that prints as `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            host: "localhost".into(),
            port: 6379,
            unix_socket_path: None,
            db: 0,
            username: None,
            password: None,
            ssl: false,
            ssl_options: SslOptions::default(),
            socket_timeout: None,
            socket_connect_timeout: None,
        }
    }
}

impl fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostConfig")
            .field("address", &self.address())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("ssl", &self.ssl)
            .field("socket_timeout", &self.socket_timeout)
            .field("socket_connect_timeout", &self.socket_connect_timeout)
            .finish()
    }
}

impl HostConfig {
    /// `localhost:6379`, db 0, no password.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a URL: `redis://[user:pass@]host[:port][/db]`, `rediss://...`
    /// (TLS), or `redis+unix:///path/to/socket?db=N[&pass=...]` (also `unix://`).
    ///
    /// ```
    /// use rc::HostConfig;
    /// let h = HostConfig::from_url("redis://:pw@cache.local:6380/2").unwrap();
    /// assert_eq!((h.host.as_str(), h.port, h.db), ("cache.local", 6380, 2));
    /// assert!(HostConfig::from_url("http://x").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let bad = |why: &str| Error::config(format!("bad redis URL {:?}: {why}", redact_url(url)));
        let ParsedUrl {
            url: parsed,
            location,
        } = parse_url(url).map_err(|e| bad(&e))?;
        let mut cfg = HostConfig::new();
        match parsed.scheme() {
            scheme @ ("redis" | "rediss") => {
                cfg.ssl = scheme == "rediss";
                match parsed.host() {
                    Some(Host::Domain(host)) => cfg.host = decode(host).map_err(|e| bad(&e))?,
                    Some(Host::Ipv4(ip)) => cfg.host = ip.to_string(),
                    Some(Host::Ipv6(ip)) => cfg.host = ip.to_string(),
                    None => {}
                }
                match parsed.port() {
                    Some(0) => return Err(bad("port 0 is out of range 1..=65535")),
                    Some(port) => cfg.port = port,
                    None => {}
                }
                let db = location.split_once('/').map_or("", |(_, db)| db);
                let db = db.trim_start_matches('/');
                if !db.is_empty() {
                    cfg.db = parse_db(db).map_err(|e| bad(&e))?;
                }
            }
            "redis+unix" | "unix" => {
                // `unix://run/redis.sock` names the relative path `run/redis.sock`.
                let path = decode(&location).map_err(|e| bad(&e))?;
                if path.is_empty() {
                    return Err(bad("missing socket path"));
                }
                cfg.unix_socket_path = Some(PathBuf::from(path));
            }
            other => {
                return Err(bad(&format!(
                    "unknown scheme {other:?}, expected redis, rediss or redis+unix"
                )));
            }
        }
        if !parsed.username().is_empty() {
            cfg.username = Some(decode(parsed.username()).map_err(|e| bad(&e))?);
        }
        if let Some(pass) = parsed.password().filter(|p| !p.is_empty()) {
            cfg.password = Some(Secret(decode(pass).map_err(|e| bad(&e))?));
        }
        apply_query(&mut cfg, parsed.query().unwrap_or("")).map_err(|e| bad(&e))?;
        cfg.validate().map_err(|e| match e {
            Error::Config(why) => bad(&why),
            e => e,
        })?;
        Ok(cfg)
    }

    /// Sets the host name or IP address.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the TCP port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Connects through a unix socket instead of TCP.
    pub fn unix_socket_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.unix_socket_path = Some(path.into());
        self
    }

    /// Sets the database index.
    pub fn db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }

    /// Sets the ACL user name.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(Secret(password.into()));
        self
    }

    /// Turns TLS on or off.
    pub fn ssl(mut self, ssl: bool) -> Self {
        self.ssl = ssl;
        self
    }

    /// Sets TLS options (and turns TLS on).
    pub fn ssl_options(mut self, options: SslOptions) -> Self {
        self.ssl = true;
        self.ssl_options = options;
        self
    }

    /// This host's timeouts: `default` with what the host sets replaced (a
    /// `socket_timeout` alone sets both, as in redis-py).
    pub fn timeouts_over(&self, default: Timeouts) -> Timeouts {
        Timeouts {
            connect: self
                .socket_connect_timeout
                .or(self.socket_timeout)
                .unwrap_or(default.connect),
            response: self.socket_timeout.unwrap_or(default.response),
        }
    }

    /// The address rc names in errors and logs: `host:port/db` or
    /// `unix:/path?db=N`. Never contains the password.
    pub fn address(&self) -> String {
        match &self.unix_socket_path {
            Some(p) => format!("unix:{}?db={}", p.display(), self.db),
            None if self.host.contains(':') => format!("[{}]:{}/{}", self.host, self.port, self.db),
            None => format!("{}:{}/{}", self.host, self.port, self.db),
        }
    }

    /// Checks the fields without touching the network.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(Error::config(format!("host {}: {why}", self.address())));
        if self.unix_socket_path.is_none() {
            if self.host.is_empty() {
                return bad("empty host name".into());
            }
            if self.port == 0 {
                return bad("port 0 is not a valid Redis port".into());
            }
            if self
                .host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
            {
                return bad(format!("invalid host name {:?}", self.host));
            }
        }
        if self.db < 0 {
            return bad(format!("db must be 0 or more, not {}", self.db));
        }
        if self.ssl && self.unix_socket_path.is_some() {
            return bad("TLS over a unix socket is not supported".into());
        }
        Ok(())
    }

    /// The `redis` crate's connection info for this host.
    pub fn connection_info(&self) -> Result<redis::ConnectionInfo> {
        self.validate()?;
        let addr = match &self.unix_socket_path {
            Some(p) => redis::ConnectionAddr::Unix(p.clone()),
            None if self.ssl => tls_addr(self)?,
            None => redis::ConnectionAddr::Tcp(self.host.clone(), self.port),
        };
        let mut redis_info = redis::RedisConnectionInfo::default()
            .set_db(self.db)
            .set_skip_set_lib_name();
        if let Some(u) = &self.username {
            redis_info = redis_info.set_username(u);
        }
        if let Some(p) = &self.password {
            redis_info = redis_info.set_password(p.expose());
        }
        let info = redis::IntoConnectionInfo::into_connection_info(addr)
            .map_err(|e| Error::config(format!("host {}: {e}", self.address())))?;
        Ok(info.set_redis_settings(redis_info))
    }

    /// The `redis` crate's client for this host: no network, but the CA file
    /// of [`SslOptions::ca_file`] is read here.
    pub fn client(&self) -> Result<redis::Client> {
        let info = self.connection_info()?;
        let o = &self.ssl_options;
        let client = if self.ssl && (o.ca_file.is_some() || o.cert_file.is_some()) {
            self.client_with_certificates(info)?
        } else {
            redis::Client::open(info)
        };
        client.map_err(|e| Error::config(format!("host {}: {e}", self.address())))
    }

    #[cfg(feature = "tls")]
    fn client_with_certificates(
        &self,
        info: redis::ConnectionInfo,
    ) -> Result<redis::RedisResult<redis::Client>> {
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                Error::config(format!(
                    "host {}: cannot read ssl_options.{what} {}: {e}",
                    self.address(),
                    path.display()
                ))
            })
        };
        let o = &self.ssl_options;
        let root_cert = o
            .ca_file
            .as_deref()
            .map(|p| read("ca_file", p))
            .transpose()?;
        let client_tls = match (&o.cert_file, &o.key_file) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: read("cert_file", cert)?,
                client_key: read("key_file", key)?,
            }),
            (None, None) => None,
            _ => {
                return Err(Error::config(format!(
                    "host {}: a client certificate needs both ssl_options.cert_file and key_file",
                    self.address()
                )));
            }
        };
        let certs = redis::TlsCertificates {
            client_tls,
            root_cert,
        };
        Ok(redis::Client::build_with_tls(info, certs))
    }

    #[cfg(not(feature = "tls"))]
    fn client_with_certificates(
        &self,
        _info: redis::ConnectionInfo,
    ) -> Result<redis::RedisResult<redis::Client>> {
        Err(Error::config(format!(
            "host {} asks for TLS, but rc was built without its `tls` feature",
            self.address()
        )))
    }
}

#[cfg(feature = "tls")]
fn tls_addr(cfg: &HostConfig) -> Result<redis::ConnectionAddr> {
    Ok(redis::ConnectionAddr::TcpTls {
        host: cfg.host.clone(),
        port: cfg.port,
        insecure: cfg.ssl_options.insecure,
        tls_params: None,
    })
}

#[cfg(not(feature = "tls"))]
fn tls_addr(cfg: &HostConfig) -> Result<redis::ConnectionAddr> {
    Err(Error::config(format!(
        "host {} asks for TLS, but rc was built without its `tls` feature",
        cfg.address()
    )))
}

/// Characters `url` would drop (tabs, newlines), trim (blanks and controls at
/// either end) or cut at (`#`), escaped before parsing so that they reach
/// [`decode`] as rc's earlier parser saw them: a password may hold a `#`.
const KEEP: &AsciiSet = &CONTROLS.add(b' ').add(b'#');

/// A redis URL parsed by [`parse_url`].
struct ParsedUrl {
    url: Url,
    /// Host, port and path as written, up to `?`: the socket path of a unix
    /// URL, or a db path that `url` would have rewritten (`/./1` is no db 1).
    location: String,
}

/// Parses a redis URL with the `url` crate, keeping the rules of rc's
/// earlier parser where `url` differs:
/// - blanks, controls and `#` are ordinary characters (see [`KEEP`]);
/// - in redis-py's `unix://user:pass@/path`, all before the first `@/` is
///   user and password, `/` and `?` included;
/// - `host:` with no port number is refused, not read as the default port;
/// - an empty host before `:port` or after `user:pass@` is localhost, where
///   `url` fails; this also lets `unix://user:pass@/path` through.
fn parse_url(url: &str) -> std::result::Result<ParsedUrl, String> {
    let mut url = utf8_percent_encode(url, KEEP).to_string();
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return Err("missing scheme".into());
    };
    let scheme = url[..start - 3].to_ascii_lowercase();
    if (scheme == "unix" || scheme == "redis+unix")
        && !url[start..].starts_with('/')
        && let Some(at) = url[start..].find("@/")
    {
        let userinfo = url[start..start + at]
            .replace('/', "%2F")
            .replace('?', "%3F");
        url.replace_range(start..start + at, &userinfo);
    }
    let authority = url[start..].split(['/', '?']).next().unwrap_or("");
    if authority.ends_with(':') {
        return Err("missing port number after ':'".into());
    }
    let host_start = start + authority.rfind('@').map_or(0, |i| i + 1);
    let location = url[host_start..].split('?').next().unwrap_or("").to_owned();
    let parsed = match Url::parse(&url) {
        Err(ParseError::EmptyHost) => Url::parse(&format!(
            "{}localhost{}",
            &url[..host_start],
            &url[host_start..]
        )),
        parsed => parsed,
    };
    match parsed {
        Ok(url) if url.has_authority() => Ok(ParsedUrl { url, location }),
        Ok(_) | Err(ParseError::RelativeUrlWithoutBase) => Err("missing scheme".into()),
        Err(ParseError::InvalidPort) => Err("invalid port, expected 1..=65535".into()),
        Err(ParseError::InvalidDomainCharacter) => Err("invalid character in host name".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_db(s: &str) -> std::result::Result<i64, String> {
    s.parse::<i64>()
        .ok()
        .filter(|d| *d >= 0)
        .ok_or_else(|| format!("invalid db {s:?}"))
}

fn apply_query(cfg: &mut HostConfig, query: &str) -> std::result::Result<(), String> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v)?;
        match k {
            "db" => cfg.db = parse_db(&v)?,
            "pass" | "password" => cfg.password = Some(Secret(v)),
            "user" | "username" => cfg.username = Some(v),
            "insecure" => cfg.ssl_options.insecure = v.is_empty() || v == "true" || v == "1",
            _ => return Err(format!("unknown query parameter {k:?}")),
        }
    }
    Ok(())
}

/// Percent-decodes `s`, refusing a `%` without two hex digits after it and
/// escapes that do not make UTF-8 (where `url` would pass them through).
fn decode(s: &str) -> std::result::Result<String, String> {
    let hex2 = |t: &str| {
        t.as_bytes()
            .get(..2)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    };
    if !s.split('%').skip(1).all(hex2) {
        return Err("bad percent escape".into());
    }
    match percent_decode_str(s).decode_utf8() {
        Ok(decoded) => Ok(decoded.into_owned()),
        Err(_) => Err("percent escapes are not UTF-8".into()),
    }
}

/// The URL with its password replaced by `***`, for error messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.chars().take(200).collect();
    };
    // Conservative: anything before the last '@' may hold a password.
    let mut out = match rest.rsplit_once('@') {
        Some((userinfo, after)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{after}")
        }
        None => url.to_owned(),
    };
    if let Some(i) = out.find("pass") {
        out.truncate(i);
        out.push_str("pass=***");
    }
    out.chars().take(200).collect()
}

/// Connect and response timeouts of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest wait for a TCP/unix connect plus the handshake (default 1 s).
    pub connect: Duration,
    /// Longest wait for a reply once a command is sent (default 1 s).
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(1),
            response: Duration::from_secs(1),
        }
    }
}

impl Timeouts {
    /// Timeouts as a config file gives them: `None` when it gives neither,
    /// else the defaults with what is given replaced.
    #[doc(hidden)]
    pub fn configured(connect: Option<Duration>, response: Option<Duration>) -> Option<Self> {
        if connect.is_none() && response.is_none() {
            return None;
        }
        let d = Timeouts::default();
        Some(Timeouts {
            connect: connect.unwrap_or(d.connect),
            response: response.unwrap_or(d.response),
        })
    }

    /// Rejects zero durations, which the socket layer treats as "no timeout".
    pub fn validate(&self) -> Result<()> {
        if self.connect.is_zero() || self.response.is_zero() {
            return Err(Error::config("timeouts must be greater than zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16, db: i64) -> HostConfig {
        HostConfig::new().host(host).port(port).db(db)
    }

    fn unix(path: &str, db: i64) -> HostConfig {
        HostConfig::new().unix_socket_path(path).db(db)
    }

    fn insecure() -> SslOptions {
        SslOptions {
            insecure: true,
            ..SslOptions::default()
        }
    }

    #[test]
    fn from_url_accepts_every_documented_form() {
        let cases = [
            ("redis://", HostConfig::new()),
            ("redis://localhost", HostConfig::new()),
            ("redis:///", HostConfig::new()),
            ("redis://cache.local:6380/2", tcp("cache.local", 6380, 2)),
            ("redis://Cache.Local", tcp("Cache.Local", 6379, 0)),
            ("redis://127.0.0.1:6379/0", tcp("127.0.0.1", 6379, 0)),
            ("redis://h:06380", tcp("h", 6380, 0)),
            ("redis://h:65535", tcp("h", 65535, 0)),
            ("redis://héllo", tcp("héllo", 6379, 0)),
            ("redis://:6380", tcp("localhost", 6380, 0)),
            ("redis://:6380/3", tcp("localhost", 6380, 3)),
            // Schemes are case-insensitive (RFC 3986); rc's hand-written parser refused this.
            ("REDIS://h", tcp("h", 6379, 0)),
            // TLS
            ("rediss://h", tcp("h", 6379, 0).ssl(true)),
            ("rediss://h:6390/1", tcp("h", 6390, 1).ssl(true)),
            (
                "rediss://h?insecure",
                tcp("h", 6379, 0).ssl_options(insecure()),
            ),
            (
                "rediss://h?insecure=",
                tcp("h", 6379, 0).ssl_options(insecure()),
            ),
            (
                "rediss://h?insecure=true",
                tcp("h", 6379, 0).ssl_options(insecure()),
            ),
            (
                "rediss://h?insecure=1",
                tcp("h", 6379, 0).ssl_options(insecure()),
            ),
            ("rediss://h?insecure=0", tcp("h", 6379, 0).ssl(true)),
            ("rediss://h?insecure=false", tcp("h", 6379, 0).ssl(true)),
            // credentials
            (
                "redis://user:pw@h:1/3",
                tcp("h", 1, 3).username("user").password("pw"),
            ),
            ("redis://:pw@h", tcp("h", 6379, 0).password("pw")),
            ("redis://user@h", tcp("h", 6379, 0).username("user")),
            ("redis://user:@h", tcp("h", 6379, 0).username("user")),
            ("redis://@h", tcp("h", 6379, 0)),
            (
                "redis://u%40x:p%40ss@h",
                tcp("h", 6379, 0).username("u@x").password("p@ss"),
            ),
            (
                "redis://:p%3As%2Fs%25@h",
                tcp("h", 6379, 0).password("p:s/s%"),
            ),
            ("redis://:p%C3%A9@h", tcp("h", 6379, 0).password("pé")),
            ("redis://:pé@h", tcp("h", 6379, 0).password("pé")),
            ("redis://:p ss@h", tcp("h", 6379, 0).password("p ss")),
            ("redis://:p@ss@h", tcp("h", 6379, 0).password("p@ss")),
            ("redis://:pa#ss@h", tcp("h", 6379, 0).password("pa#ss")),
            ("redis://:p[s]s@h", tcp("h", 6379, 0).password("p[s]s")),
            ("redis://:p\tss@h", tcp("h", 6379, 0).password("p\tss")),
            (
                "redis://u:p:q@h",
                tcp("h", 6379, 0).username("u").password("p:q"),
            ),
            ("redis://:pw@", HostConfig::new().password("pw")),
            ("redis://:pw@/1", HostConfig::new().db(1).password("pw")),
            (
                "redis://:pw@:6380/1",
                tcp("localhost", 6380, 1).password("pw"),
            ),
            // db and query parameters
            ("redis://h/15", tcp("h", 6379, 15)),
            ("redis://h?db=4", tcp("h", 6379, 4)),
            ("redis://h/1?db=5", tcp("h", 6379, 5)),
            ("redis://h/?db=5", tcp("h", 6379, 5)),
            (
                "redis://h?pass=x&user=u",
                tcp("h", 6379, 0).username("u").password("x"),
            ),
            (
                "redis://h?password=x&username=u",
                tcp("h", 6379, 0).username("u").password("x"),
            ),
            (
                "redis://h?pass=p%40ss%26",
                tcp("h", 6379, 0).password("p@ss&"),
            ),
            ("redis://h?pass=a+b", tcp("h", 6379, 0).password("a+b")),
            ("redis://h?pass=a#b", tcp("h", 6379, 0).password("a#b")),
            ("redis://h?pass=a=b", tcp("h", 6379, 0).password("a=b")),
            ("redis://h?pass=a b", tcp("h", 6379, 0).password("a b")),
            ("redis://h?pass=x ", tcp("h", 6379, 0).password("x ")),
            ("redis://h?db=1&&pass=x&", tcp("h", 6379, 1).password("x")),
            (
                "redis://u:p@h?user=v&pass=q",
                tcp("h", 6379, 0).username("v").password("q"),
            ),
            // IPv6
            ("redis://[::1]", tcp("::1", 6379, 0)),
            ("redis://[::1]:6380", tcp("::1", 6380, 0)),
            ("redis://[::1]:6380/2", tcp("::1", 6380, 2)),
            (
                "redis://u:p@[::1]:6380/2?db=3",
                tcp("::1", 6380, 3).username("u").password("p"),
            ),
            ("redis://[2001:db8::7]", tcp("2001:db8::7", 6379, 0)),
            // unix sockets
            ("unix:///tmp/redis.sock", unix("/tmp/redis.sock", 0)),
            ("redis+unix:///tmp/redis.sock", unix("/tmp/redis.sock", 0)),
            ("redis+unix:///path/to/sock?db=3", unix("/path/to/sock", 3)),
            (
                "redis+unix:///path/to/sock?db=3&pass=p%40ss",
                unix("/path/to/sock", 3).password("p@ss"),
            ),
            (
                "redis+unix:///s?password=x&username=u",
                unix("/s", 0).username("u").password("x"),
            ),
            (
                "unix://user:pass@/path/to/sock?db=2",
                unix("/path/to/sock", 2).username("user").password("pass"),
            ),
            (
                "unix://:pa%40ss@/path/to/sock",
                unix("/path/to/sock", 0).password("pa@ss"),
            ),
            ("redis+unix://user@/s", unix("/s", 0).username("user")),
            (
                "unix://u:p/a?ss@/s",
                unix("/s", 0).username("u").password("p/a?ss"),
            ),
            (
                "unix://u:p#ss@/s?db=1",
                unix("/s", 1).username("u").password("p#ss"),
            ),
            // rc's hand-written parser kept `u:pw@` in the path here.
            (
                "unix://u:pw@run/redis.sock",
                unix("run/redis.sock", 0).username("u").password("pw"),
            ),
            ("redis+unix:///tmp/my%20sock", unix("/tmp/my sock", 0)),
            ("redis+unix:///tmp/my sock", unix("/tmp/my sock", 0)),
            (
                "redis+unix:///tmp/r%C3%A9dis.sock",
                unix("/tmp/rédis.sock", 0),
            ),
            ("redis+unix:///", unix("/", 0)),
            ("redis+unix://redis.sock", unix("redis.sock", 0)),
            ("unix://run/redis.sock?db=1", unix("run/redis.sock", 1)),
            ("unix://run/../redis.sock", unix("run/../redis.sock", 0)),
            (
                "redis+unix:///var/run/../redis.sock",
                unix("/var/run/../redis.sock", 0),
            ),
            ("redis+unix:///tmp/a#b", unix("/tmp/a#b", 0)),
        ];
        for (url, want) in cases {
            let got = HostConfig::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(got, want, "{url}");
            // `==` compares passwords too, but says nothing when they differ.
            assert_eq!(
                got.password.as_ref().map(Secret::expose),
                want.password.as_ref().map(Secret::expose),
                "{url}"
            );
        }
    }

    const PW: &str = "s3cr3t";

    #[test]
    fn from_url_errors_say_what_is_wrong_without_the_password() {
        let cases = [
            ("", "missing scheme"),
            ("redis", "missing scheme"),
            ("localhost:6379", "missing scheme"),
            ("redis:/localhost", "missing scheme"),
            ("redis:localhost", "missing scheme"),
            ("http://localhost", "unknown scheme"),
            ("rediss+unix:///tmp/s.sock", "unknown scheme"),
            ("redis://localhost:0", "port"),
            ("redis://localhost:65536", "port"),
            ("redis://localhost:99999", "port"),
            ("redis://localhost:-1", "port"),
            ("redis://localhost:abc", "port"),
            ("redis://localhost:", "port"),
            ("redis://[::1]:99999", "port"),
            ("redis://:s3cr3t@localhost:0", "port"),
            ("redis://user:s3cr3t@localhost:99999/0", "port"),
            ("redis://localhost/-1", "db"),
            ("redis://localhost/x", "db"),
            ("redis://localhost/1/2", "db"),
            ("redis://localhost/./1", "db"),
            ("redis://localhost/..", "db"),
            ("redis://localhost/1#x", "db"),
            ("redis://localhost/99999999999999999999", "db"),
            ("redis://localhost?db=-1", "db"),
            ("redis://localhost?db=x", "db"),
            ("redis://localhost?db=", "db"),
            ("redis://localhost?password=s3cr3t&db=x", "db"),
            ("redis+unix:///tmp/s.sock?db=-1", "db"),
            ("redis+unix:///tmp/s.sock?pass=s3cr3t&db=-1", "db"),
            ("unix://u:s3cr3t@/tmp/s.sock?db=x", "db"),
            ("redis://localhost?bogus=1", "unknown query parameter"),
            ("redis+unix:///tmp/s.sock?nope=1", "unknown query parameter"),
            ("redis+unix://", "missing socket path"),
            ("unix://", "missing socket path"),
            ("unix://?db=1", "missing socket path"),
            ("redis://:%zz@localhost", "percent"),
            ("redis://:s3cr3t%@localhost", "percent"),
            ("redis://%zz@localhost", "percent"),
            ("redis://h?pass=s3cr3t%4", "percent"),
            ("redis+unix:///tmp/%zz", "percent"),
            ("redis://:%ff%fe@localhost", "UTF-8"),
            ("redis+unix:///tmp/%ff", "UTF-8"),
            ("redis://h?pass=%ff", "UTF-8"),
            // Messages for these differ between the parsers; any config error will do.
            ("redis://[::1", ""),
            ("redis://ho st", ""),
            ("redis://tab\thost", ""),
            ("redis://nul\0host", ""),
            ("redis://héllo wörld:6379", ""),
        ];
        for (url, want) in cases {
            match HostConfig::from_url(url) {
                Err(Error::Config(msg)) => {
                    assert!(msg.starts_with("bad redis URL \""), "{url:?}: {msg}");
                    assert!(msg.contains(want), "{url:?}: {msg}");
                    assert!(!msg.contains(PW), "{url:?}: {msg}");
                }
                other => panic!("{url:?}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn redact_url_hides_passwords() {
        for (url, want) in [
            ("redis://h:6379/1", "redis://h:6379/1"),
            ("redis://:s3cr3t@h", "redis://:***@h"),
            ("redis://user:s3cr3t@h:1/2", "redis://user:***@h:1/2"),
            ("redis://:s3/cr#3t@h", "redis://:***@h"),
            ("unix://u:s3cr3t@/tmp/s", "unix://u:***@/tmp/s"),
            (
                "redis+unix:///tmp/s?pass=s3cr3t",
                "redis+unix:///tmp/s?pass=***",
            ),
            ("redis://h?db=1&password=s3cr3t", "redis://h?db=1&pass=***"),
            ("no scheme", "no scheme"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
