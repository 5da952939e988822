//! A throwaway real `redis-server` for tests.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rc_core::HostConfig;

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
/// use rc_testing::RedisServer;
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
}

impl fmt::Debug for RedisServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServerBuilder")
            .field("unix_socket", &self.unix)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("config", &self.config)
            .finish()
    }
}

impl RedisServerBuilder {
    /// `true`: listen only on a unix socket in the temp dir (mode 700, no TCP).
    /// `false` (the default): listen only on a free TCP port of 127.0.0.1.
    pub fn unix_socket(mut self, unix: bool) -> Self {
        self.unix = unix;
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
    /// error holding the tail of its log.
    ///
    /// ```
    /// use rc_testing::RedisServer;
    ///
    /// let bad = RedisServer::builder().config("port", "6379").try_start();
    /// assert_eq!(bad.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn try_start(&self) -> io::Result<RedisServer> {
        self.validate()?;
        let dir = make_temp_dir()?;
        let socket = self.unix.then(|| dir.join("redis.sock"));
        // From here on, dropping `server` kills whatever was spawned and removes `dir`.
        let mut server = RedisServer {
            conf: dir.join("redis.conf"),
            dir,
            port: None,
            socket,
            password: self.password.clone(),
            state: Mutex::new(State {
                child: None,
                pid: 0,
            }),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            if !self.unix {
                server.port = Some(free_port()?);
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
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        for (name, value) in &self.config {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return bad(format!("invalid redis.conf directive name {name:?}"));
            }
            if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
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
        let mut lines = vec![
            format!("port {}", server.port.unwrap_or(0)),
            "bind 127.0.0.1".to_owned(),
            "save \"\"".to_owned(),
            "appendonly no".to_owned(),
            "daemonize no".to_owned(),
            format!("dir {}", quote(&server.dir.to_string_lossy())),
            format!(
                "logfile {}",
                quote(&server.dir.join("redis.log").to_string_lossy())
            ),
        ];
        if let Some(socket) = &server.socket {
            lines.push(format!("unixsocket {}", quote(&socket.to_string_lossy())));
            lines.push("unixsocketperm 700".to_owned());
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
/// ```
/// use rc_testing::RedisServer;
///
/// let server = RedisServer::start();
/// assert_eq!(server.cli(&["SET", "greeting", "hello"]), "OK");
/// assert_eq!(server.cli(&["GET", "greeting"]), "hello");
/// assert!(server.url().starts_with("redis://127.0.0.1:"));
/// ```
pub struct RedisServer {
    dir: PathBuf,
    conf: PathBuf,
    port: Option<u16>,
    socket: Option<PathBuf>,
    password: Option<String>,
    state: Mutex<State>,
}

struct State {
    /// `None` once the process has been reaped.
    child: Option<Child>,
    /// Pid of the latest process.
    pid: u32,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("pid", &self.pid())
            .field("port", &self.port)
            .field("socket", &self.socket)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dir", &self.dir)
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
    /// let server = rc_testing::RedisServer::start();
    /// assert_eq!(server.cli(&["PING"]), "PONG");
    /// ```
    pub fn start() -> RedisServer {
        RedisServer::builder().start()
    }

    /// A builder for a server with a unix socket, a password or extra directives.
    ///
    /// ```
    /// let server = rc_testing::RedisServer::builder().unix_socket(true).start();
    /// assert!(server.socket_path().is_some() && server.port().is_none());
    /// ```
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The URL to connect to it: `redis://127.0.0.1:PORT` (with `:password@`
    /// when one is set) or `redis+unix:///path/to/redis.sock` (with
    /// `?pass=password`). The password is percent-encoded.
    ///
    /// ```
    /// let server = rc_testing::RedisServer::builder().password("pw").start();
    /// let port = server.port().unwrap();
    /// assert_eq!(server.url(), format!("redis://:pw@127.0.0.1:{port}"));
    /// ```
    pub fn url(&self) -> String {
        let password = self.password.as_deref().map(|p| percent_encode(p, false));
        match (&self.socket, self.port) {
            (Some(socket), _) => {
                let path = percent_encode(&socket.to_string_lossy(), true);
                match password {
                    Some(p) => format!("redis+unix://{path}?pass={p}"),
                    None => format!("redis+unix://{path}"),
                }
            }
            (None, port) => {
                let port = port.expect("a TCP server has a port");
                match password {
                    Some(p) => format!("redis://:{p}@127.0.0.1:{port}"),
                    None => format!("redis://127.0.0.1:{port}"),
                }
            }
        }
    }

    /// Where it listens (and its password), as an rc [`HostConfig`].
    ///
    /// ```
    /// let server = rc_testing::RedisServer::start();
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
        match &self.password {
            Some(p) => config.password(p.clone()),
            None => config,
        }
    }

    /// Its TCP port; `None` for a unix-socket server.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Its unix socket; `None` for a TCP server.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// Its temp dir (holds `redis.conf`, `redis.log`, and the socket), removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Pid of the process (the latest one after [`restart`](Self::restart)).
    pub fn pid(&self) -> u32 {
        self.lock().pid
    }

    /// Freezes the process (`SIGSTOP`): connections stay open but nothing is
    /// answered, like a hung server. Undo with [`resume`](Self::resume).
    ///
    /// # Panics
    ///
    /// If the process is not running.
    ///
    /// ```
    /// let server = rc_testing::RedisServer::start();
    /// server.stop();
    /// assert!(server.is_running()); // frozen, not gone
    /// server.resume();
    /// assert_eq!(server.cli(&["PING"]), "PONG");
    /// ```
    pub fn stop(&self) {
        self.signal(libc::SIGSTOP, "stop");
    }

    /// Lets a process frozen by [`stop`](Self::stop) run again (`SIGCONT`).
    ///
    /// # Panics
    ///
    /// If the process is not running.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT, "resume");
    }

    /// Kills the process (`SIGKILL`) and waits for it to end, like a crash;
    /// its data is gone. Does nothing if it is not running. Bring it back with
    /// [`restart`](Self::restart).
    ///
    /// ```
    /// let server = rc_testing::RedisServer::start();
    /// server.kill();
    /// assert!(!server.is_running());
    /// ```
    pub fn kill(&self) {
        kill_child(&mut self.lock());
    }

    /// Starts the server again, on the same port or socket with the same
    /// configuration (killing the running process first, if any), and waits
    /// until it answers `PING`. It starts empty.
    ///
    /// # Panics
    ///
    /// If it cannot be started again (e.g. another process took the port).
    ///
    /// ```
    /// let server = rc_testing::RedisServer::start();
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

    /// Whether the process is alive (a process frozen by [`stop`](Self::stop) is).
    pub fn is_running(&self) -> bool {
        let mut state = self.lock();
        let running = match &mut state.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        };
        if !running {
            state.child = None;
        }
        running
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
    /// # Panics
    ///
    /// If `args` is empty, or the server cannot be reached or does not reply
    /// within 5 s (e.g. it is stopped or killed).
    ///
    /// ```
    /// let server = rc_testing::RedisServer::start();
    /// assert_eq!(server.cli(&["SET", "k", "v", "EX", "100"]), "OK");
    /// assert_eq!(server.cli(&["TTL", "k"]), "100");
    /// assert_eq!(server.cli(&["GET", "missing"]), "(nil)");
    /// assert!(server.cli(&["NOSUCHCOMMAND"]).starts_with("(error) ERR"));
    /// ```
    pub fn cli(&self, args: &[&str]) -> String {
        assert!(!args.is_empty(), "RedisServer::cli needs a command");
        let reply = (|| {
            let mut conn = self.connect(CLI_TIMEOUT)?;
            if let Some(password) = &self.password {
                let auth = conn.call(&["AUTH", password])?;
                if matches!(auth, Reply::Error(_)) {
                    return Ok(auth);
                }
            }
            conn.call(args)
        })();
        match reply {
            Ok(reply) => reply.to_string(),
            Err(e) => panic!(
                "RedisServer::cli({:?}) on {}: {e} (is the server stopped or killed?)",
                args[0],
                self.address()
            ),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn address(&self) -> String {
        match (&self.socket, self.port) {
            (Some(socket), _) => format!("unix:{}", socket.display()),
            (None, port) => format!("127.0.0.1:{}", port.unwrap_or(0)),
        }
    }

    fn signal(&self, signal: libc::c_int, what: &str) {
        let mut state = self.lock();
        let pid = state.pid;
        // `try_wait` returning `None` means the process is not reaped yet, so
        // its pid cannot have been reused by another process.
        let alive = match &mut state.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        };
        assert!(
            alive,
            "RedisServer::{what}: redis-server (pid {pid}) is not running"
        );
        let pid = libc::pid_t::try_from(pid).expect("pid fits in pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(pid, signal) } != 0 {
            panic!(
                "RedisServer::{what}: kill({pid}): {}",
                io::Error::last_os_error()
            );
        }
    }

    /// Spawns the process from `self.conf` and waits until it answers.
    fn launch(&self, state: &mut State) -> io::Result<()> {
        let output = File::create(self.dir.join("output.log"))?;
        let mut command = Command::new(BINARY);
        command
            .arg(&self.conf)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        let child = spawn_tied_to_process(command).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => io::Error::new(io::ErrorKind::NotFound, NOT_FOUND),
            _ => io::Error::new(e.kind(), format!("cannot run {BINARY}: {e}")),
        })?;
        state.pid = child.id();
        state.child = Some(child);
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

    /// `PING` answers `+PONG` (`-NOAUTH` with a password), and the server that
    /// answers is our process, not another one that holds the port.
    fn probe(&self, pid: u32) -> bool {
        let ours = || -> io::Result<bool> {
            let mut conn = self.connect(PROBE_TIMEOUT)?;
            match (conn.call(&["PING"])?, &self.password) {
                (Reply::Simple(s), None) if s == "PONG" => {}
                (Reply::Error(e), Some(password)) if e.starts_with("NOAUTH") => {
                    if !matches!(conn.call(&["AUTH", password])?, Reply::Simple(_)) {
                        return Ok(false);
                    }
                }
                _ => return Ok(false),
            }
            let Reply::Bulk(Some(info)) = conn.call(&["INFO", "server"])? else {
                return Ok(false);
            };
            let want = format!("process_id:{pid}");
            Ok(String::from_utf8_lossy(&info)
                .lines()
                .any(|l| l.trim() == want))
        };
        ours().unwrap_or(false)
    }

    fn connect(&self, timeout: Duration) -> io::Result<Conn> {
        let stream = match (&self.socket, self.port) {
            (Some(socket), _) => {
                let s = UnixStream::connect(socket)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                Stream::Unix(s)
            }
            (None, port) => {
                let addr = SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0)));
                let s = TcpStream::connect_timeout(&addr, timeout)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
        };
        Ok(Conn(BufReader::new(stream)))
    }

    /// The last lines of the server's log and of its stdout/stderr.
    fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["redis.log", "output.log"] {
            let text = fs::read_to_string(self.dir.join(name)).unwrap_or_default();
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
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn kill_child(state: &mut State) {
    if let Some(mut child) = state.child.take() {
        // Fails only if it was already reaped, which `wait` then reports.
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A new private dir, short enough for a unix socket path inside it.
fn make_temp_dir() -> io::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut base = std::env::temp_dir();
    // sun_path holds 108 bytes; leave room for "/rc-redis-…/redis.sock".
    if base.as_os_str().len() > 60 {
        base = PathBuf::from("/tmp");
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("rc-redis-{}-{n}-{nanos:x}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", dir.display()),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot create a temp dir")))
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

fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// A RESP2 connection.
struct Conn(BufReader<Stream>);

impl Conn {
    fn call(&mut self, args: &[&str]) -> io::Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        self.0.get_mut().write_all(&request)?;
        self.read_reply()
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        self.0.read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\r\n") {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-reply",
            ));
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad RESP reply line {line:?}"),
            )
        };
        let Some(kind) = line.chars().next() else {
            return Err(bad());
        };
        let rest = &line[1..];
        let length = || rest.parse::<i64>().map_err(|_| bad());
        Ok(match kind {
            '+' => Reply::Simple(rest.to_owned()),
            '-' => Reply::Error(rest.to_owned()),
            ':' => Reply::Integer(length()?),
            '$' => match usize::try_from(length()?) {
                Err(_) => Reply::Bulk(None),
                Ok(n) => {
                    let mut data = vec![0; n + 2];
                    self.0.read_exact(&mut data)?;
                    data.truncate(n);
                    Reply::Bulk(Some(data))
                }
            },
            '*' => match usize::try_from(length()?) {
                Err(_) => Reply::Array(None),
                Ok(n) => Reply::Array(Some(
                    (0..n)
                        .map(|_| self.read_reply())
                        .collect::<io::Result<_>>()?,
                )),
            },
            _ => return Err(bad()),
        })
    }
}

enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Simple(s) => f.write_str(s),
            Reply::Error(e) => write!(f, "(error) {e}"),
            Reply::Integer(n) => write!(f, "{n}"),
            Reply::Bulk(Some(data)) => f.write_str(&String::from_utf8_lossy(data)),
            Reply::Bulk(None) | Reply::Array(None) => f.write_str("(nil)"),
            Reply::Array(Some(items)) if items.is_empty() => f.write_str("(empty array)"),
            Reply::Array(Some(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let label = format!("{}) ", i + 1);
                    let indent = " ".repeat(label.len());
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    for (j, line) in item.to_string().split('\n').enumerate() {
                        if j > 0 {
                            f.write_str("\n")?;
                        }
                        f.write_str(if j == 0 { &label } else { &indent })?;
                        f.write_str(line)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Spawns `command` so that it is killed when this process exits, even if the
/// `RedisServer` is never dropped (a server in a `static` is not).
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, so
/// every server is forked by one spawner thread that lives as long as the process.
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
