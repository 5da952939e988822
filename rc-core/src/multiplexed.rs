//! The async single-server backend: one multiplexed connection, reopened after failures.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, Value};

use crate::backend::{AsyncBackend, BoxFuture, SetItem};
use crate::error::{Error, Result, is_connection_error};
use crate::health::Health;
use crate::host::{HostConfig, Timeouts};
use crate::protocol;

/// One Redis server reached through a multiplexed async connection.
///
/// All tasks share one connection (the `redis` crate pipelines their
/// commands). It is opened on first use and dropped after a connection error
/// or timeout; the next call after the host's backoff opens a new one.
pub struct AsyncRedisBackend {
    client: redis::Client,
    address: String,
    timeouts: Timeouts,
    conn: Mutex<Option<MultiplexedConnection>>,
    connecting: tokio::sync::Mutex<()>,
    health: Health,
}

impl std::fmt::Debug for AsyncRedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRedisBackend")
            .field("address", &self.address)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl AsyncRedisBackend {
    /// A backend for `host`. Does not touch the network.
    pub fn new(host: &HostConfig, timeouts: Timeouts) -> Result<Self> {
        timeouts.validate()?;
        let info = host.connection_info()?;
        let address = host.address();
        let client =
            redis::Client::open(info).map_err(|e| Error::config(format!("host {address}: {e}")))?;
        Ok(AsyncRedisBackend {
            client,
            address,
            timeouts,
            conn: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            health: Health::default(),
        })
    }

    /// The server's address as named in errors.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The server's up/down bookkeeping.
    pub fn health(&self) -> &Health {
        &self.health
    }

    fn current(&self) -> Option<MultiplexedConnection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn connection(&self) -> Result<MultiplexedConnection> {
        self.health.check(&self.address)?;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        // One task connects; the others wait for it instead of stampeding the server.
        let _guard = self.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        // No second health check here: the first one just admitted this call as
        // the probe, and checking again would see its own backoff and refuse.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.response));
        let connect = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        // The handshake is bounded too: the client's own timeout covers only the socket connect.
        let limit = self.timeouts.connect + self.timeouts.response;
        let conn = match tokio::time::timeout(limit, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(self.failed(Error::redis(&self.address, e, self.timeouts.connect)));
            }
            Err(_) => {
                let e = Error::Timeout {
                    host: self.address.clone(),
                    timeout: limit,
                };
                return Err(self.failed(e));
            }
        };
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    fn failed(&self, e: Error) -> Error {
        if e.is_unavailable() {
            self.health.failed(&e);
        }
        e
    }

    fn on_error(&self, e: redis::RedisError) -> Error {
        if is_connection_error(&e) {
            // Never reuse a connection that broke or timed out.
            *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        self.failed(Error::redis(&self.address, e, self.timeouts.response))
    }

    /// Runs one command.
    pub async fn query(&self, cmd: &Cmd) -> Result<Value> {
        let mut conn = self.connection().await?;
        match conn.send_packed_command(cmd).await {
            Ok(v) => {
                self.health.succeeded();
                v.extract_error().map_err(|e| self.on_error(e))
            }
            Err(e) => Err(self.on_error(e)),
        }
    }

    /// Runs a pipeline and returns its replies in order.
    pub async fn query_pipeline(&self, pipe: &Pipeline, count: usize) -> Result<Vec<Value>> {
        let mut conn = self.connection().await?;
        match conn.send_packed_commands(pipe, 0, count).await {
            Ok(values) => {
                self.health.succeeded();
                values
                    .into_iter()
                    .map(|v| v.extract_error().map_err(|e| self.on_error(e)))
                    .collect()
            }
            Err(e) => Err(self.on_error(e)),
        }
    }

    /// `MGET` of `keys`, per-key outcome.
    pub async fn mget(&self, keys: &[String]) -> Vec<Result<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            cmd.arg(k.as_str());
        }
        let reply = self.query(&cmd).await.map(|v| vec![v]);
        protocol::mget_reply(reply, keys.len(), |e| {
            Error::redis(&self.address, e, self.timeouts.response)
        })
    }
}

impl AsyncBackend for AsyncRedisBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let v = self.query(redis::cmd("GET").arg(key)).await?;
            protocol::bulk(v).map_err(|e| Error::redis(&self.address, e, self.timeouts.response))
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Vec<Result<Option<Vec<u8>>>>> {
        Box::pin(self.mget(keys))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let v = self.query(&protocol::set_cmd(key, value, expire)).await?;
            Ok(protocol::all_ok(&[v]))
        })
    }

    fn set_many<'a>(&'a self, items: &'a [SetItem]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            if items.is_empty() {
                return Ok(true);
            }
            let mut pipe = redis::pipe();
            for (k, v, e) in items {
                pipe.add_command(protocol::set_cmd(k, v, *e));
            }
            let v = self.query_pipeline(&pipe, items.len()).await?;
            Ok(protocol::all_ok(&v))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let v = self.query(redis::cmd("DEL").arg(key)).await?;
            Ok(protocol::count(&[v]) > 0)
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(0);
            }
            let mut cmd = redis::cmd("DEL");
            for k in keys {
                cmd.arg(k.as_str());
            }
            let v = self.query(&cmd).await?;
            Ok(protocol::count(&[v]))
        })
    }
}
