//! The async single-server backend: one multiplexed connection, reopened after failures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, Value};

use crate::backend::{AsyncBackend, BoxFuture, ServerLink, SetItem, ValueTtl};
use crate::commands::{self, MgetReplies, Split};
use crate::error::{Error, Result, is_connection_error};
use crate::health::{Health, Probe, Stage};
use crate::host::{HostConfig, Timeouts};
use crate::server::Server;

/// One Redis server reached through a multiplexed async connection.
///
/// All tasks share one connection (the `redis` crate pipelines their
/// commands). It is opened on first use and dropped after a connection error
/// or timeout. Once the server is marked down, calls fail fast and a
/// background task probes it (see [`Health`]); the probe's connection is
/// the one calls use when the server is back.
pub struct AsyncRedisBackend {
    server: Server,
    conn: Arc<Shared>,
    connecting: tokio::sync::Mutex<()>,
}

/// The shared connection and its generation, so a task only drops the one
/// that failed it. Shared with a probe, which installs its connection.
#[derive(Default)]
struct Shared {
    slot: Mutex<Option<(u64, MultiplexedConnection)>>,
    generations: AtomicU64,
}

impl Shared {
    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `conn` the shared connection, under a new generation.
    fn install(&self, conn: MultiplexedConnection) -> (u64, MultiplexedConnection) {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, conn.clone()));
        (generation, conn)
    }

    /// Forgets connection `generation` (unless a newer one replaced it already).
    fn forget(&self, generation: u64) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
            *slot = None;
        }
    }
}

impl std::fmt::Debug for AsyncRedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRedisBackend")
            .field("address", &self.server.address)
            .field("timeouts", &self.server.timeouts)
            .finish_non_exhaustive()
    }
}

impl AsyncRedisBackend {
    /// A backend for `host`. Does not touch the network. The host's own
    /// `socket_timeout`/`socket_connect_timeout` replace `timeouts`.
    pub fn new(host: &HostConfig, timeouts: Timeouts) -> Result<Self> {
        Ok(AsyncRedisBackend {
            server: Server::new(host, timeouts)?,
            conn: Arc::default(),
            connecting: tokio::sync::Mutex::new(()),
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

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        self.conn.current()
    }

    /// The shared connection (and its generation), opened if there is none.
    /// While the server is down this fails at once (and may start a probe).
    async fn connection(&self) -> Result<(u64, MultiplexedConnection)> {
        self.server
            .health
            .admit(&self.server.address, |p| self.start_probe(p))?;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        // One task connects; the others wait for it instead of stampeding the server.
        let _guard = self.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        // The task before us may have found the server down: then fail fast
        // rather than each waiter paying its own connect timeout.
        self.server.health.check(&self.server.address)?;
        let conn = match open(
            &self.server.client,
            &self.server.address,
            self.server.timeouts,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                self.server.health.record(&e, Stage::Connect);
                return Err(e);
            }
        };
        Ok(self.conn.install(conn))
    }

    /// Probes the server, which is down, off the callers' path: a task on
    /// the current tokio runtime that opens a connection (installed as the
    /// shared one when it answers), or a thread when there is no runtime.
    fn start_probe(&self, probe: Probe) {
        let (client, address, timeouts) = (
            self.server.client.clone(),
            self.server.address.clone(),
            self.server.timeouts,
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let shared = Arc::clone(&self.conn);
                // If the runtime shuts down first, the dropped probe counts as failed.
                runtime.spawn(async move {
                    match open(&client, &address, timeouts).await {
                        Ok(conn) => {
                            shared.install(conn);
                            probe.finish(Ok(()));
                        }
                        Err(e) => probe.finish(Err(e)),
                    }
                });
            }
            Err(_) => crate::pool::spawn_probe(client, address, timeouts, probe),
        }
    }

    /// Forgets connection `generation` (unless a newer one replaced it already).
    fn drop_connection(&self, generation: u64) {
        self.conn.forget(generation);
    }

