//! TLS (`rediss://`) against real redis-servers, a Redis Cluster and a
//! Sentinel deployment that talk TLS only, with certificates signed by a throwaway test CA. Built and
//! run by `cargo xtask test` with `--features tls`.
#![cfg(feature = "tls")]

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rc::testing::{RedisCluster, RedisSentinel, RedisServer, TestCertificates};
use rc::{AsyncCache, Cache, CacheBuilder, Error, HostConfig, SslOptions};

/// A server that talks TLS only, with a certificate signed by a new test CA.
fn tls_server() -> (RedisServer, TestCertificates) {
    tls_server_with(false)
}

/// [`tls_server`], asking clients for a certificate signed by the test CA
/// when `auth_clients`.
fn tls_server_with(auth_clients: bool) -> (RedisServer, TestCertificates) {
    let certs = TestCertificates::generate();
    let mut server = RedisServer::builder().tls(&certs);
    if auth_clients {
        server = server.config("tls-auth-clients", "yes");
    }
    let server = server.start();
    (server, certs)
}

#[test]
fn rediss_with_an_untrusted_certificate() {
    let (server, _certs) = tls_server();
    let tls_port = server.port().unwrap();
    let cache = Cache::open(&format!("rediss://127.0.0.1:{tls_port}/0?insecure")).unwrap();
    assert!(cache.set("k", &"over tls", None).unwrap());
    assert_eq!(
        cache.get::<String>("k").unwrap().as_deref(),
        Some("over tls")
    );
    // The value really went to this server.
    assert_eq!(server.cli(&["GET", "k"]), "\"over tls\"");

    // Without `insecure` the unknown certificate is refused, with a clear error.
    let strict = Cache::open(&format!("rediss://127.0.0.1:{tls_port}/0")).unwrap();
    let err = strict.get::<String>("k").unwrap_err();
    assert!(matches!(err, Error::Redis { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{tls_port}")),
        "{err}"
    );
}

#[tokio::test]
async fn async_rediss_with_an_untrusted_certificate() {
    let (server, _certs) = tls_server();
    let tls_port = server.port().unwrap();
    let cache = AsyncCache::open(&format!("rediss://127.0.0.1:{tls_port}/0?insecure")).unwrap();
    assert!(cache.set("k", &vec![1, 2, 3], None).await.unwrap());
    assert_eq!(
        cache.get::<Vec<i32>>("k").await.unwrap(),
        Some(vec![1, 2, 3])
    );
}

#[test]
fn a_ca_file_makes_the_certificate_trusted() {
    let (server, certs) = tls_server();
    let tls_port = server.port().unwrap();
    let trusted = HostConfig::new()
        .host("127.0.0.1")
        .port(tls_port)
        .ssl_options(SslOptions {
            insecure: false,
            ca_file: Some(certs.ca_file().to_owned()),
            ..SslOptions::default()
        });
    let cache = Cache::builder().host_config(trusted).build().unwrap();
    assert!(cache.set("ca", &1, None).unwrap());
    assert_eq!(server.cli(&["GET", "ca"]), "1");
    // The harness's own host config trusts the CA too.
    let harness = Cache::builder()
        .host_config(server.host_config())
        .build()
        .unwrap();
    assert_eq!(harness.get::<i32>("ca").unwrap(), Some(1));
    let missing = HostConfig::new()
        .host("127.0.0.1")
        .port(tls_port)
        .ssl_options(SslOptions {
            insecure: false,
            ca_file: Some(certs.ca_file().with_file_name("no-such-ca.pem")),
            ..SslOptions::default()
        });
    let err = Cache::builder().host_config(missing).build().unwrap_err();
    assert!(
        matches!(err, Error::Config(_)) && err.to_string().contains("no-such-ca.pem"),
        "{err}"
    );
}

/// A host as a Python rc config gives it: redis-py's TLS names in
/// `ssl_options`, a client certificate the server requires.
#[test]
fn python_host_map_with_a_client_certificate() {
    let (server, certs) = tls_server_with(true);
    let tls_port = server.port().unwrap();
    let file = |path: &std::path::Path| path.to_str().unwrap().to_owned();
    let host = |client_cert: bool| {
        let mut ssl =
            serde_json::json!({"ssl_ca_certs": file(certs.ca_file()), "ssl_cert_reqs": "required"});
        if client_cert {
            // The server's certificate, signed by the CA, serves as a client's too.
            ssl["ssl_certfile"] = file(certs.cert_file()).into();
            ssl["ssl_keyfile"] = file(certs.key_file()).into();
        }
        serde_json::from_value::<HostConfig>(serde_json::json!({
            "host": "127.0.0.1", "port": tls_port, "ssl": true, "ssl_options": ssl,
            "socket_timeout": 2
        }))
        .unwrap()
    };
    let cache = Cache::builder().host_config(host(true)).build().unwrap();
    assert!(cache.set("mtls", &"yes", None).unwrap());
    assert_eq!(server.cli(&["GET", "mtls"]), "\"yes\"");
    let refused = Cache::builder().host_config(host(false)).build().unwrap();
    assert!(
        refused.get::<String>("mtls").is_err(),
        "the server requires a client certificate"
    );
}

/// Connect and reply timeouts of the cluster caches (TLS handshakes on a
/// busy machine take a while).
const TIMEOUT: Duration = Duration::from_secs(1);

/// A blocking cache built from a config file: the deployment under `kind`
/// (`redis_cluster` or `sentinel`), trusting `certs` by redis-py's name for
/// the CA, in namespace `s:`, with the tests' timeouts.
fn from_config(kind: &str, deployment: serde_json::Value, certs: &TestCertificates) -> Cache {
    let mut config = serde_json::json!({
        "ssl_options": { "ssl_ca_certs": certs.ca_file() },
        "namespace": "s:",
        "connect_timeout": TIMEOUT.as_secs_f64(),
        "socket_timeout": TIMEOUT.as_secs_f64(),
    });
    config[kind] = deployment;
    let config: rc::CacheConfig = serde_json::from_value(config).unwrap();
    config.into_builder().build().unwrap()
}

/// A cache builder on `cluster` through its first seed only (the other
/// primaries are found through `CLUSTER SLOTS`), trusting `certs`' CA.
fn on_cluster(cluster: &RedisCluster, certs: &TestCertificates, namespace: &str) -> CacheBuilder {
    let seed = cluster.seed_urls()[0].clone();
    assert!(seed.starts_with("rediss://"), "{seed}");
    Cache::builder()
        .redis_cluster([seed])
        .ssl_options(certs.ssl_options())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .namespace(namespace)
}

/// The primary that owns each of `keys` (with `namespace` in front), as
/// the cluster says now: looked up once, as every lookup is a TLS handshake.
fn owners_of(cluster: &RedisCluster, namespace: &str, keys: &[String]) -> HashMap<String, usize> {
    let owners: HashMap<String, usize> = keys
        .iter()
        .map(|k| {
            (
                k.clone(),
                cluster.primary_for_key(format!("{namespace}{k}")),
            )
        })
        .collect();
    let distinct: BTreeSet<&usize> = owners.values().collect();
    assert_eq!(distinct.len(), 3, "{namespace} keys span every primary");
    owners
}

/// Moves the slot of `namespace` + `key` to another primary and notes it
/// in `owners`. The redirection the old owner now answers (over TLS) names
/// the new owner's TLS port, its only one.
fn move_slot_of(
    cluster: &RedisCluster,
    namespace: &str,
    key: &str,
    owners: &mut HashMap<String, usize>,
) {
    let full = format!("{namespace}{key}");
    let slot = RedisCluster::key_slot(&full);
    let from = owners[key];
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    cluster.migrate_slot(slot, to);
    assert_eq!(cluster.primary_for_key(&full), to);
    let reply = cluster.cli(from, &["GET", &full]);
    let moved = reply
        .strip_prefix("(error) MOVED ")
        .unwrap_or_else(|| panic!("{reply}"));
    let port: u16 = moved.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(Some(port), cluster.node(to).port(), "{reply}");
    for (k, owner) in owners.iter_mut() {
        if RedisCluster::key_slot(format!("{namespace}{k}")) == slot {
            *owner = to;
        }
    }
}

/// Checks every value `got` (for `keys`) against `truth`, and against the
/// key (`namespace` + key) on its primary in `owners` (`(nil)` for a key
/// absent from `owners`: it is on no node).
fn check<'a>(
    cluster: &RedisCluster,
    (namespace, owners): (&str, &HashMap<String, usize>),
    keys: impl IntoIterator<Item = &'a String>,
    got: &[Option<u64>],
    truth: &HashMap<String, u64>,
) {
    let keys: Vec<&String> = keys.into_iter().collect();
    assert_eq!(keys.len(), got.len());
    for (key, value) in keys.into_iter().zip(got) {
        assert_eq!(*value, truth.get(key).copied(), "{key}");
        let stored = match owners.get(key) {
            Some(&owner) => cluster.cli(owner, &["GET", &format!("{namespace}{key}")]),
            None => "(nil)".to_owned(),
        };
        let want = value.map_or("(nil)".to_owned(), |v| v.to_string());
        assert_eq!(
            stored,
            want,
            "{namespace}{key} on node {:?}",
            owners.get(key)
        );
    }
}

/// A sync and an async cache on a Redis Cluster that talks TLS only (to
/// clients, on its bus and in replication): values over every primary,
/// each read checked against what was written and against the node that
/// owns it, and slot migrations followed through `MOVED` redirections
/// that name TLS ports.
#[test]
fn a_redis_cluster_over_tls_sync_and_async() {
    let certs = TestCertificates::generate();
    let cluster = RedisCluster::builder()
        .primaries(3)
        .replicas(1)
        .tls(&certs)
        .start();
    // `CLUSTER SLOTS`, asked over TLS, gives each primary's TLS port.
    let slots = cluster.cli(0, &["CLUSTER", "SLOTS"]);
    for p in cluster.primaries() {
        let port = format!(") {}", cluster.node(p).port().unwrap());
        assert!(
            slots.lines().any(|l| l.trim_end().ends_with(&port)),
            "{port} in {slots}"
        );
    }

    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    let mut absent = keys.clone();
    absent.push("absent".to_owned());

    let mut owners = owners_of(&cluster, "s:", &keys);
    let mut truth: HashMap<String, u64> = keys.iter().cloned().zip(100..).collect();
    let cache = on_cluster(&cluster, &certs, "s:").build().unwrap();
    assert!(cache.set_many(truth.clone(), None).unwrap());
    let got: Vec<Option<u64>> = cache.get_many(&absent).unwrap();
    check(&cluster, ("s:", &owners), &absent, &got, &truth);
    // The same cache from a config file, its CA given by redis-py's name.
    let seeds = serde_json::json!([cluster.seed_urls()[0]]);
    let from_config = from_config("redis_cluster", seeds, &certs);
    let got: Vec<Option<u64>> = from_config.get_many(&absent).unwrap();
    check(&cluster, ("s:", &owners), &absent, &got, &truth);
    for key in keys.iter().step_by(9) {
        let got = [cache.get(key).unwrap()];
        check(&cluster, ("s:", &owners), [key], &got, &truth);
    }
    // The cache still routes `k0` to its old primary: it follows the MOVED.
    move_slot_of(&cluster, "s:", "k0", &mut owners);
    let got = [cache.get("k0").unwrap()];
    check(&cluster, ("s:", &owners), [&keys[0]], &got, &truth);
    assert!(cache.set("k0", &7, None).unwrap());
    truth.insert("k0".to_owned(), 7);
    let got: Vec<Option<u64>> = cache.get_many(&absent).unwrap();
    check(&cluster, ("s:", &owners), &absent, &got, &truth);
    assert_eq!(cache.stats().errors, 0, "{:?}", cache.stats());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut owners = owners_of(&cluster, "a:", &keys);
        let mut truth: HashMap<String, u64> = keys.iter().cloned().zip(500..).collect();
        let cache = on_cluster(&cluster, &certs, "a:").build_async().unwrap();
        assert!(cache.set_many(truth.clone(), None).await.unwrap());
        let got: Vec<Option<u64>> = cache.get_many(&absent).await.unwrap();
        check(&cluster, ("a:", &owners), &absent, &got, &truth);
        for key in keys.iter().step_by(9) {
            let got = [cache.get(key).await.unwrap()];
            check(&cluster, ("a:", &owners), [key], &got, &truth);
        }
        move_slot_of(&cluster, "a:", "k1", &mut owners);
        assert!(cache.set("k1", &8, None).await.unwrap());
        truth.insert("k1".to_owned(), 8);
        let got = [cache.get("k1").await.unwrap()];
        check(&cluster, ("a:", &owners), [&keys[1]], &got, &truth);
        let got: Vec<Option<u64>> = cache.get_many(&absent).await.unwrap();
        check(&cluster, ("a:", &owners), &absent, &got, &truth);
        assert_eq!(cache.stats().errors, 0, "{:?}", cache.stats());
    });
}

