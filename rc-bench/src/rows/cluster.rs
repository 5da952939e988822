//! Rows on a `CacheCluster` of four servers: `get_many` fan-out against
//! serial per-host calls and against one `MGET` on one server.

use std::hint::black_box;
use std::time::Duration;

use rc::testing::RedisServer;
use rc::{Cache, CacheCluster, HostConfig};

use super::{Ctx, EXPIRE, Goal, Outcome, Row, keys, server, time, value};
use crate::harness::{Comparison, interleave, median_of, time_each, with_cpu};
use rc::testing::DelayProxy;

/// Servers of the cluster.
const HOSTS: usize = 4;
/// Keys of one `get_many`.
const KEYS: usize = 1000;
/// Size of each value (its JSON encoding).
const SIZE: usize = 100;
/// The delay proxy's hold of each chunk, per direction.
const DELAY: Duration = Duration::from_millis(1);

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "cluster-get_many-parallel",
            measures: "`Cache::get_many::<String>` of 1000 keys (100 B values) on a `CacheCluster` of 4 \
                       servers (CRC32 router, default `max_concurrency`: all hosts written, then all read) vs \
                       the same cluster built with `max_concurrency(1)` (one host after the other); per call",
            goal: Goal::FasterBy(2.5),
            run: |ctx| parallel_vs_serial(ctx, None),
        },
        Row {
            name: "cluster-get_many-parallel-delay-1ms",
            measures: "as `cluster-get_many-parallel` with every server behind the 1 ms delay proxy of \
                       `cluster-get_many-delay-1ms`: what the fan-out saves when the network, not the CPU, \
                       is the cost",
            goal: Goal::FasterBy(2.5),
            run: |ctx| parallel_vs_serial(ctx, Some(DELAY)),
        },
        Row {
            name: "cluster-get_many-vs-mget",
            measures: "the parallel `get_many` of `cluster-get_many-parallel` vs the floor: one raw `redis` \
                       `MGET` of the same 1000 keys on one server + `serde_json::from_slice` of each value",
            goal: Goal::AtMost(1.3),
            run: |ctx| cluster_vs_mget(ctx, None),
        },
        Row {
            name: "cluster-get_many-cpu",
            measures: "the CPU time the calling thread spends per `get_many` of \
                       `cluster-get_many-vs-mget` vs per raw `MGET` + decode on one server \
                       (median of rounds, the ratio of each round's pair)",
            goal: Goal::AtMost(1.1),
            run: cpu_vs_mget,
        },
        Row {
            name: "cluster-get_many-delay-1ms",
            measures: "as `cluster-get_many-vs-mget` with every server (the floor's too) behind a loopback \
                       proxy holding each chunk 1 ms per direction: 4 servers' round trips at once vs one \
                       server's round trip",
            goal: Goal::AtMost(1.3),
            run: |ctx| cluster_vs_mget(ctx, Some(DELAY)),
        },
    ]
}

/// A blocking cluster cache over `ports` of 127.0.0.1, named `cache00`...
fn cluster(ports: &[u16], max_concurrency: usize) -> Cache {
    CacheCluster::builder()
        .hosts(ports.iter().enumerate().map(|(i, &p)| {
            (
                format!("cache{i:02}"),
                HostConfig::new().host("127.0.0.1").port(p),
            )
        }))
        .max_concurrency(max_concurrency)
        .build()
        .expect("cluster cache")
}

fn start_servers(n: usize) -> Vec<RedisServer> {
    (0..n).map(|_| server()).collect()
}

fn port(s: &RedisServer) -> u16 {
    s.port().expect("a TCP server")
}

/// Stores the row's 1000 values through `cache`; returns their keys.
fn fill(cache: &Cache) -> Vec<String> {
    let keys = keys(KEYS);
    let v = value(SIZE);
    assert!(
        cache
            .set_many(keys.iter().map(|k| (k.as_str(), &v)), EXPIRE)
            .expect("fill")
    );
    keys
}

