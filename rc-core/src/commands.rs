//! Every Redis command rc sends is built here, with the `redis` crate's
//! [`Cmd`] and [`Pipeline`], and every reply is read back here.
//!
//! The blocking pool writes `get_packed_command()` bytes itself (to talk to
//! many servers at once without threads); the async connection sends the
//! `Cmd` as is. Both send the same bytes.

use std::time::Duration;

use redis::{Cmd, Pipeline, RedisError, Value};

use crate::backend::SetItem;
use crate::error::{Error, Result};

/// `GET key`.
pub(crate) fn get(key: &str) -> Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

/// `MGET k1 k2 ...`.
pub(crate) fn mget<'k>(keys: impl IntoIterator<Item = &'k str>) -> Cmd {
    keys_cmd("MGET", keys)
}

/// `MGET k1 k2 ...` then `PTTL` of each key, for the near cache (see
/// [`mget_pttl_reply`]). `n + 1` replies.
pub(crate) fn mget_pttl<'k>(keys: impl IntoIterator<Item = &'k str> + Clone) -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.add_command(mget(keys.clone()));
    for k in keys {
        pipe.add_command(pttl(k));
    }
    pipe
}

/// Splits the replies of [`mget_pttl`] into per-key values with the time
/// each has left: `PTTL` -1 (no expiry) is `None`, -2 (gone since the
/// `MGET`) is zero.
pub(crate) fn mget_pttl_reply(
    replies: Result<Vec<Value>>,
    n: usize,
    to_err: impl Fn(RedisError) -> Error,
) -> Vec<Result<crate::backend::WithTtl>> {
    let mut replies = match replies {
        Ok(r) if r.len() == n + 1 => r.into_iter(),
        Ok(r) => return vec![Err(to_err(unexpected(&Value::Array(r)))); n],
        Err(e) => return vec![Err(e); n],
    };
    let values = MgetReplies::new(Ok(replies.next().unwrap_or(Value::Nil)), n, &to_err);
    values
        .zip(replies)
        .map(|(v, t)| {
            let left = match t {
                Value::Int(-1) => None,
                t => Some(ttl(&t).unwrap_or(Duration::ZERO)),
            };
            v.map(|v| v.map(|bytes| (bytes, left)))
        })
        .collect()
}

/// `CLIENT ID`.
pub(crate) fn client_id() -> Cmd {
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("ID");
    cmd
}

/// The channel invalidations go to on a RESP2 connection.
pub(crate) const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// `CLIENT TRACKING on REDIRECT id BCAST [PREFIX prefix]`: the server tells
/// connection `id` of every change to a key starting with `prefix` (any key
/// when it is empty), on [`INVALIDATE_CHANNEL`].
pub(crate) fn track_prefix(id: i64, prefix: &str) -> Cmd {
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("TRACKING")
        .arg("on")
        .arg("REDIRECT")
        .arg(id)
        .arg("BCAST");
    if !prefix.is_empty() {
        cmd.arg("PREFIX").arg(prefix);
    }
    cmd
}

/// `DEL k1 k2 ...` then `DEL` of their leases: a delete voids the leases
/// out on its keys (see [`lease_many`]). Two replies; the first counts.
pub(crate) fn del<'k>(keys: impl IntoIterator<Item = &'k str> + Clone) -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.add_command(keys_cmd("DEL", keys.clone()));
    pipe.add_command(del_leases(keys));
    pipe
}

fn del_leases<'k>(keys: impl IntoIterator<Item = &'k str>) -> Cmd {
    let mut cmd = redis::cmd("DEL");
    for k in keys {
        cmd.arg(lease_key(k));
    }
    cmd
}

fn keys_cmd<'k>(name: &str, keys: impl IntoIterator<Item = &'k str>) -> Cmd {
    let mut cmd = redis::cmd(name);
    for k in keys {
        cmd.arg(k);
    }
    cmd
}

