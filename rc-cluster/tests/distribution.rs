//! How keys spread over hosts, and how they move when a host goes away.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Cluster;
use rc_cluster::{CacheCluster, ConsistentHashRouter, Crc32HashRouter, HostConfig, Router};
use rc_core::Backend;

const KEYS: usize = 10_000;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("key-{i}")).collect()
}

fn check_spread(sizes: &BTreeMap<String, u64>) {
    assert_eq!(sizes.len(), 16);
    assert_eq!(sizes.values().sum::<u64>(), KEYS as u64);
    for (host, &n) in sizes {
        let share = n as f64 / KEYS as f64;
        assert!(
            (0.03..=0.10).contains(&share),
            "host {host} holds {:.1}% of the keys: {sizes:?}",
            share * 100.0
        );
    }
}

fn write_all(c: &Cluster, consistent: bool) {
    let mut b = CacheCluster::builder().hosts(c.hosts.clone());
    if consistent {
        b = b.router(ConsistentHashRouter::new);
    }
    let cache = b.build().unwrap();
    let ks = keys();
    assert!(
        cache
            .set_many(ks.iter().map(|k| (k.as_str(), 1u8)), None)
            .unwrap()
    );
}

#[test]
fn crc32_spreads_10k_keys_evenly_over_16_hosts() {
    let c = Cluster::sixteen();
    write_all(&c, false);
    check_spread(&c.dbsizes());
}

#[test]
fn consistent_hash_spreads_10k_keys_evenly_over_16_hosts() {
    let c = Cluster::sixteen();
    write_all(&c, true);
    check_spread(&c.dbsizes());
}

/// 16 hosts on distinct addresses (no server needed: routing only).
fn sixteen_hosts() -> BTreeMap<String, HostConfig> {
    (0..16)
        .map(|i| {
            (
                format!("cache{i:02}"),
                HostConfig::new().host(format!("redis-host{i:02}")),
            )
        })
        .collect()
}

#[test]
fn removing_a_host_moves_only_its_keys_with_consistent_hashing() {
    let all = sixteen_hosts();
    let before = ConsistentHashRouter::new(&all);
    for removed in ["cache00", "cache07", "cache15"] {
        let mut fewer = all.clone();
        fewer.remove(removed);
        let after = ConsistentHashRouter::new(&fewer);
        let mut moved = 0;
        for k in keys() {
            let (was, is) = (before.host_for_key(&k), after.host_for_key(&k));
            if was == removed {
                moved += 1;
                assert_ne!(is, removed);
            } else {
                assert_eq!(
                    was, is,
                    "key {k} moved from {was} to {is} though {removed} was removed"
                );
            }
        }
        assert!(moved > 0 && moved < KEYS / 10, "{moved} keys moved");
    }
}

#[test]
fn adding_a_host_moves_keys_only_to_it_with_consistent_hashing() {
    let all = sixteen_hosts();
    let before = ConsistentHashRouter::new(&all);
    let mut more = all.clone();
    more.insert("cache16".into(), HostConfig::new().host("redis-host16"));
    let after = ConsistentHashRouter::new(&more);
    let moved = keys()
        .iter()
        .filter(|k| before.host_for_key(k) != after.host_for_key(k))
        .count();
    for k in keys() {
        let is = after.host_for_key(&k);
        assert!(
            is == before.host_for_key(&k) || is == "cache16",
            "key {k} moved to {is}"
        );
    }
    assert!(moved > KEYS / 50 && moved < KEYS / 8, "{moved} keys moved");
}

#[test]
fn removing_a_host_moves_most_keys_with_crc32() {
    let all = sixteen_hosts();
    let before = Crc32HashRouter::new(&all);
    let mut fewer = all.clone();
    fewer.remove("cache07");
    let after = Crc32HashRouter::new(&fewer);
    let moved = keys()
        .iter()
        .filter(|k| before.host_for_key(k) != after.host_for_key(k))
        .count();
    assert!(moved > KEYS * 3 / 4, "only {moved} of {KEYS} keys moved");
}

/// End to end: after a host is dropped from a consistent-hash cluster, every
/// key of the other hosts is still found; only the dropped host's keys miss.
#[test]
fn consistent_hash_cluster_keeps_hits_when_a_host_is_removed() {
    let c = Cluster::sixteen();
    let ks = keys();
    let full = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .router(ConsistentHashRouter::new)
        .build_backend()
        .unwrap();
    let items: Vec<_> = ks
        .iter()
        .map(|k| (k.clone(), b"1".to_vec(), Duration::from_secs(60)))
        .collect();
    assert!(full.set_many(&items).unwrap());

    let removed = "cache05";
    let mut fewer = c.hosts.clone();
    fewer.remove(removed);
    let smaller = CacheCluster::builder()
        .hosts(fewer)
        .router(ConsistentHashRouter::new)
        .build_backend()
        .unwrap();
    let got = smaller.get_many(&common::refs(&ks));
    let mut misses = 0;
    for (k, r) in ks.iter().zip(got) {
        let hit = r.unwrap().is_some();
        assert_eq!(hit, full.host_for_key(k) != Some(removed), "key {k}");
        misses += usize::from(!hit);
    }
    assert_eq!(misses as u64, c.dbsizes()[removed]);
}
