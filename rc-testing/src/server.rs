//! A throwaway real `redis-server` for tests.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode, utf8_percent_encode};
use rc_core::HostConfig;
use redis::{ConnectionAddr, ConnectionLike, IntoConnectionInfo, RedisConnectionInfo, Value};
use tempfile::TempDir;

use crate::tls::{self, TestCertificates};

const BINARY: &str = "redis-server";
const NOT_FOUND: &str = "redis-server not found on PATH: run `cargo xtask test` (installs it) or `apt-get install redis-server`";
/// How long a start waits for the server to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two readiness probes.
const POLL: Duration = Duration::from_millis(10);
/// How many free ports a start tries when another process grabs the one it picked.
const PORT_ATTEMPTS: usize = 5;
/// Connect/read/write timeout of a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Connect/read/write timeout of [`RedisServer::cli`].
const CLI_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`RedisServer::stop`] waits for the process to exit before killing it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Percent-encoded in a URL component: all but RFC 3986's unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// Percent-encoded in a URL path: as [`COMPONENT`], but `/` separates segments.
const PATH: &AsciiSet = &COMPONENT.remove(b'/');
/// Directives the builder writes itself; overriding them would break the accessors.
const RESERVED: &[&str] = &[
    "port",
    "bind",
    "dir",
    "logfile",
    "daemonize",
    "unixsocket",
    "unixsocketperm",
];

/// Configures a [`RedisServer`] before starting it; made by [`RedisServer::builder`].
///
/// ```
/// use rc::testing::RedisServer;
///
/// let server = RedisServer::builder()
///     .unix_socket(true)
///     .password("s3cret")
///     .config("maxmemory", "1mb")
///     .start();
/// assert_eq!(server.cli(&["CONFIG", "GET", "maxmemory"]), "1) maxmemory\n2) 1048576");
/// ```
#[derive(Clone, Default)]
pub struct RedisServerBuilder {
    unix: bool,
    password: Option<String>,
    config: Vec<(String, String)>,
    /// Run as a Sentinel (`redis-server <conf> --sentinel`); set by `RedisSentinel`.
    sentinel: bool,
    /// Pick a free cluster bus port (`cluster-port`) with the port; set by `RedisCluster`.
    cluster_bus: bool,
    /// `redis.conf` lines written as they are, after the `config` ones.
    raw_lines: Vec<String>,
    /// Listen with TLS only, with these files.
    tls: Option<TestCertificates>,
}

