//! A frozen or dead server costs one timeout, not one per request.
//!
//! Decorated calls arrive at a steady rate (every [`GAP`], from [`THREADS`]
//! threads or tasks) while the server is frozen (`SIGSTOP`) or killed: only
//! the calls in flight when it froze may wait for the timeout, every call
//! returns the body's value (fail open), and once the server is back the
//! cache serves hits again within the backoff plus one probe. The probes run
//! in the background, so no caller waits on one. Every wait is a bounded poll;
//! the tests of this file run one at a time (their timing is the point).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{TIMEOUT, async_cache_for, cache_for, cube, square};
use rc::Error;
use rc::testing::RedisServer;

/// Connect and response timeout of every cache in this file.
/// A call slower than this waited for the network (a call that fails fast
/// takes microseconds; the margin is for a busy 2-core machine).
const SLOW: Duration = Duration::from_millis(100);
/// Pause between two calls of one caller.
const GAP: Duration = Duration::from_millis(20);
/// How long the server stays frozen or dead.
const OUTAGE: Duration = Duration::from_secs(3);
/// Callers making calls concurrently.
const THREADS: usize = 2;
/// Distinct arguments, all cached before the outage.
const IDS: u64 = 20;
/// Slack for scheduling on top of the backoff and the probe.
const MARGIN: Duration = Duration::from_millis(500);
/// Longest wait for anything in this file.
const LIMIT: Duration = Duration::from_secs(15);

/// The tests of this file measure time: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The threads named `rc-probe` of this process.
fn probe_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "rc-probe")
        .count()
}

/// How the outage is made and ended.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `SIGSTOP`, then `SIGCONT`: the kernel still accepts connections and
    /// requests, nothing answers.
    Freeze,
    /// `SIGKILL`, then a restart on the same port (empty).
    Kill,
}

impl Fault {
    fn start(self, server: &RedisServer) {
        match self {
            Fault::Freeze => server.pause(),
            Fault::Kill => server.kill(),
        }
    }

    fn end(self, server: &RedisServer) {
        match self {
            Fault::Freeze => server.resume(),
            Fault::Kill => server.restart(),
        }
    }
}

/// What one caller saw during the outage.
#[derive(Debug, Default)]
struct Seen {
    /// Calls that started while the server was out.
    calls: usize,
    /// Those slower than [`SLOW`].
    slow: Vec<Duration>,
    /// The slowest call.
    max: Duration,
}

/// One call made by a caller, with the phase it started in.
fn note(seen: &mut Seen, out: bool, took: Duration) {
    if out {
        seen.calls += 1;
        seen.max = seen.max.max(took);
        if took > SLOW {
            seen.slow.push(took);
        }
    }
}

/// Keys tried after an outage until one is stored and then hit.
const STORE_TRIES: u64 = 5;

/// After an outage, a value is computed once and then hit: `call(x)` calls
/// a decorated fn twice with `x` and returns how often its body ran. A
/// second run is allowed only when the cache counted a failure for it (a
/// store or read over the short timeout, on a loaded machine), and at
/// least one of [`STORE_TRIES`] keys must be stored and hit.
fn assert_stores_again(label: &str, errors: impl Fn() -> u64, call: impl Fn(u64) -> u32) {
    let runs: Vec<(u32, u64)> = (1000..1000 + STORE_TRIES)
        .map(|x| {
            let before = errors();
            let ran = call(x);
            (ran, errors() - before)
        })
        .collect();
    check_stores_again(label, &runs);
}

/// See [`assert_stores_again`]: `runs` holds (body runs, failures counted) per key.
fn check_stores_again(label: &str, runs: &[(u32, u64)]) {
    for (i, &(ran, failed)) in runs.iter().enumerate() {
        assert!(ran >= 1, "{label}: key {i} was never computed: {runs:?}");
        assert!(
            ran == 1 || failed > 0,
            "{label}: key {i} was computed twice with no failure counted: {runs:?}"
        );
    }
    assert!(
        runs.iter().any(|&(ran, _)| ran == 1),
        "{label}: no value was stored and hit again after the outage: {runs:?}"
    );
}

