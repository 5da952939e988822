//! The blocking single-server backend: a small pool of blocking [`Connection`]s.

use std::sync::Mutex;
use std::time::Duration;

use redis::Value;

use crate::backend::{Backend, ServerLink, SetItem, ValueTtl};
use crate::commands::{self, MgetReplies, Split};
use crate::connection::Connection;
use crate::error::{Error, Result, is_connection_error};
use crate::health::{Health, Probe, Stage};
use crate::host::{HostConfig, Timeouts};
use crate::server::Server;

/// Idle connections kept per server when none is configured.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// One Redis server reached through pooled blocking connections.
///
/// Building it does not touch the network; connections are opened on demand
/// (bounded by the connect timeout), reused while healthy and dropped after
/// any connection error or timeout, so a late reply can never be read as the
/// answer to another command. Once the server is marked down, calls fail
/// fast and a background thread probes it (see [`Health`]).
pub struct RedisBackend {
    server: Server,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("address", &self.server.address)
            .field("timeouts", &self.server.timeouts)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

/// A command written to a server whose replies are not read yet.
///
/// Writing to many servers first and reading afterwards is how the cluster
/// talks to all of them at once without a thread per server: it starts
/// [`RedisBackend::start_get_many`] (and friends) on every server, then
/// calls [`wait`](Pending::wait) on each.
pub struct Pending<'a, T> {
    flight: InFlight<'a>,
    n: usize,
    /// The arguments of each command (see [`commands::sizes`]).
    sizes: Vec<usize>,
    /// The keys a write touched, remembered if it does not reach the server.
    keys: Vec<&'a str>,
    read: Read<T>,
}

/// Reads a pipeline's replies (each may be an error reply) for `n` keys
/// and the sizes of its commands.
pub(crate) type Read<T> = fn(&RedisBackend, Result<Vec<Value>>, usize, &[usize]) -> T;

impl<'a, T> Pending<'a, T> {
    /// The same command, its replies read by `read` instead.
    pub(crate) fn reading<U>(self, read: Read<U>) -> Pending<'a, U> {
        Pending {
            flight: self.flight,
            n: self.n,
            sizes: self.sizes,
            keys: self.keys,
            read,
        }
    }

    /// Reads the replies and returns the outcome.
    pub fn wait(self) -> T {
        let b = self.flight.backend;
        let replies = self.flight.recv();
        let replies = match b.server.split {
            Split::Asking => replies.map(commands::unasked),
            _ => replies,
        };
        if matches!(&replies, Err(e) if e.is_unavailable()) {
            b.server.unreplayed.remember(self.keys.iter().copied());
        }
        (self.read)(b, replies, self.n, &self.sizes)
    }
}

struct InFlight<'a> {
    backend: &'a RedisBackend,
    packed: Vec<u8>,
    replies: usize,
    conn: Option<Connection>,
    reused: bool,
    connect_failed: bool,
    error: Option<Error>,
}

impl RedisBackend {
    /// A backend for `host`; `pool_size` idle connections are kept at most.
    /// The host's own `socket_timeout`/`socket_connect_timeout` replace `timeouts`.
    pub fn new(host: &HostConfig, timeouts: Timeouts, pool_size: usize) -> Result<Self> {
        Ok(RedisBackend {
            server: Server::new(host, timeouts)?,
            idle: Mutex::new(Vec::new()),
            max_idle: pool_size.max(1),
        })
    }

    /// Cuts multi-key commands per hash slot: a Redis Cluster node (see [`Split`]).
    pub(crate) fn with_split(mut self, split: Split) -> Self {
        self.server = self.server.with_split(split);
        self
    }

    /// The server's address as named in errors.
    pub fn address(&self) -> &str {
        &self.server.address
    }

    /// The server's up/down bookkeeping.
    pub fn health(&self) -> &Health {
        &self.server.health
    }

    /// An error reply, naming this server.
    pub(crate) fn redis_err(&self, e: redis::RedisError) -> Error {
        self.server.redis_err(e)
    }

