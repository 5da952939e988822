//! A throwaway Redis Cluster of real `redis-server` processes for tests.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use redis::Value;

use crate::server::RedisServer;
use crate::tls::TestCertificates;

/// How many hash slots a Redis Cluster has.
pub const CLUSTER_SLOTS: u16 = 16384;

/// Connect/read/write timeout of the commands the cluster's own waits send.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Timeout of the set-up and migration commands.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two checks of a bounded wait.
const POLL: Duration = Duration::from_millis(50);
/// Every bounded wait lasts at most this, plus five node timeouts.
const WAIT_BASE: Duration = Duration::from_secs(20);
/// Keys moved by one `MIGRATE`.
const MIGRATE_BATCH: usize = 100;
/// Directives [`RedisCluster`] writes itself.
const RESERVED: &[&str] = &[
    "cluster-enabled",
    "cluster-config-file",
    "cluster-node-timeout",
    "cluster-port",
    "requirepass",
    "masterauth",
    "replicaof",
    "slaveof",
];

/// Configures a [`RedisCluster`] before starting it; made by
/// [`RedisCluster::builder`]. Defaults: 3 primaries, 1 replica each, a 2 s
/// node timeout, no password.
///
/// ```
/// use std::time::Duration;
/// use rc::testing::RedisCluster;
///
/// let cluster = RedisCluster::builder()
///     .primaries(3)
///     .replicas(0)
///     .node_timeout(Duration::from_millis(1000))
///     .password("s3cret")
///     .config("maxmemory", "10mb")
///     .start();
/// assert_eq!(cluster.nodes().len(), 3);
/// assert!(cluster.seed_urls()[0].starts_with("redis://:s3cret@127.0.0.1:"));
/// assert_eq!(cluster.cli(0, &["CONFIG", "GET", "maxmemory"]), "1) maxmemory\n2) 10485760");
/// ```
#[derive(Clone)]
pub struct RedisClusterBuilder {
    primaries: usize,
    replicas: usize,
    node_timeout: Duration,
    password: Option<String>,
    config: Vec<(String, String)>,
    tls: Option<TestCertificates>,
}

impl Default for RedisClusterBuilder {
    fn default() -> Self {
        RedisClusterBuilder {
            primaries: 3,
            replicas: 1,
            node_timeout: Duration::from_millis(2000),
            password: None,
            config: Vec::new(),
            tls: None,
        }
    }
}