/// `SET key value EX secs`, rc's form; `PX ms` for expiries with a fraction of a second.
fn set(key: &str, value: &[u8], expire: Duration) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if expire.subsec_nanos() == 0 {
        cmd.arg("EX").arg(expire.as_secs());
    } else {
        cmd.arg("PX").arg(expire.as_millis().max(1) as u64);
    }
    cmd
}

/// One `SET` per item, then one `DEL` of their leases: a write voids the
/// leases out on its keys. `n + 1` replies.
pub(crate) fn set_many<'i>(
    items: impl IntoIterator<Item = (&'i str, &'i [u8], Duration)> + Clone,
) -> Pipeline {
    let mut pipe = redis::pipe();
    for (k, v, e) in items.clone() {
        pipe.add_command(set(k, v, e));
    }
    pipe.add_command(del_leases(items.into_iter().map(|(k, _, _)| k)));
    pipe
}

/// A [`SetItem`] as [`set_many`] takes it.
pub(crate) fn item(i: &SetItem) -> (&str, &[u8], Duration) {
    (&i.0, &i.1, i.2)
}

/// The key of the lease on `key`. Its hash tag keeps it in `key`'s slot on
/// Redis Cluster (for keys without braces); Python rc never reads it.
pub(crate) fn lease_key(key: &str) -> String {
    format!("rc-lease:{{{key}}}")
}

/// One `SET lease token NX PX ttl` per key: granted where no lease is out.
/// (The leases of "Scaling Memcache at Facebook", NSDI 2013, §3.2.1: a miss
/// takes a lease, a write or delete voids it, a store under a voided lease
/// is dropped.)
pub(crate) fn lease_many<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    token: &str,
    ttl: Duration,
) -> Pipeline {
    let mut pipe = redis::pipe();
    for k in keys {
        let mut cmd = redis::cmd("SET");
        cmd.arg(lease_key(k))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        pipe.add_command(cmd);
    }
    pipe
}

/// Stores `KEYS[1]` only while the lease `KEYS[2]` is still `ARGV[1]`'s,
/// and gives the lease back. Replies 1 when stored, 0 when the lease was voided.
const STORE_LEASED: &str = "if redis.call('GET', KEYS[2]) == ARGV[1] then \
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) \
    redis.call('DEL', KEYS[2]) return 1 end return 0";

/// One leased store per item (see [`STORE_LEASED`]).
pub(crate) fn set_many_leased<'i>(
    items: impl IntoIterator<Item = &'i SetItem>,
    token: &str,
) -> Pipeline {
    let mut pipe = redis::pipe();
    for (k, v, e) in items {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(STORE_LEASED)
            .arg(2)
            .arg(k.as_str())
            .arg(lease_key(k))
            .arg(token)
            .arg(v.as_slice())
            .arg(e.as_millis().max(1) as u64);
        pipe.add_command(cmd);
    }
    pipe
}

/// Gives back the leases `token` holds on `keys` (a computation that
/// stores nothing, e.g. a bypassed result, must not keep others from storing).
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    redis.call('DEL', KEYS[1]) end return 0";

/// One [`RELEASE`] per key.
pub(crate) fn release_many<'k>(keys: impl IntoIterator<Item = &'k str>, token: &str) -> Pipeline {
    let mut pipe = redis::pipe();
    for k in keys {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE).arg(1).arg(lease_key(k)).arg(token);
        pipe.add_command(cmd);
    }
    pipe
}

/// Per-key outcome of [`lease_many`]: granted (`OK`) or not (nil).
pub(crate) fn granted(replies: &[Value]) -> Vec<bool> {
    replies
        .iter()
        .map(|v| matches!(v, Value::Okay) || matches!(v, Value::SimpleString(s) if s == "OK"))
        .collect()
}

/// True when every leased store of [`set_many_leased`] stored.
pub(crate) fn all_stored(replies: &[Value]) -> bool {
    replies.iter().all(|v| matches!(v, Value::Int(1)))
}

