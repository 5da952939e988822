//! A host that dies fails only its own keys, and is used again once it is back.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Cluster, wait_until};
use rc_cluster::{AsyncClusterBackend, CacheCluster, ClusterBackend};
use rc_core::{AsyncBackend, Backend, CacheBuilder, Error};

const VICTIM: &str = "cache02";

/// How long a host may take to be used again once it is back. Its backoff
/// starts at 100 ms and doubles per failed probe; the margin covers a loaded
/// machine where a probe or two still time out right after the restart.
const RECOVERY: Duration = Duration::from_secs(10);

fn keys() -> Vec<String> {
    (0..200).map(|i| format!("fault:{i}")).collect()
}

fn four_hosts() -> Cluster {
    Cluster::start(4, 1)
}

fn label(c: &Cluster, name: &str) -> String {
    format!("{name} ({})", c.hosts[name].address())
}

fn assert_names(e: &Error, label: &str) {
    assert!(
        e.to_string().contains(label),
        "error {e} does not name {label}"
    );
    assert_eq!(e.host(), Some(label));
}

fn sync_backend(c: &Cluster) -> Arc<ClusterBackend> {
    let b = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .connect_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_millis(500))
        .build_backend()
        .unwrap();
    Arc::new(b)
}

#[test]
fn dead_host_fails_only_its_keys_then_comes_back() {
    let c = four_hosts();
    let backend = sync_backend(&c);
    let cache = CacheBuilder::new()
        .build_with_backend(backend.clone())
        .unwrap();
    let ks = keys();
    assert!(
        cache
            .set_many(ks.iter().map(|k| (k.as_str(), 7)), None)
            .unwrap()
    );
    let victim_label = label(&c, VICTIM);
    let on_victim = |k: &String| backend.host_for_key(k) == Some(VICTIM);
    let victim_key = ks.iter().find(|k| on_victim(k)).unwrap().clone();
    let other_key = ks.iter().find(|k| !on_victim(k)).unwrap().clone();

    c.servers[2].kill();

    // The backend: per-key errors, only for the dead host's keys.
    let started = Instant::now();
    let got = backend.get_many(&common::refs(&ks));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "get_many took {:?}",
        started.elapsed()
    );
    for (k, r) in ks.iter().zip(&got) {
        match r {
            Err(e) => {
                assert!(on_victim(k), "key {k} of a live host failed: {e}");
                assert_names(e, &victim_label);
                assert!(e.is_unavailable());
            }
            Ok(v) => {
                assert!(!on_victim(k), "key {k} of the dead host answered");
                assert_eq!(v.as_deref(), Some(&b"7"[..]));
            }
        }
    }

    // The direct API: Err naming the host for anything touching it.
    assert_names(
        &cache.get_many::<i32, _, _>(&ks).unwrap_err(),
        &victim_label,
    );
    assert_names(&cache.get::<i32>(&victim_key).unwrap_err(), &victim_label);
    assert_eq!(cache.get::<i32>(&other_key).unwrap(), Some(7));
    assert!(cache.set(&other_key, &8, None).unwrap());

    // Writes try every host, then report the failure.
    assert_names(
        &cache
            .set_many(ks.iter().map(|k| (k.as_str(), 9)), None)
            .unwrap_err(),
        &victim_label,
    );
    assert_eq!(
        cache.get::<i32>(&other_key).unwrap(),
        Some(9),
        "live hosts were written"
    );
    assert_names(&cache.delete_many(&ks).unwrap_err(), &victim_label);
    assert_eq!(
        cache.get::<i32>(&other_key).unwrap(),
        None,
        "live hosts were cleared"
    );

    // While it backs off, the dead host costs no timeout.
    let started = Instant::now();
    for _ in 0..100 {
        let _ = cache.get::<i32>(&victim_key);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "100 calls took {:?}",
        started.elapsed()
    );

    // Back up: the same cache works again without being rebuilt.
    c.servers[2].restart();
    assert!(
        wait_until(RECOVERY, || cache.get::<i32>(&victim_key).is_ok()),
        "host never came back"
    );
    assert!(cache.set(&victim_key, &1, None).unwrap());
    assert_eq!(cache.get::<i32>(&victim_key).unwrap(), Some(1));
    assert!(
        backend
            .get_many(&common::refs(&ks))
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(common::dbsize(&c.raw(VICTIM)), 1);
}

#[test]
fn hung_host_times_out_and_recovers() {
    let c = four_hosts();
    let backend = sync_backend(&c);
    let ks = keys();
    let items: Vec<_> = ks
        .iter()
        .map(|k| (k.clone(), b"1".to_vec(), Duration::from_secs(60)))
        .collect();
    assert!(backend.set_many(&items).unwrap());

    c.servers[2].pause();
    let started = Instant::now();
    let got = backend.get_many(&common::refs(&ks));
    let took = started.elapsed();
    c.servers[2].resume();
    assert!(
        took < Duration::from_secs(3),
        "get_many took {took:?} on a hung host"
    );
    for (k, r) in ks.iter().zip(&got) {
        let on_victim = backend.host_for_key(k) == Some(VICTIM);
        assert_eq!(r.is_err(), on_victim, "key {k}: {r:?}");
        if let Err(e) = r {
            assert!(matches!(e, Error::Timeout { .. }), "{e}");
            assert_names(e, &label(&c, VICTIM));
        }
    }
    assert!(wait_until(RECOVERY, || backend
        .get_many(&common::refs(&ks))
        .iter()
        .all(Result::is_ok)));
}

