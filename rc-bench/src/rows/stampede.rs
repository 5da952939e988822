//! Stampede: many callers miss one cold key at once.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::decorated::ASYNC_CACHE;
use super::{Ctx, Goal, Outcome, Row, on_worker, shared_server, time_each_async, value};
use crate::harness::interleave;

/// Callers per round.
const CALLERS: usize = 1000;
/// What the function costs.
const BODY: Duration = Duration::from_millis(10);

static RUNS: AtomicU32 = AtomicU32::new(0);

/// A 10 ms computation with a 100 B result.
#[rc::cache(cache = ASYNC_CACHE, expire = 3600)]
async fn report(id: u64) -> String {
    RUNS.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(BODY).await;
    black_box(id);
    value(super::decorated::SMALL)
}

pub fn rows() -> Vec<Row> {
    vec![Row {
        name: "stampede-1000-async",
        measures: "1000 tokio tasks call `report(id)` (a 10 ms body) on a key no one has computed \
                   yet, all at once; time until every task has its value, vs one 10 ms body plus \
                   one raw `GET` in the same runtime (what a single caller would pay); per round",
        goal: Goal::AtMost(1.5),
        run: stampede,
    }]
}

fn stampede(ctx: &Ctx) -> Outcome {
    // Ids no earlier round used, so every round starts cold.
    static NEXT: AtomicU64 = AtomicU64::new(1 << 40);
    let client = redis::Client::open(shared_server().url()).expect("redis client");
    let conn = on_worker(async move { client.get_multiplexed_async_connection().await })
        .expect("raw multiplexed connection");
    let calls = AtomicU64::new(0);
    let runs_before = RUNS.load(Ordering::Relaxed);
    let rc = |n| {
        calls.fetch_add(n as u64, Ordering::Relaxed);
        time_each_async(n, |_| async {
            let id = NEXT.fetch_add(1, Ordering::Relaxed);
            let tasks: Vec<_> = (0..CALLERS).map(|_| tokio::spawn(report(id))).collect();
            for t in tasks {
                black_box(t.await.expect("caller task"));
            }
        })
    };
    let one = |n| {
        let conn = conn.clone();
        time_each_async(n, move |_| {
            let mut conn = conn.clone();
            async move {
                tokio::time::sleep(BODY).await;
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg("stampede:none")
                    .query_async(&mut conn)
                    .await
                    .expect("GET");
                black_box(v);
            }
        })
    };
    let mut out = Outcome::latency(interleave(&ctx.plan(20), rc, one));
    let rounds = calls.load(Ordering::Relaxed).max(1);
    let runs = u64::from(RUNS.load(Ordering::Relaxed) - runs_before);
    out.note = Some(format!(
        "the body ran {runs} times for {rounds} cold keys of {CALLERS} callers each \
         ({:.2} per key; goal 1)",
        runs as f64 / rounds as f64
    ));
    out
}
