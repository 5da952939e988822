//! Every basic operation on rc's 16-host fixture (4 servers × 4 dbs), sync and async.

mod common;

use std::time::Duration;

use common::{Cluster, assert_only_on, exists_on};
use rc_cluster::{CacheCluster, ConsistentHashRouter, Crc32HashRouter, Router};
use rc_core::{AsyncBackend, Backend, Cache};

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn check_sync_ops(cache: &Cache) {
    // Single keys.
    assert_eq!(cache.get::<String>("missing").unwrap(), None);
    assert!(cache.set("key", &"value", None).unwrap());
    assert_eq!(
        cache.get::<String>("key").unwrap().as_deref(),
        Some("value")
    );
    assert!(
        cache
            .set("list", &vec![1, 2], Some(Duration::from_secs(3600)))
            .unwrap()
    );
    assert_eq!(cache.get::<Vec<i32>>("list").unwrap(), Some(vec![1, 2]));
    assert!(cache.delete("key").unwrap());
    assert!(!cache.delete("key").unwrap());
    assert_eq!(cache.get::<String>("key").unwrap(), None);

    // Many keys, spread over every host.
    let ks = keys("k", 200);
    let items: Vec<(String, usize)> = ks.iter().cloned().zip(0..).collect();
    assert!(
        cache
            .set_many(items.iter().map(|(k, v)| (k.as_str(), v)), None)
            .unwrap()
    );
    let mut asked = ks.clone();
    asked.insert(17, "nope".into());
    asked.reverse();
    let got: Vec<Option<usize>> = cache.get_many(&asked).unwrap();
    let want: Vec<Option<usize>> = asked
        .iter()
        .map(|k| k.strip_prefix('k').map(|n| n.parse().unwrap()))
        .collect();
    assert_eq!(got, want, "results in the caller's order");
    assert_eq!(cache.delete_many(&asked).unwrap(), 200);
    assert_eq!(cache.delete_many(&ks).unwrap(), 0);
    assert!(
        cache
            .get_many::<usize, _, _>(&ks)
            .unwrap()
            .iter()
            .all(Option::is_none)
    );

    // Duplicate keys in one call.
    assert!(cache.set_many([("dup", 1), ("dup", 2)], None).unwrap());
    assert_eq!(
        cache.get_many::<i32, _, _>(["dup", "dup"]).unwrap(),
        [Some(2), Some(2)]
    );
    assert_eq!(cache.delete_many(["dup", "dup"]).unwrap(), 1);

    // Empty inputs.
    let none: [&str; 0] = [];
    assert!(cache.get_many::<i32, _, _>(none).unwrap().is_empty());
    assert!(
        cache
            .set_many(std::iter::empty::<(&str, i32)>(), None)
            .unwrap()
    );
    assert_eq!(cache.delete_many(none).unwrap(), 0);
}

#[test]
fn sync_ops_on_16_hosts_crc32() {
    let c = Cluster::sixteen();
    let cache = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .build()
        .unwrap();
    check_sync_ops(&cache);
}

#[test]
fn sync_ops_on_16_hosts_consistent_hash_one_host_at_a_time() {
    let c = Cluster::sixteen();
    let cache = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .router(ConsistentHashRouter::new)
        .max_concurrency(1)
        .pool_size(1)
        .build()
        .unwrap();
    check_sync_ops(&cache);
}

#[test]
fn sync_ops_windowed_concurrency() {
    let c = Cluster::sixteen();
    let cache = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .max_concurrency(5)
        .build()
        .unwrap();
    check_sync_ops(&cache);
}

#[test]
fn keys_land_on_the_host_the_router_names() {
    let c = Cluster::sixteen();
    let backend = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .build_backend()
        .unwrap();
    let router = Crc32HashRouter::new(&c.hosts);
    let ks = keys("placed:", 64);
    let items: Vec<_> = ks
        .iter()
        .map(|k| (k.clone(), b"1".to_vec(), Duration::from_secs(60)))
        .collect();
    assert!(backend.set_many(&items).unwrap());
    assert!(
        backend
            .set("single", b"x", Duration::from_secs(60))
            .unwrap()
    );
    for k in ks.iter().chain([&"single".to_owned()]) {
        let host = router.host_for_key(k);
        assert_eq!(backend.host_for_key(k), Some(host));
        assert_only_on(&c.hosts, k, host);
    }
    // Every write has its expiry.
    for k in ks.iter().chain([&"single".to_owned()]) {
        let ttl = common::ttl(&c.hosts[router.host_for_key(k)], k);
        assert!((1..=60).contains(&ttl), "ttl of {k}: {ttl}");
    }
    // 16 hosts, 64 keys: every server got some.
    let sizes = c.dbsizes();
    assert!(
        sizes.values().filter(|&&n| n > 0).count() >= 12,
        "{sizes:?}"
    );
    assert_eq!(sizes.values().sum::<u64>(), 65);
}