fn async_backend(c: &Cluster) -> Arc<AsyncClusterBackend> {
    let b = CacheCluster::builder()
        .hosts(c.hosts.clone())
        .connect_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_millis(500))
        .build_async_backend()
        .unwrap();
    Arc::new(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_dead_host_fails_only_its_keys() {
    let c = four_hosts();
    let backend = async_backend(&c);
    let cache = CacheBuilder::new()
        .build_async_with_backend(backend.clone())
        .unwrap();
    let ks = keys();
    assert!(
        cache
            .set_many(ks.iter().map(|k| (k.as_str(), 7)), None)
            .await
            .unwrap()
    );
    let victim_label = label(&c, VICTIM);
    let on_victim = |k: &String| backend.host_for_key(k) == Some(VICTIM);
    let victim_key = ks.iter().find(|k| on_victim(k)).unwrap().clone();
    let other_key = ks.iter().find(|k| !on_victim(k)).unwrap().clone();

    c.servers[2].kill();

    let got = backend.get_many(&common::refs(&ks)).await;
    for (k, r) in ks.iter().zip(&got) {
        match r {
            Err(e) => {
                assert!(on_victim(k), "key {k} of a live host failed: {e}");
                assert_names(e, &victim_label);
            }
            Ok(v) => {
                assert!(!on_victim(k), "key {k} of the dead host answered");
                assert_eq!(v.as_deref(), Some(&b"7"[..]));
            }
        }
    }
    assert_names(
        &cache.get_many::<i32, _, _>(&ks).await.unwrap_err(),
        &victim_label,
    );
    assert_names(
        &cache.get::<i32>(&victim_key).await.unwrap_err(),
        &victim_label,
    );
    assert_eq!(cache.get::<i32>(&other_key).await.unwrap(), Some(7));
    assert_names(
        &cache
            .set_many(ks.iter().map(|k| (k.as_str(), 9)), None)
            .await
            .unwrap_err(),
        &victim_label,
    );
    assert_eq!(cache.get::<i32>(&other_key).await.unwrap(), Some(9));
    assert_names(&cache.delete_many(&ks).await.unwrap_err(), &victim_label);
    assert_eq!(cache.get::<i32>(&other_key).await.unwrap(), None);
}

/// Needs a fix in rc-core: `AsyncRedisBackend::connection` calls
/// `Health::check` a second time after the first call claimed the probe, and
/// that second call sees the retry time the probe just pushed back, so a host
/// that failed once is never tried again (every call returns `HostDown`).
/// Dropping the second check (or letting the probe through) fixes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_dead_host_comes_back_without_rebuilding() {
    let c = four_hosts();
    let backend = async_backend(&c);
    let cache = CacheBuilder::new()
        .build_async_with_backend(backend.clone())
        .unwrap();
    let ks = keys();
    assert!(
        cache
            .set_many(ks.iter().map(|k| (k.as_str(), 7)), None)
            .await
            .unwrap()
    );
    let victim_key = ks
        .iter()
        .find(|k| backend.host_for_key(k) == Some(VICTIM))
        .unwrap()
        .clone();
    c.servers[2].kill();
    assert_names(
        &cache.get::<i32>(&victim_key).await.unwrap_err(),
        &label(&c, VICTIM),
    );
    c.servers[2].restart();
    let deadline = Instant::now() + RECOVERY;
    while let Err(e) = cache.get::<i32>(&victim_key).await {
        assert!(Instant::now() < deadline, "host never came back: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cache.set(&victim_key, &1, None).await.unwrap());
    assert_eq!(cache.get::<i32>(&victim_key).await.unwrap(), Some(1));
    assert!(
        backend
            .get_many(&common::refs(&ks))
            .await
            .iter()
            .all(Result::is_ok)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_hung_host_times_out_within_bounds() {
    let c = four_hosts();
    let backend = async_backend(&c);
    let ks = keys();
    let items: Vec<_> = ks
        .iter()
        .map(|k| (k.clone(), b"1".to_vec(), Duration::from_secs(60)))
        .collect();
    assert!(backend.set_many(&items).await.unwrap());

    c.servers[2].pause();
    let started = Instant::now();
    let got = backend.get_many(&common::refs(&ks)).await;
    let took = started.elapsed();
    c.servers[2].resume();
    assert!(
        took < Duration::from_secs(3),
        "get_many took {took:?} on a hung host"
    );
    for (k, r) in ks.iter().zip(&got) {
        let on_victim = backend.host_for_key(k) == Some(VICTIM);
        assert_eq!(r.is_err(), on_victim, "key {k}: {r:?}");
        if let Err(e) = r {
            assert!(matches!(e, Error::Timeout { .. }), "{e}");
            assert_names(e, &label(&c, VICTIM));
        }
    }
}