    /// Runs `op` on the shared connection. A connection the server closed
    /// (idle timeout, `CLIENT KILL`, a runtime that went away) is replaced and
    /// the command sent once more; the host is marked down only when it cannot
    /// be reached or does not answer in time.
    async fn run(&self, request: Request<'_>) -> Result<Vec<Value>> {
        let mut retried = false;
        loop {
            let (generation, mut conn) = self.connection().await?;
            let outcome = match self.replay(&mut conn).await {
                Err(e) => Err(e),
                Ok(()) => match request {
                    Request::Cmd(cmd) => conn.send_packed_command(cmd).await.map(|v| vec![v]),
                    Request::Pipeline(pipe, count) => {
                        conn.send_packed_commands(pipe, 0, count).await
                    }
                },
            };
            match outcome {
                Ok(v) => {
                    self.server.health.succeeded();
                    return Ok(v);
                }
                Err(e) if is_connection_error(&e) => {
                    // Never reuse a connection that broke or timed out.
                    self.drop_connection(generation);
                    if !retried && !e.is_timeout() {
                        retried = true;
                        continue;
                    }
                    let err = Error::redis(&self.server.address, e, self.server.timeouts.response);
                    self.server.health.record(&err, Stage::Command);
                    return Err(err);
                }
                Err(e) => {
                    return Err(Error::redis(
                        &self.server.address,
                        e,
                        self.server.timeouts.response,
                    ));
                }
            }
        }
    }

    /// Deletes the keys whose write or delete missed this server, ahead of
    /// the command about to go to it on the same connection (see [`Unreplayed`]).
    async fn replay(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        if !self.server.unreplayed.pending() {
            return Ok(());
        }
        let (keys, del) = self.server.missed_deletes();
        if let Some(del) = del {
            conn.send_packed_commands(&del, 0, del.len()).await?;
        }
        self.server.replayed(&keys);
        Ok(())
    }