impl fmt::Debug for RedisServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServerBuilder")
            .field("unix_socket", &self.unix)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("config", &self.config)
            .field("sentinel", &self.sentinel)
            .field("cluster_bus", &self.cluster_bus)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisServerBuilder {
    /// Runs the server as a Sentinel (`redis-server <conf> --sentinel`).
    pub(crate) fn sentinel_mode(mut self) -> Self {
        self.sentinel = true;
        self
    }

    /// Writes `cluster-port` with a free port, picked again with the port on
    /// every start attempt (the default bus port, port + 10000, can be taken
    /// or above 65535).
    pub(crate) fn cluster_bus(mut self) -> Self {
        self.cluster_bus = true;
        self
    }

    /// Adds `name` followed by `args`, each a quoted `redis.conf` argument
    /// (so a password with spaces or quotes stays one argument); written
    /// after the [`config`](Self::config) directives, unchecked.
    pub(crate) fn directive(mut self, name: &str, args: &[&str]) -> Self {
        let mut line = name.to_owned();
        for arg in args {
            line.push(' ');
            line += &quote(arg);
        }
        self.raw_lines.push(line);
        self
    }

    /// `true`: listen only on a unix socket in the temp dir (mode 700, no TCP);
    /// unix platforms only ([`try_start`](Self::try_start) refuses it elsewhere).
    /// `false` (the default): listen only on a free TCP port of 127.0.0.1.
    pub fn unix_socket(mut self, unix: bool) -> Self {
        self.unix = unix;
        self
    }

    /// Listens with TLS only (`tls-port` on the free port, `port 0`), with
    /// the certificate and key of `certs`; replication and the cluster bus
    /// use TLS too (`tls-replication`, `tls-cluster`). Clients need no
    /// certificate of their own unless `.config("tls-auth-clients", "yes")`.
    /// [`RedisServer::url`] is then `rediss://…`, [`RedisServer::host_config`]
    /// trusts the CA, and [`RedisServer::cli`] connects over TLS (showing
    /// the server's certificate as its client certificate).
    ///
    /// Needs rc's `tls` feature: without it, [`try_start`](Self::try_start)
    /// fails with an [`io::ErrorKind::Unsupported`] error. Not with
    /// [`unix_socket`](Self::unix_socket); the `tls-*` directives it writes
    /// cannot be configured.
    ///
    /// ```no_run
    /// // With `--features tls`.
    /// use rc::testing::{RedisServer, TestCertificates};
    ///
    /// let certs = TestCertificates::generate();
    /// let server = RedisServer::builder().tls(&certs).start();
    /// assert!(server.url().starts_with("rediss://127.0.0.1:"));
    /// assert_eq!(server.cli(&["PING"]), "PONG"); // over TLS
    /// let cache = rc::Cache::builder().host_config(server.host_config()).build()?;
    /// assert!(cache.set("k", &1, None)?);
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub fn tls(mut self, certs: &TestCertificates) -> Self {
        self.tls = Some(certs.clone());
        self
    }

    /// Requires this password (`requirepass`). [`RedisServer::url`],
    /// [`RedisServer::host_config`] and [`RedisServer::cli`] then carry it.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Adds a `redis.conf` directive, e.g. `("maxmemory", "1mb")` or
    /// `("maxclients", "1")`. The value is written as in `redis.conf`, so
    /// `("save", "900 1")` gives two arguments; an empty value is written `""`.
    /// The directives the server's own set-up needs (`port`, `bind`, `dir`,
    /// `logfile`, `daemonize`, `unixsocket`, `unixsocketperm`) are refused by
    /// [`try_start`](Self::try_start).
    pub fn config(mut self, name: &str, value: &str) -> Self {
        self.config.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts `n` servers of this configuration at once (each start waits
    /// for its server to answer). On a failure the started ones are stopped
    /// (dropped) and this panics, naming `what`.
    pub(crate) fn start_many(&self, n: usize, what: &str) -> Vec<RedisServer> {
        let started: Vec<io::Result<RedisServer>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..n).map(|_| scope.spawn(|| self.try_start())).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("a start thread panicked")))
                })
                .collect()
        });
        started
            .into_iter()
            .collect::<io::Result<Vec<_>>>()
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Starts the server and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// If it cannot be started: `redis-server` is not on `PATH`, a directive is
    /// bad, or it did not answer within 10 s (the message holds its log's tail).
    pub fn start(&self) -> RedisServer {
        self.try_start()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"))
    }

    /// Starts the server and waits (at most 10 s) until it answers `PING`.
    ///
    /// A missing binary is an [`io::ErrorKind::NotFound`] error that says how
    /// to install it; a server that exits or does not answer in time is an
    /// error holding the tail of its log; a unix socket on a platform without
    /// them is an [`io::ErrorKind::Unsupported`] error.
    ///
    /// ```
    /// use rc::testing::RedisServer;
    ///
    /// let bad = RedisServer::builder().config("port", "6379").try_start();
    /// assert_eq!(bad.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn try_start(&self) -> io::Result<RedisServer> {
        self.validate()?;
        let dir = make_temp_dir()?;
        let socket = self.unix.then(|| dir.path().join("redis.sock"));
        // From here on, dropping `server` kills whatever was spawned and removes `dir`.
        let mut server = RedisServer {
            conf: dir.path().join("redis.conf"),
            dir,
            port: None,
            bus_port: None,
            sentinel: self.sentinel,
            socket,
            password: self.password.clone(),
            tls: self.tls.clone(),
            state: Mutex::new(State {
                child: None,
                pid: 0,
                paused: false,
            }),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            if !self.unix {
                server.port = Some(free_port()?);
            }
            if self.cluster_bus {
                server.bus_port = Some(loop {
                    let bus = free_port()?;
                    if Some(bus) != server.port {
                        break bus;
                    }
                });
            }
            fs::write(&server.conf, self.conf_text(&server))?;
            let launched = server.launch(&mut server.lock());
            match launched {
                Ok(()) => return Ok(server),
                // Another process took the port between our probe and redis' bind.
                Err(e)
                    if e.kind() == io::ErrorKind::AddrInUse
                        && !self.unix
                        && attempt < PORT_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn validate(&self) -> io::Result<()> {
        if self.unix && !cfg!(unix) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "RedisServer: unix sockets need a unix platform; use TCP (the default)",
            ));
        }
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.tls.is_some() {
            if !cfg!(feature = "tls") {
                return Err(io::Error::new(io::ErrorKind::Unsupported, tls::NO_TLS));
            }
            if self.unix {
                return bad("RedisServer: TLS needs TCP, not a unix socket".to_owned());
            }
        }
        for (name, value) in &self.config {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return bad(format!("invalid redis.conf directive name {name:?}"));
            }
            let lower = name.to_ascii_lowercase();
            if RESERVED.contains(&lower.as_str())
                || (self.tls.is_some() && tls::DIRECTIVES.contains(&lower.as_str()))
            {
                return bad(format!(
                    "RedisServer sets `{name}` itself; it cannot be configured"
                ));
            }
            if value.contains(['\n', '\r']) {
                return bad(format!("the value of `{name}` contains a line break"));
            }
        }
        Ok(())
    }

    fn conf_text(&self, server: &RedisServer) -> String {
        let port = server.port.unwrap_or(0);
        let mut lines = match &self.tls {
            Some(certs) => certs.conf_lines(port, quote),
            None => vec![format!("port {port}")],
        };
        lines.extend([
            "bind 127.0.0.1".to_owned(),
            "save \"\"".to_owned(),
            "appendonly no".to_owned(),
            "daemonize no".to_owned(),
            format!("dir {}", quote(&server.dir().to_string_lossy())),
            format!(
                "logfile {}",
                quote(&server.dir().join("redis.log").to_string_lossy())
            ),
        ]);
        if let Some(socket) = &server.socket {
            lines.push(format!("unixsocket {}", quote(&socket.to_string_lossy())));
            lines.push("unixsocketperm 700".to_owned());
        }
        if let Some(bus) = server.bus_port {
            lines.push(format!("cluster-port {bus}"));
        }
        if let Some(password) = &self.password {
            lines.push(format!("requirepass {}", quote(password)));
        }
        for (name, value) in &self.config {
            let needs_quotes = value.is_empty()
                || value.contains(['"', '\'', '\\'])
                || value.chars().any(char::is_control);
            let value = if needs_quotes {
                quote(value)
            } else {
                value.clone()
            };
            lines.push(format!("{name} {value}"));
        }
        lines.extend(self.raw_lines.iter().cloned());
        lines.join("\n") + "\n"
    }
}