impl fmt::Debug for RedisClusterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClusterBuilder")
            .field("primaries", &self.primaries)
            .field("replicas", &self.replicas)
            .field("node_timeout", &self.node_timeout)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("config", &self.config)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisClusterBuilder {
    /// How many primaries share the 16384 slots (at least 1; default 3).
    pub fn primaries(mut self, primaries: usize) -> Self {
        self.primaries = primaries;
        self
    }

    /// How many replicas each primary has (default 1). Without replicas, a
    /// killed primary's slots stay down until it is restarted.
    pub fn replicas(mut self, replicas_per_primary: usize) -> Self {
        self.replicas = replicas_per_primary;
        self
    }

    /// `cluster-node-timeout` (default 2 s): how long a node may be
    /// unreachable before it is flagged as failing. A killed or paused
    /// primary's replica takes over about 1 to 3 s after it.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Every node requires this password (`requirepass`, and `masterauth`
    /// for replication); [`RedisCluster::cli`], the nodes' URLs and
    /// [`RedisCluster::seed_urls`] carry it.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Every node talks TLS only, with the certificate and key of `certs`
    /// (see [`RedisServerBuilder::tls`](crate::RedisServerBuilder::tls)):
    /// to clients, to the cluster's own set-up and waits, on the cluster bus
    /// (`tls-cluster yes`), in replication (`tls-replication yes`) and in
    /// [`migrate_slot`](RedisCluster::migrate_slot)'s `MIGRATE`. A node's
    /// port is its TLS port: `CLUSTER SLOTS` and redirections name it, and
    /// [`RedisCluster::seed_urls`] are `rediss://…` URLs, to be used with
    /// [`TestCertificates::ssl_options`] (a URL cannot carry the CA).
    ///
    /// Needs rc's `tls` feature: without it, [`start`](Self::start) panics.
    ///
    /// ```no_run
    /// // With `--features tls`.
    /// use rc::testing::{RedisCluster, TestCertificates};
    ///
    /// let certs = TestCertificates::generate();
    /// let cluster = RedisCluster::builder().replicas(0).tls(&certs).start();
    /// assert!(cluster.seed_urls()[0].starts_with("rediss://127.0.0.1:"));
    /// let cache = rc::Cache::builder()
    ///     .redis_cluster(cluster.seed_urls())
    ///     .ssl_options(certs.ssl_options())
    ///     .build()?;
    /// assert!(cache.set("k", &1, None)?);
    /// assert_eq!(cluster.cli(cluster.primary_for_key("k"), &["GET", "k"]), "1");
    /// # Ok::<(), rc::Error>(())
    /// ```
    pub fn tls(mut self, certs: &TestCertificates) -> Self {
        self.tls = Some(certs.clone());
        self
    }

    /// Adds a `redis.conf` directive to every node, as
    /// [`RedisServerBuilder::config`](crate::RedisServerBuilder::config) does. The cluster's own directives
    /// (`cluster-enabled`, `cluster-config-file`, `cluster-node-timeout`,
    /// `cluster-port`, `requirepass`, `masterauth`, `replicaof`) are refused
    /// by [`start`](Self::start).
    pub fn config(mut self, name: &str, value: &str) -> Self {
        self.config.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the nodes, makes them one cluster, and waits until every node
    /// says `cluster_state:ok`, all slots are covered, every node sees the
    /// same slot map and every replica is in sync with its primary.
    ///
    /// Nodes `0..primaries` are the primaries, primary `p` owning an equal
    /// share of the slots in order (with 3: `0-5460`, `5461-10921`,
    /// `10922-16383`); node `primaries + p * replicas + k` is the `k`-th
    /// replica of primary `p`.
    ///
    /// # Panics
    ///
    /// If `primaries` is 0, a directive is refused, a node cannot be started
    /// (e.g. `redis-server` is not on `PATH`) or the cluster is not ready in
    /// time (the message holds the last `CLUSTER INFO`).
    pub fn start(&self) -> RedisCluster {
        assert!(
            self.primaries > 0,
            "RedisCluster needs at least one primary"
        );
        assert!(
            self.primaries <= usize::from(CLUSTER_SLOTS),
            "RedisCluster: more primaries than slots"
        );
        assert!(
            !self.node_timeout.is_zero(),
            "RedisCluster: the node timeout must be positive"
        );
        for (name, _) in &self.config {
            assert!(
                !RESERVED.contains(&name.to_ascii_lowercase().as_str()),
                "RedisCluster sets `{name}` itself; it cannot be configured"
            );
        }
        let timeout_ms = self.node_timeout.as_millis().max(1).to_string();
        let mut node = RedisServer::builder()
            .cluster_bus()
            .config("cluster-enabled", "yes")
            .config("cluster-config-file", "nodes.conf")
            .config("cluster-node-timeout", &timeout_ms)
            // A replica may take over however long it was cut off (a paused
            // primary's replica too), so failovers in tests always happen.
            .config("cluster-replica-validity-factor", "0")
            // Replicas sync at once, not after the default 5 s wait for others.
            .config("repl-diskless-sync-delay", "0");
        if let Some(password) = &self.password {
            node = node.password(password).directive("masterauth", &[password]);
        }
        if let Some(certs) = &self.tls {
            node = node.tls(certs);
        }
        for (name, value) in &self.config {
            node = node.config(name, value);
        }
        let count = self.primaries * (1 + self.replicas);
        let nodes = node.start_many(count, "RedisCluster: cannot start a node");
        let ids = nodes
            .iter()
            .map(|n| expect_reply(n, &["CLUSTER", "MYID"], "CLUSTER MYID"))
            .collect();
        let cluster = RedisCluster {
            nodes,
            ids,
            primaries: self.primaries,
            replicas: self.replicas,
            node_timeout: self.node_timeout,
            password: self.password.clone(),
            last_owned: Mutex::new(vec![Vec::new(); count]),
        };
        cluster.create();
        cluster
    }
}

/// What a cluster node is, as the cluster sees it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterRole {
    /// A primary (it may own no slots, e.g. an old primary not yet demoted).
    Primary,
    /// A replica of node `primary` (an index in [`RedisCluster::nodes`]).
    Replica {
        /// Index of its primary.
        primary: usize,
    },
}

