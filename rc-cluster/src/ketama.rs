//! [`ConsistentHashRouter`]: rc's ketama ring.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use rc_core::HostConfig;

use crate::host_name::{HostName, sorted_hosts};
use crate::router::Router;

/// Points each host puts on the ring (rc: 40 md5 digests × 4 points, weight 1).
const DIGESTS_PER_HOST: u32 = 40;

/// Routes keys with consistent hashing, exactly as rc 0.3.1's
/// `RedisConsistentHashRouter` (its ketama `HashRing`) does.
///
/// Each host puts 160 points on a ring of `u32`: for `i` in `0..40` the md5
/// digest of `"<HostConfig db={db} host={host} port={port} unix_socket_path={path}>-{i}-salt"`
/// (the path is `None` for TCP hosts) gives four little-endian `u32` points.
/// A key's point is the little-endian `u32` of the first four bytes of
/// `md5(key)`; the key belongs to the owner of the first ring point strictly
/// greater than it, wrapping around to the first point.
///
/// The points depend on the host's *address* (host, port, db, socket path),
/// not on its name, so renaming a host moves no key (nor does a name being
/// an integer or a string), and adding or removing one host only moves the
/// keys that host gains or owned (about `1/n`).
///
/// Two hosts with the same address put their points at the same places. rc
/// left the winner to Python's set order; here the host whose **name sorts
/// first** owns each shared point (names sort as [`HostName`] says), and the
/// other host receives no keys (a warning is logged). Give every host a
/// distinct address.
///
/// ```
/// use std::collections::BTreeMap;
/// use rc::{ConsistentHashRouter, HostConfig, Router};
///
/// let hosts: BTreeMap<String, HostConfig> = (1..=4)
///     .map(|i| (format!("cache0{i}"), HostConfig::new().host(format!("redis-host0{i}"))))
///     .collect();
/// let router = ConsistentHashRouter::new(&hosts);
/// assert_eq!(router.host_for_key("user:42"), "cache04");
/// ```
#[derive(Debug, Clone)]
pub struct ConsistentHashRouter {
    /// Sorted.
    names: Vec<HostName>,
    /// Sorted ring points.
    points: Vec<u32>,
    /// `owners[i]` is the index in `names` of the host owning `points[i]`.
    owners: Vec<u32>,
}

/// rc's `repr(HostConfig)`, the identity hashed onto the ring.
fn identity(cfg: &HostConfig) -> String {
    let path = match &cfg.unix_socket_path {
        Some(p) => p.display().to_string(),
        None => "None".to_owned(),
    };
    format!(
        "<HostConfig db={} host={} port={} unix_socket_path={}>",
        cfg.db, cfg.host, cfg.port, path
    )
}

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

impl ConsistentHashRouter {
    /// Builds the ring of `hosts`. The cluster builder passes a
    /// `BTreeMap<HostName, HostConfig>`; maps keyed by strings or integers work too.
    pub fn new<K>(hosts: &BTreeMap<K, HostConfig>) -> Self
    where
        K: Clone + Into<HostName>,
    {
        let hosts = sorted_hosts(hosts);
        let mut ring: Vec<(u32, u32)> =
            Vec::with_capacity(hosts.len() * DIGESTS_PER_HOST as usize * 4);
        for (owner, (_, cfg)) in hosts.iter().enumerate() {
            let identity = identity(cfg);
            for i in 0..DIGESTS_PER_HOST {
                let digest = md5(format!("{identity}-{i}-salt").as_bytes());
                ring.extend(digest.chunks_exact(4).map(|c| (le_u32(c), owner as u32)));
            }
        }
        // Sorting by (point, owner) then keeping the first of equal points
        // gives a shared point to the host whose name sorts first.
        ring.sort_unstable();
        let before = ring.len();
        ring.dedup_by_key(|(point, _)| *point);
        if ring.len() + 4 * DIGESTS_PER_HOST as usize <= before {
            tracing::warn!(
                "rc: hosts with the same address share consistent-hash points; \
                 the host whose name sorts first receives their keys"
            );
        }
        ConsistentHashRouter {
            names: hosts.into_iter().map(|(n, _)| n).collect(),
            points: ring.iter().map(|&(p, _)| p).collect(),
            owners: ring.iter().map(|&(_, o)| o).collect(),
        }
    }