/// A real `redis-server` process for tests, in its own temp dir, listening on
/// a free port of 127.0.0.1 or on a unix socket. Dropping it kills the process
/// and removes the temp dir.
///
/// It never persists anything (`save ""`, `appendonly no`). Every method takes
/// `&self`, so a test can share it with other threads (e.g. to kill it while
/// a client is busy).
///
/// Faults: [`pause`](Self::pause) freezes it (a hung server) until
/// [`resume`](Self::resume); [`stop`](Self::stop) shuts it down cleanly and
/// [`kill`](Self::kill) crashes it, and either is undone by
/// [`restart`](Self::restart), on the same port or socket.
///
/// On Linux the process is killed when the test process exits, even if the
/// `RedisServer` is never dropped (e.g. one in a `static`); on other
/// platforms only dropping it ends the process.
///
/// ```
/// use rc::testing::RedisServer;
///
/// let server = RedisServer::start();
/// assert_eq!(server.cli(&["SET", "greeting", "hello"]), "OK");
/// assert_eq!(server.cli(&["GET", "greeting"]), "hello");
/// assert!(server.url().starts_with("redis://127.0.0.1:"));
/// ```
pub struct RedisServer {
    /// Removed when the server is dropped.
    dir: TempDir,
    conf: PathBuf,
    port: Option<u16>,
    /// `cluster-port`, when the builder picked one.
    bus_port: Option<u16>,
    /// Launched with `--sentinel`.
    sentinel: bool,
    socket: Option<PathBuf>,
    password: Option<String>,
    /// Listens with TLS only, with these files.
    tls: Option<TestCertificates>,
    state: Mutex<State>,
}