    /// Writes `packed` (one command or a pipeline expecting `replies` replies)
    /// and returns without waiting for the answer.
    fn send(&self, packed: Vec<u8>, replies: usize) -> InFlight<'_> {
        let mut flight = InFlight::new(self, packed, replies);
        if let Err(e) = self
            .server
            .health
            .admit(&self.server.address, |p| self.start_probe(p))
        {
            flight.error = Some(e);
            return flight;
        }
        if self.server.unreplayed.pending()
            && let Err(e) = self.replay()
        {
            flight.error = Some(e);
            return flight;
        }
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        flight.reused = pooled.is_some();
        flight.write(pooled);
        flight
    }

    /// Deletes the keys whose write or delete missed this server, before
    /// the command that is about to go to it (see [`Unreplayed`]).
    fn replay(&self) -> Result<()> {
        let (keys, del) = self.server.missed_deletes();
        if let Some(del) = del {
            let mut flight = InFlight::new(self, del.get_packed_pipeline(), del.len());
            flight.write(self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop());
            flight
                .recv()?
                .into_iter()
                .try_for_each(|v| commands::reply(v).map(drop))
                .map_err(|e| self.server.redis_err(e))?;
        }
        self.server.replayed(&keys);
        Ok(())
    }

    /// Sends `pipe` (each command after `ASKING` on a node reached through
    /// an `ASK` redirection); `read` gets its replies.
    fn start<'a, T>(
        &'a self,
        pipe: redis::Pipeline,
        n: usize,
        keys: Vec<&'a str>,
        read: Read<T>,
    ) -> Pending<'a, T> {
        let sizes = commands::sizes(&pipe);
        let pipe = match self.server.split {
            Split::Asking => commands::asking(&pipe),
            _ => pipe,
        };
        Pending {
            flight: self.send(pipe.get_packed_pipeline(), pipe.len()),
            n,
            sizes,
            keys,
            read,
        }
    }

    /// Runs one command (after `ASKING` on a node reached through an `ASK`
    /// redirection) and returns its reply.
    fn query(&self, cmd: &redis::Cmd) -> Result<Value> {
        let (packed, replies) = match self.server.split {
            Split::Asking => (commands::asked(cmd).get_packed_pipeline(), 2),
            _ => (cmd.get_packed_command(), 1),
        };
        let mut v = self.send(packed, replies).recv()?;
        commands::reply(v.pop().unwrap_or(Value::Nil)).map_err(|e| self.server.redis_err(e))
    }

    /// Sends `MGET` of `keys`; the outcome is per key, in order.
    pub fn start_get_many<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str>,
    ) -> Pending<'_, MgetReplies> {
        let n = keys.len();
        let read = |b: &RedisBackend, reply: Result<Vec<Value>>, n, sizes: &[usize]| {
            if b.server.distrusted() {
                return MgetReplies::misses(n);
            }
            MgetReplies::new(reply, sizes, |e| b.server.redis_err(e))
        };
        self.start(commands::mget(keys, self.server.split), n, Vec::new(), read)
    }

    /// Sends `MGET` of `keys` and the `PTTL` of each (see
    /// [`Backend::get_many_with_ttl`]).
    pub fn start_get_many_with_ttl<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str> + Clone,
    ) -> Pending<'_, Vec<Result<ValueTtl>>> {
        let n = keys.len();
        let read = |b: &RedisBackend, reply: Result<Vec<Value>>, n, sizes: &[usize]| {
            if b.server.distrusted() {
                return vec![Ok(None); n];
            }
            commands::mget_pttl_reply(reply, n, sizes, |e| b.server.redis_err(e))
        };
        self.start(
            commands::mget_pttl(keys, self.server.split),
            n,
            Vec::new(),
            read,
        )
    }

    /// How the near cache reaches this server.
    pub fn link(&self) -> ServerLink {
        self.server.link()
    }

    /// Sends one pipelined `SET .. EX` per item (voiding their leases);
    /// true when all were stored.
    pub fn start_set_many<'a>(
        &'a self,
        items: impl ExactSizeIterator<Item = (&'a str, &'a [u8], Duration)> + Clone,
    ) -> Pending<'a, Result<bool>> {
        let n = items.len();
        for (_, _, e) in items.clone() {
            self.server.unreplayed.wrote(e);
        }
        let keys = items.clone().map(|(k, _, _)| k).collect();
        let read = |b: &RedisBackend, reply, n, sizes: &[usize]| {
            commands::set_reply(reply, n, sizes, |e| b.redis_err(e)).fold(true, |a, s| a & s)
        };
        let pipe = commands::set_many(items, self.server.split);
        self.start(pipe, n, keys, read)
    }

    /// Sends `DEL` of `keys` (voiding their leases); returns how many existed.
    pub fn start_delete_many<'a>(
        &'a self,
        keys: impl Iterator<Item = &'a str> + Clone,
    ) -> Pending<'a, Result<u64>> {
        let read = |b: &RedisBackend, reply, _, sizes: &[usize]| {
            commands::del_reply(reply, sizes, |e| b.redis_err(e)).fold(0, |a, n| a + n)
        };
        let pipe = commands::del(keys.clone(), self.server.split);
        self.start(pipe, 1, keys.collect(), read)
    }

    /// Sends a `DEL` of the leases on `keys` (see [`commands::void_leases`]).
    pub(crate) fn start_void_leases<'a>(
        &'a self,
        keys: impl Iterator<Item = &'a str>,
    ) -> Pending<'a, Vec<Result<()>>> {
        let read = |b: &RedisBackend, reply, _, sizes: &[usize]| {
            commands::void_reply(reply, sizes, |e| b.redis_err(e))
        };
        let pipe = commands::void_leases(keys, self.server.split);
        self.start(pipe, 0, Vec::new(), read)
    }

    /// Takes a lease on each of `keys` (see [`Backend::lease_many`]).
    pub fn start_lease_many<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str>,
        token: &str,
        ttl: Duration,
    ) -> Pending<'_, Vec<Result<bool>>> {
        let n = keys.len();
        let read = |b: &RedisBackend, reply, n, _: &[usize]| {
            commands::per_key(reply, n, |e| b.redis_err(e), commands::granted)
        };
        self.start(commands::lease_many(keys, token, ttl), n, Vec::new(), read)
    }

    /// Gives back the leases `token` holds on `keys` (see [`Backend::release_leases`]).
    pub fn start_release_leases<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str>,
        token: &str,
    ) -> Pending<'_, Result<()>> {
        let n = keys.len();
        let read = |b: &RedisBackend, reply, n, _: &[usize]| {
            commands::per_key(reply, n, |e| b.redis_err(e), |_| ())
                .into_iter()
                .collect()
        };
        self.start(commands::release_many(keys, token), n, Vec::new(), read)
    }

    /// Stores each item if the lease `token` on its key still holds (see
    /// [`Backend::set_many_leased`]); true when all were stored.
    pub fn start_set_many_leased<'i>(
        &self,
        items: impl ExactSizeIterator<Item = &'i SetItem>,
        token: &str,
    ) -> Pending<'_, Result<bool>> {
        let n = items.len();
        let read = |b: &RedisBackend, reply, n, _: &[usize]| {
            let each = commands::per_key(reply, n, |e| b.redis_err(e), commands::stored);
            each.into_iter().try_fold(true, |all, s| Ok(all & s?))
        };
        self.start(commands::set_many_leased(items, token), n, Vec::new(), read)
    }

    fn connect(&self) -> Result<Connection> {
        Connection::open(
            &self.server.client,
            &self.server.address,
            self.server.timeouts,
        )
    }

    /// Probes the server, which is down, on a thread of its own: callers
    /// keep failing fast meanwhile (see [`Health`]).
    fn start_probe(&self, probe: Probe) {
        spawn_probe(
            self.server.client.clone(),
            self.server.address.clone(),
            self.server.timeouts,
            probe,
        );
    }

    fn release(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}