    /// The host names, sorted.
    pub fn host_names(&self) -> &[HostName] {
        &self.names
    }
}

impl Router for ConsistentHashRouter {
    /// The host of `key` (an integer name's decimal text); `""` when the
    /// router has no hosts.
    fn host_for_key(&self, key: &str) -> &str {
        self.host_index(key).map_or("", |i| self.names[i].as_str())
    }

    fn host_index(&self, key: &str) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        Some(self.owner_of_point(le_u32(&md5(key.as_bytes()))))
    }
}

impl ConsistentHashRouter {
    /// Owner (index in `names`) of the first ring point strictly greater
    /// than `point`, wrapping around.
    fn owner_of_point(&self, point: u32) -> usize {
        let mut pos = self.points.partition_point(|&p| p <= point);
        if pos == self.points.len() {
            pos = 0;
        }
        self.owners[pos] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_rcs_repr() {
        let tcp = HostConfig::new().host("redis-host04").db(1);
        assert_eq!(
            identity(&tcp),
            "<HostConfig db=1 host=redis-host04 port=6379 unix_socket_path=None>"
        );
        let unix = HostConfig::new().unix_socket_path("/tmp/redis.sock");
        assert_eq!(
            identity(&unix),
            "<HostConfig db=0 host=localhost port=6379 unix_socket_path=/tmp/redis.sock>"
        );
    }

    fn hosts(list: &[(&str, HostConfig)]) -> BTreeMap<String, HostConfig> {
        list.iter()
            .map(|(n, c)| (n.to_string(), c.clone()))
            .collect()
    }

    // Expected hosts below come from a Python 3 port of rc 0.3.1's
    // `rc/ketama.py` (HashRing) and `HostConfig.__repr__`:
    //
    // ```python
    // import hashlib, math
    // from bisect import bisect
    // class HostConfig:
    //     def __init__(self, host_name, host='localhost', port=6379, unix_socket_path=None, db=0):
    //         self.host_name, self.host, self.port = host_name, host, port
    //         self.unix_socket_path, self.db = unix_socket_path, db
    //     def __repr__(self):
    //         d = {'host': self.host, 'port': self.port,
    //              'unix_socket_path': self.unix_socket_path, 'db': self.db}
    //         return '<%s %s>' % (self.__class__.__name__,
    //                             ' '.join('%s=%s' % x for x in sorted(d.items())))
    // def md5_bytes(s): return list(hashlib.md5(s.encode('utf-8')).digest())
    // class HashRing:
    //     def __init__(self, nodes):
    //         self._nodes = set(nodes); self._hashring = {}; self._sorted_keys = []
    //         for node in self._nodes:
    //             for i in range(int(math.floor(40 * len(self._nodes) / len(self._nodes)))):
    //                 k = md5_bytes('%s-%s-salt' % (node, i))
    //                 for l in range(4):
    //                     key = (k[3+l*4] << 24) | (k[2+l*4] << 16) | (k[1+l*4] << 8) | k[l*4]
    //                     self._hashring[key] = node; self._sorted_keys.append(key)
    //         self._sorted_keys.sort()
    //     def get_node(self, key):
    //         k = md5_bytes(key)
    //         pos = bisect(self._sorted_keys, (k[3] << 24) | (k[2] << 16) | (k[1] << 8) | k[0])
    //         return self._hashring[self._sorted_keys[0 if pos == len(self._sorted_keys) else pos]]
    // def route(hosts, keys):
    //     ring = HashRing([HostConfig(n, **c) for n, c in hosts.items()])
    //     return [(k, ring.get_node(k).host_name) for k in keys]
    //
    // route({'cache0%d' % i: {'host': 'redis-host0%d' % i} for i in range(1, 5)}, [...])
    // route({'tcp': {'host': '127.0.0.1', 'port': 6380, 'db': 2},
    //        'sock': {'unix_socket_path': '/tmp/redis.sock'},
    //        'local': {}, 'local1': {'db': 1}}, [...])
    // ```
    #[test]
    fn matches_rc_python() {
        let four = hosts(&[
            ("cache01", HostConfig::new().host("redis-host01")),
            ("cache02", HostConfig::new().host("redis-host02")),
            ("cache03", HostConfig::new().host("redis-host03")),
            ("cache04", HostConfig::new().host("redis-host04")),
        ]);
        let r = ConsistentHashRouter::new(&four);
        let expected = [
            ("user:42", "cache04"),
            ("a", "cache04"),
            ("b", "cache02"),
            ("c", "cache01"),
            ("hello", "cache04"),
            ("models:post 17", "cache04"),
            ("héllo wörld", "cache01"),
            ("", "cache02"),
            ("key-1", "cache03"),
            ("key-2", "cache03"),
            ("key-3", "cache02"),
            // md5 point 4292753073 is above the last ring point (4290995756): wraps to the first.
            ("wrap-815", "cache01"),
        ];
        for (key, host) in expected {
            assert_eq!(r.host_for_key(key), host, "key {key:?}");
        }

        let mixed = hosts(&[
            ("tcp", HostConfig::new().host("127.0.0.1").port(6380).db(2)),
            (
                "sock",
                HostConfig::new().unix_socket_path("/tmp/redis.sock"),
            ),
            ("local", HostConfig::new()),
            ("local1", HostConfig::new().db(1)),
        ]);
        let r = ConsistentHashRouter::new(&mixed);
        let expected = [
            ("a", "tcp"),
            ("b", "sock"),
            ("c", "tcp"),
            ("d", "local1"),
            ("e", "local1"),
            ("f", "local"),
            ("g", "sock"),
            ("h", "local1"),
            ("key-1", "local1"),
            ("key-2", "local"),
            ("key-3", "tcp"),
            ("x:y:z", "local"),
        ];
        for (key, host) in expected {
            assert_eq!(r.host_for_key(key), host, "key {key:?}");
        }
    }

    #[test]
    fn a_point_on_the_ring_goes_to_the_next_point() {
        let r = ConsistentHashRouter::new(&hosts(&[
            ("a", HostConfig::new().port(7001)),
            ("b", HostConfig::new().port(7002)),
            ("c", HostConfig::new().port(7003)),
        ]));
        let owner = |i: usize| r.owners[i] as usize;
        // Find two neighbouring points with different owners.
        let i = (0..r.points.len() - 1)
            .find(|&i| owner(i) != owner(i + 1))
            .unwrap();
        assert_eq!(
            r.owner_of_point(r.points[i]),
            owner(i + 1),
            "strictly greater"
        );
        assert_eq!(r.owner_of_point(r.points[i] - 1), owner(i));
        assert_eq!(
            r.owner_of_point(*r.points.last().unwrap()),
            owner(0),
            "wraps"
        );
        assert_eq!(r.owner_of_point(u32::MAX), owner(0));
        assert_eq!(r.owner_of_point(0), owner(0));
    }

    #[test]
    fn empty_router_does_not_panic() {
        let r = ConsistentHashRouter::new(&BTreeMap::<String, HostConfig>::new());
        assert_eq!(r.host_for_key("x"), "");
    }

    #[test]
    fn ring_has_160_points_per_host() {
        let hosts: BTreeMap<String, HostConfig> = (0..4)
            .map(|i| (i.to_string(), HostConfig::new().port(7000 + i)))
            .collect();
        let r = ConsistentHashRouter::new(&hosts);
        assert_eq!(r.points.len(), 640);
        assert!(r.points.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn same_address_goes_to_first_name() {
        let hosts: BTreeMap<String, HostConfig> = [
            ("b".to_string(), HostConfig::new().password("x")),
            ("a".to_string(), HostConfig::new().password("y")),
        ]
        .into_iter()
        .collect();
        let r = ConsistentHashRouter::new(&hosts);
        for i in 0..200 {
            assert_eq!(r.host_for_key(&format!("k{i}")), "a");
        }
    }
}