struct State {
    /// `None` once the process has been reaped.
    child: Option<Child>,
    /// Pid of the latest process.
    pid: u32,
    /// Frozen by [`RedisServer::pause`] and not resumed since.
    paused: bool,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("pid", &self.pid())
            .field("port", &self.port)
            .field("bus_port", &self.bus_port)
            .field("sentinel", &self.sentinel)
            .field("socket", &self.socket)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("dir", &self.dir())
            .finish()
    }
}

impl RedisServer {
    /// Starts a server on a free TCP port of 127.0.0.1, without password.
    ///
    /// # Panics
    ///
    /// If it cannot be started (see [`RedisServerBuilder::start`]).
    ///
    /// ```
    /// let server = rc::testing::RedisServer::start();
    /// assert_eq!(server.cli(&["PING"]), "PONG");
    /// ```
    pub fn start() -> RedisServer {
        RedisServer::builder().start()
    }

    /// A builder for a server with a unix socket, a password or extra directives.
    ///
    /// ```
    /// let server = rc::testing::RedisServer::builder().unix_socket(true).start();
    /// assert!(server.socket_path().is_some() && server.port().is_none());
    /// ```
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The URL to connect to it: `redis://127.0.0.1:PORT` (with `:password@`
    /// when one is set; `rediss://` for a [TLS](RedisServerBuilder::tls)
    /// server, whose CA a URL cannot carry: see
    /// [`host_config`](Self::host_config)) or
    /// `redis+unix:///path/to/redis.sock` (with `?pass=password`). The
    /// password is percent-encoded.
    ///
    /// ```
    /// let server = rc::testing::RedisServer::builder().password("pw").start();
    /// let port = server.port().unwrap();
    /// assert_eq!(server.url(), format!("redis://:pw@127.0.0.1:{port}"));
    /// ```
    pub fn url(&self) -> String {
        let password = self
            .password
            .as_deref()
            .map(|p| utf8_percent_encode(p, COMPONENT).to_string());
        match (&self.socket, self.port) {
            (Some(socket), _) => {
                let path = percent_encode(socket.as_os_str().as_encoded_bytes(), PATH);
                match password {
                    Some(p) => format!("redis+unix://{path}?pass={p}"),
                    None => format!("redis+unix://{path}"),
                }
            }
            (None, port) => {
                let port = port.expect("a TCP server has a port");
                let scheme = if self.tls.is_some() {
                    "rediss"
                } else {
                    "redis"
                };
                match password {
                    Some(p) => format!("{scheme}://:{p}@127.0.0.1:{port}"),
                    None => format!("{scheme}://127.0.0.1:{port}"),
                }
            }
        }
    }

    /// Where it listens (and its password), as an rc [`HostConfig`]; for a
    /// [TLS](RedisServerBuilder::tls) server with TLS on, trusting its CA.
    ///
    /// ```
    /// let server = rc::testing::RedisServer::start();
    /// let host = server.host_config();
    /// assert_eq!((host.host.as_str(), Some(host.port)), ("127.0.0.1", server.port()));
    /// ```
    pub fn host_config(&self) -> HostConfig {
        let config = match (&self.socket, self.port) {
            (Some(socket), _) => HostConfig::new().unix_socket_path(socket.clone()),
            (None, port) => HostConfig::new()
                .host("127.0.0.1")
                .port(port.expect("a TCP server has a port")),
        };
        let config = match &self.tls {
            Some(certs) => config.ssl_options(certs.ssl_options()),
            None => config,
        };
        match &self.password {
            Some(p) => config.password(p.clone()),
            None => config,
        }
    }

    /// Its TCP port (the TLS port of a [TLS](RedisServerBuilder::tls)
    /// server, which has no other); `None` for a unix-socket server.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Its unix socket; `None` for a TCP server.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// Its temp dir (holds `redis.conf`, `redis.log`, and the socket), removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Pid of the process (the latest one after [`restart`](Self::restart)).
    pub fn pid(&self) -> u32 {
        self.lock().pid
    }

    /// Freezes the process (`SIGSTOP`): connections stay open and requests
    /// are accepted by the kernel, but nothing is answered, like a hung
    /// server. Undo with [`resume`](Self::resume).
    ///
    /// # Panics
    ///
    /// If the process is not running, or on a platform without unix signals.
    ///
    /// ```
    /// let server = rc::testing::RedisServer::start();
    /// server.pause();
    /// assert!(server.is_running()); // frozen, not gone
    /// server.resume();
    /// assert_eq!(server.cli(&["PING"]), "PONG");
    /// ```
    pub fn pause(&self) {
        let mut state = self.lock();
        signal(&mut state, Signal::Stop, "pause");
        state.paused = true;
    }

    /// Lets a process frozen by [`pause`](Self::pause) run again (`SIGCONT`);
    /// the requests sent meanwhile are then answered. Harmless on a process
    /// that is not frozen.
    ///
    /// # Panics
    ///
    /// If the process is not running, or on a platform without unix signals.
    pub fn resume(&self) {
        let mut state = self.lock();
        signal(&mut state, Signal::Continue, "resume");
        state.paused = false;
    }

    /// Shuts the server down cleanly (`SHUTDOWN NOSAVE`: it closes its
    /// clients and exits, writing nothing) and waits for the process to end;
    /// a paused server is resumed first. If it refuses or has not exited
    /// within 10 s, it is killed as by [`kill`](Self::kill). Does nothing if
    /// it is not running. The port or socket, the temp dir and the
    /// configuration stay: [`restart`](Self::restart) brings it back, empty.
    ///
    /// ```
    /// let server = rc::testing::RedisServer::start();
    /// server.cli(&["SET", "k", "v"]);
    /// server.stop();
    /// assert!(!server.is_running());
    /// server.restart();
    /// assert_eq!(server.cli(&["DBSIZE"]), "0");
    /// ```
    pub fn stop(&self) {
        let mut state = self.lock();
        if !is_alive(&mut state) {
            return;
        }
        if state.paused {
            signal(&mut state, Signal::Continue, "stop");
            state.paused = false;
        }
        // On success the server exits without replying; a reply is a refusal
        // (e.g. the password was changed by `CONFIG SET requirepass`).
        let refused = self.call(&["SHUTDOWN", "NOSAVE"], CLI_TIMEOUT).is_ok();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !refused && is_alive(&mut state) && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        kill_child(&mut state);
    }

    /// Kills the process (`SIGKILL`, or its platform's equivalent) and waits
    /// for it to end, like a crash; its data is gone. Does nothing if it is
    /// not running. Like [`stop`](Self::stop), it keeps the port or socket
    /// for [`restart`](Self::restart).
    ///
    /// ```
    /// let server = rc::testing::RedisServer::start();
    /// server.kill();
    /// assert!(!server.is_running());
    /// ```
    pub fn kill(&self) {
        kill_child(&mut self.lock());
    }

    /// Starts the server again, on the same port or socket with the same
    /// configuration, and waits until it answers `PING`. It starts empty. A
    /// running process (paused or not) is killed first; call
    /// [`stop`](Self::stop) before for a clean shutdown.
    ///
    /// # Panics
    ///
    /// If it cannot be started again (e.g. another process took the port).
    ///
    /// ```
    /// let server = rc::testing::RedisServer::start();
    /// let url = server.url();
    /// server.kill();
    /// server.restart();
    /// assert_eq!((server.url(), server.cli(&["DBSIZE"])), (url, "0".to_owned()));
    /// ```
    pub fn restart(&self) {
        let mut state = self.lock();
        kill_child(&mut state);
        if let Err(e) = self.launch(&mut state) {
            panic!("cannot restart redis-server: {e}");
        }
    }

    /// Whether the process is alive (a process frozen by [`pause`](Self::pause) is).
    pub fn is_running(&self) -> bool {
        is_alive(&mut self.lock())
    }

    /// Runs one command on a fresh connection (authenticated when the server
    /// has a password) and returns the reply in a readable form:
    ///
    /// | reply | returned |
    /// |---|---|
    /// | status | as is: `OK`, `PONG` |
    /// | error | `(error) ` + message: `(error) ERR unknown command ...` |
    /// | integer | decimal: `0`, `-2` |
    /// | bulk string | its bytes (lossy UTF-8); `(nil)` when null |
    /// | array | `1) a\n2) b`, nested ones indented; `(empty array)`; `(nil)` when null |
    ///
    /// A refused `AUTH` (e.g. after `CONFIG SET requirepass`) is returned as
    /// its `(error) ...` reply, in place of the command's.
    ///
    /// # Panics
    ///
    /// If `args` is empty, or the server cannot be reached or does not reply
    /// within 5 s (e.g. it is paused, stopped or killed).
    ///
    /// ```
    /// let server = rc::testing::RedisServer::start();
    /// assert_eq!(server.cli(&["SET", "k", "v", "EX", "100"]), "OK");
    /// assert_eq!(server.cli(&["TTL", "k"]), "100");
    /// assert_eq!(server.cli(&["GET", "missing"]), "(nil)");
    /// assert!(server.cli(&["NOSUCHCOMMAND"]).starts_with("(error) ERR"));
    /// ```
    pub fn cli(&self, args: &[&str]) -> String {
        assert!(!args.is_empty(), "RedisServer::cli needs a command");
        match self.call(args, CLI_TIMEOUT) {
            Ok(reply) => Reply(&reply).to_string(),
            Err(e) => panic!(
                "RedisServer::cli({:?}) on {}: {e} (is the server paused, stopped or killed?)",
                args[0],
                self.address()
            ),
        }
    }

    /// As [`cli`](Self::cli), but an unreachable server or one that does not
    /// reply within `timeout` is an error, not a panic.
    pub(crate) fn try_cli(&self, args: &[&str], timeout: Duration) -> redis::RedisResult<String> {
        assert!(!args.is_empty(), "RedisServer::try_cli needs a command");
        self.call(args, timeout)
            .map(|reply| Reply(&reply).to_string())
    }

    /// Frozen by [`pause`](Self::pause) and not resumed since (and still running).
    pub(crate) fn is_paused(&self) -> bool {
        let mut state = self.lock();
        is_alive(&mut state) && state.paused
    }

    /// The cluster bus port (`cluster-port`) of a cluster node.
    pub(crate) fn bus_port(&self) -> Option<u16> {
        self.bus_port
    }

    /// `127.0.0.1:PORT`, or `unix:/path` for a unix-socket server.
    pub(crate) fn address(&self) -> String {
        match (&self.socket, self.port) {
            (Some(socket), _) => format!("unix:{}", socket.display()),
            (None, port) => format!("127.0.0.1:{}", port.unwrap_or(0)),
        }
    }

    /// Runs `args` on a fresh connection, after `AUTH` when the server has a
    /// password; a refused `AUTH` is the reply.
    fn call(&self, args: &[&str], timeout: Duration) -> redis::RedisResult<Value> {
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        self.query(&command, timeout)
    }

    /// Runs `command` on a fresh connection, after `AUTH` when the server has
    /// a password; a refused `AUTH` is the reply.
    pub(crate) fn query(
        &self,
        command: &redis::Cmd,
        timeout: Duration,
    ) -> redis::RedisResult<Value> {
        let mut conn = self.connect(timeout)?;
        if let Some(password) = &self.password {
            let auth = conn.req_command(redis::cmd("AUTH").arg(password))?;
            if matches!(auth, Value::ServerError(_)) {
                return Ok(auth);
            }
        }
        conn.req_command(command)
    }

    /// A plain RESP2 connection (over TLS to a TLS server): no `AUTH`,
    /// `HELLO` or `CLIENT SETINFO` on connect, so that [`call`](Self::call)
    /// sees the server's own replies.
    fn connect(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
        let settings = RedisConnectionInfo::default().set_skip_set_lib_name();
        let client = match (&self.socket, self.port, &self.tls) {
            (Some(socket), ..) => redis::Client::open(
                ConnectionAddr::Unix(socket.clone())
                    .into_connection_info()?
                    .set_redis_settings(settings),
            )?,
            (None, port, Some(certs)) => tls::client(certs, port.unwrap_or(0), settings)?,
            (None, port, None) => redis::Client::open(
                ConnectionAddr::Tcp("127.0.0.1".to_owned(), port.unwrap_or(0))
                    .into_connection_info()?
                    .set_redis_settings(settings),
            )?,
        };
        let conn = client.get_connection_with_timeout(timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(timeout))?;
        Ok(conn)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spawns the process from `self.conf` and waits until it answers.
    fn launch(&self, state: &mut State) -> io::Result<()> {
        let output = File::create(self.dir().join("output.log"))?;
        let mut command = Command::new(BINARY);
        command.arg(&self.conf);
        if self.sentinel {
            command.arg("--sentinel");
        }
        command
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        let child = spawn_tied_to_process(command).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => io::Error::new(io::ErrorKind::NotFound, NOT_FOUND),
            _ => io::Error::new(e.kind(), format!("cannot run {BINARY}: {e}")),
        })?;
        state.pid = child.id();
        state.child = Some(child);
        state.paused = false;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let child = state.child.as_mut().expect("just spawned");
            if let Some(status) = child.try_wait()? {
                state.child = None;
                let tail = self.log_tail();
                let kind = if tail.contains("Address already in use") {
                    io::ErrorKind::AddrInUse
                } else {
                    io::ErrorKind::Other
                };
                return Err(io::Error::new(
                    kind,
                    format!(
                        "redis-server on {} exited while starting ({status}); log:\n{tail}",
                        self.address()
                    ),
                ));
            }
            if self.probe(state.pid) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                kill_child(state);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server on {} did not answer PING within {START_TIMEOUT:?}; log:\n{}",
                        self.address(),
                        self.log_tail()
                    ),
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// `PING` answers `PONG` (`NOAUTH` with a password), and the server that
    /// answers is our process, not another one that holds the port.
    fn probe(&self, pid: u32) -> bool {
        let ours = || -> redis::RedisResult<bool> {
            let mut conn = self.connect(PROBE_TIMEOUT)?;
            match (conn.req_command(&redis::cmd("PING"))?, &self.password) {
                (Value::SimpleString(s), None) if s == "PONG" => {}
                (Value::ServerError(e), Some(password)) if e.code() == "NOAUTH" => {
                    let auth = conn.req_command(redis::cmd("AUTH").arg(password))?;
                    if !matches!(auth, Value::Okay) {
                        return Ok(false);
                    }
                }
                _ => return Ok(false),
            }
            let Value::BulkString(info) = conn.req_command(redis::cmd("INFO").arg("server"))?
            else {
                return Ok(false);
            };
            let want = format!("process_id:{pid}");
            Ok(String::from_utf8_lossy(&info)
                .lines()
                .any(|l| l.trim() == want))
        };
        ours().unwrap_or(false)
    }

