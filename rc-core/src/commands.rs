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

/// `pipe` with `ASKING` before each command (see [`Split::Asking`]).
pub(crate) fn asking(pipe: &Pipeline) -> Pipeline {
    let mut out = redis::pipe();
    for cmd in pipe.cmd_iter() {
        out.add_command(redis::cmd("ASKING"));
        out.add_command(cmd.clone());
    }
    out
}

/// `cmd` after `ASKING`, for a node reached through an `ASK` redirection:
/// its reply is the pipeline's last.
pub(crate) fn asked(cmd: &Cmd) -> Pipeline {
    let mut out = redis::pipe();
    out.add_command(redis::cmd("ASKING"));
    out.add_command(cmd.clone());
    out
}

/// The replies of an [`asking`] pipeline, without the `ASKING`s'.
pub(crate) fn unasked(replies: Vec<Value>) -> Vec<Value> {
    replies.into_iter().skip(1).step_by(2).collect()
}

/// `GET key`.
pub(crate) fn get(key: &str) -> Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

/// How multi-key commands are cut: one command for all keys (one server), or
/// one per hash slot (Redis Cluster refuses a command whose keys lie in
/// different slots, `CROSSSLOT`, even on one node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Split {
    /// One command for all keys.
    #[default]
    Whole,
    /// One command per run of consecutive keys of one hash slot.
    Slots,
    /// As `Slots`, each command after `ASKING`: for a node that is importing
    /// a slot and serves its keys only so (after an `ASK` redirection).
    Asking,
}

/// [`mget`] then `PTTL` of each key, for the near cache (see
/// [`mget_pttl_reply`]): the `MGET`s' replies, then `n` more.
pub(crate) fn mget_pttl<'k>(
    keys: impl IntoIterator<Item = &'k str> + Clone,
    split: Split,
) -> Pipeline {
    let mut pipe = mget(keys.clone(), split);
    for k in keys {
        pipe.add_command(pttl(k));
    }
    pipe
}

/// Splits the replies of [`mget_pttl`] (of `n` keys, `sizes` as [`sizes`]
/// gives) into per-key values with the time each has left: `PTTL` -1 (no
/// expiry) is `None`, -2 (gone since the `MGET`) or an error (moved since
/// the `MGET`) is zero.
pub(crate) fn mget_pttl_reply(
    replies: Result<Vec<Value>>,
    n: usize,
    sizes: &[usize],
    to_err: impl Fn(RedisError) -> Error,
) -> Vec<Result<ValueTtl>> {
    let (gets, ttls) = match replies {
        Ok(mut r) if r.len() == sizes.len() && r.len() > n => {
            let ttls = r.split_off(r.len() - n);
            (r, ttls)
        }
        Ok(r) => return vec![Err(to_err(unexpected(&Value::Array(r)))); n],
        Err(e) => return vec![Err(e); n],
    };
    let values = MgetReplies::new(Ok(gets), &sizes[..sizes.len() - n], &to_err);
    values
        .zip(ttls)
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

/// How many hash slots a Redis Cluster has.
pub(crate) const SLOTS: u16 = 16384;

/// The part of `key` Redis Cluster hashes: the first `{...}` when not empty.
fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let len = key[open + 1..].iter().position(|&b| b == b'}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// The Redis Cluster hash slot of `key`.
pub(crate) fn slot(key: &str) -> u16 {
    let key = key.as_bytes();
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key).unwrap_or(key)) % SLOTS
}

/// `keys` cut into the runs one command may carry under `split`.
fn runs<'s, 'k>(keys: &'s [&'k str], split: Split) -> Vec<&'s [&'k str]> {
    match split {
        Split::Whole if keys.is_empty() => Vec::new(),
        Split::Whole => vec![keys],
        Split::Slots | Split::Asking => {
            // One hash per key (`chunk_by` would hash each key twice).
            let mut out = Vec::new();
            let (mut start, mut current) = (0, None);
            for (i, k) in keys.iter().enumerate() {
                let s = Some(slot(k));
                if i > start && s != current {
                    out.push(&keys[start..i]);
                    start = i;
                }
                current = s;
            }
            if start < keys.len() {
                out.push(&keys[start..]);
            }
            out
        }
    }
}

