//! Servers whose layout Redis manages: a Redis Cluster (primaries sharing
//! the hash slots) and a primary under Sentinel. Both are a [`Layout`] (the
//! primary of each slot; under Sentinel one primary owns them all) that a
//! watcher thread keeps current, over one single-server backend per
//! primary (connections, timeouts, health, replays: see
//! [`RedisBackend`](crate::RedisBackend)).
//!
//! The watcher looks the layout up (`CLUSTER SLOTS`, or `SENTINEL
//! get-master-addr-by-name`) as soon as the cache is built (calls wait for
//! that first answer, bounded), again whenever a call meets a redirection
//! (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `READONLY`) or a primary that
//! does not answer (at most every [`MIN_GAP`]), and every [`PERIOD`]. `ASK`
//! is followed at once, on a backend that sends `ASKING` first. Under Sentinel a second thread listens to the Sentinels'
//! `+switch-master` announcements and follows a failover the moment it is
//! announced: a demoted primary keeps accepting writes for several seconds,
//! which would be lost.
//!
//! A near cache (`local_cache`) tracks each primary on its own connection
//! from the moment a layout names it, and when a new layout is installed
//! drops the local copies of each primary that lost a slot (see
//! [`Near::relayout`]).

mod backend;
mod deployment;
mod discovery;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

pub(crate) use backend::{AsyncManaged, Managed};
pub(crate) use deployment::Deployment;
pub(crate) use discovery::Source;

use crate::backend::ServerLink;
use crate::commands::{SLOTS, Split, slot};
use crate::error::{Error, Result};
use crate::host::{HostConfig, Timeouts};
use crate::near::Near;

/// Shortest pause between two layout lookups asked for by calls.
const MIN_GAP: Duration = Duration::from_millis(100);
/// Pause between two lookups nobody asked for.
const PERIOD: Duration = Duration::from_secs(5);

/// Where each key's primary is: one backend per primary.
pub(crate) struct Layout<N> {
    /// Index in `nodes` of each slot's primary; [`NONE`] for a slot no
    /// primary serves. One entry when a single primary serves all.
    owner: Vec<u16>,
    nodes: Vec<Arc<N>>,
    /// `host:port` of each node.
    names: Vec<String>,
    /// The number of each node among all ever opened (what the near cache
    /// knows it by).
    ids: Vec<usize>,
    /// Counts the layouts installed, so a call can wait for a newer one.
    generation: u64,
}

/// An `owner` of a slot that no primary serves.
const NONE: u16 = u16::MAX;

impl<N> Layout<N> {
    /// The nodes (by number, as `ids`) that hold a slot here and not in the
    /// layout of `owner` and `ids`.
    fn losers(&self, owner: &[u16], ids: &[usize]) -> BTreeSet<usize> {
        let id = |owner: &[u16], ids: &[usize], slot: usize| {
            owner
                .get(slot)
                .and_then(|&i| ids.get(usize::from(i)).copied())
        };
        (0..self.owner.len())
            .filter_map(|slot| {
                let was = id(&self.owner, &self.ids, slot)?;
                (id(owner, ids, slot) != Some(was)).then_some(was)
            })
            .collect()
    }

    /// The index of the primary of `key`.
    fn route(&self, key: &str) -> Option<usize> {
        let i = match self.owner.len() {
            1 => self.owner[0],
            _ => self.owner[usize::from(slot(key))],
        };
        (i != NONE).then_some(usize::from(i))
    }
}

/// The primaries found by one lookup: `(first slot, last slot, host, port)`.
pub(crate) type Found = Vec<(u16, u16, String, u16)>;

/// Opens the backend of a primary, cutting commands as told.
type Opener<N> = Box<dyn Fn(&HostConfig, Split) -> Result<N> + Send + Sync>;

