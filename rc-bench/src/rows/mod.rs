//! The benchmark's rows: one small function per scenario, each starting the
//! `redis-server`s it needs and comparing rc with its baseline.

mod cluster;
mod decorated;
mod down;
mod frozen;
mod near;
mod peers;
mod redis_cluster;
mod single;
mod stale;
mod stampede;

pub(crate) use peers::rss_bytes;

use std::future::Future;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use rc::testing::RedisServer;
use tokio::runtime::Runtime;

use crate::harness::{Comparison, Plan, Round, Summary};

/// What a row must show to meet its goal.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// rc's time per operation over the baseline's is at most this.
    AtMost(f64),
    /// The baseline's time over rc's is at least this (rc this many times faster).
    FasterBy(f64),
    /// rc's throughput is at least this fraction of the baseline's.
    ShareAtLeast(f64),
    /// rc's throughput as a fraction of the baseline's (a ceiling), no goal.
    Share,
    /// rc's memory exceeds the baseline's by at most this many MiB.
    ExtraMibAtMost(f64),
    /// rc's p99 of single operations is below this many ns (an absolute
    /// bound; the ratio column shows rc's overhead over the baseline).
    P99Below(f64),
}

impl Goal {
    /// The row's ratio, oriented as the goal reads.
    pub fn ratio(self, c: &Comparison) -> f64 {
        match self {
            Goal::AtMost(_) => c.ratio(),
            Goal::FasterBy(_) | Goal::ShareAtLeast(_) | Goal::Share => 1.0 / c.ratio(),
            Goal::ExtraMibAtMost(_) => (c.a.median - c.b.median) / MIB,
            Goal::P99Below(_) => c.a.p99.unwrap_or(f64::NAN),
        }
    }

    /// The ratio column: [`show_ratio`](Self::show_ratio) of the row's
    /// ratio, or for [`Goal::P99Below`] rc's overhead over the baseline at
    /// p50 and p99.
    pub fn show_sides(self, c: &Comparison) -> String {
        match self {
            Goal::P99Below(_) => {
                let over = |a: Option<f64>, b: Option<f64>| {
                    a.zip(b).map_or("?".to_owned(), |(a, b)| time(a - b))
                };
                format!(
                    "+{} p50, +{} p99",
                    over(c.a.p50, c.b.p50),
                    over(c.a.p99, c.b.p99)
                )
            }
            _ => {
                let mut shown = self.show_ratio(self.ratio(c));
                if let Some(m) = self.medians_differ(c) {
                    shown += &format!(" (medians: {m:.2})");
                }
                shown
            }
        }
    }

    /// The ratio of the two sides' medians, oriented as [`ratio`](Self::ratio),
    /// when the rounds were paired and it differs from the paired ratio by
    /// more than 5% (rounds that saw different machine load).
    pub fn medians_differ(self, c: &Comparison) -> Option<f64> {
        if c.ratios.is_empty() {
            return None;
        }
        let of_medians = match self {
            Goal::AtMost(_) => c.a.median / c.b.median,
            Goal::FasterBy(_) | Goal::ShareAtLeast(_) | Goal::Share => c.b.median / c.a.median,
            Goal::ExtraMibAtMost(_) | Goal::P99Below(_) => return None,
        };
        let paired = self.ratio(c);
        ((of_medians - paired).abs() > 0.05 * paired).then_some(of_medians)
    }

    /// `Some(met)`, or `None` for a row without a goal.
    pub fn met(self, ratio: f64) -> Option<bool> {
        match self {
            Goal::AtMost(x) | Goal::ExtraMibAtMost(x) => Some(ratio <= x),
            Goal::FasterBy(x) | Goal::ShareAtLeast(x) => Some(ratio >= x),
            Goal::P99Below(x) => Some(ratio < x),
            Goal::Share => None,
        }
    }