fn get_many(cache: &Cache, keys: &[String]) {
    let values: Vec<Option<String>> = cache.get_many(keys).expect("get_many");
    assert!(values.iter().all(Option::is_some), "every key is a hit");
    black_box(values);
}

/// Ports of proxies delaying each of `ports` by `delay`, or `ports` themselves.
fn delayed(ports: &[u16], delay: Option<Duration>) -> (Vec<u16>, Vec<DelayProxy>) {
    match delay {
        None => (ports.to_vec(), Vec::new()),
        Some(d) => {
            let proxies: Vec<DelayProxy> = ports
                .iter()
                .map(|&p| DelayProxy::start(p, d).expect("delay proxy"))
                .collect();
            (proxies.iter().map(DelayProxy::port).collect(), proxies)
        }
    }
}

fn delay_note(d: Duration) -> String {
    format!(
        "the proxy holds each chunk {} ms per direction, so one round trip costs ≥ {} ms",
        d.as_millis(),
        2 * d.as_millis()
    )
}

fn parallel_vs_serial(ctx: &Ctx, delay: Option<Duration>) -> Outcome {
    let servers = start_servers(HOSTS);
    let direct: Vec<u16> = servers.iter().map(port).collect();
    // Filled directly (not through the proxies), so the proxies only see the measured calls.
    let keys = fill(&cluster(&direct, 1));
    let (ports, _proxies) = delayed(&direct, delay);
    let parallel = cluster(&ports, rc::DEFAULT_MAX_CONCURRENCY);
    let serial = cluster(&ports, 1);
    let ops = if delay.is_some() { 100 } else { 300 };
    let mut cpu = Vec::new();
    let mut out = Outcome::latency(interleave(
        &ctx.plan(ops),
        with_cpu(|n| time_each(n, |_| get_many(&parallel, &keys)), &mut cpu),
        |n| time_each(n, |_| get_many(&serial, &keys)),
    ));
    out.note = Some(match delay {
        Some(d) => delay_note(d),
        None => format!(
            "the calling thread itself spends {} of CPU per parallel call (median of rounds: \
             sending, parsing 1000 replies, routing, decoding), so however the 4 servers overlap, \
             a call cannot get faster than that; the client and the 4 servers also share the \
             machine's {} cores",
            time(median_of(&cpu)),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
    });
    out
}

/// What one run of `get_many` against the one-server floor measured.
struct VsMget {
    latency: Comparison,
    /// CPU of the calling thread per call, per round: rc, the floor, and
    /// the same `MGET`s sent by hand to the 4 servers.
    rc_cpu: Vec<f64>,
    raw_cpu: Vec<f64>,
    by_hand_cpu: Vec<f64>,
}

fn vs_mget(ctx: &Ctx, delay: Option<Duration>) -> VsMget {
    let servers = start_servers(HOSTS + 1);
    let direct: Vec<u16> = servers.iter().map(port).collect();
    // Filled directly (not through the proxies), so the proxies only see the measured calls.
    let keys = fill(&cluster(&direct[..HOSTS], 1));
    fill(&Cache::open(&servers[HOSTS].url()).expect("floor cache"));
    let (ports, _proxies) = delayed(&direct, delay);
    let rc = cluster(&ports[..HOSTS], rc::DEFAULT_MAX_CONCURRENCY);
    let floor = format!("redis://127.0.0.1:{}", ports[HOSTS]);
    let mut conn = redis::Client::open(floor)
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let ops = if delay.is_some() { 150 } else { 300 };
    let mut by_hand = ByHand::new(&ports[..HOSTS], &keys);
    let (mut rc_cpu, mut raw_cpu, mut by_hand_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let latency = interleave(
        &ctx.plan(ops),
        with_cpu(|n| time_each(n, |_| get_many(&rc, &keys)), &mut rc_cpu),
        |n| {
            let round = with_cpu(
                |n| {
                    time_each(n, |_| {
                        let replies: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                            .arg(&keys)
                            .query(&mut conn)
                            .expect("MGET");
                        black_box(decode(replies));
                    })
                },
                &mut raw_cpu,
            )(n);
            // Not timed: only its CPU is reported.
            with_cpu(
                |n| time_each(n, |_| drop(black_box(by_hand.get_many()))),
                &mut by_hand_cpu,
            )(n);
            round
        },
    );
    VsMget {
        latency,
        rc_cpu,
        raw_cpu,
        by_hand_cpu,
    }
}

impl VsMget {
    fn cpu_note(&self) -> String {
        format!(
            "CPU of the calling thread per call (median of rounds): rc {}, raw MGET + decode {}, \
             and {} for the same 4 `MGET`s by hand (keys grouped by host beforehand, written to \
             the 4 servers, then read, + decode): what a client pays for 4 servers before routing",
            time(median_of(&self.rc_cpu)),
            time(median_of(&self.raw_cpu)),
            time(median_of(&self.by_hand_cpu))
        )
    }
}

fn cluster_vs_mget(ctx: &Ctx, delay: Option<Duration>) -> Outcome {
    let m = vs_mget(ctx, delay);
    let cpu = m.cpu_note();
    let mut out = Outcome::latency(m.latency);
    out.note = Some(match delay {
        Some(d) => format!("{}; {cpu}", delay_note(d)),
        None => cpu,
    });
    out
}

fn cpu_vs_mget(ctx: &Ctx) -> Outcome {
    let m = vs_mget(ctx, None);
    let mut out = Outcome::latency(Comparison::paired(&m.rc_cpu, &m.raw_cpu));
    out.note = Some(m.cpu_note());
    out
}

/// `serde_json::from_slice` of each value, all hits.
fn decode(replies: Vec<Option<Vec<u8>>>) -> Vec<String> {
    replies
        .into_iter()
        .map(|b| serde_json::from_slice(&b.expect("a hit")).expect("JSON"))
        .collect()
}

/// The cluster's `get_many` written by hand on raw connections: one `MGET`
/// per server of the keys it holds (grouped once, up front), all written,
/// then all read.
struct ByHand {
    conns: Vec<redis::Connection>,
    keys: Vec<Vec<String>>,
}

impl ByHand {
    fn new(ports: &[u16], keys: &[String]) -> ByHand {
        let router = CacheCluster::builder()
            .hosts(ports.iter().enumerate().map(|(i, &p)| {
                (
                    format!("cache{i:02}"),
                    HostConfig::new().host("127.0.0.1").port(p),
                )
            }))
            .build_backend()
            .expect("cluster backend");
        let keys = router
            .host_names()
            .map(|name| {
                let mine = keys.iter().filter(|k| router.host_for_key(k) == Some(name));
                mine.cloned().collect()
            })
            .collect();
        let conns = ports
            .iter()
            .map(|p| {
                redis::Client::open(format!("redis://127.0.0.1:{p}"))
                    .and_then(|c| c.get_connection())
                    .expect("raw connection")
            })
            .collect();
        ByHand { conns, keys }
    }

    fn get_many(&mut self) -> Vec<String> {
        for (conn, keys) in self.conns.iter_mut().zip(&self.keys) {
            let packed = redis::cmd("MGET").arg(keys).get_packed_command();
            conn.send_packed_command(&packed).expect("MGET sent");
        }
        let mut values = Vec::with_capacity(KEYS);
        for conn in &mut self.conns {
            let reply = conn.recv_response().expect("MGET reply");
            let replies: Vec<Option<Vec<u8>>> = redis::from_redis_value(reply).expect("values");
            values.extend(decode(replies));
        }
        assert_eq!(values.len(), KEYS, "every key is a hit");
        values
    }
}