/// `keys`, in slot order when commands are cut per slot, so that each slot
/// gets one command.
pub(crate) fn by_slot<'k>(keys: impl IntoIterator<Item = &'k str>, split: Split) -> Vec<&'k str> {
    let mut keys: Vec<&str> = keys.into_iter().collect();
    if split != Split::Whole {
        keys.sort_by_cached_key(|k| slot(k));
    }
    keys
}

/// How many arguments follow each command's name in `pipe`: the keys of an
/// `MGET` or `DEL`, which is how a reader knows the keys of a failed one.
pub(crate) fn sizes(pipe: &Pipeline) -> Vec<usize> {
    pipe.cmd_iter()
        .map(|c| c.args_iter().len().saturating_sub(1))
        .collect()
}

/// `MGET k1 k2 ...`: one per run of `split` (keys of one slot go together
/// when they come together). The replies are arrays, read by [`MgetReplies`].
pub(crate) fn mget<'k>(keys: impl IntoIterator<Item = &'k str>, split: Split) -> Pipeline {
    let mut pipe = redis::pipe();
    if split == Split::Whole {
        // Straight into the command: collecting the keys first cost 20
        // instructions a key of a 1000-key `get_many` (callgrind).
        let cmd = keys_cmd("MGET", keys);
        if cmd.args_iter().len() > 1 {
            pipe.add_command(cmd);
        }
        return pipe;
    }
    let keys: Vec<&str> = keys.into_iter().collect();
    for run in runs(&keys, split) {
        pipe.add_command(keys_cmd("MGET", run.iter().copied()));
    }
    pipe
}

/// `DEL k1 k2 ...` then `DEL` of their leases, per run of `split`: a delete
/// voids the leases out on its keys (see [`lease_many`]). [`del_reply`]
/// reads the replies.
pub(crate) fn del<'k>(keys: impl IntoIterator<Item = &'k str>, split: Split) -> Pipeline {
    let keys: Vec<&str> = keys.into_iter().collect();
    let mut pipe = redis::pipe();
    for run in runs(&keys, split) {
        pipe.add_command(keys_cmd("DEL", run.iter().copied()));
        pipe.add_command(del_leases(run.iter().copied()));
    }
    pipe
}

/// Per key outcomes of a [`del`] (`sizes` as [`sizes`] gives): each
/// `DEL`'s count on its first key, and whether its keys' leases were voided.
pub(crate) fn del_reply(
    replies: Result<Vec<Value>>,
    sizes: &[usize],
    to_err: impl Fn(RedisError) -> Error,
) -> Writes<u64> {
    let n = sizes.iter().step_by(2).sum();
    let replies = match checked(replies, sizes.len(), &to_err) {
        Ok(r) => r,
        Err(e) => return Writes::failed(e, n, true),
    };
    let mut out = Writes::with_capacity(n);
    let mut replies = replies.into_iter();
    for pair in sizes.chunks(2) {
        let (dels, voids) = (replies.next(), replies.next());
        let len = pair[0];
        match dels.map(|v| outcome(v, &to_err)) {
            Some(Ok(v)) => {
                out.each.push(Ok(count(&v)));
                out.each
                    .extend(std::iter::repeat_n(Ok(0), len.saturating_sub(1)));
            }
            Some(Err(e)) => out.each.extend(std::iter::repeat_n(Err(e), len)),
            None => {}
        }
        let voided = voids.map_or(Ok(()), |v| outcome(v, &to_err).map(drop));
        out.voided.extend(std::iter::repeat_n(voided, len));
    }
    out
}

/// One `DEL` of leases per run of `split` (see [`set_many`]).
pub(crate) fn void_leases<'k>(keys: impl IntoIterator<Item = &'k str>, split: Split) -> Pipeline {
    let mut pipe = redis::pipe();
    add_voids(&mut pipe, keys, split);
    pipe
}

fn add_voids<'k>(pipe: &mut Pipeline, keys: impl IntoIterator<Item = &'k str>, split: Split) {
    let keys: Vec<&str> = keys.into_iter().collect();
    for run in runs(&keys, split) {
        pipe.add_command(del_leases(run.iter().copied()));
    }
}

