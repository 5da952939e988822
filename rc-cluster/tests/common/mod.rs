//! Fixtures shared by the integration tests: real `redis-server` processes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use rc_cluster::HostConfig;
use rc_core::{Backend, RedisBackend, Timeouts};
use rc_testing::RedisServer;

/// rc's test-suite cluster: 4 servers × 4 dbs = 16 hosts `cache00`..`cache15`.
pub struct Cluster {
    pub servers: Vec<RedisServer>,
    pub hosts: BTreeMap<String, HostConfig>,
}

impl Cluster {
    /// `servers` TCP servers with `dbs` dbs each.
    pub fn start(servers: usize, dbs: i64) -> Cluster {
        let servers: Vec<RedisServer> = (0..servers).map(|_| RedisServer::start()).collect();
        let mut hosts = BTreeMap::new();
        for (i, s) in servers.iter().enumerate() {
            for db in 0..dbs {
                hosts.insert(
                    format!("cache{:02}", i as i64 * dbs + db),
                    s.host_config().db(db),
                );
            }
        }
        Cluster { servers, hosts }
    }

    /// The 16-host fixture.
    pub fn sixteen() -> Cluster {
        Cluster::start(4, 4)
    }

    /// A single-server backend straight to host `name`, bypassing the cluster.
    pub fn raw(&self, name: &str) -> RedisBackend {
        raw(&self.hosts[name])
    }

    /// Keys stored on each host, read on the servers themselves.
    pub fn dbsizes(&self) -> BTreeMap<String, u64> {
        self.hosts
            .keys()
            .map(|n| (n.clone(), dbsize(&self.raw(n))))
            .collect()
    }
}

/// A single-server backend for `config`.
pub fn raw(config: &HostConfig) -> RedisBackend {
    RedisBackend::new(config, Timeouts::default(), 1).expect("valid host config")
}

/// Runs `cmd` on the server of `backend`, through the client rc hands out for raw commands.
fn query<T: redis::FromRedisValue>(backend: &RedisBackend, cmd: &redis::Cmd) -> T {
    let client = Backend::client(backend, "").expect("a Redis backend has a client");
    let mut conn = client.get_connection().expect("connect");
    cmd.query(&mut conn).expect("raw command")
}

/// `DBSIZE` of a server's db.
pub fn dbsize(backend: &RedisBackend) -> u64 {
    query(backend, &redis::cmd("DBSIZE"))
}

/// True when `key` exists on the server of `config`.
pub fn exists_on(config: &HostConfig, key: &str) -> bool {
    raw(config).get(key).expect("raw GET").is_some()
}

/// Asserts that `key` is stored on host `want` and on no other host.
pub fn assert_only_on(hosts: &BTreeMap<String, HostConfig>, key: &str, want: &str) {
    for (name, config) in hosts {
        assert_eq!(
            exists_on(config, key),
            name == want,
            "key {key:?} on host {name} (router says {want})"
        );
    }
}

/// Calls `f` until it returns true, for up to `limit`.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `TTL` of `key` on the server of `config`, in seconds (-2: missing, -1: no expiry).
pub fn ttl(config: &HostConfig, key: &str) -> i64 {
    query(&raw(config), redis::cmd("TTL").arg(key))
}

/// Keys as the byte stores take them.
pub fn refs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}
