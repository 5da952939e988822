//! `--soak`: the fault checker of `tests/checker/mod.rs` for a long time,
//! and the memory of the process.
//!
//! Two checkers run side by side for the whole soak, one on a single server
//! (behind the delay proxy), one on a 3-host `CacheCluster` (one host behind
//! the proxy): blocking threads and tokio tasks read through decorated calls,
//! batches and direct `get`/`get_many`, and write (bump a versioned source,
//! then `invalidate_*`, `try_invalidate_*`, `delete`, `set` or `set_many`)
//! while a seeded schedule pauses, kills, restarts and flushes the servers,
//! kills their connections and slows the proxy. Every value read is checked:
//! it must be exactly its key's value at some version no newer than the
//! source's (else *wrong*) and no older than the last write whose
//! invalidation had returned when the read started (else *stale*). Resident
//! memory is sampled after a warm-up and at the end.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::checker::{self, Config, Report};
use crate::report::{self, Machine};
use crate::rows::rss_bytes;

/// Length of a soak unless `--soak-secs` says otherwise: 10 minutes.
pub const DEFAULT_SECS: u64 = 600;
/// The section of `BENCHMARKS.md` a soak rewrites.
pub const TITLE: &str = "Soak";
/// Load before the first memory sample.
const WARMUP: Duration = Duration::from_secs(10);
/// Most growth of resident memory from the first sample to the last.
const MAX_GROWTH_MIB: f64 = 10.0;

const MIB: f64 = 1024.0 * 1024.0;

/// Resident memory at a moment of the soak: seconds since its start, bytes.
type Sample = (f64, f64);

/// Runs the soak for `secs` seconds. Returns its section of
/// `BENCHMARKS.md` and whether it passed.
pub fn run(secs: u64, command: &str) -> (String, bool) {
    let load_before = report::load_average();
    let seed = checker::seed_from_env();
    let duration = Duration::from_secs(secs);
    let configs = [
        Config::new("single server", 0, duration, seed),
        Config::new("3-host cluster", 3, duration, seed ^ 0x5eed),
    ];
    let start = Instant::now();
    let rss: Mutex<Vec<Sample>> = Mutex::new(Vec::new());
    let sample = || {
        let at = start.elapsed().as_secs_f64();
        rss.lock().expect("samples").push((at, rss_bytes()));
    };
    let reports: Vec<Report> = thread::scope(|scope| {
        let runs: Vec<_> = configs
            .iter()
            .map(|c| scope.spawn(move || checker::run(c)))
            .collect();
        // Samples after the warm-up, then every minute, while they run.
        let mut at = start + WARMUP.min(duration / 2);
        while runs.iter().any(|r| !r.is_finished()) {
            if Instant::now() >= at {
                sample();
                at += Duration::from_secs(60);
            }
            thread::sleep(Duration::from_millis(100));
        }
        sample();
        runs.into_iter()
            .map(|r| r.join().expect("a checker panicked"))
            .collect()
    });
    for r in &reports {
        eprintln!("rc-bench soak: {}", r.details());
    }
    let rss = rss.into_inner().expect("samples");
    let growth = match (rss.first(), rss.last()) {
        (Some(a), Some(b)) => (b.1 - a.1) / MIB,
        _ => f64::NAN,
    };

    let mut failures = Vec::new();
    for r in &reports {
        if !r.passed() {
            failures.push(format!(
                "{}: {} wrong, {} stale, {} panics (seed {})",
                r.name, r.wrong, r.stale, r.panics, r.seed
            ));
        }
    }
    if growth.is_nan() || growth > MAX_GROWTH_MIB {
        failures.push(format!(
            "resident memory grew {growth:+.1} MiB (at most +{MAX_GROWTH_MIB} MiB)"
        ));
    }

    let mut md = format!("## {TITLE}\n\n");
    md += "The fault checker (`tests/checker/mod.rs`, also run for 20 s per configuration by \
           `cargo xtask test`) for the whole soak, on a single server and on a 3-host \
           `CacheCluster` side by side. Blocking threads and tokio tasks read through decorated \
           calls, batches and direct `get`/`get_many`, and write: bump a versioned source, then \
           `invalidate_*`, `try_invalidate_*`, `delete`, `set` or `set_many`. Meanwhile a seeded \
           schedule injects one fault at a time (every 0.2–1.5 s, held 50–800 ms): `SIGSTOP`/\
           `SIGCONT`, kill and restart, `CLIENT KILL TYPE normal`, restart at once (empty), \
           `FLUSHALL`, and 20/120/350 ms per chunk on the delay proxy in front of one server; \
           socket timeouts are 200 ms. A value read is **wrong** if it is not exactly (bit for \
           bit) its key's value at some version no newer than the source's when the read \
           returned; **stale** if older than the last write whose invalidation (or `set`) had \
           returned, even with `Err`, when the read started. Goal: 0 and 0.\n\n";
    let run = format!("soak: {secs} s of the fault checker, two configurations at once");
    report::facts(&mut md, &Machine::here(), command, &run, &load_before);
    let total = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    let _ = writeln!(
        md,
        "- **operations: {}, faults injected: {}, wrong values: {}, stale reads: {}**",
        total(|r| r.ops),
        total(|r| r.faults),
        total(|r| r.wrong),
        total(|r| r.stale)
    );
    for r in &reports {
        let kinds: Vec<String> = r
            .faults_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            md,
            "- {} (seed {}): {} operations ({} reads, {} of them returning a value, all \
             checked; {} writes), {} hits and {} misses in the caches' `stats()`, {} direct \
             calls or `try_invalidate_*` returning `Err` (expected while a server is down); \
             {} faults ({}); wrong: {}, stale: {}, panics: {}",
            r.name,
            r.seed,
            r.ops,
            r.reads,
            r.values_checked,
            r.writes,
            r.hits,
            r.misses,
            r.errors,
            r.faults,
            kinds.join(", "),
            r.wrong,
            r.stale,
            r.panics
        );
    }
    let samples: Vec<String> = rss
        .iter()
        .map(|(at, b)| format!("{:.1} ({at:.0} s)", b / MIB))
        .collect();
    let _ = writeln!(
        md,
        "- resident memory (`VmRSS`), in MiB: {} ({growth:+.1} MiB from the first sample to \
         the last)",
        samples.join(", ")
    );
    let _ = writeln!(
        md,
        "- result: {} (fails on a wrong or stale value, a panic, or more than +{MAX_GROWTH_MIB} MiB)",
        if failures.is_empty() {
            "pass".to_owned()
        } else {
            format!("**FAIL**: {}", failures.join("; "))
        }
    );
    (md, failures.is_empty())
}