/// Caches built by `on` (given the TLS options) that trust no CA (sync) or
/// another CA (async) fail each call with an unavailable error that names
/// one of `addresses` and the certificate, within the timeouts of a lookup
/// on each of up to 3 servers; a CA file that cannot be read (`certs`' CA's
/// name changed) fails the build.
fn untrusted_is_refused(
    certs: &TestCertificates,
    addresses: &[String],
    on: impl Fn(Option<SslOptions>) -> CacheBuilder,
) {
    let bound = (TIMEOUT + TIMEOUT) * 3;
    let refused = |err: Error, started: Instant| {
        let text = err.to_string();
        assert!(err.is_unavailable(), "{text}");
        assert!(
            addresses.iter().any(|a| text.contains(a.as_str())),
            "names one of {addresses:?}: {text}"
        );
        assert!(
            text.to_lowercase().contains("certificate"),
            "says why: {text}"
        );
        assert!(started.elapsed() < bound, "{:?}: {text}", started.elapsed());
    };

    // No CA given: the system's roots do not know the test CA.
    let cache = on(None).build().unwrap();
    let started = Instant::now();
    refused(cache.get::<u64>("k").unwrap_err(), started);

    // Another CA: it did not sign the servers' certificates.
    let other = TestCertificates::generate();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = on(Some(other.ssl_options())).build_async().unwrap();
        let started = Instant::now();
        refused(cache.get::<u64>("k").await.unwrap_err(), started);
    });

    let missing = SslOptions {
        ca_file: Some(certs.ca_file().with_file_name("no-such-ca.pem")),
        ..certs.ssl_options()
    };
    let err = on(Some(missing)).build().unwrap_err();
    assert!(
        matches!(err, Error::Config(_)) && err.to_string().contains("no-such-ca.pem"),
        "{err}"
    );
}