/// `PTTL key`.
pub(crate) fn pttl(key: &str) -> Cmd {
    let mut cmd = redis::cmd("PTTL");
    cmd.arg(key);
    cmd
}

/// `PING`.
pub(crate) fn ping() -> Cmd {
    redis::cmd("PING")
}

/// The reply, or the error it is. rc's commands (`MGET`, `SET`, `DEL`,
/// `EVAL`, ...) never nest errors inside arrays, so unlike
/// `Value::extract_error` this does not walk a 1000-item `MGET` reply (that
/// walk was about 6% of the client CPU of a 1000-key cluster `get_many`).
pub(crate) fn reply(v: Value) -> Result<Value, RedisError> {
    match v {
        Value::ServerError(e) => Err(e.into()),
        v => Ok(v),
    }
}

/// A bulk-string reply as bytes, nil as `None`.
pub(crate) fn bulk(v: Value) -> Result<Option<Vec<u8>>, RedisError> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        Value::SimpleString(s) => Ok(Some(s.into_bytes())),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(v: &Value) -> RedisError {
    RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected reply",
        format!("{v:?}").chars().take(100).collect::<String>(),
    ))
}

/// An `MGET` reply as its keys' outcomes, in key order, taken one by one
/// (no vector of outcomes in between, so a cluster places each straight
/// where its caller wants it). A failed call fails every key.
pub struct MgetReplies {
    state: Replies,
}

enum Replies {
    /// Every item is a bulk string or nil (checked when the reply came).
    Values(std::vec::IntoIter<Value>),
    Failed(Error, usize),
    /// A distrusted server's keys: all misses.
    Misses(usize),
}

impl MgetReplies {
    /// Checks an `MGET` reply for `n` keys; `to_err` names the server.
    pub(crate) fn new(
        reply: Result<Value>,
        n: usize,
        to_err: impl Fn(RedisError) -> Error,
    ) -> Self {
        let state = match reply {
            Ok(Value::Array(items)) if items.len() == n => {
                match items.iter().find(|v| !is_bulk(v)) {
                    None => Replies::Values(items.into_iter()),
                    Some(bad) => Replies::Failed(to_err(unexpected(bad)), n),
                }
            }
            Ok(other) => Replies::Failed(to_err(unexpected(&other)), n),
            Err(e) => Replies::Failed(e, n),
        };
        MgetReplies { state }
    }

    /// `n` misses.
    pub(crate) fn misses(n: usize) -> Self {
        MgetReplies {
            state: Replies::Misses(n),
        }
    }
}

fn is_bulk(v: &Value) -> bool {
    matches!(
        v,
        Value::Nil | Value::BulkString(_) | Value::SimpleString(_)
    )
}