/// Per key outcomes of a [`void_leases`] (`sizes` as [`sizes`] gives).
pub(crate) fn void_reply(
    replies: Result<Vec<Value>>,
    sizes: &[usize],
    to_err: impl Fn(RedisError) -> Error,
) -> Vec<Result<()>> {
    let n = sizes.iter().sum();
    match checked(replies, sizes.len(), &to_err) {
        Ok(replies) => voids(replies, sizes, &to_err),
        Err(e) => vec![Err(e); n],
    }
}

/// Per key outcomes of lease `DEL`s covering `sizes` keys each.
fn voids(
    replies: Vec<Value>,
    sizes: &[usize],
    to_err: &impl Fn(RedisError) -> Error,
) -> Vec<Result<()>> {
    let mut out = Vec::with_capacity(sizes.iter().sum());
    for (v, &len) in replies.into_iter().zip(sizes) {
        out.extend(std::iter::repeat_n(outcome(v, to_err).map(drop), len));
    }
    out
}

/// The replies of a pipeline of `len` commands, in order (each may be an
/// error reply); another count is an unexpected reply.
fn checked(
    replies: Result<Vec<Value>>,
    len: usize,
    to_err: &impl Fn(RedisError) -> Error,
) -> Result<Vec<Value>> {
    match replies {
        Ok(r) if r.len() == len => Ok(r),
        Ok(r) => Err(to_err(unexpected(&Value::Array(r)))),
        Err(e) => Err(e),
    }
}

/// One command's reply, or the error it is, naming the server.
fn outcome(v: Value, to_err: &impl Fn(RedisError) -> Error) -> Result<Value> {
    reply(v).map_err(to_err)
}

/// Per key outcomes of a write: each key's command, and the `DEL` of its
/// lease where that is a command of its own. A redirected command fails
/// only its keys, so a Redis Cluster sends only those again.
pub(crate) struct Writes<T> {
    /// Each key's command (a `DEL` of many keys counts on its first one).
    pub(crate) each: Vec<Result<T>>,
    /// Each key's lease voided; empty when the command voids it itself.
    pub(crate) voided: Vec<Result<()>>,
}

impl<T> Default for Writes<T> {
    fn default() -> Self {
        Writes {
            each: Vec::new(),
            voided: Vec::new(),
        }
    }
}

impl<T: Clone> Writes<T> {
    fn with_capacity(n: usize) -> Self {
        Writes {
            each: Vec::with_capacity(n),
            voided: Vec::with_capacity(n),
        }
    }

    /// `n` keys failed by `e` (with their leases when `voids`).
    pub(crate) fn failed(e: Error, n: usize, voids: bool) -> Self {
        Writes {
            each: vec![Err(e.clone()); n],
            voided: if voids { vec![Err(e); n] } else { Vec::new() },
        }
    }

    /// The first error, else every key's outcome merged into `init`.
    pub(crate) fn fold<A>(self, init: A, merge: impl Fn(A, T) -> A) -> Result<A> {
        let mut all = init;
        for r in self.each {
            all = merge(all, r?);
        }
        self.voided.into_iter().collect::<Result<()>>()?;
        Ok(all)
    }
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

/// One `SET` per item, then `DEL` of their leases (one per run of
/// `split`): a write voids the leases out on its keys. The first `n`
/// replies are the `SET`s' ([`set_reply`] reads them).
pub(crate) fn set_many<'i>(
    items: impl IntoIterator<Item = (&'i str, &'i [u8], Duration)> + Clone,
    split: Split,
) -> Pipeline {
    let mut pipe = redis::pipe();
    for (k, v, e) in items.clone() {
        pipe.add_command(set(k, v, e));
    }
    add_voids(&mut pipe, items.into_iter().map(|(k, _, _)| k), split);
    pipe
}

