//! `RedisCluster` against real `redis-server` processes in cluster mode.

use std::time::{Duration, Instant};

use rc_testing::{CLUSTER_SLOTS, ClusterRole, RedisCluster};
use redis::cluster::{ClusterClient, ClusterConnection};

/// A cluster client on the cluster's seeds, with short timeouts.
fn client(cluster: &RedisCluster) -> ClusterConnection {
    ClusterClient::builder(cluster.seed_urls())
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get_connection()
        .unwrap()
}

/// `GET key` through node `node`, following one `MOVED` by hand.
fn get_following_moved(cluster: &RedisCluster, node: usize, key: &str) -> String {
    let reply = cluster.cli(node, &["GET", key]);
    let Some(moved) = reply.strip_prefix("(error) MOVED ") else {
        return reply;
    };
    let (slot, addr) = moved.split_once(' ').unwrap();
    assert_eq!(slot, RedisCluster::key_slot(key).to_string());
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let target = cluster
        .nodes()
        .iter()
        .position(|n| n.port() == Some(port))
        .unwrap();
    cluster.cli(target, &["GET", key])
}

/// A key whose slot node `primary` owns.
fn key_on(cluster: &RedisCluster, primary: usize) -> String {
    (0..)
        .map(|i| format!("key-{i}"))
        .find(|k| cluster.primary_for_key(k) == primary)
        .unwrap()
}

#[test]
fn three_by_one_cluster_covers_every_slot_and_serves_keys() {
    let started = Instant::now();
    let cluster = RedisCluster::start(3, 1);
    eprintln!("3x1 cluster ready in {:?}", started.elapsed());

    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.primaries(), vec![0, 1, 2]);
    for p in 0..3 {
        assert_eq!(cluster.role(p), ClusterRole::Primary);
        assert_eq!(cluster.replicas_of(p), vec![3 + p]);
        assert_eq!(cluster.role(3 + p), ClusterRole::Replica { primary: p });
    }
    for node in 0..6 {
        let info = cluster.cli(node, &["CLUSTER", "INFO"]);
        for want in [
            "cluster_state:ok",
            "cluster_slots_assigned:16384",
            "cluster_slots_ok:16384",
            "cluster_known_nodes:6",
            "cluster_size:3",
        ] {
            assert!(info.lines().any(|l| l == want), "node {node}: {info}");
        }
    }
    assert_eq!(cluster.primary_for_slot(0), 0);
    assert_eq!(cluster.primary_for_slot(5460), 0);
    assert_eq!(cluster.primary_for_slot(5461), 1);
    assert_eq!(cluster.primary_for_slot(10921), 1);
    assert_eq!(cluster.primary_for_slot(10922), 2);
    assert_eq!(cluster.primary_for_slot(CLUSTER_SLOTS - 1), 2);
    assert_eq!(cluster.node_id(0).len(), 40);
    let seeds = cluster.seed_urls();
    assert_eq!(seeds.len(), 3);
    for (p, seed) in seeds.iter().enumerate() {
        assert_eq!(*seed, cluster.nodes()[p].url());
    }

    // The local slot hash agrees with the server's.
    for key in ["foo", "bar", "{user1}.a", "a{}b", "", "ключ"] {
        assert_eq!(
            cluster.cli(0, &["CLUSTER", "KEYSLOT", key]),
            RedisCluster::key_slot(key).to_string(),
            "{key:?}"
        );
    }

    // Set through node 0, following MOVED by hand; read back through every node.
    let key = key_on(&cluster, 1);
    let moved = cluster.cli(0, &["SET", &key, "v1"]);
    let port = cluster.nodes()[1].port().unwrap();
    assert_eq!(
        moved,
        format!(
            "(error) MOVED {} 127.0.0.1:{port}",
            RedisCluster::key_slot(&key)
        )
    );
    assert_eq!(cluster.cli(1, &["SET", &key, "v1"]), "OK");
    for node in 0..3 {
        assert_eq!(get_following_moved(&cluster, node, &key), "v1");
    }

    // And through the redis crate's cluster client.
    let mut conn = client(&cluster);
    for i in 0..50 {
        let k = format!("many-{i}");
        redis::cmd("SET").arg(&k).arg(i).exec(&mut conn).unwrap();
    }
    for i in 0..50 {
        let v: i64 = redis::cmd("GET")
            .arg(format!("many-{i}"))
            .query(&mut conn)
            .unwrap();
        assert_eq!(v, i);
    }
    let v: String = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    assert_eq!(v, "v1");
    eprintln!("test done in {:?}", started.elapsed());
}

