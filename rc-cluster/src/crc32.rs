//! [`Crc32HashRouter`]: rc's default, `crc32(key) % host count`.

use std::collections::BTreeMap;

use rc_core::HostConfig;

use crate::router::Router;

/// Routes a key to `sorted_host_names[crc32(key) % host_count]`, exactly as
/// rc 0.3.1's `RedisCRC32HashRouter` does.
///
/// rc ran on Python 2, whose `binascii.crc32` returns a *signed* 32-bit
/// integer and whose `%` floors; this router reproduces both, so a key goes
/// to the same server as with rc given the same host names. Host names are
/// sorted as strings (byte order).
///
/// Adding or removing a host moves most keys; use
/// [`ConsistentHashRouter`](crate::ConsistentHashRouter) when hosts come and go.
///
/// ```
/// use std::collections::BTreeMap;
/// use rc::{Crc32HashRouter, HostConfig, Router};
///
/// let hosts: BTreeMap<String, HostConfig> =
///     ["0", "1", "2"].iter().map(|n| (n.to_string(), HostConfig::new())).collect();
/// let router = Crc32HashRouter::new(&hosts);
/// // The vectors of rc's own test suite.
/// assert_eq!(router.host_for_key("c"), "0");
/// assert_eq!(router.host_for_key("g"), "1");
/// assert_eq!(router.host_for_key("a"), "2");
/// ```
#[derive(Debug, Clone)]
pub struct Crc32HashRouter {
    names: Vec<String>,
}

impl Crc32HashRouter {
    /// A router over the names of `hosts` (sorted; the configs are not used).
    pub fn new(hosts: &BTreeMap<String, HostConfig>) -> Self {
        // A BTreeMap iterates in sorted order already.
        Crc32HashRouter {
            names: hosts.keys().cloned().collect(),
        }
    }

    /// A router over `names` in the given order, for deployments whose
    /// Python host map did not sort like strings: rc sorted *integer* host
    /// names (`{0: .., 1: .., 10: ..}`) numerically, so such a cluster of
    /// more than ten hosts needs `with_order(["0", "1", "2", ..., "10"])`.
    ///
    /// ```
    /// use rc::{Crc32HashRouter, Router};
    /// let router = Crc32HashRouter::with_order((0..12).map(|i| i.to_string()));
    /// assert_eq!(router.host_for_key("a"), "11"); // crc32("a") = -390611389, -390611389 % 12 = 11
    /// ```
    pub fn with_order<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Crc32HashRouter {
            names: names.into_iter().map(Into::into).collect(),
        }
    }

    /// The host names, in routing order.
    pub fn host_names(&self) -> &[String] {
        &self.names
    }
}

/// Index of `key` among `n` hosts: Python 2's `binascii.crc32(key) % n`.
fn slot(key: &str, n: usize) -> usize {
    let signed = i64::from(crc32fast::hash(key.as_bytes()) as i32);
    signed.rem_euclid(n as i64) as usize
}

impl Router for Crc32HashRouter {
    /// The host of `key`; `""` when the router has no hosts.
    fn host_for_key(&self, key: &str) -> &str {
        self.host_index(key).map_or("", |i| &self.names[i])
    }

    fn host_index(&self, key: &str) -> Option<usize> {
        match self.names.len() {
            0 => None,
            n => Some(slot(key, n)),
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
    fn names_sort_as_strings() {
        let r = Crc32HashRouter::new(&hosts(&["b", "a", "10", "9"]));
        assert_eq!(r.host_names(), ["10", "9", "a", "b"]);
    }

    #[test]
    fn empty_router_does_not_panic() {
        let r = Crc32HashRouter::new(&BTreeMap::new());
        assert_eq!(r.host_for_key("x"), "");
    }
}