/// Per key outcomes of a [`set_many`] of `n` items (`sizes` as [`sizes`]
/// gives): stored (`OK`), and the key's lease voided.
pub(crate) fn set_reply(
    replies: Result<Vec<Value>>,
    n: usize,
    sizes: &[usize],
    to_err: impl Fn(RedisError) -> Error,
) -> Writes<bool> {
    let mut replies = match checked(replies, sizes.len(), &to_err) {
        Ok(r) if r.len() >= n => r,
        Ok(r) => return Writes::failed(to_err(unexpected(&Value::Array(r))), n, true),
        Err(e) => return Writes::failed(e, n, true),
    };
    let lease_dels = replies.split_off(n);
    Writes {
        each: replies
            .into_iter()
            .map(|v| outcome(v, &to_err).map(|v| is_ok(&v)))
            .collect(),
        voided: voids(lease_dels, &sizes[n..], &to_err),
    }
}

/// A [`SetItem`] as [`set_many`] takes it.
pub(crate) fn item(i: &SetItem) -> (&str, &[u8], Duration) {
    (&i.0, &i.1, i.2)
}

/// The key of the lease on `key`, in `key`'s hash slot on Redis Cluster (a
/// leased store is one `EVAL` on both keys): `key`'s own hash tag when it
/// has one, else `key` itself as the tag, else (a `}` would end that tag
/// early) a tag that hashes to `key`'s slot. Python rc never reads it.
pub(crate) fn lease_key(key: &str) -> String {
    if hash_tag(key.as_bytes()).is_some() {
        format!("rc-lease:{key}")
    } else if !key.contains('}') {
        format!("rc-lease:{{{key}}}")
    } else {
        format!("rc-lease:{{{}}}{key}", slot_tag(slot(key)))
    }
}

/// A short tag that hashes to `slot`: the smallest decimal number that does.
fn slot_tag(slot: u16) -> &'static str {
    static TAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        let mut tags = vec![String::new(); usize::from(SLOTS)];
        let mut missing = tags.len();
        // Every slot is reached by 6-digit numbers (tested below).
        for n in 0u32..1_000_000 {
            let tag = n.to_string();
            let s = &mut tags[usize::from(self::slot(&tag))];
            if s.is_empty() {
                *s = tag;
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
        tags
    });
    &tags[usize::from(slot)]
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

/// Per key outcomes of a pipeline of one command per key (`n` keys):
/// `read` of each reply, or the error it is.
pub(crate) fn per_key<T: Clone>(
    replies: Result<Vec<Value>>,
    n: usize,
    to_err: impl Fn(RedisError) -> Error,
    read: impl Fn(&Value) -> T,
) -> Vec<Result<T>> {
    match checked(replies, n, &to_err) {
        Ok(r) => r
            .into_iter()
            .map(|v| outcome(v, &to_err).map(|v| read(&v)))
            .collect(),
        Err(e) => vec![Err(e); n],
    }
}

/// A [`lease_many`] reply: granted (`OK`) or not (nil).
pub(crate) fn granted(reply: &Value) -> bool {
    is_ok(reply)
}

/// A [`set_many_leased`] reply: stored, or dropped for a voided lease.
pub(crate) fn stored(reply: &Value) -> bool {
    matches!(reply, Value::Int(1))
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
    /// Each key's outcome, when some commands failed and others not.
    Keys(std::vec::IntoIter<Result<Option<Vec<u8>>>>),
    /// A distrusted server's keys: all misses.
    Misses(usize),
}

impl MgetReplies {
    /// Checks the replies of [`mget`] (one array or error per command, of
    /// `sizes` keys as [`sizes`] gives); `to_err` names the server. A
    /// failed command fails its keys only.
    pub(crate) fn new(
        reply: Result<Vec<Value>>,
        sizes: &[usize],
        to_err: impl Fn(RedisError) -> Error,
    ) -> Self {
        let n = sizes.iter().sum();
        let state = match reply {
            Ok(replies) if replies.iter().any(|r| matches!(r, Value::ServerError(_))) => {
                match checked(Ok(replies), sizes.len(), &to_err) {
                    Ok(replies) => Replies::Keys(by_command(replies, sizes, &to_err).into_iter()),
                    Err(e) => Replies::Failed(e, n),
                }
            }
            reply => match reply.map(concat) {
                Ok(Ok(items)) if items.len() == n => match items.iter().find(|v| !is_bulk(v)) {
                    None => Replies::Values(items.into_iter()),
                    Some(bad) => Replies::Failed(to_err(unexpected(bad)), n),
                },
                Ok(Ok(items)) => Replies::Failed(to_err(unexpected(&Value::Array(items))), n),
                Ok(Err(other)) => Replies::Failed(to_err(unexpected(&other)), n),
                Err(e) => Replies::Failed(e, n),
            },
        };
        MgetReplies { state }
    }

