//! Integer host names: keys land where rc 0.3.1 (Python 2) puts them.
//!
//! rc sorts its host names with Python 2's `sorted(hosts)`: integers
//! numerically and before strings. The vectors below were computed with rc
//! 0.3.1 itself, its `RedisCluster(hosts, router_cls=...).router.get_host_for_key`,
//! on CPython 2.7.18, by this script (`gen.py`; rc and redis-py installed
//! in a private directory, not part of this repository):
//!
//! ```text
//! $ PYENV_VERSION=2.7.18 python2.7 -m pip install --target /tmp/rc27 rc==0.3.1 redis==3.5.3
//! $ PYTHONPATH=/tmp/rc27 PYENV_VERSION=2.7.18 python2.7 gen.py
//! ```
//!
//! ```python
//! # -*- coding: utf-8 -*-
//! from rc.redis_cluster import RedisCluster
//! from rc.redis_router import RedisCRC32HashRouter, RedisConsistentHashRouter
//!
//! KEYS = [u'a', u'b', u'c', u'd', u'e', u'g', u'hello', u'user:42', u'models:post 17',
//!         u'h\xe9llo w\xf6rld', u'', u'key-1', u'key-2', u'key-3', u'wrap-815', u'rc:post:7']
//! MAPS = [
//!     ('TWELVE', dict((i, {'host': 'redis-host%02d' % i}) for i in range(12))),
//!     ('MIXED', {0: {'host': 'redis-a0'}, 1: {'port': 6380},
//!                'a': {'unix_socket_path': '/tmp/redis.sock'}, 'b': {'db': 1}}),
//!     ('TWELVE_STR', dict((str(i), {'host': 'redis-host%02d' % i}) for i in range(12))),
//!     ('INTS_FIRST', {2: {'port': 7002}, 10: {'port': 7010}, '1': {'port': 7001}, '9': {'port': 7009}}),
//! ]
//! def rust(name):
//!     return 'I(%d)' % name if isinstance(name, int) else 'S("%s")' % name
//! for const, hosts in MAPS:
//!     for suffix, router_cls in [('CRC32', RedisCRC32HashRouter), ('KETAMA', RedisConsistentHashRouter)]:
//!         router = RedisCluster(hosts, router_cls=router_cls).router
//!         print('const %s_%s: [(&str, Name); %d] = [' % (const, suffix, len(KEYS)))
//!         for key in KEYS:
//!             print('    ("%s", %s),' % (key.encode('utf-8'), rust(router.get_host_for_key(key))))
//!         print('];')
//! ```
//!
//! `TWELVE_STR` (string names `"0"`..`"11"`) checks that string names keep
//! sorting as strings, as rc sorts them.

use std::collections::BTreeMap;

use rc::{
    CacheCluster, ClusterConfig, ConsistentHashRouter, Crc32HashRouter, HostConfig, HostName,
    Router, RouterKind,
};

