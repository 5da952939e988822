//! `--soak`: bounded mixed load against servers that are killed and
//! restarted, checking the value of every decorated call and the memory of
//! the process.
//!
//! Two servers form a 2-host `CacheCluster`, a third backs a single-server
//! `Cache`; each also has an `AsyncCache` twin. Threads make decorated calls
//! (with invalidations and batches of 50) and direct `set`/`get_many` calls on
//! either, tokio tasks make decorated async calls, and a controller kills one
//! server every 30 s in turn and restarts it on the same port a second later.
//! Decorated calls fail open, so every one must return its body's value;
//! direct calls may return `Err` while a server is down (counted: expected)
//! but never a wrong value. Everything stops by itself at the deadline.

use std::fmt::Write as _;
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rc::testing::RedisServer;
use rc::{AsyncCache, Cache, CacheCluster, Promise, Stats};

use crate::report::{self, Machine};
use crate::rows::{rss_bytes, time};

/// Length of a soak unless `--soak-secs` says otherwise.
pub const DEFAULT_SECS: u64 = 300;
/// The section of `BENCHMARKS.md` a soak rewrites.
pub const TITLE: &str = "Soak";
/// Threads making blocking calls.
const THREADS: u64 = 4;
/// Tokio tasks making async calls (on a runtime with one worker).
const TASKS: u64 = 4;
/// Distinct arguments of the decorated functions, and direct keys.
const KEYS: u64 = 4000;
/// Calls in one batch, keys in one direct `get_many`.
const BATCH: u64 = 50;
/// One server is restarted this often, in turn.
const RESTART_EVERY: Duration = Duration::from_secs(30);
/// How long a killed server stays down before its restart.
const DOWN: Duration = Duration::from_secs(1);
/// Load before the first memory sample.
const WARMUP: Duration = Duration::from_secs(10);
/// How long each cache may take to answer again once the load stops.
const RESUME: Duration = Duration::from_secs(15);
/// Most growth of resident memory from the first sample to the last.
const MAX_GROWTH_MIB: f64 = 10.0;
/// Expiry of direct writes (decorated ones use `expire = 600`).
const EXPIRE: Option<Duration> = Some(Duration::from_secs(600));
/// Wrong values printed as they happen (all are counted).
const SHOWN: u64 = 10;

const MIB: f64 = 1024.0 * 1024.0;

/// The body of every decorated function: distinct for each argument, so a
/// value read for another key (or another command's reply) shows.
fn body(x: u64) -> u64 {
    black_box(x) * x
}

#[rc::cache(cache = cache, skip(cache), expire = 600)]
fn square(cache: &Cache, x: u64) -> u64 {
    let _ = cache;
    body(x)
}

#[rc::cache(cache = cache, skip(cache), expire = 600)]
async fn square_async(cache: &AsyncCache, x: u64) -> u64 {
    let _ = cache;
    body(x)
}

/// The key and value of direct writes.
fn direct_key(x: u64) -> String {
    format!("soak:direct:{x}")
}

fn direct_value(x: u64) -> u64 {
    3 * x + 7
}

/// What one side of the load did.
#[derive(Debug, Default)]
struct Tally {
    /// Decorated calls, each call of a batch included.
    decorated: AtomicU64,
    /// Of them, calls made through batches.
    batched: AtomicU64,
    invalidations: AtomicU64,
    /// Decorated calls that returned another value than the body's (or a
    /// batch's promise left unresolved).
    wrong: AtomicU64,
    /// Operations that panicked (sync), tasks that ended in a panic (async).
    panics: AtomicU64,
    direct: AtomicU64,
    direct_errors: AtomicU64,
    /// Direct reads that returned a value no write stored under that key.
    direct_wrong: AtomicU64,
    /// The slowest decorated call or batch (ns).
    slowest_ns: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Counts a decorated result for `x`, and checks it.
    fn check(&self, what: &str, x: u64, got: Option<u64>) {
        if got != Some(body(x)) && self.wrong.fetch_add(1, Relaxed) < SHOWN {
            eprintln!("rc-bench soak: WRONG VALUE: {what}({x}) gave {got:?}");
        }
    }

