//! [`Crc32HashRouter`]: rc's default, `crc32(key) % host count`.

use std::collections::BTreeMap;

use rc_core::HostConfig;

use crate::host_name::{HostName, sorted_hosts};
use crate::router::Router;

/// Routes a key to `sorted_host_names[crc32(key) % host_count]`, exactly as
/// rc 0.3.1's `RedisCRC32HashRouter` does.
///
/// rc ran on Python 2, whose `binascii.crc32` returns a *signed* 32-bit
/// integer and whose `%` floors; this router reproduces both, so a key goes
/// to the same server as with rc given the same host names. The names sort
/// as Python 2's `sorted(hosts)` sorts them (see [`HostName`]): integer
/// names numerically and before string names, strings by bytes.
///
/// Adding or removing a host moves most keys; use
/// [`ConsistentHashRouter`](crate::ConsistentHashRouter) when hosts come and go.
///
/// ```
/// use std::collections::BTreeMap;
/// use rc::{Crc32HashRouter, HostConfig, HostName, Router};
///
/// // rc's own test suite: hosts {0: .., 1: .., 2: ..}.
/// let hosts: BTreeMap<HostName, HostConfig> =
///     (0..3).map(|i| (HostName::from(i), HostConfig::new())).collect();
/// let router = Crc32HashRouter::new(&hosts);
/// assert_eq!(router.host_for_key("c"), "0");
/// assert_eq!(router.host_for_key("g"), "1");
/// assert_eq!(router.host_for_key("a"), "2");
///
/// // Twelve integer names sort 0, 1, 2, .., 11 as in Python, not 0, 1, 10, 11, 2, ..
/// let twelve: BTreeMap<i64, HostConfig> = (0..12).map(|i| (i, HostConfig::new())).collect();
/// let router = Crc32HashRouter::new(&twelve);
/// assert_eq!(router.host_for_key("a"), "11"); // crc32("a") = -390611389, -390611389 % 12 = 11
/// ```
#[derive(Debug, Clone)]
pub struct Crc32HashRouter {
    names: Vec<HostName>,
    /// True when `names` are the host map's, sorted, so that a position in
    /// them is the position the cluster gives the host ([`Router::host_index`]).
    map_order: bool,
    /// A fresh hasher, cloned per key: `crc32fast::hash` detects the CPU's
    /// features on every call, which cost 60 of the 130 instructions it
    /// spent on a 13-byte key (callgrind, 1000-key cluster `get_many`).
    fresh: crc32fast::Hasher,
}

impl Crc32HashRouter {
    /// A router over the names of `hosts`, sorted as rc sorts them (the
    /// configs are not used). The cluster builder passes a
    /// `BTreeMap<HostName, HostConfig>`; maps keyed by strings or integers work too.
    pub fn new<K>(hosts: &BTreeMap<K, HostConfig>) -> Self
    where
        K: Clone + Into<HostName>,
    {
        Crc32HashRouter {
            names: sorted_hosts(hosts).into_iter().map(|(n, _)| n).collect(),
            map_order: true,
            fresh: crc32fast::Hasher::new(),
        }
    }

    /// A router over `names` in the given order, not sorted (a cluster using
    /// it looks the host up by name for each key). Hosts whose
    /// names are integers in rc need no such thing any more: give them as
    /// integers (`.host(10, ..)`) and [`new`](Self::new) sorts them as rc does.
    ///
    /// ```
    /// use rc::{Crc32HashRouter, Router};
    /// let router = Crc32HashRouter::with_order(["b", "a"]);
    /// assert_eq!(router.host_for_key("a"), "a"); // crc32("a") = -390611389, -390611389 % 2 = 1
    /// ```
    pub fn with_order<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<HostName>,
    {
        Crc32HashRouter {
            names: names.into_iter().map(Into::into).collect(),
            map_order: false,
            fresh: crc32fast::Hasher::new(),
        }
    }

    /// The host names, in routing order.
    pub fn host_names(&self) -> &[HostName] {
        &self.names
    }
}

impl Router for Crc32HashRouter {
    /// The host of `key`; `""` when the router has no hosts.
    /// The host of `key` (an integer name's decimal text); `""` when the
    /// router has no hosts.
    fn host_for_key(&self, key: &str) -> &str {
        self.position(key).map_or("", |i| self.names[i].as_str())
    }

