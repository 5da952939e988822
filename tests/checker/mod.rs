//! The fault checker: concurrent readers and writers through every way rc
//! reads and writes (decorated sync and async calls, batches of both, direct
//! `get`/`get_many`/`set`/`set_many`/`delete`, `invalidate_*` and
//! `try_invalidate_*`) over a versioned source of truth, while a seeded
//! schedule injects faults into real `redis-server`s: `SIGSTOP`/`SIGCONT`,
//! kill and restart, `CLIENT KILL TYPE normal`, restart with an empty
//! dataset, and a delaying proxy between the caches and one server.
//!
//! Shared by `tests/fault_checker.rs` (bounded, inside `cargo xtask test`)
//! and rc-bench's `--soak` (which includes this file by path).
//!
//! # What it checks
//!
//! The source maps each key to a version; a value encodes its key and
//! version (and a float derived from both, NaN and infinities included, so
//! values are also checked bit for bit). A writer locks the key (writers of
//! one key take turns, as an application's would), bumps its version, then
//! invalidates or writes every cached view of the key, and then marks the
//! version *committed*. Every value a read returns is checked against two
//! bounds taken around the call:
//!
//! - **wrong** (guarantee 1, and no value from nowhere): the value is not the
//!   one its key and version encode, is another key's, is newer than the
//!   source's version at the end of the call, or a batch's promise was left
//!   unresolved;
//! - **stale** (guarantee 2 and 3): its version is older than the version
//!   committed when the call started: a write and its invalidation had
//!   returned, and a later read still saw an older value. A write whose
//!   invalidation returned `Err` counts as committed too: rc replays it
//!   before any other command reaches that server, and reads in between fail
//!   (decorated ones open: the body reads the source).
//!
//! A version between the committed one and the source's at the call's start
//! is what cache-aside allows (the write's invalidation was still under way).
//!
//! Each view is written and invalidated through the cache object that reads
//! it: rc remembers failed deletes per cache (per server of it).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rc::testing::{DelayProxy, RedisServer};
use rc::{AsyncCache, Cache, CacheCluster, HostConfig, Promise};
use serde::{Deserialize, Serialize};

/// Socket (connect and response) timeout of the caches: short, so faults are felt.
pub const TIMEOUT: Duration = Duration::from_millis(200);
/// Expiry of every cached value: longer than any run.
const EXPIRE_SECS: u64 = 3600;
const EXPIRE: Option<Duration> = Some(Duration::from_secs(EXPIRE_SECS));
/// Violations described in full (all are counted).
const SHOWN: usize = 20;
/// How long the final sweep may wait for every server to answer again.
const SETTLE: Duration = Duration::from_secs(20);

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Names the run in messages.
    pub name: String,
    /// 0: one server behind a single-server cache; 2 or 3: a `CacheCluster`.
    pub hosts: usize,
    /// How long the load and the faults last.
    pub duration: Duration,
    /// Seeds the fault schedule and every worker's choices.
    pub seed: u64,
    /// Blocking worker threads.
    pub threads: usize,
    /// Async worker tasks (on a 2-worker tokio runtime).
    pub tasks: usize,
    /// Keys of the source (even ones read by the blocking face, odd by the async one).
    pub keys: u64,
}

impl Config {
    /// A run named `name` on `hosts` hosts (0: a single server) for `duration`.
    pub fn new(name: &str, hosts: usize, duration: Duration, seed: u64) -> Config {
        Config {
            name: name.to_owned(),
            hosts,
            duration,
            seed,
            threads: 4,
            tasks: 4,
            keys: 48,
        }
    }
}

