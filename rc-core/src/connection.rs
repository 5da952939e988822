//! [`Connection`]: one blocking connection to a server, for the pool of the
//! blocking face.
//!
//! Over plain TCP and unix sockets rc holds the socket and reads replies
//! with [`Reader`] (see [`crate::resp`] for why and by how much); commands
//! are still packed by the `redis` crate. Over TLS, and where a socket kind
//! is not handled here, it is the `redis` crate's own connection.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, ErrorKind, RedisConnectionInfo, RedisError, RedisResult, Value};

use crate::error::{Error, Result};
use crate::host::Timeouts;
use crate::resp::Reader;

/// A blocking connection whose every wait is bounded by its timeouts.
pub(crate) struct Connection(Inner);

enum Inner {
    Socket {
        stream: Stream,
        reader: Reader,
        /// Set once a read or write failed: the stream may be out of step
        /// with its replies, so it is never used again.
        broken: bool,
    },
    Redis(redis::Connection),
}

enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Connection {
    /// Connects to `client`'s server and authenticates, all within the
    /// connect timeout; replies then wait at most the response timeout.
    /// `address` names the server in errors.
    pub fn open(client: &redis::Client, address: &str, timeouts: Timeouts) -> Result<Connection> {
        let err = |e| Error::redis(address, e, timeouts.connect);
        let info = client.get_connection_info();
        let settings = info.redis_settings();
        let started = Instant::now();
        let stream = match target(info) {
            Some(target) => Stream::connect(target, timeouts.connect).map_err(|e| err(e.into()))?,
            None => {
                return redis_connection(client, address, timeouts)
                    .map(Inner::Redis)
                    .map(Connection);
            }
        };
        let mut conn = Connection(Inner::Socket {
            stream,
            reader: Reader::new(),
            broken: false,
        });
        let left = timeouts
            .connect
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| err(io::Error::from(io::ErrorKind::TimedOut).into()))?;
        conn.set_timeouts(left).map_err(err)?;
        conn.handshake(settings, true).map_err(err)?;
        conn.set_timeouts(timeouts.response).map_err(err)?;
        Ok(conn)
    }

    fn set_timeouts(&self, t: Duration) -> RedisResult<()> {
        match &self.0 {
            Inner::Socket { stream, .. } => Ok(stream.set_timeouts(t)?),
            Inner::Redis(c) => {
                c.set_read_timeout(Some(t))?;
                c.set_write_timeout(Some(t))
            }
        }
    }

    /// `AUTH` and `SELECT` (see [`setup`]).
    fn handshake(&mut self, s: &RedisConnectionInfo, with_username: bool) -> RedisResult<()> {
        let setup = setup(s, with_username);
        if setup.is_empty() {
            return Ok(());
        }
        self.send_packed_command(&setup.get_packed_pipeline())?;
        let replies = (0..setup.len())
            .map(|_| self.recv_response())
            .collect::<RedisResult<_>>()?;
        match check_setup(s, with_username, replies)? {
            SetUp::Done => Ok(()),
            SetUp::AgainWithoutUsername => self.handshake(s, false),
        }
    }

    /// Writes one or more packed commands.
    pub fn send_packed_command(&mut self, cmd: &[u8]) -> RedisResult<()> {
        match &mut self.0 {
            Inner::Socket { stream, broken, .. } => {
                if *broken {
                    return Err(closed());
                }
                stream.write_all(cmd).map_err(|e| {
                    *broken = true;
                    e.into()
                })
            }
            Inner::Redis(c) => c.send_packed_command(cmd),
        }
    }

    /// Reads the next reply; an error reply is a `Value::ServerError`.
    pub fn recv_response(&mut self) -> RedisResult<Value> {
        match &mut self.0 {
            Inner::Socket {
                stream,
                reader,
                broken,
            } => {
                if *broken {
                    return Err(closed());
                }
                reader.read(stream).inspect_err(|_| *broken = true)
            }
            Inner::Redis(c) => c.recv_response(),
        }
    }

    /// Sends a command and reads its reply.
    pub fn query(&mut self, cmd: &redis::Cmd) -> RedisResult<Value> {
        self.send_packed_command(&cmd.get_packed_command())?;
        self.recv_response()
    }
}

