//! What the cache did over the last minutes, for the stats page's chart:
//! its counters sampled every few seconds, and the chart as inline SVG.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rc::Stats;

/// How often the counters are sampled.
pub const EVERY: Duration = Duration::from_secs(5);
/// How many samples are kept: ten minutes.
const KEEP: usize = 120;

/// The cache's counters at a few instants, oldest first.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<(Instant, Stats)>>,
}

/// What happened between two samples, per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Seconds before now (of the interval's end).
    pub ago: f64,
    /// Hits per second.
    pub hits: f64,
    /// Misses per second.
    pub misses: f64,
    /// Errors per second.
    pub errors: f64,
    /// Hits / (hits + misses), when there were reads.
    pub ratio: Option<f64>,
}

impl History {
    /// Adds a sample taken now.
    pub fn record(&self, stats: Stats) {
        self.record_at(Instant::now(), stats);
    }

    fn record_at(&self, at: Instant, stats: Stats) {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        samples.push_back((at, stats));
        while samples.len() > KEEP {
            samples.pop_front();
        }
    }

    /// The rates between consecutive samples, and from the last one to
    /// `now` (with `current`, the counters now), oldest first.
    pub fn rates(&self, now: Instant, current: Stats) -> Vec<Rates> {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let mut points: Vec<(Instant, Stats)> = samples.iter().copied().collect();
        points.push((now, current));
        points
            .windows(2)
            .filter_map(|w| {
                let ((t0, a), (t1, b)) = (w[0], w[1]);
                let secs = t1.duration_since(t0).as_secs_f64();
                if secs < 0.5 {
                    return None; // too short to say anything per second
                }
                let hits = b.hits.saturating_sub(a.hits) as f64;
                let misses = b.misses.saturating_sub(a.misses) as f64;
                let errors = b.errors.saturating_sub(a.errors) as f64;
                Some(Rates {
                    ago: now.duration_since(t1).as_secs_f64(),
                    hits: hits / secs,
                    misses: misses / secs,
                    errors: errors / secs,
                    ratio: (hits + misses > 0.0).then(|| hits / (hits + misses)),
                })
            })
            .collect()
    }
}

/// Samples `stats()` into `history` every [`EVERY`], forever.
pub async fn sample(history: std::sync::Arc<History>, stats: impl Fn() -> Stats) {
    let mut ticks = tokio::time::interval(EVERY);
    loop {
        ticks.tick().await;
        history.record(stats());
    }
}

// The chart's geometry, in SVG user units.
const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 48.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

/// One line of the chart: name, CSS class, value.
type Series = (&'static str, &'static str, fn(&Rates) -> Option<f64>);

/// The lines of the chart.
const SERIES: [Series; 4] = [
    ("hits/s", "hits", |r| Some(r.hits)),
    ("misses/s", "misses", |r| Some(r.misses)),
    ("errors/s", "errors", |r| Some(r.errors)),
    ("hit ratio", "ratio", |r| r.ratio),
];

/// The rates as an SVG line chart: requests per second on the left axis,
/// the hit ratio (0-100 %) on the right one, time along the bottom.
pub fn chart(rates: &[Rates]) -> String {
    let span = rates
        .iter()
        .map(|r| r.ago)
        .fold(60.0_f64, f64::max)
        .max(EVERY.as_secs_f64());
    let span = (span / 60.0).ceil() * 60.0;
    let top = nice_max(
        rates
            .iter()
            .map(|r| r.hits.max(r.misses).max(r.errors))
            .fold(0.0, f64::max),
    );
    let x = |ago: f64| LEFT + (W - LEFT - RIGHT) * (1.0 - ago / span);
    let y = |v: f64, max: f64| TOP + (H - TOP - BOTTOM) * (1.0 - v / max);

    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"hits, misses and errors per second and hit ratio over the last {} minutes\">\n",
        span / 60.0
    );
    for i in 0..=4 {
        let frac = f64::from(i) / 4.0;
        let yy = y(frac, 1.0);
        let _ = writeln!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <text class=\"axis ratio\" x=\"{}\" y=\"{:.1}\">{:.0}%</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            short(top * frac),
            W - RIGHT + 6.0,
            yy + 4.0,
            frac * 100.0
        );
    }
    let minutes = (span / 60.0) as u32;
    for m in 0..=minutes {
        let xx = x(f64::from(m) * 60.0);
        let label = if m == 0 {
            "now".to_owned()
        } else {
            format!("-{m} min")
        };
        let _ = writeln!(
            svg,
            "<text class=\"axis\" x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            H - 8.0
        );
    }
    for (_, class, value) in SERIES {
        let max = if class == "ratio" { 1.0 } else { top };
        let points: Vec<String> = rates
            .iter()
            .filter_map(|r| Some(format!("{:.1},{:.1}", x(r.ago), y(value(r)?, max))))
            .collect();
        if !points.is_empty() {
            let _ = writeln!(
                svg,
                "<polyline class=\"line {class}\" points=\"{}\"/>",
                points.join(" ")
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The chart's legend, as HTML.
pub fn legend() -> String {
    SERIES
        .iter()
        .map(|(name, class, _)| format!("<span class=\"key {class}\">{name}</span>"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A round number at least `v` (1, 2 or 5 times a power of ten).
fn nice_max(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&n| n >= v)
        .unwrap_or(10.0 * p)
}

/// `1500` as `1.5k`: axis labels stay short.
fn short(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", (v / 100.0).round() / 10.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(hits: u64, misses: u64, errors: u64) -> Stats {
        let mut s = Stats::default();
        s.hits = hits;
        s.misses = misses;
        s.errors = errors;
        s
    }

    #[test]
    fn rates_are_per_second_between_samples() {
        let h = History::default();
        let t0 = Instant::now();
        h.record_at(t0, stats(0, 0, 0));
        h.record_at(t0 + Duration::from_secs(5), stats(40, 10, 5));
        let rates = h.rates(t0 + Duration::from_secs(10), stats(40, 10, 5));
        assert_eq!(rates.len(), 2);
        assert_eq!(rates[0].hits, 8.0);
        assert_eq!(rates[0].misses, 2.0);
        assert_eq!(rates[0].errors, 1.0);
        assert_eq!(rates[0].ratio, Some(0.8));
        assert_eq!(rates[0].ago, 5.0);
        assert_eq!(rates[1].ratio, None, "no reads, no ratio");
    }

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(12.0), 20.0);
        assert_eq!(nice_max(4100.0), 5000.0);
        assert_eq!(short(2500.0), "2.5k");
    }
}