/// The seed of `RC_CHECKER_SEED`, else a fresh one (printed by [`run`]).
pub fn seed_from_env() -> u64 {
    match std::env::var("RC_CHECKER_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("RC_CHECKER_SEED={s:?} is not a u64")),
        Err(_) => {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(Instant::now()) >> 1
        }
    }
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    pub name: String,
    pub seed: u64,
    pub secs: f64,
    /// Every operation: reads (each call of a batch, each key of a
    /// `get_many`) and writes (each key).
    pub ops: u64,
    pub reads: u64,
    /// Reads that returned a value (the rest: misses of direct reads, errors).
    pub values_checked: u64,
    pub writes: u64,
    /// Direct calls (and `try_invalidate_*`) that returned `Err`.
    pub errors: u64,
    pub faults: u64,
    pub faults_by_kind: BTreeMap<&'static str, u64>,
    pub wrong: u64,
    pub stale: u64,
    pub panics: u64,
    /// Hits and misses of the two caches' `stats()` (direct reads included).
    pub hits: u64,
    pub misses: u64,
    /// The first violations, described.
    pub violations: Vec<String>,
    /// Every fault, with its time since the start.
    pub schedule: Vec<String>,
}

impl Report {
    /// True when nothing wrong, stale or panicking was seen.
    pub fn passed(&self) -> bool {
        self.wrong == 0 && self.stale == 0 && self.panics == 0
    }

    /// One line of counts.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .faults_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!(
            "{}: seed {}, {:.0} s: {} operations ({} reads, {} values checked, {} writes, {} errors), \
             {} hits, {} misses, {} faults ({}), wrong {}, stale {}, panics {}",
            self.name,
            self.seed,
            self.secs,
            self.ops,
            self.reads,
            self.values_checked,
            self.writes,
            self.errors,
            self.hits,
            self.misses,
            self.faults,
            kinds.join(", "),
            self.wrong,
            self.stale,
            self.panics
        )
    }

    /// The summary, the violations and (when there are any) the schedule.
    pub fn details(&self) -> String {
        let mut s = self.summary();
        for v in &self.violations {
            let _ = write!(s, "\n  VIOLATION: {v}");
        }
        if !self.passed() {
            s += "\n  fault schedule:";
            for f in &self.schedule {
                let _ = write!(s, "\n    {f}");
            }
            let _ = write!(s, "\n  replay with RC_CHECKER_SEED={}", self.seed);
        }
        s
    }
}

/// A cached value: its key and version, and a float derived from both.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Val {
    key: u64,
    ver: u64,
    x: f64,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Val {
    fn of(key: u64, ver: u64) -> Val {
        let h = mix(key << 32 ^ ver);
        let x = match h % 8 {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => -0.0,
            4 => f64::from_bits(h >> 12), // subnormal
            _ => {
                let f = f64::from_bits(h);
                if f.is_finite() { f } else { h as f64 / 3.0 }
            }
        };
        Val { key, ver, x }
    }

    /// True when this is exactly the value its key and version encode.
    fn exact(&self) -> bool {
        let want = Val::of(self.key, self.ver).x;
        if want.is_nan() {
            self.x.is_nan()
        } else {
            self.x.to_bits() == want.to_bits()
        }
    }
}

/// The source of truth: a version per key.
pub struct Source {
    keys: Vec<KeyState>,
}

struct KeyState {
    /// The source's version (bumped first by a writer).
    version: AtomicU64,
    /// The latest version whose write and invalidations have returned.
    committed: AtomicU64,
    /// Writers of one key take turns.
    writer: tokio::sync::Mutex<()>,
}

impl Source {
    fn new(keys: u64) -> Source {
        Source {
            keys: (0..keys)
                .map(|_| KeyState {
                    version: AtomicU64::new(0),
                    committed: AtomicU64::new(0),
                    writer: tokio::sync::Mutex::new(()),
                })
                .collect(),
        }
    }

    /// The body of the decorated functions: the source's value now.
    pub fn read(&self, key: u64) -> Val {
        Val::of(key, self.keys[key as usize].version.load(SeqCst))
    }
}

#[rc::cache(cache = cache, skip(cache, src), expire = EXPIRE_SECS)]
fn value(cache: &Cache, src: &Source, key: u64) -> Val {
    let _ = cache;
    src.read(key)
}

#[rc::cache(cache = cache, skip(cache, src), expire = EXPIRE_SECS)]
async fn value_async(cache: &AsyncCache, src: &Source, key: u64) -> Val {
    let _ = cache;
    tokio::task::yield_now().await;
    src.read(key)
}