    /// Remembers the keys of a write that did not reach the server.
    fn note<'k, T>(&self, r: &Result<T>, keys: impl IntoIterator<Item = &'k str>) {
        if matches!(r, Err(e) if e.is_unavailable()) {
            self.server.unreplayed.remember(keys);
        }
    }

    /// Runs one command.
    async fn query(&self, cmd: &Cmd) -> Result<Value> {
        // After `ASKING` on a node reached through an `ASK` redirection.
        let asked;
        let request = match self.server.split {
            Split::Asking => {
                asked = commands::asked(cmd);
                Request::Pipeline(&asked, 2)
            }
            _ => Request::Cmd(cmd),
        };
        let v = self.run(request).await?.pop().unwrap_or(Value::Nil);
        commands::reply(v).map_err(|e| self.server.redis_err(e))
    }

    /// Runs a pipeline and returns its replies in order, error replies
    /// among them (each command's reader tells what they fail), with the
    /// arguments of each command (see [`commands::sizes`]). A connection
    /// the server closed after an error reply fails its next command and
    /// is replaced then.
    async fn query_pipeline(&self, pipe: &Pipeline) -> (Result<Vec<Value>>, Vec<usize>) {
        let sizes = commands::sizes(pipe);
        let asked;
        let pipe = match self.server.split {
            Split::Asking => {
                asked = commands::asking(pipe);
                &asked
            }
            _ => pipe,
        };
        let values = self.run(Request::Pipeline(pipe, pipe.len())).await;
        let values = match self.server.split {
            Split::Asking => values.map(commands::unasked),
            _ => values,
        };
        (values, sizes)
    }

    /// An error reply, naming this server.
    fn redis_err(&self, e: redis::RedisError) -> Error {
        self.server.redis_err(e)
    }

    /// `MGET` of `keys`; the outcome is per key, in order.
    pub async fn get_many_of<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str>,
    ) -> MgetReplies {
        let n = keys.len();
        if n == 0 {
            return MgetReplies::misses(0);
        }
        let (reply, sizes) = self
            .query_pipeline(&commands::mget(keys, self.server.split))
            .await;
        if self.server.distrusted() {
            return MgetReplies::misses(n);
        }
        MgetReplies::new(reply, &sizes, |e| self.redis_err(e))
    }

    /// `MGET` of `keys` and the `PTTL` of each (see
    /// [`Backend::get_many_with_ttl`](crate::Backend::get_many_with_ttl)).
    pub async fn get_many_with_ttl_of<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str> + Clone,
    ) -> Vec<Result<ValueTtl>> {
        let n = keys.len();
        if n == 0 {
            return Vec::new();
        }
        let (reply, sizes) = self
            .query_pipeline(&commands::mget_pttl(keys, self.server.split))
            .await;
        if self.server.distrusted() {
            return vec![Ok(None); n];
        }
        commands::mget_pttl_reply(reply, n, &sizes, |e| self.redis_err(e))
    }

    /// How the near cache reaches this server.
    pub fn link(&self) -> ServerLink {
        self.server.link()
    }

    /// One pipelined `SET .. EX` per item (voiding their leases); true when
    /// all were stored.
    pub async fn set_many_of<'i>(
        &self,
        items: impl ExactSizeIterator<Item = (&'i str, &'i [u8], Duration)> + Clone,
    ) -> Result<bool> {
        self.set_many_each(items).await.fold(true, |a, s| a & s)
    }

    /// [`set_many_of`](Self::set_many_of), per key.
    pub(crate) async fn set_many_each<'i>(
        &self,
        items: impl ExactSizeIterator<Item = (&'i str, &'i [u8], Duration)> + Clone,
    ) -> commands::Writes<bool> {
        let n = items.len();
        if n == 0 {
            return commands::Writes::default();
        }
        for (_, _, e) in items.clone() {
            self.server.unreplayed.wrote(e);
        }
        let pipe = commands::set_many(items.clone(), self.server.split);
        let (r, sizes) = self.query_pipeline(&pipe).await;
        self.note(&r, items.map(|(k, _, _)| k));
        commands::set_reply(r, n, &sizes, |e| self.redis_err(e))
    }

    /// `DEL` of `keys` (voiding their leases); returns how many existed.
    pub async fn delete_many_of<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str> + Clone,
    ) -> Result<u64> {
        self.delete_many_each(keys).await.fold(0, |a, n| a + n)
    }

    /// [`delete_many_of`](Self::delete_many_of), per key.
    pub(crate) async fn delete_many_each<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str> + Clone,
    ) -> commands::Writes<u64> {
        if keys.len() == 0 {
            return commands::Writes::default();
        }
        let pipe = commands::del(keys.clone(), self.server.split);
        let (r, sizes) = self.query_pipeline(&pipe).await;
        self.note(&r, keys);
        commands::del_reply(r, &sizes, |e| self.redis_err(e))
    }

    /// `DEL` of the leases on `keys` (see [`commands::void_leases`]).
    pub(crate) async fn void_leases_of<'k>(
        &self,
        keys: impl Iterator<Item = &'k str>,
    ) -> Vec<Result<()>> {
        let pipe = commands::void_leases(keys, self.server.split);
        let (r, sizes) = self.query_pipeline(&pipe).await;
        commands::void_reply(r, &sizes, |e| self.redis_err(e))
    }

    /// Takes a lease on each of `keys` (see [`Backend::lease_many`](crate::Backend::lease_many)).
    pub async fn lease_many_of<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str>,
        token: &str,
        ttl: Duration,
    ) -> Vec<Result<bool>> {
        let n = keys.len();
        if n == 0 {
            return Vec::new();
        }
        let pipe = commands::lease_many(keys, token, ttl);
        let (r, _) = self.query_pipeline(&pipe).await;
        commands::per_key(r, n, |e| self.redis_err(e), commands::granted)
    }

    /// Gives back leases (see [`Backend::release_leases`](crate::Backend::release_leases)).
    pub async fn release_leases_of<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str>,
        token: &str,
    ) -> Result<()> {
        self.release_leases_each(keys, token)
            .await
            .into_iter()
            .collect()
    }

    /// [`release_leases_of`](Self::release_leases_of), per key.
    pub(crate) async fn release_leases_each<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str>,
        token: &str,
    ) -> Vec<Result<()>> {
        let n = keys.len();
        if n == 0 {
            return Vec::new();
        }
        let (r, _) = self
            .query_pipeline(&commands::release_many(keys, token))
            .await;
        commands::per_key(r, n, |e| self.redis_err(e), |_| ())
    }

    /// Leased stores (see [`Backend::set_many_leased`](crate::Backend::set_many_leased)).
    pub async fn set_many_leased_of<'i>(
        &self,
        items: impl ExactSizeIterator<Item = &'i SetItem>,
        token: &str,
    ) -> Result<bool> {
        let each = self.set_many_leased_each(items, token).await;
        each.into_iter().try_fold(true, |all, s| Ok(all & s?))
    }

    /// [`set_many_leased_of`](Self::set_many_leased_of), per key.
    pub(crate) async fn set_many_leased_each<'i>(
        &self,
        items: impl ExactSizeIterator<Item = &'i SetItem>,
        token: &str,
    ) -> Vec<Result<bool>> {
        let n = items.len();
        if n == 0 {
            return Vec::new();
        }
        let (r, _) = self
            .query_pipeline(&commands::set_many_leased(items, token))
            .await;
        commands::per_key(r, n, |e| self.redis_err(e), commands::stored)
    }
}