    /// The last lines of the server's log and of its stdout/stderr.
    pub(crate) fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["redis.log", "output.log"] {
            let text = fs::read_to_string(self.dir().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                out += &format!("--- {name} (last lines) ---\n");
                for line in &lines[lines.len().saturating_sub(20)..] {
                    out += line;
                    out.push('\n');
                }
            }
        }
        if out.is_empty() {
            out = "(empty)\n".to_owned();
        }
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        kill_child(state);
        // Then the `TempDir` field removes the dir.
    }
}

/// Whether the process is alive; forgets it once it has been reaped.
///
/// `try_wait` returning `None` means the process is not reaped yet, so its
/// pid cannot have been reused by another process.
fn is_alive(state: &mut State) -> bool {
    let alive = match &mut state.child {
        Some(child) => matches!(child.try_wait(), Ok(None)),
        None => false,
    };
    if !alive {
        state.child = None;
        state.paused = false;
    }
    alive
}

fn kill_child(state: &mut State) {
    if let Some(mut child) = state.child.take() {
        // Fails only if it was already reaped, which `wait` then reports.
        let _ = child.kill();
        let _ = child.wait();
    }
    state.paused = false;
}

/// The signals [`RedisServer::pause`] and [`RedisServer::resume`] send.
#[derive(Clone, Copy)]
enum Signal {
    /// `SIGSTOP`
    Stop,
    /// `SIGCONT`
    Continue,
}