/// Asserts what the callers saw: at most the call each had in flight at the
/// fault waited for the network (plus, once in all, a stall of the machine).
fn assert_one_timeout_per_caller(label: &str, fault: Fault, seen: &[Seen]) {
    let slow: usize = seen.iter().map(|s| s.slow.len()).sum();
    assert!(
        slow <= seen.len() + 1,
        "{slow} calls waited for the network; only those in flight at the fault may: {seen:?}"
    );
    for (i, s) in seen.iter().enumerate() {
        eprintln!(
            "{label} {fault:?}: caller {i}: {} calls during the outage, slowest {:?}, slow: {:?}",
            s.calls, s.max, s.slow
        );
        assert!(
            s.calls >= (OUTAGE.as_millis() / (GAP.as_millis() * 4)) as usize,
            "caller {i} made too few calls to judge: {s:?}"
        );
        assert!(
            s.slow.len() <= 2,
            "caller {i}: {} calls waited for the network (only the one in flight at \
             the fault may): {s:?}",
            s.slow.len()
        );
        assert!(
            s.max < TIMEOUT * 2 + MARGIN,
            "caller {i}: a call waited for more than one timeout: {s:?}"
        );
    }
}

/// Once the server is back, how long until the cache serves hits again:
/// at most the backoff left at that moment plus one probe.
fn recovery_bound(down: &Result<(), Error>) -> Duration {
    let left = match down {
        Err(Error::HostDown { retry_in, .. }) => *retry_in,
        _ => Duration::ZERO,
    };
    left + TIMEOUT * 2 + MARGIN
}