/// A Redis Cluster for tests: `primaries × (1 + replicas)` real
/// `redis-server` processes in cluster mode on free ports of 127.0.0.1, each a
/// [`RedisServer`] in its own temp dir. Dropping it (also while a test
/// panics) kills every node and removes the temp dirs.
///
/// Node indexes are stable: node `i` keeps its port, cluster bus port and
/// node id (its `nodes.conf` stays in its temp dir) across
/// [`restart`](Self::restart); its role may change with failovers.
///
/// Faults: [`kill`](Self::kill) crashes a node, [`pause`](Self::pause)
/// freezes it; [`wait_for_failover`](Self::wait_for_failover) waits until a
/// replica has taken a primary's slots; [`restart`](Self::restart) brings a
/// node back (a former primary comes back as a replica of its successor).
/// Slots move with [`migrate_slot`](Self::migrate_slot), or in two steps
/// ([`begin_slot_migration`](Self::begin_slot_migration) then
/// [`finish_slot_migration`](Self::finish_slot_migration)) to test `ASK`
/// redirections in between.
///
/// Every wait is bounded (20 s plus five node timeouts) and panics with
/// what it waited for and the last `CLUSTER INFO`.
///
/// ```
/// use rc::testing::RedisCluster;
///
/// let cluster = RedisCluster::start(3, 0);
/// let owner = cluster.primary_for_key("greeting");
/// assert_eq!(cluster.cli(owner, &["SET", "greeting", "hello"]), "OK");
/// assert_eq!(cluster.cli(owner, &["GET", "greeting"]), "hello");
/// // Another primary redirects.
/// let other = (owner + 1) % 3;
/// assert!(cluster.cli(other, &["GET", "greeting"]).starts_with("(error) MOVED"));
/// ```
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// Node ids (`CLUSTER MYID`); they survive restarts (`nodes.conf`).
    ids: Vec<String>,
    primaries: usize,
    replicas: usize,
    node_timeout: Duration,
    /// The password every node requires.
    password: Option<String>,
    /// The slot ranges each node owned when last seen as a primary owning
    /// slots (kept when it loses them, for `wait_for_failover`).
    last_owned: Mutex<Vec<Vec<(u16, u16)>>>,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("primaries", &self.primaries)
            .field("replicas", &self.replicas)
            .field("node_timeout", &self.node_timeout)
            .field("nodes", &self.nodes)
            .finish()
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Debug)]
struct NodeLine {
    id: String,
    port: u16,
    flags: Vec<String>,
    /// Id of its primary; `None` for a primary.
    primary: Option<String>,
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// What one node sees: per node index, its primary (`None`: it is a
/// primary) and its slot ranges.
type View = BTreeMap<usize, (Option<usize>, Vec<(u16, u16)>)>;

impl RedisCluster {
    /// Starts `primaries` primaries with `replicas_per_primary` replicas
    /// each (see [`RedisClusterBuilder::start`] for the layout), with a 2 s
    /// node timeout and no password.
    ///
    /// # Panics
    ///
    /// As [`RedisClusterBuilder::start`].
    ///
    /// ```
    /// let cluster = rc::testing::RedisCluster::start(2, 1);
    /// assert_eq!(cluster.nodes().len(), 4);
    /// assert_eq!(cluster.primaries(), vec![0, 1]);
    /// assert_eq!(cluster.replicas_of(1), vec![3]);
    /// ```
    pub fn start(primaries: usize, replicas_per_primary: usize) -> RedisCluster {
        RedisCluster::builder()
            .primaries(primaries)
            .replicas(replicas_per_primary)
            .start()
    }

    /// A builder for a cluster with another shape, node timeout, password
    /// or extra directives.
    pub fn builder() -> RedisClusterBuilder {
        RedisClusterBuilder::default()
    }

    /// The slot of `key` (CRC16 of the key, or of its `{hash tag}`, modulo
    /// 16384), as `CLUSTER KEYSLOT` computes it.
    ///
    /// ```
    /// use rc::testing::RedisCluster;
    ///
    /// assert_eq!(RedisCluster::key_slot("foo"), 12182);
    /// assert_eq!(RedisCluster::key_slot("{user1000}.following"), RedisCluster::key_slot("user1000"));
    /// ```
    pub fn key_slot(key: impl AsRef<[u8]>) -> u16 {
        let key = key.as_ref();
        let hashed = match key.iter().position(|&b| b == b'{') {
            Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
                Some(len) if len > 0 => &key[open + 1..open + 1 + len],
                _ => key,
            },
            None => key,
        };
        crc16(hashed) % CLUSTER_SLOTS
    }

    /// Every node, by index (see [`RedisClusterBuilder::start`] for the
    /// initial layout). A node's [`RedisServer`] gives its port, URL and
    /// temp dir; faults are better injected through the cluster's methods.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Node `node`.
    ///
    /// # Panics
    ///
    /// If there is no such node.
    pub fn node(&self, node: usize) -> &RedisServer {
        self.nodes
            .get(node)
            .unwrap_or_else(|| panic!("RedisCluster: no node {node} (it has {})", self.nodes.len()))
    }

    /// The cluster node id of node `node` (`CLUSTER MYID`).
    pub fn node_id(&self, node: usize) -> &str {
        self.node(node);
        &self.ids[node]
    }

    /// The node timeout (`cluster-node-timeout`).
    pub fn node_timeout(&self) -> Duration {
        self.node_timeout
    }

