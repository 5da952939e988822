//! Interleaved measurement: a scenario and its baseline take turns in the
//! same run (warm-up, then A B A B ...), so drift of the machine (frequency,
//! other processes, the server's memory) hits both sides alike.

use std::time::{Duration, Instant};

/// How long one comparison runs: `rounds` rounds of `ops` operations per
/// side, after `warmup` unmeasured operations per side.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Measured rounds per side.
    pub rounds: usize,
    /// Operations in one round.
    pub ops: usize,
    /// Unmeasured operations per side before the first round.
    pub warmup: usize,
}

/// One side's round: the mean time of one operation, and each operation's
/// own time when the side measured them one by one.
#[derive(Debug)]
pub struct Round {
    mean_ns: f64,
    op_ns: Vec<u64>,
}

impl Round {
    /// A round whose operations were timed one by one.
    pub fn from_ops(op_ns: Vec<u64>) -> Round {
        let mean_ns = op_ns.iter().sum::<u64>() as f64 / op_ns.len().max(1) as f64;
        Round { mean_ns, op_ns }
    }

    /// A round timed as a whole (concurrent operations, a child process):
    /// `total / ops` per operation, no per-operation times.
    pub fn from_total(total: Duration, ops: usize) -> Round {
        Round {
            mean_ns: total.as_nanos() as f64 / ops.max(1) as f64,
            op_ns: Vec::new(),
        }
    }
}

/// One side of a comparison over all its rounds.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Median over the rounds of the round's mean per operation (ns).
    /// For memory rows: bytes.
    pub median: f64,
    /// 99th percentile of the single operations of all rounds (ns), when
    /// they were timed one by one.
    pub p99: Option<f64>,
    /// Their 50th percentile (ns), likewise.
    pub p50: Option<f64>,
}

impl Summary {
    fn value(v: f64) -> Summary {
        Summary {
            median: v,
            p99: None,
            p50: None,
        }
    }

    fn of(rounds: &[Round]) -> Summary {
        let mut means: Vec<f64> = rounds.iter().map(|r| r.mean_ns).collect();
        let mut ops: Vec<u64> = rounds
            .iter()
            .flat_map(|r| r.op_ns.iter().copied())
            .collect();
        ops.sort_unstable();
        let pct = |p: f64| {
            (!ops.is_empty()).then(|| ops[((ops.len() - 1) as f64 * p).round() as usize] as f64)
        };
        Summary {
            median: median(&mut means),
            p99: pct(0.99),
            p50: pct(0.5),
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs `op(i)` for `i in 0..ops`, timing each call.
pub fn time_each(ops: usize, mut op: impl FnMut(usize)) -> Round {
    let mut op_ns = Vec::with_capacity(ops);
    for i in 0..ops {
        let start = Instant::now();
        op(i);
        op_ns.push(start.elapsed().as_nanos() as u64);
    }
    Round::from_ops(op_ns)
}

/// CPU time this thread has used (ns), from `/proc/thread-self/schedstat`.
pub fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Wraps a side so that each round also records the calling thread's CPU
/// time per operation (ns) in `cpu`. Only meaningful for sides that do their
/// work on the calling thread (the blocking ones).
pub fn with_cpu<'a>(
    mut side: impl FnMut(usize) -> Round + 'a,
    cpu: &'a mut Vec<f64>,
) -> impl FnMut(usize) -> Round + 'a {
    move |n| {
        let before = thread_cpu_ns();
        let round = side(n);
        if let (Some(b), Some(a)) = (before, thread_cpu_ns()) {
            cpu.push(a.saturating_sub(b) as f64 / n.max(1) as f64);
        }
        round
    }
}

/// The median of `v` (NaN when empty).
pub fn median_of(v: &[f64]) -> f64 {
    median(&mut v.to_vec())
}

/// What [`interleave`] measured.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// Side A (rc).
    pub a: Summary,
    /// Side B (the baseline).
    pub b: Summary,
    /// A's mean over B's mean in each round, A's round paired with the B
    /// round right after it.
    pub ratios: Vec<f64>,
}

impl Comparison {
    /// Two single numbers (e.g. memory) rather than timed rounds.
    pub fn values(a: f64, b: f64) -> Comparison {
        Comparison {
            a: Summary::value(a),
            b: Summary::value(b),
            ratios: Vec::new(),
        }
    }

    /// Numbers measured once per round on each side (e.g. CPU time per
    /// operation), paired round by round.
    pub fn paired(a: &[f64], b: &[f64]) -> Comparison {
        Comparison {
            a: Summary::value(median_of(a)),
            b: Summary::value(median_of(b)),
            ratios: a.iter().zip(b).map(|(a, b)| a / b).collect(),
        }
    }

    /// The median of the per-round ratios A/B: load that changes between
    /// rounds (other processes on the machine) cancels out of each pair.
    /// Falls back to the ratio of the medians when there are no rounds.
    pub fn ratio(&self) -> f64 {
        if self.ratios.is_empty() {
            self.a.median / self.b.median
        } else {
            median(&mut self.ratios.clone())
        }
    }
}

/// Runs both sides `plan.rounds` times, alternating: warm-up of A and B, then
/// A B A B .... Each side is called with the number of operations to do and
/// returns its [`Round`].
pub fn interleave<A, B>(plan: &Plan, mut a: A, mut b: B) -> Comparison
where
    A: FnMut(usize) -> Round,
    B: FnMut(usize) -> Round,
{
    if plan.warmup > 0 {
        a(plan.warmup);
        b(plan.warmup);
    }
    let mut ra = Vec::with_capacity(plan.rounds);
    let mut rb = Vec::with_capacity(plan.rounds);
    for _ in 0..plan.rounds {
        ra.push(a(plan.ops));
        rb.push(b(plan.ops));
    }
    let ratios = ra
        .iter()
        .zip(&rb)
        .map(|(x, y)| x.mean_ns / y.mean_ns)
        .collect();
    Comparison {
        a: Summary::of(&ra),
        b: Summary::of(&rb),
        ratios,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_round_means_and_p99_of_ops() {
        let rounds = [
            Round::from_ops(vec![10, 10, 10, 10]),
            Round::from_ops(vec![20, 20, 20, 20]),
            Round::from_ops(vec![30, 30, 30, 1000]),
        ];
        let s = Summary::of(&rounds);
        assert_eq!(s.median, 20.0);
        assert_eq!(s.p99, Some(1000.0));
        assert_eq!(s.p50, Some(20.0));
        let s = Summary::of(&[Round::from_total(Duration::from_micros(10), 10)]);
        assert_eq!((s.median, s.p99, s.p50), (1000.0, None, None));
    }

    #[test]
    fn interleaves_after_warm_up() {
        let log = std::cell::RefCell::new(Vec::new());
        let plan = Plan {
            rounds: 2,
            ops: 3,
            warmup: 1,
        };
        let c = interleave(
            &plan,
            |n| {
                log.borrow_mut().push(('a', n));
                Round::from_total(Duration::from_nanos(1), n)
            },
            |n| {
                log.borrow_mut().push(('b', n));
                Round::from_total(Duration::from_nanos(1), n)
            },
        );
        assert_eq!(
            log.into_inner(),
            [('a', 1), ('b', 1), ('a', 3), ('b', 3), ('a', 3), ('b', 3)]
        );
        assert_eq!(c.ratios, [1.0, 1.0]);
        assert_eq!(c.ratio(), 1.0);
    }
}