/// A host name as the vectors write it.
#[derive(Debug, Clone, Copy)]
enum Name {
    I(i64),
    S(&'static str),
}
use Name::{I, S};

impl From<Name> for HostName {
    fn from(n: Name) -> HostName {
        match n {
            I(i) => i.into(),
            S(s) => s.into(),
        }
    }
}

fn twelve() -> BTreeMap<HostName, HostConfig> {
    (0..12)
        .map(|i| {
            (
                i.into(),
                HostConfig::new().host(format!("redis-host{i:02}")),
            )
        })
        .collect()
}

fn twelve_str() -> BTreeMap<HostName, HostConfig> {
    (0..12)
        .map(|i| {
            (
                i.to_string().into(),
                HostConfig::new().host(format!("redis-host{i:02}")),
            )
        })
        .collect()
}

fn mixed() -> BTreeMap<HostName, HostConfig> {
    [
        (I(0), HostConfig::new().host("redis-a0")),
        (I(1), HostConfig::new().port(6380)),
        (
            S("a"),
            HostConfig::new().unix_socket_path("/tmp/redis.sock"),
        ),
        (S("b"), HostConfig::new().db(1)),
    ]
    .into_iter()
    .map(|(n, c)| (n.into(), c))
    .collect()
}

fn ints_first() -> BTreeMap<HostName, HostConfig> {
    [(I(2), 7002), (I(10), 7010), (S("1"), 7001), (S("9"), 7009)]
        .into_iter()
        .map(|(n, port)| (n.into(), HostConfig::new().port(port)))
        .collect()
}

const TWELVE_CRC32: [(&str, Name); 16] = [
    ("a", I(11)),
    ("b", I(5)),
    ("c", I(3)),
    ("d", I(8)),
    ("e", I(2)),
    ("g", I(10)),
    ("hello", I(10)),
    ("user:42", I(10)),
    ("models:post 17", I(1)),
    ("héllo wörld", I(9)),
    ("", I(0)),
    ("key-1", I(2)),
    ("key-2", I(8)),
    ("key-3", I(10)),
    ("wrap-815", I(0)),
    ("rc:post:7", I(0)),
];
const TWELVE_KETAMA: [(&str, Name); 16] = [
    ("a", I(7)),
    ("b", I(0)),
    ("c", I(8)),
    ("d", I(11)),
    ("e", I(0)),
    ("g", I(10)),
    ("hello", I(10)),
    ("user:42", I(4)),
    ("models:post 17", I(4)),
    ("héllo wörld", I(6)),
    ("", I(11)),
    ("key-1", I(5)),
    ("key-2", I(3)),
    ("key-3", I(2)),
    ("wrap-815", I(9)),
    ("rc:post:7", I(3)),
];
const MIXED_CRC32: [(&str, Name); 16] = [
    ("a", S("b")),
    ("b", I(1)),
    ("c", S("b")),
    ("d", I(0)),
    ("e", S("a")),
    ("g", S("a")),
    ("hello", S("a")),
    ("user:42", S("a")),
    ("models:post 17", I(1)),
    ("héllo wörld", I(1)),
    ("", I(0)),
    ("key-1", S("a")),
    ("key-2", I(0)),
    ("key-3", S("a")),
    ("wrap-815", I(0)),
    ("rc:post:7", I(0)),
];
const MIXED_KETAMA: [(&str, Name); 16] = [
    ("a", I(0)),
    ("b", S("a")),
    ("c", S("a")),
    ("d", I(1)),
    ("e", S("b")),
    ("g", I(0)),
    ("hello", I(0)),
    ("user:42", S("a")),
    ("models:post 17", S("b")),
    ("héllo wörld", S("a")),
    ("", I(1)),
    ("key-1", I(1)),
    ("key-2", I(1)),
    ("key-3", I(1)),
    ("wrap-815", I(1)),
    ("rc:post:7", I(1)),
];
const TWELVE_STR_CRC32: [(&str, Name); 16] = [
    ("a", S("9")),
    ("b", S("3")),
    ("c", S("11")),
    ("d", S("6")),
    ("e", S("10")),
    ("g", S("8")),
    ("hello", S("8")),
    ("user:42", S("8")),
    ("models:post 17", S("1")),
    ("héllo wörld", S("7")),
    ("", S("0")),
    ("key-1", S("10")),
    ("key-2", S("6")),
    ("key-3", S("8")),
    ("wrap-815", S("0")),
    ("rc:post:7", S("0")),
];
const TWELVE_STR_KETAMA: [(&str, Name); 16] = [
    ("a", S("7")),
    ("b", S("0")),
    ("c", S("8")),
    ("d", S("11")),
    ("e", S("0")),
    ("g", S("10")),
    ("hello", S("10")),
    ("user:42", S("4")),
    ("models:post 17", S("4")),
    ("héllo wörld", S("6")),
    ("", S("11")),
    ("key-1", S("5")),
    ("key-2", S("3")),
    ("key-3", S("2")),
    ("wrap-815", S("9")),
    ("rc:post:7", S("3")),
];
const INTS_FIRST_CRC32: [(&str, Name); 16] = [
    ("a", S("9")),
    ("b", I(10)),
    ("c", S("9")),
    ("d", I(2)),
    ("e", S("1")),
    ("g", S("1")),
    ("hello", S("1")),
    ("user:42", S("1")),
    ("models:post 17", I(10)),
    ("héllo wörld", I(10)),
    ("", I(2)),
    ("key-1", S("1")),
    ("key-2", I(2)),
    ("key-3", S("1")),
    ("wrap-815", I(2)),
    ("rc:post:7", I(2)),
];
const INTS_FIRST_KETAMA: [(&str, Name); 16] = [
    ("a", S("9")),
    ("b", S("1")),
    ("c", I(2)),
    ("d", S("9")),
    ("e", S("1")),
    ("g", S("9")),
    ("hello", S("9")),
    ("user:42", I(2)),
    ("models:post 17", I(2)),
    ("héllo wörld", I(10)),
    ("", S("9")),
    ("key-1", S("9")),
    ("key-2", I(10)),
    ("key-3", S("9")),
    ("wrap-815", S("1")),
    ("rc:post:7", I(2)),
];

type Vectors = [(&'static str, Name); 16];

/// Every map with its CRC32 and ketama vectors.
fn cases() -> Vec<(
    &'static str,
    BTreeMap<HostName, HostConfig>,
    &'static Vectors,
    &'static Vectors,
)> {
    vec![
        ("twelve", twelve(), &TWELVE_CRC32, &TWELVE_KETAMA),
        ("mixed", mixed(), &MIXED_CRC32, &MIXED_KETAMA),
        (
            "twelve_str",
            twelve_str(),
            &TWELVE_STR_CRC32,
            &TWELVE_STR_KETAMA,
        ),
        (
            "ints_first",
            ints_first(),
            &INTS_FIRST_CRC32,
            &INTS_FIRST_KETAMA,
        ),
    ]
}

/// The router answers with `want`'s text and points at `want` itself (an
/// integer host, not a string host of the same text).
fn check(case: &str, router: &dyn Router, names: &[HostName], vectors: &Vectors) {
    for &(key, want) in vectors {
        let want = HostName::from(want);
        assert_eq!(
            router.host_for_key(key),
            want.as_str(),
            "{case}: key {key:?}"
        );
        let index = router
            .host_index(key)
            .expect("built-in routers know the index");
        assert_eq!(names[index], want, "{case}: key {key:?}");
    }
}

#[test]
fn crc32_router_matches_rc() {
    for (case, hosts, crc32, _) in cases() {
        let router = Crc32HashRouter::new(&hosts);
        check(case, &router, router.host_names(), crc32);
    }
}

#[test]
fn consistent_hash_router_matches_rc() {
    for (case, hosts, _, ketama) in cases() {
        let router = ConsistentHashRouter::new(&hosts);
        check(case, &router, router.host_names(), ketama);
    }
}

#[test]
fn host_names_sort_as_python_2() {
    let sorted = |hosts: BTreeMap<HostName, HostConfig>| {
        let names: Vec<String> = Crc32HashRouter::new(&hosts)
            .host_names()
            .iter()
            .map(|n| format!("{n:?}"))
            .collect();
        names.join(" ")
    };
    assert_eq!(sorted(twelve()), "0 1 2 3 4 5 6 7 8 9 10 11");
    assert_eq!(
        sorted(twelve_str()),
        r#""0" "1" "10" "11" "2" "3" "4" "5" "6" "7" "8" "9""#
    );
    assert_eq!(sorted(mixed()), r#"0 1 "a" "b""#);
    assert_eq!(sorted(ints_first()), r#"2 10 "1" "9""#);
}

/// Routers over maps keyed by plain integers or strings sort the same way.
#[test]
fn routers_take_integer_and_string_keyed_maps() {
    let ints: BTreeMap<i64, HostConfig> = (0..12)
        .map(|i| (i, HostConfig::new().host(format!("redis-host{i:02}"))))
        .collect();
    let strings: BTreeMap<String, HostConfig> = (0..12)
        .map(|i| {
            (
                i.to_string(),
                HostConfig::new().host(format!("redis-host{i:02}")),
            )
        })
        .collect();
    for (key, want) in TWELVE_CRC32 {
        assert_eq!(
            Crc32HashRouter::new(&ints).host_for_key(key),
            HostName::from(want).as_str()
        );
    }
    for (key, want) in TWELVE_STR_CRC32 {
        assert_eq!(
            Crc32HashRouter::new(&strings).host_for_key(key),
            HostName::from(want).as_str()
        );
    }
    for (key, want) in TWELVE_KETAMA {
        assert_eq!(
            ConsistentHashRouter::new(&ints).host_for_key(key),
            HostName::from(want).as_str()
        );
    }
}

/// Through the builder, with the cluster's own host order: the backend's
/// answer is the router's.
#[test]
fn cluster_backends_route_as_rc() {
    for (case, hosts, crc32, ketama) in cases() {
        let builder = || CacheCluster::builder().hosts(hosts.clone());
        let sync = builder().build_backend().unwrap();
        let asynchronous = builder()
            .router(ConsistentHashRouter::new)
            .build_async_backend()
            .unwrap();
        for (key, want) in crc32 {
            let want = HostName::from(*want);
            assert_eq!(
                sync.host_for_key(key),
                Some(want.as_str()),
                "{case}: {key:?}"
            );
        }
        for (key, want) in ketama {
            let want = HostName::from(*want);
            assert_eq!(
                asynchronous.host_for_key(key),
                Some(want.as_str()),
                "{case}: {key:?}"
            );
        }
    }
}

#[test]
fn builder_takes_integer_names() {
    let backend = CacheCluster::builder()
        .hosts((0..12).map(|i| (i, HostConfig::new().host(format!("redis-host{i:02}")))))
        .build_backend()
        .unwrap();
    let names: Vec<&str> = backend.host_names().collect();
    assert_eq!(
        names,
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
    );
    for (key, want) in TWELVE_CRC32 {
        assert_eq!(
            backend.host_for_key(key),
            Some(HostName::from(want).as_str())
        );
    }

    let backend = CacheCluster::builder()
        .host("b", HostConfig::new().db(1))
        .host(1u32, HostConfig::new().port(6380))
        .host("a", HostConfig::new().unix_socket_path("/tmp/redis.sock"))
        .host(0i64, HostConfig::new().host("redis-a0"))
        .build_backend()
        .unwrap();
    assert_eq!(
        backend.host_names().collect::<Vec<_>>(),
        ["0", "1", "a", "b"]
    );
    for (key, want) in MIXED_CRC32 {
        assert_eq!(
            backend.host_for_key(key),
            Some(HostName::from(want).as_str())
        );
    }
}

#[test]
fn config_list_form_gives_integer_names() {
    let hosts: Vec<String> = (0..12)
        .map(|i| format!(r#"{{"name": {i}, "host": "redis-host{i:02}"}}"#))
        .collect();
    let text = format!(r#"{{"hosts": [{}], "router": "ketama"}}"#, hosts.join(", "));
    let cfg: ClusterConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(cfg.hosts, twelve());
    assert_eq!(cfg.router, RouterKind::ConsistentHash);
    let backend = cfg.into_builder().build_backend().unwrap();
    for (key, want) in TWELVE_KETAMA {
        assert_eq!(
            backend.host_for_key(key),
            Some(HostName::from(want).as_str())
        );
    }

    // The map form: JSON keys are strings, and stay strings.
    let hosts: Vec<String> = (0..12)
        .map(|i| format!(r#""{i}": {{"host": "redis-host{i:02}"}}"#))
        .collect();
    let text = format!(r#"{{"hosts": {{{}}}}}"#, hosts.join(", "));
    let cfg: ClusterConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(cfg.hosts, twelve_str());
    let backend = cfg.into_builder().build_backend().unwrap();
    for (key, want) in TWELVE_STR_CRC32 {
        assert_eq!(
            backend.host_for_key(key),
            Some(HostName::from(want).as_str())
        );
    }
}

/// A `with_order` router, here not in sorted order, routes to the host it
/// names (the cluster looks the name up).
#[test]
fn with_order_routes_by_name() {
    let router = Crc32HashRouter::with_order([S("b"), S("a")].map(HostName::from));
    assert_eq!(router.host_index("a"), None);
    assert_eq!(router.host_for_key("a"), "a"); // crc32("a") % 2 == 1
    let backend = CacheCluster::builder()
        .host("a", HostConfig::new())
        .host("b", HostConfig::new().port(6380))
        .router(|_: &BTreeMap<HostName, HostConfig>| Crc32HashRouter::with_order(["b", "a"]))
        .build_backend()
        .unwrap();
    for key in ["a", "b", "c", "hello", "key-1", "key-2"] {
        assert_eq!(
            backend.host_for_key(key),
            Some(router.host_for_key(key)),
            "{key:?}"
        );
    }
    // From a host map it knows the index.
    let hosts: BTreeMap<&str, HostConfig> = [("b", HostConfig::new()), ("a", HostConfig::new())]
        .into_iter()
        .collect();
    assert_eq!(Crc32HashRouter::new(&hosts).host_index("a"), Some(1));
}
