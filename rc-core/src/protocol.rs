//! RESP encoding of the few commands rc sends, and decoding of their replies.
//!
//! Packing by hand skips the `redis` crate's per-argument allocations; the
//! connection still belongs to the `redis` crate.

use std::time::Duration;

use redis::Value;

use crate::error::{Error, Result};

fn header(buf: &mut Vec<u8>, n: usize) {
    buf.push(b'*');
    push_int(buf, n as u64);
    buf.extend_from_slice(b"\r\n");
}

fn arg(buf: &mut Vec<u8>, a: &[u8]) {
    buf.push(b'$');
    push_int(buf, a.len() as u64);
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(a);
    buf.extend_from_slice(b"\r\n");
}

fn push_int(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// `GET key`.
pub fn get(key: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(key.len() + 24);
    header(&mut b, 2);
    arg(&mut b, b"GET");
    arg(&mut b, key.as_bytes());
    b
}

/// `MGET k1 k2 ...`.
pub fn mget<K: AsRef<str>>(keys: &[K]) -> Vec<u8> {
    let mut b = Vec::with_capacity(keys.iter().map(|k| k.as_ref().len() + 16).sum::<usize>() + 16);
    header(&mut b, keys.len() + 1);
    arg(&mut b, b"MGET");
    for k in keys {
        arg(&mut b, k.as_ref().as_bytes());
    }
    b
}

fn push_set(b: &mut Vec<u8>, key: &str, value: &[u8], expire: Duration) {
    header(b, 5);
    arg(b, b"SET");
    arg(b, key.as_bytes());
    arg(b, value);
    // Whole seconds keep rc's `SET .. EX` form; finer expiries use PX.
    if expire.subsec_nanos() == 0 {
        arg(b, b"EX");
        let mut n = Vec::with_capacity(8);
        push_int(&mut n, expire.as_secs());
        arg(b, &n);
    } else {
        arg(b, b"PX");
        let mut n = Vec::with_capacity(8);
        push_int(&mut n, expire.as_millis().max(1) as u64);
        arg(b, &n);
    }
}

/// `SET key value EX secs` (or `PX ms` for sub-second expiries).
pub fn set(key: &str, value: &[u8], expire: Duration) -> Vec<u8> {
    let mut b = Vec::with_capacity(key.len() + value.len() + 48);
    push_set(&mut b, key, value, expire);
    b
}

/// `SET key value EX secs` as a `redis::Cmd`, for async connections.
pub fn set_cmd(key: &str, value: &[u8], expire: Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if expire.subsec_nanos() == 0 {
        cmd.arg("EX").arg(expire.as_secs());
    } else {
        cmd.arg("PX").arg(expire.as_millis().max(1) as u64);
    }
    cmd
}

/// A pipeline of `SET .. EX ..`, one per item.
pub fn set_many<'a>(items: impl IntoIterator<Item = (&'a str, &'a [u8], Duration)>) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v, e) in items {
        push_set(&mut b, k, v, e);
    }
    b
}

/// `DEL k1 k2 ...`.
pub fn del<K: AsRef<str>>(keys: &[K]) -> Vec<u8> {
    let mut b = Vec::with_capacity(keys.iter().map(|k| k.as_ref().len() + 16).sum::<usize>() + 16);
    header(&mut b, keys.len() + 1);
    arg(&mut b, b"DEL");
    for k in keys {
        arg(&mut b, k.as_ref().as_bytes());
    }
    b
}

/// A bulk-string reply as bytes, nil as `None`.
pub fn bulk(v: Value) -> Result<Option<Vec<u8>>, redis::RedisError> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        Value::SimpleString(s) => Ok(Some(s.into_bytes())),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(v: &Value) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected reply",
        format!("{v:?}").chars().take(100).collect::<String>(),
    ))
}

/// Splits an `MGET` reply into per-key outcomes; a failed call fails every key.
pub fn mget_reply(
    reply: Result<Vec<Value>>,
    n: usize,
    to_err: impl Fn(redis::RedisError) -> Error,
) -> Vec<Result<Option<Vec<u8>>>> {
    match reply.map(|mut v| v.pop()) {
        Ok(Some(Value::Array(items))) if items.len() == n => items
            .into_iter()
            .map(|v| bulk(v).map_err(&to_err))
            .collect(),
        Ok(other) => {
            let e = to_err(unexpected(&other.unwrap_or(Value::Nil)));
            vec![Err(e); n]
        }
        Err(e) => vec![Err(e); n],
    }
}

/// True when every reply is `OK`.
pub fn all_ok(replies: &[Value]) -> bool {
    replies
        .iter()
        .all(|v| matches!(v, Value::Okay) || matches!(v, Value::SimpleString(s) if s == "OK"))
}

/// The integer of a one-reply answer such as `DEL`'s.
pub fn count(replies: &[Value]) -> u64 {
    match replies.first() {
        Some(Value::Int(n)) => (*n).max(0) as u64,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_like_the_redis_crate() {
        assert_eq!(get("k"), redis::cmd("GET").arg("k").get_packed_command());
        assert_eq!(
            mget(&["a", "b"]),
            redis::cmd("MGET").arg("a").arg("b").get_packed_command()
        );
        assert_eq!(del(&["a"]), redis::cmd("DEL").arg("a").get_packed_command());
        let want = redis::cmd("SET")
            .arg("k")
            .arg(b"v")
            .arg("EX")
            .arg(259200)
            .get_packed_command();
        assert_eq!(set("k", b"v", Duration::from_secs(259200)), want);
        let want = redis::cmd("SET")
            .arg("k")
            .arg(b"v")
            .arg("PX")
            .arg(1500)
            .get_packed_command();
        assert_eq!(set("k", b"v", Duration::from_millis(1500)), want);
    }

    #[test]
    fn mget_reply_shapes() {
        let to_err = |e| Error::redis("h", e, Duration::from_secs(1));
        let ok = Ok(vec![Value::Array(vec![
            Value::BulkString(b"x".to_vec()),
            Value::Nil,
        ])]);
        let r = mget_reply(ok, 2, to_err);
        assert_eq!(r[0].as_ref().unwrap().as_deref(), Some(&b"x"[..]));
        assert!(r[1].as_ref().unwrap().is_none());
        let r = mget_reply(Ok(vec![Value::Int(3)]), 2, to_err);
        assert!(r.iter().all(|x| x.is_err()));
    }
}
