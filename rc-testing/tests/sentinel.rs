//! `RedisSentinel` against real `redis-server` processes and Sentinels.

use std::net::SocketAddr;
use std::time::Instant;

use rc_testing::RedisSentinel;

/// What a Sentinel answers to `SENTINEL GET-MASTER-ADDR-BY-NAME`.
fn reported(sentinel: &RedisSentinel, i: usize) -> String {
    sentinel.sentinels()[i].cli(&[
        "SENTINEL",
        "GET-MASTER-ADDR-BY-NAME",
        sentinel.master_name(),
    ])
}

fn addr_reply(addr: SocketAddr) -> String {
    format!("1) {}\n2) {}", addr.ip(), addr.port())
}

#[test]
fn failover_changes_the_primary_every_sentinel_reports() {
    let started = Instant::now();
    let sentinel = RedisSentinel::start();
    eprintln!("sentinel set-up ready in {:?}", started.elapsed());

    assert_eq!(sentinel.master_name(), "mymaster");
    let urls = sentinel.sentinel_urls();
    assert_eq!(urls.len(), 3);
    for (url, s) in urls.iter().zip(sentinel.sentinels()) {
        assert_eq!(*url, format!("redis://127.0.0.1:{}", s.port().unwrap()));
        assert_eq!(s.cli(&["SENTINEL", "MYID"]).len(), 40);
    }
    let first = &sentinel.servers()[0];
    let second = &sentinel.servers()[1];
    assert_eq!(sentinel.primary().port(), first.port());
    assert_eq!(sentinel.replica().port(), second.port());
    for i in 0..3 {
        assert_eq!(
            reported(&sentinel, i),
            format!("1) 127.0.0.1\n2) {}", first.port().unwrap())
        );
    }
    assert_eq!(sentinel.cli_primary(&["SET", "k", "before"]), "OK");
    assert_eq!(sentinel.cli_primary(&["WAIT", "1", "2000"]), "1");

    let forced = Instant::now();
    let new = sentinel.failover();
    eprintln!("forced failover took {:?}", forced.elapsed());
    assert_eq!(Some(new.port()), second.port());
    for i in 0..3 {
        assert_eq!(reported(&sentinel, i), addr_reply(new));
    }
    assert_eq!(sentinel.primary().port(), second.port());
    assert_eq!(sentinel.replica().port(), first.port());
    // Writes go to the new primary; the old one is its read-only replica.
    assert_eq!(sentinel.cli_primary(&["GET", "k"]), "before");
    assert_eq!(sentinel.cli_primary(&["SET", "k", "after"]), "OK");
    assert_eq!(second.cli(&["GET", "k"]), "after");
    assert_eq!(sentinel.cli_primary(&["WAIT", "1", "2000"]), "1");
    assert_eq!(first.cli(&["GET", "k"]), "after");
    assert!(
        first
            .cli(&["SET", "k", "x"])
            .starts_with("(error) READONLY")
    );

    // And back.
    let back = sentinel.failover();
    assert_eq!(Some(back.port()), first.port());
    assert_eq!(sentinel.cli_primary(&["SET", "k", "again"]), "OK");
    assert_eq!(first.cli(&["GET", "k"]), "again");
    eprintln!("test done in {:?}", started.elapsed());
}

#[test]
fn killed_primary_is_replaced() {
    let started = Instant::now();
    let sentinel = RedisSentinel::builder()
        .master_name("cache-1")
        .password("p w\"d")
        .start();
    assert_eq!(sentinel.master_name(), "cache-1");
    let first = &sentinel.servers()[0];
    let second = &sentinel.servers()[1];
    assert!(first.url().starts_with("redis://:p%20w%22d@127.0.0.1:"));
    assert_eq!(sentinel.cli_primary(&["SET", "k", "kept"]), "OK");
    assert_eq!(sentinel.cli_primary(&["WAIT", "1", "2000"]), "1");

    let killed = Instant::now();
    sentinel.kill_primary();
    assert!(!first.is_running());
    let new = sentinel.wait_for_new_primary();
    eprintln!(
        "automatic failover took {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(Some(new.port()), second.port());
    for i in 0..3 {
        assert_eq!(reported(&sentinel, i), addr_reply(new));
    }
    assert_eq!(sentinel.primary().port(), second.port());
    assert_eq!(sentinel.cli_primary(&["GET", "k"]), "kept");
    assert_eq!(sentinel.cli_primary(&["SET", "k", "new"]), "OK");
    assert_eq!(second.cli(&["GET", "k"]), "new");
    eprintln!("test done in {:?}", started.elapsed());
}

#[test]
fn dropping_the_set_up_stops_every_process() {
    let sentinel = RedisSentinel::start();
    let servers = sentinel.servers().iter().chain(sentinel.sentinels());
    let dirs: Vec<_> = servers.map(|s| (s.pid(), s.dir().to_owned())).collect();
    assert_eq!(dirs.len(), 5);
    drop(sentinel);
    for (pid, dir) in &dirs {
        let _ = pid;
        assert!(!dir.exists());
        #[cfg(target_os = "linux")]
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