    /// The role of node `node` as a running node sees it now (it lags a
    /// failover by up to a few node timeouts; [`wait_until_ok`](Self::wait_until_ok) first).
    ///
    /// # Panics
    ///
    /// If no running node answers.
    pub fn role(&self, node: usize) -> ClusterRole {
        self.node(node);
        match self.current_view().get(&node) {
            Some((Some(primary), _)) => ClusterRole::Replica { primary: *primary },
            _ => ClusterRole::Primary,
        }
    }

    /// The nodes that own slots now, in index order.
    ///
    /// # Panics
    ///
    /// If no running node answers.
    pub fn primaries(&self) -> Vec<usize> {
        self.current_view()
            .iter()
            .filter(|(_, (primary, slots))| primary.is_none() && !slots.is_empty())
            .map(|(&i, _)| i)
            .collect()
    }

    /// The replicas of node `primary` now, in index order.
    ///
    /// # Panics
    ///
    /// If no running node answers.
    pub fn replicas_of(&self, primary: usize) -> Vec<usize> {
        self.current_view()
            .iter()
            .filter(|(_, (p, _))| *p == Some(primary))
            .map(|(&i, _)| i)
            .collect()
    }

    /// `redis://127.0.0.1:PORT` (with `:password@` when one is set;
    /// `rediss://` on a [TLS](RedisClusterBuilder::tls) cluster) of every
    /// running primary that owns slots: seeds for a cluster client.
    ///
    /// # Panics
    ///
    /// If no running node answers.
    ///
    /// ```
    /// let cluster = rc::testing::RedisCluster::start(3, 0);
    /// let port = cluster.nodes()[0].port().unwrap();
    /// assert_eq!(cluster.seed_urls()[0], format!("redis://127.0.0.1:{port}"));
    /// ```
    pub fn seed_urls(&self) -> Vec<String> {
        self.primaries()
            .into_iter()
            .filter(|&i| self.nodes[i].is_running())
            .map(|i| self.nodes[i].url())
            .collect()
    }

    /// The node that owns `key`'s slot now (see
    /// [`primary_for_slot`](Self::primary_for_slot)).
    ///
    /// # Panics
    ///
    /// If no running node answers, or the slot has no owner.
    pub fn primary_for_key(&self, key: impl AsRef<[u8]>) -> usize {
        self.primary_for_slot(Self::key_slot(key))
    }

    /// The node that owns `slot` now, as a running node sees it (during a
    /// migration, the node it is migrating from).
    ///
    /// # Panics
    ///
    /// If `slot` is not below 16384, no running node answers, or the slot
    /// has no owner.
    pub fn primary_for_slot(&self, slot: u16) -> usize {
        assert!(slot < CLUSTER_SLOTS, "RedisCluster: no slot {slot}");
        owner(&self.current_view(), slot)
            .unwrap_or_else(|| panic!("RedisCluster: slot {slot} has no owner"))
    }

    /// Runs one command on node `node` (see [`RedisServer::cli`] for the
    /// reply's form). No redirection is followed: a key of another node's
    /// slot gives `(error) MOVED <slot> 127.0.0.1:<port>`.
    ///
    /// # Panics
    ///
    /// If there is no such node, or as [`RedisServer::cli`] (e.g. the node is
    /// killed or paused).
    pub fn cli(&self, node: usize, args: &[&str]) -> String {
        self.node(node).cli(args)
    }

    /// Kills node `node` (`SIGKILL`), like a crash. Its replica takes over
    /// after the node timeout: see [`wait_for_failover`](Self::wait_for_failover).
    pub fn kill(&self, node: usize) {
        self.node(node).kill();
    }

    /// Freezes node `node` (`SIGSTOP`): it accepts connections but answers
    /// nothing, like a hung server. Longer than the node timeout, the
    /// cluster treats it as failed. Undo with [`resume`](Self::resume).
    ///
    /// # Panics
    ///
    /// As [`RedisServer::pause`].
    pub fn pause(&self, node: usize) {
        self.node(node).pause();
    }

    /// Lets a node frozen by [`pause`](Self::pause) run again. It does not
    /// wait: a primary that was replaced meanwhile becomes a replica of its
    /// successor soon after; [`wait_until_ok`](Self::wait_until_ok) waits
    /// for that.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::resume`].
    pub fn resume(&self, node: usize) {
        self.node(node).resume();
    }

    /// Starts node `node` again (killing it first if it runs), on the same
    /// ports with the same node id and an empty data set, and waits until
    /// the cluster is ok with it (see [`wait_until_ok`](Self::wait_until_ok)).
    /// A primary whose slots were taken over comes back as a replica of the
    /// node that took them.
    ///
    /// # Panics
    ///
    /// If it cannot be started, or the cluster is not ok in time (e.g.
    /// another node is down and had no replica). `nodes()[node].restart()`
    /// restarts without waiting.
    pub fn restart(&self, node: usize) {
        self.node(node).restart();
        self.wait_until_ok();
    }