    /// The ratio as shown in the table.
    /// Two decimals, or three when two would print the goal's own bound.
    pub fn show_ratio(self, ratio: f64) -> String {
        let r = match self {
            Goal::AtMost(x) | Goal::FasterBy(x) | Goal::ShareAtLeast(x)
                if format!("{ratio:.2}") == format!("{x:.2}") =>
            {
                format!("{ratio:.3}")
            }
            _ => format!("{ratio:.2}"),
        };
        match self {
            Goal::AtMost(_) => r,
            Goal::FasterBy(_) => format!("{r}× faster"),
            Goal::ShareAtLeast(_) | Goal::Share => format!("{r} of base"),
            Goal::ExtraMibAtMost(_) => format!("{ratio:+.1} MiB"),
            Goal::P99Below(_) => format!("p99 {}", time(ratio)),
        }
    }

    /// The goal as shown in the table.
    pub fn show(self) -> String {
        match self {
            Goal::AtMost(x) => format!("rc/base ≤ {x:.2}"),
            Goal::FasterBy(x) => format!("≥ {x}× faster"),
            Goal::ShareAtLeast(x) => format!("≥ {x} of base"),
            Goal::Share => "(ceiling, reported)".to_owned(),
            Goal::ExtraMibAtMost(x) => format!("≤ +{x} MiB"),
            Goal::P99Below(x) => format!("rc p99 < {}", time(x)),
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// How a row's two numbers read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Time of one operation, with its p99 when measured.
    Latency,
    /// Amortised time per operation of many concurrent ones, shown with ops/s.
    Throughput,
    /// Bytes of resident memory.
    Memory,
    /// Single operations' p50 and p99, for rows about the tail.
    Tail,
}

impl Unit {
    /// One side's number, e.g. `24.3 µs (p99 31.0 µs)`.
    pub fn show(self, s: &Summary) -> String {
        match self {
            Unit::Latency => match s.p99 {
                Some(p) => format!("{} (p99 {})", time(s.median), time(p)),
                None => time(s.median),
            },
            Unit::Throughput => format!("{}/op = {:.0}k ops/s", time(s.median), 1e6 / s.median),
            Unit::Memory => format!("{:.1} MiB", s.median / MIB),
            Unit::Tail => match (s.p50, s.p99) {
                (Some(p50), Some(p99)) => format!("p50 {}, p99 {}", time(p50), time(p99)),
                _ => time(s.median),
            },
        }
    }
}

/// `ns` as µs or ms.
pub fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} µs", ns / 1e3)
    }
}

/// A row's numbers.
#[derive(Debug)]
pub struct Outcome {
    /// rc (side A) and the baseline (side B).
    pub sides: Comparison,
    /// How both read.
    pub unit: Unit,
    /// Anything a reader needs to weigh the numbers (shown under the table).
    pub note: Option<String>,
}

impl Outcome {
    fn new(sides: Comparison, unit: Unit) -> Outcome {
        Outcome {
            sides,
            unit,
            note: None,
        }
    }

    fn latency(sides: Comparison) -> Outcome {
        Outcome::new(sides, Unit::Latency)
    }
}

/// What every row gets: the run's size.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// `--quick`: fewer rounds and operations.
    pub quick: bool,
}

impl Ctx {
    /// A plan of 15 rounds of `ops` operations (a tenth of them in a quick
    /// run), with a tenth of a round (at least 1) as warm-up.
    pub fn plan(&self, ops: usize) -> Plan {
        let (rounds, ops) = if self.quick {
            (15, (ops / 10).max(1))
        } else {
            (15, ops)
        };
        Plan {
            rounds,
            ops,
            warmup: (ops / 10).max(1),
        }
    }
}

/// One line of the table.
pub struct Row {
    /// Short name, matched by `--filter`.
    pub name: &'static str,
    /// What rc does and what the baseline does, exactly.
    pub measures: &'static str,
    /// What the row must show.
    pub goal: Goal,
    /// Measures it.
    pub run: fn(&Ctx) -> Outcome,
}

