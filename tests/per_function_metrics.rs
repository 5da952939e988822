//! The `metrics` feature: each decorated call, batched or not, is counted
//! once, per function, as a hit, a miss or an error, and the body's time is
//! recorded on each run. Checked against a count of what the calls met.

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rc::Cache;
use rc::testing::RedisServer;

/// How long `square`'s body takes: the compute time recorded must cover it.
const BODY: Duration = Duration::from_millis(20);

#[rc::cache(cache = _cache, skip(_cache))]
fn square(_cache: &Cache, n: u64) -> u64 {
    std::thread::sleep(BODY);
    n * n
}

#[rc::cache(cache = _cache, skip(_cache))]
fn cube(_cache: &Cache, n: u64) -> u64 {
    n * n * n
}

/// Counter values by (name, function label), and histogram samples by function label.
type Seen = (HashMap<(String, String), u64>, HashMap<String, Vec<f64>>);

fn read(recorder: &metrics_util::debugging::Snapshotter) -> Seen {
    let (mut counters, mut histograms) = (HashMap::new(), HashMap::new());
    for (key, _, _, value) in recorder.snapshot().into_vec() {
        let key = key.key();
        let function = key
            .labels()
            .find(|l| l.key() == "function")
            .map(|l| l.value().to_owned())
            .expect("every rc metric has a function label");
        match value {
            DebugValue::Counter(n) => {
                counters.insert((key.name().to_owned(), function), n);
            }
            DebugValue::Histogram(v) => {
                histograms.insert(function, v.into_iter().map(|f| f.0).collect());
            }
            DebugValue::Gauge(_) => panic!("rc records no gauge: {key:?}"),
        }
    }
    (counters, histograms)
}

#[test]
fn hits_misses_errors_and_compute_time_per_function() {
    let server = RedisServer::start();
    let cache = Cache::open(&server.url()).unwrap();
    // Nothing listens on this port: every read fails, the body runs.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = Cache::builder()
        .url(&format!("redis://127.0.0.1:{dead_port}"))
        .build()
        .unwrap();

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        assert_eq!(square(&cache, 2), 4); // miss
        assert_eq!(square(&cache, 2), 4); // hit
        assert_eq!(square(&cache, 2), 4); // hit
        assert_eq!(square(&cache, 3), 9); // miss
        assert_eq!(cube(&cache, 2), 8); // miss
        let batch = cache.batch();
        let hit = batch_square(&batch, &cache, 3);
        let miss = batch_square(&batch, &cache, 4);
        let cube_hit = batch_cube(&batch, &cache, 2);
        batch.run();
        assert_eq!(hit.into_value(), Some(9));
        assert_eq!(miss.into_value(), Some(16));
        assert_eq!(cube_hit.into_value(), Some(8));
        assert_eq!(square(&dead, 5), 25); // error (refused)
        assert_eq!(square(&dead, 5), 25); // error (server marked down)
    });

    let (counters, histograms) = read(&snapshotter);
    let square_fn = format!("{}::square", module_path!());
    let cube_fn = format!("{}::cube", module_path!());
    let count = |name: &str, function: &str| {
        counters
            .get(&(name.to_owned(), function.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(count(rc::metrics::HITS, &square_fn), 3, "{counters:?}");
    assert_eq!(count(rc::metrics::MISSES, &square_fn), 3, "{counters:?}");
    assert_eq!(count(rc::metrics::ERRORS, &square_fn), 2, "{counters:?}");
    assert_eq!(count(rc::metrics::HITS, &cube_fn), 1, "{counters:?}");
    assert_eq!(count(rc::metrics::MISSES, &cube_fn), 1, "{counters:?}");
    assert_eq!(count(rc::metrics::ERRORS, &cube_fn), 0, "{counters:?}");

    // The body ran on each miss and each error: 5 runs of `square`, each
    // at least as long as its sleep.
    let times = &histograms[&square_fn];
    assert_eq!(times.len(), 5, "{times:?}");
    assert!(times.iter().all(|&t| t >= BODY.as_secs_f64()), "{times:?}");
    assert_eq!(histograms[&cube_fn].len(), 1);
}
