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

/// `DEL k1 k2 ...`.
pub(crate) fn del<'k>(keys: impl IntoIterator<Item = &'k str>) -> Cmd {
    keys_cmd("DEL", keys)
}

fn keys_cmd<'k>(name: &str, keys: impl IntoIterator<Item = &'k str>) -> Cmd {
    let mut cmd = redis::cmd(name);
    for k in keys {
        cmd.arg(k);
    }
    cmd
}

/// `SET key value EX secs`, rc's form; `PX ms` for expiries with a fraction of a second.
pub(crate) fn set(key: &str, value: &[u8], expire: Duration) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if expire.subsec_nanos() == 0 {
        cmd.arg("EX").arg(expire.as_secs());
    } else {
        cmd.arg("PX").arg(expire.as_millis().max(1) as u64);
    }
    cmd
}

/// One `SET` per item, pipelined.
pub(crate) fn set_many<'i>(items: impl IntoIterator<Item = &'i SetItem>) -> Pipeline {
    let mut pipe = redis::pipe();
    for (k, v, e) in items {
        pipe.add_command(set(k, v, *e));
    }
    pipe
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