/// What the calls, the watcher and the subscriber share.
pub(crate) struct Shared<N> {
    source: Source,
    /// Address, credentials and TLS of the data nodes (host and port replaced per node).
    template: HostConfig,
    timeouts: Timeouts,
    open: Opener<N>,
    layout: ArcSwapOption<Layout<N>>,
    /// Every node backend opened, by `host:port`, with its number: a node
    /// keeps its connections and health across layouts.
    nodes: Mutex<HashMap<String, (usize, Arc<N>)>>,
    /// The backends that send `ASKING` first (see [`Split::Asking`]), by `host:port`.
    asking: Mutex<HashMap<String, Arc<N>>>,
    /// Set by calls that want a fresh layout; wakes the watcher.
    wanted: Mutex<bool>,
    wake: Condvar,
    /// The generation installed, for blocking waiters.
    installed: Mutex<u64>,
    changed: Condvar,
    /// Async waiters for a new layout.
    notify: tokio::sync::Notify,
    /// Why the last lookup failed.
    last_error: Mutex<String>,
    /// Whether a lookup has failed: while no layout is known, calls then
    /// fail at once (as on a server that is down) instead of waiting.
    lookup_failed: AtomicBool,
    /// The near cache told of each layout, if any.
    near: OnceLock<NearHook<N>>,
}

/// A near cache and how it reaches a node.
struct NearHook<N> {
    near: Weak<Near>,
    link: fn(&N) -> ServerLink,
}

