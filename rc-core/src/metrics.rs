//! Per-function metrics of decorated calls, through the [`metrics`] crate's
//! facade (cargo feature `metrics`).
//!
//! With the feature on, every `#[rc::cache]` call (batched or not) records
//! these, labelled `function` = the function's path (`my_app::models::get_post`):
//!
//! | name | kind | what |
//! |---|---|---|
//! | [`HITS`] | counter | calls answered from the cache |
//! | [`MISSES`] | counter | calls that found nothing cached (or undecodable bytes) |
//! | [`ERRORS`] | counter | calls whose cache read failed, so the body ran (fail open) |
//! | [`STALE`] | counter | calls answered with a value past its expiry (`stale_while_revalidate`, `stale_if_error`) |
//! | [`COMPUTE_SECONDS`] | histogram | time spent in the body on a miss or a background refresh, in seconds |
//!
//! Each call counts once in hits, misses or errors: hits + misses + errors
//! = calls (a stale value served also counts in [`STALE`]). Install any `metrics` recorder (for example `metrics-exporter-prometheus`)
//! to collect them; without one, recording costs a few nanoseconds. Without
//! the feature nothing is recorded and nothing is linked. The cache-wide
//! totals are always in [`Cache::stats`](crate::Cache::stats).
//!
//! [`metrics`]: https://docs.rs/metrics

/// Counter: decorated calls answered from the cache.
pub const HITS: &str = "rc_hits_total";
/// Counter: decorated calls that found nothing cached (or undecodable bytes).
pub const MISSES: &str = "rc_misses_total";
/// Counter: decorated calls whose cache read failed, so the body ran.
pub const ERRORS: &str = "rc_errors_total";
/// Counter: decorated calls answered with a value past its expiry, within
/// `stale_while_revalidate` (a hit) or `stale_if_error` (the body failed).
pub const STALE: &str = "rc_stale_total";
/// Histogram: seconds spent in a decorated function's body on a miss.
pub const COMPUTE_SECONDS: &str = "rc_compute_seconds";

/// What became of one decorated call's read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Read {
    Hit,
    Miss,
    Error,
}

/// How a read that gave no value counts: a failed read is an error, any
/// other (nothing stored, undecodable bytes) a miss.
pub(crate) fn outcome<T, E>(read: &Result<T, E>) -> Read {
    if read.is_err() {
        Read::Error
    } else {
        Read::Miss
    }
}

/// Counts `read` for `function` (a no-op without the feature).
#[inline]
pub(crate) fn read(function: &'static str, read: Read) {
    #[cfg(feature = "metrics")]
    {
        describe();
        let name = match read {
            Read::Hit => HITS,
            Read::Miss => MISSES,
            Read::Error => ERRORS,
        };
        metrics::counter!(name, "function" => function).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (function, read);
}

/// Runs a decorated function's `body`, recording how long it took.
/// Counts a stale value served by `function`.
#[inline]
pub(crate) fn stale(function: &'static str) {
    #[cfg(feature = "metrics")]
    {
        describe();
        metrics::counter!(STALE, "function" => function).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = function;
}

#[inline]
pub(crate) async fn timed<F: std::future::Future>(function: &'static str, body: F) -> F::Output {
    #[cfg(feature = "metrics")]
    {
        let started = std::time::Instant::now();
        let out = body.await;
        metrics::histogram!(COMPUTE_SECONDS, "function" => function)
            .record(started.elapsed().as_secs_f64());
        out
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = function;
        body.await
    }
}

/// Gives the recorder the metrics' help texts, once per process.
#[cfg(feature = "metrics")]
fn describe() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(HITS, "rc: decorated calls answered from the cache");
        metrics::describe_counter!(MISSES, "rc: decorated calls that ran their body");
        metrics::describe_counter!(ERRORS, "rc: decorated calls whose cache read failed");
        metrics::describe_counter!(STALE, "rc: decorated calls answered with a stale value");
        metrics::describe_histogram!(
            COMPUTE_SECONDS,
            metrics::Unit::Seconds,
            "rc: time in a decorated function's body on a miss"
        );
    });
}