/// The Redis key of `value(key)` (for direct writes of it).
fn value_key(key: u64) -> String {
    format!("{} value {key}", module_path!())
}

fn value_async_key(key: u64) -> String {
    format!("{} value_async {key}", module_path!())
}

fn direct_key(key: u64) -> String {
    format!("checker:direct:{key}")
}

/// A xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// Counters and the first violations, shared by the workers.
struct Tally {
    start: Instant,
    reads: AtomicU64,
    values: AtomicU64,
    writes: AtomicU64,
    errors: AtomicU64,
    wrong: AtomicU64,
    stale: AtomicU64,
    panics: AtomicU64,
    violations: Mutex<Vec<String>>,
}

/// The bounds of one read of `key`, taken before the call.
#[derive(Clone, Copy)]
struct Before {
    key: u64,
    committed: u64,
    source: u64,
    at: Instant,
}

impl Tally {
    fn before(&self, src: &Source, key: u64) -> Before {
        let k = &src.keys[key as usize];
        // Committed first: it never passes the source's version.
        let committed = k.committed.load(SeqCst);
        Before {
            key,
            committed,
            source: k.version.load(SeqCst),
            at: Instant::now(),
        }
    }

    /// Checks one read's outcome: `None` is a miss of a direct read (or, for
    /// decorated calls, `must` says it is wrong).
    fn check(&self, src: &Source, what: &str, b: Before, got: Option<&Val>, must: bool) {
        self.reads.fetch_add(1, SeqCst);
        let after = src.keys[b.key as usize].version.load(SeqCst);
        let Some(v) = got else {
            if must {
                self.violation(
                    &self.wrong,
                    "WRONG",
                    what,
                    b,
                    after,
                    "no value (unresolved)",
                );
            }
            return;
        };
        self.values.fetch_add(1, SeqCst);
        if v.key != b.key || !v.exact() || v.ver > after {
            self.violation(&self.wrong, "WRONG", what, b, after, &format!("{v:?}"));
        } else if v.ver < b.committed {
            self.violation(&self.stale, "STALE", what, b, after, &format!("{v:?}"));
        }
    }

    fn violation(
        &self,
        counter: &AtomicU64,
        kind: &str,
        what: &str,
        b: Before,
        after: u64,
        got: &str,
    ) {
        counter.fetch_add(1, SeqCst);
        let mut v = self.violations.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < SHOWN {
            let msg = format!(
                "{kind}: {what}(key {}) started at {:.3} s, returned at {:.3} s: got {got}; \
                 committed at start {}, source at start {}, source at end {after}",
                b.key,
                (b.at - self.start).as_secs_f64(),
                self.start.elapsed().as_secs_f64(),
                b.committed,
                b.source,
            );
            eprintln!("fault checker: {msg}");
            v.push(msg);
        }
    }
}

/// How a writer refreshes one decorated view of a key.
#[derive(Clone, Copy, Debug)]
enum Refresh {
    Invalidate,
    TryInvalidate,
    Delete,
    Set,
}

fn refresh(r: &mut Rng) -> Refresh {
    match r.below(4) {
        0 => Refresh::Invalidate,
        1 => Refresh::TryInvalidate,
        2 => Refresh::Delete,
        _ => Refresh::Set,
    }
}