impl<N: Send + Sync + 'static> Shared<N> {
    /// Shares `source`'s layout and starts its watcher (and subscriber)
    /// threads, which look it up at once, off the caller's thread; they end
    /// within a second or so of the cache being dropped.
    pub(crate) fn start(
        source: Source,
        template: HostConfig,
        timeouts: Timeouts,
        open: impl Fn(&HostConfig, Split) -> Result<N> + Send + Sync + 'static,
    ) -> Result<Arc<Self>> {
        timeouts.validate()?;
        template.validate()?;
        let shared = Arc::new(Shared {
            source,
            template,
            timeouts,
            open: Box::new(open),
            layout: ArcSwapOption::empty(),
            nodes: Mutex::default(),
            asking: Mutex::default(),
            wanted: Mutex::new(true),
            wake: Condvar::new(),
            installed: Mutex::new(0),
            changed: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            last_error: Mutex::new("not looked up yet".into()),
            lookup_failed: AtomicBool::new(false),
            near: OnceLock::new(),
        });
        spawn("rc-layout", &shared, watch)?;
        if matches!(shared.source, Source::Sentinel { .. }) {
            spawn("rc-sentinel", &shared, discovery::subscribe)?;
        }
        Ok(shared)
    }

    /// What the cache is on, as errors name it.
    pub(crate) fn label(&self) -> String {
        self.source.label()
    }

    fn current(&self) -> Option<Arc<Layout<N>>> {
        self.layout.load_full()
    }

    /// Asks the watcher for a fresh layout (it looks it up after [`MIN_GAP`] at most).
    pub(crate) fn refresh(&self) {
        let mut wanted = lock(&self.wanted);
        if !*wanted {
            *wanted = true;
            self.wake.notify_one();
        }
    }

    /// The error of a call made while no layout is known.
    fn unknown(&self) -> Error {
        Error::HostDown {
            host: self.label(),
            last_error: lock(&self.last_error).clone(),
            retry_in: MIN_GAP,
        }
    }

    /// How long a call waits for the first layout: one lookup's timeouts.
    fn first_wait(&self) -> Duration {
        self.timeouts.connect + self.timeouts.response
    }

    fn lookups_failed(&self) -> bool {
        self.lookup_failed.load(Ordering::Acquire)
    }

    /// A lookup failed: waiting calls fail now rather than at their deadline.
    fn note_failed_lookup(&self, e: &Error) {
        *lock(&self.last_error) = e.to_string();
        // Under the waiters' lock, so none misses it between check and wait.
        let installed = lock(&self.installed);
        self.lookup_failed.store(true, Ordering::Release);
        drop(installed);
        self.changed.notify_all();
        self.notify.notify_waiters();
    }

    /// The current layout, waiting (bounded) for the first one.
    pub(crate) fn layout_blocking(&self) -> Result<Arc<Layout<N>>> {
        if let Some(l) = self.current() {
            return Ok(l);
        }
        self.refresh();
        if self.lookups_failed() {
            return Err(self.unknown());
        }
        let deadline = Instant::now() + self.first_wait();
        let mut installed = lock(&self.installed);
        loop {
            if let Some(l) = self.current() {
                return Ok(l);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.lookups_failed() {
                return Err(self.unknown());
            }
            installed = self
                .changed
                .wait_timeout(installed, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits (at most `limit`) for a layout newer than generation `seen`.
    pub(crate) fn wait_newer_blocking(&self, seen: u64, limit: Duration) {
        let installed = lock(&self.installed);
        let _ = self
            .changed
            .wait_timeout_while(installed, limit, |g| *g <= seen);
    }

    /// The async twin of [`layout_blocking`](Self::layout_blocking).
    pub(crate) async fn layout_async(&self) -> Result<Arc<Layout<N>>> {
        if let Some(l) = self.current() {
            return Ok(l);
        }
        self.refresh();
        if self.lookups_failed() {
            return Err(self.unknown());
        }
        let wait = async {
            loop {
                // Registered before the check, so an install in between wakes it.
                let mut notified = std::pin::pin!(self.notify.notified());
                notified.as_mut().enable();
                if let Some(l) = self.current() {
                    return Ok(l);
                }
                if self.lookups_failed() {
                    return Err(self.unknown());
                }
                notified.await;
            }
        };
        tokio::time::timeout(self.first_wait(), wait)
            .await
            .unwrap_or_else(|_| Err(self.unknown()))
    }

    /// The async twin of [`wait_newer_blocking`](Self::wait_newer_blocking).
    pub(crate) async fn wait_newer_async(&self, seen: u64, limit: Duration) {
        let wait = async {
            loop {
                let mut notified = std::pin::pin!(self.notify.notified());
                notified.as_mut().enable();
                if self.current().is_some_and(|l| l.generation > seen) {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }

    /// Tells `near` of every layout from now on, the current one first;
    /// `link` says how it reaches a node.
    pub(crate) fn attach_near(&self, near: &Arc<Near>, link: fn(&N) -> ServerLink) {
        // Held so no layout is installed meanwhile.
        let _nodes = lock(&self.nodes);
        let hook = NearHook {
            near: Arc::downgrade(near),
            link,
        };
        if self.near.set(hook).is_ok()
            && let Some(layout) = self.current()
        {
            self.tell_near(&layout.ids, &layout.nodes, &BTreeSet::new());
        }
    }

    /// Before a layout of `nodes` (numbered `ids`) is installed: the near
    /// cache tracks each node, and drops the copies of the nodes that `lost`
    /// slots.
    fn tell_near(&self, ids: &[usize], nodes: &[Arc<N>], lost: &BTreeSet<usize>) {
        let Some(hook) = self.near.get() else { return };
        let Some(near) = hook.near.upgrade() else {
            return;
        };
        near.relayout(lost.iter().copied());
        for (&id, node) in ids.iter().zip(nodes) {
            if let Err(e) = near.track(id, (hook.link)(node)) {
                tracing::warn!(error = %e, "rc: near cache cannot track a primary; its keys are read from Redis");
            }
        }
    }

    /// The number of the primary that holds `key` in the current layout;
    /// `usize::MAX` when none is known.
    pub(crate) fn server_of(&self, key: &str) -> usize {
        self.layout
            .load()
            .as_ref()
            .and_then(|l| l.route(key).map(|i| l.ids[i]))
            .unwrap_or(usize::MAX)
    }

    /// Makes `found` the layout (unless it is the current one), opening
    /// backends for new primaries. A lookup passes the generation it started
    /// from: when another layout came meanwhile (a switch Sentinel
    /// announced), its older answer is dropped and a new lookup asked for.
    fn install(&self, found: Found, since: Option<u64>) -> Result<()> {
        // Held until the new layout is stored: one install at a time.
        let mut nodes = lock(&self.nodes);
        let current = self.current();
        let generation_now = current.as_ref().map_or(0, |c| c.generation);
        if since.is_some_and(|g| g != generation_now) {
            drop(nodes);
            self.refresh();
            return Ok(());
        }
        let mut names: Vec<String> = Vec::new();
        let mut layout_nodes = Vec::new();
        let mut ids = Vec::new();
        let single = !self.source.split_slots();
        let mut owner = vec![NONE; if single { 1 } else { usize::from(SLOTS) }];
        for (first, last, host, port) in found {
            let name = node_name(&host, port);
            let index = match names.iter().position(|n| *n == name) {
                Some(i) => i,
                None => {
                    let (id, node) = match nodes.get(&name) {
                        Some((id, n)) => (*id, Arc::clone(n)),
                        None => {
                            let config = self.template.clone().host(host).port(port);
                            let node = Arc::new((self.open)(&config, self.source.split())?);
                            let id = nodes.len();
                            nodes.insert(name.clone(), (id, Arc::clone(&node)));
                            (id, node)
                        }
                    };
                    names.push(name);
                    ids.push(id);
                    layout_nodes.push(node);
                    names.len() - 1
                }
            };
            let index = u16::try_from(index).unwrap_or(NONE);
            if single {
                owner[0] = index;
            } else {
                let (first, last) = (usize::from(first), usize::from(last.min(SLOTS - 1)));
                if first <= last {
                    owner[first..=last].fill(index);
                }
            }
        }
        if let Some(c) = &current
            && c.owner == owner
            && c.names == names
        {
            return Ok(());
        }
        let generation = generation_now + 1;
        // Before calls see the new layout: a copy read under the old one
        // may be of a key whose primary changed.
        let lost = current
            .as_ref()
            .map(|c| c.losers(&owner, &ids))
            .unwrap_or_default();
        self.tell_near(&ids, &layout_nodes, &lost);
        tracing::info!(
            on = %self.label(),
            primaries = ?names,
            "rc: primaries found"
        );
        self.layout.store(Some(Arc::new(Layout {
            owner,
            nodes: layout_nodes,
            names,
            ids,
            generation,
        })));
        *lock(&self.installed) = generation;
        self.changed.notify_all();
        self.notify.notify_waiters();
        Ok(())
    }

    /// The backend that reaches `address` (`host:port`, as an `ASK`
    /// redirection names it) with `ASKING` before each command.
    pub(crate) fn asking_node(&self, address: &str) -> Option<Arc<N>> {
        let mut asking = lock(&self.asking);
        if let Some(n) = asking.get(address) {
            return Some(Arc::clone(n));
        }
        let (host, port) = address.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let config = self.template.clone().host(host).port(port.parse().ok()?);
        let node = Arc::new((self.open)(&config, Split::Asking).ok()?);
        asking.insert(address.to_owned(), Arc::clone(&node));
        Some(node)
    }

    /// The `host:port` of every primary of the current layout.
    fn known(&self) -> Vec<String> {
        self.current().map(|l| l.names.clone()).unwrap_or_default()
    }

    /// Waits until a call asks for a lookup (true, and clears the request),
    /// or `limit` passes (false).
    fn wait_wanted(&self, limit: Duration) -> bool {
        let wanted = lock(&self.wanted);
        let mut wanted = self
            .wake
            .wait_timeout_while(wanted, limit, |w| !*w)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        std::mem::take(&mut *wanted)
    }
}

fn node_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Looks the layout up whenever asked (and every [`PERIOD`]) until the cache is gone.
fn watch<N: Send + Sync + 'static>(shared: Weak<Shared<N>>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        let since = s.current().map_or(0, |l| l.generation);
        let looked_up = discovery::look_up(&s.source, &s.known(), s.timeouts)
            .and_then(|found| s.install(found, Some(since)));
        if let Err(e) = looked_up {
            tracing::warn!(on = %s.label(), error = %e, "rc: cannot find the primaries");
            s.note_failed_lookup(&e);
        }
        drop(s);
        std::thread::sleep(MIN_GAP);
        // Waits in short slices holding the cache only briefly, so the
        // thread ends soon after the cache is dropped.
        let next = Instant::now() + PERIOD;
        loop {
            let Some(s) = shared.upgrade() else { return };
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() || s.wait_wanted(left.min(Duration::from_secs(1))) {
                break;
            }
        }
    }
}

/// Starts `run` on a named thread holding only a weak reference.
fn spawn<N: Send + Sync + 'static>(
    name: &str,
    shared: &Arc<Shared<N>>,
    run: fn(Weak<Shared<N>>),
) -> Result<()> {
    let weak = Arc::downgrade(shared);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || run(weak))
        .map(drop)
        .map_err(|e| Error::config(format!("cannot start the {name} thread: {e}")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