    /// Waits (bounded) until the cluster is settled: every running,
    /// unpaused node says `cluster_state:ok` with all 16384 slots ok, knows
    /// every node, sees no running node as failing, sees the same primaries,
    /// replicas and slot map as the others, and every running replica's
    /// link to its primary is up.
    ///
    /// # Panics
    ///
    /// If that does not happen within 20 s plus five node timeouts; the
    /// message says what was missing and holds the last `CLUSTER INFO`.
    pub fn wait_until_ok(&self) {
        self.wait("the cluster to be ok", |_| true);
    }

    /// Waits (bounded) until a replica has taken over the slots node
    /// `of_primary` owned (after [`kill`](Self::kill) or
    /// [`pause`](Self::pause)) and the cluster is settled again (see
    /// [`wait_until_ok`](Self::wait_until_ok)); returns the new owner.
    /// With the default 2 s node timeout this takes about 3 to 5 s after
    /// the kill.
    ///
    /// # Panics
    ///
    /// If node `of_primary` never owned slots, or no replica took them over
    /// in time (e.g. the node is still up, or had no replica).
    ///
    /// ```no_run
    /// let cluster = rc::testing::RedisCluster::start(3, 1);
    /// cluster.kill(0);
    /// let promoted = cluster.wait_for_failover(0);
    /// assert_eq!(promoted, 3); // node 0's only replica
    /// ```
    pub fn wait_for_failover(&self, of_primary: usize) -> usize {
        self.node(of_primary);
        let slots = self.owned()[of_primary].clone();
        assert!(
            !slots.is_empty(),
            "RedisCluster::wait_for_failover: node {of_primary} never owned slots"
        );
        let slot = slots[0].0;
        let what = format!(
            "a replica of node {of_primary} ({}) to take over its slots (e.g. {slot})",
            self.nodes[of_primary].address()
        );
        let view = self.wait(&what, |view| {
            let new = owner(view, slot);
            new.is_some_and(|n| n != of_primary)
                && slots
                    .iter()
                    .flat_map(|&(a, b)| [a, b])
                    .all(|s| owner(view, s) == new)
        });
        owner(&view, slot).expect("checked by the wait")
    }

    /// Moves `slot` to primary `to` and waits until the cluster is settled
    /// with `to` owning it: [`begin_slot_migration`](Self::begin_slot_migration)
    /// then [`finish_slot_migration`](Self::finish_slot_migration). The
    /// former owner then answers the slot's keys with `MOVED`. Does nothing
    /// if `to` owns it already.
    ///
    /// # Panics
    ///
    /// If `to` is not a primary, a step is refused, or the cluster does not
    /// settle in time.
    ///
    /// ```
    /// use rc::testing::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(2, 0);
    /// let slot = RedisCluster::key_slot("k");
    /// let from = cluster.primary_for_slot(slot);
    /// cluster.cli(from, &["SET", "k", "v"]);
    /// cluster.migrate_slot(slot, 1 - from);
    /// assert_eq!(cluster.primary_for_key("k"), 1 - from);
    /// assert_eq!(cluster.cli(1 - from, &["GET", "k"]), "v");
    /// assert!(cluster.cli(from, &["GET", "k"]).starts_with("(error) MOVED"));
    /// ```
    pub fn migrate_slot(&self, slot: u16, to: usize) {
        if self.primary_for_slot(slot) == to {
            return;
        }
        self.begin_slot_migration(slot, to);
        self.finish_slot_migration(slot, to);
    }