/// A cluster cache that does not trust the nodes' certificate fails each
/// call with an unavailable error that names the seed and the certificate,
/// within its timeouts; a CA file that cannot be read fails the build.
#[test]
fn a_redis_cluster_with_an_untrusted_certificate_is_a_clear_error() {
    let certs = TestCertificates::generate();
    let cluster = RedisCluster::builder()
        .primaries(1)
        .replicas(0)
        .tls(&certs)
        .start();
    let seed = cluster.seed_urls()[0].clone();
    let address = seed.trim_start_matches("rediss://").to_owned();
    untrusted_is_refused(&certs, &[address], |ssl| {
        let builder = Cache::builder()
            .redis_cluster([seed.as_str()])
            .connect_timeout(TIMEOUT)
            .socket_timeout(TIMEOUT);
        ssl.into_iter().fold(builder, CacheBuilder::ssl_options)
    });
    assert_eq!(cluster.cli(0, &["DBSIZE"]), "0", "nothing was written");
}

/// A cache builder on `sentinel` through its `rediss://` Sentinels, with
/// `ssl` as TLS options (for the Sentinels and the primary).
fn on_sentinel(sentinel: &RedisSentinel, ssl: Option<SslOptions>) -> CacheBuilder {
    let urls = sentinel.sentinel_urls();
    assert!(urls.iter().all(|u| u.starts_with("rediss://")), "{urls:?}");
    let builder = Cache::builder()
        .sentinel(sentinel.master_name(), urls)
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT);
    match ssl {
        Some(ssl) => builder.ssl_options(ssl),
        None => builder,
    }
}

