//! [`AsyncConnection`]: the async face's one connection to a server, shared
//! by all its calls (multiplexed).
//!
//! Over plain TCP and unix sockets a task of rc's owns the socket: callers
//! hand it packed commands, it writes whatever has queued up in one write,
//! and hands each caller its replies, read with [`Reader`] (see
//! [`crate::resp`] for why). Over TLS and RESP3 it is the `redis` crate's
//! `MultiplexedConnection`.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, Pipeline, RedisError, RedisResult, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::connection::{SetUp, Target, check_setup, setup, target};
use crate::host::Timeouts;
use crate::resp::Reader;

/// A connection calls share; clones are handles to the same one.
#[derive(Clone)]
pub(crate) enum AsyncConnection {
    Own(Multiplexed),
    Redis(MultiplexedConnection),
}

impl AsyncConnection {
    /// Connects to `client`'s server and authenticates. Not bounded here:
    /// the caller bounds the whole of it.
    pub async fn open(client: &redis::Client, timeouts: Timeouts) -> RedisResult<AsyncConnection> {
        let info = client.get_connection_info();
        let Some(target) = target(info) else {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeouts.connect))
                .set_response_timeout(Some(timeouts.response));
            let conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            return Ok(AsyncConnection::Redis(conn));
        };
        let conn = match target {
            Target::Tcp(host, port) => {
                let stream = tcp(host, port).await?;
                Multiplexed::spawn(stream, timeouts.response)
            }
            #[cfg(unix)]
            Target::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Multiplexed::spawn(stream, timeouts.response)
            }
        };
        let settings = info.redis_settings();
        let mut with_username = true;
        loop {
            let setup = setup(settings, with_username);
            if setup.is_empty() {
                break;
            }
            let replies = conn.send(setup.get_packed_pipeline(), setup.len()).await?;
            match check_setup(settings, with_username, replies)? {
                SetUp::Done => break,
                SetUp::AgainWithoutUsername => with_username = false,
            }
        }
        Ok(AsyncConnection::Own(conn))
    }

    /// Sends one command; an error reply is a `Value::ServerError`.
    pub async fn query(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            AsyncConnection::Own(c) => {
                let mut replies = c.send(cmd.get_packed_command(), 1).await?;
                Ok(replies.pop().unwrap_or(Value::Nil))
            }
            AsyncConnection::Redis(c) => c.send_packed_command(cmd).await,
        }
    }

    /// Sends a pipeline and reads `count` replies, error replies among them.
    pub async fn query_pipeline(
        &mut self,
        pipe: &Pipeline,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            AsyncConnection::Own(c) => c.send(pipe.get_packed_pipeline(), count).await,
            AsyncConnection::Redis(c) => c.send_packed_commands(pipe, 0, count).await,
        }
    }
}

/// Each address of `host` in turn; no delay on small writes (as the
/// blocking connection).
async fn tcp(host: &str, port: u16) -> io::Result<tokio::net::TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "could not resolve to any addresses",
        )
    }))
}

/// Commands in flight from which a new one waits a scheduler turn before it
/// is written, so the callers that are ready share one write. Measured
/// (`cargo xtask bench`, filtered runs): from 8, `async-64-tasks` runs at
/// 1.96× the `redis` crate's connection (0.52× when every command is
/// written at once) and `swr-hit-due-async` stays at 0.95; from 1, that
/// row rose to 1.19: a lone caller then waits for its background refresh's
/// turn.
const BATCH_AFTER: usize = 8;

/// A handle to the task that owns one socket.
#[derive(Clone)]
pub(crate) struct Multiplexed {
    jobs: mpsc::UnboundedSender<Job>,
}

/// Packed commands and where their `replies` go.
struct Job {
    packed: Vec<u8>,
    replies: usize,
    done: oneshot::Sender<RedisResult<Vec<Value>>>,
}

/// A job written, its replies still coming.
struct Waiting {
    left: usize,
    values: Vec<Value>,
    done: oneshot::Sender<RedisResult<Vec<Value>>>,
}