    /// Starts moving `slot` to primary `to`: `to` is set `IMPORTING` it and
    /// its owner `MIGRATING` it, and no key moves yet. Meanwhile the owner
    /// answers a command on a key of the slot it does not hold (a new or
    /// missing key) with `ASK <slot> <to's address>`, and `to` serves such a
    /// command after `ASKING`. Complete with
    /// [`finish_slot_migration`](Self::finish_slot_migration).
    ///
    /// # Panics
    ///
    /// If `to` already owns the slot or is not a primary, or a step is
    /// refused.
    ///
    /// ```
    /// use rc::testing::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(2, 0);
    /// let slot = RedisCluster::key_slot("new-key");
    /// let from = cluster.primary_for_slot(slot);
    /// cluster.begin_slot_migration(slot, 1 - from);
    /// assert!(cluster.cli(from, &["GET", "new-key"]).starts_with("(error) ASK"));
    /// cluster.finish_slot_migration(slot, 1 - from);
    /// assert!(cluster.cli(from, &["GET", "new-key"]).starts_with("(error) MOVED"));
    /// ```
    pub fn begin_slot_migration(&self, slot: u16, to: usize) {
        let from = self.primary_for_slot(slot);
        assert_ne!(
            from, to,
            "RedisCluster::begin_slot_migration: node {to} already owns slot {slot}"
        );
        let slot_arg = slot.to_string();
        self.expect_ok(
            to,
            &[
                "CLUSTER",
                "SETSLOT",
                &slot_arg,
                "IMPORTING",
                &self.ids[from],
            ],
        );
        self.expect_ok(
            from,
            &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &self.ids[to]],
        );
    }

    /// Completes a migration started by
    /// [`begin_slot_migration`](Self::begin_slot_migration): moves every key
    /// of `slot` to `to` (`MIGRATE`, 100 keys at a time), assigns the slot
    /// to `to` (`CLUSTER SETSLOT <slot> NODE`, on `to`, the former owner,
    /// then the other primaries) and waits until the cluster is settled.
    ///
    /// # Panics
    ///
    /// If a step is refused or the cluster does not settle in time.
    pub fn finish_slot_migration(&self, slot: u16, to: usize) {
        let from = self.primary_for_slot(slot);
        if from != to {
            let port = self
                .node(to)
                .port()
                .expect("cluster nodes use TCP")
                .to_string();
            loop {
                let keys = self.query(
                    from,
                    redis::cmd("CLUSTER")
                        .arg("GETKEYSINSLOT")
                        .arg(slot)
                        .arg(MIGRATE_BATCH),
                );
                let Value::Array(keys) = keys else {
                    panic!("RedisCluster: CLUSTER GETKEYSINSLOT {slot} on node {from}: {keys:?}");
                };
                if keys.is_empty() {
                    break;
                }
                // On a TLS cluster `port` is the TLS port, and `tls-cluster`
                // makes the node migrate over TLS.
                let mut migrate = redis::cmd("MIGRATE");
                migrate.arg("127.0.0.1").arg(&port).arg("").arg(0).arg(5000);
                migrate.arg("REPLACE");
                if let Some(password) = &self.password {
                    migrate.arg("AUTH").arg(password);
                }
                migrate.arg("KEYS");
                for key in &keys {
                    let Value::BulkString(key) = key else {
                        panic!("RedisCluster: CLUSTER GETKEYSINSLOT {slot} gave {key:?}");
                    };
                    migrate.arg(key.as_slice());
                }
                let reply = self.query(from, &migrate);
                assert!(
                    matches!(reply, Value::Okay),
                    "RedisCluster: MIGRATE of slot {slot} from node {from} to node {to}: {reply:?}"
                );
            }
        }
        let slot_arg = slot.to_string();
        let assign = ["CLUSTER", "SETSLOT", &slot_arg, "NODE", &self.ids[to]];
        self.expect_ok(to, &assign);
        if from != to {
            self.expect_ok(from, &assign);
        }
        for other in self.primaries() {
            if other != to && other != from && self.is_up(other) {
                // Others learn it by gossip too; this only speeds it up.
                let _ = self.nodes[other].try_cli(&assign, COMMAND_TIMEOUT);
            }
        }
        self.wait(&format!("slot {slot} to be owned by node {to}"), |view| {
            owner(view, slot) == Some(to)
        });
    }

    /// Meets the nodes, assigns slots and replicas, and waits until settled.
    fn create(&self) {
        let count = self.nodes.len();
        for p in 0..self.primaries {
            let start = p * usize::from(CLUSTER_SLOTS) / self.primaries;
            let end = (p + 1) * usize::from(CLUSTER_SLOTS) / self.primaries - 1;
            self.expect_ok(
                p,
                &[
                    "CLUSTER",
                    "ADDSLOTSRANGE",
                    &start.to_string(),
                    &end.to_string(),
                ],
            );
        }
        // Distinct epochs, as `redis-cli --cluster create` sets, so that no
        // collision has to be resolved first.
        for i in 0..count {
            self.expect_ok(i, &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]);
        }
        for i in 1..count {
            let port = self.nodes[i].port().expect("cluster nodes use TCP");
            let bus = self.nodes[i]
                .bus_port()
                .expect("cluster nodes have a bus port");
            self.expect_ok(
                0,
                &[
                    "CLUSTER",
                    "MEET",
                    "127.0.0.1",
                    &port.to_string(),
                    &bus.to_string(),
                ],
            );
        }
        self.wait_bounded("every node to know every other node", || {
            for i in 0..count {
                let lines = self.lines(i)?;
                let joined = lines
                    .iter()
                    .filter(|l| !l.has("handshake") && !l.has("noaddr"))
                    .count();
                if joined != count {
                    return Err(format!("node {i} knows {joined} of {count} nodes"));
                }
            }
            Ok(())
        });
        for p in 0..self.primaries {
            for k in 0..self.replicas {
                let r = self.primaries + p * self.replicas + k;
                self.expect_ok(r, &["CLUSTER", "REPLICATE", &self.ids[p]]);
            }
        }
        self.wait("the new cluster to be ok", |view| {
            (0..self.primaries).all(|p| {
                (0..self.replicas)
                    .all(|k| view[&(self.primaries + p * self.replicas + k)].0 == Some(p))
            })
        });
    }

    /// Waits (bounded) until the cluster is settled and `done` holds for the
    /// common view; returns that view.
    fn wait(&self, what: &str, done: impl Fn(&View) -> bool) -> View {
        self.wait_bounded(what, || {
            let view = self.settled()?;
            if done(&view) {
                Ok(view)
            } else {
                Err("the cluster is settled, but not in that state yet".to_owned())
            }
        })
    }

    /// Calls `check` until it succeeds, for at most the wait bound.
    fn wait_bounded<T>(&self, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
        let limit = WAIT_BASE + self.node_timeout * 5;
        let deadline = Instant::now() + limit;
        loop {
            let reason = match check() {
                Ok(value) => return value,
                Err(reason) => reason,
            };
            if Instant::now() >= deadline {
                panic!(
                    "RedisCluster: timed out after {limit:?} waiting for {what}; last problem: \
                     {reason}\n{}",
                    self.cluster_infos()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Whether node `i` runs and is not paused.
    fn is_up(&self, i: usize) -> bool {
        self.nodes[i].is_running() && !self.nodes[i].is_paused()
    }

    /// The common view if the cluster is settled (see `wait_until_ok`),
    /// else what is missing. Records the slots of every primary.
    fn settled(&self) -> Result<View, String> {
        let count = self.nodes.len();
        let up: Vec<usize> = (0..count).filter(|&i| self.is_up(i)).collect();
        let mut common: Option<(usize, View)> = None;
        for &i in &up {
            let info = self.probe(i, &["CLUSTER", "INFO"])?;
            for want in [
                "cluster_state:ok".to_owned(),
                format!("cluster_slots_ok:{CLUSTER_SLOTS}"),
                format!("cluster_known_nodes:{count}"),
            ] {
                if !info.lines().any(|l| l.trim() == want) {
                    return Err(format!("node {i} does not say {want}"));
                }
            }
            let lines = self.lines(i)?;
            for line in &lines {
                let index = self.index_of(line)?;
                if line.has("handshake") || line.has("noaddr") {
                    return Err(format!("node {i} is still meeting node {index}"));
                }
                if up.contains(&index) && (line.has("fail") || line.has("fail?")) {
                    return Err(format!("node {i} sees node {index} as failing"));
                }
            }
            let view = self.view(&lines)?;
            if view.get(&i).is_some_and(|(primary, _)| primary.is_some()) {
                let replication = self.probe(i, &["INFO", "replication"])?;
                if !replication
                    .lines()
                    .any(|l| l.trim() == "master_link_status:up")
                {
                    return Err(format!("replica {i}'s link to its primary is not up"));
                }
            }
            match &common {
                None => common = Some((i, view)),
                Some((first, seen)) if *seen != view => {
                    return Err(format!(
                        "nodes {first} and {i} see different roles or slots: {seen:?} vs {view:?}"
                    ));
                }
                Some(_) => {}
            }
        }
        let (_, view) = common.ok_or("no node is running")?;
        let mut owned = self.owned();
        for (&i, (primary, slots)) in &view {
            if primary.is_none() && !slots.is_empty() {
                owned[i] = slots.clone();
            }
        }
        Ok(view)
    }

    /// The view of the first running, unpaused node that answers.
    fn current_view(&self) -> View {
        let mut problems = Vec::new();
        for i in 0..self.nodes.len() {
            if !self.is_up(i) {
                continue;
            }
            match self.lines(i).and_then(|lines| self.view(&lines)) {
                Ok(view) => return view,
                Err(e) => problems.push(e),
            }
        }
        panic!("RedisCluster: no running node answers CLUSTER NODES: {problems:?}");
    }

    /// Roles and slots by node index, from `CLUSTER NODES` lines.
    fn view(&self, lines: &[NodeLine]) -> Result<View, String> {
        let by_id: HashMap<&str, usize> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut view = View::new();
        for line in lines {
            let index = self.index_of(line)?;
            let primary = match &line.primary {
                None => None,
                Some(id) => Some(
                    *by_id
                        .get(id.as_str())
                        .ok_or_else(|| format!("unknown primary id {id}"))?,
                ),
            };
            view.insert(index, (primary, line.slots.clone()));
        }
        Ok(view)
    }

    /// The index of the node a `CLUSTER NODES` line is about.
    fn index_of(&self, line: &NodeLine) -> Result<usize, String> {
        self.ids
            .iter()
            .position(|id| *id == line.id)
            .or_else(|| self.nodes.iter().position(|n| n.port() == Some(line.port)))
            .ok_or_else(|| format!("unknown node {} on port {}", line.id, line.port))
    }

    /// Node `i`'s `CLUSTER NODES`, parsed.
    fn lines(&self, i: usize) -> Result<Vec<NodeLine>, String> {
        let text = self.probe(i, &["CLUSTER", "NODES"])?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_line(l).ok_or_else(|| format!("node {i}: bad CLUSTER NODES line {l:?}")))
            .collect()
    }

    /// `args` on node `i` with a short timeout; a failure or an error reply
    /// is an `Err` that says so.
    fn probe(&self, i: usize, args: &[&str]) -> Result<String, String> {
        match self.nodes[i].try_cli(args, PROBE_TIMEOUT) {
            Ok(reply) if reply.starts_with("(error)") => {
                Err(format!("node {i}: {}: {reply}", args.join(" ")))
            }
            Ok(reply) => Ok(reply),
            Err(e) => Err(format!("node {i}: {}: {e}", args.join(" "))),
        }
    }

    fn expect_ok(&self, i: usize, args: &[&str]) {
        let reply = self.nodes[i].cli(args);
        assert_eq!(
            reply,
            "OK",
            "RedisCluster: `{}` on node {i} ({}) was refused",
            args.join(" "),
            self.nodes[i].address()
        );
    }

    fn query(&self, i: usize, command: &redis::Cmd) -> Value {
        self.nodes[i]
            .query(command, COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("RedisCluster: node {i}: {e}"))
    }

    fn owned(&self) -> MutexGuard<'_, Vec<Vec<(u16, u16)>>> {
        self.last_owned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `CLUSTER INFO` of every running, unpaused node, for panic messages.
    fn cluster_infos(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let info = if !node.is_running() {
                "(not running)".to_owned()
            } else if node.is_paused() {
                "(paused)".to_owned()
            } else {
                match node.try_cli(&["CLUSTER", "INFO"], PROBE_TIMEOUT) {
                    Ok(info) => info
                        .lines()
                        .filter(|l| {
                            l.starts_with("cluster_state")
                                || l.starts_with("cluster_slots")
                                || l.starts_with("cluster_known")
                                || l.starts_with("cluster_size")
                                || l.starts_with("cluster_current_epoch")
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                    Err(e) => format!("(no answer: {e})"),
                }
            };
            out += &format!(
                "last CLUSTER INFO of node {i} ({}): {info}\n",
                node.address()
            );
        }
        out
    }
}

/// The first line of a reply that must not be an error.
fn expect_reply(node: &RedisServer, args: &[&str], what: &str) -> String {
    let reply = node.cli(args);
    assert!(
        !reply.starts_with("(error)"),
        "RedisCluster: {what} on {}: {reply}",
        node.address()
    );
    reply
}

/// The node owning `slot` in `view`.
fn owner(view: &View, slot: u16) -> Option<usize> {
    view.iter()
        .find(|(_, (primary, slots))| {
            primary.is_none() && slots.iter().any(|&(a, b)| a <= slot && slot <= b)
        })
        .map(|(&i, _)| i)
}

/// `<id> <ip:port@cport[,hostname]> <flags> <primary> <ping> <pong> <epoch>
/// <link> <slot>...`; slots are `n`, `a-b`, or `[n->-id]`/`[n-<-id]` while
/// migrating (skipped).
fn parse_line(line: &str) -> Option<NodeLine> {
    let mut fields = line.split_whitespace();
    let id = fields.next()?.to_owned();
    let addr = fields.next()?;
    let host_port = addr.split(['@', ',']).next()?;
    let port = host_port.rsplit(':').next()?.parse().ok()?;
    let flags = fields.next()?.split(',').map(str::to_owned).collect();
    let primary = match fields.next()? {
        "-" => None,
        id => Some(id.to_owned()),
    };
    let mut fields = fields.skip(4);
    let mut slots = Vec::new();
    for slot in fields.by_ref() {
        if slot.starts_with('[') {
            continue;
        }
        let (a, b) = match slot.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let n = slot.parse().ok()?;
                (n, n)
            }
        };
        slots.push((a, b));
    }
    Some(NodeLine {
        id,
        port,
        flags,
        primary,
        slots,
    })
}

/// CRC16-CCITT (XModem), the hash of Redis Cluster's key slots.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}
