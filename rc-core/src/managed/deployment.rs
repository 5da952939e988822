//! [`Deployment`]: how a [`CacheBuilder`](crate::CacheBuilder) finds its
//! servers, and the checks of what may be given with it.

use crate::error::{Error, Result};
use crate::host::{HostConfig, redact_url};

use super::Source;

/// How a [`CacheBuilder`](crate::CacheBuilder)'s servers are found.
#[derive(Clone, Default)]
pub(crate) enum Deployment {
    /// The one server of its `host`.
    #[default]
    Single,
    /// A Redis Cluster, through these seed URLs.
    Cluster(Vec<String>),
    /// The primary Sentinels know as `master`, through these Sentinel URLs.
    Sentinel {
        master: String,
        sentinels: Vec<String>,
    },
    /// Both of the above were given.
    Conflict,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls = |urls: &[String]| urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>();
        match self {
            Deployment::Single => f.write_str("one server"),
            Deployment::Conflict => f.write_str("both Redis Cluster and Sentinel"),
            Deployment::Cluster(seeds) => write!(f, "Redis Cluster {:?}", urls(seeds)),
            Deployment::Sentinel { master, sentinels } => {
                write!(f, "Sentinel {master:?} {:?}", urls(sentinels))
            }
        }
    }
}

/// The server options that say where one server is.
const ADDRESS: [&str; 5] = ["url", "host_config", "host", "port", "unix_socket_path"];

impl Deployment {
    /// For a Redis Cluster or Sentinel: where the primaries are found, and
    /// the address and credentials their backends start from. `given` are
    /// the server options the builder set, `host` its server.
    pub(crate) fn source(
        &self,
        given: &[&str],
        host: &HostConfig,
    ) -> Result<Option<(Source, HostConfig)>> {
        let refuse = |what: &str, names: &[&str]| {
            let bad: Vec<&str> = given
                .iter()
                .copied()
                .filter(|o| names.contains(o))
                .collect();
            match bad.is_empty() {
                true => Ok(()),
                false => Err(Error::config(format!(
                    "{what} finds its servers itself: do not give {} as well",
                    bad.join(", ")
                ))),
            }
        };
        match self {
            Deployment::Single => Ok(None),
            Deployment::Conflict => Err(Error::config("give redis_cluster or sentinel, not both")),
            Deployment::Cluster(urls) => {
                refuse("redis_cluster", &[&ADDRESS[..], &["db"]].concat())?;
                let mut seeds = parse(urls, "redis_cluster")?;
                for seed in &mut seeds {
                    if seed.db != 0 {
                        return Err(Error::config(format!(
                            "redis_cluster: seed {} selects db {}; a Redis Cluster has db 0 only",
                            seed.address(),
                            seed.db
                        )));
                    }
                    credentials(given, host, seed);
                    // No network: finds a CA file that cannot be read now, not at the first call.
                    seed.client()?;
                }
                let template = seeds[0].clone();
                Ok(Some((Source::Cluster { seeds }, template)))
            }
            Deployment::Sentinel { master, sentinels } => {
                refuse("sentinel", &ADDRESS)?;
                if master.is_empty() {
                    return Err(Error::config("sentinel: the master name is empty"));
                }
                host.client()?;
                let mut sentinels = parse(sentinels, "sentinel")?;
                for sentinel in &mut sentinels {
                    tls_options(given, host, sentinel);
                    sentinel.client()?;
                }
                let source = Source::Sentinel {
                    master: master.clone(),
                    sentinels,
                };
                Ok(Some((source, host.clone())))
            }
        }
    }
}

/// The nodes of `urls`, which must be TCP.
fn parse(urls: &[String], what: &str) -> Result<Vec<HostConfig>> {
    if urls.is_empty() {
        return Err(Error::config(format!("{what} needs at least one URL")));
    }
    urls.iter()
        .map(|u| {
            let h = HostConfig::from_url(u)?;
            if h.unix_socket_path.is_some() {
                return Err(Error::config(format!(
                    "{what}: {} is a unix socket; nodes are reached over TCP",
                    h.address()
                )));
            }
            Ok(h)
        })
        .collect()
}

/// Gives `node` the user, password and TLS (and its options) the builder
/// set (`given`), if any.
fn credentials(given: &[&str], host: &HostConfig, node: &mut HostConfig) {
    let set = |name| given.contains(&name);
    if set("username") {
        node.username.clone_from(&host.username);
    }
    if set("password") {
        node.password.clone_from(&host.password);
    }
    if set("tls") {
        node.ssl = host.ssl;
    }
    if set("ssl_options") {
        node.ssl = host.ssl;
        node.ssl_options.clone_from(&host.ssl_options);
    }
}

/// Gives a `rediss://` Sentinel the TLS options (e.g. the CA) the builder
/// set, which its URL cannot carry; a `redis://` Sentinel stays plaintext.
fn tls_options(given: &[&str], host: &HostConfig, sentinel: &mut HostConfig) {
    if sentinel.ssl && given.contains(&"ssl_options") {
        sentinel.ssl_options.clone_from(&host.ssl_options);
    }
}

/// Needs `tls`: a `rediss://` Sentinel fails `source` without it.
#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;
    use crate::host::SslOptions;

    /// The builder's TLS options reach the `rediss://` Sentinels only.
    #[test]
    fn ssl_options_reach_the_rediss_sentinels() {
        let urls = ["rediss://s1:26379", "redis://s2:26379"].map(String::from);
        let sentinel = Deployment::Sentinel {
            master: "m".into(),
            sentinels: urls.to_vec(),
        };
        let insecure = SslOptions {
            insecure: true,
            ..SslOptions::default()
        };
        let host = HostConfig::new().ssl_options(insecure);
        let sentinels = |given: &[&str]| match sentinel.source(given, &host) {
            Ok(Some((Source::Sentinel { sentinels, .. }, _))) => sentinels,
            other => panic!("{other:?}"),
        };
        let [tls, plain] = &sentinels(&["ssl_options"])[..] else {
            panic!("two sentinels");
        };
        assert!(tls.ssl && tls.ssl_options.insecure);
        assert!(!plain.ssl && !plain.ssl_options.insecure);
        // Not given: the URL's own options.
        assert!(!sentinels(&[])[0].ssl_options.insecure);
    }
}