    /// `n` misses.
    pub(crate) fn misses(n: usize) -> Self {
        MgetReplies {
            state: Replies::Misses(n),
        }
    }

    /// Hands each key's outcome to `each` with its position from
    /// `positions` (in key order); errors go through `relabel`. Not through [`Iterator::next`]: matching the state
    /// per key cost a cluster 40 instructions a key of a 1000-key `get_many`
    /// (callgrind).
    pub fn hand_out(
        self,
        positions: impl IntoIterator<Item = usize>,
        relabel: impl Fn(Error) -> Error,
        mut each: impl FnMut(usize, Result<Option<Vec<u8>>>),
    ) {
        match self.state {
            Replies::Values(items) => {
                for (pos, v) in positions.into_iter().zip(items) {
                    each(pos, Ok(bulk_bytes(v)));
                }
            }
            Replies::Failed(e, n) => {
                let e = relabel(e);
                for pos in positions.into_iter().take(n) {
                    each(pos, Err(e.clone()));
                }
            }
            Replies::Misses(n) => {
                for pos in positions.into_iter().take(n) {
                    each(pos, Ok(None));
                }
            }
            Replies::Keys(items) => {
                for (pos, v) in positions.into_iter().zip(items) {
                    each(pos, v.map_err(&relabel));
                }
            }
        }
    }
}

/// Each key's outcome of `MGET` replies of `sizes` keys each, some of
/// them errors.
fn by_command(
    replies: Vec<Value>,
    sizes: &[usize],
    to_err: &impl Fn(RedisError) -> Error,
) -> Vec<Result<Option<Vec<u8>>>> {
    let mut out = Vec::with_capacity(sizes.iter().sum());
    for (reply, &len) in replies.into_iter().zip(sizes) {
        match outcome(reply, to_err) {
            Ok(Value::Array(items)) if items.len() == len && items.iter().all(is_bulk) => {
                out.extend(items.into_iter().map(|v| Ok(bulk_bytes(v))));
            }
            Ok(other) => {
                out.extend(std::iter::repeat_n(Err(to_err(unexpected(&other))), len));
            }
            Err(e) => out.extend(std::iter::repeat_n(Err(e), len)),
        }
    }
    out
}

/// The bytes of an item [`MgetReplies::new`] let through.
fn bulk_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        // Nil: `new` let nothing else through.
        _ => None,
    }
}

