//! [`HostName`]: a cluster host's name, an integer or a string, sorted as rc sorts them.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use rc_core::HostConfig;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// The name of a cluster host: an integer or a string, as the keys of rc's
/// Python host maps (`{0: {...}, 1: {...}}` or `{"cache01": {...}}`).
///
/// The routers place keys by the position of a host among the names *in
/// sorted order*, and rc sorted them with Python 2's `sorted(hosts)`, so
/// `HostName` orders as Python 2 does:
///
/// - integers numerically, before every string (CPython 2 puts numbers
///   before other types);
/// - strings by their UTF-8 bytes, which is also the order of their code
///   points, so `str` and `unicode` names (what `json.load` gives) sort the same.
///
/// A string stays a string even when it looks like a number: `"10"` is not
/// `10`, and sorts after every integer and before `"9"`. Give integer names
/// as integers (`.host(10, ..)`) when rc's host map has integer keys.
///
/// ```
/// use rc::HostName;
/// let mut names: Vec<HostName> =
///     vec!["b".into(), 10.into(), "10".into(), 2.into(), "a".into(), (-1).into()];
/// names.sort();
/// let shown: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
/// assert_eq!(shown, ["-1", "2", "10", "\"10\"", "\"a\"", "\"b\""]);
///
/// let ten = HostName::from(10);
/// assert_eq!((ten.as_int(), ten.as_str()), (Some(10), "10"));
/// assert_eq!(ten.to_string(), "10");
/// assert_ne!(ten, HostName::from("10"));
/// ```
///
/// `as_str` (and [`Display`](fmt::Display)) gives an integer's decimal text;
/// that text is what [`Router::host_for_key`](crate::Router::host_for_key)
/// and the cluster backends answer with, which is why a cluster may not have
/// both `10` and `"10"`.
///
/// It deserializes from an integer or a string and serializes back to the same.
#[derive(Clone)]
pub struct HostName {
    /// `Some` for an integer name.
    int: Option<i64>,
    /// The string, or the integer's decimal text.
    text: String,
}

impl HostName {
    /// The integer, for an integer name.
    pub fn as_int(&self) -> Option<i64> {
        self.int
    }

    /// True for an integer name.
    pub fn is_int(&self) -> bool {
        self.int.is_some()
    }

    /// The string, or an integer's decimal text (`"10"` for `10`).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<i64> for HostName {
    fn from(n: i64) -> Self {
        HostName {
            int: Some(n),
            text: n.to_string(),
        }
    }
}

macro_rules! from_int {
    ($($t:ty)*) => {$(
        impl From<$t> for HostName {
            fn from(n: $t) -> Self {
                HostName::from(i64::from(n))
            }
        }
    )*};
}
from_int!(i8 i16 i32 u8 u16 u32);

impl From<String> for HostName {
    fn from(s: String) -> Self {
        HostName { int: None, text: s }
    }
}

impl From<&str> for HostName {
    fn from(s: &str) -> Self {
        HostName::from(s.to_owned())
    }
}

impl From<&String> for HostName {
    fn from(s: &String) -> Self {
        HostName::from(s.clone())
    }
}

impl From<&HostName> for HostName {
    fn from(n: &HostName) -> Self {
        n.clone()
    }
}

impl PartialEq for HostName {
    fn eq(&self, other: &Self) -> bool {
        self.int == other.int && self.text == other.text
    }
}

impl Eq for HostName {}

impl Hash for HostName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.int.hash(state);
        self.text.hash(state);
    }
}

impl Ord for HostName {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.int, other.int) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => self.text.as_bytes().cmp(other.text.as_bytes()),
        }
    }
}

impl PartialOrd for HostName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A string name equals its string; an integer name equals no string.
impl PartialEq<str> for HostName {
    fn eq(&self, other: &str) -> bool {
        self.int.is_none() && self.text == other
    }
}

impl PartialEq<&str> for HostName {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq<i64> for HostName {
    fn eq(&self, other: &i64) -> bool {
        self.int == Some(*other)
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `10` for an integer, `"10"` for a string.
impl fmt::Debug for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.int {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "{:?}", self.text),
        }
    }
}

impl Serialize for HostName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.int {
            Some(n) => s.serialize_i64(n),
            None => s.serialize_str(&self.text),
        }
    }
}

impl<'de> Deserialize<'de> for HostName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl Visitor<'_> for Visit {
            type Value = HostName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a host name (an integer or a string)")
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<HostName, E> {
                Ok(n.into())
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<HostName, E> {
                i64::try_from(n)
                    .map(HostName::from)
                    .map_err(|_| E::custom(format!("host name {n} is too large")))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<HostName, E> {
                Ok(s.into())
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<HostName, E> {
                Ok(s.into())
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The hosts of a host map, sorted by name as rc sorts them (see [`HostName`]).
pub(crate) fn sorted_hosts<K>(hosts: &BTreeMap<K, HostConfig>) -> Vec<(HostName, &HostConfig)>
where
    K: Clone + Into<HostName>,
{
    let mut sorted: Vec<(HostName, &HostConfig)> = hosts
        .iter()
        .map(|(name, config)| (name.clone().into(), config))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_as_python_2() {
        // PYENV_VERSION=2.7.18 python2.7 -c
        //   "print sorted([10, 'a', 1, u'b', 'B', -3, 2**62, '10', u'\xe9', 'z', '', 0])"
        // [-3, 0, 1, 10, 4611686018427387904, '', '10', 'B', 'a', u'b', 'z', u'\xe9']
        let mut names: Vec<HostName> = vec![
            10.into(),
            "a".into(),
            1.into(),
            "b".into(),
            "B".into(),
            (-3).into(),
            (1i64 << 62).into(),
            "10".into(),
            "é".into(),
            "z".into(),
            "".into(),
            0.into(),
        ];
        names.sort();
        let shown: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        assert_eq!(
            shown,
            [
                "-3",
                "0",
                "1",
                "10",
                "4611686018427387904",
                "\"\"",
                "\"10\"",
                "\"B\"",
                "\"a\"",
                "\"b\"",
                "\"z\"",
                "\"é\""
            ]
        );
    }

    #[test]
    fn integers_and_strings_differ() {
        assert_ne!(HostName::from(1), HostName::from("1"));
        assert_eq!(HostName::from(1u8), HostName::from(1i64));
        let (a, one, one_str) = (HostName::from("a"), HostName::from(1), HostName::from("1"));
        assert!(a == "a" && a == *"a");
        assert!(one != "1" && one == 1);
        assert!(one_str == "1" && one_str != 1);
    }

    #[test]
    fn serde_round_trip() {
        let names: Vec<HostName> = serde_json::from_str(r#"[0, "0", -7, "a"]"#).unwrap();
        assert_eq!(names[0].as_int(), Some(0));
        assert_eq!(names[1].as_int(), None);
        assert_eq!(names[2], -7);
        assert_eq!(serde_json::to_string(&names).unwrap(), r#"[0,"0",-7,"a"]"#);
        let e = serde_json::from_str::<HostName>("1.5").unwrap_err();
        assert!(e.to_string().contains("an integer or a string"), "{e}");
        let e = serde_json::from_str::<HostName>("18446744073709551615").unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }
}
