//! The decorator and batches on a `CacheCluster` of real redis-servers,
//! including one server dying and coming back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rc::testing::RedisServer;
use rc::{Cache, CacheCluster, ClusterBackend, HostConfig};

/// rc's own fixture shape: 4 servers × 4 dbs = 16 hosts.
fn sixteen_hosts(servers: &[RedisServer]) -> Vec<(String, HostConfig)> {
    servers
        .iter()
        .enumerate()
        .flat_map(|(s, server)| {
            (0..4).map(move |db| (format!("cache{s}{db}"), server.host_config().db(db)))
        })
        .collect()
}

fn cluster(hosts: &[(String, HostConfig)]) -> Cache {
    CacheCluster::builder()
        .hosts(hosts.iter().cloned())
        .connect_timeout(Duration::from_millis(200))
        .response_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// Which host the cluster routes a decorated call's key to.
fn host_of(hosts: &[(String, HostConfig)], key: &str) -> String {
    let backend: ClusterBackend = CacheCluster::builder()
        .hosts(hosts.iter().cloned())
        .build_backend()
        .unwrap();
    backend.host_for_key(key).unwrap().to_owned()
}

/// Body runs per argument, so a test can tell hits from recomputations.
static RUNS: Mutex<Option<HashMap<u32, u32>>> = Mutex::new(None);

fn runs(x: u32) -> u32 {
    RUNS.lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&x).copied())
        .unwrap_or(0)
}

#[rc::cache(cache = cache, skip(cache))]
fn square(cache: &Cache, x: u32) -> u64 {
    let _ = cache;
    *RUNS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(x)
        .or_default() += 1;
    u64::from(x) * u64::from(x)
}

#[test]
fn decorator_batch_and_a_dead_server_on_sixteen_hosts() {
    let servers: Vec<RedisServer> = (0..4).map(|_| RedisServer::start()).collect();
    let hosts = sixteen_hosts(&servers);
    let cache = cluster(&hosts);

    // Decorated calls spread over the hosts and hit on the second call.
    for x in 0..200 {
        assert_eq!(square(&cache, x), u64::from(x * x));
    }
    for x in 0..200 {
        assert_eq!(square(&cache, x), u64::from(x * x));
    }
    assert!((0..200).all(|x| runs(x) == 1));
    let used: std::collections::BTreeSet<String> = (0..200)
        .map(|x| host_of(&hosts, &format!("cluster square {x}")))
        .collect();
    assert_eq!(used.len(), 16, "200 keys reach all 16 hosts");

    // A batch is one fan-out: all hits now.
    let batch = cache.batch();
    let promises: Vec<_> = (0..200).map(|x| batch_square(&batch, &cache, x)).collect();
    batch.run();
    let sum: u64 = promises.into_iter().map(|p| p.into_value().unwrap()).sum();
    assert_eq!(sum, (0..200u64).map(|x| x * x).sum::<u64>());
    assert!((0..200).all(|x| runs(x) == 1));

    // Kill one server: its four hosts fail open, the others still hit.
    servers[1].kill();
    let dead = |x: u32| host_of(&hosts, &format!("cluster square {x}")).starts_with("cache1");
    let batch = cache.batch();
    let promises: Vec<_> = (0..200).map(|x| batch_square(&batch, &cache, x)).collect();
    batch.run();
    for (x, p) in (0..200).zip(promises) {
        assert_eq!(p.into_value(), Some(u64::from(x * x)));
        let expected = if dead(x) { 2 } else { 1 };
        assert_eq!(
            runs(x),
            expected,
            "key {x}: dead host recomputes, live hosts hit"
        );
    }
    for x in 0..200 {
        assert_eq!(square(&cache, x), u64::from(x * x));
    }
    assert!((0..200).filter(|&x| !dead(x)).all(|x| runs(x) == 1));
    let err = cache
        .get_many::<u64, _, _>((0..200).map(|x| format!("cluster square {x}")))
        .unwrap_err();
    assert!(err.to_string().contains("cache1"), "{err}");

    // Back on the same port: hits again without rebuilding the cache.
    servers[1].restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = (0..200).find(|&x| dead(x)).unwrap();
    loop {
        let before = runs(probe);
        square(&cache, probe);
        square(&cache, probe);
        // While the host is skipped both calls compute; once back, the second hits.
        if runs(probe) <= before + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted server never served hits"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The server's other hosts come back likewise: each once a call has
    // noticed its backoff is over and its background probe was answered.
    while let Err(e) = cache.get_many::<u64, _, _>((0..200).map(|x| format!("cluster square {x}")))
    {
        assert!(Instant::now() < deadline, "never all back: {e}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn async_decorator_and_batch_on_a_cluster() {
    let servers: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let hosts = sixteen_hosts(&servers[..]);
    let cache = CacheCluster::builder()
        .hosts(hosts.iter().cloned())
        .namespace("ns:")
        .build_async()
        .unwrap();

    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    #[rc::cache(cache = cache, skip(cache))]
    async fn label(cache: &rc::AsyncCache, x: u32) -> String {
        let _ = cache;
        CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("#{x}")
    }

    let batch = cache.batch();
    let ps: Vec<_> = (0..50).map(|x| batch_label(&batch, &cache, x)).collect();
    batch.run().await;
    let got: Vec<String> = ps.into_iter().map(|p| p.into_value().unwrap()).collect();
    assert_eq!(got, (0..50).map(|x| format!("#{x}")).collect::<Vec<_>>());
    for x in 0..50 {
        assert_eq!(label(&cache, x).await, format!("#{x}"));
    }
    assert_eq!(CALLS.load(std::sync::atomic::Ordering::SeqCst), 50);
    assert!(invalidate_label(&cache, 7).await);
    assert_eq!(label(&cache, 7).await, "#7");
    assert_eq!(CALLS.load(std::sync::atomic::Ordering::SeqCst), 51);
}