impl Iterator for MgetReplies {
    type Item = Result<Option<Vec<u8>>>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.state {
            Replies::Values(items) => items.next().map(|v| {
                Ok(match v {
                    Value::BulkString(b) => Some(b),
                    Value::SimpleString(s) => Some(s.into_bytes()),
                    // Nil: `new` let nothing else through.
                    _ => None,
                })
            }),
            Replies::Failed(_, 0) | Replies::Misses(0) => None,
            Replies::Failed(e, left) => {
                *left -= 1;
                Some(Err(e.clone()))
            }
            Replies::Misses(left) => {
                *left -= 1;
                Some(Ok(None))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.state {
            Replies::Values(items) => items.len(),
            Replies::Failed(_, n) | Replies::Misses(n) => *n,
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for MgetReplies {}

impl std::fmt::Debug for MgetReplies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MgetReplies")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// True when every reply is `OK`.
pub(crate) fn all_ok(replies: &[Value]) -> bool {
    replies
        .iter()
        .all(|v| matches!(v, Value::Okay) || matches!(v, Value::SimpleString(s) if s == "OK"))
}

/// The integer of a reply such as `DEL`'s.
pub(crate) fn count(reply: &Value) -> u64 {
    match reply {
        Value::Int(n) => (*n).max(0) as u64,
        _ => 0,
    }
}

/// A `PTTL` reply: the time left, `None` for a missing key or one without expiry.
pub(crate) fn ttl(reply: &Value) -> Option<Duration> {
    match reply {
        Value::Int(ms) if *ms >= 0 => Some(Duration::from_millis(*ms as u64)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_uses_ex_for_whole_seconds_and_px_otherwise() {
        let packed = |c: Cmd| String::from_utf8(c.get_packed_command()).unwrap();
        let lease = String::from_utf8(del_leases(["k"]).get_packed_command()).unwrap();
        assert!(lease.ends_with("$12\r\nrc-lease:{k}\r\n"), "{lease:?}");
        let ex = packed(set("k", b"v", Duration::from_secs(259_200)));
        assert!(ex.ends_with("$2\r\nEX\r\n$6\r\n259200\r\n"), "{ex:?}");
        let px = packed(set("k", b"v", Duration::from_millis(1500)));
        assert!(px.ends_with("$2\r\nPX\r\n$4\r\n1500\r\n"), "{px:?}");
        let tiny = packed(set("k", b"v", Duration::from_micros(10)));
        assert!(tiny.ends_with("$2\r\nPX\r\n$1\r\n1\r\n"), "{tiny:?}");
    }

    #[test]
    fn mget_reply_shapes() {
        let to_err = |e| Error::redis("h", e, Duration::from_secs(1));
        let ok = Ok(Value::Array(vec![
            Value::BulkString(b"x".to_vec()),
            Value::Nil,
        ]));
        let r: Vec<_> = MgetReplies::new(ok, 2, to_err).collect();
        assert_eq!(r[0].as_ref().unwrap().as_deref(), Some(&b"x"[..]));
        assert!(r[1].as_ref().unwrap().is_none());
        let r = MgetReplies::new(Ok(Value::Int(3)), 2, to_err);
        assert_eq!(r.len(), 2);
        assert!(r.into_iter().all(|x| x.is_err()));
        let bad = Ok(Value::Array(vec![Value::Nil, Value::Int(1)]));
        assert!(MgetReplies::new(bad, 2, to_err).all(|x| x.is_err()));
        let short = Ok(Value::Array(vec![Value::Nil]));
        assert_eq!(
            MgetReplies::new(short, 2, to_err)
                .filter(Result::is_err)
                .count(),
            2
        );
        assert!(MgetReplies::misses(3).all(|x| matches!(x, Ok(None))));
    }

    #[test]
    fn mget_pttl_reply_shapes() {
        let to_err = |e| Error::redis("h", e, Duration::from_secs(1));
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let replies = vec![
            Value::Array(vec![b("x"), b("y"), b("z"), Value::Nil]),
            Value::Int(1500),
            Value::Int(-1),
            Value::Int(-2),
            Value::Int(-2),
        ];
        let r: Vec<_> = mget_pttl_reply(Ok(replies), 4, to_err)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(r[0], Some((b"x".to_vec(), ms(1500))));
        assert_eq!(r[1], Some((b"y".to_vec(), None)));
        assert_eq!(r[2], Some((b"z".to_vec(), ms(0))));
        assert_eq!(r[3], None);
        assert!(
            mget_pttl_reply(Ok(vec![Value::Nil]), 2, to_err)
                .iter()
                .all(Result::is_err)
        );
        let tracking = String::from_utf8(track_prefix(7, "ns:").get_packed_command()).unwrap();
        assert!(
            tracking.ends_with("$5\r\nBCAST\r\n$6\r\nPREFIX\r\n$3\r\nns:\r\n"),
            "{tracking:?}"
        );
    }

    #[test]
    fn ttl_replies() {
        assert_eq!(ttl(&Value::Int(1500)), Some(Duration::from_millis(1500)));
        assert_eq!(ttl(&Value::Int(-1)), None);
        assert_eq!(ttl(&Value::Int(-2)), None);
    }
}