/// Connects to the server and sends `PING` on a new thread, then reports
/// the outcome to `probe`. The thread ends within the connect plus the
/// response timeout, whether or not its backend is still there. Without a
/// thread (the OS refused one) `probe` is dropped, which counts as failed.
pub(crate) fn spawn_probe(
    client: redis::Client,
    address: String,
    timeouts: Timeouts,
    probe: Probe,
) {
    let run = move || {
        let outcome = Connection::open(&client, &address, timeouts).and_then(|mut conn| {
            conn.query(&commands::ping())
                .and_then(Value::extract_error)
                .map(drop)
                .map_err(|e| Error::redis(&address, e, timeouts.response))
        });
        probe.finish(outcome);
    };
    let _ = std::thread::Builder::new()
        .name("rc-probe".to_owned())
        .spawn(run);
}

impl<'a> InFlight<'a> {
    fn new(backend: &'a RedisBackend, packed: Vec<u8>, replies: usize) -> Self {
        InFlight {
            backend,
            packed,
            replies,
            conn: None,
            reused: false,
            connect_failed: false,
            error: None,
        }
    }

    /// Writes the command on `conn`, or on a fresh connection when `None`.
    fn write(&mut self, conn: Option<Connection>) {
        let b = self.backend;
        let mut conn = match conn {
            Some(c) => c,
            None => match b.connect() {
                Ok(c) => c,
                Err(e) => {
                    self.connect_failed = true;
                    return self.fail(e);
                }
            },
        };
        match conn.send_packed_command(&self.packed) {
            Ok(()) => self.conn = Some(conn),
            Err(e) if self.reused && is_connection_error(&e) => {
                // A pooled connection the server closed while idle: one fresh try.
                self.reused = false;
                self.write(None)
            }
            Err(e) => self.fail(b.server.redis_err(e)),
        }
    }