impl Multiplexed {
    /// Starts the task that owns `stream` on the current runtime. It ends
    /// when every handle is gone and every reply is read, or at the first
    /// failure: every caller waiting then gets the error, and later ones a
    /// closed connection.
    fn spawn<S>(stream: S, response: Duration) -> Multiplexed
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(drive(stream, queue, response));
        Multiplexed { jobs }
    }

    async fn send(&self, packed: Vec<u8>, replies: usize) -> RedisResult<Vec<Value>> {
        if replies == 0 {
            return Ok(Vec::new());
        }
        let (done, result) = oneshot::channel();
        let job = Job {
            packed,
            replies,
            done,
        };
        self.jobs.send(job).map_err(|_| closed())?;
        // Dropped unanswered: the task ended (its runtime shut down).
        result.await.unwrap_or_else(|_| Err(closed()))
    }
}

/// Writes jobs as they come and hands out replies as they are read. A
/// reply that takes longer than `response` (no byte of it read) fails the
/// connection, as does a write that takes longer.
async fn drive<S>(stream: S, mut queue: mpsc::UnboundedReceiver<Job>, response: Duration)
where
    S: AsyncRead + AsyncWrite,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut reader = Reader::new();
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut out = Vec::new();
    let mut taking = true;
    let deadline = tokio::time::sleep(response);
    tokio::pin!(deadline);
    let failure: RedisError = 'run: loop {
        tokio::select! {
            biased;
            job = queue.recv(), if taking => {
                let Some(job) = job else {
                    taking = false;
                    if waiting.is_empty() {
                        return;
                    }
                    continue;
                };
                if waiting.is_empty() {
                    // Nothing in flight: written at once, for the latency.
                    deadline.as_mut().reset(Instant::now() + response);
                }
                if waiting.len() >= BATCH_AFTER {
                    // Many callers are waiting, and these commands cannot be
                    // answered before theirs: a turn lets the other callers
                    // that are ready queue theirs for the same write (the
                    // caller that sent `job` woke this task straight away:
                    // tokio runs a woken task next).
                    tokio::task::yield_now().await;
                }
                out.clear();
                let mut next = Some(job);
                // Whatever else has queued up goes in the same write.
                while let Some(job) = next.take().or_else(|| queue.try_recv().ok()) {
                    out.extend_from_slice(&job.packed);
                    waiting.push_back(Waiting {
                        left: job.replies,
                        values: Vec::with_capacity(job.replies),
                        done: job.done,
                    });
                }
                match tokio::time::timeout(response, wr.write_all(&out)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break e.into(),
                    Err(_) => break timed_out(),
                }
            }
            read = rd.read(reader.room()), if !waiting.is_empty() => {
                if let Err(e) = read.map_err(RedisError::from).and_then(|n| reader.filled(n)) {
                    break e;
                }
                deadline.as_mut().reset(Instant::now() + response);
                loop {
                    match reader.next() {
                        Err(e) => break 'run e,
                        Ok(None) => break,
                        Ok(Some(value)) => {
                            let Some(w) = waiting.front_mut() else {
                                break 'run unexpected_reply();
                            };
                            w.values.push(value);
                            w.left -= 1;
                            if w.left == 0
                                && let Some(w) = waiting.pop_front()
                            {
                                // The caller may be gone (cancelled): its replies are dropped.
                                let _ = w.done.send(Ok(w.values));
                            }
                        }
                    }
                }
                if !taking && waiting.is_empty() {
                    return;
                }
            }
            () = &mut deadline, if !waiting.is_empty() => break timed_out(),
        }
    };
    for w in waiting {
        let _ = w.done.send(Err(failure.clone()));
    }
}

fn closed() -> RedisError {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "rc closed this connection after a failed read or write",
    )
    .into()
}

fn timed_out() -> RedisError {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "no reply within the response timeout",
    )
    .into()
}

fn unexpected_reply() -> RedisError {
    io::Error::new(io::ErrorKind::InvalidData, "a reply no command asked for").into()
}