fn frozen_sync(fault: Fault) {
    let _serial = serial();
    let server = RedisServer::start();
    let cache = cache_for(&server);
    let calls = AtomicU32::new(0);
    for x in 0..IDS {
        assert_eq!(square(&cache, &calls, x), x * x);
    }
    let before = cache.stats();
    for x in 0..IDS {
        assert_eq!(square(&cache, &calls, x), x * x);
    }
    assert_eq!(
        cache.stats().hits,
        before.hits + IDS,
        "the server was up and used"
    );

    let out = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let (seen, recovered) = std::thread::scope(|s| {
        let callers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cache, calls, out, stop) = (&cache, &calls, &out, &stop);
                s.spawn(move || {
                    let mut seen = Seen::default();
                    let mut x = t as u64;
                    while !stop.load(SeqCst) {
                        let was_out = out.load(SeqCst);
                        let start = Instant::now();
                        assert_eq!(square(cache, calls, x % IDS), (x % IDS).pow(2));
                        note(&mut seen, was_out, start.elapsed());
                        x += 1;
                        std::thread::sleep(GAP);
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(GAP * 5);
        out.store(true, SeqCst);
        fault.start(&server);
        std::thread::sleep(OUTAGE);
        let errors = cache.stats().errors;
        assert!(errors > before.errors, "the outage was seen: {errors}");
        let down = cache.get::<u64>("rc-frozen-probe").map(drop);
        assert!(
            matches!(down, Err(Error::HostDown { .. })),
            "the host is skipped: {down:?}"
        );
        out.store(false, SeqCst);
        fault.end(&server);
        let back = Instant::now();
        let hits = cache.stats().hits;
        while cache.stats().hits == hits {
            assert!(back.elapsed() < LIMIT, "the cache is never used again");
            std::thread::sleep(Duration::from_millis(5));
        }
        let recovered = back.elapsed();
        let bound = recovery_bound(&down);
        eprintln!(
            "sync {fault:?}: hits again {recovered:?} after the fault ended (bound {bound:?})"
        );
        assert!(
            recovered <= bound,
            "hits again only {recovered:?} after the fault ended; the backoff left was {down:?}"
        );
        stop.store(true, SeqCst);
        let seen: Vec<_> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        (seen, recovered)
    });
    assert_one_timeout_per_caller("sync", fault, &seen);
    let _ = recovered;
    // Service is whole again: a new value is stored and then read.
    assert_stores_again(
        "sync",
        || cache.stats().errors,
        |x| {
            let fresh = AtomicU32::new(0);
            assert_eq!(square(&cache, &fresh, x), x * x);
            assert_eq!(square(&cache, &fresh, x), x * x);
            fresh.load(SeqCst)
        },
    );

    // No probe thread outlives its probe, nor the cache.
    drop(cache);
    let start = Instant::now();
    while probe_threads() > 0 {
        assert!(
            start.elapsed() < TIMEOUT * 2 + MARGIN,
            "a probe thread is left behind"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn frozen_async(fault: Fault) {
    let server = RedisServer::start();
    let cache = async_cache_for(&server);
    let calls = Arc::new(AtomicU32::new(0));
    for x in 0..IDS {
        assert_eq!(cube(&cache, &calls, x).await, x.pow(3));
    }
    let before = cache.stats();
    for x in 0..IDS {
        assert_eq!(cube(&cache, &calls, x).await, x.pow(3));
    }
    assert_eq!(
        cache.stats().hits,
        before.hits + IDS,
        "the server was up and used"
    );

    let out = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, calls, out, stop) =
                (cache.clone(), calls.clone(), out.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut x = t as u64;
                while !stop.load(SeqCst) {
                    let was_out = out.load(SeqCst);
                    let start = Instant::now();
                    assert_eq!(cube(&cache, &calls, x % IDS).await, (x % IDS).pow(3));
                    note(&mut seen, was_out, start.elapsed());
                    x += 1;
                    tokio::time::sleep(GAP).await;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(GAP * 5).await;
    out.store(true, SeqCst);
    fault.start(&server);
    tokio::time::sleep(OUTAGE).await;
    let errors = cache.stats().errors;
    assert!(errors > before.errors, "the outage was seen: {errors}");
    let down = cache.get::<u64>("rc-frozen-probe").await.map(drop);
    assert!(
        matches!(down, Err(Error::HostDown { .. })),
        "the host is skipped: {down:?}"
    );
    out.store(false, SeqCst);
    fault.end(&server);
    let back = Instant::now();
    let hits = cache.stats().hits;
    while cache.stats().hits == hits {
        assert!(back.elapsed() < LIMIT, "the cache is never used again");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let recovered = back.elapsed();
    let bound = recovery_bound(&down);
    eprintln!("async {fault:?}: hits again {recovered:?} after the fault ended (bound {bound:?})");
    assert!(
        recovered <= bound,
        "hits again only {recovered:?} after the fault ended; the backoff left was {down:?}"
    );
    stop.store(true, SeqCst);
    let mut seen = Vec::new();
    for c in callers {
        seen.push(c.await.unwrap());
    }
    assert_one_timeout_per_caller("async", fault, &seen);
    let mut runs = Vec::new();
    for x in 1000..1000 + STORE_TRIES {
        let errors = cache.stats().errors;
        let fresh = AtomicU32::new(0);
        assert_eq!(cube(&cache, &fresh, x).await, x * x * x);
        assert_eq!(cube(&cache, &fresh, x).await, x * x * x);
        runs.push((fresh.load(SeqCst), cache.stats().errors - errors));
    }
    check_stores_again("async", &runs);
}

#[test]
fn frozen_server_costs_one_timeout_per_caller() {
    frozen_sync(Fault::Freeze);
}

#[test]
fn killed_server_costs_no_timeout_and_comes_back() {
    frozen_sync(Fault::Kill);
}

#[test]
fn async_frozen_server_costs_one_timeout_per_task() {
    let _serial = serial();
    runtime().block_on(frozen_async(Fault::Freeze));
}

#[test]
fn async_killed_server_costs_no_timeout_and_comes_back() {
    let _serial = serial();
    runtime().block_on(frozen_async(Fault::Kill));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The async backend probes from a thread when no tokio runtime is running
/// the call (here: a future polled by hand on a plain thread).
#[test]
fn async_probe_without_a_runtime_uses_a_thread() {
    let _serial = serial();
    let server = RedisServer::start();
    let cache = async_cache_for(&server);
    let calls = AtomicU32::new(0);
    runtime().block_on(async {
        assert_eq!(cube(&cache, &calls, 2).await, 8);
        server.kill();
        // A dropped connection, then a refused connect: marked down.
        let start = Instant::now();
        while !matches!(cache.get::<u64>("k").await, Err(Error::HostDown { .. })) {
            assert!(start.elapsed() < LIMIT, "never marked down");
        }
    });
    server.restart();
    // Outside any runtime, calls fail fast (one poll); the first one after
    // the backoff starts the probe, on a thread. (A call polled so while the
    // server is up would need a runtime to connect: stop polling then.)
    let start = Instant::now();
    loop {
        match poll_once(cache.get::<u64>("k")) {
            Some(Err(Error::HostDown { retry_in, .. })) if retry_in.is_zero() => break,
            Some(Err(Error::HostDown { retry_in, .. })) => std::thread::sleep(retry_in),
            other => panic!("a host that is down fails fast: {other:?}"),
        }
        assert!(start.elapsed() < LIMIT, "the backoff never ends");
    }
    std::thread::sleep(TIMEOUT * 2 + MARGIN);
    runtime().block_on(async {
        // Marked up by the thread: this call does not start a probe, it uses the server.
        assert_eq!(cache.get::<u64>("k").await.unwrap(), None);
    });
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