    /// Records why the command could not be sent.
    fn fail(&mut self, e: Error) {
        let stage = if self.connect_failed {
            Stage::Connect
        } else {
            Stage::Command
        };
        self.backend.server.health.record(&e, stage);
        self.error = Some(e);
    }

    /// Reads the replies, in order, error replies among them (each
    /// command's reader tells what they fail). A reply that cannot be read
    /// fails them all once all are read, so the connection stays in step.
    fn recv(mut self) -> Result<Vec<Value>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let b = self.backend;
        let mut conn = self
            .conn
            .take()
            .expect("an InFlight without error holds a connection");
        let mut values = Vec::with_capacity(self.replies);
        let mut unreadable = None;
        for _ in 0..self.replies {
            match conn.recv_response() {
                Ok(v) => values.push(v),
                Err(e) if is_connection_error(&e) => {
                    drop(conn);
                    if let Some(Value::ServerError(cause)) =
                        values.iter().find(|v| matches!(v, Value::ServerError(_)))
                    {
                        // The server answered an error, then closed (maxclients
                        // does): the answer is the cause.
                        return Err(b.server.redis_err(cause.clone().into()));
                    }
                    if self.reused && values.is_empty() && !e.is_timeout() {
                        // Stale pooled connection: the command is idempotent, send it again.
                        self.reused = false;
                        self.write(None);
                        return self.recv();
                    }
                    let e = b.server.redis_err(e);
                    b.server.health.record(&e, Stage::Command);
                    return Err(e);
                }
                Err(e) => {
                    unreadable.get_or_insert(e);
                    values.push(Value::Nil);
                }
            }
        }
        b.server.health.succeeded();
        // A connection the server closed after an error reply (a protocol
        // error does that) fails its next write or read, and a pooled
        // connection that fails so is replaced and the command sent again.
        b.release(conn);
        match unreadable {
            Some(e) => Err(b.server.redis_err(e)),
            None => Ok(values),
        }
    }
}

impl Backend for RedisBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let v = self.query(&commands::get(key))?;
        if self.server.distrusted() {
            return Ok(None);
        }
        commands::bulk(v).map_err(|e| self.server.redis_err(e))
    }

    fn get_many(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Vec::new();
        }
        self.start_get_many(keys.iter().copied()).wait().collect()
    }

    fn get_many_each(&self, keys: &[&str], each: &mut dyn FnMut(usize, Result<Option<Vec<u8>>>)) {
        if keys.is_empty() {
            return;
        }
        self.start_get_many(keys.iter().copied())
            .wait()
            .hand_out(0..keys.len(), |e| e, each);
    }

    fn set(&self, key: &str, value: &[u8], expire: Duration) -> Result<bool> {
        self.start_set_many([(key, value, expire)].into_iter())
            .wait()
    }

    fn set_many(&self, items: &[SetItem]) -> Result<bool> {
        if items.is_empty() {
            return Ok(true);
        }
        self.start_set_many(items.iter().map(commands::item)).wait()
    }

    fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.start_delete_many([key].into_iter()).wait()? > 0)
    }

    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.start_delete_many(keys.iter().copied()).wait()
    }

    fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        Ok(commands::ttl(&self.query(&commands::pttl(key))?))
    }

    fn ping(&self) -> Result<()> {
        self.query(&commands::ping()).map(drop)
    }

    fn client(&self, _key: &str) -> Result<redis::Client> {
        Ok(self.server.client.clone())
    }

    fn get_many_with_ttl(&self, keys: &[&str]) -> Vec<Result<ValueTtl>> {
        if keys.is_empty() {
            return Vec::new();
        }
        self.start_get_many_with_ttl(keys.iter().copied()).wait()
    }

    fn servers(&self) -> Vec<ServerLink> {
        vec![self.link()]
    }

    fn lease_many(&self, keys: &[&str], token: &str, ttl: Duration) -> Vec<Result<bool>> {
        if keys.is_empty() {
            return Vec::new();
        }
        self.start_lease_many(keys.iter().copied(), token, ttl)
            .wait()
    }

    fn set_many_leased(&self, items: &[SetItem], token: &str) -> Result<bool> {
        if items.is_empty() {
            return Ok(true);
        }
        self.start_set_many_leased(items.iter(), token).wait()
    }

    fn release_leases(&self, keys: &[&str], token: &str) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.start_release_leases(keys.iter().copied(), token)
            .wait()
    }
}