/// Distinct keys of one face (`parity` 0: blocking, 1: async), sorted.
fn pick_keys(r: &mut Rng, keys: u64, parity: u64, n: usize) -> Vec<u64> {
    let mut out: Vec<u64> = (0..n).map(|_| 2 * r.below(keys / 2) + parity).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Bumps the versions of `keys` (their writer locks held): the new values.
fn bump(src: &Source, keys: &[u64]) -> Vec<Val> {
    keys.iter()
        .map(|&k| Val::of(k, src.keys[k as usize].version.fetch_add(1, SeqCst) + 1))
        .collect()
}

fn commit(src: &Source, vals: &[Val]) {
    for v in vals {
        src.keys[v.key as usize].committed.store(v.ver, SeqCst);
    }
}

/// One blocking worker until `deadline`.
fn worker(cache: &Cache, src: &Source, t: &Tally, seed: u64, keys: u64, deadline: Instant) {
    let mut r = Rng::new(seed);
    while Instant::now() < deadline {
        let op = r.below(100);
        let ran = panic::catch_unwind(AssertUnwindSafe(|| match op {
            0..45 => {
                let key = pick_keys(&mut r, keys, 0, 1)[0];
                let b = t.before(src, key);
                let v = value(cache, src, key);
                t.check(src, "value", b, Some(&v), true);
            }
            45..62 => {
                let n = 1 + r.below(8) as usize;
                let ks: Vec<u64> = (0..n).map(|_| pick_keys(&mut r, keys, 0, 1)[0]).collect();
                let bs: Vec<Before> = ks.iter().map(|&k| t.before(src, k)).collect();
                let batch = cache.batch();
                let ps: Vec<Promise<Val>> = ks
                    .iter()
                    .map(|&k| batch_value(&batch, cache, src, k))
                    .collect();
                batch.run();
                for (p, b) in ps.into_iter().zip(bs) {
                    t.check(src, "batch_value", b, p.into_value().as_ref(), true);
                }
            }
            62..70 => {
                let key = pick_keys(&mut r, keys, 0, 1)[0];
                let b = t.before(src, key);
                match cache.get::<Val>(&direct_key(key)) {
                    Ok(v) => t.check(src, "get", b, v.as_ref(), false),
                    Err(_) => {
                        t.errors.fetch_add(1, SeqCst);
                    }
                }
            }
            70..80 => {
                let ks = pick_keys(&mut r, keys, 0, 6);
                let bs: Vec<Before> = ks.iter().map(|&k| t.before(src, k)).collect();
                let names: Vec<String> = ks.iter().map(|&k| direct_key(k)).collect();
                match cache.get_many::<Val, _, _>(&names) {
                    Ok(vs) => {
                        for (v, b) in vs.iter().zip(bs) {
                            t.check(src, "get_many", b, v.as_ref(), false);
                        }
                    }
                    Err(_) => {
                        t.errors.fetch_add(1, SeqCst);
                    }
                }
            }
            80..96 => {
                let key = pick_keys(&mut r, keys, 0, 1)[0];
                let _turn = src.keys[key as usize].writer.blocking_lock();
                let vals = bump(src, &[key]);
                let v = &vals[0];
                let failed = match refresh(&mut r) {
                    Refresh::Invalidate => {
                        invalidate_value(cache, src, key);
                        false
                    }
                    Refresh::TryInvalidate => try_invalidate_value(cache, src, key).is_err(),
                    Refresh::Delete => cache.delete(&value_key(key)).is_err(),
                    Refresh::Set => cache.set(&value_key(key), v, EXPIRE).is_err(),
                };
                let failed = failed
                    | if r.below(2) == 0 {
                        cache.set(&direct_key(key), v, EXPIRE).is_err()
                    } else {
                        cache.delete(&direct_key(key)).is_err()
                    };
                t.errors.fetch_add(failed as u64, SeqCst);
                t.writes.fetch_add(1, SeqCst);
                commit(src, &vals);
            }
            _ => {
                // A multi-key write: set_many of the direct views, then the
                // decorated views deleted one by one.
                let ks = pick_keys(&mut r, keys, 0, 4);
                let _turns: Vec<_> = ks
                    .iter()
                    .map(|&k| src.keys[k as usize].writer.blocking_lock())
                    .collect();
                let vals = bump(src, &ks);
                let names: Vec<String> = ks.iter().map(|&k| direct_key(k)).collect();
                let mut failed = cache
                    .set_many(names.iter().map(String::as_str).zip(&vals), EXPIRE)
                    .is_err();
                for &k in &ks {
                    failed |= try_invalidate_value(cache, src, k).is_err();
                }
                t.errors.fetch_add(failed as u64, SeqCst);
                t.writes.fetch_add(ks.len() as u64, SeqCst);
                commit(src, &vals);
            }
        }));
        if ran.is_err() {
            t.panics.fetch_add(1, SeqCst);
        }
    }
}

/// One async worker until `deadline`: as [`worker`], on the async face.
async fn worker_async(
    cache: AsyncCache,
    src: Arc<Source>,
    t: Arc<Tally>,
    seed: u64,
    keys: u64,
    deadline: Instant,
) {
    let (cache, src, t) = (&cache, &*src, &*t);
    let mut r = Rng::new(seed);
    while Instant::now() < deadline {
        match r.below(100) {
            0..45 => {
                let key = pick_keys(&mut r, keys, 1, 1)[0];
                let b = t.before(src, key);
                let v = value_async(cache, src, key).await;
                t.check(src, "value_async", b, Some(&v), true);
            }
            45..62 => {
                let n = 1 + r.below(8) as usize;
                let ks: Vec<u64> = (0..n).map(|_| pick_keys(&mut r, keys, 1, 1)[0]).collect();
                let bs: Vec<Before> = ks.iter().map(|&k| t.before(src, k)).collect();
                let batch = cache.batch();
                let ps: Vec<Promise<Val>> = ks
                    .iter()
                    .map(|&k| batch_value_async(&batch, cache, src, k))
                    .collect();
                batch.run().await;
                for (p, b) in ps.into_iter().zip(bs) {
                    t.check(src, "batch_value_async", b, p.into_value().as_ref(), true);
                }
            }
            62..70 => {
                let key = pick_keys(&mut r, keys, 1, 1)[0];
                let b = t.before(src, key);
                match cache.get::<Val>(&direct_key(key)).await {
                    Ok(v) => t.check(src, "async get", b, v.as_ref(), false),
                    Err(_) => {
                        t.errors.fetch_add(1, SeqCst);
                    }
                }
            }
            70..80 => {
                let ks = pick_keys(&mut r, keys, 1, 6);
                let bs: Vec<Before> = ks.iter().map(|&k| t.before(src, k)).collect();
                let names: Vec<String> = ks.iter().map(|&k| direct_key(k)).collect();
                match cache.get_many::<Val, _, _>(&names).await {
                    Ok(vs) => {
                        for (v, b) in vs.iter().zip(bs) {
                            t.check(src, "async get_many", b, v.as_ref(), false);
                        }
                    }
                    Err(_) => {
                        t.errors.fetch_add(1, SeqCst);
                    }
                }
            }
            80..96 => {
                let key = pick_keys(&mut r, keys, 1, 1)[0];
                let _turn = src.keys[key as usize].writer.lock().await;
                let vals = bump(src, &[key]);
                let v = &vals[0];
                let failed = match refresh(&mut r) {
                    Refresh::Invalidate => {
                        invalidate_value_async(cache, src, key).await;
                        false
                    }
                    Refresh::TryInvalidate => {
                        try_invalidate_value_async(cache, src, key).await.is_err()
                    }
                    Refresh::Delete => cache.delete(&value_async_key(key)).await.is_err(),
                    Refresh::Set => cache.set(&value_async_key(key), v, EXPIRE).await.is_err(),
                };
                let failed = failed
                    | if r.below(2) == 0 {
                        cache.set(&direct_key(key), v, EXPIRE).await.is_err()
                    } else {
                        cache.delete(&direct_key(key)).await.is_err()
                    };
                t.errors.fetch_add(failed as u64, SeqCst);
                t.writes.fetch_add(1, SeqCst);
                commit(src, &vals);
            }
            _ => {
                let ks = pick_keys(&mut r, keys, 1, 4);
                let mut turns = Vec::new();
                for &k in &ks {
                    turns.push(src.keys[k as usize].writer.lock().await);
                }
                let vals = bump(src, &ks);
                let names: Vec<String> = ks.iter().map(|&k| direct_key(k)).collect();
                let mut failed = cache
                    .set_many(names.iter().map(String::as_str).zip(&vals), EXPIRE)
                    .await
                    .is_err();
                for &k in &ks {
                    failed |= try_invalidate_value_async(cache, src, k).await.is_err();
                }
                t.errors.fetch_add(failed as u64, SeqCst);
                t.writes.fetch_add(ks.len() as u64, SeqCst);
                commit(src, &vals);
                drop(turns);
            }
        }
    }
}

/// The servers, the proxy in front of server 0, and the fault schedule.
struct Faults<'a> {
    servers: &'a [RedisServer],
    proxy: &'a DelayProxy,
    start: Instant,
    schedule: Vec<String>,
    by_kind: BTreeMap<&'static str, u64>,
}