/// Every row, in table order.
pub fn all() -> Vec<Row> {
    let mut rows = single::rows();
    rows.extend(decorated::rows());
    rows.extend(near::rows());
    rows.extend(cluster::rows());
    rows.extend(redis_cluster::rows());
    rows.extend(peers::rows());
    rows.extend(down::rows());
    rows.extend(frozen::rows());
    rows.extend(stampede::rows());
    rows.extend(stale::rows());
    rows
}

/// The tokio runtime of every async row: a multi-thread runtime with one
/// worker. One worker, because then the calling task and each connection's
/// driver task share a thread on every run; with two workers on a 2-core
/// machine, whether they do is chance, sticky for a connection's life, and
/// moves a sequential call between about 22 and 70 µs, for rc and baselines
/// alike. One runtime for the whole run, because async caches held in
/// statics keep connections whose driver tasks live on it.
fn runtime() -> &'static Runtime {
    static RT: LazyLock<Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime")
    });
    &RT
}

/// Runs `fut` as a task on the runtime's workers and waits for it. Every
/// async side runs (and opens its connections) this way, so no connection's
/// driver task starts from outside the workers and lands elsewhere by chance.
fn on_worker<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime()
        .block_on(runtime().spawn(fut))
        .expect("bench task")
}

/// Awaits `op(i)` for `i in 0..n` one after another inside a task on the
/// runtime's workers (where a request handler runs), timing each.
fn time_each_async<F, Fut>(n: usize, op: F) -> Round
where
    F: Fn(usize) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    on_worker(async move {
        let mut op_ns = Vec::with_capacity(n);
        for i in 0..n {
            let start = Instant::now();
            op(i).await;
            op_ns.push(start.elapsed().as_nanos() as u64);
        }
        Round::from_ops(op_ns)
    })
}

/// The server of the decorated-function rows, shared because the functions
/// bind their caches (rc's and the peer's) once, in statics.
fn shared_server() -> &'static RedisServer {
    static SERVER: LazyLock<RedisServer> = LazyLock::new(server);
    &SERVER
}

/// A throwaway server on a free port of 127.0.0.1.
fn server() -> RedisServer {
    RedisServer::start()
}

/// A JSON string value whose encoding is exactly `size` bytes.
fn value(size: usize) -> String {
    "x".repeat(size - 2)
}

/// Keys `bench:0`, `bench:1`, ...
fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("bench:{i}")).collect()
}

/// An expiry long enough for the whole run.
const EXPIRE: Option<Duration> = Some(Duration::from_secs(3600));

#[cfg(test)]
mod tests {
    use super::Goal;

    #[test]
    fn ratios_at_the_bound_get_a_third_decimal() {
        assert_eq!(Goal::AtMost(1.0).show_ratio(1.004), "1.004");
        assert_eq!(Goal::AtMost(1.1).show_ratio(1.02), "1.02");
        assert_eq!(Goal::FasterBy(10.0).show_ratio(44.681), "44.68× faster");
        assert_eq!(Goal::ShareAtLeast(0.9).show_ratio(0.8996), "0.900 of base");
        assert_eq!(Goal::AtMost(1.0).met(1.004), Some(false));
    }

    #[test]
    fn p99_goal_is_absolute_and_shows_the_overhead() {
        use crate::harness::Comparison;
        let mut c = Comparison::values(900.0, 40.0);
        c.a.p50 = Some(800.0);
        c.a.p99 = Some(2_500.0);
        c.b.p50 = Some(30.0);
        c.b.p99 = Some(50.0);
        let goal = Goal::P99Below(1e6);
        assert_eq!(goal.ratio(&c), 2_500.0);
        assert_eq!(goal.met(goal.ratio(&c)), Some(true));
        assert_eq!(goal.met(1e6), Some(false));
        assert_eq!(goal.show(), "rc p99 < 1.00 ms");
        assert_eq!(goal.show_sides(&c), "+0.77 µs p50, +2.45 µs p99");
        assert_eq!(goal.show_ratio(goal.ratio(&c)), "p99 2.50 µs");
    }
}