/// The items of one or more `MGET` arrays, in order; else the odd reply.
fn concat(replies: Vec<Value>) -> std::result::Result<Vec<Value>, Value> {
    let mut replies = replies.into_iter();
    let mut items = match replies.next() {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(other),
        None => Vec::new(),
    };
    for reply in replies {
        match reply {
            Value::Array(more) => items.extend(more),
            other => return Err(other),
        }
    }
    Ok(items)
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
            Replies::Values(items) => items.next().map(|v| Ok(bulk_bytes(v))),
            Replies::Keys(items) => items.next(),
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
            Replies::Keys(items) => items.len(),
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

fn is_ok(v: &Value) -> bool {
    matches!(v, Value::Okay) || matches!(v, Value::SimpleString(s) if s == "OK")
}

/// The integer of a reply such as `DEL`'s.
fn count(reply: &Value) -> u64 {
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
        let ok = Ok(vec![
            Value::Array(vec![Value::BulkString(b"x".to_vec())]),
            Value::Array(vec![Value::Nil]),
        ]);
        let r: Vec<_> = MgetReplies::new(ok, &[1, 1], to_err).collect();
        assert_eq!(r[0].as_ref().unwrap().as_deref(), Some(&b"x"[..]));
        assert!(r[1].as_ref().unwrap().is_none());
        let r = MgetReplies::new(Ok(vec![Value::Int(3)]), &[2], to_err);
        assert_eq!(r.len(), 2);
        assert!(r.into_iter().all(|x| x.is_err()));
        let bad = Ok(vec![Value::Array(vec![Value::Nil, Value::Int(1)])]);
        assert!(MgetReplies::new(bad, &[2], to_err).all(|x| x.is_err()));
        let short = Ok(vec![Value::Array(vec![Value::Nil])]);
        assert_eq!(
            MgetReplies::new(short, &[2], to_err)
                .filter(Result::is_err)
                .count(),
            2
        );
        assert!(MgetReplies::misses(3).all(|x| matches!(x, Ok(None))));
        // A failed command fails its keys only.
        let moved = Ok(vec![
            Value::Array(vec![Value::BulkString(b"x".to_vec()), Value::Nil]),
            server_error("MOVED 3999 127.0.0.1:6381"),
            Value::Array(vec![Value::Nil]),
        ]);
        let r: Vec<_> = MgetReplies::new(moved, &[2, 3, 1], to_err).collect();
        assert_eq!(r.len(), 6);
        assert_eq!(r[0].as_ref().unwrap().as_deref(), Some(&b"x"[..]));
        assert!(r[1].as_ref().unwrap().is_none() && r[5].as_ref().unwrap().is_none());
        assert!(r[2..5].iter().all(|x| code(x) == Some("MOVED")));
    }

    fn server_error(text: &str) -> Value {
        redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap()
    }

    fn code<T>(r: &Result<T>) -> Option<&str> {
        match r {
            Err(Error::Redis { source, .. }) => source.code(),
            _ => None,
        }
    }

    #[test]
    fn write_replies_are_per_key() {
        let to_err = |e| Error::redis("h", e, Duration::from_secs(1));
        let keys = ["{a}1", "{a}2", "{b}1", "{c}1"];
        // DEL, lease DEL per run: the first run deleted 2 but its lease
        // delete was redirected; the second was refused; the third deleted none.
        let del_sizes = sizes(&del(keys, Split::Slots));
        assert_eq!(del_sizes, [2, 2, 1, 1, 1, 1]);
        let replies = vec![
            Value::Int(2),
            server_error("ASK 1 127.0.0.1:7001"),
            server_error("TRYAGAIN Multiple keys request during rehashing of slot"),
            Value::Int(0),
            Value::Int(0),
            Value::Int(0),
        ];
        let w = del_reply(Ok(replies.clone()), &del_sizes, to_err);
        assert_eq!(w.each[0].as_ref().unwrap() + w.each[1].as_ref().unwrap(), 2);
        assert_eq!(code(&w.each[2]), Some("TRYAGAIN"));
        assert_eq!(*w.each[3].as_ref().unwrap(), 0);
        assert!(w.voided[..2].iter().all(|v| code(v) == Some("ASK")));
        assert!(w.voided[2..].iter().all(Result::is_ok));
        let folded = del_reply(Ok(replies), &del_sizes, to_err).fold(0, |a, n| a + n);
        assert_eq!(code(&folded), Some("TRYAGAIN"));
        let counted = vec![Value::Int(2), Value::Int(0), Value::Int(1), Value::Int(1)];
        let folded = del_reply(Ok(counted), &[2, 2, 1, 1], to_err).fold(0, |a, n| a + n);
        assert_eq!(folded.unwrap(), 3);

        // SET per key, then a lease DEL per run.
        let v = [1u8];
        let items = keys.map(|k| (k, &v[..], Duration::from_secs(1)));
        let set_sizes = sizes(&set_many(items, Split::Slots));
        let replies = vec![
            Value::Okay,
            server_error("ASK 1 127.0.0.1:7001"),
            Value::Okay,
            Value::Okay,
            server_error("TRYAGAIN x"),
            Value::Int(0),
            Value::Int(1),
        ];
        let w = set_reply(Ok(replies), 4, &set_sizes, to_err);
        assert!(*w.each[0].as_ref().unwrap() && *w.each[2].as_ref().unwrap());
        assert_eq!(code(&w.each[1]), Some("ASK"));
        assert!(w.voided[..2].iter().all(|v| code(v) == Some("TRYAGAIN")));
        assert!(w.voided[2..].iter().all(Result::is_ok));
        let lost = set_reply(Err(to_err(unexpected(&Value::Nil))), 4, &set_sizes, to_err);
        assert_eq!((lost.each.len(), lost.voided.len()), (4, 4));
        assert!(lost.each.iter().all(Result::is_err) && lost.voided.iter().all(Result::is_err));

        // One command per key.
        let leases = per_key(
            Ok(vec![Value::Okay, Value::Nil, server_error("MOVED 1 h:1")]),
            3,
            to_err,
            granted,
        );
        assert!(*leases[0].as_ref().unwrap() && !leases[1].as_ref().unwrap());
        assert_eq!(code(&leases[2]), Some("MOVED"));
        assert!(
            per_key(Ok(vec![Value::Okay]), 2, to_err, granted)
                .iter()
                .all(Result::is_err)
        );
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
        let r: Vec<_> = mget_pttl_reply(Ok(replies), 4, &[4, 1, 1, 1, 1], to_err)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(r[0], Some((b"x".to_vec(), ms(1500))));
        assert_eq!(r[1], Some((b"y".to_vec(), None)));
        assert_eq!(r[2], Some((b"z".to_vec(), ms(0))));
        assert_eq!(r[3], None);
        assert!(
            mget_pttl_reply(Ok(vec![Value::Nil]), 2, &[2, 1, 1], to_err)
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
    fn slots_match_redis_cluster() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("123456789"), 0x31C3 % SLOTS);
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_eq!(slot("foo{}{bar}"), slot("foo{}{bar}"));
        assert_ne!(slot("foo{}{bar}"), slot("bar"));
        assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
    }

    #[test]
    fn whole_is_one_command_and_slots_one_per_slot() {
        let keys = ["{a}1", "{a}2", "{b}1", "{a}3"];
        assert_eq!(mget(keys, Split::Whole).len(), 1);
        assert_eq!(mget(keys, Split::Slots).len(), 3, "consecutive runs only");
        // Deletes too, in key order (their replies are per run of keys).
        assert_eq!(del(keys, Split::Slots).len(), 6);
        assert_eq!(del(by_slot(keys, Split::Slots), Split::Slots).len(), 4);
        assert_eq!(del(keys, Split::Whole).len(), 2);
        let v = [1u8];
        let items = keys.map(|k| (k, &v[..], Duration::from_secs(1)));
        assert_eq!(set_many(items, Split::Slots).len(), 4 + 3);
        assert_eq!(set_many(items, Split::Whole).len(), 4 + 1);
        assert!(mget([], Split::Whole).is_empty());
        assert_eq!(sizes(&mget(keys, Split::Slots)), [2, 1, 1]);
    }

    #[test]
    fn lease_keys_share_their_keys_slot() {
        assert_eq!(
            lease_key("k"),
            "rc-lease:{k}",
            "the form single servers have"
        );
        assert_eq!(
            lease_key("a {t} b"),
            "rc-lease:a {t} b",
            "the key's own tag"
        );
        for key in [
            "k",
            "{t}x",
            "x{t}",
            "a}b",
            "a}b{c",
            "{}x",
            "{}}",
            "}",
            "a{b",
            "m f {\"a\":1}",
            "é}",
        ] {
            assert_eq!(slot(&lease_key(key)), slot(key), "{key:?}");
            assert_ne!(lease_key(key), key);
        }
        assert_ne!(lease_key("a}b"), lease_key("a}c"));
        for s in 0..SLOTS {
            assert_eq!(slot(slot_tag(s)), s, "every slot has a tag");
        }
    }

    #[test]
    fn ttl_replies() {
        assert_eq!(ttl(&Value::Int(1500)), Some(Duration::from_millis(1500)));
        assert_eq!(ttl(&Value::Int(-1)), None);
        assert_eq!(ttl(&Value::Int(-2)), None);
    }
}