    fn timed(&self, start: Instant) {
        self.slowest_ns
            .fetch_max(start.elapsed().as_nanos() as u64, Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

/// A xorshift64* generator: cheap, and the same load on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One blocking load thread until `deadline`: per operation, one of the two
/// caches at random and 70% decorated calls, 5% invalidations, 10% batches,
/// 10% direct `set`, 5% direct `get_many`.
fn load(caches: [&Cache; 2], seed: u64, deadline: Instant, t: &Tally) {
    let mut rng = Rng(seed);
    while Instant::now() < deadline {
        let r = rng.next();
        let cache = caches[(r & 1) as usize];
        let x = (r >> 8) % KEYS;
        let ran = panic::catch_unwind(AssertUnwindSafe(|| match (r >> 40) % 100 {
            0..70 => {
                let start = Instant::now();
                let v = square(cache, x);
                t.timed(start);
                Tally::add(&t.decorated, 1);
                t.check("square", x, Some(v));
            }
            70..75 => {
                invalidate_square(cache, x);
                Tally::add(&t.invalidations, 1);
            }
            75..85 => batch(cache, x, t),
            85..95 => {
                Tally::add(&t.direct, 1);
                if cache.set(&direct_key(x), &direct_value(x), EXPIRE).is_err() {
                    Tally::add(&t.direct_errors, 1);
                }
            }
            _ => direct_get_many(cache, x, t),
        }));
        if ran.is_err() {
            Tally::add(&t.panics, 1);
        }
    }
}

/// The arguments of a batch starting at `first`: `BATCH` distinct ones.
fn batch_args(first: u64) -> Vec<u64> {
    (0..BATCH).map(|i| (first + 7 * i) % KEYS).collect()
}

fn batch(cache: &Cache, first: u64, t: &Tally) {
    let xs = batch_args(first);
    let start = Instant::now();
    let batch = cache.batch();
    let promises: Vec<Promise<u64>> = xs.iter().map(|&x| batch_square(&batch, cache, x)).collect();
    batch.run();
    t.timed(start);
    for (p, &x) in promises.into_iter().zip(&xs) {
        t.check("batch_square", x, p.into_value());
    }
    Tally::add(&t.decorated, BATCH);
    Tally::add(&t.batched, BATCH);
}

fn direct_get_many(cache: &Cache, first: u64, t: &Tally) {
    let xs = batch_args(first);
    let keys: Vec<String> = xs.iter().map(|&x| direct_key(x)).collect();
    Tally::add(&t.direct, 1);
    match cache.get_many::<u64, _, _>(&keys) {
        Ok(values) => {
            for (v, &x) in values.into_iter().zip(&xs) {
                if v.is_some_and(|v| v != direct_value(x))
                    && t.direct_wrong.fetch_add(1, Relaxed) < SHOWN
                {
                    eprintln!(
                        "rc-bench soak: WRONG VALUE: get_many {} gave {v:?}",
                        direct_key(x)
                    );
                }
            }
        }
        Err(_) => Tally::add(&t.direct_errors, 1),
    }
}

/// One async load task until `deadline`: per operation, one of the two caches
/// at random and 80% decorated calls, 5% invalidations, 15% batches.
async fn load_async(caches: [AsyncCache; 2], seed: u64, deadline: Instant, t: Arc<Tally>) {
    let mut rng = Rng(seed);
    while Instant::now() < deadline {
        let r = rng.next();
        let cache = &caches[(r & 1) as usize];
        let x = (r >> 8) % KEYS;
        match (r >> 40) % 100 {
            0..80 => {
                let start = Instant::now();
                let v = square_async(cache, x).await;
                t.timed(start);
                Tally::add(&t.decorated, 1);
                t.check("square_async", x, Some(v));
            }
            80..85 => {
                invalidate_square_async(cache, x).await;
                Tally::add(&t.invalidations, 1);
            }
            _ => {
                let xs = batch_args(x);
                let start = Instant::now();
                let batch = cache.batch();
                let promises: Vec<Promise<u64>> = xs
                    .iter()
                    .map(|&x| batch_square_async(&batch, cache, x))
                    .collect();
                batch.run().await;
                t.timed(start);
                for (p, &x) in promises.into_iter().zip(&xs) {
                    t.check("batch_square_async", x, p.into_value());
                }
                Tally::add(&t.decorated, BATCH);
                Tally::add(&t.batched, BATCH);
            }
        }
    }
}

fn sleep_until(at: Instant) {
    if let Some(d) = at.checked_duration_since(Instant::now()) {
        thread::sleep(d);
    }
}

/// One restart by the controller.
#[derive(Debug)]
struct Restart {
    /// Which server (0 and 1: the cluster's hosts; 2: the single one).
    server: usize,
    /// How long `restart()` took (start, then wait for `PING`).
    took: Duration,
    /// `false`: it could not start again (the port was taken).
    ok: bool,
}

/// Resident memory at a moment of the soak: seconds since its start, bytes.
type Sample = (f64, f64);

/// Kills and restarts one server every [`RESTART_EVERY`] in turn until
/// `deadline`; samples resident memory after the warm-up, after each restart
/// and at the deadline.
fn control(
    servers: &[RedisServer; 3],
    start: Instant,
    deadline: Instant,
    rss: &Mutex<Vec<Sample>>,
) -> Vec<Restart> {
    let sample = || {
        let at = start.elapsed().as_secs_f64();
        rss.lock().expect("samples").push((at, rss_bytes()));
    };
    sleep_until((start + WARMUP).min(deadline));
    sample();
    let mut restarts = Vec::new();
    let mut at = start + RESTART_EVERY;
    while at < deadline {
        sleep_until(at);
        let server = restarts.len() % servers.len();
        eprintln!(
            "rc-bench soak: {:.0} s: killing server {server}",
            start.elapsed().as_secs_f64()
        );
        servers[server].kill();
        thread::sleep(DOWN);
        let begun = Instant::now();
        let ok = panic::catch_unwind(AssertUnwindSafe(|| servers[server].restart())).is_ok();
        restarts.push(Restart {
            server,
            took: begun.elapsed(),
            ok,
        });
        sample();
        at += RESTART_EVERY;
    }
    sleep_until(deadline);
    sample();
    restarts
}

/// How long `check` took to succeed once, polling (at most [`RESUME`]).
fn resumed(mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < RESUME {
        if check() {
            return Some(start.elapsed());
        }
        thread::sleep(Duration::from_millis(50));
    }
    None
}

fn resume_keys() -> Vec<String> {
    (0..20).map(|i| format!("soak:resume:{i}")).collect()
}

/// A cache answers again: 20 keys (so both hosts of the cluster) written and read.
fn answers(cache: &Cache) -> bool {
    let keys = resume_keys();
    cache
        .set_many(keys.iter().map(|k| (k.as_str(), &1_u64)), EXPIRE)
        .is_ok_and(|stored| stored)
        && cache
            .get_many::<u64, _, _>(&keys)
            .is_ok_and(|v| v.iter().all(|v| *v == Some(1)))
}

async fn answers_async(cache: &AsyncCache) -> bool {
    let keys = resume_keys();
    cache
        .set_many(keys.iter().map(|k| (k.as_str(), &1_u64)), EXPIRE)
        .await
        .is_ok_and(|stored| stored)
        && cache
            .get_many::<u64, _, _>(&keys)
            .await
            .is_ok_and(|v| v.iter().all(|v| *v == Some(1)))
}

/// Everything a soak saw.
struct Soak {
    secs: u64,
    sync: Tally,
    tasks: Arc<Tally>,
    restarts: Vec<Restart>,
    rss: Vec<Sample>,
    /// Hits and misses of the four caches' counters, added up.
    stats: Stats,
    /// How long each cache took to answer once the load stopped (sync cluster,
    /// sync single, async cluster, async single).
    resumed: [Option<Duration>; 4],
}

impl Soak {
    fn growth_mib(&self) -> f64 {
        match (self.rss.first(), self.rss.last()) {
            (Some(a), Some(b)) => (b.1 - a.1) / MIB,
            _ => f64::NAN,
        }
    }

    fn wrong(&self) -> u64 {
        Tally::get(&self.sync.wrong) + Tally::get(&self.tasks.wrong)
    }

    fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.wrong() > 0 {
            out.push(format!(
                "{} wrong values from decorated calls",
                self.wrong()
            ));
        }
        let panics = Tally::get(&self.sync.panics) + Tally::get(&self.tasks.panics);
        if panics > 0 {
            out.push(format!("{panics} panics"));
        }
        let direct_wrong = Tally::get(&self.sync.direct_wrong);
        if direct_wrong > 0 {
            out.push(format!("{direct_wrong} wrong values from direct reads"));
        }
        let growth = self.growth_mib();
        if growth.is_nan() || growth > MAX_GROWTH_MIB {
            out.push(format!(
                "resident memory grew {growth:+.1} MiB (at most +{MAX_GROWTH_MIB} MiB)"
            ));
        }
        if self.restarts.iter().any(|r| !r.ok) {
            out.push("a server could not be restarted".into());
        }
        if self.resumed.iter().any(Option::is_none) {
            out.push(format!(
                "a cache did not answer within {} s after the load",
                RESUME.as_secs()
            ));
        }
        out
    }

    /// The summary, as Markdown list items.
    fn items(&self) -> String {
        let (sync, tasks) = (&self.sync, &*self.tasks);
        let get = Tally::get;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "- load: {} s; {THREADS} threads, each operation on the 2-host `CacheCluster` or the \
             single-server `Cache` at random: 70% decorated `square(x)` calls over {KEYS} \
             arguments, 5% `invalidate_square`, 10% batches of {BATCH} `batch_square` calls, 10% \
             direct `set`, 5% direct `get_many` of {BATCH} keys; {TASKS} tokio tasks (one-worker \
             runtime) on the `AsyncCache` twins: 80% decorated `square_async`, 5% invalidations, \
             15% batches of {BATCH}",
            self.secs
        );
        let servers = ["cluster host 1", "cluster host 2", "single server"];
        let shown: Vec<String> = self
            .restarts
            .iter()
            .map(|r| {
                let failed = if r.ok { "" } else { " (FAILED)" };
                format!("{}{failed}", servers[r.server])
            })
            .collect();
        let slowest = self.restarts.iter().map(|r| r.took).max();
        let _ = writeln!(
            md,
            "- restarts: {} (every {} s: `kill()` (SIGKILL), {} s down, `restart()` on the same \
             port, empty; in turn: {}){}",
            self.restarts.len(),
            RESTART_EVERY.as_secs(),
            DOWN.as_secs(),
            shown.join(", "),
            slowest.map_or(String::new(), |d| format!(
                "; the slowest `restart()` took {} ms",
                d.as_millis()
            ))
        );
        let decorated = get(&sync.decorated) + get(&tasks.decorated);
        let _ = writeln!(
            md,
            "- decorated calls: {decorated} ({} blocking, {} async; {} of them in batches), \
             invalidations: {}",
            get(&sync.decorated),
            get(&tasks.decorated),
            get(&sync.batched) + get(&tasks.batched),
            get(&sync.invalidations) + get(&tasks.invalidations)
        );
        let _ = writeln!(
            md,
            "- **wrong values: {}** (decorated results other than the body's, or promises left \
             unresolved), panics: {}",
            self.wrong(),
            get(&sync.panics) + get(&tasks.panics)
        );
        let lookups = self.stats.hits + self.stats.misses;
        let _ = writeln!(
            md,
            "- hit rate: {:.1}% ({} hits, {} misses in the four caches' `stats()`, direct reads \
             included); store errors counted there: {}",
            100.0 * self.stats.hits as f64 / lookups.max(1) as f64,
            self.stats.hits,
            self.stats.misses,
            self.stats.errors
        );
        let _ = writeln!(
            md,
            "- direct calls: {}, of which `Err`: {} (expected while a server is down), wrong \
             values: {}",
            get(&sync.direct),
            get(&sync.direct_errors),
            get(&sync.direct_wrong)
        );
        let slowest = get(&sync.slowest_ns).max(get(&tasks.slowest_ns));
        let _ = writeln!(
            md,
            "- slowest decorated call or batch: {}",
            time(slowest as f64)
        );
        let rss: Vec<String> = self
            .rss
            .iter()
            .map(|(at, b)| format!("{:.1} ({at:.0} s)", b / MIB))
            .collect();
        let _ = writeln!(
            md,
            "- **resident memory (`VmRSS`): {:.1} MiB at the start (after {} s of warm-up), \
             {:.1} MiB at the end ({:+.1} MiB)**; every sample (after the warm-up, after each \
             restart, at the end), in MiB: {}",
            self.rss.first().map_or(f64::NAN, |s| s.1 / MIB),
            WARMUP.as_secs(),
            self.rss.last().map_or(f64::NAN, |s| s.1 / MIB),
            self.growth_mib(),
            rss.join(", ")
        );
        let names = [
            "blocking cluster",
            "blocking single",
            "async cluster",
            "async single",
        ];
        let resumed: Vec<String> = names
            .iter()
            .zip(&self.resumed)
            .map(|(n, r)| match r {
                Some(d) => format!("{n} {} ms", d.as_millis()),
                None => format!("{n} NOT within {} s", RESUME.as_secs()),
            })
            .collect();
        let _ = writeln!(
            md,
            "- answering again once the load stopped (`set_many` + `get_many` of 20 keys): {}",
            resumed.join(", ")
        );
        let failures = self.failures();
        let _ = writeln!(
            md,
            "- result: {} (fails on a wrong value, a panic, or more than +{MAX_GROWTH_MIB} MiB)",
            if failures.is_empty() {
                "pass".to_owned()
            } else {
                format!("**FAIL**: {}", failures.join("; "))
            }
        );
        md
    }
}

/// Runs the soak for `secs` seconds. Returns its section of
/// `BENCHMARKS.md` and whether it passed.
pub fn run(secs: u64, command: &str) -> (String, bool) {
    let load_before = report::load_average();
    let servers: [RedisServer; 3] = std::array::from_fn(|_| RedisServer::start());
    let hosts = || {
        servers[..2]
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("soak{i}"), s.host_config()))
    };
    let cluster = CacheCluster::builder()
        .hosts(hosts())
        .build()
        .expect("cluster cache");
    let single = Cache::open(&servers[2].url()).expect("single cache");
    let cluster_async = CacheCluster::builder()
        .hosts(hosts())
        .build_async()
        .expect("async cluster cache");
    let single_async = AsyncCache::open(&servers[2].url()).expect("async single cache");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");

    eprintln!(
        "rc-bench soak: {secs} s, a restart every {} s",
        RESTART_EVERY.as_secs()
    );
    let sync = Tally::default();
    let tasks = Arc::new(Tally::default());
    let rss = Mutex::new(Vec::new());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let restarts = thread::scope(|scope| {
        for i in 0..THREADS {
            let (caches, sync) = ([&cluster, &single], &sync);
            scope.spawn(move || load(caches, 0x9e37_79b9_7f4a_7c15 ^ i, deadline, sync));
        }
        scope.spawn(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..TASKS)
                    .map(|i| {
                        let caches = [cluster_async.clone(), single_async.clone()];
                        tokio::spawn(load_async(
                            caches,
                            0xda94_2042_e4dd_58b5 ^ i,
                            deadline,
                            tasks.clone(),
                        ))
                    })
                    .collect();
                for h in handles {
                    if h.await.is_err() {
                        Tally::add(&tasks.panics, 1);
                    }
                }
            });
        });
        control(&servers, start, deadline, &rss)
    });
    eprintln!(
        "rc-bench soak: load stopped after {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let resumed = [
        resumed(|| answers(&cluster)),
        resumed(|| answers(&single)),
        resumed(|| rt.block_on(answers_async(&cluster_async))),
        resumed(|| rt.block_on(answers_async(&single_async))),
    ];
    let all = [
        cluster.stats(),
        single.stats(),
        cluster_async.stats(),
        single_async.stats(),
    ];
    let mut stats = Stats::default();
    for s in all {
        stats.hits += s.hits;
        stats.misses += s.misses;
        stats.errors += s.errors;
    }
    let soak = Soak {
        secs,
        sync,
        tasks,
        restarts,
        rss: rss.into_inner().expect("samples"),
        stats,
        resumed,
    };
    let run = format!(
        "soak: {secs} s of mixed load, a server restarted every {} s",
        RESTART_EVERY.as_secs()
    );
    let mut md = format!("## {TITLE}\n\n");
    md += "Mixed load for a fixed time against three `redis-server`s, one of them killed and \
           restarted every 30 s; every decorated call's value is checked against its body's. \
           Decorated calls fail open, so they must never return a wrong value; direct calls may \
           return `Err` while a server is down.\n\n";
    report::facts(&mut md, &Machine::here(), command, &run, &load_before);
    md += &soak.items();
    let passed = soak.failures().is_empty();
    (md, passed)
}
