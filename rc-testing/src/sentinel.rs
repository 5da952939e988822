//! A throwaway Redis Sentinel set-up of real processes for tests.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use redis::Value;

use crate::server::RedisServer;
use crate::tls::TestCertificates;

/// Connect/read/write timeout of the commands the waits send.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between two checks of a bounded wait.
const POLL: Duration = Duration::from_millis(50);
/// Every bounded wait lasts at most this, plus five `down-after-milliseconds`
/// and two failover timeouts.
const WAIT_BASE: Duration = Duration::from_secs(20);
/// How many Sentinels watch the primary; a quorum of 2 agrees it is down.
const SENTINELS: usize = 3;
const QUORUM: usize = 2;

/// Configures a [`RedisSentinel`] before starting it; made by
/// [`RedisSentinel::builder`]. Defaults: master name `mymaster`, no
/// password, `down-after-milliseconds` 1000, `failover-timeout` 3000.
///
/// ```
/// use std::time::Duration;
/// use rc::testing::RedisSentinel;
///
/// let sentinel = RedisSentinel::builder()
///     .master_name("cache")
///     .password("s3cret")
///     .down_after(Duration::from_millis(500))
///     .start();
/// assert_eq!(sentinel.master_name(), "cache");
/// assert_eq!(sentinel.cli_primary(&["SET", "k", "v"]), "OK");
/// ```
#[derive(Clone)]
pub struct RedisSentinelBuilder {
    master_name: String,
    password: Option<String>,
    down_after: Duration,
    failover_timeout: Duration,
    /// Every process talks TLS only, with these files.
    tls: Option<TestCertificates>,
}

impl Default for RedisSentinelBuilder {
    fn default() -> Self {
        RedisSentinelBuilder {
            master_name: "mymaster".to_owned(),
            password: None,
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_millis(3000),
            tls: None,
        }
    }
}