/// Why a broken connection is not used again.
fn closed() -> RedisError {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "rc closed this connection after a failed read or write",
    )
    .into()
}

/// The `redis` crate's blocking connection to `client`'s server, within
/// `timeouts` as [`Connection::open`].
pub(crate) fn redis_connection(
    client: &redis::Client,
    address: &str,
    timeouts: Timeouts,
) -> Result<redis::Connection> {
    let err = |e| Error::redis(address, e, timeouts.connect);
    let conn = client
        .get_connection_with_timeout(timeouts.connect)
        .map_err(err)?;
    conn.set_read_timeout(Some(timeouts.response))
        .map_err(err)?;
    conn.set_write_timeout(Some(timeouts.response))
        .map_err(err)?;
    Ok(conn)
}

/// A server rc reads replies from itself (see [`crate::resp`]).
#[derive(Clone, Copy)]
enum Target<'a> {
    Tcp(&'a str, u16),
    #[cfg(unix)]
    Unix(&'a std::path::Path),
}

/// Where `info` points, unless the `redis` crate's connection serves it:
/// TLS, RESP3, and addresses it refuses with an error of its own.
fn target(info: &redis::ConnectionInfo) -> Option<Target<'_>> {
    if info.redis_settings().protocol() != redis::ProtocolVersion::RESP2 {
        return None;
    }
    match info.addr() {
        ConnectionAddr::Tcp(host, _) if host == "0.0.0.0" || host == "::" => None,
        ConnectionAddr::Tcp(host, port) => Some(Target::Tcp(host, *port)),
        #[cfg(unix)]
        ConnectionAddr::Unix(path) => Some(Target::Unix(path)),
        _ => None,
    }
}

/// The commands a new connection sends first, as the `redis` crate does:
/// `AUTH` (with the user name unless `with_username` is false) when there
/// is a password, `SELECT` when the database is not 0.
fn setup(s: &RedisConnectionInfo, with_username: bool) -> redis::Pipeline {
    let mut setup = redis::pipe();
    if let Some(password) = s.password() {
        let auth = setup.cmd("AUTH");
        if let Some(user) = s.username().filter(|_| with_username) {
            auth.arg(user);
        }
        auth.arg(password);
    }
    if s.db() != 0 {
        setup.cmd("SELECT").arg(s.db());
    }
    setup
}

/// What the replies to [`setup`] say.
enum SetUp {
    Done,
    /// A server older than ACLs takes no user name: again without it.
    AgainWithoutUsername,
}

/// Checks the replies to [`setup`], with the `redis` crate's errors.
fn check_setup(
    s: &RedisConnectionInfo,
    with_username: bool,
    replies: Vec<Value>,
) -> RedisResult<SetUp> {
    let mut replies = replies.into_iter();
    // The `AUTH` reply comes first, when there is one.
    if s.password().is_some()
        && let Some(Value::ServerError(e)) = replies.next()
    {
        let old_server = e
            .details()
            .is_some_and(|d| d.contains("wrong number of arguments for 'auth' command"));
        if with_username && s.username().is_some() && old_server {
            return Ok(SetUp::AgainWithoutUsername);
        }
        return Err((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        )
            .into());
    }
    if let Some(Value::ServerError(e)) = replies.next() {
        let refused = (
            ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "Redis server refused to switch database",
        );
        return Err(match e.details() {
            Some(d) => (refused.0, refused.1, d.to_owned()).into(),
            None => refused.into(),
        });
    }
    Ok(SetUp::Done)
}

impl Stream {
    fn connect(target: Target<'_>, timeout: Duration) -> io::Result<Stream> {
        match target {
            Target::Tcp(host, port) => tcp(host, port, timeout).map(Stream::Tcp),
            #[cfg(unix)]
            Target::Unix(path) => std::os::unix::net::UnixStream::connect(path).map(Stream::Unix),
        }
    }

    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
            #[cfg(unix)]
            Stream::Unix(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
        }
    }
}

/// Each address of `host` in turn, as the `redis` crate does; no delay on
/// small writes (redis-py sets `TCP_NODELAY` too).
fn tcp(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
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

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
