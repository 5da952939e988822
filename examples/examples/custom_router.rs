//! Routers: which server of a cluster holds a key.
//!
//! - `Crc32HashRouter` (the default): `crc32(key) % host count`, as rc 0.3.1.
//! - `ConsistentHashRouter`: rc's ketama ring; adding a server moves few keys.
//! - Your own: implement `rc::Router`.
//!
//! Run: `cargo run --example custom_router`. The two hosts of the custom
//! router are the first two URLs of `REDIS_URLS`, or databases 0 and 1 of
//! the server at `REDIS_URL` (default `redis://127.0.0.1:6379`).

use std::collections::BTreeMap;

use rc::{Cache, CacheCluster, ClusterBackend, ConsistentHashRouter, HostConfig, HostName, Router};

/// Users on one server, everything else on the other.
struct PrefixRouter {
    /// Routers see the full Redis key, namespace included.
    namespace: String,
}

impl Router for PrefixRouter {
    fn host_for_key(&self, key: &str) -> &str {
        let key = key.strip_prefix(&self.namespace).unwrap_or(key);
        if key.starts_with("user:") {
            "users"
        } else {
            "misc"
        }
    }
}

fn two_hosts() -> Result<(HostConfig, HostConfig), rc::Error> {
    if let Ok(urls) = std::env::var("REDIS_URLS") {
        let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
        if let [first, second, ..] = urls[..] {
            return Ok((HostConfig::from_url(first)?, HostConfig::from_url(second)?));
        }
    }
    let url = examples::redis_url();
    let server = HostConfig::from_url(&url)?;
    Ok((server.clone().db(0), server.db(1)))
}

/// A cluster of `n` made-up hosts, only to ask where keys go: building a
/// cluster does not connect to anything.
fn layout(n: usize, consistent: bool) -> Result<ClusterBackend, rc::Error> {
    let builder = CacheCluster::builder().hosts((0..n).map(|i| {
        (
            format!("cache{i}"),
            HostConfig::new().host(format!("redis-host{i}")),
        )
    }));
    if consistent {
        builder.router(ConsistentHashRouter::new).build_backend()
    } else {
        builder.build_backend()
    }
}

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    // 1. A router of your own, on real servers.
    const NAMESPACE: &str = "rc-example:router:";
    let (users_host, misc_host) = two_hosts()?;
    let cache = CacheCluster::builder()
        .host("users", users_host.clone())
        .host("misc", misc_host.clone())
        // Called once with the host map (name -> HostConfig) when the cluster is built.
        .router(|hosts: &BTreeMap<HostName, HostConfig>| {
            assert!(hosts.contains_key(&HostName::from("users")));
            assert!(hosts.contains_key(&HostName::from("misc")));
            PrefixRouter {
                namespace: NAMESPACE.to_owned(),
            }
        })
        .namespace(NAMESPACE)
        .build()?;
    cache.set_many(
        [("user:1", "alice"), ("user:2", "bob"), ("post:7", "hello")],
        None,
    )?;

    let users = Cache::builder()
        .host_config(users_host)
        .namespace(NAMESPACE)
        .build()?;
    let misc = Cache::builder()
        .host_config(misc_host)
        .namespace(NAMESPACE)
        .build()?;
    let on_users: Vec<Option<String>> = users.get_many(["user:1", "user:2", "post:7"])?;
    let on_misc: Vec<Option<String>> = misc.get_many(["user:1", "user:2", "post:7"])?;
    println!("PrefixRouter: on users: {on_users:?}");
    println!("PrefixRouter: on misc:  {on_misc:?}");
    assert_eq!(on_users, [Some("alice".into()), Some("bob".into()), None]);
    assert_eq!(on_misc, [None, None, Some("hello".into())]);
    cache.delete_many(["user:1", "user:2", "post:7"])?;

    // 2. The built-in routers put keys where rc 0.3.1 does, so a Rust service
    // can share a running rc cluster. rc's host maps often have integer names
    // ({0: {...}, 1: {...}, ...}): give them as integers, they sort as numbers
    // (0, 1, 2, ..., 10, 11), as in Python. With hosts 0..11 and CRC32:
    let rc_hosts = CacheCluster::builder()
        .hosts((0..12).map(|i| (i, HostConfig::new().port(7000 + i as u16))))
        .build_backend()?;
    for key in ["c", "g", "a"] {
        println!(
            "Crc32HashRouter: {key:?} -> host {}",
            rc_hosts.host_for_key(key).unwrap_or("?")
        );
    }
    assert_eq!(rc_hosts.host_for_key("a"), Some("11"));

    // 3. Why consistent hashing: grow from 4 to 5 servers and count the keys
    // that change server (and so miss the cache once).
    let keys: Vec<String> = (0..1000).map(|i| format!("post:{i}")).collect();
    for consistent in [false, true] {
        let (before, after) = (layout(4, consistent)?, layout(5, consistent)?);
        let moved = keys
            .iter()
            .filter(|k| before.host_for_key(k) != after.host_for_key(k))
            .count();
        let name = if consistent {
            "ConsistentHashRouter"
        } else {
            "Crc32HashRouter"
        };
        println!("{name}: 4 -> 5 servers moves {moved} of 1000 keys");
    }

    println!("custom_router: ok");
    Ok(())
}