impl fmt::Debug for RedisSentinelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinelBuilder")
            .field("master_name", &self.master_name)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("down_after", &self.down_after)
            .field("failover_timeout", &self.failover_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisSentinelBuilder {
    /// The name the Sentinels monitor the primary under (default `mymaster`);
    /// letters, digits, `.`, `-` and `_` only.
    pub fn master_name(mut self, name: &str) -> Self {
        self.master_name = name.to_owned();
        self
    }

    /// The primary and the replica require this password (`requirepass`,
    /// `masterauth`), which the Sentinels use (`sentinel auth-pass`). The
    /// Sentinels themselves require none.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// `sentinel down-after-milliseconds` (default 1 s): how long the
    /// primary may be unreachable before a Sentinel flags it as down.
    pub fn down_after(mut self, down_after: Duration) -> Self {
        self.down_after = down_after;
        self
    }

    /// `sentinel failover-timeout` (default 3 s). After an automatic
    /// failover of the primary was attempted, the Sentinels wait twice this
    /// before trying again.
    pub fn failover_timeout(mut self, timeout: Duration) -> Self {
        self.failover_timeout = timeout;
        self
    }

    /// Every process talks TLS only, with the certificate and key of `certs`
    /// (see [`RedisServerBuilder::tls`](crate::RedisServerBuilder::tls)):
    /// the primary and the replica to clients and in replication
    /// (`tls-replication yes`), and the Sentinels to clients, to the data
    /// servers and to each other (a Sentinel's `tls-replication yes` makes
    /// all its own connections TLS, and it announces its TLS port). Every
    /// port is a TLS port: the Sentinels report the primary's, and
    /// [`RedisSentinel::sentinel_urls`] are `rediss://…` URLs, to be used
    /// with [`TestCertificates::ssl_options`] (a URL cannot carry the CA).
    ///
    /// Needs rc's `tls` feature: without it, [`start`](Self::start) panics.
    ///
    /// ```no_run
    /// // With `--features tls`.
    /// use rc::testing::{RedisSentinel, TestCertificates};
    ///
    /// let certs = TestCertificates::generate();
    /// let sentinel = RedisSentinel::builder().tls(&certs).start();
    /// assert!(sentinel.sentinel_urls()[0].starts_with("rediss://127.0.0.1:"));
    /// let cache = rc::Cache::builder()
    ///     .sentinel(sentinel.master_name(), sentinel.sentinel_urls())
    ///     .ssl_options(certs.ssl_options()) // for the Sentinels and the primary
    ///     .build()?;
    /// assert!(cache.set("k", &1, None)?);
    /// assert_eq!(sentinel.cli_primary(&["GET", "k"]), "1");
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub fn tls(mut self, certs: &TestCertificates) -> Self {
        self.tls = Some(certs.clone());
        self
    }

    /// Starts the primary, its replica (`replicaof`) and three Sentinels
    /// (`redis-server <conf> --sentinel`, quorum 2), and waits until the
    /// replica is in sync and every Sentinel sees the primary as up, the
    /// replica and the two other Sentinels.
    ///
    /// # Panics
    ///
    /// If the master name is invalid, a process cannot be started (e.g.
    /// `redis-server` is not on `PATH`), or the set-up is not ready in time
    /// (the message says what was missing).
    pub fn start(&self) -> RedisSentinel {
        assert!(
            !self.master_name.is_empty()
                && self
                    .master_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
            "RedisSentinel: invalid master name {:?}",
            self.master_name
        );
        let mut data = RedisServer::builder().config("repl-diskless-sync-delay", "0");
        if let Some(password) = &self.password {
            data = data.password(password).directive("masterauth", &[password]);
        }
        if let Some(certs) = &self.tls {
            data = data.tls(certs);
        }
        let primary = data.start();
        let primary_port = primary.port().expect("TCP server").to_string();
        let replica = data
            .clone()
            .config("replicaof", &format!("127.0.0.1 {primary_port}"))
            .start();

        let name = &self.master_name;
        let mut sentinel = RedisServer::builder()
            .sentinel_mode()
            .config(
                "sentinel",
                &format!("monitor {name} 127.0.0.1 {primary_port} {QUORUM}"),
            )
            .config(
                "sentinel",
                &format!(
                    "down-after-milliseconds {name} {}",
                    self.down_after.as_millis().max(1)
                ),
            )
            .config(
                "sentinel",
                &format!(
                    "failover-timeout {name} {}",
                    self.failover_timeout.as_millis().max(1)
                ),
            );
        if let Some(password) = &self.password {
            sentinel = sentinel.directive("sentinel", &["auth-pass", name, password]);
        }
        if let Some(certs) = &self.tls {
            sentinel = sentinel.tls(certs);
        }
        let sentinels = sentinel.start_many(SENTINELS, "RedisSentinel: cannot start a sentinel");
        let set_up = RedisSentinel {
            sentinels,
            servers: [primary, replica],
            master_name: self.master_name.clone(),
            primary: Mutex::new(0),
            limit: WAIT_BASE + self.down_after * 5 + self.failover_timeout * 2,
        };
        set_up.wait_ready(
            0,
            Stage::SetUp,
            "the replica to sync and every sentinel to see both",
        );
        set_up
    }
}

/// A Redis Sentinel set-up for tests: a primary, one replica and three
/// Sentinels (quorum 2), each a [`RedisServer`] on a free port of 127.0.0.1
/// in its own temp dir. Dropping it (also while a test panics) kills every
/// process and removes the temp dirs.
///
/// The two data servers keep their indexes in [`servers`](Self::servers)
/// (`0` starts as the primary); [`primary`](Self::primary) and
/// [`replica`](Self::replica) follow failovers. Every wait is bounded and
/// panics with what it waited for.
///
/// ```
/// use rc::testing::RedisSentinel;
///
/// let sentinel = RedisSentinel::start();
/// assert_eq!(sentinel.sentinel_urls().len(), 3);
/// let before = sentinel.primary().port();
/// let after = sentinel.failover();
/// assert_ne!(Some(after.port()), before);
/// assert_eq!(sentinel.cli_primary(&["SET", "k", "v"]), "OK");
/// ```
pub struct RedisSentinel {
    /// Dropped first, so they do not react to the data servers going away.
    sentinels: Vec<RedisServer>,
    servers: [RedisServer; 2],
    master_name: String,
    /// Index in `servers` of the last primary the Sentinels agreed on.
    primary: Mutex<usize>,
    /// Bound of every wait.
    limit: Duration,
}

impl fmt::Debug for RedisSentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinel")
            .field("master_name", &self.master_name)
            .field("servers", &self.servers)
            .field("sentinels", &self.sentinels)
            .finish()
    }
}