    /// `None` for a [`with_order`](Crc32HashRouter::with_order) router,
    /// whose order need not be the cluster's: the cluster looks the name up.
    fn host_index(&self, key: &str) -> Option<usize> {
        self.position(key).filter(|_| self.map_order)
    }

    fn host_indexes(&self, keys: &[&str], out: &mut Vec<Option<usize>>) {
        match self.names.len() {
            n if n > 0 && self.map_order => out.extend(keys.iter().map(|k| Some(self.slot(k, n)))),
            _ => out.extend(keys.iter().map(|_| None)),
        }
    }
}

impl Crc32HashRouter {
    /// Index of `key` among `n` hosts: Python 2's `binascii.crc32(key) % n`.
    #[inline]
    fn slot(&self, key: &str, n: usize) -> usize {
        let mut h = self.fresh.clone();
        h.update(key.as_bytes());
        let signed = i64::from(h.finalize() as i32);
        signed.rem_euclid(n as i64) as usize
    }

    /// Position of `key`'s host in `names`.
    fn position(&self, key: &str) -> Option<usize> {
        match self.names.len() {
            0 => None,
            n => Some(self.slot(key, n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> BTreeMap<String, HostConfig> {
        names
            .iter()
            .map(|n| (n.to_string(), HostConfig::new()))
            .collect()
    }

    #[test]
    fn rc_test_vectors() {
        let r = Crc32HashRouter::new(&hosts(&["0", "1", "2"]));
        assert_eq!(r.host_for_key("c"), "0");
        assert_eq!(r.host_for_key("g"), "1");
        assert_eq!(r.host_for_key("a"), "2");
    }

    /// Expected values from Python, emulating Python 2's signed crc32:
    ///
    /// ```python
    /// import binascii
    /// def route(key, names):
    ///     h = binascii.crc32(key.encode("utf-8"))
    ///     if h >= 2**31: h -= 2**32          # Python 2 returned a signed int
    ///     names = sorted(names)
    ///     return names[h % len(names)]       # floor modulo
    /// ```
    #[test]
    fn matches_python_on_negative_crcs() {
        let names = [
            "cache01", "cache02", "cache03", "cache04", "cache05", "cache06", "cache07",
        ];
        let r = Crc32HashRouter::new(&hosts(&names));
        let expected = [
            ("a", "cache01"),              // crc32 -390611389
            ("hello", "cache03"),          // crc32 907060870
            ("user:42", "cache05"),        // crc32 1684999558
            ("models:post 17", "cache04"), // crc32 -696740699
            ("héllo wörld", "cache01"),    // crc32 354246585
            ("", "cache01"),               // crc32 0
            ("d", "cache06"),              // crc32 -1730327860
            ("e", "cache04"),              // crc32 -270894502
            ("key-2", "cache07"),          // crc32 -1746538816
            ("key-3", "cache02"),          // crc32 -522002858
        ];
        for (key, host) in expected {
            assert_eq!(r.host_for_key(key), host, "key {key:?}");
        }
    }

    #[test]
    fn batch_routing_agrees_with_key_by_key() {
        let keys: Vec<String> = (0..500).map(|i| format!("models:post {i}")).collect();
        let keys: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .chain(["", "héllo wörld"])
            .collect();
        for router in [
            Crc32HashRouter::new(&hosts(&["a", "b", "c", "d", "e", "f", "g"])),
            Crc32HashRouter::with_order(["b", "a"]),
            Crc32HashRouter::new(&BTreeMap::<String, HostConfig>::new()),
        ] {
            let mut batch = Vec::new();
            router.host_indexes(&keys, &mut batch);
            let one_by_one: Vec<_> = keys.iter().map(|k| router.host_index(k)).collect();
            assert_eq!(batch, one_by_one);
        }
    }

    #[test]
    fn names_sort_as_strings() {
        let r = Crc32HashRouter::new(&hosts(&["b", "a", "10", "9"]));
        assert_eq!(r.host_names(), ["10", "9", "a", "b"]);
    }

    #[test]
    fn empty_router_does_not_panic() {
        let r = Crc32HashRouter::new(&BTreeMap::<String, HostConfig>::new());
        assert_eq!(r.host_for_key("x"), "");
    }
}