/// Connects and checks the server answers: without a password or db to
/// select there is no handshake, and a refusal such as `maxclients` would
/// otherwise surface later as a bare broken pipe.
async fn open(
    client: &redis::Client,
    address: &str,
    timeouts: Timeouts,
) -> Result<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response));
    // The handshake is bounded too: the client's own timeout covers only the socket connect.
    let limit = timeouts.connect + timeouts.response;
    let connect = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        conn.send_packed_command(&redis::cmd("PING"))
            .await?
            .extract_error()?;
        Ok::<_, redis::RedisError>(conn)
    };
    match tokio::time::timeout(limit, connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(Error::redis(address, e, timeouts.connect)),
        Err(_) => Err(Error::Timeout {
            host: address.to_owned(),
            timeout: limit,
        }),
    }
}

/// What [`AsyncRedisBackend::run`] sends.
#[derive(Clone, Copy)]
enum Request<'a> {
    Cmd(&'a Cmd),
    Pipeline(&'a Pipeline, usize),
}

impl AsyncBackend for AsyncRedisBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let v = self.query(&commands::get(key)).await?;
            if self.server.distrusted() {
                return Ok(None);
            }
            commands::bulk(v).map_err(|e| self.server.redis_err(e))
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Vec<Result<Option<Vec<u8>>>>> {
        Box::pin(async move { self.get_many_of(keys.iter().copied()).await.collect() })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.set_many_of([(key, value, expire)].into_iter()))
    }

    fn set_many<'a>(&'a self, items: &'a [SetItem]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.set_many_of(items.iter().map(commands::item)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { Ok(self.delete_many_of([key].into_iter()).await? > 0) })
    }

    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.delete_many_of(keys.iter().copied()))
    }

    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move { Ok(commands::ttl(&self.query(&commands::pttl(key)).await?)) })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.query(&commands::ping()).await.map(drop) })
    }

    fn client(&self, _key: &str) -> Result<redis::Client> {
        Ok(self.server.client.clone())
    }

    fn get_many_with_ttl<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Vec<Result<ValueTtl>>> {
        Box::pin(self.get_many_with_ttl_of(keys.iter().copied()))
    }

    fn servers(&self) -> Vec<ServerLink> {
        vec![self.link()]
    }

    fn lease_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Vec<Result<bool>>> {
        Box::pin(self.lease_many_of(keys.iter().copied(), token, ttl))
    }

    fn set_many_leased<'a>(
        &'a self,
        items: &'a [SetItem],
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.set_many_leased_of(items.iter(), token))
    }

    fn release_leases<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.release_leases_of(keys.iter().copied(), token))
    }
}