/// Sends `signal` to the running process; `what` names the caller in panics.
#[cfg(unix)]
fn signal(state: &mut State, signal: Signal, what: &str) {
    let pid = state.pid;
    assert!(
        is_alive(state),
        "RedisServer::{what}: redis-server (pid {pid}) is not running"
    );
    let signal = match signal {
        Signal::Stop => libc::SIGSTOP,
        Signal::Continue => libc::SIGCONT,
    };
    let pid = libc::pid_t::try_from(pid).expect("pid fits in pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } != 0 {
        panic!(
            "RedisServer::{what}: kill({pid}): {}",
            io::Error::last_os_error()
        );
    }
}

/// Without unix signals a process cannot be frozen.
#[cfg(not(unix))]
fn signal(state: &mut State, signal: Signal, what: &str) {
    let pid = state.pid;
    assert!(
        is_alive(state),
        "RedisServer::{what}: redis-server (pid {pid}) is not running"
    );
    let name = match signal {
        Signal::Stop => "SIGSTOP",
        Signal::Continue => "SIGCONT",
    };
    panic!("RedisServer::{what} sends {name}, a unix signal this platform does not have");
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A new private dir (mode 700 on unix), short enough for a unix socket path
/// inside it; removed when dropped.
fn make_temp_dir() -> io::Result<TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("rc-redis-");
    #[allow(unused_mut)]
    let mut base = std::env::temp_dir();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o700));
        // sun_path holds 104 to 108 bytes; leave room for "/rc-redis-…/redis.sock".
        if base.as_os_str().len() > 60 {
            base = PathBuf::from("/tmp");
        }
    }
    builder.tempdir_in(&base)
}