/// Checks `got` (for `keys`, with `namespace` in front) against `truth`
/// and against the `primary`.
fn check_on(
    primary: &RedisServer,
    namespace: &str,
    keys: &[String],
    got: &[Option<u64>],
    truth: &HashMap<String, u64>,
) {
    assert_eq!(keys.len(), got.len());
    for (key, value) in keys.iter().zip(got) {
        assert_eq!(*value, truth.get(key).copied(), "{key}");
        let want = value.map_or("(nil)".to_owned(), |v| v.to_string());
        let stored = primary.cli(&["GET", &format!("{namespace}{key}")]);
        assert_eq!(stored, want, "{namespace}{key} on {:?}", primary.port());
    }
}

/// How many `+switch-master` subscribers the Sentinels have: a Sentinel
/// subscribes to nothing on another Sentinel, so these are the caches'.
fn subscribers(sentinel: &RedisSentinel) -> usize {
    sentinel
        .sentinels()
        .iter()
        .map(|s| s.cli(&["CLIENT", "LIST"]).matches(" sub=1 ").count())
        .sum()
}

/// Waits (at most 10 s) until `write` succeeds; returns how many tries failed.
fn until_written(mut write: impl FnMut() -> bool) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut failed = 0;
    while !write() {
        failed += 1;
        assert!(Instant::now() < deadline, "no write succeeded in 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    failed
}

/// A sync and an async cache on a Sentinel deployment that talks TLS only
/// (Sentinels, primary and replica, to clients and among themselves): the
/// Sentinels are asked and subscribed to over TLS with the CA of
/// `ssl_options`, values are checked against what was written and against
/// the primary, and after `SENTINEL FAILOVER` writes land on the new primary;
/// a cache from a config file (`ssl_options` by redis-py's names) finds it too.
#[test]
fn a_sentinel_deployment_over_tls_sync_and_async() {
    let certs = TestCertificates::generate();
    let sentinel = RedisSentinel::builder().tls(&certs).start();
    // The Sentinels announce (and know each other by) their TLS ports, their only ones.
    let ports: Vec<u16> = sentinel
        .sentinels()
        .iter()
        .map(|s| s.port().unwrap())
        .collect();
    for (s, own) in sentinel.sentinels().iter().zip(&ports) {
        let others = s.cli(&["SENTINEL", "SENTINELS", sentinel.master_name()]);
        for port in ports.iter().filter(|&p| p != own) {
            let port = format!(") {port}");
            assert!(
                others.lines().any(|l| l.ends_with(&port)),
                "{port} in {others}"
            );
        }
    }
    let old = sentinel.primary();
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    let mut absent = keys.clone();
    absent.push("absent".to_owned());
    let mut truth: HashMap<String, u64> = keys.iter().cloned().zip(100..).collect();
    let mut async_truth: HashMap<String, u64> = keys.iter().cloned().zip(500..).collect();

    let cache = on_sentinel(&sentinel, Some(certs.ssl_options()))
        .namespace("s:")
        .build()
        .unwrap();
    assert!(cache.set_many(truth.clone(), None).unwrap());
    let got: Vec<Option<u64>> = cache.get_many(&absent).unwrap();
    check_on(old, "s:", &absent, &got, &truth);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let async_cache = on_sentinel(&sentinel, Some(certs.ssl_options()))
        .namespace("a:")
        .build_async()
        .unwrap();
    rt.block_on(async {
        assert!(
            async_cache
                .set_many(async_truth.clone(), None)
                .await
                .unwrap()
        );
        let got: Vec<Option<u64>> = async_cache.get_many(&absent).await.unwrap();
        check_on(old, "a:", &absent, &got, &async_truth);
    });

    // Both caches listen for `+switch-master` on a Sentinel, over TLS.
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscribers(&sentinel) < 2 {
        assert!(Instant::now() < deadline, "both caches subscribe");
        std::thread::sleep(Duration::from_millis(50));
    }

    let new_addr = sentinel.failover();
    let new = sentinel.primary();
    assert_eq!(new.port(), Some(new_addr.port()));
    assert_ne!(new.port(), old.port());
    // The old primary, now a replica, refuses writes: a write that
    // succeeds went to the new primary.
    let failed = until_written(|| cache.set("k0", &7, None).is_ok_and(|stored| stored));
    truth.insert("k0".to_owned(), 7);
    let got: Vec<Option<u64>> = cache.get_many(&absent).unwrap();
    check_on(new, "s:", &absent, &got, &truth);
    rt.block_on(async {
        let mut failed_async = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !async_cache
            .set("k1", &8, None)
            .await
            .is_ok_and(|stored| stored)
        {
            failed_async += 1;
            assert!(
                Instant::now() < deadline,
                "no async write succeeded in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        async_truth.insert("k1".to_owned(), 8);
        let got: Vec<Option<u64>> = async_cache.get_many(&absent).await.unwrap();
        check_on(new, "a:", &absent, &got, &async_truth);
        eprintln!(
            "sentinel over tls: writes failed after the failover: {failed} (sync), \
             {failed_async} (async)"
        );
    });
    // The sync cache from a config file, its CA given by redis-py's name.
    let nodes = serde_json::json!({
        "master": sentinel.master_name(),
        "nodes": sentinel.sentinel_urls(),
    });
    let from_config = from_config("sentinel", nodes, &certs);
    let got: Vec<Option<u64>> = from_config.get_many(&absent).unwrap();
    check_on(new, "s:", &absent, &got, &truth);
}

/// A Sentinel cache that does not trust the Sentinels' certificate fails
/// each call with an unavailable error that names a Sentinel and the
/// certificate, within its timeouts; a CA file that cannot be read fails
/// the build.
#[test]
fn a_sentinel_with_an_untrusted_certificate_is_a_clear_error() {
    let certs = TestCertificates::generate();
    let sentinel = RedisSentinel::builder().tls(&certs).start();
    let addresses: Vec<String> = sentinel
        .sentinel_urls()
        .iter()
        .map(|u| u.trim_start_matches("rediss://").to_owned())
        .collect();
    untrusted_is_refused(&certs, &addresses, |ssl| on_sentinel(&sentinel, ssl));
    assert_eq!(
        sentinel.cli_primary(&["DBSIZE"]),
        "0",
        "nothing was written"
    );
}
