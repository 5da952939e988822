//! The blocking single-server backend: a small pool of `redis` connections.

use std::sync::Mutex;
use std::time::Duration;

use redis::{Connection, Value};

use crate::backend::{Backend, SetItem};
use crate::error::{Error, Result, is_connection_error};
use crate::health::Health;
use crate::host::{HostConfig, Timeouts};
use crate::protocol;

/// Idle connections kept per server when none is configured.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// One Redis server reached through pooled blocking connections.
///
/// Building it does not touch the network; connections are opened on demand
/// (bounded by the connect timeout), reused while healthy and dropped after
/// any connection error or timeout, so a late reply can never be read as the
/// answer to another command.
pub struct RedisBackend {
    client: redis::Client,
    address: String,
    timeouts: Timeouts,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    health: Health,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("address", &self.address)
            .field("timeouts", &self.timeouts)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

/// A command written to a server whose replies are not read yet.
///
/// Writing to many servers first and reading afterwards is how the cluster
/// talks to all of them at once without a thread per server.
pub struct InFlight<'a> {
    backend: &'a RedisBackend,
    packed: &'a [u8],
    replies: usize,
    conn: Option<Connection>,
    reused: bool,
    connect_failed: bool,
    error: Option<Error>,
}

impl RedisBackend {
    /// A backend for `host`; `pool_size` idle connections are kept at most.
    pub fn new(host: &HostConfig, timeouts: Timeouts, pool_size: usize) -> Result<Self> {
        timeouts.validate()?;
        let client = host.client()?;
        let address = host.address();
        Ok(RedisBackend {
            client,
            address,
            timeouts,
            idle: Mutex::new(Vec::new()),
            max_idle: pool_size.max(1),
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

    /// Writes `packed` (one command or a pipeline expecting `replies` replies)
    /// and returns without waiting for the answer.
    pub fn send<'a>(&'a self, packed: &'a [u8], replies: usize) -> InFlight<'a> {
        let mut flight = InFlight {
            backend: self,
            packed,
            replies,
            conn: None,
            reused: false,
            connect_failed: false,
            error: None,
        };
        if let Err(e) = self.health.check(&self.address) {
            flight.error = Some(e);
            return flight;
        }
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        flight.reused = pooled.is_some();
        flight.write(pooled);
        flight
    }

    /// Runs `packed` and waits for its `replies` replies.
    pub fn query(&self, packed: &[u8], replies: usize) -> Result<Vec<Value>> {
        self.send(packed, replies).recv()
    }

    fn connect(&self) -> Result<Connection> {
        let err = |e| Error::redis(&self.address, e, self.timeouts.connect);
        let conn = self
            .client
            .get_connection_with_timeout(self.timeouts.connect)
            .map_err(err)?;
        conn.set_read_timeout(Some(self.timeouts.response))
            .map_err(err)?;
        conn.set_write_timeout(Some(self.timeouts.response))
            .map_err(err)?;
        Ok(conn)
    }

    fn release(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    fn redis_err(&self, e: redis::RedisError) -> Error {
        Error::redis(&self.address, e, self.timeouts.response)
    }
}

impl InFlight<'_> {
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
        match conn.send_packed_command(self.packed) {
            Ok(()) => self.conn = Some(conn),
            Err(e) if self.reused && is_connection_error(&e) => {
                // A pooled connection the server closed while idle: one fresh try.
                self.reused = false;
                self.write(None)
            }
            Err(e) => self.fail(b.redis_err(e)),
        }
    }

    /// Records why the command could not be sent. Only an unreachable or
    /// stalled server is marked down: a reset right after a successful connect
    /// (an oversized value, say) concerns this command alone.
    fn fail(&mut self, e: Error) {
        if self.connect_failed || matches!(e, Error::Timeout { .. }) {
            if e.is_unavailable() {
                self.backend.health.failed(&e);
            }
        } else if e.is_unavailable() {
            self.backend.health.suspect(&e);
        }
        self.error = Some(e);
    }

    /// Reads the replies, in order. A reply that is a Redis error becomes the
    /// returned `Err` once all replies are read, so the connection stays in step.
    pub fn recv(mut self) -> Result<Vec<Value>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let b = self.backend;
        let mut conn = self
            .conn
            .take()
            .expect("an InFlight without error holds a connection");
        let mut values = Vec::with_capacity(self.replies);
        let mut first_reply_error = None;
        for _ in 0..self.replies {
            match conn.recv_response() {
                Ok(v) => match v.extract_error() {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        first_reply_error.get_or_insert(e);
                        values.push(Value::Nil);
                    }
                },
                Err(e) if is_connection_error(&e) => {
                    drop(conn);
                    if self.reused && values.is_empty() && !e.is_timeout() {
                        // Stale pooled connection: the command is idempotent, send it again.
                        self.reused = false;
                        self.write(None);
                        return self.recv();
                    }
                    let e = b.redis_err(e);
                    if matches!(e, Error::Timeout { .. }) {
                        b.health.failed(&e);
                    } else {
                        b.health.suspect(&e);
                    }
                    return Err(e);
                }
                Err(e) => {
                    first_reply_error.get_or_insert(e);
                    values.push(Value::Nil);
                }
            }
        }
        b.health.succeeded();
        // After a protocol error the server closes the connection: do not pool it.
        if !first_reply_error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("Protocol error"))
        {
            b.release(conn);
        }
        match first_reply_error {
            Some(e) => Err(b.redis_err(e)),
            None => Ok(values),
        }
    }
}

impl Backend for RedisBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let packed = protocol::get(key);
        let mut v = self.query(&packed, 1)?;
        protocol::bulk(v.pop().unwrap_or(Value::Nil)).map_err(|e| self.redis_err(e))
    }

    fn get_many(&self, keys: &[String]) -> Vec<Result<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let packed = protocol::mget(keys);
        let flight = self.send(&packed, 1);
        protocol::mget_reply(flight.recv(), keys.len(), |e| self.redis_err(e))
    }

    fn set(&self, key: &str, value: &[u8], expire: Duration) -> Result<bool> {
        let packed = protocol::set(key, value, expire);
        let v = self.query(&packed, 1)?;
        Ok(protocol::all_ok(&v))
    }

    fn set_many(&self, items: &[SetItem]) -> Result<bool> {
        if items.is_empty() {
            return Ok(true);
        }
        let packed =
            protocol::set_many(items.iter().map(|(k, v, e)| (k.as_str(), v.as_slice(), *e)));
        let v = self.query(&packed, items.len())?;
        Ok(protocol::all_ok(&v))
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let packed = protocol::del(std::slice::from_ref(&key));
        let v = self.query(&packed, 1)?;
        Ok(protocol::count(&v) > 0)
    }

    fn delete_many(&self, keys: &[String]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let packed = protocol::del(keys);
        let v = self.query(&packed, 1)?;
        Ok(protocol::count(&v))
    }
}