/// A `redis.conf` double-quoted argument.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() => out += &format!("\\x{:02x}", c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A reply as [`RedisServer::cli`] shows it.
struct Reply<'a>(&'a Value);

impl fmt::Display for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Okay => f.write_str("OK"),
            Value::SimpleString(s) => f.write_str(s),
            Value::ServerError(e) => match e.details() {
                Some(details) => write!(f, "(error) {} {details}", e.code()),
                None => write!(f, "(error) {}", e.code()),
            },
            Value::Int(n) => write!(f, "{n}"),
            Value::BulkString(data) => f.write_str(&String::from_utf8_lossy(data)),
            Value::Nil => f.write_str("(nil)"),
            Value::Array(items) | Value::Set(items) => write_list(f, items.iter()),
            Value::Map(pairs) => write_list(f, pairs.iter().flat_map(|(k, v)| [k, v])),
            Value::Attribute { data, .. } => Reply(data).fmt(f),
            Value::Double(d) => write!(f, "{d}"),
            Value::Boolean(b) => write!(f, "({b})"),
            Value::VerbatimString { text, .. } => f.write_str(text),
            // RESP3-only kinds this RESP2 connection does not receive.
            other => write!(f, "{other:?}"),
        }
    }
}

/// `1) a\n2) b`, the lines of nested items indented; `(empty array)`.
fn write_list<'a>(
    f: &mut fmt::Formatter<'_>,
    items: impl IntoIterator<Item = &'a Value>,
) -> fmt::Result {
    let mut items = items.into_iter().peekable();
    if items.peek().is_none() {
        return f.write_str("(empty array)");
    }
    for (i, item) in items.enumerate() {
        let label = format!("{}) ", i + 1);
        let indent = " ".repeat(label.len());
        if i > 0 {
            f.write_str("\n")?;
        }
        for (j, line) in Reply(item).to_string().split('\n').enumerate() {
            if j > 0 {
                f.write_str("\n")?;
            }
            f.write_str(if j == 0 { &label } else { &indent })?;
            f.write_str(line)?;
        }
    }
    Ok(())
}

/// Spawns `command` so that it is killed when this process exits, even if the
/// `RedisServer` is never dropped (a server in a `static` is not).
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, so
/// every server is forked by one spawner thread that lives as long as the process.
#[cfg(target_os = "linux")]
fn spawn_tied_to_process(command: Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    use std::sync::OnceLock;
    use std::sync::mpsc::{Sender, channel};

    type Request = (Command, Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        thread::Builder::new()
            .name("rc-testing-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
                    unsafe {
                        command.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("cannot start the redis-server spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = channel();
    let sent = spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((command, reply_tx));
    sent.map_err(|_| io::Error::other("the redis-server spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the redis-server spawner thread is gone"))?
}

/// Spawns `command`. Without Linux's `PR_SET_PDEATHSIG`, a server that is
/// never dropped (one in a `static`) outlives this process.
#[cfg(not(target_os = "linux"))]
fn spawn_tied_to_process(mut command: Command) -> io::Result<Child> {
    command.spawn()
}
