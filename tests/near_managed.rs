//! The near cache (`local_cache`) on a Redis Cluster and under Sentinel,
//! against real servers: a blocking and an async cache read keys that
//! another cache writes, and every value read is checked against the
//! history of what was written, through a slot migration, a killed
//! primary (its replica promoted) and a Sentinel failover.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::TIMEOUT;
use rc::testing::{RedisCluster, RedisSentinel};
use rc::{AsyncCache, Cache, CacheBuilder};

/// Liveness bound for an invalidation to be applied (the goal, a few
/// milliseconds, is measured by the benchmarks, not here).
const BOUND: Duration = Duration::from_millis(500);

/// How long a test waits for something that should happen soon.
const PATIENCE: Duration = Duration::from_secs(10);

const NS: &str = "nm:";

fn on_cluster(cluster: &RedisCluster) -> CacheBuilder {
    Cache::builder()
        .redis_cluster(cluster.seed_urls())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .namespace(NS)
}

fn on_sentinel(sentinel: &RedisSentinel) -> CacheBuilder {
    Cache::builder()
        .sentinel(sentinel.master_name(), sentinel.sentinel_urls())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .namespace(NS)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The caches under test: a blocking and an async one with near caches,
/// and a plain one (no near cache) that writes and tells the truth.
struct Caches {
    near: Cache,
    near_async: AsyncCache,
    plain: Cache,
    rt: tokio::runtime::Runtime,
}

impl Caches {
    fn new(builder: impl Fn() -> CacheBuilder) -> Caches {
        let rt = runtime();
        let near_async = {
            let _guard = rt.enter();
            builder().local_cache(1000).build_async().unwrap()
        };
        Caches {
            near: builder().local_cache(1000).build().unwrap(),
            near_async,
            plain: builder().build().unwrap(),
            rt,
        }
    }

    /// Reads `key` through the near cache `which` (0 blocking, 1 async).
    fn read(&self, which: usize, key: &str) -> rc::Result<Option<u64>> {
        match which {
            0 => self.near.get(key),
            _ => self.rt.block_on(self.near_async.get(key)),
        }
    }

    fn local_hits(&self, which: usize) -> u64 {
        match which {
            0 => self.near.stats().local_hits,
            _ => self.near_async.stats().local_hits,
        }
    }

    /// Reads `key` through both near caches until each serves it from
    /// process memory, each read checked against the truth.
    fn warm(&self, key: &str) {
        let want: Option<u64> = self.plain.get(key).unwrap();
        for which in 0..2 {
            until(&format!("{key} served locally by cache {which}"), || {
                let before = self.local_hits(which);
                let got = self.read(which, key);
                if let Ok(got) = got {
                    assert_eq!(got, want, "{key}");
                }
                self.local_hits(which) > before
            });
        }
    }
}

/// Waits until `f` holds, failing the test after [`PATIENCE`].
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What the checker found.
#[derive(Debug, Default)]
struct Counts {
    reads: AtomicU64,
    failed_reads: AtomicU64,
    writes: AtomicU64,
    failed_writes: AtomicU64,
}

/// Keys' histories: the values whose writes returned, and when.
struct Truth {
    acked: Vec<Mutex<Vec<(u64, Instant)>>>,
    /// The last value each key's writer started to write.
    started: Vec<AtomicU64>,
}

/// The writer pauses while this is set (around a failover: a write the old
/// primary acknowledged may not reach the new one, which is Redis's
/// asynchronous replication, not the near cache's doing).
type Pause = AtomicBool;

/// Writes counters to `keys` through the plain cache while both near caches
/// read them, and `disrupt` runs (given the writer's pause switch). Every
/// read must be a value that was written, and no older than one whose
/// write returned [`BOUND`] before the read started. Then every key must
/// settle on the truth, and the near caches must serve locally again.
fn check_coherence(
    caches: &Caches,
    keys: &[String],
    disrupt: impl FnOnce(&Pause) + Send,
) -> Counts {
    let n = keys.len();
    let truth = Truth {
        acked: (0..n)
            .map(|_| Mutex::new(vec![(0, Instant::now())]))
            .collect(),
        started: (0..n).map(|_| AtomicU64::new(0)).collect(),
    };
    for k in keys {
        assert!(caches.plain.set(k, &0u64, None).unwrap());
    }
    for k in keys {
        caches.warm(k);
    }
    let counts = Counts::default();
    let done = AtomicBool::new(false);
    let pause = Pause::new(false);
    let hits_before = [caches.local_hits(0), caches.local_hits(1)];
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut v = 0u64;
            while !done.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(3));
                if pause.load(SeqCst) {
                    continue;
                }
                v += 1;
                let k = v as usize % n;
                truth.started[k].store(v, SeqCst);
                match caches.plain.set(&keys[k], &v, None) {
                    Ok(true) => {
                        truth.acked[k].lock().unwrap().push((v, Instant::now()));
                        counts.writes.fetch_add(1, SeqCst);
                    }
                    _ => {
                        counts.failed_writes.fetch_add(1, SeqCst);
                    }
                }
            }
        });
        for which in 0..2 {
            let (truth, counts, done) = (&truth, &counts, &done);
            s.spawn(move || {
                let mut k = 0;
                while !done.load(SeqCst) {
                    k = (k + 1) % n;
                    let t = Instant::now();
                    let floor = truth.acked[k]
                        .lock()
                        .unwrap()
                        .iter()
                        .rev()
                        .find(|(_, at)| *at + BOUND <= t)
                        .map_or(0, |(v, _)| *v);
                    let got = match caches.read(which, &keys[k]) {
                        Ok(got) => got.expect("a key that is always there"),
                        Err(_) => {
                            counts.failed_reads.fetch_add(1, SeqCst);
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    };
                    let ceiling = truth.started[k].load(SeqCst);
                    let key = &keys[k];
                    assert!(
                        got >= floor,
                        "cache {which}: {key} read {got}, but {floor} was written {BOUND:?} before"
                    );
                    assert!(
                        got <= ceiling,
                        "cache {which}: {key} read {got}, never written (last {ceiling})"
                    );
                    assert!(
                        got == 0 || got as usize % n == k,
                        "cache {which}: {key} read another key's value {got}"
                    );
                    counts.reads.fetch_add(1, SeqCst);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        disrupt(&pause);
        pause.store(false, SeqCst);
        // Traffic on the new layout.
        std::thread::sleep(Duration::from_millis(1500));
        done.store(true, SeqCst);
    });
    // Every key settles on what Redis holds, and is served locally again.
    for k in keys {
        let want: Option<u64> = caches.plain.get(k).unwrap();
        for which in 0..2 {
            until(&format!("{k} settles in cache {which}"), || {
                caches.read(which, k).ok() == Some(want)
            });
        }
        caches.warm(k);
    }
    for (which, before) in hits_before.into_iter().enumerate() {
        let served = caches.local_hits(which) - before;
        assert!(
            served > 100,
            "cache {which}: the near cache served only {served} reads of {counts:?}"
        );
    }
    counts
}

/// Keys spread over every primary, with `first` on the slot a test moves.
fn keys(cluster: &RedisCluster) -> Vec<String> {
    let keys: Vec<String> = (0..6).map(|i| format!("key{i}")).collect();
    let owners: std::collections::BTreeSet<usize> = keys
        .iter()
        .map(|k| cluster.primary_for_key(format!("{NS}{k}")))
        .collect();
    assert!(owners.len() > 1, "the keys span primaries: {owners:?}");
    keys
}

#[test]
fn cluster_stays_coherent_through_a_slot_migration() {
    let cluster = RedisCluster::start(3, 0);
    let caches = Caches::new(|| on_cluster(&cluster));
    let keys = keys(&cluster);
    let moved = format!("{NS}{}", keys[0]);
    let slot = RedisCluster::key_slot(&moved);
    let from = cluster.primary_for_slot(slot);
    let to = (from + 1) % 3;
    let started = Instant::now();
    let counts = check_coherence(&caches, &keys, |_| {
        cluster.migrate_slot(slot, to);
        std::thread::sleep(Duration::from_millis(300));
        cluster.migrate_slot(slot, from);
        std::thread::sleep(Duration::from_millis(300));
        cluster.migrate_slot(slot, to);
    });
    assert_eq!(cluster.primary_for_key(&moved), to);
    eprintln!(
        "near cache, cluster slot migrated 3 times: {counts:?} in {:?}",
        started.elapsed()
    );
}

#[test]
fn cluster_stays_coherent_through_a_killed_primary() {
    let cluster = RedisCluster::start(3, 1);
    let caches = Caches::new(|| on_cluster(&cluster));
    let keys = keys(&cluster);
    let victim = cluster.primary_for_key(format!("{NS}{}", keys[0]));
    let started = Instant::now();
    let mut promoted = None;
    let counts = check_coherence(&caches, &keys, |pause| {
        pause.store(true, SeqCst);
        // Lets the replicas catch up with the last acknowledged writes.
        std::thread::sleep(Duration::from_millis(300));
        cluster.kill(victim);
        promoted = Some(cluster.wait_for_failover(victim));
    });
    let promoted = promoted.unwrap();
    assert_ne!(promoted, victim);
    assert_eq!(
        cluster.primary_for_key(format!("{NS}{}", keys[0])),
        promoted
    );
    eprintln!(
        "near cache, cluster primary killed and replaced: {counts:?} in {:?}",
        started.elapsed()
    );
}

#[test]
fn sentinel_stays_coherent_through_a_failover() {
    let sentinel = RedisSentinel::start();
    let caches = Caches::new(|| on_sentinel(&sentinel));
    let keys: Vec<String> = (0..4).map(|i| format!("key{i}")).collect();
    let old = sentinel.primary().port();
    let started = Instant::now();
    let counts = check_coherence(&caches, &keys, |pause| {
        pause.store(true, SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        sentinel.failover();
    });
    assert_ne!(sentinel.primary().port(), old, "the primary changed");
    eprintln!(
        "near cache, sentinel failover: {counts:?} in {:?}",
        started.elapsed()
    );
}

/// After a failover the old primary is a replica: what is written on the
/// new one must not be hidden by a copy read from the old one, even when
/// the near cache never read the key since.
#[test]
fn sentinel_failover_drops_copies_of_the_old_primary() {
    let sentinel = RedisSentinel::start();
    let caches = Caches::new(|| on_sentinel(&sentinel));
    assert!(caches.plain.set("k", &1u64, None).unwrap());
    caches.warm("k");
    sentinel.failover();
    // The plain cache follows the switch; write until it lands on the new primary.
    let new = sentinel.primary();
    until("a write on the new primary", || {
        caches.plain.set("k", &2u64, None).is_ok_and(|ok| ok) && new.cli(&["GET", "nm:k"]) == "2"
    });
    std::thread::sleep(BOUND);
    for which in 0..2 {
        assert_eq!(caches.read(which, "k").unwrap(), Some(2), "cache {which}");
    }
    caches.warm("k");
}

/// While a slot migrates, a key already on the importing node is read
/// through an `ASK` redirection: the node that answers does not own the
/// slot yet, so the value is served but not kept. Once the slot has moved,
/// the key is kept again, and other clients' writes are seen.
#[test]
fn cluster_values_read_through_ask_are_not_kept() {
    let cluster = RedisCluster::start(2, 0);
    let caches = Caches::new(|| on_cluster(&cluster));
    let key = "asked";
    let slot = RedisCluster::key_slot(format!("{NS}{key}"));
    let from = cluster.primary_for_slot(slot);
    let to = 1 - from;
    // A key of the same primary, so its tracking is known to be up.
    let anchor = (0..)
        .map(|i| format!("anchor{i}"))
        .find(|k| cluster.primary_for_key(format!("{NS}{k}")) == from)
        .unwrap();
    assert!(caches.plain.set(&anchor, &0u64, None).unwrap());
    caches.warm(&anchor);
    cluster.begin_slot_migration(slot, to);
    assert!(caches.plain.set(key, &1u64, None).unwrap());
    assert!(
        cluster
            .cli(from, &["GET", &format!("{NS}{key}")])
            .contains("ASK"),
        "the key was written on the importing node"
    );
    for v in 1..=3u64 {
        if v > 1 {
            assert!(caches.plain.set(key, &v, None).unwrap());
        }
        for which in 0..2 {
            let before = caches.local_hits(which);
            for _ in 0..20 {
                assert_eq!(caches.read(which, key).unwrap(), Some(v), "cache {which}");
            }
            assert_eq!(
                caches.local_hits(which),
                before,
                "cache {which} kept a value read through ASK"
            );
        }
    }
    cluster.finish_slot_migration(slot, to);
    caches.warm(key);
    assert!(caches.plain.set(key, &4u64, None).unwrap());
    std::thread::sleep(BOUND);
    for which in 0..2 {
        assert_eq!(caches.read(which, key).unwrap(), Some(4), "cache {which}");
    }
}

/// A manual failover (`CLUSTER FAILOVER` on the replica) leaves the old
/// primary running, as a replica of the new one: a write on the new
/// primary must be seen although this process read the key from the old
/// one and has no reason to look the layout up (its reads are local).
#[test]
fn cluster_copies_of_a_demoted_primary_are_dropped() {
    let cluster = RedisCluster::start(3, 1);
    let caches = Caches::new(|| on_cluster(&cluster));
    let key = "demoted";
    let full = format!("{NS}{key}");
    let old = cluster.primary_for_key(&full);
    let replica = cluster.replicas_of(old)[0];
    assert!(caches.plain.set(key, &1u64, None).unwrap());
    caches.warm(key);
    // Lets the replica catch up, then swaps the roles.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cluster.cli(replica, &["CLUSTER", "FAILOVER"]), "OK");
    assert_eq!(cluster.wait_for_failover(old), replica);
    until("the write lands on the new primary", || {
        caches
            .plain
            .set(key, &2u64, None)
            .is_ok_and(|stored| stored)
            && cluster.cli(replica, &["GET", &full]) == "2"
    });
    std::thread::sleep(BOUND);
    for which in 0..2 {
        assert_eq!(caches.read(which, key).unwrap(), Some(2), "cache {which}");
    }
    caches.warm(key);
}

/// A slot migration drops the copies of the primary that lost the slot
/// only: a primary it did not touch keeps serving its copies from process
/// memory through the new layout, and the migrated key is read afresh.
#[test]
fn cluster_slot_migration_keeps_the_untouched_primarys_copies() {
    let cluster = RedisCluster::start(3, 0);
    let caches = Caches::new(|| on_cluster(&cluster));
    let primary = |k: &str| cluster.primary_for_key(format!("{NS}{k}"));
    let moved = "moved";
    let from = primary(moved);
    let to = (from + 1) % 3;
    let bystander = (0..)
        .map(|i| format!("bystander{i}"))
        .find(|k| primary(k) == (from + 2) % 3)
        .unwrap();
    assert!(caches.plain.set(moved, &1u64, None).unwrap());
    assert!(caches.plain.set(&bystander, &10u64, None).unwrap());
    caches.warm(moved);
    caches.warm(&bystander);
    cluster.migrate_slot(RedisCluster::key_slot(format!("{NS}{moved}")), to);
    assert!(caches.plain.set(moved, &2u64, None).unwrap());
    for which in 0..2 {
        // `MOVED` makes the cache install the new layout before it answers.
        until(
            &format!("cache {which} reads the migrated key's new value"),
            || caches.read(which, moved).unwrap() == Some(2),
        );
        let before = caches.local_hits(which);
        assert_eq!(
            caches.read(which, &bystander).unwrap(),
            Some(10),
            "cache {which}"
        );
        assert_eq!(
            caches.local_hits(which),
            before + 1,
            "cache {which} kept the untouched primary's copy through the new layout"
        );
    }
    caches.warm(moved);
}