#[test]
fn killed_primary_fails_over_and_keys_survive() {
    let started = Instant::now();
    let cluster = RedisCluster::start(3, 1);
    let victim = 1;
    let key = key_on(&cluster, victim);
    assert_eq!(cluster.cli(victim, &["SET", &key, "kept"]), "OK");
    // Acknowledged by its replica before the crash (replication is async).
    assert_eq!(cluster.cli(victim, &["WAIT", "1", "2000"]), "1");

    let killed = Instant::now();
    cluster.kill(victim);
    assert!(!cluster.nodes()[victim].is_running());
    let promoted = cluster.wait_for_failover(victim);
    eprintln!("failover took {:?} after the kill", killed.elapsed());
    assert_eq!(promoted, 3 + victim);
    assert_eq!(cluster.role(promoted), ClusterRole::Primary);
    assert_eq!(cluster.primary_for_key(&key), promoted);
    assert_eq!(cluster.primaries(), vec![0, 2, promoted]);
    assert_eq!(cluster.cli(promoted, &["GET", &key]), "kept");
    assert_eq!(get_following_moved(&cluster, 0, &key), "kept");
    let seeds = cluster.seed_urls();
    assert_eq!(seeds.len(), 3);
    assert!(seeds.contains(&cluster.nodes()[promoted].url()));
    let mut conn = client(&cluster);
    let v: String = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    assert_eq!(v, "kept");

    // The old primary comes back as a replica of its successor.
    let restarted = Instant::now();
    cluster.restart(victim);
    eprintln!("rejoined in {:?}", restarted.elapsed());
    assert_eq!(
        cluster.role(victim),
        ClusterRole::Replica { primary: promoted }
    );
    assert_eq!(cluster.replicas_of(promoted), vec![victim]);
    assert_eq!(cluster.cli(victim, &["READONLY"]), "OK");
    assert!(
        cluster
            .cli(victim, &["SET", &key, "x"])
            .starts_with("(error) MOVED")
    );
    eprintln!("test done in {:?}", started.elapsed());
}

#[test]
fn paused_primary_is_replaced_and_rejoins_as_replica() {
    let started = Instant::now();
    let cluster = RedisCluster::builder()
        .primaries(3)
        .replicas(1)
        .node_timeout(Duration::from_millis(1000))
        .password("p w\"d")
        .start();
    assert!(cluster.seed_urls()[0].starts_with("redis://:p%20w%22d@127.0.0.1:"));
    let paused = Instant::now();
    cluster.pause(0);
    let promoted = cluster.wait_for_failover(0);
    eprintln!("failover of a paused primary took {:?}", paused.elapsed());
    assert_eq!(promoted, 3);
    cluster.resume(0);
    cluster.wait_until_ok();
    assert_eq!(cluster.role(0), ClusterRole::Replica { primary: 3 });

    // MIGRATE authenticates to the target.
    let slot = RedisCluster::key_slot("pw-key");
    let from = cluster.primary_for_slot(slot);
    assert_eq!(cluster.cli(from, &["SET", "pw-key", "v"]), "OK");
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    cluster.migrate_slot(slot, to);
    assert_eq!(cluster.cli(to, &["GET", "pw-key"]), "v");
    eprintln!("test done in {:?}", started.elapsed());
}

#[test]
fn migrate_slot_moves_keys_and_redirects() {
    let started = Instant::now();
    let cluster = RedisCluster::start(3, 1);
    let slot = RedisCluster::key_slot("{tag}");
    let from = cluster.primary_for_slot(slot);
    let to = (from + 1) % 3;
    let keys: Vec<String> = (0..250).map(|i| format!("{{tag}}:{i}")).collect();
    for key in &keys {
        assert_eq!(cluster.cli(from, &["SET", key, key]), "OK");
    }
    let to_port = cluster.nodes()[to].port().unwrap();

    // Mid-migration: the keys still there are served; a missing key is ASKed for.
    cluster.begin_slot_migration(slot, to);
    assert_eq!(cluster.cli(from, &["GET", &keys[0]]), keys[0]);
    assert_eq!(
        cluster.cli(from, &["GET", "{tag}:missing"]),
        format!("(error) ASK {slot} 127.0.0.1:{to_port}")
    );
    assert!(
        cluster
            .cli(to, &["GET", &keys[0]])
            .starts_with("(error) MOVED")
    );
    assert_eq!(cluster.primary_for_slot(slot), from);

    cluster.finish_slot_migration(slot, to);
    assert_eq!(cluster.primary_for_slot(slot), to);
    assert_eq!(cluster.cli(from, &["DBSIZE"]), "0");
    assert_eq!(cluster.cli(to, &["DBSIZE"]), "250");
    assert_eq!(
        cluster.cli(from, &["GET", &keys[7]]),
        format!("(error) MOVED {slot} 127.0.0.1:{to_port}")
    );
    // Every node sees the new owner.
    for node in 0..6 {
        let nodes = cluster.cli(node, &["CLUSTER", "NODES"]);
        let owner_line = nodes
            .lines()
            .find(|l| l.starts_with(cluster.node_id(to)))
            .unwrap();
        assert!(owner_line.contains(&slot.to_string()), "{owner_line}");
    }
    let mut conn = client(&cluster);
    for key in &keys {
        let v: String = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
        assert_eq!(v, *key);
    }

    // And back in one call; migrating to the owner is a no-op.
    cluster.migrate_slot(slot, from);
    assert_eq!(cluster.primary_for_slot(slot), from);
    assert_eq!(cluster.cli(from, &["GET", &keys[9]]), keys[9]);
    cluster.migrate_slot(slot, from);
    eprintln!("test done in {:?}", started.elapsed());
}

#[test]
fn dropping_the_cluster_stops_every_node() {
    let cluster = RedisCluster::start(1, 1);
    let pids: Vec<u32> = cluster.nodes().iter().map(|n| n.pid()).collect();
    let dirs: Vec<_> = cluster.nodes().iter().map(|n| n.dir().to_owned()).collect();
    assert!(dirs.iter().all(|d| d.join("nodes.conf").exists()));
    drop(cluster);
    for (pid, dir) in pids.iter().zip(&dirs) {
        let _ = pid;
        assert!(!dir.exists());
        #[cfg(target_os = "linux")]
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

#[test]
#[should_panic(expected = "RedisCluster sets `cluster-enabled` itself")]
fn cluster_directives_are_refused() {
    RedisCluster::builder()
        .config("cluster-enabled", "no")
        .start();
}
