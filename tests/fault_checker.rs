//! The fault checker (see `tests/checker/mod.rs`): concurrent readers and
//! writers over a versioned source while a seeded schedule injects faults
//! into real redis-servers; no read may return a wrong value or one older
//! than a completed write. On a single server and on a 3-host cluster, each
//! for `RC_CHECKER_SECS` seconds (default 20; the two run in parallel).
//! `RC_CHECKER_SEED=n` replays a schedule (the seed is printed).

mod checker;

use std::time::Duration;

fn secs() -> Duration {
    let secs = std::env::var("RC_CHECKER_SECS")
        .ok()
        .map(|s| s.parse().expect("RC_CHECKER_SECS: a number of seconds"))
        .unwrap_or(20);
    Duration::from_secs(secs)
}

fn check(name: &str, hosts: usize) {
    let seed = checker::seed_from_env();
    let report = checker::run(&checker::Config::new(name, hosts, secs(), seed));
    eprintln!("fault checker: {}", report.details());
    assert!(report.ops > 0 && report.faults > 0, "{}", report.summary());
    assert!(report.passed(), "{}", report.details());
}

#[test]
fn no_wrong_or_stale_value_under_faults_single_server() {
    check("single", 0);
}

#[test]
fn no_wrong_or_stale_value_under_faults_cluster() {
    check("cluster", 3);
}
