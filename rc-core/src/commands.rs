//! Every Redis command rc sends is built here, with the `redis` crate's
//! [`Cmd`] and [`Pipeline`], and every reply is read back here.
//!
//! The blocking pool writes `get_packed_command()` bytes itself (to talk to
//! many servers at once without threads); the async connection sends the
//! `Cmd` as is. Both send the same bytes.

use std::time::Duration;

use redis::{Cmd, Pipeline, RedisError, Value};

use crate::backend::{SetItem, ValueTtl};
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

/// `GET key` and `PTTL key`, pipelined: a value and the time it has left.
pub(crate) fn get_with_pttl(key: &str) -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.add_command(get(key)).add_command(pttl(key));
    pipe
}

/// The two replies of [`get_with_pttl`].
pub(crate) fn value_and_ttl(replies: Vec<Value>) -> Result<ValueTtl, RedisError> {
    let mut replies = replies.into_iter();
    let (Some(value), Some(left)) = (replies.next(), replies.next()) else {
        return Err(unexpected(&Value::Nil));
    };
    Ok(bulk(value)?.map(|v| (v, ttl(&left))))
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

/// Splits an `MGET` reply into per-key outcomes; a failed call fails every key.
pub(crate) fn mget_reply(
    reply: Result<Value>,
    n: usize,
    to_err: impl Fn(RedisError) -> Error,
) -> Vec<Result<Option<Vec<u8>>>> {
    match reply {
        Ok(Value::Array(items)) if items.len() == n => items
            .into_iter()
            .map(|v| bulk(v).map_err(&to_err))
            .collect(),
        Ok(other) => vec![Err(to_err(unexpected(&other))); n],
        Err(e) => vec![Err(e); n],
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
        let r = mget_reply(ok, 2, to_err);
        assert_eq!(r[0].as_ref().unwrap().as_deref(), Some(&b"x"[..]));
        assert!(r[1].as_ref().unwrap().is_none());
        let r = mget_reply(Ok(Value::Int(3)), 2, to_err);
        assert!(r.iter().all(|x| x.is_err()));
    }

    #[test]
    fn ttl_replies() {
        assert_eq!(ttl(&Value::Int(1500)), Some(Duration::from_millis(1500)));
        assert_eq!(ttl(&Value::Int(-1)), None);
        assert_eq!(ttl(&Value::Int(-2)), None);
    }
}