#[test]
fn namespace_is_part_of_the_routed_key() {
    let c = Cluster::sixteen();
    let cache = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .namespace("models:")
        .build()
        .unwrap();
    let router = Crc32HashRouter::new(&c.hosts);
    let ks = keys("post", 40);
    assert!(
        cache
            .set_many(ks.iter().map(|k| (k.as_str(), 1)), None)
            .unwrap()
    );
    assert!(cache.set("one", &"x", None).unwrap());
    for k in ks.iter().map(String::as_str).chain(["one"]) {
        let full = format!("models:{k}");
        assert_only_on(&c.hosts, &full, router.host_for_key(&full));
        assert!(
            !c.hosts.values().any(|h| exists_on(h, k)),
            "bare key {k} stored"
        );
    }
    assert_eq!(cache.get::<String>("one").unwrap().as_deref(), Some("x"));
    assert_eq!(cache.delete_many(&ks).unwrap(), 40);

    // A cache without the namespace does not see those keys.
    let plain = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .build()
        .unwrap();
    assert_eq!(plain.get::<String>("one").unwrap(), None);
    assert_eq!(
        plain.get::<String>("models:one").unwrap().as_deref(),
        Some("x")
    );
}

#[test]
fn front_options_reach_the_cache() {
    let c = Cluster::start(2, 1);
    let cache = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .default_expire(Duration::from_secs(120))
        .serializer(rc_core::CborSerializer)
        .bypass_values([None::<()>])
        .build()
        .unwrap();
    assert!(cache.set("k", &"v", None).unwrap());
    let router = Crc32HashRouter::new(&c.hosts);
    let host = &c.hosts[router.host_for_key("k")];
    let ttl = common::ttl(host, "k");
    assert!((100..=120).contains(&ttl), "ttl {ttl}");
    let stored = common::raw(host).get("k").unwrap().unwrap();
    assert_ne!(stored, b"\"v\"", "CBOR, not JSON");
    assert_eq!(cache.get::<String>("k").unwrap().as_deref(), Some("v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_ops_on_16_hosts() {
    let c = Cluster::sixteen();
    for consistent in [false, true] {
        let mut b = CacheCluster::builder()
            .hosts(c.hosts.clone())
            .max_concurrency(if consistent { 3 } else { 64 });
        if consistent {
            b = b.router(ConsistentHashRouter::new);
        }
        let cache = b.build_async().unwrap();
        assert_eq!(cache.get::<String>("missing").await.unwrap(), None);
        assert!(cache.set("key", &"value", None).await.unwrap());
        assert_eq!(
            cache.get::<String>("key").await.unwrap().as_deref(),
            Some("value")
        );
        assert!(cache.delete("key").await.unwrap());
        assert!(!cache.delete("key").await.unwrap());

        let ks = keys("ak", 300);
        assert!(
            cache
                .set_many(ks.iter().zip(0..).map(|(k, v)| (k.as_str(), v)), None)
                .await
                .unwrap()
        );
        let mut asked = ks.clone();
        asked.push("nope".into());
        asked.rotate_left(7);
        let got: Vec<Option<i32>> = cache.get_many(&asked).await.unwrap();
        let want: Vec<Option<i32>> = asked
            .iter()
            .map(|k| k.strip_prefix("ak").map(|n| n.parse().unwrap()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(cache.delete_many(&asked).await.unwrap(), 300);
        assert!(
            cache
                .get_many::<i32, _, _>(&ks)
                .await
                .unwrap()
                .iter()
                .all(Option::is_none)
        );

        let none: [&str; 0] = [];
        assert!(cache.get_many::<i32, _, _>(none).await.unwrap().is_empty());
        assert!(
            cache
                .set_many(std::iter::empty::<(&str, i32)>(), None)
                .await
                .unwrap()
        );
        assert_eq!(cache.delete_many(none).await.unwrap(), 0);
    }
    assert!(c.dbsizes().values().all(|&n| n == 0));
}

#[tokio::test]
async fn async_keys_land_where_sync_ones_do() {
    let c = Cluster::sixteen();
    let sync = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .build_backend()
        .unwrap();
    let backend = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .build_async_backend()
        .unwrap();
    let ks = keys("both:", 50);
    let items: Vec<_> = ks
        .iter()
        .map(|k| {
            (
                k.clone(),
                k.as_bytes().to_vec(),
                Duration::from_millis(60_500),
            )
        })
        .collect();
    assert!(backend.set_many(&items).await.unwrap());
    for k in &ks {
        assert_eq!(backend.host_for_key(k), sync.host_for_key(k));
        assert_only_on(&c.hosts, k, sync.host_for_key(k).unwrap());
    }
    // The sync cluster reads what the async one wrote.
    let got = Backend::get_many(&sync, &common::refs(&ks));
    for (k, r) in ks.iter().zip(got) {
        assert_eq!(r.unwrap().as_deref(), Some(k.as_bytes()));
    }
    assert_eq!(
        AsyncBackend::delete_many(&backend, &common::refs(&ks))
            .await
            .unwrap(),
        50
    );
}

#[test]
fn mixed_tcp_and_unix_socket_hosts() {
    let tcp = [
        rc_testing::RedisServer::start(),
        rc_testing::RedisServer::start(),
    ];
    let unix = [
        rc_testing::RedisServer::builder().unix_socket(true).start(),
        rc_testing::RedisServer::builder().unix_socket(true).start(),
    ];
    let hosts: std::collections::BTreeMap<String, rc_cluster::HostConfig> = [
        ("tcp0", tcp[0].host_config()),
        ("tcp1", tcp[1].host_config().db(3)),
        ("sock0", unix[0].host_config()),
        ("sock1", unix[1].host_config().db(2)),
    ]
    .into_iter()
    .map(|(n, h)| (n.to_owned(), h))
    .collect();
    for consistent in [false, true] {
        let mut b = CacheCluster::builder().hosts(hosts.clone());
        if consistent {
            b = b.router(ConsistentHashRouter::new);
        }
        let backend = b.build_backend().unwrap();
        let ks = keys("mixed:", 60);
        let items: Vec<_> = ks
            .iter()
            .map(|k| (k.clone(), b"v".to_vec(), Duration::from_secs(60)))
            .collect();
        assert!(backend.set_many(&items).unwrap());
        let mut used = std::collections::BTreeSet::new();
        for k in &ks {
            let host = backend.host_for_key(k).unwrap();
            used.insert(host.to_owned());
            assert_only_on(&hosts, k, host);
        }
        assert_eq!(used.len(), 4, "every host used: {used:?}");
        assert!(
            Backend::get_many(&backend, &common::refs(&ks))
                .into_iter()
                .all(|r| r.unwrap().is_some())
        );
        assert_eq!(
            Backend::delete_many(&backend, &common::refs(&ks)).unwrap(),
            60
        );
    }
}

#[test]
fn config_file_to_cache() {
    let c = Cluster::start(2, 2);
    let hosts: serde_json::Map<String, serde_json::Value> = c
        .hosts
        .iter()
        .map(|(n, h)| {
            (
                n.clone(),
                serde_json::json!({ "host": h.host, "port": h.port, "db": h.db }),
            )
        })
        .collect();
    let text = serde_json::json!({
        "hosts": hosts,
        "router": "consistent_hash",
        "namespace": "app:",
        "default_expire": 90,
        "max_concurrency": 2,
        "socket_timeout": 0.5
    })
    .to_string();
    let cfg: rc_cluster::ClusterConfig = serde_json::from_str(&text).unwrap();
    let cache = cfg.into_builder().build().unwrap();
    assert!(cache.set("k", &1, None).unwrap());
    let router = ConsistentHashRouter::new(&c.hosts);
    assert_only_on(&c.hosts, "app:k", router.host_for_key("app:k"));
}