impl RedisSentinel {
    /// Starts a primary, a replica and three Sentinels with the defaults
    /// (see [`RedisSentinelBuilder`]).
    ///
    /// # Panics
    ///
    /// As [`RedisSentinelBuilder::start`].
    pub fn start() -> RedisSentinel {
        RedisSentinel::builder().start()
    }

    /// A builder for another master name, a password or other timings.
    pub fn builder() -> RedisSentinelBuilder {
        RedisSentinelBuilder::default()
    }

    /// The name the Sentinels monitor the primary under.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// `redis://127.0.0.1:PORT` of every Sentinel (`rediss://` on a
    /// [TLS](RedisSentinelBuilder::tls) set-up).
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::url).collect()
    }

    /// The three Sentinels (e.g. to kill or pause one).
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// The two data servers: `0` started as the primary, `1` as its replica.
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The primary: the data server the first answering Sentinel reports
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`); the last one they agreed on if
    /// none answers. Its `port()` and `url()` say where it is.
    pub fn primary(&self) -> &RedisServer {
        let reported = self
            .sentinels
            .iter()
            .filter(|s| s.is_running() && !s.is_paused())
            .find_map(|s| self.reported_primary(s).ok())
            .and_then(|addr| self.index_of(addr));
        &self.servers[reported.unwrap_or_else(|| *self.last_primary())]
    }

    /// The data server that is not [`primary`](Self::primary).
    pub fn replica(&self) -> &RedisServer {
        let primary = self.primary();
        if std::ptr::eq(primary, &self.servers[0]) {
            &self.servers[1]
        } else {
            &self.servers[0]
        }
    }

    /// Runs one command on the [`primary`](Self::primary) (see
    /// [`RedisServer::cli`]).
    pub fn cli_primary(&self, args: &[&str]) -> String {
        self.primary().cli(args)
    }

    /// Forces a failover (`SENTINEL FAILOVER <name>` through a Sentinel,
    /// retried while it answers `NOGOODSLAVE` or `INPROG`) and waits until
    /// every running Sentinel reports the replica's address as the
    /// primary's, the replica says `role:master`, and the former primary
    /// is its replica and in sync (see
    /// [`wait_for_new_primary`](Self::wait_for_new_primary)). Returns the new
    /// primary's address. Takes about 1 to 2 s.
    ///
    /// # Panics
    ///
    /// If no Sentinel accepts the failover, or it does not complete in time.
    pub fn failover(&self) -> SocketAddr {
        let deadline = Instant::now() + self.limit;
        let command = ["SENTINEL", "FAILOVER", self.master_name.as_str()];
        let mut last = String::new();
        'accepted: loop {
            for s in &self.sentinels {
                if !s.is_running() || s.is_paused() {
                    continue;
                }
                match s.try_cli(&command, PROBE_TIMEOUT) {
                    Ok(reply) if reply == "OK" => break 'accepted,
                    Ok(reply) => last = reply,
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "RedisSentinel: no sentinel accepted `{}` within {:?}; last reply: {last}",
                    command.join(" "),
                    self.limit
                );
            }
            thread::sleep(POLL);
        }
        self.wait_for_new_primary()
    }

    /// Kills the current [`primary`](Self::primary) (`SIGKILL`). The
    /// Sentinels promote the replica after `down-after-milliseconds` plus
    /// their agreement and election: see
    /// [`wait_for_new_primary`](Self::wait_for_new_primary).
    pub fn kill_primary(&self) {
        self.primary().kill();
    }

    /// Waits (bounded) until every running Sentinel reports the same
    /// primary address, other than the last one they agreed on, and the
    /// server there says `role:master`. Returns the new primary's address.
    /// After [`kill_primary`](Self::kill_primary) with the default timings
    /// this takes about 3 to 5 s.
    ///
    /// If the former primary runs (a forced [`failover`](Self::failover), or
    /// a paused primary that was resumed), it is then made the new
    /// primary's replica (`REPLICAOF`) and the wait lasts until it is in
    /// sync. The Sentinels would do that themselves, but only 10 to 20 s
    /// later (they check a demoted primary's role every 10 s and leave it
    /// 8 s); meanwhile it would still accept writes.
    ///
    /// # Panics
    ///
    /// If that does not happen in time; the message holds what each
    /// Sentinel reported.
    pub fn wait_for_new_primary(&self) -> SocketAddr {
        let old = *self.last_primary();
        let new = 1 - old;
        let addr = self.addr(new);
        self.wait_ready(
            new,
            Stage::Switched,
            "the sentinels to switch to the other server",
        );
        *self.last_primary() = new;
        let former = &self.servers[old];
        if former.is_running() && !former.is_paused() {
            let port = addr.port().to_string();
            let reply = former.cli(&["REPLICAOF", "127.0.0.1", &port]);
            assert!(
                reply.starts_with("OK"),
                "RedisSentinel: REPLICAOF {addr} on the former primary {}: {reply}",
                former.address()
            );
            self.wait_ready(
                new,
                Stage::Synced,
                "the former primary to sync from the new one",
            );
        }
        addr
    }

    /// Waits until `check(primary, stage)` passes.
    fn wait_ready(&self, primary: usize, stage: Stage, what: &str) {
        let deadline = Instant::now() + self.limit;
        loop {
            let problem = match self.check(primary, stage) {
                Ok(()) => return,
                Err(problem) => problem,
            };
            if Instant::now() >= deadline {
                let reports: Vec<String> = self
                    .sentinels
                    .iter()
                    .map(|s| match self.reported_primary(s) {
                        Ok(addr) => format!("{} reports {addr}", s.address()),
                        Err(e) => format!("{}: {e}", s.address()),
                    })
                    .collect();
                panic!(
                    "RedisSentinel: timed out after {:?} waiting for {what} (primary {}); last \
                     problem: {problem}; sentinels: {}",
                    self.limit,
                    self.servers[primary].address(),
                    reports.join(", ")
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Whether server `primary` is the primary everywhere, and as far as
    /// `stage` asks, its replica is in sync and seen by the Sentinels.
    fn check(&self, primary: usize, stage: Stage) -> Result<(), String> {
        let want = self.addr(primary);
        let main = &self.servers[primary];
        let other = &self.servers[1 - primary];
        let role = self.probe(main, &["ROLE"])?;
        if !role.starts_with("1) master") {
            return Err(format!("{} is not a primary yet", main.address()));
        }
        let other_up = other.is_running() && !other.is_paused();
        if other_up && stage != Stage::Switched {
            let info = self.probe(other, &["INFO", "replication"])?;
            let port = format!("master_port:{}", want.port());
            let synced = info.lines().any(|l| l.trim() == "role:slave")
                && info.lines().any(|l| l.trim() == port)
                && info.lines().any(|l| l.trim() == "master_link_status:up");
            if !synced {
                return Err(format!(
                    "{} is not an in-sync replica of {want} yet",
                    other.address()
                ));
            }
        }
        for s in &self.sentinels {
            if !s.is_running() || s.is_paused() {
                continue;
            }
            let reported = self.reported_primary(s)?;
            if reported != want {
                return Err(format!("{} reports {reported}", s.address()));
            }
            let master = self.sentinel_map(s, "MASTER")?;
            let flags = master.get("flags").map(String::as_str).unwrap_or("");
            if flags != "master" {
                return Err(format!("{} flags the primary {flags:?}", s.address()));
            }
            let others = master.get("num-other-sentinels").map(String::as_str);
            if others != Some(&(SENTINELS - 1).to_string()) {
                return Err(format!(
                    "{} knows {} other sentinels",
                    s.address(),
                    others.unwrap_or("?")
                ));
            }
            if other_up && stage == Stage::SetUp {
                let mut cmd = redis::cmd("SENTINEL");
                cmd.arg("REPLICAS").arg(&self.master_name);
                let replicas = match s.query(&cmd, PROBE_TIMEOUT) {
                    Ok(Value::Array(items)) => items,
                    other => return Err(format!("{}: SENTINEL REPLICAS: {other:?}", s.address())),
                };
                let port = other.port().expect("TCP server").to_string();
                let seen = replicas.iter().map(map_of).any(|r| {
                    r.get("port") == Some(&port)
                        && r.get("flags").map(String::as_str) == Some("slave")
                        && r.get("master-link-status").map(String::as_str) == Some("ok")
                });
                if !seen {
                    return Err(format!(
                        "{} does not see {} as an up replica",
                        s.address(),
                        other.address()
                    ));
                }
            }
        }
        Ok(())
    }

    /// What `sentinel` answers to `SENTINEL GET-MASTER-ADDR-BY-NAME`.
    fn reported_primary(&self, sentinel: &RedisServer) -> Result<SocketAddr, String> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("GET-MASTER-ADDR-BY-NAME").arg(&self.master_name);
        let reply = sentinel
            .query(&cmd, PROBE_TIMEOUT)
            .map_err(|e| format!("{}: {e}", sentinel.address()))?;
        let bad = || format!("{}: GET-MASTER-ADDR-BY-NAME: {reply:?}", sentinel.address());
        let Value::Array(items) = &reply else {
            return Err(bad());
        };
        let text: Vec<String> = items.iter().filter_map(text_of).collect();
        match text.as_slice() {
            [ip, port] => {
                let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
                Ok(SocketAddr::from((ip, port.parse().map_err(|_| bad())?)))
            }
            _ => Err(bad()),
        }
    }

    /// `SENTINEL <what> <name>` as a field map.
    fn sentinel_map(
        &self,
        sentinel: &RedisServer,
        what: &str,
    ) -> Result<HashMap<String, String>, String> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg(what).arg(&self.master_name);
        match sentinel.query(&cmd, PROBE_TIMEOUT) {
            Ok(value @ Value::Array(_)) => Ok(map_of(&value)),
            other => Err(format!(
                "{}: SENTINEL {what}: {other:?}",
                sentinel.address()
            )),
        }
    }

    fn probe(&self, server: &RedisServer, args: &[&str]) -> Result<String, String> {
        server
            .try_cli(args, PROBE_TIMEOUT)
            .map_err(|e| format!("{}: {}: {e}", server.address(), args.join(" ")))
    }

    fn addr(&self, server: usize) -> SocketAddr {
        let port = self.servers[server].port().expect("TCP server");
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        (0..2).find(|&i| self.addr(i) == addr)
    }

    fn last_primary(&self) -> MutexGuard<'_, usize> {
        self.primary
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What [`RedisSentinel::check`] checks besides the primary everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The replica in sync, and seen up by every Sentinel.
    SetUp,
    /// Nothing more.
    Switched,
    /// The replica in sync.
    Synced,
}

/// A flat `[field, value, ...]` array reply as a map.
fn map_of(value: &Value) -> HashMap<String, String> {
    let Value::Array(items) = value else {
        return HashMap::new();
    };
    items
        .chunks(2)
        .filter_map(|pair| match pair {
            [k, v] => Some((text_of(k)?, text_of(v)?)),
            _ => None,
        })
        .collect()
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}