impl Faults<'_> {
    fn note(&mut self, kind: &'static str, what: String) {
        let line = format!("{:7.3} s: {what}", self.start.elapsed().as_secs_f64());
        if std::env::var_os("RC_CHECKER_VERBOSE").is_some() {
            eprintln!("fault checker: {line}");
        }
        self.schedule.push(line);
        *self.by_kind.entry(kind).or_default() += 1;
    }

    /// One fault, undone before it returns (bounded: at most a few seconds).
    fn inject(&mut self, r: &mut Rng) {
        let s = r.below(self.servers.len() as u64) as usize;
        let server = &self.servers[s];
        let hold = r.millis(50, 800);
        let sleep = thread::sleep;
        match r.below(6) {
            0 => {
                self.note(
                    "pause",
                    format!("server {s}: SIGSTOP for {} ms", hold.as_millis()),
                );
                server.pause();
                sleep(hold);
                server.resume();
            }
            1 => {
                self.note(
                    "kill",
                    format!(
                        "server {s}: SIGKILL, down {} ms, restart (empty)",
                        hold.as_millis()
                    ),
                );
                server.kill();
                sleep(hold);
                self.restart(s);
            }
            2 => {
                self.note(
                    "client-kill",
                    format!("server {s}: CLIENT KILL TYPE normal"),
                );
                let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                    server.cli(&["CLIENT", "KILL", "TYPE", "normal"])
                }));
            }
            3 => {
                self.note(
                    "restart",
                    format!("server {s}: restart at once (empty dataset)"),
                );
                self.restart(s);
            }
            4 => {
                self.note(
                    "flush",
                    format!("server {s}: FLUSHALL (empty dataset, connections kept)"),
                );
                let _ = panic::catch_unwind(AssertUnwindSafe(|| server.cli(&["FLUSHALL"])));
            }
            _ => {
                let delay = [20, 120, 350][r.below(3) as usize];
                self.note(
                    "delay",
                    format!(
                        "proxy to server 0: {delay} ms per chunk for {} ms",
                        hold.as_millis()
                    ),
                );
                self.proxy.set_delay(Duration::from_millis(delay));
                sleep(hold);
                self.proxy.set_delay(Duration::ZERO);
            }
        }
    }

    fn restart(&mut self, s: usize) {
        if panic::catch_unwind(AssertUnwindSafe(|| self.servers[s].restart())).is_err() {
            self.note("restart-failed", format!("server {s}: could not restart"));
        }
    }
}

/// Runs the checker described by `cfg`.
pub fn run(cfg: &Config) -> Report {
    eprintln!(
        "fault checker {}: seed {} (replay with RC_CHECKER_SEED={}), {} s, {}",
        cfg.name,
        cfg.seed,
        cfg.seed,
        cfg.duration.as_secs(),
        if cfg.hosts == 0 {
            "single server".to_owned()
        } else {
            format!("{}-host cluster", cfg.hosts)
        }
    );
    let servers: Vec<RedisServer> = (0..cfg.hosts.max(1))
        .map(|_| RedisServer::start())
        .collect();
    let proxy =
        DelayProxy::start(servers[0].port().expect("TCP"), Duration::ZERO).expect("delay proxy");
    let proxied = HostConfig::new().host("127.0.0.1").port(proxy.port());
    let (cache, acache) = if cfg.hosts == 0 {
        let b = || {
            Cache::builder()
                .host_config(proxied.clone())
                .socket_timeout(TIMEOUT)
                .connect_timeout(TIMEOUT)
        };
        (
            b().build().expect("cache"),
            b().build_async().expect("async cache"),
        )
    } else {
        let b = || {
            let mut b = CacheCluster::builder().host("h0", proxied.clone());
            for (i, s) in servers.iter().enumerate().skip(1) {
                b = b.host(format!("h{i}"), s.host_config());
            }
            b.socket_timeout(TIMEOUT).connect_timeout(TIMEOUT)
        };
        (
            b().build().expect("cluster"),
            b().build_async().expect("async cluster"),
        )
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let src = Arc::new(Source::new(cfg.keys.max(4) & !1));
    let keys = src.keys.len() as u64;
    let start = Instant::now();
    let t = Arc::new(Tally {
        start,
        reads: AtomicU64::new(0),
        values: AtomicU64::new(0),
        writes: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        panics: AtomicU64::new(0),
        violations: Mutex::new(Vec::new()),
    });
    let deadline = start + cfg.duration;
    let mut faults = Faults {
        servers: &servers,
        proxy: &proxy,
        start,
        schedule: Vec::new(),
        by_kind: BTreeMap::new(),
    };
    thread::scope(|scope| {
        for i in 0..cfg.threads {
            let (cache, src, t) = (&cache, &*src, &*t);
            let seed = cfg.seed ^ mix(i as u64 + 1);
            scope.spawn(move || worker(cache, src, t, seed, keys, deadline));
        }
        let tasks = scope.spawn(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..cfg.tasks)
                    .map(|i| {
                        let seed = cfg.seed ^ mix(1000 + i as u64);
                        tokio::spawn(worker_async(
                            acache.clone(),
                            src.clone(),
                            t.clone(),
                            seed,
                            keys,
                            deadline,
                        ))
                    })
                    .collect();
                for h in handles {
                    if h.await.is_err() {
                        t.panics.fetch_add(1, SeqCst);
                    }
                }
            });
        });
        // The fault schedule: a quiet start, then faults with gaps, until
        // one second before the deadline (the load then runs without faults).
        let mut r = Rng::new(cfg.seed);
        thread::sleep(Duration::from_millis(500));
        while Instant::now() + Duration::from_secs(1) < deadline {
            faults.inject(&mut r);
            let gap = r.millis(200, 1500);
            thread::sleep(gap.min(deadline.saturating_duration_since(Instant::now())));
        }
        let _ = tasks.join();
    });

    // Once every server answers again, every view of every key must hold
    // nothing older than its committed version.
    let settled = Instant::now() + SETTLE;
    let answers = |cache: &Cache| {
        let names: Vec<String> = (0..keys).map(direct_key).collect();
        cache.get_many::<Val, _, _>(&names).is_ok()
    };
    while !(answers(&cache)
        && rt.block_on(async {
            let names: Vec<String> = (0..keys).map(direct_key).collect();
            acache.get_many::<Val, _, _>(&names).await.is_ok()
        }))
        && Instant::now() < settled
    {
        thread::sleep(Duration::from_millis(50));
    }
    for key in 0..keys {
        let b = t.before(&src, key);
        if key % 2 == 0 {
            let v = value(&cache, &src, key);
            t.check(&src, "final value", b, Some(&v), true);
            if let Ok(v) = cache.get::<Val>(&direct_key(key)) {
                t.check(&src, "final get", b, v.as_ref(), false);
            }
        } else {
            let v = rt.block_on(value_async(&acache, &src, key));
            t.check(&src, "final value_async", b, Some(&v), true);
            if let Ok(v) = rt.block_on(acache.get::<Val>(&direct_key(key))) {
                t.check(&src, "final async get", b, v.as_ref(), false);
            }
        }
    }

    let get = |c: &AtomicU64| c.load(SeqCst);
    let (reads, writes) = (get(&t.reads), get(&t.writes));
    let report = Report {
        name: cfg.name.clone(),
        seed: cfg.seed,
        secs: start.elapsed().as_secs_f64(),
        ops: reads + writes,
        reads,
        values_checked: get(&t.values),
        writes,
        errors: get(&t.errors),
        faults: faults.schedule.len() as u64,
        faults_by_kind: faults.by_kind,
        wrong: get(&t.wrong),
        stale: get(&t.stale),
        panics: get(&t.panics),
        hits: cache.stats().hits + acache.stats().hits,
        misses: cache.stats().misses + acache.stats().misses,
        violations: t
            .violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        schedule: faults.schedule,
    };
    drop(rt);
    report
}
